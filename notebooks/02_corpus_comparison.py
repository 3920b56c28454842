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
# # 02 · Corpus comparison (DeepSeekMath §2.2, Table 1)
#
# §2.2 of the paper checks the quality of the DeepSeekMath Corpus by training the same general model
# (DeepSeek-LLM 1.3B) on each math corpus for an equal budget (150B tokens) and comparing few-shot accuracy
# (Table 1): the model trained on the DeepSeekMath Corpus beats those trained on MathPile, OpenWebMath and
# Proof-Pile-2 on every benchmark. The recipe (§2.2.1, paraphrased): AdamW with $\beta_1=0.9$, $\beta_2=0.95$,
# weight decay $0.1$; a multi-step learning-rate schedule that warms up to the peak, falls to 31.6 % of the peak
# after 80 % of the training and to 10.0 % after 90 %.
#
# $$\eta(t) = \eta_{\max}\cdot\begin{cases} \frac{t+1}{T_w} & t < T_w \\ 1 & T_w \le t < 0.8\,T \\
# 0.316 & 0.8\,T \le t < 0.9\,T \\ 0.1 & t \ge 0.9\,T \end{cases}$$
#
# **Toy world.** A general toy model ("no math training", the stand-in for DeepSeek-LLM 1.3B) is pre-trained on
# general web text, then trained further, for the same token budget, on each toy corpus:
#
# | arm | paper row | toy corpus |
# |---|---|---|
# | no math | No Math Training | — (the general base itself) |
# | random CC | — (control) | random Common Crawl page texts + mini-CC pages the 01 pipeline did **not** keep |
# | seed only | OpenWebMath | the StackExchange / MathOverflow threads that seeded the 01 pipeline |
# | DSM corpus | DeepSeekMath Corpus | `corpus.jsonl.gz` of `01_math_corpus` |
#
# The models are far too small to solve GSM8K or MATH, so the math signal is **held-out bits per byte** of the
# GSM8K + MATH **test** reference solutions (given the problem); code ability is bits per byte of unseen Python
# standard-library files. The learning rate is chosen on the **validation** split (GSM8K/MATH *train* solutions,
# other held-out stdlib files; see `lr_grid`); the token budgets are what the 20-minute CPU budget of 02–04 allows.
# Few-shot accuracy on the toy problems (the paper's few-shot `Q:/A:` format, via `dsm_utils.evaluation`) is
# measured too; see the last section for what it shows.

# %% tags=["parameters"]
run_dir = "runs/local/02_corpus_comparison"  # the runner sets runs/<profile>/02_corpus_comparison
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seeds = [0, 1, 2]
model = "llama-1m"  # toy name, checkpoint path or hub id (trained from its own weights)
tokenizer_name = ""  # empty: the toy tokenizer
base_model = ""  # empty: pre-train the general base here; else a path / hub id used as the "no math" model
seq_len = 128
batch_size = 16  # sequences per process and step
grad_accum = 1
lr = 0.002
warmup_frac = 0.05
base_tokens = 150000  # general pre-training of the base (stand-in for DeepSeek-LLM 1.3B's 2T tokens)
math_tokens = 100000  # each corpus arm (paper: 150B)
source_max_tokens = 1000000  # tokens packed per source (cached and shared with 03 and 04)
n_eval_math = 60  # GSM8K and MATH solutions each
n_eval_code = 24  # unseen stdlib files
eval_max_len = 512
fewshot_benchmarks = ["toy"]
fewshot_items = 20
fewshot_max_new_tokens = 64
fewshot_n_shot = {"cot_gsm_8_shot": 2}  # exemplars kept per DeepSeek-Math prompt file (its first 2 of 8 fit the toy models' 512 positions)
processes = 2  # seeds in parallel, one thread each
threads = 1
device = "cpu"
mixed_precision = "no"
launch_cmd = ""  # e.g. "accelerate launch --config_file params/cluster/accelerate_fsdp.yaml": jobs run through it
ckpt_every = 0
lr_grid = []  # other peak learning rates tried on the DSM-corpus arm (first seed), scored on the validation split

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Code, display

from dsm_utils import findings, pretrain, tracking
from dsm_utils.tokenizer import DEFAULT_CACHE, default_tokenizer, load_tokenizer

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
CACHE = run.dir.parent / "_pretrain"  # data files and runs shared by 02, 03 and 04 (same params = same run)
CORPUS_RUN = run.sibling("01_math_corpus")
pretrain.math_corpus_path(CORPUS_RUN)  # a clear error naming 01_math_corpus if it has not run
tok = load_tokenizer(tokenizer_name) if tokenizer_name else default_tokenizer()
TOK = tokenizer_name or DEFAULT_CACHE
DD = data_dir or None

