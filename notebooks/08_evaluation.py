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
# # 08 · Evaluation (DeepSeekMath §2.3, §3.2, §4.2, §5.2.2)
#
# The paper evaluates its base model with few-shot chain-of-thought prompts on eight English and Chinese
# benchmarks (§2.3, Table 2), with few-shot program-of-thought prompts (Table 3), and its Instruct and RL models
# zero-shot, with chain-of-thought and tool-integrated reasoning (§3.2, §4.2, Table 5). The abstract sums it up:
#
# > "DeepSeekMath 7B has achieved an impressive score of 51.7% on the competition-level MATH benchmark without
# > relying on external toolkits and voting techniques, approaching the performance level of Gemini-Ultra and
# > GPT-4. Self-consistency over 64 samples from DeepSeekMath 7B achieves 60.9% on MATH." — Abstract
#
# > "The Maj@K and Pass@K of SFT and RL DeepSeekMath 7B on GSM8K and MATH (temperature 0.7). It was noted that
# > RL enhances Maj@K but not Pass@K." — Figure 7 (§5.2.2)
#
# **Prompts.** The prompt texts come from DeepSeek-Math's evaluation code, not from the paper (repository
# `deepseek-ai/DeepSeek-Math`, `evaluation/few_shot_prompts/`, MIT licence), stored as data under
# `$DSM_DATA_DIR/prompts/` and read by `dsm_utils.prompts` — exemplars, templates and stop words unchanged:
#
# | mode | for | prompt (from the DeepSeek-Math repository) |
# |---|---|---|
# | `few_shot_cot` | base models (Table 2) | GSM8K 8-shot `Q:/A:`, MATH 4-shot Minerva `Problem:/Solution:`, SAT / MMLU-STEM / OCW 4-shot, CMATH 6-shot, Gaokao 5-shot |
# | `few_shot_pot` | base models (Table 3) | PAL GSM8K 8-shot (`def solution()`), PAL MATH (a program that sets `answer`) |
# | `zero_shot_cot` | Instruct / RL (Table 5) | `User: {q}\nPlease reason step by step, and put your final answer within \boxed{}.\n\nAssistant:` |
# | `tool` | Instruct / RL (Table 5) | the program instruction; the program runs in the sandbox, its output is appended, generation goes on (≤ 2 rounds) |
# | `pot` | toy instruct models | the toy world's program instruction (what 05 trains); no paper number |
#
# MATH means the full 5,000-problem test set, the one the paper reports; MATH-500 is its own row with no paper
# number. A prompt that does not fit the model's context is an error, never a silently truncated prompt: the toy
# models (512 positions) keep the first 2 of the GSM8K chain-of-thought exemplars and the first of the PAL
# exemplars (`n_shot`), still DeepSeek-Math's own, in its order.
#
# In the cpu profile the checkpoints are the toy models of 05 (SFT) and 06 (GRPO), evaluated on the toy tests;
# **the paper has no toy numbers**, so the toy results stand beside each other, not beside the paper. A listed
# checkpoint that does not exist is replaced by a *fresh, untrained* `llama-1m` (near-zero accuracy by design).
# The gpu profile evaluates the released DeepSeekMath 7B models with vLLM on the full test sets.

