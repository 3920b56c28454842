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
# # 07 · A unified paradigm of RL methods (DeepSeekMath §5.2, Figure 5, Table 10, Figure 7)
#
# > "we provide a unified paradigm to analyze different training methods, such as SFT, RFT, DPO, PPO, GRPO
# > […] Generally, the gradient with respect to the parameter θ of a training method can be written as
# > $\nabla_\theta\mathcal J_{\mathcal A}(\theta) = \mathbb E_{(q,o)\sim\mathcal D}\Big(\frac{1}{|o|}\sum_{t=1}^{|o|}
# > GC_{\mathcal A}(q,o,t,\pi_{rf})\nabla_\theta\log\pi_\theta(o_t|q,o_{<t})\Big)$ (eq. 5). There exist three key
# > components: 1) Data Source $\mathcal D$ […] 2) Reward Function $\pi_{rf}$ […] 3) Algorithm $\mathcal A$,
# > which processes the training data and the reward signal to the gradient coefficient GC." — §5.2.1
#
# Findings of §5.2.2 (paraphrased; Figure 5 and Figure 7): online RFT beats RFT late in training, GRPO+OS beats
# online RFT (it penalises wrong responses and reinforces correct ones with different magnitudes), GRPO+PS beats
# GRPO+OS; and RL raises Maj@K but not Pass@K — the paper reads this as RL making the output distribution more
# robust, boosting correct responses already in the model's top-K rather than adding fundamental capability.
#
# **Setting.** Every method starts from the same SFT checkpoint (05: two behaviours under one prompt, CoT and
# a short program, see 05 and 06), sees the same question stream (a (seed, step) RNG) and the same sample
# budget (`questions_per_step` × G outputs per step; offline methods sample from π_sft, online ones from π_θ).
# Rewards are the rule checker's. GRPO+OS / GRPO+PS and the Maj@K/Pass@K samples are taken from 06 when its
# settings match (same seeds, steps, G, lr, ...). Each (method, seed) is one single-thread process
# (`rl.run_jobs`), two at a time. Numbers are greedy accuracy on the 500-item test split, means over seeds,
# with 95 % intervals (seed spread + binomial error, `dsm_utils.findings`).

# %% tags=["parameters"]
run_dir = "runs/local/07_unified_paradigm"  # the runner sets runs/<profile>/07_unified_paradigm
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
seeds = [0]  # training seeds (one process each); means and 95 % intervals over them
processes = 2  # worker processes (1: inline)
device = "auto"  # one of: "auto", "cpu", "cuda", "mps"
checkpoint_every = 5  # resume: each run checkpoints under <run>/jobs/ and a rerun reuses finished runs
threads = 1  # torch CPU threads per process (0: leave as is)
sft_checkpoint = ""  # empty: this profile's 05_sft/checkpoint
fallback_sft_steps = 200  # when no 05 checkpoint exists
methods = ["RFT", "Online RFT", "GRPO+OS", "GRPO+PS", "DPO", "PPO"]  # each one of: "RFT", "Online RFT", "GRPO+OS", "GRPO+PS", "DPO", "PPO"
n_questions = 2000
steps = 30
group_size = 8
questions_per_step = 8
lr = 0.0001
lr_overrides = {}  # each one of: "RFT", "Online RFT", "GRPO+OS", "GRPO+PS", "DPO", "PPO"; per-method learning rates, e.g. {"DPO": 0.00003}
beta = 0.04
dpo_beta = 0.1
max_new_tokens = 64
temperature = 0.7
eval_every = 10  # greedy accuracy on n_curve test items every eval_every steps (Figure 5)
n_curve = 200
n_test = 500
n_test_ood = 500
eval_max_new_tokens = 64
reuse_06 = True  # take GRPO+OS / GRPO+PS and the Maj@K/Pass@K samples from 06 when its settings are the same
k_samples = 16  # Figure 7: Maj@K and Pass@K for K from 1 to k_samples
k_temperature = 0.7
pass_margin = 0.05  # "Pass@K not raised": the interval of Δ Pass@K inside ±pass_margin
maj_target = 0.05  # the target: Maj@K up by at least this

# %%
import inspect
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dsm_utils import findings, models, repo_path, rl, sft, tracking, training

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), keep=["jobs"], notebook="07_unified_paradigm")
training.seed_everything(seed)
n_threads = training.set_threads(threads)
dev = training.pick_device(device)
t_start = time.time()
print(f"run folder {tracking.show_path(run.dir)} · device {dev} · {n_threads} threads · seeds {seeds}")

# %% [markdown]
# ## Table 10, from the code
# The trainer (`rl.train_step`) runs, for each row, its data source, its `prepare` step, its gradient
# coefficient and its update — the `code` column names the functions. The six gradient coefficients:

