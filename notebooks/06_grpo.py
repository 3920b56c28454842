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
# **Iterative RL** (§4.1.4): "the old reward model may not be sufficient to supervise the current policy
# model. […] In iterative GRPO, we generate new training sets for the reward model based on the sampling
# results from the policy model and continually train the old reward model using a replay mechanism that
# incorporates 10% of historical data. Then, we set the reference model as the policy model, and
# continually train the policy model with the new reward model."
#
# > "Figure 6 | Performance of iterative reinforcement learning with DeepSeekMath-Instruct 7B on two
# > benchmarks."
#
# **Toy world.** The rule reward is the step checker of `dsm_utils.problems` (per outcome: the boxed answer;
# per step: each equation line); the learned ORM/PRM are scalar-head models initialised from the SFT model
# and trained on the checker's labels of SFT samples, like the paper's Math-Shepherd-style data. The
# policy starts from the instruct checkpoint of 05.

# %% tags=["parameters"]
run_dir = "runs/local/06_grpo"  # the runner sets runs/<profile>/06_grpo
data_dir = ""  # empty = $DSM_DATA_DIR, else ./data
seed = 0
device = "auto"
threads = 1  # torch CPU threads (0 = leave as is)
sft_checkpoint = ""  # empty = this profile's 05_sft/checkpoint
fallback_sft_steps = 200  # when no 05 checkpoint exists = a quick inline SFT (same code as 05)
data = "toy"  # "toy" = generated problems; "real" = GSM8K train questions (backend "trl" only)
n_questions = 2000  # RL question pool
steps = 30  # GRPO steps per variant
group_size = 8  # G
questions_per_step = 4
lr = 0.0001
beta = 0.04
mu = 1  # policy updates per sampling round (the paper = 1)
max_new_tokens = 64
temperature = 1.0
eval_every = 10
n_eval = 100  # toy test items (in-distribution) for the curves
n_eval_ood = 50  # toy_ood items
eval_max_new_tokens = 96
eval_batch_size = 100
variants = ["os_rule", "os_orm", "ps_rule", "ps_prm"]
rm_questions = 128  # reward-model data = questions x samples from the SFT model
rm_samples = 4
rm_steps = 150
rm_lr = 0.0003
iterations = 2  # iterative GRPO (0 = skip)
iter_steps = 15  # GRPO steps per iteration
save_variant = "os_rule"  # which policy becomes runs/<profile>/06_grpo/checkpoint
backend = "ours"  # "ours" = dsm_utils.rl; "trl" = TRL GRPOTrainer for outcome supervision (gpu/cluster)
use_vllm = False  # backend "trl" = generate with vLLM (colocate)

# %%
import copy
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch

from dsm_utils import models, problems as P, repo_path, reward_models, rl, sft, tracking, training

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
training.seed_everything(seed)
n_threads = training.set_threads(threads)
dev = training.pick_device(device)
t_start = time.time()
print(f"run folder {run.dir} · device {dev} · {n_threads} threads · backend {backend}")

# %% [markdown]
# ## The starting point: the instruct (SFT) model of 05

# %%
ckpt = repo_path(sft_checkpoint) if sft_checkpoint else run.sibling("05_sft") / "checkpoint"
sft_model, tok, sft_source = sft.load_instruct_model(ckpt, seed=seed, device=dev,
                                                     fallback_steps=fallback_sft_steps)
for p in sft_model.parameters():
    p.requires_grad_(False)
print("start:", sft_source, models.model_summary(sft_model))

# %% [markdown]
# ## Questions and the test metric
# RL questions come from the generator's `rl` stream; the test sets are exactly `load_benchmark("toy")`
# and `load_benchmark("toy_ood")` (streams `toyeval` / `toyood`), so no RL question is a test question.
# The curves use greedy decoding and the rule checker's outcome.

# %%
pool = P.generate(n_questions, seed=seed, prefix="rl")
test_probs = P.generate(n_eval, seed=0, prefix="toyeval")
ood_probs = P.generate(n_eval_ood, seed=0, difficulty=P.OOD, prefix="toyood")


def accuracy(model, probs) -> float:
    return sft.greedy_accuracy(model, tok, probs, batch_size=eval_batch_size, max_new_tokens=eval_max_new_tokens)


