"""dsm_utils.rl: GRPO against TRL, Table 10 coefficients, process advantages, flags, checkpoint resume."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from dsm_utils import problems as P
from dsm_utils import rl


@pytest.fixture(scope="module")
def tok():
    from dsm_utils.tokenizer import default_tokenizer

    return default_tokenizer()


@pytest.fixture(scope="module")
def tiny(tok):
    from dsm_utils.models import load_model

    return load_model("llama-1m", tok, seed=0)


# ------------------------------------------------------------------------------------- GRPO vs TRL


def test_grpo_loss_and_gradient_match_trl(tok, tiny, tmp_path):
    """Same model, completions, advantages, old/ref log-probs: TRL's `_compute_loss` vs ours, loss and grads."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    path = tmp_path / "m"
    tiny.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    ours = copy.deepcopy(tiny).eval()
    args = GRPOConfig(output_dir=str(tmp_path / "trl"), loss_type="grpo", beta=0.04, use_bias_correction_kl=False,
                      scale_rewards="group", epsilon=0.2, num_generations=4, per_device_train_batch_size=8,
                      max_completion_length=8, use_cpu=True, report_to="none", save_strategy="no", bf16=False)
    trainer = GRPOTrainer(model=str(path), reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                          args=args, train_dataset=Dataset.from_list([{"prompt": "User: a"}] * 8),
                          processing_class=tok)
    theirs = trainer.model.eval()

    n, lp, t = 8, 5, 7
    g = torch.Generator().manual_seed(0)
    prompt_ids = torch.randint(10, 2000, (n, lp), generator=g)
    prompt_mask = torch.ones(n, lp, dtype=torch.long)
    prompt_mask[0, :2] = 0  # a left-padded prompt
    completion_ids = torch.randint(10, 2000, (n, t), generator=g)
    completion_mask = torch.ones(n, t, dtype=torch.long)
    completion_mask[1, 4:] = 0  # shorter completions
    completion_mask[5, 2:] = 0
    rewards = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 1])
    adv = rl.outcome_advantages(rewards, group_size=4)
    input_ids = torch.cat([prompt_ids, completion_ids], 1)
    attn = torch.cat([prompt_mask, completion_mask], 1)
    with torch.no_grad():
        base = rl.token_logprobs(ours, input_ids, attn, completion_mask)
    old = base + 0.3 * torch.randn(n, t, generator=g)  # ratios away from 1: clipping is exercised
    ref = base + 0.5 * torch.randn(n, t, generator=g)

    loss_trl = trainer._compute_loss(theirs, dict(
        prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids,
        completion_mask=completion_mask, advantages=adv, old_per_token_logps=old, ref_per_token_logps=ref))
    loss_trl.backward()
    logp = rl.token_logprobs(ours, input_ids, attn, completion_mask)
    loss, stats = rl.grpo_loss(logp, old, ref, adv, completion_mask)
    loss.backward()

    assert stats["clip_frac"] > 0
    assert abs(float(loss) - float(loss_trl)) < 1e-5
    theirs_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, theirs_p[name].grad, atol=1e-5, rtol=0), name


def test_outcome_advantages_group_normalised():
    from trl.trainer.utils import nanstd

    r = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 0.5])
    adv = rl.outcome_advantages(r, 4)
    g = r.view(2, 4)
    want = (g - g.mean(1, keepdim=True)) / (nanstd(g, dim=1, keepdim=True) + 1e-4)  # TRL's unbiased std
    assert torch.allclose(adv, want.reshape(-1), atol=1e-6)
    # first group: mean 0.5, unbiased std sqrt(1/3)
    assert adv[0].item() == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-4), rel=1e-6)
    # Dr. GRPO: no std scaling
    assert torch.allclose(rl.outcome_advantages(r, 4, scale_std=False)[:4], torch.tensor([0.5, -0.5, -0.5, 0.5]))


def test_process_advantages_hand_example():
    # one group of G=2: output 0 has steps ending at tokens 1 and 3 (rewards 1, 0); output 1 one step at 2 (1)
    adv = rl.process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], group_size=2, seq_len=5)
    mean, std = 2 / 3, torch.tensor([1.0, 0.0, 1.0]).std().item()  # over all 3 step rewards of the group
    hi, lo = (1 - mean) / (std + 1e-4), (0 - mean) / (std + 1e-4)
    want = torch.tensor([[hi + lo, hi + lo, lo, lo, 0.0],  # tokens up to 1 see both steps, 2..3 only the last
                         [hi, hi, hi, 0.0, 0.0]])
    assert torch.allclose(adv, want, atol=1e-5)


