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
# # 00 · Setup: versions, device, data, the toy world
#
# DeepSeekMath (Shao et al., 2024) trains 7 B models on 120 B math tokens. This reproduction runs the same
# pipeline at four scales (profiles `smoke`, `cpu`, `gpu`, `cluster`). On a CPU there is no model hub, so the
# toy world trains tiny Llama models from scratch on generated word problems. This notebook checks the
# machine and the data, trains the toy tokenizer (byte-level BPE with numbers split into single digits, as the
# DeepSeek tokenizers that DeepSeekMath inherits through DeepSeek-Coder-Base-v1.5 do), and runs a short (1–2
# minute) sanity training that must reach a stated accuracy.

# %% tags=["parameters"]
run_dir = "runs/local/00_setup"  # the runner sets runs/<profile>/00_setup
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
device = "auto"  # one of: "auto", "cpu", "cuda", "mps"
threads = 1  # tiny models gain little from more threads, and oversubscribed cores slow torch down badly
require_data = True  # fail if a benchmark or corpus file is missing
tokenizer_vocab = 2048
tokenizer_problems = 3000  # generated problems in the tokenizer's training text
tokenizer_code_chars = 400000  # characters of Python stdlib source in it
sanity_model = "llama-1m"  # one of: "llama-1m", "llama-3m", "llama-10m", "llama-30m", "llama-100m"
sanity_steps = 400
sanity_batch = 32
sanity_lr = 0.003
sanity_train_problems = 5000
sanity_eval_problems = 100
min_accuracy = 0.3  # the sanity model must reach this greedy accuracy on 1-step problems (0.49 measured; chance ~3 %)

# %%
import os
import platform

import matplotlib.pyplot as plt
import pandas as pd

from dsm_utils import data, generation, models, problems, tokenizer, tracking, training
from dsm_utils.metrics import binomial_ci

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), notebook="00_setup")
training.seed_everything(seed)
training.set_threads(threads)
dev = training.pick_device(device)

# %% [markdown]
# ## Versions and device

# %%
import importlib.metadata as md


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


versions = {"python": platform.python_version(), "platform": platform.platform()}
versions.update({p: _version(p) for p in ("torch", "transformers", "tokenizers", "trl", "datatrove", "papermill",
                                         "vllm", "deepspeed", "sympy", "latex2sympy2_extended")})
versions["device"] = dev
pd.DataFrame(versions.items(), columns=["component", "version"])

# %% [markdown]
# ## Data dir
# One setting, `DSM_DATA_DIR`, locates every benchmark and corpus file (`python -m dsm_utils.data fetch`
# downloads the public originals). Each expected file must be present with its documented record count.

# %%
check = pd.DataFrame(data.check(data_dir))
for col in ("records", "expected"):
    check[col] = check[col].astype("Int64")  # counts are integers (None for binary files)
check.to_csv(run.path("data_check.csv"), index=False)
missing = check[~check["ok"]]
if require_data and len(missing):
    raise FileNotFoundError(f"data files missing or with the wrong record count: {missing['file'].tolist()}; "
                            "run `python -m dsm_utils.data fetch` or set DSM_DATA_DIR")
where = "$DSM_DATA_DIR" if (data_dir == "" and data.ENV_VAR in os.environ) else (data_dir or "./data")
print(f"{int(check['ok'].sum())} of {len(check)} data files present with their documented record counts "
      f"(data dir {where}; the list: {tracking.show_path(run.path('data_check.csv'))})")
missing[["file", "records", "expected", "what"]] if len(missing) else None

# %% [markdown]
# ## The toy tokenizer
# Byte-level BPE with digits split one by one: `1234` is always four tokens, so arithmetic sees a fixed
# per-digit vocabulary (the DeepSeek tokenizer does the same).

# %%
tok = tokenizer.train_tokenizer(
    tokenizer.toy_corpus(n_problems=tokenizer_problems, seed=seed, code_chars=tokenizer_code_chars, data_dir=data_dir or None),
    run.path("tokenizer"), vocab_size=tokenizer_vocab)
sample = "Ada has 1234 apples. 1234 + 56 = 1290"
pieces = tok.tokenize(sample)
print(f"{len(tok)} tokens in the vocabulary; {sample!r} is {len(pieces)} tokens: {' · '.join(pieces)}")

# %% [markdown]
# ## The toy world
# Word problems of 1–5 arithmetic steps; the chain-of-thought solution has one checkable equation per line,
# the program-of-thought solution prints the answer, and the step checker is the rule-based reward.

# %%
ex = problems.generate(1, seed=seed)[0]
print(problems.chat_prompt(ex.question))
print(ex.cot)
print(ex.pot)
print("step rewards:", problems.check_solution(ex.cot, ex).step_rewards)

# %% [markdown]
# ## Sanity training
# A tiny model trained for 1–2 minutes on one-step problems must reach `min_accuracy` greedy accuracy on
# held-out problems: this checks tokenizer, model factory, loss masking, training loop and generation together.

# %%
easy = problems.Difficulty(min_steps=1, max_steps=1, ops=("+", "-"))
train_set = problems.generate(sanity_train_problems, seed=seed + 1, difficulty=easy, prefix="sanity-train")
seen = {p.question for p in train_set}
test_set = [p for p in problems.generate(sanity_eval_problems * 2, seed=seed + 2, difficulty=easy, prefix="sanity-test")
            if p.question not in seen][:sanity_eval_problems]
examples = [training.Example(problems.chat_prompt(p.question, ""), " " + p.cot) for p in train_set]
model = models.load_model(sanity_model, tok, seed=seed)
summary = models.model_summary(model)
print(f"{sanity_model}: {summary['layers']} layers, hidden {summary['hidden']}, {summary['params_m']} M parameters")
history = training.train_lm(model, training.sft_batches(tok, examples, sanity_batch, 96, seed=seed), steps=sanity_steps,
                            lr=sanity_lr, warmup=20, device=dev, desc="sanity")

gen = generation.HFGenerator(model, tok, batch_size=100)
outs = gen.generate([problems.chat_prompt(p.question, "") for p in test_set], generation.SamplingConfig(max_new_tokens=32))
accuracy = sum(problems.outcome_reward(o[0].text, p) for o, p in zip(outs, test_set)) / len(test_set)

fig, ax = plt.subplots(figsize=(5, 3))
h = pd.DataFrame(history)
ax.plot(h["step"], h["loss"])
ax.set(xlabel="step", ylabel="loss (answer tokens)", title=f"sanity training: accuracy {accuracy:.0%}")
run.savefig(fig, "sanity_loss.png")
lo, hi = binomial_ci(round(accuracy * len(test_set)), len(test_set))
print(f"greedy accuracy on {len(test_set)} held-out 1-step problems: {accuracy:.0%} "
      f"(95 % CI {lo:.0%}–{hi:.0%}; required >= {min_accuracy:.0%})")

# %%
assert accuracy >= min_accuracy, f"sanity accuracy {accuracy:.2f} below min_accuracy={min_accuracy}"
run.finish(versions=versions, device=dev, data_files_ok=int(check["ok"].sum()), data_files=len(check),
           tokenizer_path=tracking.show_path(run.path("tokenizer")), vocab_size=len(tok), sanity_accuracy=accuracy,
           sanity_ci=[lo, hi], sanity_n=len(test_set), sanity_final_loss=history[-1]["loss"],
           sanity_params_m=summary["params_m"])
