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
# # 06 · Group Relative Policy Optimization (DeepSeekMath §4, Figure 6)
#
# > "we propose Group Relative Policy Optimization (GRPO), which obviates the need for additional value
# > function approximation as in PPO, and instead uses the average reward of multiple sampled outputs,
# > produced in response to the same question, as the baseline." — §4.1.1
#
# For each question $q$, GRPO samples a group of outputs $\{o_1,\dots,o_G\}$ from the old policy
# $\pi_{\theta_{old}}$ and maximises (eq. 3)
#
# $$\mathcal{J}_{GRPO}(\theta) = \mathbb{E}\Big[\frac{1}{G}\sum_{i=1}^{G}\frac{1}{|o_i|}\sum_{t=1}^{|o_i|}
# \Big\{\min\Big[\frac{\pi_\theta(o_{i,t}|q,o_{i,<t})}{\pi_{\theta_{old}}(o_{i,t}|q,o_{i,<t})}\hat A_{i,t},\;
# \mathrm{clip}\Big(\frac{\pi_\theta(o_{i,t}|q,o_{i,<t})}{\pi_{\theta_{old}}(o_{i,t}|q,o_{i,<t})},1-\varepsilon,1+\varepsilon\Big)\hat A_{i,t}\Big]
# -\beta\,\mathbb{D}_{KL}[\pi_\theta\|\pi_{ref}]\Big\}\Big]$$
#
# with the unbiased KL estimator (eq. 4)
# $\mathbb{D}_{KL}[\pi_\theta\|\pi_{ref}] = \frac{\pi_{ref}(o_{i,t}|q,o_{i,<t})}{\pi_\theta(o_{i,t}|q,o_{i,<t})}
# - \log\frac{\pi_{ref}(o_{i,t}|q,o_{i,<t})}{\pi_\theta(o_{i,t}|q,o_{i,<t})} - 1$.
#
# **Outcome supervision** (§4.1.2): one reward $r_i$ per output, normalised within the group,
# $\hat A_{i,t} = \tilde r_i = \frac{r_i - \mathrm{mean}(\mathbf r)}{\mathrm{std}(\mathbf r)}$ for every token $t$.
#
# **Process supervision** (§4.1.3): a reward per reasoning step, $\mathbf R = \{\{r_1^{index(1)},\dots\},\dots\}$,
# normalised over all steps of the group, $\tilde r_i^{index(j)} = \frac{r_i^{index(j)} - \mathrm{mean}(\mathbf R)}{\mathrm{std}(\mathbf R)}$,
# and each token gets the sum of the normalised rewards of the steps that end at or after it:
# $\hat A_{i,t} = \sum_{index(j)\ge t}\tilde r_i^{index(j)}$.
#
# **Iterative RL** (§4.1.4, paraphrased): as the policy improves, the old reward model may no longer supervise it
# well; iterative GRPO builds new reward-model training data from the policy's samples, continues training the
# reward model with a replay of 10 % of the historical data, sets the reference model to the current policy and
# continues GRPO (Figure 6 shows two iterations with DeepSeekMath-Instruct 7B).
#
# **Toy world: which choices and why.** A 1 M-parameter model that only does chain-of-thought gains almost
# nothing from GRPO on 2 cores (an earlier version of this notebook: SFT 0.18–0.29, GRPO 0.14–0.27). Following
# Zhao et al. 2025 ("Echo Chamber", arXiv 2504.07912), 05 now trains the instruct model on **two behaviours
# under one prompt**: chain-of-thought with mental arithmetic (75 % of the SFT data; error-prone for a tiny
# model) and a short program whose printed value is the answer (25 %; run by `problems.run_program`, a
# restricted evaluator of the toy's straight-line programs that stands in for the sandbox). Greedy decoding of
# the SFT model picks CoT; sampling picks a program about a quarter of the time, and programs are right several
# times as often. Reward (the rule checker, per outcome: the boxed or printed answer; per step: each
# equation or assignment line) lets GRPO learn which behaviour pays — the mechanism the paper's §5.2.2 reads
# off Figure 7 (RL boosts answers already in the model's top-K). Learning rate, steps and questions per
# step were chosen on the **validation** split (`toyval`, see `params/cpu/06_grpo.yaml`; the temperature 0.7
# is the earlier toy's); the test split (`toyeval`, 500
# items) and the OOD split (`toyood`, 500) are used only for the numbers below. Several seeds run as separate
# single-thread processes (`rl.run_jobs`), two at a time on 2 cores. The learned ORM/PRM variants (scalar-head
# models trained on the checker's labels of SFT samples) stay available (`variants`) but are off in the cpu
# profile for time.

