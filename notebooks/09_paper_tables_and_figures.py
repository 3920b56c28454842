# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · The paper's tables and figures, from our runs
#
# Every earlier notebook wrote `params.json` and `metrics.json` into its run folder
# (`runs/<profile>/NN_name/`). This notebook reads only those files — never cell outputs — and renders the
# paper's tables with the paper's numbers beside ours, and its figures as PNG. A notebook that has not run in
# this profile is listed as missing and its tables are skipped.

# %% tags=["parameters"]
run_dir = "runs/local/09_paper_tables_and_figures"  # the runner sets runs/<profile>/09_paper_tables_and_figures
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data (unused: this notebook reads run folders only)
runs_dir = ""  # empty: the sibling run folders of run_dir (same profile)
require = []  # notebooks that must have run, e.g. ["05_sft", "06_grpo"]; others are optional

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from dsm_utils import repo_path, tracking
from dsm_utils.evaluation import PAPER_RESULTS

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
root = repo_path(runs_dir) if runs_dir else run.dir.parent
NOTEBOOKS = ["00_setup", "01_math_corpus", "02_corpus_comparison", "03_pretrain_code_to_math", "04_ablation_arxiv",
             "05_sft", "06_grpo", "07_unified_paradigm", "08_evaluation"]
runs = {nb: tracking.load_run(root / nb) for nb in NOTEBOOKS if (root / nb / "metrics.json").exists()}
missing = [nb for nb in require if nb not in runs]
if missing:
    raise FileNotFoundError(f"required run folders missing under {root}: {missing}; run those notebooks first")
tables: dict[str, int] = {}
figures: list[str] = []