# ------------------------------------------------------------------------------------- Table 10


def test_table10_is_rendered_from_methods():
    df = rl.table10()
    assert list(df.index) == ["SFT", "RFT", "DPO", "Online RFT", "PPO", "GRPO"]
    for name, m in rl.METHODS.items():
        assert df.loc[name, "Gradient Coefficient"] == m.gradient_coefficient
        assert df.loc[name, "Data Source"] == m.data_source
        assert df.loc[name, "Online"] == m.online
    assert [m.sampler for m in rl.METHODS.values()] == ["gold", "reference", "reference", "policy", "policy",
                                                        "policy"]


def test_coefficients_hand_computed():
    mask = torch.tensor([[1.0, 1, 0], [1, 1, 1]])
    assert torch.equal(rl.gradient_coefficient("SFT", mask=mask), mask)
    for name in ("RFT", "Online RFT"):
        c = rl.gradient_coefficient(name, mask=mask, rewards=torch.tensor([1.0, 0.0]))
        assert torch.equal(c, torch.tensor([[1.0, 1, 0], [0, 0, 0]]))
    # DPO: row 0 = o+, row 1 = o-; mean log-ratios 0.2 and -0.1, beta 0.5
    logp = torch.tensor([[-1.0, -1.0, 0.0], [-2.0, -2.0, -2.0]])
    ref = torch.tensor([[-1.2, -1.2, 5.0], [-1.9, -1.9, -1.9]])
    g = 1 / (1 + math.exp(-(0.5 * -0.1 - 0.5 * 0.2)))
    c = rl.gradient_coefficient("DPO", mask=mask, logp=logp, ref_logp=ref, beta=0.5)
    assert torch.allclose(c, torch.tensor([[g, g, 0], [-g, -g, -g]]), atol=1e-6)
    # GRPO: A + beta (pi_ref/pi - 1)
    c = rl.gradient_coefficient("GRPO", mask=mask, advantages=torch.tensor([0.5, -1.0]), logp=logp, ref_logp=ref,
                                beta=0.04)
    want = torch.tensor([[0.5 + 0.04 * (math.exp(-0.2) - 1), 0.5 + 0.04 * (math.exp(-0.2) - 1), 0],
                         [-1 + 0.04 * (math.exp(0.1) - 1)] * 3])
    assert torch.allclose(c, want, atol=1e-6)
    # PPO: GAE(gamma=1, lam=0.5) on one 2-token output, reward 1 at the end, beta=0 (no KL)
    c = rl.gradient_coefficient("PPO", mask=torch.tensor([[1.0, 1.0]]), rewards=torch.tensor([1.0]),
                                values=torch.tensor([[0.2, 0.6]]), logp=torch.zeros(1, 2), ref_logp=torch.zeros(1, 2),
                                beta=0.0, gamma=1.0, lam=0.5)
    d1 = 1.0 - 0.6  # last token: r - V
    d0 = 0.0 + 0.6 - 0.2
    assert torch.allclose(c, torch.tensor([[d0 + 0.5 * d1, d1]]), atol=1e-6)
    # PPO's KL penalty is in the reward: -beta * log(pi/pi_ref) per token
    c = rl.gradient_coefficient("PPO", mask=torch.tensor([[1.0]]), rewards=torch.tensor([1.0]),
                                values=torch.zeros(1, 1), logp=torch.tensor([[-1.0]]), ref_logp=torch.tensor([[-1.5]]),
                                beta=0.1)
    assert c.item() == pytest.approx(1.0 - 0.1 * 0.5)


