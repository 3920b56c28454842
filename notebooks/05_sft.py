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
# # 05 · Supervised fine-tuning: DeepSeekMath-Instruct (DeepSeekMath §3.1)
#
# > "We construct a mathematical instruction-tuning dataset covering English and Chinese problems from
# > different mathematical fields and of varying complexity levels: problems are paired with solutions in
# > chain-of-thought (CoT) (Wei et al., 2022), program-of-thought (PoT) (Chen et al., 2022; Gao et al., 2023),
# > and tool-integrated reasoning format (Gou et al., 2023). The total number of training examples is 776K."
# > — §3.1
#
# Training (§3.1, paraphrased): DeepSeekMath-Instruct 7B is fine-tuned from DeepSeekMath-Base 7B for 500 steps
# with batch size 256 and a constant learning rate of 5e-5, training examples concatenated up to a 4K context.
#
# The three formats, in the chat form the paper evaluates instruct models with
# (`User: {q}\n{instruction}\n\nAssistant:`):
#
# | format | completion | answer |
# |---|---|---|
# | CoT | one equation per line, then `The answer is \boxed{a}.` | the boxed value |
# | PoT | a ```` ```python ```` program | what it prints (run in the sandbox) |
# | tool-integrated | a line of reasoning, a program, its ```` ```output ````, then the boxed answer | the boxed value; at inference the program really runs and its output is fed back |
#
# The loss is on the answer tokens only: the prompt is masked, and in the tool format so is the program's
# output (the interpreter writes it, not the model — as in ToRA). This notebook writes the **instruct
# checkpoint** `runs/<profile>/05_sft/checkpoint` that the RL notebooks (06, 07) start from.
#
# **Toy world (cpu profile): two behaviours under one prompt.** A 1 M-parameter Llama trained from scratch on
# generated word problems. Its SFT data mixes, under the *same* CoT prompt, chain-of-thought with mental
# arithmetic (75 %) and a short program whose printed value is the answer (25 %, `sft.program_record`; the
# program is run by `problems.run_program`, a restricted evaluator of the toy's straight-line programs that
# stands in for the sandbox). Why: with CoT alone, the tiny model's RL gains were within noise (issue 8);
# after Zhao et al. 2025 ("Echo Chamber", arXiv 2504.07912), a model that has learned several behaviours lets
# RL show its effect — it learns which behaviour pays. The SFT model decodes greedily with CoT (the majority
# behaviour) but samples a program about a quarter of the time, and programs are right several times as often
# (the table at the end). 600 steps at lr 3e-3 (the earlier toy's setting) were checked on the validation
# split (`toyval`: greedy 0.16, programs in a quarter of the samples) before any test number was read; the test
# (`toyeval`, 500 items) and OOD (`toyood`, 500) splits only give reported numbers, graded by the same rule
# checker as 06 and 07 (`rl.toy_eval`). **gpu profile.** A real base model on the GSM8K and MATH train
# solutions (CoT), evaluated with `evaluation.evaluate`.