# %% tags=["parameters"]
run_dir = "runs/local/08_evaluation"  # the runner sets runs/<profile>/08_evaluation
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
checkpoints = ["05_sft", "06_grpo"]  # "NN_name" (its run folder's checkpoint), "NN_name/sub" (a folder in it), a path, a hub id or a toy name
benchmarks_of = {}  # checkpoint -> the benchmarks it is evaluated on (default: all of benchmarks)
tokenizer = ""  # empty: the checkpoint's own tokenizer (toy default tokenizer when it has none)
fallback_model = "llama-1m"  # fresh toy model used when a listed checkpoint does not exist
fallback_context = 4096  # positions of a fresh toy model, so the full few-shot prompts fit
benchmarks = ["toy", "toy_ood"]  # each one of: "toy", "toy_ood", "gsm8k", "math", "math500", "cmath", "mgsm_zh", "gaokao_mathcloze", "gaokao_mathqa", "ocw", "sat", "mmlu_stem"
modes = ["zero_shot_cot", "few_shot_cot", "pot", "tool"]  # each one of: "few_shot_cot", "few_shot_pot", "zero_shot_cot", "tool", "pot"
auto_modes = False  # True: base checkpoints get the few-shot modes, Instruct/RL the zero-shot ones (within modes)
limit = 100  # items per benchmark (None: the whole test split, as the paper)
max_new_tokens = 128
n_shot = {"cot_gsm_8_shot": 2, "pal_gsm_8_shot": 1}  # exemplars kept per DeepSeek-Math prompt file; files not named keep all
compat = "strict"  # one of: "strict", "deepseek"
backend = "hf"  # one of: "hf", "vllm"
batch_size = 32
device = "auto"  # one of: "auto", "cpu", "cuda", "mps"
dtype = ""  # one of: "", "bfloat16", "float16", "float32"; empty is the checkpoint's default
max_tool_rounds = 2
sandbox_timeout_s = 5.0
curve_benchmarks = ["toy"]  # Figure 7: Maj@K / Pass@K curves
curve_mode = "zero_shot_cot"  # one of: "few_shot_cot", "few_shot_pot", "zero_shot_cot", "tool", "pot"
curve_limit = 50
k_max = 16
temperature = 0.7
top_p = 1.0
maj_orders = 4  # orderings averaged for Maj@K at K below k_max
threads = 0  # torch CPU threads (0: leave as is)

# %%
import gc
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm.auto import tqdm

from dsm_utils import benchmarks as bm
from dsm_utils import evaluation as ev
from dsm_utils import problems, prompts, tracking, training
from dsm_utils.generation import make_generator
from dsm_utils.metrics import binomial_ci
from dsm_utils.models import checkpoint_exists, is_toy_name, load_model
from dsm_utils.tokenizer import default_tokenizer, load_tokenizer

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), notebook="08_evaluation")
training.set_threads(threads)
training.seed_everything(seed)
dev = training.pick_device(device)
pd.set_option("display.max_colwidth", None)
unknown = sorted(set(benchmarks_of) - set(checkpoints))
if unknown:
    raise ValueError(f"benchmarks_of names {unknown}, which are not in checkpoints {checkpoints}")
prompt_files = sorted(set(prompts.FEW_SHOT_PROMPTS.values()) | set(prompts.PAL_PROMPTS.values()))
unknown = sorted(set(n_shot) - set(prompt_files))
if unknown:
    raise ValueError(f"n_shot names {unknown}; DeepSeek-Math's prompt files are: {', '.join(prompt_files)}")
print(f"device {dev}, backend {backend}, {len(checkpoints)} checkpoints × {len(benchmarks)} benchmarks × {len(modes)} modes")


# %% [markdown]
# ## Which models
# `"05_sft"` means the checkpoint in the finished run folder of 05 in this profile (a folder without its
# completion marker counts as missing). A listed checkpoint that does not exist is replaced, once, by a fresh
# toy model.

# %%
def resolve(spec: str) -> tuple[str, str]:
    """(label, source) of a checkpoint entry: a sibling notebook's checkpoint, a path, a hub id or a toy name."""
    m = re.fullmatch(r"(\d\d_\w+)(?:/(.+))?", spec)
    if m:
        sib = run.sibling(m.group(1))
        ckpt = sib / (m.group(2) or "checkpoint")
        return spec, str(ckpt) if tracking.is_complete(sib) else f"{ckpt} (run not finished)"
    p = Path(spec)
    return (p.parent.name if p.name == "checkpoint" else spec.rstrip("/").split("/")[-1]), spec


def shown_source(src: str) -> str:
    """A source as the tables show it: relative to the repository (no machine paths), toy names and hub ids as is."""
    return src if is_toy_name(src) or not Path(src).is_absolute() else tracking.show_path(Path(src))


def looks_available(src: str) -> bool:
    if is_toy_name(src) or checkpoint_exists(src):
        return True
    return src.count("/") == 1 and not src.startswith((".", "/", "~", "runs"))  # a hub id


