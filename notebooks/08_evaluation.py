# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Evaluation (DeepSeekMath §3.2, §5.1.2, §5.2.2)
#
# > "We evaluate DeepSeekMath-Base's performance of solving mathematical problems using few-shot
# > chain-of-thought prompting (Wei et al., 2022), across eight benchmarks in English and Chinese."
# > — §3.2.1
#
# > "DeepSeekMath 7B has achieved an impressive score of 51.7% on the competition-level MATH benchmark
# > without relying on external toolkits and voting techniques […] Self-consistency over 64 samples from
# > DeepSeekMath 7B achieves 60.9% on MATH." — Abstract
#
# > "The Maj@K and Pass@K of SFT and RL DeepSeekMath 7B on GSM8K and MATH (temperature 0.7). It was noted
# > that RL enhances Maj@K but not Pass@K." — Figure 7
#
# This notebook evaluates any list of checkpoints on the configured benchmarks and modes:
#
# | mode | for | prompt |
# |---|---|---|
# | `few_shot_cot` | base models (Tables 2–3) | GSM8K 8-shot `Q:/A:`, MATH 4-shot Minerva `Problem:/Solution:`, MC with `Answer Choices:`, CMATH/MGSM-zh Chinese; exemplars from train splits |
# | `zero_shot_cot` | instruct / RL (Table 5) | `User: {q}\nPlease reason step by step, and put your final answer within \boxed{}.\n\nAssistant:` |
# | `tool` | instruct / RL (Table 5) | program instruction; the program runs in the sandbox, its output is appended, generation goes on (≤ 2 rounds) |
# | `pot` | program-of-thought | the answer is what the program prints |
#
# Answers are graded by `dsm_utils.grading` (toy answers too). In the CPU profiles the checkpoints are the
# toy models of the earlier notebooks (`05_sft`, `06_grpo`, …); a missing checkpoint is replaced by a *fresh*
# untrained `llama-1m` (this notebook trains nothing), so the numbers are then near zero by design. The gpu
# profile evaluates the released DeepSeekMath 7B models with vLLM.

# %% tags=["parameters"]
run_dir = "runs/local/08_evaluation"  # the runner sets runs/<profile>/08_evaluation
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
checkpoints = ["05_sft", "06_grpo"]  # "NN_name": that notebook's checkpoint in this profile; or a path / hub id / toy name
tokenizer = ""  # empty: the checkpoint's own tokenizer (toy default tokenizer when it has none)
fallback_model = "llama-1m"  # fresh toy model used when a listed checkpoint does not exist
benchmarks = ["toy", "toy_ood"]
modes = ["zero_shot_cot", "few_shot_cot", "pot", "tool"]
auto_modes = False  # True: base checkpoints get few_shot_cot/pot, instruct/RL get zero_shot_cot/tool (∩ modes)
limit = 100  # items per benchmark (None: all)
max_new_tokens = 128
n_shot = None  # few-shot exemplars (None: the paper's: 8 for GSM8K, 4 for the others)
compat = "strict"  # grading: "strict" or "deepseek"
backend = "hf"  # "hf" or "vllm"
batch_size = 32
device = "auto"
dtype = ""  # empty: default; e.g. "bfloat16" for 7B models with the hf backend
max_tool_rounds = 2
sandbox_timeout_s = 5.0
curve_benchmarks = ["toy"]  # Figure 7: Maj@K / Pass@K curves
curve_mode = "zero_shot_cot"
curve_limit = 50
k_max = 16
temperature = 0.7
top_p = 1.0
maj_orders = 4  # orderings averaged for Maj@K at K < k_max
threads = 0  # torch CPU threads (0: leave as is)