# %% tags=["parameters"]
run_dir = "runs/local/05_sft"  # the runner sets runs/<profile>/05_sft
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
device = "auto"  # one of: "auto", "cpu", "cuda", "mps"
threads = 1  # torch CPU threads (0: leave as is); 1 avoids oversubscription on shared cores
init_from = "llama-1m"  # toy name (from scratch), a checkpoint folder (e.g. a pre-trained toy run) or a hub id
tokenizer_name = ""  # empty: the checkpoint's own tokenizer, or the toy tokenizer for toy names
data = "toy"  # one of: "toy", "real"; "toy": generated word problems; "real": GSM8K + MATH train solutions (CoT)
n_train = 20000  # toy problems to generate for SFT
max_real_examples = 0  # "real": cap on GSM8K+MATH examples (0: all)
format_mix = {"cot": 0.75, "program": 0.25}  # each one of: "cot", "pot", "tool", "program"; share of each solution format (program: under the CoT prompt)
steps = 300
batch_size = 32
lr = 3e-3
warmup = 20
max_len = 192
backend = "ours"  # one of: "ours", "trl"; "ours": training.train_lm; "trl": TRL SFTTrainer (gpu)
checkpoint_every = 100  # our backend: save the training state every N steps (0: off); a rerun after a kill resumes from it
global_batch_size = 0  # backend "trl": examples per optimizer step over all processes, by gradient accumulation (0: batch_size x processes); paper 256
lr_scheduler = "cosine"  # one of: "cosine", "constant"; backend "trl" (the paper: constant 5e-5)
packing = False  # backend "trl": concatenate examples into max_len rows (the paper: 4K)
num_processes = 1  # backend "trl": more than 1 runs accelerate launch through dsm_utils.launch
accelerate_config = ""  # empty: in-process; a name under params/<profile>/accelerate/ (cpu, ddp, fsdp, zero2, zero3) or a yaml path
eval_every = 100  # greedy accuracy on eval_items validation problems during training (0: off)
eval_items = 200
n_val = 300  # toy validation items (choices of steps / lr / mix are made on these)
n_test = 500  # toy test items for the final evaluation (in-distribution)
n_test_ood = 500  # toy_ood items
max_new_tokens = 96
eval_batch_size = 64
k_samples = 16  # samples per item for Maj@K / Pass@K (0: skip; the toy profiles let 06 do it in parallel)
n_k_items = 100  # items for Maj@K / Pass@K
n_mix_items = 100  # toy: validation items x mix_samples samples to measure the behaviour mix
mix_samples = 8
temperature = 0.7
gen_backend = "hf"  # one of: "hf", "vllm"; vllm needs a GPU

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

from dsm_utils import benchmarks, evaluation, models, problems, repo_path, rl, sft, tracking, training
from dsm_utils.generation import HFGenerator, SamplingConfig
from dsm_utils.tokenizer import default_tokenizer, load_tokenizer

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), notebook="05_sft",
                         keep=["train_state*"] if backend == "ours" else [])  # a killed run's state, to resume
training.seed_everything(seed)
n_threads = training.set_threads(threads)
dev = training.pick_device(device)
t_start = time.time()
print(f"run folder {tracking.show_path(run.dir)} · device {dev} · {n_threads} threads")

# %% [markdown]
# ## Model and tokenizer
# `init_from` is a toy name (fresh weights), a checkpoint folder (e.g. the toy model pre-trained on the
# math corpus by an earlier notebook) or a hub id (`deepseek-ai/deepseek-math-7b-base`, a small Qwen).

# %%
def resolve_init(name: str) -> str:
    """A sibling notebook name (``"02_pretrain"``) means its checkpoint in this profile."""
    sib = run.sibling(name) / "checkpoint"
    return str(sib) if tracking.is_complete(run.sibling(name)) and models.checkpoint_exists(sib) else name


init_src = resolve_init(init_from)
if tokenizer_name:
    tok = load_tokenizer(tokenizer_name)
elif models.is_toy_name(init_src):
    tok = default_tokenizer()
elif (repo_path(init_src) / "tokenizer.json").exists() or "/" in init_src:
    tok = load_tokenizer(init_src)
else:
    tok = default_tokenizer()
dtype = torch.bfloat16 if (dev == "cuda" and not models.is_toy_name(init_src)) else None
model = models.load_model(init_src, tok, dtype=dtype, seed=seed).to(dev)
summary = models.model_summary(model)
print(f"{tracking.show_path(init_src) if init_src != init_from else init_src}: {summary['params_m']} M parameters, {summary['layers']} layers, hidden {summary['hidden']}")

# %% [markdown]
# ## The instruction-tuning data in three formats
# Toy: problems from the generator's `sft` stream (the test sets use other streams). Each problem gets one
# format, drawn with the weights of `format_mix`. Real data: GSM8K train (calculator annotations dropped,
# `#### a` → `\boxed{a}`) and MATH train, CoT only.

