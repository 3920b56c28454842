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
# # 09 · The paper's tables and figures, from our runs
#
# Every earlier notebook wrote `params.json` and `metrics.json` into its run folder (`runs/<profile>/NN_name/`),
# and `done.json` last when it finished. This notebook reads only *finished* run folders — never cell outputs,
# never a folder whose notebook failed half-way — and renders the paper's tables with the paper's numbers beside
# ours. Each number comes from one place: accuracies of models from 08's evaluation, findings from the notebook
# that measured them, figures from the notebook that drew them. It writes `results/<profile>/`: `findings.md`
# (every finding of every run, with its 95 % interval and verdict) and the Figure 5–7 analogues as PNG.

# %% tags=["parameters"]
run_dir = "runs/local/09_paper_tables_and_figures"  # the runner sets runs/<profile>/09_paper_tables_and_figures
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data (unused: this notebook reads run folders only)
runs_dir = ""  # empty: the sibling run folders of run_dir (same profile)
require = []  # notebooks that must have finished, e.g. ["05_sft", "06_grpo"]; others are optional
results_in_run_folder = False  # True: write results/ inside the run folder (CI), not results/<profile>/

# %%
import shutil

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown, display

from dsm_utils import REPO_ROOT, findings, repo_path, tracking
from dsm_utils.evaluation import PAPER_RESULTS
from dsm_utils.run import PROFILES

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), notebook="09_paper_tables_and_figures")
pd.set_option("display.max_colwidth", None)  # full cell text, never "…"
root = repo_path(runs_dir) if runs_dir else run.dir.parent
profile = root.name
# results/<profile>/ is committed for the runner's profiles; a JupyterLab run (runs/local/...) keeps its own.
results = REPO_ROOT / "results" / profile if profile in PROFILES and not results_in_run_folder else run.dir / "results"
if results.exists():
    shutil.rmtree(results)  # results of an earlier run must not survive next to these
results.mkdir(parents=True)
NOTEBOOKS = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                   if p.stem != run.dir.name)
runs = tracking.completed_runs(root, NOTEBOOKS)
missing = [nb for nb in require if nb not in runs]
if missing:
    raise FileNotFoundError(f"required runs not finished in profile {profile}: {missing}; run those notebooks first")
tables: dict[str, int] = {}