models, fallback_used = [], []
for spec in checkpoints:
    label, src = resolve(spec)
    if looks_available(src):
        models.append((label, src, benchmarks_of.get(spec, benchmarks)))
    else:
        fallback_used.append(spec)
if fallback_used and not any(s == fallback_model for _, s, _ in models):
    models.append((f"{fallback_model} (fresh)", fallback_model, benchmarks))
shown = [(lb, shown_source(s), ", ".join(bs)) for lb, s, bs in models]
if fallback_used:
    print(f"not found, replaced by a fresh untrained {fallback_model}: {', '.join(fallback_used)}")
pd.DataFrame(shown, columns=["label", "source", "benchmarks"])


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
    if is_toy_name(src):
        kw["max_position_embeddings"] = fallback_context
    model = load_model(src, tokenizer=tok, device=dev, seed=seed, **kw)
    return make_generator("hf", model, tok, batch_size=batch_size), tok


def modes_for(label: str, src: str) -> list[str]:
    if not auto_modes:
        return list(modes)
    row = ev.paper_row_for(f"{label} {src}")
    wanted = ["few_shot_cot", "few_shot_pot"] if row == "DeepSeekMath-Base 7B" else ["zero_shot_cot", "tool"]
    return [m for m in modes if m in wanted]


# %% [markdown]
# ## Greedy accuracy on every benchmark and mode
# One `evaluate` call per model and mode over all its benchmarks (bigger batches); every completion goes to
# `records/<model>__<mode>.jsonl` in the run folder. A benchmark without a DeepSeek-Math prompt in a few-shot
# mode (e.g. PAL exists for GSM8K and MATH only) is skipped and listed.

# %%
item_cache = {b: bm.load_benchmark(b, limit=limit, data_dir=data_dir or None) for b in benchmarks}
rows, curves, skipped = [], {}, []
records_dir = run.path("records")
records_dir.mkdir(exist_ok=True)
bar = tqdm(total=sum(len(modes_for(lb, s)) for lb, s, _ in models), desc="model × mode", unit="eval")
for label, src, bs in models:
    gen, tok = open_generator(src)
    for mode in modes_for(label, src):
        bar.set_postfix_str(f"{label} {mode}")
        use = [b for b in bs if prompts.has_prompt(b, mode)]
        skipped += [(label, b, mode) for b in bs if b not in use]
        all_items = [it for b in use for it in item_cache[b]]
        res = ev.evaluate(gen, all_items, mode, max_new_tokens=max_new_tokens, compat=compat, seed=seed,
                          n_shot=n_shot, max_tool_rounds=max_tool_rounds, sandbox_timeout_s=sandbox_timeout_s,
                          data_dir=data_dir or None, progress=False)
        safe = re.sub(r"[^\w.-]+", "_", label)
        res.records.to_json(records_dir / f"{safe}__{mode}.jsonl", orient="records", lines=True, force_ascii=False)
        for b in use:
            m = ev.summarize(res.records[res.records["benchmark"] == b], n_samples=1)
            k = round(m["accuracy"] * m["n_items"])
            lo, hi = binomial_ci(k, m["n_items"])
            rows.append({"model": label, "source": shown_source(src), "benchmark": b, "mode": mode,
                         "n_items": m["n_items"], "n_correct": k, "accuracy": m["accuracy"], "ci_low": lo,
                         "ci_high": hi, "mean_tokens": m["mean_completion_tokens"], "no_answer": m["n_no_answer"],
                         "grade_timeouts": m["n_grade_timeouts"], "sandbox_timeouts": m["n_sandbox_timeouts"],
                         "sandbox_errors": m["n_sandbox_errors"], "truncated": m["n_truncated"],
                         "n_shot": n_shot.get(prompts.prompt_name(b, mode)) if mode.startswith("few_shot") else None,
                         "by_level": m.get("by_level"), "by_subject": m.get("by_subject")})
        bar.update()
    # Figure 7: k_max samples per item at temperature 0.7
    for b in [b for b in curve_benchmarks if b in bs]:
        items = bm.load_benchmark(b, limit=curve_limit, data_dir=data_dir or None)
        res = ev.evaluate(gen, items, curve_mode, n_samples=k_max, temperature=temperature, top_p=top_p,
                          max_new_tokens=max_new_tokens, compat=compat, seed=seed, maj_orders=maj_orders,
                          n_shot=n_shot, max_tool_rounds=max_tool_rounds, data_dir=data_dir or None, progress=False)
        curves.setdefault(label, {})[b] = {"n_items": len(items), "maj": res.metrics["maj_curve"],
                                           "pass": res.metrics["pass_curve"]}
    del gen
    gc.collect()