def eval_fn(model) -> dict:
    return {"acc": accuracy(model, test_probs), "acc_ood": accuracy(model, ood_probs)}


t0 = time.time()
sft_eval = eval_fn(sft_model)
print(f"SFT model: greedy accuracy {sft_eval['acc']:.3f} (toy), {sft_eval['acc_ood']:.3f} (OOD) "
      f"[{time.time() - t0:.0f}s]")
run.log(sft_source=sft_source, sft_eval=sft_eval)

# %% [markdown]
# ## One GRPO step, by hand
# One question, $G$ sampled outputs, their rewards (outcome and per step) and the advantages the trainer
# will use. Outputs with the same reward get the same outcome advantage; if all $G$ outputs are right (or all
# wrong) every advantage is 0 and the question teaches nothing — why GRPO needs questions of the right
# difficulty.

# %%
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
pd.set_option("display.max_colwidth", 80)
display(pd.DataFrame({"output": [t.replace("\n", " | ") for t in texts], "reward r_i": r.tolist(),
                      "outcome Â_i": adv_os.round(decimals=2).tolist(),
                      "step rewards": [c.step_rewards for c in checks],
                      "process Â_i,1 (first token)": adv_ps[:, 0].round(decimals=2).tolist()}))

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
print({k: round(v, 4) for k, v in stats.items()})
del policy0

# %% [markdown]
# ## Reward models (ORM and PRM)
# "The reward model is initialized from the SFT model" (the paper's RM is trained from DeepSeekMath-Base on
# Math-Shepherd-style data). Here: SFT samples on `rm_questions` questions of the `rm` stream, labelled by
# the rule checker (outcome: answer right; process: each step right), then a scalar head on the SFT backbone
# trained with binary cross-entropy. Accuracy against the rule labels on held-out samples:

# %%
need_orm = any(v.endswith("orm") for v in variants)
need_prm = any(v.endswith("prm") for v in variants) or iterations > 0
rm_rows = {}
rms: dict[str, object] = {}
rm_data: dict[str, list] = {}
if (need_orm or need_prm) and data == "toy":
    rm_q = P.generate(rm_questions + 32, seed=seed, prefix="rm")
    comp = rl.sample(sft_model, tok, [P.chat_prompt(p.question) for p in rm_q], n=rm_samples,
                     max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1)
    texts = tok.batch_decode(comp, skip_special_tokens=True)
    probs_rep = [p for p in rm_q for _ in range(rm_samples)]
    n_tr = rm_questions * rm_samples
    for kind, name, needed in (("outcome", "ORM", need_orm), ("process", "PRM", need_prm)):
        if not needed:
            continue
        ds = reward_models.build_rm_dataset(probs_rep, texts, kind=kind)
        train_ds, held = ds[:n_tr], ds[n_tr:]
        rm = reward_models.make_reward_model(sft_model, seed=seed)
        for p_ in rm.parameters():
            p_.requires_grad_(True)
        h = reward_models.train_reward_model(rm, tok, train_ds, steps=rm_steps, lr=rm_lr, seed=seed, progress=True)
        acc = reward_models.rm_accuracy(rm, tok, held)
        rms[name], rm_data[name] = rm, train_ds
        rm_rows[name] = {"train rows": len(train_ds), "positive share": sum(r["label"] for r in train_ds) / len(train_ds),
                         "final loss": h[-1]["loss"] if h else None, **{k: round(v, 3) for k, v in acc.items()}}
    display(pd.DataFrame(rm_rows).T)
run.log(reward_models=rm_rows)

# %% [markdown]
# ## GRPO runs
# Same start, same questions (a (seed, step) RNG picks them), same sample budget
# (`questions_per_step` × G per step) for each variant:
#
# | variant | supervision | reward |
# |---|---|---|
# | OS rule | outcome | step checker's answer check |
# | OS ORM | outcome | learned outcome RM, P(correct) |
# | PS rule | process | step checker, per equation line |
# | PS PRM | process | learned process RM, P(step correct) |

# %%
VARIANTS = {"os_rule": ("outcome", "rule", None), "os_orm": ("outcome", "model", "ORM"),
            "ps_rule": ("process", "rule", None), "ps_prm": ("process", "model", "PRM")}