def save_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Write a table as CSV into the run folder and remember it for metrics.json."""
    df.to_csv(run.path(f"{name}.csv"), index=False)
    tables[name] = len(df)
    return df


def status(nb: str) -> str:
    if nb in runs:
        return "finished"
    return "did not finish" if (root / nb).exists() else "not run"


inventory = save_table(pd.DataFrame([{"notebook": nb, "status": status(nb),
                                      "minutes": round(runs[nb]["metrics"].get("elapsed_s", 0) / 60, 1)
                                      if nb in runs else None} for nb in NOTEBOOKS]), "inventory")
inventory

# %% [markdown]
# ## §2.1 The DeepSeekMath Corpus: iterations of the fastText pipeline
# > "After four iterations of data collection, we end up with 35.5M mathematical web pages, totaling 120B
# > tokens. In the fourth iteration, we notice that nearly 98% of the data has already been collected in the
# > third iteration, so we decide to cease data collection." — §2.1
#
# Pages new in each round beside the cumulative total, from 01's run folder (the paper gives only the final
# totals).

# %%
if "01_math_corpus" in runs:
    m = runs["01_math_corpus"]["metrics"]
    new = m.get("new_pages_per_round")
    cum = m.get("cumulative_pages_per_round")
    if new is None and cum is None:  # 01 before it logged both: pages_by_round is what each round collected
        cum = m.get("pages_by_round", [])
        new = [c - p for c, p in zip(cum, [0] + cum[:-1])]
    elif cum is None:
        cum = [sum(new[:i + 1]) for i in range(len(new))]
    elif new is None:
        new = [c - p for c, p in zip(cum, [0] + cum[:-1])]
    n = len(cum)
    corpus = pd.DataFrame({"round": range(1, n + 1), "new pages": new, "cumulative pages": cum,
                           "share new %": [round(100 * a / c, 1) if c else None for a, c in zip(new, cum)],
                           "precision": m.get("precision_by_round", [None] * n),
                           "recall": m.get("recall_by_round", [None] * n)})
    save_table(corpus, "corpus_rounds")
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    w = 0.4
    ax[0].bar([r - w / 2 for r in corpus["round"]], corpus["new pages"], w, label="new in this round")
    ax[0].bar([r + w / 2 for r in corpus["round"]], corpus["cumulative pages"], w, label="cumulative")
    ax[0].set(xlabel="round", ylabel="pages", title="§2.1 pages per round", xticks=list(corpus["round"]))
    ax[0].legend(fontsize=8)
    if corpus["precision"].notna().any():
        ax[1].plot(corpus["round"], corpus["precision"], "o-", label="precision")
        ax[1].plot(corpus["round"], corpus["recall"], "s-", label="recall")
        ax[1].set(xlabel="round", ylim=(0, 1.05), title="kept pages vs labels", xticks=list(corpus["round"]))
        ax[1].legend(fontsize=8)
    fig.tight_layout()
    run.savefig(fig, "corpus_rounds.png")
    plt.show()
    display(corpus)
else:
    print(f"01_math_corpus: {status('01_math_corpus')} in profile {profile}; corpus table skipped")

# %% [markdown]
# ## Tables 1 and 6–9: pre-training on each corpus (from 02, 03, 04)
# Our toy arms (held-out math and code bits per byte, toy few-shot accuracy; mean ± half the 95 % seed interval)
# beside the paper row each arm stands in for. The paper's numbers are few-shot accuracies of 1.3 B models; ours
# are 1 M-parameter models, so only the direction of each comparison (in the findings below) is comparable.

# %%
from dsm_utils import pretrain

for table in ("table1", "table6", "table7", "table8", "table9"):
    nb = pretrain.TABLE_NOTEBOOK[table]
    if nb in runs:
        display(Markdown(f"**{table.replace('table', 'Table ')}** (from {nb})"))
        display(save_table(pretrain.paper_vs_ours(runs[nb]["metrics"], table), f"{table}_paper_vs_ours"))
    else:
        print(f"{table.replace('table', 'Table ')}: {nb} {status(nb)}")

# %% [markdown]
# ## Table 5: SFT and RL, chain-of-thought and tool-integrated (top-1, %)
# Our rows: 06's greedy evaluation of the SFT model of 05 and of GRPO (outcome supervision, rule reward) — the same
# grader (the toy's rule checker, which runs the program when the model chose to write one) on the same toy test
# items, so the two rows differ only by the model; GRPO is the mean over 06's seeds. The paper's rows:
# DeepSeekMath-Instruct 7B and -RL 7B (Table 5). Toy tests and the paper's benchmarks are different tasks:
# compare the *change* from SFT to RL, not the levels.

# %%
t5, delta_rows = [], []
if "06_grpo" in runs:
    m06, p06 = runs["06_grpo"]["metrics"], runs["06_grpo"]["params"]
    for split, key, n in (("toy", "test_acc", p06.get("n_test")), ("toy_ood", "ood_acc", p06.get("n_test_ood"))):
        accs = m06.get(key, {})
        for lab, label in (("sft", "ours: SFT (05)"), ("os_rule", "ours: GRPO (06)")):
            if accs.get(lab):
                t5.append({"model": label, "benchmark": split, "mode": "zero_shot_cot", "n": n,
                           "seeds": len(accs[lab]), "top-1 %": round(100 * sum(accs[lab]) / len(accs[lab]), 1)})
        if accs.get("sft") and accs.get("os_rule"):
            rl_, sft_ = accs["os_rule"], accs["sft"]
            paired = len(rl_) == len(sft_)
            iv = findings.diff_interval(rl_, sft_, n, paired=paired)
            delta_rows.append({"rows": "ours: GRPO − SFT", "benchmark": split, "mode": "zero_shot_cot",
                               "seeds": len(rl_), "Δ points": round(100 * iv.delta, 1),
                               "95 % CI": f"{100 * iv.lo:.1f} to {100 * iv.hi:.1f}"})
else:
    print(f"06_grpo: {status('06_grpo')}; only the paper's rows")
for pm, label in (("DeepSeekMath-Instruct 7B", "paper: DeepSeekMath-Instruct 7B"),
                  ("DeepSeekMath-RL 7B", "paper: DeepSeekMath-RL 7B")):
    for mode in ("zero_shot_cot", "tool"):
        for b, v in PAPER_RESULTS[pm][mode].items():
            t5.append({"model": label, "benchmark": b, "mode": mode, "n": None, "seeds": None, "top-1 %": v})
table5 = save_table(pd.DataFrame(t5).astype({"seeds": "Int64", "n": "Int64"}), "table5")
table5.pivot_table(index=["model", "benchmark"], columns="mode", values="top-1 %", sort=False)

# %% [markdown]
# The change from SFT to RL, ours (95 % interval: seed spread and binomial error of the test items) beside the
# paper's (RL 7B minus Instruct 7B, Table 5):

# %%
for mode in ("zero_shot_cot", "tool"):
    for b, v in PAPER_RESULTS["DeepSeekMath-RL 7B"][mode].items():
        delta_rows.append({"rows": "paper: RL − Instruct", "benchmark": b, "mode": mode, "seeds": None,
                           "Δ points": round(v - PAPER_RESULTS["DeepSeekMath-Instruct 7B"][mode][b], 1),
                           "95 % CI": None})
save_table(pd.DataFrame(delta_rows).astype({"seeds": "Int64"}), "table5_delta")

# %% [markdown]
# ## Tables 2, 3 and 5 on the real benchmarks (from 08)
# Only rows that measure what the paper measured (a model, mode and benchmark the paper reports, on the whole
# test split). The toy profiles have none: the paper has no toy numbers.

# %%
comp = pd.DataFrame(runs["08_evaluation"]["metrics"].get("comparison", [])) if "08_evaluation" in runs else pd.DataFrame()
save_table(comp, "benchmarks_vs_paper")
if comp.empty:
    print("no benchmark row of this profile is comparable with the paper (see 08)")
comp if len(comp) else None

# %% [markdown]
# ## Table 10: the unified paradigm (§5.2.1)
# The paper writes SFT, RFT, online RFT, DPO, PPO and GRPO as one gradient with three parts: a data source, a reward
# function and a gradient coefficient (Table 10). 07 renders it from the code its losses use.

# %%
if "07_unified_paradigm" in runs:
    t10 = save_table(pd.DataFrame(runs["07_unified_paradigm"]["metrics"].get("table10", [])), "table10")
    display(t10)
else:
    print(f"07_unified_paradigm: {status('07_unified_paradigm')}; Table 10 skipped")

# %% [markdown]
# ## Figures 5–7 (drawn by 06 and 07)
# Fig. 5 (§5.2.1): methods compared over training steps; Fig. 6 (§5.2.1): iterative RL; Fig. 7 (§5.2.2): Maj@K
# and Pass@K of the SFT and RL models. Each PNG is the one its notebook saved, copied to `results/<profile>/`.

# %%
FIGURES = {"fig5.png": "07_unified_paradigm", "fig6.png": "06_grpo", "fig7.png": "07_unified_paradigm"}
figure_status = {}
for name, nb in FIGURES.items():
    src = root / nb / name
    if nb in runs and src.exists():
        shutil.copy2(src, results / name)
        figure_status[name] = "copied"
        display(Markdown(f"**{name}** (from {nb})"), Image(filename=str(results / name), width=720))
    else:
        figure_status[name] = "not run" if nb not in runs else f"{nb} wrote no {name}"
pd.DataFrame([{"figure": k, "from": FIGURES[k], "status": v} for k, v in figure_status.items()])


# %% [markdown]
# ## Findings: does each paper claim reproduce?
# Every finding any run folder reports, with its difference, 95 % interval (seed spread and binomial error) and
# verdict — exactly "reproduced", "not reproduced" or "within noise". Also written to `results/<profile>/findings.md`.

# %%
def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (cells' pipes escaped, newlines as spaces)."""
    def cell(v) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|").replace("\n", " ")
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in df.itertuples(index=False))