# %% [markdown]
# ## The schedule and the loop
#
# `dsm_utils.pretrain.multistep_lr` is the schedule above; `dsm_utils.pretrain.train` is one run on `accelerate`
# (packed `seq_len` blocks, AdamW β = (0.9, 0.95), weight decay 0.1 on matrices, gradient clipping 1.0,
# checkpoints that resume). The same function runs under `accelerate launch -m dsm_utils.pretrain` (DDP, FSDP,
# DeepSpeed) in the cluster profile.

# %%
Code(inspect.getsource(pretrain.multistep_lr), language="python")

# %%
T = 1000
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.plot([pretrain.multistep_lr(t, T, lr, int(warmup_frac * T)) for t in range(T)])
ax.set(xlabel="step (of 1000)", ylabel="learning rate", title="multi-step schedule")
run.savefig(fig, "schedule.png");

# %% [markdown]
# ## The toy corpora and evaluation sets
#
# Each source is packed into `seq_len`-token blocks (documents joined with EOS). Every arm trains on exactly the
# same number of tokens; a source smaller than the budget would be repeated (the "epochs" column says whether
# that happened).

# %%
SOURCES = ["random_cc", "seed_only", "dsm_corpus"]
budgets = {name: math_tokens + (base_tokens if name == "random_cc" else 0) for name in SOURCES}
DATA, sizes_df = pretrain.prepare_sources(budgets, tok, seq_len, source_max_tokens, CACHE, CORPUS_RUN, DD)
EVAL = pretrain.prepare_evals(n_eval_math, n_eval_code, CACHE, DD)
sizes_df

# %% [markdown]
# ## Training: the base, then each corpus for the same budget, every arm × seed
#
# Seeds run in parallel worker processes with one torch thread each; a run whose folder already holds the same
# params and a finished `metrics.json` (e.g. from an earlier notebook) is read back, not retrained.

# %%
common = dict(tokenizer=TOK, seq_len=seq_len, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
              warmup_frac=warmup_frac, weight_decay=0.1, betas=[0.9, 0.95], device=device,
              mixed_precision=mixed_precision, threads=threads, ckpt_every=ckpt_every, eval=EVAL,
              eval_max_len=eval_max_len,
              fewshot={"benchmarks": fewshot_benchmarks, "n_items": fewshot_items,
                       "max_new_tokens": fewshot_max_new_tokens, "n_shot": fewshot_n_shot})
ARMS = {"no_math": "no math (base)", "random_cc": "random CC", "seed_only": "seed only (OpenWebMath stand-in)",
        "dsm_corpus": "DSM corpus"}
jobs, arm_jobs = [], {a: [] for a in ARMS}
for s in seeds:
    if base_model:
        base = pretrain.job(f"base-eval-s{s}", dict(common, model=base_model, data={}, tokens=0, seed=s), CACHE)
    else:
        base = pretrain.job(f"base-s{s}", dict(common, model=model, data={DATA["random_cc"]: 1.0},
                                               tokens=base_tokens, seed=s, data_seed=1000 * s), CACHE)
    jobs.append(base)
    arm_jobs["no_math"].append(base.name)
    for arm in SOURCES:
        j = pretrain.job(f"{arm}-s{s}", dict(common, model=pretrain.model_of(base), data={DATA[arm]: 1.0},
                                             tokens=math_tokens, seed=s, data_seed=1000 * s + 1), CACHE, after=[base])
        jobs.append(j)
        arm_jobs[arm].append(j.name)
results = pretrain.run_jobs(jobs, processes=processes, launch_cmd=launch_cmd)
arms = pretrain.collect_arms(results, arm_jobs, ARMS)
run.log(arms=arms, sources=sizes_df.to_dict(orient="records"), tokens_per_s=[r.get("tokens_per_s") for r in results.values()]);

# %% [markdown]
# ## Choosing the learning rate on the validation split
#
# With `lr_grid` set, the DSM-corpus arm of the first seed is also trained at each other peak rate (from the same
# base) and scored on the **validation** split only (GSM8K/MATH *train* solutions, validation stdlib files). The
# table says whether the profile's `lr` is the one that wins this comparison; test numbers play no part in it.

# %%
if lr_grid:
    s0 = seeds[0]
    base0 = next(j for j in jobs if j.name == arm_jobs["no_math"][0])
    sweep = {x: pretrain.job(f"dsm_corpus-lr{x:g}-s{s0}", dict(common, lr=x, model=pretrain.model_of(base0),
                                                                data={DATA["dsm_corpus"]: 1.0}, tokens=math_tokens,
                                                                seed=s0, data_seed=1000 * s0 + 1), CACHE)
             for x in lr_grid if x != lr}
    got = pretrain.run_jobs(list(sweep.values()), processes=processes, launch_cmd=launch_cmd)
    val = {x: got[j.name]["bpb"] for x, j in sweep.items()}
    val[lr] = results[arm_jobs["dsm_corpus"][0]]["bpb"]
    lr_df = pd.DataFrame([{"peak lr": x, "math bpb (val)": round(v["math_validation"], 4),
                           "code bpb (val)": round(v["code_validation"], 4), "in use": x == lr}
                          for x, v in sorted(val.items())])
    run.log(lr_sweep=lr_df.to_dict("records"), lr_best_on_validation=float(lr_df.loc[lr_df["math bpb (val)"].idxmin(),
                                                                                        "peak lr"]))
    display(lr_df)

