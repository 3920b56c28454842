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
# > "Online RFT significantly outperforms RFT […] at the later stage of training […] GRPO+OS surpasses Online
# > RFT, since GRPO+OS can penalize the wrong responses and reinforce the correct ones with different
# > magnitudes […] GRPO+PS shows superior performance compared to GRPO+OS" — §5.2.2, Figure 5
#
# > "RL enhances Maj@K's performance but not Pass@K. These findings indicate that RL enhances the model's
# > overall performance by rendering the output distribution more robust, in other words, it seems that the
# > improvement is attributed to boosting the correct response from TopK rather than the enhancement of
# > fundamental capabilities." — §5.2.2, Figure 7
#
# **Setting.** Every method starts from the same SFT checkpoint (05), sees the same questions in the same
# order (a (seed, step) RNG) and the same sample budget (`questions_per_step` × G outputs per step; offline
# methods sample them from π_sft, online ones from π_θ). Rewards are the rule checker's (the paper's GRPO
# uses a learned RM; 06 compares rule vs learned rewards). PPO's value model is initialised from the policy.

# %% tags=["parameters"]
run_dir = "runs/local/07_unified_paradigm"  # the runner sets runs/<profile>/07_unified_paradigm
data_dir = ""  # empty = $DSM_DATA_DIR, else ./data
seed = 0
seeds = [0]  # training seeds; mean ± std over them
device = "auto"
threads = 1  # torch CPU threads (0 = leave as is)
sft_checkpoint = ""  # empty = this profile's 05_sft/checkpoint
fallback_sft_steps = 200  # when no 05 checkpoint exists
methods = ["RFT", "Online RFT", "GRPO+OS", "GRPO+PS", "DPO", "PPO"]
n_questions = 2000
steps = 30
group_size = 8
questions_per_step = 4
lr = 0.0001
lr_overrides = {}  # per-method learning rates, e.g. {"DPO" = 0.00003}
beta = 0.04
dpo_beta = 0.1
max_new_tokens = 64
temperature = 1.0
eval_every = 10
n_eval = 100
n_eval_ood = 50
eval_max_new_tokens = 96
eval_batch_size = 100
reuse_06 = True  # take GRPO+OS / GRPO+PS (first seed) from 06 when its settings are the same
k_max = 16  # Figure 7 = Maj@K and Pass@K for K = 1..k_max
n_k_items = 100
k_temperature = 0.7
pass_tolerance = 0.03  # "Pass@K not raised" = |Δ Pass@k_max| within this

# %%
import copy
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from dsm_utils import evaluation, benchmarks, models, problems as P, repo_path, reward_models, rl, sft, tracking, \
    training
from dsm_utils.generation import HFGenerator

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
training.seed_everything(seed)
n_threads = training.set_threads(threads)
dev = training.pick_device(device)
t_start = time.time()
print(f"run folder {run.dir} · device {dev} · {n_threads} threads")

# %% [markdown]
# ## Table 10, from the code
# The trainer (`rl.train`) reads these very `Method` objects (sampler, gradient-coefficient function, loss
# kind), so the table cannot drift from what runs below.

# %%
t10 = rl.table10()
display(t10)

# %% [markdown]
# ## Start: the SFT model, the questions, the test metric

# %%
ckpt = repo_path(sft_checkpoint) if sft_checkpoint else run.sibling("05_sft") / "checkpoint"
sft_model, tok, sft_source = sft.load_instruct_model(ckpt, seed=seed, device=dev,
                                                     fallback_steps=fallback_sft_steps)
for p_ in sft_model.parameters():
    p_.requires_grad_(False)

pool = P.generate(n_questions, seed=seed, prefix="rl")  # the same RL question stream as 06
test_probs = P.generate(n_eval, seed=0, prefix="toyeval")  # = load_benchmark("toy")[:n_eval]
ood_probs = P.generate(n_eval_ood, seed=0, difficulty=P.OOD, prefix="toyood")


def accuracy(model, probs) -> float:
    return sft.greedy_accuracy(model, tok, probs, batch_size=eval_batch_size, max_new_tokens=eval_max_new_tokens)


def eval_fn(model) -> dict:
    return {"acc": accuracy(model, test_probs), "acc_ood": accuracy(model, ood_probs) if ood_probs else None}


sft_eval = eval_fn(sft_model)
print(sft_source, "· SFT greedy accuracy", sft_eval)
run.log(sft_source=sft_source, sft_eval=sft_eval, table10=t10.reset_index().to_dict(orient="records"))