found, invalid = [], {}
for nb, r in runs.items():
    rows = r["metrics"].get("findings")
    if not rows:
        continue
    try:
        checked = findings.check_findings(rows, where=f"{nb}/metrics.json findings")
    except (ValueError, TypeError, KeyError) as exc:
        invalid[nb] = str(exc)
        continue
    for f in checked:
        found.append({"notebook": nb, "claim": f["claim"], "source": f.get("source", ""), "status": f["status"],
                      "Δ": f["delta"], "95 % CI": f"[{f['ci'][0]}, {f['ci'][1]}]", "detail": f.get("detail", "")})
findings_df = save_table(pd.DataFrame(found, columns=["notebook", "claim", "source", "status", "Δ", "95 % CI",
                                                      "detail"]), "findings")
md = [f"# Findings ({profile} profile)\n",
      "Each row: a claim of the paper, our difference with its 95 % interval, and the verdict read from the "
      "interval. Written by notebook 09 from the run folders' metrics.json.\n"]
md.append(markdown_table(findings_df) if len(findings_df) else "No run folder of this profile reports findings.\n")
md.append("\nFigures: " + ", ".join(f"{k} ({v})" for k, v in figure_status.items()) + "\n")
(results / "findings.md").write_text("\n".join(md), encoding="utf-8")
for nb, err in invalid.items():
    print(f"{nb}: findings not in the findings format, left out: {err}")
if findings_df.empty:
    print("no finished run folder of this profile reports findings")
findings_df if len(findings_df) else None

# %%
run.finish(runs_read=sorted(runs), runs_missing=[nb for nb in NOTEBOOKS if nb not in runs], tables=tables,
           figures=figure_status, n_findings=len(findings_df), findings_invalid=invalid,
           n_table5_ours=sum(r["model"].startswith("ours") for r in t5),
           results_dir=tracking.show_path(results))
print(f"{len(tables)} tables, {sum(v == 'copied' for v in figure_status.values())} figures and "
      f"{len(findings_df)} findings; results in {tracking.show_path(results)}")
