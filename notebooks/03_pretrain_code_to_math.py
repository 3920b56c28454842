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
# # 03 · Code training before math training (DeepSeekMath §5.1.1, Tables 6–7)
#
# §5.1.1 of the paper asks whether code training helps mathematical reasoning. Starting from DeepSeek-LLM 1.3B it
# compares two-stage training (400B tokens of general or of code data, then 150B of math) with one-stage training
# (150B of math only, or code and math mixed in one stage). In Table 6, code → math gives the best math accuracy
# without tools, and the mixed one-stage run is best with Python tools but worse without them; Table 7 shows
# that the mixed run keeps coding ability (HumanEval, MBPP) that the two-stage code → math run loses.
# Same recipe as 02 (AdamW β = (0.9, 0.95), weight decay 0.1, the multi-step schedule):
#
# $$\eta(t) = \eta_{\max}\cdot\begin{cases} \frac{t+1}{T_w} & t < T_w \\ 1 & T_w \le t < 0.8\,T \\
# 0.316 & 0.8\,T \le t < 0.9\,T \\ 0.1 & t \ge 0.9\,T \end{cases}$$
#
# **Toy world.** The same general base as 02 (the stand-in for DeepSeek-LLM 1.3B), then:
#
# | arm | paper row (Table 6) | stages after the base |
# |---|---|---|
# | base | No Continual Training | — |
# | general → math | General Training → Math Training | random-CC text (`general_tokens`), then the DSM corpus (`math_tokens`) |
# | code → math | Code Training → Math Training | stdlib code (`general_tokens`), then the DSM corpus |
# | math only | Math Training | the DSM corpus (= 02's DSM-corpus arm, read back from its run) |
# | code only | (Table 7's code-training row) | stdlib code (= stage 1 of code → math) |
# | code & math mixed | Code & Math Mixed Training | code and DSM corpus shuffled together, `general_tokens + math_tokens` |
#
# Metrics as in 02: held-out bits per byte on GSM8K + MATH **test** solutions (math) and on unseen stdlib files
# (code: our stand-in for HumanEval/MBPP); the learning rate is 02's, chosen there on the validation split; toy
# few-shot accuracy.

# %% tags=["parameters"]
run_dir = "runs/local/03_pretrain_code_to_math"  # the runner sets runs/<profile>/03_pretrain_code_to_math
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seeds = [0, 1, 2]
model = "llama-1m"  # toy name, checkpoint path or hub id (trained from its own weights)
tokenizer_name = ""  # empty: the toy tokenizer
base_model = ""  # empty: pre-train the general base here (same run as 02's); else a path / hub id used as-is
seq_len = 128
batch_size = 16  # sequences per process and step
grad_accum = 1
lr = 0.002
warmup_frac = 0.05
base_tokens = 150000  # general pre-training of the base (same as 02)
general_tokens = 150000  # stage 1 of the two-stage arms (paper: 400B)
math_tokens = 100000  # math stage (paper: 150B)
source_max_tokens = 1000000
n_eval_math = 60
n_eval_code = 24
eval_max_len = 512
fewshot_benchmarks = ["toy"]
fewshot_items = 20
fewshot_max_new_tokens = 64
fewshot_n_shot = {"cot_gsm_8_shot": 2}  # exemplars kept per DeepSeek-Math prompt file (its first 2 of 8 fit the toy models' 512 positions)
processes = 2
threads = 1
device = "cpu"
mixed_precision = "no"
launch_cmd = ""
ckpt_every = 0

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Code

from dsm_utils import findings, pretrain, tracking
from dsm_utils.tokenizer import DEFAULT_CACHE, default_tokenizer, load_tokenizer

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
CACHE = run.dir.parent / "_pretrain"  # shared with 02 and 04: the same params are the same run
CORPUS_RUN = run.sibling("01_math_corpus")
pretrain.math_corpus_path(CORPUS_RUN)
tok = load_tokenizer(tokenizer_name) if tokenizer_name else default_tokenizer()
TOK = tokenizer_name or DEFAULT_CACHE
DD = data_dir or None