# %%
t10 = rl.table10()
display(t10)

# %%
print("\n".join(inspect.getsource(f) for f in (rl.gc_sft, rl.gc_rft, rl.gc_online_rft)))

# %%
print("\n".join(inspect.getsource(f) for f in (rl.gc_dpo, rl.gc_ppo, rl.gc_grpo)))

# %% [markdown]
# ## Start: the SFT model

# %%
ckpt = repo_path(sft_checkpoint) if sft_checkpoint else run.sibling("05_sft") / "checkpoint"
if not sft_checkpoint and not tracking.is_complete(run.sibling("05_sft")):
    ckpt = run.path("sft_start")  # 05 did not finish (or never ran): a quick inline SFT instead of its checkpoint
sft_model, tok, sft_source = sft.load_instruct_model(ckpt, seed=seed, device=dev, fallback_steps=fallback_sft_steps)
if not models.checkpoint_exists(ckpt):  # the worker processes load the start from disk
    ckpt = training.save_checkpoint(run.path("sft_start"), sft_model, tok, state={"source": sft_source})
print("start:", tracking.show_path(sft_source) if models.checkpoint_exists(ckpt) else sft_source)
run.log(sft_source=sft_source, table10=t10.reset_index().to_dict(orient="records"));

# %% [markdown]
# ## Training every method (or reusing 06)
# | label | `rl.METHODS` entry | settings |
# |---|---|---|
# | RFT | RFT | offline samples of π_sft, GC = 1 on correct ones |
# | Online RFT | Online RFT | the same, sampled from π_θ |
# | GRPO+OS | GRPO | outcome supervision |
# | GRPO+PS | GRPO | process supervision (per-step rule rewards) |
# | DPO | DPO | (correct, wrong) pairs of π_sft samples of a question |
# | PPO | PPO | GAE with a value model, KL penalty in the reward |

# %%
SPEC = {"RFT": ("RFT", "outcome"), "Online RFT": ("Online RFT", "outcome"), "GRPO+OS": ("GRPO", "outcome"),
        "GRPO+PS": ("GRPO", "process"), "DPO": ("DPO", "outcome"), "PPO": ("PPO", "outcome")}
unknown = [m for m in methods if m not in SPEC]
if unknown:
    raise ValueError(f"methods: unknown {unknown}; valid: {list(SPEC)}")
evals = {"test": n_test, "ood": n_test_ood}
kspec = {"split": "test", "n_items": n_test, "n": k_samples, "temperature": k_temperature} if k_samples > 1 else None


def load_06():
    """06's per-seed results when it ran the same configuration (GRPO+OS = its os_rule after iteration 1)."""
    if not reuse_06:
        return None
    d = run.sibling("06_grpo")
    if not tracking.is_complete(d):  # a failed or stopped 06 is not reused
        return None
    try:
        p06, m06 = (json.loads((d / f).read_text()) for f in ("params.json", "metrics.json"))
    except (OSError, ValueError):
        return None
    same = ["n_questions", "steps", "group_size", "questions_per_step", "lr", "beta", "max_new_tokens",
            "temperature", "eval_every", "n_curve", "n_test", "n_test_ood", "eval_max_new_tokens", "sft_checkpoint",
            "seeds", "k_samples", "k_temperature"]
    mine = dict(globals())
    if p06.get("backend") != "ours" or any(p06.get(k) != mine.get(k) for k in same) or "test_acc" not in m06:
        return None
    return m06


m06 = load_06()
from06 = {"GRPO+OS": "os_rule", "GRPO+PS": "ps_rule"}
reused = [m for m in methods if m06 and from06.get(m) in m06["test_acc"]]


def job(method: str, s: int) -> dict:
    name, sup = SPEC[method]
    cfg = dict(group_size=group_size, questions_per_step=questions_per_step, steps=steps,
               lr=lr_overrides.get(method, lr), beta=beta, dpo_beta=dpo_beta, max_new_tokens=max_new_tokens,
               temperature=temperature, supervision=sup, reward="rule", seed=s, eval_every=eval_every,
               checkpoint_every=checkpoint_every)
    return dict(checkpoint=str(ckpt), method=name, label=method, cfg=cfg, n_questions=n_questions, evals=evals,
                curve=("test", n_curve) if eval_every else None, threads=threads, eval_max_new_tokens=eval_max_new_tokens,
                k=kspec if method == "GRPO+OS" else None, work_dir=str(run.path(f"jobs/{method}-{s}")))


specs = [job(m, s) for m in methods if m not in reused for s in seeds]
if m06 is None:  # the SFT model's greedy accuracy and Maj@K/Pass@K
    specs.insert(0, dict(checkpoint=str(ckpt), method="none", label="SFT", cfg=dict(seed=seeds[0]), evals=evals,
                         k=kspec, threads=threads, eval_max_new_tokens=eval_max_new_tokens,
                         work_dir=str(run.path("jobs/SFT"))))