# %% [markdown]
# ## Table 1: ours beside the paper's
#
# Our numbers are means over seeds ± half the 95 % seed interval (lower bits per byte is better). The paper's
# columns are few-shot accuracies (%) of DeepSeek-LLM 1.3B after 150B tokens of each corpus
# (`pretrain.PAPER_TABLE1`); the paper has no random-CC row and its seed corpus, OpenWebMath, stands beside our
# seed-only arm.

# %%
pretrain.arms_table(arms)

# %%
pretrain.paper_vs_ours(run.metrics, "table1")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, key, title in ((axes[0], "math_bpb", "GSM8K + MATH test solutions"), (axes[1], "code_bpb", "unseen Python")):
    vals = [arms[a][key] for a in ARMS]
    ax.bar(range(len(ARMS)), [np.mean(v) for v in vals], yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
           color=["0.6", "C1", "C2", "C0"], capsize=4)
    for i, v in enumerate(vals):
        ax.plot([i] * len(v), v, "k.", ms=4)
    lo = min(min(v) for v in vals)
    ax.set(xticks=range(len(ARMS)), xticklabels=[ARMS[a].split(" (")[0] for a in ARMS], ylabel="bits per byte",
           title=title, ylim=(lo * 0.95, None))
fig.tight_layout()
run.savefig(fig, "bpb_by_corpus.png");

# %% [markdown]
# ## Findings (95 % intervals over seeds, paired by seed: every arm of seed *i* starts from base *i*)

# %%
src = pretrain.PAPER_SOURCES["table1"]
m = {a: arms[a]["math_bpb"] for a in ARMS}
vs_cc = findings.finding("DSM corpus < random CC (math bpb)", m["dsm_corpus"], m["random_cc"], direction="decrease",
                         paired=True, proportion=False, source=src)
vs_seed = findings.finding("DSM corpus < seed only (math bpb)", m["dsm_corpus"], m["seed_only"],
                           direction="decrease", paired=True, proportion=False, source=src)
rows = [pretrain.combined_finding("DSM corpus < random CC and < seed-only in held-out math bits per byte",
                                  [vs_cc, vs_seed], source=src), vs_cc, vs_seed,
        findings.finding("math training (DSM corpus) < no math training (math bpb)", m["dsm_corpus"], m["no_math"],
                         direction="decrease", paired=True, proportion=False, source=src),
        findings.finding("seed only (OpenWebMath) < no math training (math bpb)", m["seed_only"], m["no_math"],
                         direction="decrease", paired=True, proportion=False, source=src)]
acc = {a: arms[a]["toy_acc"] for a in ARMS}
# accuracies all at 0 % are a floor (the toy models cannot solve the problems), not evidence either way
if all(acc.values()) and max(max(v) for v in acc.values()) > 0:
    rows.append(findings.finding(f"DSM corpus > no math training ({arms['dsm_corpus']['toy_benchmark']} few-shot "
                                 "accuracy)", acc["dsm_corpus"], acc["no_math"], arms["dsm_corpus"]["toy_n"],
                                 direction="increase", paired=True, source=src))
run.log(findings=[f.to_dict() for f in rows]);
pd.DataFrame([f.to_dict() for f in rows])

# %% [markdown]
# ## Few-shot accuracy and loss curves
#
# The toy models are trained on web text only: they have seen no toy problem, and the few-shot table above shows
# what that gives with the paper's few-shot format. "answered" is the share of completions from which the grader
# could extract an answer at all; accuracy at that level is what matching a number by chance gives, not
# reasoning. The `gpu` profile runs the same few-shot evaluation on GSM8K and MATH with a real model.

# %%
pd.DataFrame([{"arm": ARMS[a], **{f"{b} acc %": round(100 * float(np.mean(v)), 1) for b, v in arms[a]["fewshot"].items()},
               "answered %": round(100 * float(np.mean([x for x in arms[a]["toy_answered"] if x is not None] or [0])), 1)}
              for a in ARMS])

# %%
fig, ax = plt.subplots(figsize=(7, 3))
for a, c in zip(ARMS, ["0.6", "C1", "C2", "C0"]):
    for k, name in enumerate(arm_jobs[a]):
        h = results[name].get("loss") or []
        if h:
            ax.plot([x["step"] for x in h], [x["loss"] for x in h], color=c, alpha=0.7, label=ARMS[a] if k == 0 else None)
ax.set(xlabel="step (of each run)", ylabel="train loss", title="training loss")
ax.legend(fontsize=8)
run.savefig(fig, "loss.png");