def test_loss_gradient_is_the_table_coefficient():
    """∂loss/∂log π(o_t) = −GC / (|o| N) at π_θ = π_old: the loss the trainer minimises is the table's GC."""
    torch.manual_seed(0)
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    lens = mask.sum(1, keepdim=True)
    base = -torch.rand(4, 4) * 3
    ref = base + 0.3 * torch.randn(4, 4)
    adv = torch.tensor([1.0, -0.5, 0.2, -0.7])
    for name, kw, lossfn in [
        ("GRPO", dict(advantages=adv, ref_logp=ref, beta=0.04),
         lambda lp: rl.grpo_loss(lp, lp.detach(), ref, adv, mask, beta=0.04)[0]),
        ("SFT", {}, None), ("RFT", dict(rewards=torch.tensor([1.0, 0, 1, 0])), None),
        ("DPO", dict(ref_logp=ref, beta=0.1), None),
    ]:
        logp = base.clone().requires_grad_(True)
        gc = rl.gradient_coefficient(name, mask=mask, logp=base, **kw)
        loss = lossfn(logp) if lossfn else rl.weighted_logprob_loss(logp, gc, mask)
        loss.backward()
        assert torch.allclose(logp.grad, -gc / lens / 4 * mask, atol=1e-6), name
    # PPO: the clipped surrogate without KL term, advantages = GC
    logp = base.clone().requires_grad_(True)
    gc = rl.gradient_coefficient("PPO", mask=mask, rewards=adv, values=torch.rand(4, 4), logp=base, ref_logp=ref)
    rl.grpo_loss(logp, logp.detach(), None, gc, mask, beta=0.0)[0].backward()
    assert torch.allclose(logp.grad, -gc / lens / 4 * mask, atol=1e-6)


def test_dpo_surrogate_is_dpo_gradient():
    """β · ∇(unified DPO surrogate) = ∇(−log σ(β (m⁺ − m⁻))) with m the mean per-token log-ratio."""
    torch.manual_seed(1)
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    ref = -torch.rand(2, 3)
    beta = 0.3
    a = (-torch.rand(2, 3)).requires_grad_(True)
    m = ((a - ref) * mask).sum(1) / mask.sum(1)
    (-torch.nn.functional.logsigmoid(beta * (m[0] - m[1]))).backward()
    b = a.detach().clone().requires_grad_(True)
    gc = rl.gradient_coefficient("DPO", mask=mask, logp=b.detach(), ref_logp=ref, beta=beta)
    # the surrogate's mean over the 2 rows halves the gradient: scale by N=2
    (2 * beta * rl.weighted_logprob_loss(b, gc, mask)).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


# ------------------------------------------------------------------------------------- flags


def test_flags_change_the_loss_as_expected():
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 0, 0, 0]])
    logp = torch.zeros(2, 4)
    old = torch.full((2, 4), -math.log(1.25))  # ratio 1.25 everywhere
    adv = torch.tensor([1.0, 2.0])
    seq, _ = rl.grpo_loss(logp, old, None, adv, mask, beta=0.0)
    assert seq.item() == pytest.approx(-(1.2 * 1 + 1.2 * 2) / 2)  # clipped at 1 + 0.2, mean of sequence means
    hi, _ = rl.grpo_loss(logp, old, None, adv, mask, beta=0.0, eps_high=0.28)  # clip-higher: 1.25 is inside
    assert hi.item() == pytest.approx(-(1.25 * 1 + 1.25 * 2) / 2)
    tokavg, _ = rl.grpo_loss(logp, old, None, adv, mask, beta=0.0, loss_agg="token")  # DAPO: over 5 tokens
    assert tokavg.item() == pytest.approx(-(4 * 1.2 * 1 + 1.2 * 2) / 5)
    const, _ = rl.grpo_loss(logp, old, None, adv, mask, beta=0.0, loss_agg="constant", max_len=10)  # Dr. GRPO
    assert const.item() == pytest.approx(-(4 * 1.2 * 1 + 1.2 * 2) / (2 * 10))
    with_kl, st = rl.grpo_loss(logp, old, torch.full((2, 4), -0.5), adv, mask)  # default beta 0.04 adds k3 KL
    kl = math.exp(-0.5) + 0.5 - 1
    assert with_kl.item() == pytest.approx(seq.item() + 0.04 * kl, rel=1e-5)
    assert st["kl"] == pytest.approx(kl, rel=1e-5)
    # negative advantages are clipped from below at 1 - eps_low
    low, _ = rl.grpo_loss(torch.zeros(1, 1), torch.tensor([[math.log(2.0)]]), None, torch.tensor([-1.0]),
                          torch.ones(1, 1), beta=0.0)
    assert low.item() == pytest.approx(0.8)


# ------------------------------------------------------------------------------------- plumbing