# %% tags=["parameters"]
run_dir = "runs/local/06_grpo"  # the runner sets runs/<profile>/06_grpo
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
seeds = [0]  # RL seeds (one process each); reported numbers are means over them with 95 % intervals
processes = 2  # worker processes for the seeds (1: inline)
device = "auto"  # one of: "auto", "cpu", "cuda", "mps"
checkpoint_every = 5  # resume: each run checkpoints under <run>/jobs/ and a rerun reuses finished runs
threads = 1  # torch CPU threads per process (0: leave as is)
sft_checkpoint = ""  # empty: this profile's 05_sft/checkpoint
fallback_sft_steps = 200  # when no 05 checkpoint exists: a quick inline SFT (same code as 05)
data = "toy"  # one of: "toy", "real"; "toy": generated problems; "real": GSM8K train questions (backend "trl" only)
n_questions = 2000  # RL question pool
steps = 30  # GRPO steps per variant (and per iteration of iterative GRPO)
group_size = 8  # G
questions_per_step = 8
lr = 0.0001
beta = 0.04
mu = 1  # policy updates per sampling round (the paper: 1)
max_new_tokens = 64
temperature = 0.7
eval_every = 10  # greedy accuracy on n_curve test items every eval_every steps (Figure 6 curves)
n_curve = 200
n_test = 500  # toy test items (in-distribution) for the reported numbers
n_test_ood = 500  # toy_ood items
eval_max_new_tokens = 64
k_samples = 16  # Maj@K / Pass@K samples per test item (Figure 7, rendered in 07)
k_temperature = 0.7
variants = ["os_rule", "ps_rule"]  # each one of: "os_rule", "ps_rule", "os_orm", "ps_prm"
rm_questions = 128  # reward-model data: questions x samples from the SFT model (orm/prm variants)
rm_samples = 4
rm_steps = 150
rm_lr = 0.0003
iterations = 2  # iterative GRPO: os_rule runs this many iterations of `steps` (0 or 1: off)
gain_target = 0.10  # the target: GRPO greedy ≥ SFT + 10 points
save_variant = "os_rule"  # one of: "os_rule", "ps_rule", "os_orm", "ps_prm"; the seed-0 policy (after iteration 1) becomes runs/<profile>/06_grpo/checkpoint
backend = "ours"  # one of: "ours", "trl"; "ours": dsm_utils.rl; "trl": TRL GRPOTrainer for outcome supervision (gpu/cluster)
use_vllm = False  # backend "trl": generate with vLLM (colocate)
num_processes = 1  # backend "trl": more than 1 runs accelerate launch through dsm_utils.launch
accelerate_config = ""  # empty: in-process; a name under params/<profile>/accelerate/ (cpu, ddp, fsdp, zero2, zero3) or a yaml path

# %%
import copy
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

from dsm_utils import findings, models, problems as P, repo_path, rl, sft, tracking, training

run = tracking.start_run(run_dir, tracking.notebook_params(globals()), keep=["jobs"], notebook="06_grpo")
training.seed_everything(seed)
n_threads = training.set_threads(threads)
dev = training.pick_device(device)
t_start = time.time()
print(f"run folder {tracking.show_path(run.dir)} · device {dev} · {n_threads} threads · backend {backend} · seeds {seeds}")

# %% [markdown]
# ## Eq. 3 in code
# The advantages and the loss the trainer minimises (the functions the tests check against TRL and by hand):

# %%
print(inspect.getsource(rl.outcome_advantages))

# %%
print(inspect.getsource(rl.grpo_loss))

# %% [markdown]
# ## The starting point: the instruct (SFT) model of 05

# %%
ckpt = repo_path(sft_checkpoint) if sft_checkpoint else run.sibling("05_sft") / "checkpoint"
if not sft_checkpoint and not tracking.is_complete(run.sibling("05_sft")):
    ckpt = run.path("sft_start")  # 05 did not finish (or never ran): a quick inline SFT instead of its checkpoint
sft_model, tok, sft_source = sft.load_instruct_model(ckpt, seed=seed, device=dev,
                                                     fallback_steps=fallback_sft_steps)