# %%
if data == "toy":
    train_problems = problems.generate(n_train, seed=seed, prefix="sft")
    records = sft.build_records(train_problems, format_mix, seed=seed)
elif data == "real":
    from dsm_utils import data as dsm_data

    gsm = dsm_data.read_jsonl(dsm_data.require("gsm8k/openai_train.jsonl", data_dir or None))
    mth = dsm_data.read_jsonl(dsm_data.require("math/train.jsonl", data_dir or None))
    records = [sft.gsm8k_record(r) for r in gsm] + [sft.math_record(r) for r in mth]
    import random as _random

    _random.Random(seed).shuffle(records)
    if max_real_examples:
        records = records[:max_real_examples]
else:
    raise ValueError(f"data={data!r}: valid values are 'toy', 'real'")

fmt_counts = pd.Series([r.fmt for r in records]).value_counts().rename("examples")
display(fmt_counts.to_frame())
for f in sft.FORMATS:
    ex = next((r for r in records if r.fmt == f), None)
    if ex is not None:
        print(f"──── {f} ────\n{ex.prompt}{ex.completion}")

# %% [markdown]
# **Loss on the answer only.** Below, one tool-integrated example token by token: `·` marks tokens with
# label −100 (prompt, and the interpreter's output), the rest are trained.

# %%
ex = next((r for r in records if r.fmt == "tool"), next((r for r in records if r.fmt == "program"), records[0]))
ids, labels = sft.encode_record(tok, ex, max_len=10_000)
shown = "".join((tok.decode([i]) if l != training.IGNORE_INDEX else "·") for i, l in zip(ids, labels))
print(shown)
n_trained = sum(l != training.IGNORE_INDEX for l in labels)
print(f"\n{n_trained} of {len(ids)} tokens carry loss")
lens = pd.Series([len(sft.encode_record(tok, r, 100_000)[0]) for r in records[:2000]])
d_ = lens.describe()
print(f"tokens per example: mean {d_['mean']:.1f}, median {d_['50%']:.0f}, max {d_['max']:.0f} · max_len {max_len}")

# %% [markdown]
# ## Training
# **Why a plain loop.** `training.train_lm` is ~40 lines (AdamW, warmup + cosine, grad clipping). On 2 CPU
# cores and a 1 M-parameter model a step is dominated by the forward/backward itself; TRL's `SFTTrainer`
# adds dataset preparation, packing and logging machinery but no speed, and hides the masking this
# notebook wants to show. The `gpu` profile may switch to `SFTTrainer` with `backend="trl"` (same records,
# prompt/completion format so TRL masks the prompt too).
#
# During training the greedy accuracy on `eval_items` validation problems is tracked (toy: the rule checker,
# whichever behaviour the model picks; real data: GSM8K test items, CoT).

# %%
test_name, ood_name = ("toy", "toy_ood") if data == "toy" else ("gsm8k", "math")
if data == "toy":
    val_probs, test_probs, ood_probs = (rl.split_problems(n, k) for n, k in
                                        (("val", n_val), ("test", n_test), ("ood", n_test_ood)))
else:
    test_items = benchmarks.load_benchmark(test_name, limit=n_test, data_dir=data_dir or None)
    ood_items = benchmarks.load_benchmark(ood_name, limit=n_test_ood, data_dir=data_dir or None)


def make_generator(m):
    return HFGenerator(m, tok, batch_size=eval_batch_size, device=dev)


def quick_accuracy(m, n=None) -> float:
    """Greedy accuracy during training: toy = `rl.toy_eval` on validation items; real = CoT on test items."""
    if data == "toy":
        return rl.toy_eval(m, tok, val_probs[:n], max_new_tokens=max_new_tokens)["acc"]
    res = evaluation.evaluate(make_generator(m), test_items[:n], "zero_shot_cot", max_new_tokens=max_new_tokens,
                              progress=False)
    return res.metrics["accuracy"]


curve = []