bar.close()
results = pd.DataFrame(rows)
if skipped:
    print(f"{len(skipped)} benchmark × mode pairs skipped (no DeepSeek-Math prompt): "
          + ", ".join(sorted({f'{b}/{m}' for _, b, m in skipped})))
# One table: accuracy in % (one decimal) per model and benchmark, one column per mode.
(results.assign(acc=lambda d: (100 * d["accuracy"]).round(1))
 .pivot_table(index=["model", "benchmark"], columns="mode", values="acc", sort=False)
 .rename_axis(columns="accuracy % by mode"))

# %% [markdown]
# Below: the same numbers with their 95 % binomial (Wilson) intervals over `n` items, and the counts of answers
# that could not be read, programs that timed out, and completions cut by `max_new_tokens`.

# %%
pd.set_option("display.width", 200)
detail = results.assign(**{"accuracy %": (100 * results["accuracy"]).round(1),
                           "95 % CI": [f"{100 * lo:.1f}–{100 * hi:.1f}" for lo, hi in zip(results["ci_low"], results["ci_high"])]})
detail = detail[["model", "benchmark", "mode", "n_items", "accuracy %", "95 % CI", "no_answer", "sandbox_timeouts",
                 "truncated"]]
detail.to_csv(run.path("accuracy.csv"), index=False)
if len(detail) > 30:
    print(f"first 30 of {len(detail)} rows; all in {tracking.show_path(run.path('accuracy.csv'))}")
detail.head(30)

# %% [markdown]
# ## Toy world: the rule checker
# The toy instruct models answer the chain-of-thought prompt either in words or with a short program (05 trains
# both behaviours under one prompt; RL in 06 learns which one pays). The zero-shot CoT grader above reads the boxed
# answer only, as DeepSeek-Math's evaluation does, so it counts a program answer as wrong. The toy's rule checker
# (`problems.check_solution`, the RL reward) runs the program instead; 06, 07 and 09's Table 5 use it.

# %%
toy_check = []
for label, _, _ in models:
    safe = re.sub(r"[^\w.-]+", "_", label)
    f = records_dir / f"{safe}__zero_shot_cot.jsonl"
    if not f.exists():
        continue
    rec = pd.read_json(f, lines=True, dtype={"item_id": str})
    for b in [b for b in ("toy", "toy_ood") if b in set(rec["benchmark"])]:
        probs = bm.toy_problems(b, limit=limit)
        r = rec[rec["benchmark"] == b]
        ok = [problems.check_solution(t, probs[i]).correct for t, i in zip(r["completion"], r["item_id"])]
        share = sum(problems.behaviour(t) == "program" for t in r["completion"]) / len(r)
        lo, hi = binomial_ci(sum(ok), len(ok))
        toy_check.append({"model": label, "benchmark": b, "n_items": len(ok),
                          "boxed-answer grader %": round(100 * float(r["correct"].mean()), 1),
                          "rule checker %": round(100 * sum(ok) / len(ok), 1),
                          "95 % CI": f"{100 * lo:.1f}–{100 * hi:.1f}", "program answers %": round(100 * share, 1)})
toy_check = pd.DataFrame(toy_check)
run.log(toy_rule_checker=toy_check.to_dict(orient="records"))
toy_check if len(toy_check) else None

# %% [markdown]
# ## Ours beside the paper
# Only rows that measure what the paper measured: a paper model/mode/benchmark of Tables 2, 3 or 5, evaluated on
# the benchmark's *whole* test split (a subset, MATH-500, or a toy benchmark has no paper number beside it). The
# paper has no toy numbers, so in the smoke and cpu profiles this table is empty by design.