if not models.checkpoint_exists(ckpt):  # the worker processes load the start from disk
    ckpt = training.save_checkpoint(run.path("sft_start"), sft_model, tok, state={"source": sft_source})
for p in sft_model.parameters():
    p.requires_grad_(False)
summ = models.model_summary(sft_model)
print(f"start: {tracking.show_path(sft_source) if models.checkpoint_exists(ckpt) else sft_source} ({summ['params_m']} M parameters)")

# %% [markdown]
# ## One GRPO step, by hand
# One question, $G$ sampled outputs, their rewards (outcome and per step) and the advantages the trainer
# will use. Outputs with the same reward get the same outcome advantage; if all $G$ outputs are right (or all
# wrong) every advantage is 0 and the question teaches nothing — why GRPO needs questions of the right
# difficulty. Note the two behaviours among the samples.

# %%
pool = P.generate(n_questions, seed=seed, prefix="rl")
for q in pool[:16]:  # the first question whose group has both right and wrong outputs (else the last tried)
    comp = rl.sample(sft_model, tok, [P.chat_prompt(q.question)], n=group_size, max_new_tokens=max_new_tokens,
                     temperature=temperature, seed=seed)
    texts = tok.batch_decode(comp, skip_special_tokens=True)
    checks = [P.check_solution(t, q) for t in texts]
    r = torch.tensor([1.0 if c.correct else 0.0 for c in checks])
    if 0 < r.sum() < group_size:
        break
adv_os = rl.outcome_advantages(r, group_size)
step_ends = [rl.char_to_token_ends(tok, ids, [s.end for s in c.steps]) for ids, c in zip(comp, checks)]
T = max(len(c) for c in comp)
adv_ps = rl.process_advantages([c.step_rewards for c in checks], step_ends, group_size, T)
print(q.question, "\nreference:", q.cot.replace("\n", " | "))
pd.set_option("display.max_colwidth", 70)
display(pd.DataFrame({"output": [t.replace("\n", " | ") for t in texts], "behaviour": [P.behaviour(t) for t in texts],
                      "reward r_i": r.tolist(), "outcome Â_i": adv_os.round(decimals=2).tolist(),
                      "step rewards": [c.step_rewards for c in checks],
                      "process Â_i,1": adv_ps[:, 0].round(decimals=2).tolist()}))

# %% [markdown]
# The loss of this step (eq. 3 with $\pi_{\theta_{old}} = \pi_\theta$ since μ = 1, so the ratio is 1 and its
# gradient is $\hat A_{i,t}\nabla\log\pi_\theta$; the KL term is 0 at the start because π_θ = π_ref):

# %%
batch = rl.make_batch(tok, [P.chat_prompt(q.question)] * group_size, comp)
policy0 = copy.deepcopy(sft_model).train()
for p_ in policy0.parameters():
    p_.requires_grad_(True)
logp = rl.token_logprobs(policy0, batch.input_ids, batch.attention_mask, batch.completion_mask)
with torch.no_grad():
    ref_logp = rl.token_logprobs(sft_model, batch.input_ids, batch.attention_mask, batch.completion_mask)
loss, stats = rl.grpo_loss(logp, logp.detach(), ref_logp, adv_os, batch.completion_mask, beta=beta)
print(" · ".join(f"{k} {v:.4f}" for k, v in stats.items()))
del policy0

# %% [markdown]
# ## GRPO runs: every variant × seed, two processes at a time
# Same start, same question stream, same sample budget (`questions_per_step` × G per step) for each variant:
#
# | variant | supervision | reward |
# |---|---|---|
# | `os_rule` | outcome | the rule checker's answer check; with `iterations` = 2 it continues as **iterative GRPO** (π_ref ← π_θ, new questions and samples) |
# | `ps_rule` | process | the rule checker, per equation / assignment line |
# | `os_orm`, `ps_prm` | outcome / process | a learned reward model trained on the checker's labels of SFT samples |
#
# The SFT model itself is one more job: its greedy accuracy and its Maj@K / Pass@K on the same test items.
# The test metric is greedy decoding graded by the rule checker (`rl.toy_eval`) — the same grader for SFT and
# RL, on the same items.

# %%
VARIANTS = {"os_rule": ("outcome", "rule"), "os_orm": ("outcome", "model"), "ps_rule": ("process", "rule"),
            "ps_prm": ("process", "model")}