def test_sampler_greedy_matches_generate_and_step_token_ends(tok, tiny):
    ps = P.generate(3, seed=1)
    prompts = [P.chat_prompt(p.question) for p in ps]
    ours = rl.sample(tiny, tok, prompts, n=1, max_new_tokens=6, temperature=0)
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = tiny.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ours == ref[:, enc["input_ids"].shape[1]:].tolist()
    a = rl.sample(tiny, tok, prompts, n=2, max_new_tokens=6, seed=5)
    assert a == rl.sample(tiny, tok, prompts, n=2, max_new_tokens=6, seed=5)  # (seed, step) -> same samples
    text = ps[0].cot
    ids = tok(text, add_special_tokens=False)["input_ids"]
    chk = P.check_solution(text, ps[0])
    ends = rl.char_to_token_ends(tok, ids, [s.end for s in chk.steps])
    for s, k in zip(chk.steps, ends):
        assert tok.decode(ids[:k + 1]).endswith(s.text[-1]) and len(tok.decode(ids[:k + 1])) >= s.end
        assert len(tok.decode(ids[:k])) < s.end


def test_grouped_logprobs_share_the_prompt_exactly(tok, tiny):
    """token_logprobs(group_size=G) (prompt run once, KV cache shared) = the plain per-row computation."""
    ps = P.generate(2, seed=6)
    prompts = [P.chat_prompt(p.question) for p in ps]
    comp = rl.sample(tiny, tok, prompts, n=3, max_new_tokens=10, seed=2)
    comp[1] = comp[1][:4]  # uneven completion lengths
    b = rl.make_batch(tok, [p for p in prompts for _ in range(3)], comp)
    m1, m2 = copy.deepcopy(tiny), copy.deepcopy(tiny)
    a = rl.token_logprobs(m1, b.input_ids, b.attention_mask, b.completion_mask)
    c = rl.token_logprobs(m2, b.input_ids, b.attention_mask, b.completion_mask, group_size=3)
    mask = b.completion_mask.bool()
    assert torch.allclose(a[mask], c[mask], atol=1e-5)
    (a * mask).sum().backward()
    (c * mask).sum().backward()
    g2 = dict(m2.named_parameters())
    for name, p in m1.named_parameters():
        assert torch.allclose(p.grad, g2[name].grad, atol=1e-4, rtol=1e-4), name
    with pytest.raises(ValueError):
        rl.token_logprobs(m1, b.input_ids, b.attention_mask, b.completion_mask, group_size=2)


def test_every_method_trains_one_step(tok, tiny):
    from dsm_utils import reward_models as R

    probs = P.generate(6, seed=2)
    cfg = rl.RLConfig(group_size=2, questions_per_step=2, steps=1, max_new_tokens=8, lr=1e-3)
    for name in ["SFT", "RFT", "Online RFT", "DPO", "GRPO"]:
        pol = copy.deepcopy(tiny)
        rows = rl.train(name, pol, tiny, tok, probs, cfg, progress=False)
        assert rows[-1]["step"] == 1 and math.isfinite(rows[-1]["loss"]), name
    pol = copy.deepcopy(tiny)
    rm = R.make_reward_model(tiny)
    rows = rl.ppo_train(pol, tiny, tok, probs, rl.RLConfig(group_size=2, questions_per_step=2, steps=1,
                                                            max_new_tokens=8, reward="model"),
                        value_model=R.make_value_model(pol), reward_model=rm, progress=False)
    assert "value_loss" in rows[-1]
    rows = rl.grpo_train(copy.deepcopy(tiny), tiny, tok, probs,
                         rl.RLConfig(group_size=2, questions_per_step=2, steps=1, max_new_tokens=8,
                                     supervision="process", reward="model"), reward_model=rm, progress=False)
    assert math.isfinite(rows[-1]["loss"])