t0 = time.time()
results = rl.run_jobs(specs, processes=processes)
print(f"{len(specs)} runs in {time.time() - t0:.0f}s; reused from 06: {reused or 'none'}")

# %% [markdown]
# ## Per-seed test accuracy of every method

# %%
test_acc, ood_acc, curve_rows, kres = {}, {}, {}, {}
for r in results:
    test_acc.setdefault(r["label"], []).append(r["final"]["test"]["acc"])
    ood_acc.setdefault(r["label"], []).append(r["final"]["ood"]["acc"])
    curve_rows.setdefault(r["label"], []).append(
        [{"step": h["step"], "acc": h["acc"]} for h in r["history"] if "acc" in h])
    if r.get("k"):
        kres.setdefault(r["label"], []).append(r["k"])
if m06 is not None:
    test_acc["SFT"], ood_acc["SFT"] = [m06["sft_eval"]["test"]], [m06["sft_eval"]["ood"]]
    for m in reused:
        v = from06[m]
        test_acc[m], ood_acc[m] = m06["test_acc"][v], m06["ood_acc"][v]
        curve_rows[m] = []
        for s in seeds:
            h = m06["histories"].get(f"{v}/{s}", [])
            curve_rows[m].append([{"step": x["step"], "acc": x["acc"]} for x in h
                                  if "acc" in x and x.get("iteration", 0) == 0])
    for key, k in m06.get("k_results", {}).items():
        lab = {"sft": "SFT", "os_rule": "GRPO+OS"}.get(key.split("/")[0])
        if lab:
            kres.setdefault(lab, []).append(k)
sft_test = test_acc["SFT"][0]
final_df = pd.DataFrame([{"method": m, "online": rl.METHODS[SPEC[m][0]].online if m in SPEC else None,
                          "test acc": np.mean(v), "seed sd": np.std(v, ddof=1) if len(v) > 1 else 0.0,
                          "OOD acc": np.mean(ood_acc[m]), "seeds": len(v)} for m, v in test_acc.items()])
display(final_df.set_index("method").round(3))
run.log(test_acc=test_acc, ood_acc=ood_acc, n_test=n_test, seeds=seeds, reused_from_06=reused);

# %% [markdown]
# ## Figure 5 analogue: test accuracy over training steps
# Mean over seeds on `n_curve` test items; error bars are 95 % intervals (seed spread + binomial error).

# %%
COLORS = {"RFT": "tab:gray", "Online RFT": "tab:orange", "GRPO+OS": "tab:blue", "GRPO+PS": "tab:green",
          "DPO": "tab:purple", "PPO": "tab:red"}
fig, ax = plt.subplots(figsize=(7, 4.2))
ax.axhline(sft_test, color="black", ls="--", lw=1, label=f"SFT ({sft_test:.2f})")
curve_data = {}
for m in methods:
    rows = [pd.DataFrame(c) for c in curve_rows.get(m, []) if c]
    if not rows:
        continue
    df = pd.concat(rows)
    pts = []
    for st, grp in df.groupby("step"):
        v = grp["acc"].tolist()
        iv = findings.diff_interval(v, [0.0] * len(v), n_curve, paired=True)
        pts.append((st, float(np.mean(v)), iv.hi - iv.delta))
    xs, ys, hs = zip(*pts)
    curve_data[m] = {"step": list(xs), "mean": list(ys), "half": list(hs)}
    ax.errorbar(xs, ys, yerr=hs, marker="o", capsize=3, label=m, color=COLORS.get(m))
ax.set(xlabel="training step", ylabel=f"greedy accuracy (toy test, {n_curve} items)", ylim=(0, 1),
       title=f"Figure 5 analogue: same SFT start, questions and budget ({len(seeds)} seeds)")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
run.savefig(fig, "fig5.png")
plt.show()
run.log(curves=curve_data);

# %% [markdown]
# ## Figure 7 analogue: Maj@K and Pass@K, SFT vs GRPO+OS
# `k_samples` samples per test item at temperature `k_temperature`; unbiased Pass@K, Maj@K by answer vote
# among the first K samples. Error bars: 95 % binomial intervals (and the seed spread of the GRPO runs).