def on_step(step: int, loss: float) -> None:
    if eval_every and (step % eval_every == 0 or step == steps):
        acc = quick_accuracy(model, eval_items)
        curve.append({"step": step, "accuracy": acc})
        model.train()


t0 = time.time()
if backend == "ours":
    batches = sft.record_batches(tok, records, batch_size, max_len, seed=seed)
    # resumes from a killed run's state when one with the same parameters is there (curve saved with it)
    ckpting = training.Checkpointing(run.path("train_state"), checkpoint_every,
                                     training.params_key(run.params, exclude=("run_dir", "checkpoint_every")),
                                     lists={"curve": curve})
    history = training.train_lm(model, batches, steps, lr=lr, warmup=warmup, device=dev, log_every=10,
                                callback=on_step, desc="sft", checkpointing=ckpting)
    if ckpting.resumed_from:
        print(f"resumed from step {ckpting.resumed_from} of {steps}")
elif backend == "trl":
    from dsm_utils import launch

    res = launch.launch(
        "sft_trl", dict(init_from=init_src, tokenizer_name=tokenizer_name, steps=steps, batch_size=batch_size,
                        global_batch_size=global_batch_size, lr=lr, warmup=warmup, lr_scheduler=lr_scheduler,
                        max_len=max_len, packing=packing, seed=seed, threads=threads, logging_steps=max(1, steps // 50)),
        run.path("trl"), num_processes=num_processes, config=accelerate_config or None, profile=run.dir.parent.name,
        records=[{"prompt": r.prompt, "completion": r.completion} for r in records], model=model, tokenizer=tok)
    if res.checkpoint is not None:  # trained in other processes: load what they saved
        model = models.load_model(res.checkpoint, tok, dtype=dtype).to(dev)
    history = res.metrics["loss_curve"]
    model.eval()
    on_step(steps, history[-1]["loss"] if history else float("nan"))
else:
    raise ValueError(f"backend={backend!r}: valid values are 'ours', 'trl'")
train_s = time.time() - t0
hist = pd.DataFrame(history)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(hist["step"], hist["loss"])
axes[0].set(xlabel="step", ylabel="train loss (answer tokens)", title="SFT loss")
if curve:
    cdf = pd.DataFrame(curve)
    axes[1].plot(cdf["step"], cdf["accuracy"], marker="o")
axes[1].set(xlabel="step", ylabel="greedy accuracy", title=f"validation ({eval_items} items)", ylim=(0, 1))
fig.tight_layout()
run.savefig(fig, "sft_curves.png")
plt.show()
run.log(steps=steps, train_seconds=round(train_s, 1), model=summary, init_from=init_src,
        resumed_from_step=ckpting.resumed_from if backend == "ours" else 0,
        n_examples=len(records), format_counts=fmt_counts.to_dict(), loss_curve=history, accuracy_curve=curve);

# %% [markdown]
# ## The instruct checkpoint
# Saved atomically with its tokenizer; 06 and 07 load it with `run.require_sibling("05_sft") / "checkpoint"`.

# %%
ckpt = training.save_checkpoint(run.path("checkpoint"), model, tok, state={"step": steps, "notebook": "05_sft"})
print(f"saved {tracking.show_path(ckpt)}")

# %% [markdown]
# ## Evaluation
# **Toy:** greedy decoding under the one prompt, graded by the rule checker (`rl.toy_eval`: the boxed answer of
# CoT, the printed value of a program) on the validation, test and OOD splits — the grader and items 06/07 use
# for the RL models, so SFT and RL numbers are measured the same way. Then the behaviour mix: `mix_samples`
# samples at temperature `temperature` on `n_mix_items` validation items, with each behaviour's accuracy.
# **Real data:** greedy CoT with `evaluation.evaluate`.

# %%
rows, greedy = [], {}
if data == "toy":
    model.eval()
    for name, probs in (("val", val_probs), ("test", test_probs), ("ood", ood_probs)):
        e = rl.toy_eval(model, tok, probs, max_new_tokens=rl.split_tokens(name, max_new_tokens))
        rows.append({"split": name, "items": len(probs), "greedy accuracy": e["acc"],
                     "program share": e["program_share"]})
        greedy[name] = e["acc"]
    display(pd.DataFrame(rows).set_index("split").round(3))
    mix_probs = val_probs[:n_mix_items]
    ids = rl.sample(model, tok, [problems.chat_prompt(p.question) for p in mix_probs], n=mix_samples,
                    max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    texts = tok.batch_decode(ids, skip_special_tokens=True)
    mix = pd.DataFrame({"behaviour": [problems.behaviour(t) for t in texts],
                        "correct": [problems.check_solution(t, p).correct
                                    for t, p in zip(texts, [p for p in mix_probs for _ in range(mix_samples)])]})
    mix_table = mix.groupby("behaviour")["correct"].agg(["count", "mean"]).rename(
        columns={"count": "samples", "mean": "accuracy"})
    mix_table["share"] = mix_table["samples"] / len(mix)
    display(mix_table.round(3))
    run.log(greedy=greedy, greedy_table=rows, greedy_test_acc=greedy["test"], greedy_ood_acc=greedy["ood"],
            greedy_cot_accuracy=greedy["test"],  # the one (CoT) prompt, whichever behaviour the model picks
            greedy_val_acc=greedy["val"], behaviour_mix=mix_table.reset_index().to_dict(orient="records"),
            n_test=n_test, n_test_ood=n_test_ood);
else:
    if gen_backend == "vllm":
        from dsm_utils.generation import VLLMGenerator

        gen = VLLMGenerator(str(ckpt))
    else:
        gen = make_generator(model)
    for name, items in ((test_name, test_items), (ood_name, ood_items)):
        res = evaluation.evaluate(gen, items, "zero_shot_cot", max_new_tokens=max_new_tokens, progress=False)
        rows.append({"benchmark": name, "accuracy": res.metrics["accuracy"], "items": res.metrics["n_items"]})
        greedy[name] = res.metrics["accuracy"]
    display(pd.DataFrame(rows).set_index("benchmark").round(3))
    run.log(greedy=greedy, greedy_table=rows, greedy_test_acc=greedy[test_name]);

# %% [markdown]
# Maj@K and Pass@K of the SFT model (`k_samples` > 1; the toy profiles leave this to 06, which runs it in
# parallel with the RL seeds on the same 500 test items and renders it in 07's Figure 7).

# %%
maj = pas = None
if k_samples > 1 and data == "toy":
    kr = rl.toy_eval(model, tok, test_probs[:n_k_items], n=k_samples, temperature=temperature,
                     max_new_tokens=max_new_tokens, seed=seed, ks=[k for k in (1, 2, 4, 8, 16, 32, 64) if k <= k_samples])
    maj, pas = kr["maj"], kr["pass"]
elif k_samples > 1:
    kres = evaluation.evaluate(make_generator(model), test_items[:n_k_items], "zero_shot_cot", n_samples=k_samples,
                               temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, progress=True)
    maj, pas = kres.metrics["maj_curve"], kres.metrics["pass_curve"]
if maj:
    kdf = pd.DataFrame({"K": list(maj), "Maj@K": list(maj.values()), "Pass@K": [pas[k] for k in maj]})
    display(kdf.set_index("K").round(3).T)
    run.log(maj_at_k={str(k): v for k, v in maj.items()}, pass_at_k={str(k): v for k, v in pas.items()},
            k_samples=k_samples, temperature=temperature);
run.finish(total_seconds=round(time.time() - t_start, 1))

# %% [markdown]
# ## Summary
# The numbers the later notebooks and the final tables read from `metrics.json` (`greedy`, `greedy_test_acc`,
# `behaviour_mix`, the training curve); the checkpoint is `runs/<profile>/05_sft/checkpoint`.

# %%
pd.Series({"params (M)": summary["params_m"], "steps": steps, "train s": round(train_s),
           **{f"greedy ({k})": round(v, 3) for k, v in greedy.items()}}).to_frame("value")