LABELS = {"sft": "SFT (start)", "os_rule": "GRPO+OS (rule)", "os_orm": "GRPO+OS (ORM)", "ps_rule": "GRPO+PS (rule)",
          "ps_prm": "GRPO+PS (PRM)", "os_rule_iter2": "iterative GRPO+OS, iteration 2"}
unknown = [v for v in variants if v not in VARIANTS]
if unknown:
    raise ValueError(f"variants: unknown {unknown}; valid: {list(VARIANTS)}")
evals = {"test": n_test, "ood": n_test_ood}
kspec = {"split": "test", "n_items": n_test, "n": k_samples, "temperature": k_temperature} if k_samples > 1 else None


def job(variant: str, s: int) -> dict:
    sup, rew = VARIANTS[variant]
    cfg = dict(group_size=group_size, questions_per_step=questions_per_step, steps=steps, mu=mu, lr=lr, beta=beta,
               max_new_tokens=max_new_tokens, temperature=temperature, supervision=sup, reward=rew, seed=s,
               eval_every=eval_every, checkpoint_every=checkpoint_every)
    spec = dict(checkpoint=str(ckpt), method="GRPO", label=variant, cfg=cfg, n_questions=n_questions, evals=evals,
                curve=("test", n_curve) if eval_every else None, threads=threads,
                eval_max_new_tokens=eval_max_new_tokens,
                rm=dict(questions=rm_questions, samples=rm_samples, steps=rm_steps, lr=rm_lr),
                work_dir=str(run.path(f"jobs/{variant}-{s}")))
    if variant == "os_rule":
        spec["k"] = kspec
        spec["iterations"] = iterations if iterations > 1 else 0
    if variant == save_variant and s == seeds[0]:
        spec["save_to"] = str(run.path("checkpoint"))
    return spec


specs = [dict(checkpoint=str(ckpt), method="none", label="sft", cfg=dict(seed=seeds[0]), evals=evals, k=kspec,
              threads=threads, eval_max_new_tokens=eval_max_new_tokens, work_dir=str(run.path("jobs/sft")))]
specs += [job(v, s) for v in variants for s in seeds]
t0 = time.time()
results = rl.run_jobs(specs, processes=processes) if backend == "ours" and data == "toy" else []
print(f"{len(results)} runs in {time.time() - t0:.0f}s")

# %% [markdown]
# ## Results on the test split (means over seeds)
# Iteration 1 of `os_rule` is GRPO+OS itself (iteration 0 of `rl.iterative_grpo` is a plain GRPO run with the
# same seed); iteration 2 continues from it with π_ref reset, new questions and new samples.

# %%
def per_seed(label: str, split: str) -> list[float]:
    """Per-seed greedy accuracy of a variant on a split (``os_rule_iter2``: after iteration 2)."""
    out = []
    for r in results:
        if label == "os_rule" and r["label"] == "os_rule" and iterations > 1:
            out.append(next(h["iteration_eval"] for h in r["history"] if "iteration_eval" in h)[split]["acc"])
        elif label == "os_rule_iter2" and r["label"] == "os_rule" and iterations > 1:
            out.append(r["final"][split]["acc"])
        elif r["label"] == label and not (label == "os_rule_iter2"):
            out.append(r["final"][split]["acc"])
    return out


def program_share(label: str) -> list[float]:
    vals = []
    for r in results:
        if r["label"] == label.replace("_iter2", ""):
            it = [h["iteration_eval"] for h in r["history"] if "iteration_eval" in h]
            f = it[0] if (it and label == "os_rule") else r["final"]
            vals.append(f["test"]["program_share"])
    return vals


labels = ["sft"] + list(variants) + (["os_rule_iter2"] if "os_rule" in variants and iterations > 1 else [])
test_acc = {lab: per_seed(lab, "test") for lab in labels} if results else {}
ood_acc = {lab: per_seed(lab, "ood") for lab in labels} if results else {}
shares = {lab: program_share(lab) for lab in labels} if results else {}
n_seeds = len(seeds)
if results:
    sft_test, sft_ood = test_acc["sft"][0], ood_acc["sft"][0]  # greedy: one deterministic value
    table = pd.DataFrame([{"model": LABELS[lab], "test acc": np.mean(test_acc[lab]),
                           "± (seed sd)": np.std(test_acc[lab], ddof=1) if len(test_acc[lab]) > 1 else 0.0,
                           "OOD acc": np.mean(ood_acc[lab]), "program share": np.mean(shares[lab]),
                           "seeds": len(test_acc[lab])} for lab in labels]).set_index("model")
    display(table.round(3))
    run.log(test_acc=test_acc, ood_acc=ood_acc, program_share=shares, sft_eval={"test": sft_test, "ood": sft_ood},
            n_test=n_test, n_test_ood=n_test_ood, seeds=seeds, labels=LABELS);