def test_resume_after_kill_matches_uninterrupted_run(tok, tiny, tmp_path):
    from dsm_utils import reward_models as R

    probs = P.generate(8, seed=3)
    # a (random) learned RM gives non-constant rewards, so the policy really moves between steps
    rm = R.make_reward_model(tiny, seed=1)
    cfg = rl.GRPOConfig(group_size=2, questions_per_step=2, steps=4, max_new_tokens=12, lr=1e-3, checkpoint_every=2,
                        seed=7, reward="model")
    full = rl.grpo_train(copy.deepcopy(tiny), tiny, tok, probs, cfg, reward_model=rm, progress=False)
    assert full[-1]["kl"] > 0  # the policy left the reference

    class Killed(Exception):
        pass

    def kill_at_3(step, row):
        if step == 3:
            raise Killed

    ck = tmp_path / "ck"
    with pytest.raises(Killed):
        rl.grpo_train(copy.deepcopy(tiny), tiny, tok, probs, cfg, reward_model=rm, checkpoint_dir=str(ck),
                      progress=False, callback=kill_at_3)
    pol = copy.deepcopy(tiny)
    resumed = rl.grpo_train(pol, tiny, tok, probs, cfg, reward_model=rm, checkpoint_dir=str(ck), resume=True,
                            progress=False)
    assert len(resumed) == 4
    for a, b in zip(full, resumed):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-6), (a["step"], k)


def test_iterative_grpo_updates_rm_and_runs_each_iteration(tok, tiny):
    from dsm_utils import reward_models as R

    probs = P.generate(6, seed=8)
    rm = R.make_reward_model(tiny, seed=1)
    head0 = rm.head.weight.detach().clone()
    old = R.build_rm_dataset(probs[:2], [p.cot for p in probs[:2]], kind="outcome")
    cfg = rl.GRPOConfig(group_size=2, questions_per_step=2, steps=1, max_new_tokens=8, lr=1e-3, reward="model")
    rows = rl.iterative_grpo(copy.deepcopy(tiny), tok, probs, cfg, reward_model=rm, rm_dataset=old, iterations=2,
                             rm_questions=2, rm_samples_per_question=2, rm_steps=2, rm_lr=1e-3, progress=False)
    assert [r["iteration"] for r in rows] == [0, 1]
    assert not torch.equal(rm.head.weight, head0)


# ------------------------------------------------------------------------------------- learning, iterations


def _two_answer_task(tok, tiny):
    """A policy that answers ``\\boxed{1}`` or ``\\boxed{2}`` about equally often; only 1 is right."""
    base = P.generate(1, seed=0)[0]
    q = "Ada has 1 apple. How many apples does Ada have now?"
    right = P.Problem("two-0", q, "1", "The answer is \\boxed{1}.", "", [], 1)
    wrong = P.Problem("two-1", q, "1", "The answer is \\boxed{2}.", "", [], 1)
    pol = copy.deepcopy(tiny)
    rl.sft_train(pol, tok, [right, wrong], rl.RLConfig(steps=40, questions_per_step=2, lr=3e-3, seed=0),
                 progress=False)
    assert base is not None
    return pol, [right] * 4


def test_a_few_grpo_steps_raise_the_mean_reward(tok, tiny):
    pol, pool = _two_answer_task(tok, tiny)
    ref = copy.deepcopy(pol)
    # lr 1e-3 (3e-3 overshoots into a collapse after the reward saturates); the paper's beta
    cfg = rl.GRPOConfig(group_size=8, questions_per_step=2, steps=12, lr=1e-3, max_new_tokens=12, seed=1, beta=0.04)
    rows = rl.grpo_train(pol, ref, tok, pool, cfg, progress=False)
    first, last = rows[0]["reward_mean"], sum(r["reward_mean"] for r in rows[-3:]) / 3
    assert 0.1 < first < 0.9  # both answers are sampled at the start: the group advantages are not all 0
    assert last > first + 0.25, ([r["reward_mean"] for r in rows], rows[-1])
    # greedy decoding now gives the right answer
    ids = rl.sample(pol, tok, [P.chat_prompt(pool[0].question)], n=1, max_new_tokens=12, temperature=0)
    assert P.outcome_reward(tok.decode(ids[0], skip_special_tokens=True), pool[0]) == 1.0