def save_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Write a table as CSV into the run folder and remember it for metrics.json."""
    df.to_csv(run.path(f"{name}.csv"), index=False)
    tables[name] = len(df)
    return df


def save_figure(fig, name: str) -> None:
    run.savefig(fig, name)
    figures.append(f"{name}.png")


inventory = pd.DataFrame([{"notebook": nb, "ran": nb in runs,
                           "seconds": runs[nb]["metrics"].get("elapsed_s") if nb in runs else None}
                          for nb in NOTEBOOKS])
print("run folders read from", root)
save_table(inventory, "inventory")

# %% [markdown]
# ## §2.1 The DeepSeekMath Corpus: iterations of the fastText pipeline
# > "After four iterations of data collection, we end up with 35.5M mathematical web pages, totaling 120B
# > tokens. In the fourth iteration, we notice that nearly 98% of the data has already been collected in the
# > third iteration, so we decide to cease data collection."

# %%
if "01_math_corpus" in runs:
    m = runs["01_math_corpus"]["metrics"]
    n = len(m.get("pages_by_round", []))
    corpus = pd.DataFrame({
        "round": list(range(1, n + 1)),
        "pages": m.get("pages_by_round", [None] * n),
        "tokens": m.get("tokens_by_round", [None] * n),
        "precision": m.get("precision_by_round", [None] * n),
        "recall": m.get("recall_by_round", [None] * n),
    })
    corpus["paper: pages (final)"] = [None] * (n - 1) + ["35.5M"] if n else []
    corpus["paper: tokens (final)"] = [None] * (n - 1) + ["120B"] if n else []
    save_table(corpus, "corpus_rounds")
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    ax[0].bar(corpus["round"], corpus["pages"])
    ax[0].set(xlabel="round", ylabel="pages collected", title="§2.1 pages per round")
    ax[1].plot(corpus["round"], corpus["precision"], "o-", label="precision")
    ax[1].plot(corpus["round"], corpus["recall"], "s-", label="recall")
    ax[1].set(xlabel="round", ylim=(0, 1.05), title="kept pages vs labels")
    ax[1].legend()
    save_figure(fig, "corpus_rounds")
    display(corpus)  # noqa: F821 - IPython
else:
    print("01_math_corpus has not run in this profile: corpus table skipped")

# %% [markdown]
# ## Table 5: instruction tuning and RL (chain-of-thought and tool-integrated, top-1)
# The paper's DeepSeekMath-Instruct 7B and -RL 7B beside our SFT (05) and GRPO (06) models on the toy test
# (the gpu profile of `08_evaluation` gives the real-benchmark rows). Percentages.

# %%
rows = []
paper_instruct = PAPER_RESULTS.get("DeepSeekMath-Instruct 7B", {})
paper_rl = PAPER_RESULTS.get("DeepSeekMath-RL 7B", {})


def pct(x):
    return None if x is None else round(100 * x, 1)


if "05_sft" in runs:
    m = runs["05_sft"]["metrics"]
    rows.append({"model": "ours: SFT (05)", "toy CoT": pct(m.get("greedy_cot_accuracy")),
                 "toy tool": pct(m.get("greedy_tool_accuracy")), "toy PoT": pct(m.get("greedy_pot_accuracy"))})
if "06_grpo" in runs:
    m = runs["06_grpo"]["metrics"]
    final = m.get("final", {})
    best = m.get("saved_variant") or next(iter(final), None)
    if best in final:
        rows.append({"model": f"ours: GRPO (06, {best})", "toy CoT": pct(final[best].get("acc")),
                     "toy OOD CoT": pct(final[best].get("acc_ood"))})
for label, table in (("paper: DeepSeekMath-Instruct 7B", paper_instruct), ("paper: DeepSeekMath-RL 7B", paper_rl)):
    rows.append({"model": label, "GSM8K CoT": table.get("zero_shot_cot", {}).get("gsm8k"),
                 "MATH CoT": table.get("zero_shot_cot", {}).get("math"),
                 "GSM8K tool": table.get("tool", {}).get("gsm8k"), "MATH tool": table.get("tool", {}).get("math")})
table5 = save_table(pd.DataFrame(rows), "table5")
table5

# %% [markdown]
# ## Table 10 and Figure 5: the unified paradigm (§5.2)
# > "SFT, RFT, DPO, PPO, GRPO … can be conceptualized as either direct or simplified RL techniques" — each is a
# > data source, a reward function and a gradient coefficient. Table 10 below is rendered by 07 from the same
# > method objects its loss uses.

# %%
if "07_unified_paradigm" in runs:
    m = runs["07_unified_paradigm"]["metrics"]
    t10 = save_table(pd.DataFrame(m.get("table10", [])), "table10")
    display(t10)  # noqa: F821
    findings = save_table(pd.DataFrame(m.get("findings", [])), "findings_5_2")
    display(findings)  # noqa: F821
    curves = m.get("curves", {})
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for method, c in curves.items():
            ax.plot(c["step"], c["mean"], marker="o", ms=3, label=method)
        ax.set(xlabel="training step", ylabel="toy test accuracy", title="Figure 5 analogue")
        ax.legend(fontsize=8)
        save_figure(fig, "fig5_unified_paradigm")
    kp = m.get("maj_pass", {})
    if kp:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
        for label, c in kp.items():
            for i, kind in enumerate(("maj", "pass")):
                ks = sorted(int(k) for k in c.get(kind, {}))
                ax[i].plot(ks, [c[kind][str(k)] for k in ks], marker="o", ms=3, label=label)
        ax[0].set(xlabel="K", ylabel="Maj@K", title="Figure 7 analogue: Maj@K")
        ax[1].set(xlabel="K", ylabel="Pass@K", title="Pass@K")
        for a in ax:
            a.set_xscale("log", base=2)
            a.legend()
        save_figure(fig, "fig7_maj_pass")
else:
    print("07_unified_paradigm has not run in this profile: Table 10, Figures 5 and 7 skipped")

# %% [markdown]
# ## Figure 6: GRPO training curves (§4.2)
# > "the performance of DeepSeekMath-Instruct 7B on GSM8K and MATH … with different methods" — here reward, KL
# > and toy test accuracy over steps for each GRPO variant of 06.

# %%
if "06_grpo" in runs:
    hist = runs["06_grpo"]["metrics"].get("histories", {})
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.4))
    for name, h in hist.items():
        df = pd.DataFrame(h)
        for a, key in zip(ax, ("reward_mean", "kl", "acc")):
            if key in df:
                d = df.dropna(subset=[key])
                a.plot(d["step"], d[key], marker="o", ms=2, label=name)
    for a, key in zip(ax, ("reward", "KL to reference", "toy test accuracy")):
        a.set(xlabel="step", title=key)
    ax[-1].legend(fontsize=8)
    save_figure(fig, "fig6_grpo")
else:
    print("06_grpo has not run in this profile: Figure 6 skipped")

# %% [markdown]
# ## Tables 2–5: benchmark comparison from 08_evaluation
# Our accuracy beside the paper's reported number for the paper model each checkpoint stands in for.

# %%
if "08_evaluation" in runs:
    comp = save_table(pd.DataFrame(runs["08_evaluation"]["metrics"].get("comparison", [])), "benchmarks_vs_paper")
    display(comp)  # noqa: F821
else:
    print("08_evaluation has not run in this profile: benchmark table skipped")

# %%
run.log(runs_read=sorted(runs), runs_missing=[nb for nb in NOTEBOOKS if nb not in runs], tables=tables,
        figures=figures, runs_dir=str(root))
print(f"{len(tables)} tables and {len(figures)} figures written to {run.dir}")