# %% [markdown]
# A mixed run draws its blocks from each source in proportion to its weight (here `general_tokens : math_tokens`),
# repeating a source that is too small, and shuffles the whole order:

# %%
Code(inspect.getsource(pretrain.mixture_order), language="python")

# %% [markdown]
# ## Sources and evaluation sets

# %%
SOURCES = ["random_cc", "code", "dsm_corpus"]
budgets = {"random_cc": base_tokens + general_tokens, "code": general_tokens, "dsm_corpus": math_tokens}
DATA, sizes_df = pretrain.prepare_sources(budgets, tok, seq_len, source_max_tokens, CACHE, CORPUS_RUN, DD)
EVAL = pretrain.prepare_evals(n_eval_math, n_eval_code, CACHE, DD)
sizes_df

# %% [markdown]
# ## Training every arm × seed (runs shared with 02 are read back)

# %%
common = dict(tokenizer=TOK, seq_len=seq_len, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
              warmup_frac=warmup_frac, weight_decay=0.1, betas=[0.9, 0.95], device=device,
              mixed_precision=mixed_precision, threads=threads, ckpt_every=ckpt_every, eval=EVAL,
              eval_max_len=eval_max_len,
              fewshot={"benchmarks": fewshot_benchmarks, "n_items": fewshot_items,
                       "max_new_tokens": fewshot_max_new_tokens, "n_shot": fewshot_n_shot})
ARMS = {"base": "base (no continual training)", "general_math": "general → math", "code_math": "code → math",
        "math_only": "math only", "code_only": "code only", "code_math_mixed": "code & math mixed"}
jobs, arm_jobs = [], {a: [] for a in ARMS}


def stage(name: str, s: int, start, data: dict, tokens: int, data_seed: int, evaluate: bool = True) -> pretrain.Job:
    extra = {} if evaluate else {"eval": {}, "fewshot": {}}  # an intermediate stage that is no arm
    j = pretrain.job(f"{name}-s{s}", dict(common, model=pretrain.model_of(start), data=data, tokens=tokens, seed=s,
                                          data_seed=data_seed, **extra), CACHE, after=[start])
    jobs.append(j)
    return j


for s in seeds:
    base = pretrain.base_job(s, common, CACHE, base_model=base_model, model=model, general_data=DATA["random_cc"],
                             base_tokens=base_tokens)
    jobs.append(base)
    general = stage("general", s, base, {DATA["random_cc"]: 1.0}, general_tokens, 1000 * s + 2, evaluate=False)
    code = stage("code", s, base, {DATA["code"]: 1.0}, general_tokens, 1000 * s + 3)
    picks = {"base": base, "code_only": code,
             "general_math": stage("general_math", s, general, {DATA["dsm_corpus"]: 1.0}, math_tokens, 1000 * s + 1),
             "code_math": stage("code_math", s, code, {DATA["dsm_corpus"]: 1.0}, math_tokens, 1000 * s + 1),
             "math_only": stage("dsm_corpus", s, base, {DATA["dsm_corpus"]: 1.0}, math_tokens, 1000 * s + 1),
             "code_math_mixed": stage("code_math_mixed", s, base,
                                      {DATA["code"]: float(general_tokens), DATA["dsm_corpus"]: float(math_tokens)},
                                      general_tokens + math_tokens, 1000 * s + 4)}
    for a, j in picks.items():
        arm_jobs[a].append(j.name)
results = pretrain.run_jobs(jobs, processes=processes, launch_cmd=launch_cmd)
arms = pretrain.collect_arms(results, arm_jobs, ARMS)
run.log(arms=arms, sources=sizes_df.to_dict(orient="records"), tokens_per_s=[r.get("tokens_per_s") for r in results.values()]);