def test_iterative_grpo_draws_new_questions_and_samples_each_iteration(tok, tiny, monkeypatch):
    from dsm_utils import reward_models as R

    seen: list[tuple] = []
    draw, samp = rl.draw_questions, rl.sample

    def spy_draw(pool, cfg, step):
        qs = draw(pool, cfg, step)
        seen.append(("q", step, tuple(p.id for p in qs)))
        return qs

    def spy_sample(model, tokenizer, prompts, n=1, max_new_tokens=64, temperature=1.0, seed=0):
        seen.append(("s", seed))
        return samp(model, tokenizer, prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)

    monkeypatch.setattr(rl, "draw_questions", spy_draw)
    monkeypatch.setattr(rl, "sample", spy_sample)
    probs = P.generate(40, seed=8)
    rm = R.make_reward_model(tiny, seed=1)
    cfg = rl.GRPOConfig(group_size=2, questions_per_step=3, steps=1, max_new_tokens=6, lr=1e-3, reward="model")
    rl.iterative_grpo(copy.deepcopy(tiny), tok, probs, cfg, reward_model=rm, iterations=2, rm_questions=2,
                      rm_samples_per_question=2, rm_steps=1, progress=False)
    qsets = [e[2] for e in seen if e[0] == "q"]
    assert len(qsets) == 2 and qsets[0] != qsets[1]  # step 0 of each iteration: new questions
    seeds = [e[1] for e in seen if e[0] == "s"]
    assert len(seeds) == len(set(seeds))  # no sampling seed is replayed
    assert rl.iteration_config(cfg, 0) is cfg


def test_toy_jobs_in_worker_processes_equal_inline_runs(tok, tiny, tmp_path):
    """rl.run_jobs: a (method, seed) per single-thread process gives exactly the inline results, in spec order."""
    from dsm_utils import training

    ck = training.save_checkpoint(tmp_path / "sft", tiny, tok)
    specs = [dict(checkpoint=str(ck), method="GRPO", label="g", evals={"test": 3}, curve=("val", 2),
                  cfg=dict(group_size=2, questions_per_step=2, steps=2, lr=1e-3, max_new_tokens=6, seed=s,
                           eval_every=1), n_questions=20, eval_max_new_tokens=6) for s in (0, 1)]
    specs.append(dict(checkpoint=str(ck), method="none", label="sft", cfg=dict(seed=0), evals={"test": 3},
                      k={"split": "test", "n_items": 2, "n": 2, "temperature": 1.0}, eval_max_new_tokens=6))
    inline = rl.run_jobs(specs, processes=1, progress=False)
    pooled = rl.run_jobs(specs, processes=2, progress=False)
    assert [r["label"] for r in pooled] == ["g", "g", "sft"] and [r["seed"] for r in pooled] == [0, 1, 0]
    for a, b in zip(inline, pooled):
        assert a["final"] == b["final"] and a.get("k") == b.get("k")
        assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], abs=1e-6)
    assert [len(r["history"]) for r in pooled] == [2, 2, 0] and "acc" in pooled[0]["history"][0]
    assert set(pooled[2]["k"]["pass"]) == {1, 2}


def test_a_killed_toy_job_resumes_to_the_uninterrupted_result(tok, tiny, tmp_path, monkeypatch):
    from dsm_utils import training

    ck = training.save_checkpoint(tmp_path / "sft", tiny, tok)
    spec = dict(checkpoint=str(ck), method="GRPO", label="g", evals={"test": 3}, n_questions=20,
                cfg=dict(group_size=2, questions_per_step=2, steps=4, lr=1e-3, max_new_tokens=6, seed=3,
                         checkpoint_every=1, reward="rule"), eval_max_new_tokens=6, iterations=2)
    full = rl.toy_job(spec)

    class Killed(Exception):
        pass

    real = rl.train_step
    calls = []

    def dying(m, ctx, pool, step):
        calls.append(step)
        if len(calls) == 6:  # in iteration 2, after its first step was checkpointed
            raise Killed
        return real(m, ctx, pool, step)

    monkeypatch.setattr(rl, "train_step", dying)
    wd = tmp_path / "job"
    with pytest.raises(Killed):
        rl.toy_job({**spec, "work_dir": str(wd)})
    monkeypatch.setattr(rl, "train_step", real)
    resumed = rl.toy_job({**spec, "work_dir": str(wd)})
    assert resumed["final"] == full["final"] and len(resumed["history"]) == 8
    for a, b in zip(full["history"], resumed["history"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6) and a["iteration"] == b["iteration"]
    # a finished job is not run again: its cached result comes back
    def never(*a):
        raise AssertionError("a finished job trained again")

    monkeypatch.setattr(rl, "train_step", never)
    again = rl.toy_job({**spec, "work_dir": str(wd)})
    assert again["final"] == full["final"]