# %%
import gc
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from dsm_utils import benchmarks as bm
from dsm_utils import evaluation as ev
from dsm_utils import tracking, training
from dsm_utils.generation import make_generator
from dsm_utils.models import checkpoint_exists, is_toy_name, load_model
from dsm_utils.tokenizer import default_tokenizer, load_tokenizer

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
training.set_threads(threads)
training.seed_everything(seed)
dev = training.pick_device(device)
print("run folder:", run.dir, "| device:", dev, "| backend:", backend)

# %% [markdown]
# ## Which models
# `"05_sft"` means `runs/<profile>/05_sft/checkpoint` (the sibling run folder). A listed checkpoint that does
# not exist is replaced, once, by a fresh toy model.

# %%
def resolve(spec: str) -> tuple[str, str]:
    """(label, source) of a checkpoint entry: a sibling notebook's checkpoint, a path, a hub id or a toy name."""
    if re.fullmatch(r"\d\d_\w+", spec):
        return spec, str(run.sibling(spec) / "checkpoint")
    p = Path(spec)
    return (p.parent.name if p.name == "checkpoint" else spec.rstrip("/").split("/")[-1]), spec


def looks_available(src: str) -> bool:
    if is_toy_name(src):
        return True
    if checkpoint_exists(src):
        return True
    is_hub = src.count("/") == 1 and not src.startswith((".", "/", "~", "runs"))
    return is_hub


models = []
fallback_used = []
for spec in checkpoints:
    label, src = resolve(spec)
    if looks_available(src):
        models.append((label, src))
    else:
        fallback_used.append(spec)
        print(f"checkpoint {spec!r} ({src}) does not exist: using a fresh untrained {fallback_model!r} instead "
              "(run the notebook that writes it first for real numbers)")
if fallback_used and not any(s == fallback_model for _, s in models):
    models.append((f"{fallback_model} (fresh)", fallback_model))
pd.DataFrame(models, columns=["label", "source"])


# %%
def open_generator(src: str):
    """A generator (and its tokenizer) for one checkpoint."""
    if tokenizer:
        tok = load_tokenizer(tokenizer)
    elif is_toy_name(src):
        tok = default_tokenizer()
    elif Path(src).exists() and not (Path(src) / "tokenizer_config.json").exists():
        tok = default_tokenizer()
    else:
        tok = load_tokenizer(src)
    if backend == "vllm":
        return make_generator("vllm", src, tok, seed=seed), tok
    kw = {}
    if dtype:
        import torch

        kw["dtype"] = getattr(torch, dtype)
    model = load_model(src, tokenizer=tok, device=dev, seed=seed, **kw)
    return make_generator("hf", model, tok, batch_size=batch_size), tok


def modes_for(label: str, src: str) -> list[str]:
    if not auto_modes:
        return list(modes)
    row = ev.paper_row_for(f"{label} {src}")
    wanted = ["few_shot_cot", "pot"] if row == "DeepSeekMath-Base 7B" else ["zero_shot_cot", "tool"]
    return [m for m in modes if m in wanted]


# %% [markdown]
# ## Greedy accuracy on every benchmark and mode