# %%
def kcurve(label: str, kind: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for k in kres.get(label, []):
        for kk, v in k[kind].items():
            out.setdefault(int(kk), []).append(v)
    return out


fig, ax = plt.subplots(figsize=(6.5, 4.2))
kdata = {}
for label, ls in (("SFT", "--"), ("GRPO+OS", "-")):
    for kind, mk in (("maj", "o"), ("pass", "s")):
        c = kcurve(label, kind)
        if not c:
            continue
        ks = sorted(c)
        ys = [np.mean(c[k]) for k in ks]
        hs = [findings.diff_interval(c[k], [0.0] * len(c[k]), n_test, paired=True).binom_half if len(c[k]) == 1 else
              findings.diff_interval(c[k], [0.0] * len(c[k]), n_test, paired=True).hi - np.mean(c[k]) for k in ks]
        kdata[f"{kind}/{label}"] = {"K": ks, "mean": ys, "half": hs}
        ax.errorbar(ks, ys, yerr=hs, ls=ls, marker=mk, capsize=3, label=f"{'Maj' if kind == 'maj' else 'Pass'}@K {label}")
ax.set(xscale="log", xlabel="K (samples)", ylabel="accuracy (toy test)", ylim=(0, 1),
       title=f"Figure 7 analogue: {n_test} test items, T={k_temperature}")
if kdata:
    ks = kdata[next(iter(kdata))]["K"]
    ax.set_xticks(ks, [str(k) for k in ks])
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
run.savefig(fig, "fig7.png")
plt.show()
run.log(maj_pass_ci=kdata,  # per curve: K, mean over seeds, 95 % half-width
        maj_pass={lab: {kind: {str(k): float(np.mean(v)) for k, v in kcurve(lab, kind).items()}
                        for kind in ("maj", "pass")} for lab in ("SFT", "GRPO+OS") if lab in kres});

# %% [markdown]
# ## What reproduces
# Each §5.2.2 finding against our numbers: Δ = mean over seeds of (a − b) on the test split with its 95 %
# interval; the verdict is read off the interval (`dsm_utils.findings`). Methods trained with the same seed
# are paired by seed.

# %%
rows = []


def have(*ms):
    return all(m in test_acc for m in ms)


def claim(text, a, b, **kw):
    rows.append(findings.finding(text, test_acc[a], test_acc[b], n_test, paired=len(test_acc[a]) == len(test_acc[b]),
                                 detail=f"{a} {np.mean(test_acc[a]):.3f} vs {b} {np.mean(test_acc[b]):.3f}", **kw))


if have("Online RFT", "RFT"):
    claim("Online RFT beats RFT", "Online RFT", "RFT", source="§5.2.2, Fig. 5")
if have("GRPO+OS", "Online RFT"):
    claim("GRPO+OS beats Online RFT", "GRPO+OS", "Online RFT", source="§5.2.2, Fig. 5")
if have("GRPO+PS", "GRPO+OS"):
    claim("GRPO+PS beats GRPO+OS", "GRPO+PS", "GRPO+OS", source="§5.2.2, Fig. 5")
on = [m for m in methods if m in test_acc and rl.METHODS[SPEC[m][0]].online]
off = [m for m in methods if m in test_acc and not rl.METHODS[SPEC[m][0]].online]
if on and off:  # per seed: mean over the online methods vs mean over the offline ones
    a = list(np.mean([test_acc[m] for m in on], axis=0))
    b = list(np.mean([test_acc[m] for m in off], axis=0))
    rows.append(findings.finding("online sampling beats offline sampling", a, b, n_test, paired=True,
                                 source="§5.2.2", detail=f"{', '.join(on)} {np.mean(a):.3f} vs {', '.join(off)} "
                                                         f"{np.mean(b):.3f}"))
if have("GRPO+OS", "SFT"):
    rows.append(findings.finding("RL improves over the SFT model", test_acc["GRPO+OS"], test_acc["SFT"] * len(seeds),
                                 n_test, paired=True, source="§4.2, Table 5",
                                 detail=f"GRPO+OS {np.mean(test_acc['GRPO+OS']):.3f} vs SFT {sft_test:.3f}"))
K = k_samples
if kcurve("SFT", "maj").get(K) and kcurve("GRPO+OS", "maj").get(K):  # Figure 7's three claims
    kv = {lab: {"maj": kcurve(lab, "maj")[K], "pass": kcurve(lab, "pass")[K], "pass1": kcurve(lab, "pass")[1]}
          for lab in ("SFT", "GRPO+OS")}
    rows += findings.maj_pass_findings(kv["GRPO+OS"], kv["SFT"], n_test, K, margin=pass_margin)
fdf = pd.DataFrame([f.to_dict() for f in rows])
display(fdf[["claim", "status", "delta", "ci", "source", "detail"]] if len(fdf) else fdf)
total = round(time.time() - t_start, 1)
run.finish(findings=[f.to_dict() for f in rows], steps=steps, group_size=group_size,
           questions_per_step=questions_per_step, total_seconds=total)
print(f"07 done in {total:.0f}s")