# %% [markdown]
# ## What reproduces (95 % intervals: seed spread + binomial error of the test items)
# Verdicts are read off the interval (`dsm_utils.findings`): "reproduced" when it lies on the paper's side of
# 0, "not reproduced" when on the other side, "within noise" otherwise. SFT is one deterministic greedy value,
# so GRPO − SFT is paired by seed.

# %%
rows = []
if results:
    def sft_rep(split):
        return [(sft_test if split == "test" else sft_ood)] * n_seeds

    g = test_acc["os_rule"] if "os_rule" in test_acc else None
    if g:
        rows.append(findings.finding(
            "RL (GRPO+OS, rule reward) raises greedy accuracy over the SFT model", g, sft_rep("test"), n_test,
            paired=True, source="§4.2, Table 5",
            detail=f"GRPO {np.mean(g):.3f} vs SFT {sft_test:.3f}, {n_seeds} seeds × {n_test} test items; "
                   f"target ≥ +{gain_target:.2f}"))
        rows.append(findings.finding(
            "RL (GRPO+OS) also raises out-of-domain accuracy", ood_acc["os_rule"], sft_rep("ood"), n_test_ood,
            paired=True, source="§4.2",
            detail=f"GRPO {np.mean(ood_acc['os_rule']):.3f} vs SFT {sft_ood:.3f}, toy_ood ({n_test_ood} items)"))
    if "os_rule" in test_acc and "ps_rule" in test_acc:
        rows.append(findings.finding(
            "GRPO with process supervision beats outcome supervision", test_acc["ps_rule"], test_acc["os_rule"],
            n_test, paired=True, source="§5.2.2, Fig. 5",
            detail=f"PS {np.mean(test_acc['ps_rule']):.3f} vs OS {np.mean(test_acc['os_rule']):.3f}"))
    if "os_rule_iter2" in test_acc:
        rows.append(findings.finding(
            "iterative RL: iteration 2 beats iteration 1", test_acc["os_rule_iter2"], test_acc["os_rule"], n_test,
            paired=True, source="§4.1.4, Fig. 6",
            detail=f"iter 2 {np.mean(test_acc['os_rule_iter2']):.3f} vs iter 1 {np.mean(test_acc['os_rule']):.3f}"))
    fdf = pd.DataFrame([f.to_dict() for f in rows])
    display(fdf[["claim", "status", "delta", "ci", "source", "detail"]])
    run.log(findings=[f.to_dict() for f in rows]);

# %% [markdown]
# ## Figure 6 analogue: greedy test accuracy over training steps
# Mean over seeds on `n_curve` test items, with 95 % intervals (seed spread + binomial error); the dotted line
# marks the start of iteration 2 (π_ref ← π_θ, new questions and samples).

# %%
def curves(label: str) -> pd.DataFrame:
    frames = []
    for r in results:
        if r["label"] != label:
            continue
        h = pd.DataFrame(r["history"])
        if "acc" not in h:
            continue
        h = h.dropna(subset=["acc"]).copy()
        if "iteration" in h:
            h["step"] = h["step"] + h["iteration"] * steps
        frames.append(h[["step", "acc"]].assign(seed=r["seed"]))
    if not frames:
        return pd.DataFrame(columns=["step", "mean", "half"])
    df = pd.concat(frames)
    out = []
    for st, grp in df.groupby("step"):
        v = grp["acc"].tolist()
        iv = findings.diff_interval(v, [0.0] * len(v), n_curve, paired=True)
        out.append({"step": st, "mean": np.mean(v), "half": iv.hi - iv.delta})
    return pd.DataFrame(out)