# %% [markdown]
# ## Training every method
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


def make_cfg(method: str, s: int) -> rl.RLConfig:
    return rl.RLConfig(group_size=group_size, questions_per_step=questions_per_step, steps=steps,
                       lr=lr_overrides.get(method, lr), beta=beta, dpo_beta=dpo_beta, max_new_tokens=max_new_tokens,
                       temperature=temperature, supervision=SPEC[method][1], reward="rule", seed=s,
                       eval_every=eval_every)


def fresh_policy():
    pol = copy.deepcopy(sft_model)
    for p_ in pol.parameters():
        p_.requires_grad_(True)
    return pol.train()


def from_06(method: str, s: int):
    """GRPO+OS / GRPO+PS history of 06 when 06 ran the same configuration (saves two runs' time)."""
    if not reuse_06 or method not in ("GRPO+OS", "GRPO+PS"):
        return None
    d = run.sibling("06_grpo")
    try:
        p06, m06 = (json.loads((d / f).read_text()) for f in ("params.json", "metrics.json"))
    except (OSError, ValueError):
        return None
    same = ["n_questions", "steps", "group_size", "questions_per_step", "lr", "beta", "mu", "max_new_tokens",
            "temperature", "eval_every", "n_eval", "n_eval_ood", "eval_max_new_tokens", "sft_checkpoint"]
    mine = dict(globals(), lr=lr_overrides.get(method, lr), mu=1)
    if p06.get("seed") != s or p06.get("backend") != "ours" or any(p06.get(k) != mine.get(k) for k in same):
        return None
    key = {"GRPO+OS": "os_rule", "GRPO+PS": "ps_rule"}[method]
    h = m06.get("histories", {}).get(key)
    return h if h and m06.get("sft_eval") == sft_eval else None


histories: dict[str, dict[int, list[dict]]] = {m: {} for m in methods}
grpo_policy = None
timings = {}
for s in seeds:
    for method in methods:
        t0 = time.time()
        reused = from_06(method, s)
        if reused is not None:
            histories[method][s] = reused
            print(f"{method} seed {s}: taken from 06_grpo (same settings)")
            continue
        name, _ = SPEC[method]
        cfg = make_cfg(method, s)
        pol = fresh_policy()
        kw = {}
        if name == "PPO":
            kw["value_model"] = reward_models.make_value_model(pol, seed=s)
            for p_ in kw["value_model"].parameters():
                p_.requires_grad_(True)
        hist = rl.train(name, pol, sft_model, tok, pool, cfg, eval_fn=eval_fn, **kw)
        histories[method][s] = [{"step": 0, **sft_eval}] + hist
        timings[f"{method}/{s}"] = round(time.time() - t0, 1)
        if method == "GRPO+OS" and s == seeds[0]:
            grpo_policy = pol
        print(f"{method} seed {s}: acc {sft_eval['acc']:.3f} → {hist[-1].get('acc'):.3f} [{time.time() - t0:.0f}s]")
        run.log(histories=histories, timings=timings)

# %% [markdown]
# ## Figure 5 analogue: test accuracy over training steps

# %%
def curve(method: str, key: str = "acc") -> pd.DataFrame:
    """Mean and std over seeds of ``key`` at the evaluated steps."""
    frames = [pd.DataFrame(h)[["step", key]].dropna().assign(seed=s) for s, h in histories[method].items()]
    df = pd.concat(frames)
    return df.groupby("step")[key].agg(["mean", "std", "count"]).reset_index()