# %% [markdown]
# ## Tables 6–7: ours beside the paper's
#
# Ours: mean over seeds ± half the 95 % seed interval (bits per byte, lower is better). The paper's columns
# (`pretrain.PAPER_TABLE6`) are few-shot accuracies (%) without tools (GSM8K, MATH, CMATH) and with Python
# (GSM8K+Python, MATH+Python). Table 7's numbers (MMLU, BBH, HumanEval, MBPP) are not stored: we were not sure
# enough of them (the paper could not be consulted offline); its direction (mixed training keeps coding ability, two-stage code →
# math loses it) is tested below on code bits per byte.

# %%
pretrain.arms_table(arms)

# %%
pretrain.paper_vs_ours(run.metrics, "table6")

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for k, (a, label) in enumerate(ARMS.items()):
    x, y = np.array(arms[a]["code_bpb"], float), np.array(arms[a]["math_bpb"], float)
    ax.errorbar(x.mean(), y.mean(), xerr=x.std(ddof=1) if len(x) > 1 else 0, yerr=y.std(ddof=1) if len(y) > 1 else 0,
                fmt="o", color=f"C{k}", capsize=3, label=label)
    ax.plot(x, y, ".", color=f"C{k}", alpha=0.4)
ax.set(xlabel="code bits per byte (unseen stdlib)", ylabel="math bits per byte (GSM8K + MATH test)",
       title="math vs code ability per arm (lower-left is better)")
ax.legend(fontsize=8)
run.savefig(fig, "math_vs_code_bpb.png");

# %% [markdown]
# ## Findings (95 % intervals over seeds, paired by seed)

# %%
src6, src7 = pretrain.PAPER_SOURCES["table6"], pretrain.PAPER_SOURCES["table7"]
mb = {a: arms[a]["math_bpb"] for a in ARMS}
cb = {a: arms[a]["code_bpb"] for a in ARMS}
kw = dict(paired=True, proportion=False)
rows = [findings.finding("code → math < general → math in held-out math bits per byte", mb["code_math"],
                         mb["general_math"], direction="decrease", source=src6, **kw),
        findings.finding("code → math < math only in held-out math bits per byte", mb["code_math"], mb["math_only"],
                         direction="decrease", source=src6, **kw),
        findings.finding("code & math mixed > code → math in held-out math bits per byte (mixed is worse at math "
                         "without tools)", mb["code_math_mixed"], mb["code_math"], direction="increase", source=src6,
                         **kw),
        findings.finding("code & math mixed < code → math in code bits per byte (mixed keeps coding ability)",
                         cb["code_math_mixed"], cb["code_math"], direction="decrease", source=src7, **kw),
        findings.finding("code → math > code only in code bits per byte (math training after code loses some code "
                         "ability)", cb["code_math"], cb["code_only"], direction="increase", source=src7, **kw)]
acc = {a: arms[a]["toy_acc"] for a in ARMS}
# accuracies all at 0 % are a floor (the toy models cannot solve the problems), not evidence either way
if all(acc.values()) and max(max(v) for v in acc.values()) > 0:
    rows.append(findings.finding(f"code → math > general → math ({arms['base']['toy_benchmark']} few-shot accuracy)",
                                 acc["code_math"], acc["general_math"], arms["base"]["toy_n"], direction="increase",
                                 paired=True, source=src6))
run.log(findings=[f.to_dict() for f in rows]);
pd.DataFrame([f.to_dict() for f in rows])

# %% [markdown]
# ## Loss curves of the two-stage arms

# %%
fig, ax = plt.subplots(figsize=(7, 3))
for a, c in (("general_math", "C1"), ("code_math", "C2"), ("math_only", "C3"), ("code_math_mixed", "C5")):
    for k, name in enumerate(arm_jobs[a]):
        h = results[name].get("loss") or []
        if h:
            ax.plot([x["step"] for x in h], [x["loss"] for x in h], color=c, alpha=0.7,
                    label=ARMS[a] if k == 0 else None)
ax.set(xlabel="step of the math stage (mixed: whole run)", ylabel="train loss", title="training loss")
ax.legend(fontsize=8)
run.savefig(fig, "loss.png");