# %%
table = ev.comparison_table(rows)
table.to_csv(run.path("comparison.csv"), index=False)
if table.empty:
    print("no comparable rows in this profile: the paper reports no toy numbers, and no real benchmark was "
          "evaluated on its whole test split with a model the paper reports")
table if len(table) else None

# %% [markdown]
# Accuracy (%) by difficulty: number of steps for the toy problems, level for MATH, grade for CMATH.

# %%
level_rows = [{"model": r["model"], "benchmark": r["benchmark"], "mode": r["mode"], "level": lv,
               "accuracy %": round(100 * v["accuracy"], 1)}
              for r in rows if r["by_level"] for lv, v in r["by_level"].items()]
by_level = pd.DataFrame(level_rows)
(by_level.pivot_table(index=["model", "benchmark", "mode"], columns="level", values="accuracy %").head(40)
 if len(by_level) else by_level)

# %% [markdown]
# ## Greedy accuracy with 95 % intervals

# %%
toy_rows = results[results["benchmark"].str.startswith("toy")] if len(results) else results
fig, axes = plt.subplots(1, max(1, toy_rows["benchmark"].nunique() if len(toy_rows) else 1),
                         figsize=(6 * max(1, toy_rows["benchmark"].nunique() if len(toy_rows) else 1), 3.6),
                         squeeze=False)
for ax, (b, g) in zip(axes[0], toy_rows.groupby("benchmark", sort=False)):
    labels = list(dict.fromkeys(g["model"]))
    mds = list(dict.fromkeys(g["mode"]))
    width = 0.8 / max(1, len(labels))
    for i, lb in enumerate(labels):
        gg = g[g["model"] == lb].set_index("mode").reindex(mds)
        x = [j + i * width for j in range(len(mds))]
        acc = 100 * gg["accuracy"]
        err = [acc - 100 * gg["ci_low"], 100 * gg["ci_high"] - acc]
        ax.bar(x, acc, width, yerr=err, capsize=3, label=lb)
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(mds))], mds, rotation=20, ha="right")
    ax.set(ylabel="greedy accuracy (%)", ylim=(0, 100), title=f"{b} (n = {int(g['n_items'].iat[0])} items)")
    ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
run.savefig(fig, "accuracy.png")
plt.show()

# %% [markdown]
# ## Maj@K and Pass@K (Figure 7)
# Shaded: 95 % binomial interval over the `curve_limit` items.

# %%
fig, axes = plt.subplots(1, max(1, len(curve_benchmarks)), figsize=(6 * max(1, len(curve_benchmarks)), 3.8),
                         squeeze=False)
for ax, b in zip(axes[0], curve_benchmarks):
    for label, per in curves.items():
        if b not in per:
            continue
        n = per[b]["n_items"]
        ks = sorted(int(k) for k in per[b]["maj"])
        for kind, style in (("maj", "-o"), ("pass", "--s")):
            ys = [per[b][kind][k] for k in ks]
            ci = [binomial_ci(round(y * n), n) for y in ys]
            line, = ax.plot(ks, [100 * y for y in ys], style, ms=3, label=f"{label} {kind.capitalize()}@K")
            ax.fill_between(ks, [100 * lo for lo, _ in ci], [100 * hi for _, hi in ci], color=line.get_color(),
                            alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xticks([k for k in (1, 2, 4, 8, 16, 32, 64) if k <= k_max], [str(k) for k in (1, 2, 4, 8, 16, 32, 64) if k <= k_max])
    ax.set(xlabel="K (samples)", ylabel="accuracy (%)", ylim=(0, 100), title=f"{b} ({curve_mode}, T = {temperature})")
    ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
run.savefig(fig, "maj_pass_at_k.png")
plt.show()

# %%
run.finish(evaluations=rows, comparison=table.to_dict("records"), curves=curves,
           skipped=[{"model": m, "benchmark": b, "mode": md} for m, b, md in skipped],
           models=[{"label": lb, "source": shown_source(s), "benchmarks": bs} for lb, s, bs in models],
           fallback_used=fallback_used)
print(f"{len(rows)} evaluations, {len(table)} comparable with the paper; records in "
      f"{tracking.show_path(records_dir)}")