curve_data = {}
if results and eval_every:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.axhline(sft_test, color="grey", ls="--", lw=1, label=f"SFT ({sft_test:.2f})")
    for v in variants:
        c = curves(v)
        curve_data[v] = c.to_dict(orient="list")
        if len(c):
            ax.errorbar(c["step"], c["mean"], yerr=c["half"], marker="o", capsize=3, label=LABELS[v])
    if "os_rule" in variants and iterations > 1:
        ax.axvline(steps, color="grey", ls=":", lw=1)
        ax.text(steps, 0.02, " iteration 2", fontsize=8, color="grey")
    ax.set(xlabel="GRPO step", ylabel=f"greedy accuracy (toy test, {n_curve} items)", ylim=(0, 1),
           title=f"Figure 6 analogue: {len(seeds)} seeds, 95 % intervals")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    run.savefig(fig, "fig6.png")
    plt.show()
run.log(curves=curve_data, histories={r["label"] + f"/{r['seed']}": r["history"] for r in results},
        k_results={f"{r['label']}/{r['seed']}": r.get("k") for r in results if r.get("k")},
        run_seconds={f"{r['label']}/{r['seed']}": r["seconds"] for r in results});

# %% [markdown]
# ## gpu / cluster: outcome-supervised GRPO with TRL's `GRPOTrainer`
# With `backend="trl"` the same objective runs in TRL (`loss_type="grpo"`, β, k3 KL without TRL's bias
# correction, G = `group_size`, optional vLLM generation) on GSM8K train questions (`data="real"`) or the toy
# questions; the policy is saved as this run's checkpoint for 08.

# %%
def run_trl(n_steps: int):
    """Outcome-supervised GRPO with TRL's GRPOTrainer (``dsm_utils.grpo_trl``): the paper's loss (``loss_type="grpo"``,
    β, k3 KL without TRL's bias correction), G = ``group_size``, the global batch G × ``questions_per_step`` split
    over ``num_processes``, optional vLLM generation."""
    from dsm_utils import grpo_trl, launch

    rows_ = grpo_trl.question_rows(data, n_questions, seed, data_dir, pool=pool if data == "toy" else None)
    curve_probs = rl.split_problems("test", n_curve)

    def eval_fn(model) -> dict:
        return {"acc": rl.toy_eval(model, tok, curve_probs, max_new_tokens=eval_max_new_tokens)["acc"]}

    pol = copy.deepcopy(sft_model)
    for p_ in pol.parameters():
        p_.requires_grad_(True)
    res = launch.launch(
        "grpo_trl", dict(init_from=str(ckpt), steps=n_steps, group_size=group_size,
                         questions_per_step=questions_per_step, lr=lr, beta=beta, mu=mu, max_new_tokens=max_new_tokens,
                         temperature=temperature, use_vllm=use_vllm, eval_every=eval_every if data == "toy" else 0,
                         seed=seed, threads=threads),
        run.path("trl"), num_processes=num_processes, config=accelerate_config or None, profile=run.dir.parent.name,
        records=rows_, model=pol, tokenizer=tok, eval_fn=eval_fn if data == "toy" and num_processes == 1 else None)
    if res.checkpoint is not None:
        pol = models.load_model(res.checkpoint, tok).to(dev)
    pol.eval()
    log = res.metrics["log"]
    if data == "toy" and (not log or "acc" not in log[-1]):
        log.append({"step": n_steps, **eval_fn(pol)})
    return pol, log


if backend == "trl":
    pol, trl_log = run_trl(steps)
    training.save_checkpoint(run.path("checkpoint"), pol, tok, state={"variant": "os_rule", "notebook": "06_grpo"})
    run.log(trl_history=trl_log);

# %% [markdown]
# ## Summary
# `runs/<profile>/06_grpo/checkpoint` is the `save_variant` policy of the first seed (after iteration 1) for 08;
# `metrics.json` holds per-seed test accuracies (`test_acc`, `ood_acc`), Maj@K/Pass@K samples (`k_results`),
# the curves and the `findings` that 07 and 09 render.

# %%
total = round(time.time() - t_start, 1)
if results:  # means per variant, under the key 09 reads for Table 5
    run.log(final={lab: {"acc": float(np.mean(test_acc[lab])), "acc_ood": float(np.mean(ood_acc[lab]))}
                   for lab in labels});
run.finish(total_seconds=total, backend=backend, steps=steps, group_size=group_size,
           questions_per_step=questions_per_step, saved_variant=save_variant)
print(f"06 done in {total:.0f}s")