LABELS = {"os_rule": "GRPO+OS (rule)", "os_orm": "GRPO+OS (ORM)", "ps_rule": "GRPO+PS (rule)",
          "ps_prm": "GRPO+PS (PRM)", "iterative": "iterative GRPO+PS (PRM)"}


def make_cfg(supervision: str, reward: str, n_steps: int) -> rl.GRPOConfig:
    return rl.GRPOConfig(group_size=group_size, questions_per_step=questions_per_step, steps=n_steps, mu=mu, lr=lr,
                         beta=beta, max_new_tokens=max_new_tokens, temperature=temperature, supervision=supervision,
                         reward=reward, seed=seed, eval_every=eval_every)


def fresh_policy():
    pol = copy.deepcopy(sft_model)
    for p_ in pol.parameters():
        p_.requires_grad_(True)
    return pol.train()


def run_trl(n_steps: int):
    """Outcome-supervised GRPO with TRL's GRPOTrainer: the paper's loss (``loss_type="grpo"``, β, k3 KL without
    TRL's bias correction), G = ``group_size``, optional vLLM generation."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig, GRPOTrainer

    from dsm_utils import grading

    if data == "real":
        from dsm_utils import benchmarks

        items = benchmarks.load_benchmark("gsm8k", split="train", limit=n_questions, data_dir=data_dir or None)
        rows = [{"prompt": P.chat_prompt(it.question), "answer": it.answer} for it in items]
    else:
        rows = [{"prompt": P.chat_prompt(p.question), "answer": p.answer} for p in pool]

    def correctness(prompts, completions, answer, **kw):
        return [1.0 if grading.grade(c, a) else 0.0 for c, a in zip(completions, answer)]

    log: list[dict] = []

    class Curves(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                log.append({"step": state.global_step, "reward_mean": logs["reward"], "kl": logs.get("kl")})

        def on_step_end(self, args, state, control, model=None, **kw):
            if data == "toy" and eval_every and state.global_step % eval_every == 0 and log:
                log[-1].update(eval_fn(model))

    cfg = TRLConfig(output_dir=str(run.path("trl")), loss_type="grpo", beta=beta, use_bias_correction_kl=False,
                    epsilon=0.2, num_generations=group_size, scale_rewards="group",
                    per_device_train_batch_size=group_size * questions_per_step, max_completion_length=max_new_tokens,
                    temperature=temperature, learning_rate=lr, max_steps=n_steps, num_iterations=mu, logging_steps=1,
                    use_vllm=use_vllm, vllm_mode="colocate", report_to=[], save_strategy="no", seed=seed,
                    bf16=dev == "cuda")
    pol = fresh_policy()
    trainer = GRPOTrainer(model=pol, reward_funcs=correctness, args=cfg, train_dataset=Dataset.from_list(rows),
                          processing_class=tok, callbacks=[Curves()])
    trainer.train()
    pol.eval()
    if data == "toy" and (not log or "acc" not in log[-1]):
        log.append({"step": n_steps, **eval_fn(pol)})
    return pol, log


histories: dict[str, list[dict]] = {}
policies: dict[str, torch.nn.Module] = {}
for v in variants:
    sup, rew, rm_name = VARIANTS[v]
    t0 = time.time()
    if backend == "trl" and v == "os_rule":
        pol, hist = run_trl(steps)
    else:
        pol = fresh_policy()
        hist = rl.grpo_train(pol, sft_model, tok, pool, make_cfg(sup, rew, steps),
                             reward_model=rms.get(rm_name), eval_fn=eval_fn)
    histories[v] = [{"step": 0, **sft_eval}] + hist
    policies[v] = pol
    last = histories[v][-1]
    print(f"{LABELS[v]}: acc {sft_eval['acc']:.3f} → {last.get('acc', float('nan')):.3f}, "
          f"OOD {sft_eval['acc_ood']:.3f} → {last.get('acc_ood', float('nan')):.3f} [{time.time() - t0:.0f}s]")
    run.log(histories=histories, backend=backend)

# %% [markdown]
# ## Iterative GRPO (§4.1.4)
# `iterations` rounds of `iter_steps` GRPO steps with process supervision from the PRM; after each round the
# PRM is trained further on samples of the current policy plus 10 % replay of its earlier data, and the
# reference model is reset to the current policy. Total steps = `iterations × iter_steps`.

# %%
if iterations > 0 and data == "toy":
    t0 = time.time()
    pol = fresh_policy()
    prm_it = copy.deepcopy(rms["PRM"])
    it_hist = rl.iterative_grpo(pol, tok, pool, make_cfg("process", "model", iter_steps), reward_model=prm_it,
                                rm_dataset=rm_data["PRM"], iterations=iterations, rm_questions=rm_questions,
                                rm_samples_per_question=rm_samples, rm_steps=rm_steps // 2, rm_lr=rm_lr,
                                replay=0.1, eval_fn=eval_fn)
    for r_ in it_hist:  # cumulative step over iterations
        r_["step"] = r_["step"] + r_["iteration"] * iter_steps
    histories["iterative"] = [{"step": 0, **sft_eval}] + it_hist
    policies["iterative"] = pol
    print(f"iterative: acc → {it_hist[-1].get('acc'):.3f} [{time.time() - t0:.0f}s]")
    run.log(histories=histories)

# %% [markdown]
# ## Figure 6 analogue: reward, KL and test accuracy over training steps

# %%
fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
for v, hist in histories.items():
    df = pd.DataFrame(hist)
    lab = LABELS.get(v, v)
    if "correct_mean" in df:
        d = df.dropna(subset=["correct_mean"])
        axes[0].plot(d["step"], d["correct_mean"].rolling(3, min_periods=1).mean(), label=lab)
    if "kl" in df:
        d = df.dropna(subset=["kl"])
        axes[1].plot(d["step"], d["kl"], label=lab)
    d = df.dropna(subset=["acc"])
    axes[2].plot(d["step"], d["acc"], marker="o", label=lab)
    d = df.dropna(subset=["acc_ood"])
    axes[3].plot(d["step"], d["acc_ood"], marker="o", label=lab)
if "iterative" in histories:
    for ax in axes:
        for k in range(1, iterations):
            ax.axvline(k * iter_steps, color="grey", ls=":", lw=0.8)
axes[0].set(title="train reward (share correct, rolling 3)", xlabel="step")
axes[1].set(title="KL(π_θ‖π_ref), k3 estimator", xlabel="step")
axes[2].set(title=f"greedy accuracy, toy test ({n_eval})", xlabel="step")
axes[3].set(title=f"greedy accuracy, toy OOD ({n_eval_ood})", xlabel="step")
axes[3].legend(fontsize=8)
fig.tight_layout()
run.savefig(fig, "fig6_grpo_curves.png")
plt.show()

# %%
summary = pd.DataFrame([{"variant": LABELS.get(v, v), "acc (toy)": h[-1].get("acc"),
                         "Δ acc": h[-1].get("acc", 0) - sft_eval["acc"], "acc (OOD)": h[-1].get("acc_ood"),
                         "Δ OOD": h[-1].get("acc_ood", 0) - sft_eval["acc_ood"],
                         "final KL": next((r["kl"] for r in reversed(h) if r.get("kl") is not None), None),
                         "steps": h[-1]["step"]} for v, h in histories.items()])
summary = pd.concat([pd.DataFrame([{"variant": "SFT (start)", "acc (toy)": sft_eval["acc"], "Δ acc": 0.0,
                                    "acc (OOD)": sft_eval["acc_ood"], "Δ OOD": 0.0, "steps": 0}]), summary])
display(summary.set_index("variant").round(3))

# %% [markdown]
# ## The RL checkpoint
# The `save_variant` policy is saved as `runs/<profile>/06_grpo/checkpoint` (with the tokenizer) for the
# evaluation notebook.

# %%
final = {v: {"acc": h[-1].get("acc"), "acc_ood": h[-1].get("acc_ood")} for v, h in histories.items()}
saved = None
if save_variant in policies:
    saved = training.save_checkpoint(run.path("checkpoint"), policies[save_variant], tok,
                                     state={"variant": save_variant, "notebook": "06_grpo"})
    print("saved", saved)
run.log(final=final, sft_eval=sft_eval, summary=summary.to_dict(orient="records"), saved_variant=save_variant,
        checkpoint=str(saved) if saved else None, backend=backend, steps=steps, group_size=group_size,
        questions_per_step=questions_per_step, total_seconds=round(time.time() - t_start, 1))