# %%
item_cache = {b: bm.load_benchmark(b, limit=limit, data_dir=data_dir or None) for b in benchmarks}
rows, curves = [], {}
records_dir = run.path("records")
shutil.rmtree(records_dir, ignore_errors=True)  # records of an earlier run must not mix with these
records_dir.mkdir()
for label, src in models:
    gen, tok = open_generator(src)
    for mode in modes_for(label, src):
        # One call per mode over all benchmarks: bigger batches, one sandbox pool; metrics are split afterwards.
        all_items = [it for b in benchmarks for it in item_cache[b]]
        res = ev.evaluate(gen, all_items, mode, max_new_tokens=max_new_tokens, compat=compat, seed=seed,
                          n_shot=n_shot, max_tool_rounds=max_tool_rounds, sandbox_timeout_s=sandbox_timeout_s,
                          data_dir=data_dir or None, progress=True)
        safe = re.sub(r"[^\w.-]+", "_", label)
        res.records.to_json(records_dir / f"{safe}__{mode}.jsonl", orient="records", lines=True, force_ascii=False)
        for b in benchmarks:
            m = ev.summarize(res.records[res.records["benchmark"] == b], n_samples=1)
            rows.append({"model": label, "source": src, "benchmark": b, "mode": mode, "n_items": m["n_items"],
                         "accuracy": m["accuracy"], "mean_tokens": m["mean_completion_tokens"],
                         "no_answer": m["n_no_answer"], "grade_timeouts": m["n_grade_timeouts"],
                         "sandbox_timeouts": m["n_sandbox_timeouts"], "sandbox_errors": m["n_sandbox_errors"],
                         "truncated": m["n_truncated"], "by_level": m.get("by_level"), "by_subject": m.get("by_subject")})
            print(f"{label:>24s} {b:>17s} {mode:>13s}  acc {m['accuracy']:.3f}  (n={m['n_items']})")
    # Figure 7: K samples per item at temperature 0.7
    for b in curve_benchmarks:
        items = bm.load_benchmark(b, limit=curve_limit, data_dir=data_dir or None)
        res = ev.evaluate(gen, items, curve_mode, n_samples=k_max, temperature=temperature, top_p=top_p,
                          max_new_tokens=max_new_tokens, compat=compat, seed=seed, maj_orders=maj_orders,
                          max_tool_rounds=max_tool_rounds, data_dir=data_dir or None, progress=True)
        curves.setdefault(label, {})[b] = {"maj": res.metrics["maj_curve"], "pass": res.metrics["pass_curve"]}
    del gen
    gc.collect()
results = pd.DataFrame(rows)
results.drop(columns=["by_level", "by_subject"])

# %% [markdown]
# ## Ours beside the paper
# Paper numbers: Table 2 (base, few-shot CoT), Table 3 (base, program-of-thought), Table 5 (Instruct / RL,
# zero-shot CoT and tool-integrated). Toy benchmarks have no paper number.

# %%
table = ev.comparison_table(rows)
table.to_csv(run.path("comparison.csv"), index=False)
table

# %% [markdown]
# Accuracy by difficulty (number of steps for the toy problems, level for MATH), first mode of each model:

# %%
level_rows = [{"model": r["model"], "benchmark": r["benchmark"], "mode": r["mode"], "level": lv, **v}
              for r in rows if r["by_level"] for lv, v in r["by_level"].items()]
by_level = pd.DataFrame(level_rows)
by_level.pivot_table(index=["model", "benchmark", "mode"], columns="level", values="accuracy") if len(by_level) else by_level

# %% [markdown]
# ## Maj@K and Pass@K (Figure 7)

# %%
fig, axes = plt.subplots(1, max(1, len(curve_benchmarks)), figsize=(5 * max(1, len(curve_benchmarks)), 3.6),
                         squeeze=False)
for ax, b in zip(axes[0], curve_benchmarks):
    for label, per in curves.items():
        if b not in per:
            continue
        ks = sorted(int(k) for k in per[b]["maj"])
        line, = ax.plot(ks, [100 * per[b]["maj"][k] for k in ks], marker="o", ms=3, label=f"{label} Maj@K")
        ax.plot(ks, [100 * per[b]["pass"][k] for k in ks], ls="--", marker="s", ms=3, color=line.get_color(),
                label=f"{label} Pass@K")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (samples)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{b} ({curve_mode}, T={temperature})")
    ax.legend(fontsize=7)
fig.tight_layout()
run.savefig(fig, "maj_pass_at_k.png")
plt.show()

# %%
summary = {f"{r['model']}/{r['benchmark']}/{r['mode']}": r["accuracy"] for r in rows}
run.log(evaluations=rows, comparison=table.to_dict("records"), curves=curves, accuracy=summary,
        models=[{"label": lb, "source": s} for lb, s in models], fallback_used=fallback_used)
print({k: round(v, 3) for k, v in summary.items()})