COLORS = {"RFT": "tab:gray", "Online RFT": "tab:orange", "GRPO+OS": "tab:blue", "GRPO+PS": "tab:green",
          "DPO": "tab:purple", "PPO": "tab:red"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, key, title in ((axes[0], "acc", f"toy test ({n_eval})"), (axes[1], "acc_ood", f"toy OOD ({n_eval_ood})")):
    for m in methods:
        c = curve(m, key)
        ax.plot(c["step"], c["mean"], marker="o", label=m, color=COLORS.get(m))
        if len(seeds) > 1:
            ax.fill_between(c["step"], c["mean"] - c["std"].fillna(0), c["mean"] + c["std"].fillna(0),
                            color=COLORS.get(m), alpha=0.15)
    ax.set(xlabel="training step", ylabel="greedy accuracy", title=title)
axes[0].legend()
fig.suptitle(f"Figure 5 analogue: same SFT start, same questions and sample budget (seeds {seeds})")
fig.tight_layout()
run.savefig(fig, "fig5_methods.png")
plt.show()

final_rows = []
for m in methods:
    acc = [h[-1].get("acc") for h in histories[m].values()]
    ood = [h[-1].get("acc_ood") for h in histories[m].values()]
    final_rows.append({"method": m, "online": rl.METHODS[SPEC[m][0]].online, "acc mean": np.mean(acc),
                       "acc std": np.std(acc) if len(acc) > 1 else None, "OOD mean": np.mean(ood),
                       "Δ vs SFT": np.mean(acc) - sft_eval["acc"], "seeds": len(acc)})
final_df = pd.DataFrame(final_rows).set_index("method")
display(final_df.round(3))
run.log(final={m: {"acc": r["acc mean"], "acc_std": r["acc std"], "acc_ood": r["OOD mean"]}
               for m, r in zip(final_df.index, final_rows)},
        curves={m: curve(m).to_dict(orient="list") for m in methods})

# %% [markdown]
# ## Figure 7 analogue: Maj@K and Pass@K of the SFT model vs the GRPO model
# `k_max` samples per question at temperature `k_temperature` on `n_k_items` toy test questions, graded by
# `evaluation.evaluate` (unbiased Pass@K, Maj@K by answer vote).

# %%
if grpo_policy is None:  # GRPO+OS was reused from 06: its saved checkpoint is that policy
    ck06 = run.sibling("06_grpo") / "checkpoint"
    if models.checkpoint_exists(ck06) and json.loads((ck06 / "train_state.json").read_text()).get("variant") == "os_rule":
        grpo_policy = models.load_model(ck06, tok).to(dev).eval()
items = benchmarks.load_benchmark("toy", limit=n_k_items)
kcurves = {}
for label, m in (("SFT", sft_model), ("GRPO+OS", grpo_policy)):
    if m is None:
        print(f"no {label} model for the Maj@K/Pass@K comparison")
        continue
    res = evaluation.evaluate(HFGenerator(m, tok, batch_size=eval_batch_size, device=dev), items, "zero_shot_cot",
                              n_samples=k_max, temperature=k_temperature, max_new_tokens=eval_max_new_tokens,
                              seed=seed, progress=True)
    kcurves[label] = {"maj": res.metrics["maj_curve"], "pass": res.metrics["pass_curve"]}
fig, ax = plt.subplots(figsize=(6, 4))
for label, c in kcurves.items():
    ks = list(c["maj"])
    ls = "-" if label == "GRPO+OS" else "--"
    ax.plot(ks, [c["maj"][k] for k in ks], ls, marker="o", label=f"Maj@K {label}")
    ax.plot(ks, [c["pass"][k] for k in ks], ls, marker="s", label=f"Pass@K {label}")
ax.set(xscale="log", xlabel="K", ylabel="accuracy", title=f"toy test, T={k_temperature}")
ax.legend(fontsize=8)
run.savefig(fig, "fig7_maj_pass.png")
plt.show()
if kcurves:
    display(pd.DataFrame({f"{kind}@K {lab}": c[kind] for lab, c in kcurves.items() for kind in ("maj", "pass")})
            .round(3).T)
run.log(maj_pass={lab: {kind: {str(k): v for k, v in c[kind].items()} for kind in c} for lab, c in kcurves.items()})

# %% [markdown]
# ## What reproduces
# Each finding of §5.2 compared with our toy numbers (final greedy accuracy on the toy test; mean over
# `seeds`, ± std when several). "yes" means the sign of the paper's effect holds; a gap smaller than two
# standard errors (the binomial error of `n_eval` test items, or the seeds' spread if larger) is flagged
# "within noise": such a "yes" or "no" is not evidence either way.

# %%
def fin(m):
    if m not in histories or not histories[m]:
        return None, None
    v = [h[-1].get("acc") for h in histories[m].values()]
    return float(np.mean(v)), (float(np.std(v)) if len(v) > 1 else None)


def fmt(m):
    mu, sd = fin(m)
    return "—" if mu is None else (f"{mu:.3f}" if sd is None else f"{mu:.3f} ± {sd:.3f}")


def binom_se(p, n):
    """Standard error of an accuracy p measured on n items."""
    return float(np.sqrt(max(p * (1 - p), 1e-12) / max(n, 1)))


def noise_note(diff, se_diff, ok):
    """'yes'/'no', flagged when the gap is within 2 standard errors (test items) of zero."""
    word = "yes" if ok else "no"
    return word + (" (within noise: |Δ| < 2 SE)" if abs(diff) < 2 * se_diff else "")


def better(a, b, ge=False):
    (ma, sa), (mb, sb) = fin(a), fin(b)
    if ma is None or mb is None:
        return "n/a"
    if abs(ma - mb) < 1e-9:
        return "tie" + (" (counts for ≥)" if ge else "")
    ok = ma >= mb if ge else ma > mb
    # noise: the seeds' spread, and the sampling error of n_eval test items (per seed, averaged over seeds)
    se = np.sqrt(binom_se(ma, n_eval) ** 2 + binom_se(mb, n_eval) ** 2) / np.sqrt(len(seeds))
    se = max(se, np.sqrt((sa or 0.0) ** 2 + (sb or 0.0) ** 2))
    return noise_note(ma - mb, se, ok)


findings = [
    {"paper claim (§5.2.2)": "Online RFT > RFT (later in training)", "ours": f"{fmt('Online RFT')} vs {fmt('RFT')}",
     "reproduced": better("Online RFT", "RFT")},
    {"paper claim (§5.2.2)": "GRPO+OS > Online RFT", "ours": f"{fmt('GRPO+OS')} vs {fmt('Online RFT')}",
     "reproduced": better("GRPO+OS", "Online RFT")},
    {"paper claim (§5.2.2)": "GRPO+PS ≥ GRPO+OS", "ours": f"{fmt('GRPO+PS')} vs {fmt('GRPO+OS')}",
     "reproduced": better("GRPO+PS", "GRPO+OS", ge=True)},
    {"paper claim (§5.2.2)": "RL (GRPO) improves over the SFT model", "ours": f"{fmt('GRPO+OS')} vs {sft_eval['acc']:.3f}",
     "reproduced": "n/a" if fin("GRPO+OS")[0] is None else noise_note(
         fin("GRPO+OS")[0] - sft_eval["acc"], np.sqrt(2) * binom_se(sft_eval["acc"], n_eval),
         fin("GRPO+OS")[0] > sft_eval["acc"])},
]
on = [m for m in methods if rl.METHODS[SPEC[m][0]].online]
off = [m for m in methods if not rl.METHODS[SPEC[m][0]].online]
if on and off:
    mon, moff = np.mean([fin(m)[0] for m in on]), np.mean([fin(m)[0] for m in off])
    findings.append({"paper claim (§5.2.2)": "online sampling beats offline (mean of methods)",
                     "ours": f"{mon:.3f} ({', '.join(on)}) vs {moff:.3f} ({', '.join(off)})",
                     "reproduced": noise_note(mon - moff, np.sqrt(2) * binom_se(moff, n_eval), mon > moff)})
if "SFT" in kcurves and "GRPO+OS" in kcurves:
    K = k_max
    s_, g_ = kcurves["SFT"], kcurves["GRPO+OS"]
    findings.append({"paper claim (§5.2.2)": f"RL raises Maj@K (K={K})",
                     "ours": f"SFT {s_['maj'][K]:.3f} → GRPO {g_['maj'][K]:.3f}",
                     "reproduced": noise_note(g_["maj"][K] - s_["maj"][K], np.sqrt(2) * binom_se(s_["maj"][K], n_k_items),
                                              g_["maj"][K] > s_["maj"][K])})
    dp = g_["pass"][K] - s_["pass"][K]
    findings.append({"paper claim (§5.2.2)": f"RL does not raise Pass@K (K={K})",
                     "ours": f"SFT {s_['pass'][K]:.3f} → GRPO {g_['pass'][K]:.3f} (Δ {dp:+.3f})",
                     "reproduced": "yes" if dp <= pass_tolerance else "no"})
    findings.append({"paper claim (§5.2.2)": "RL's gain is larger at K=1 than at K=max for Pass@K",
                     "ours": f"Δ Pass@1 {g_['pass'][1] - s_['pass'][1]:+.3f}, Δ Pass@{K} {dp:+.3f}",
                     "reproduced": noise_note(g_["pass"][1] - s_["pass"][1] - dp,
                                              np.sqrt(2) * binom_se(s_["pass"][K], n_k_items),
                                              g_["pass"][1] - s_["pass"][1] > dp)})
findings_df = pd.DataFrame(findings)
display(findings_df)
run.log(findings=findings, seeds=seeds, steps=steps, group_size=group_size, questions_per_step=questions_per_step,
        total_seconds=round(time.time() - t_start, 1))
