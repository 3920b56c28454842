"""The unified paradigm of RL for LLMs (DeepSeekMath §5.2.1, Table 10) and GRPO (§4.1).

Every method below updates the policy along ``GC(q, o, t) · ∇ log π_θ(o_t | q, o_<t)``; methods differ only in
their **data source** (gold SFT data, offline samples of π_sft, online samples of π_θ), their **reward function**
(rule = the step checker, model = a learned reward model) and their **gradient coefficient** GC. Each method is
one :class:`Method` in :data:`METHODS`; the trainer reads the same objects (sampler, coefficient function, loss
kind) that :func:`table10` renders, so the table cannot drift from the code.

GRPO is written as in the paper: G samples per question, group-normalised outcome advantages on every token (or
process advantages summed over the following steps), PPO-clip ratio, loss averaged per token within a sequence
then over sequences, and the k3 KL estimator ``π_ref/π_θ − log(π_ref/π_θ) − 1`` in the loss. Later variants are
flags, off by default: token-level averaging (DAPO, ``loss_agg="token"``), no std scaling and a constant normaliser
(Dr. GRPO, ``scale_std=False, loss_agg="constant"``), clip-higher (``eps_high``).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from . import problems as P
from . import repo_path, training

# ----------------------------------------------------------------------------------------- advantages


def outcome_advantages(rewards, group_size: int, scale_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO outcome supervision: ``Â_i = (r_i − mean(r)) / std(r)`` over each group of ``group_size`` outputs.

    ``rewards`` is flat ``[B*G]`` (groups contiguous); returns ``[B*G]`` (the same value on every token).
    std is the unbiased one (as ``torch.std``/TRL); ``scale_std=False`` is Dr. GRPO's variant.
    """
    r = torch.as_tensor(rewards, dtype=torch.float32)
    if r.numel() % group_size:
        raise ValueError(f"outcome_advantages: {r.numel()} rewards is not a multiple of group_size={group_size}")
    g = r.view(-1, group_size)
    adv = g - g.mean(1, keepdim=True)
    if scale_std:
        std = g.std(1, keepdim=True) if group_size > 1 else torch.zeros_like(adv[:, :1])
        adv = adv / (std + eps)
    return adv.reshape(-1)


def process_advantages(step_rewards: Sequence[Sequence[float]], step_end_token: Sequence[Sequence[int]],
                       group_size: int, seq_len: int, scale_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO process supervision: normalise all step rewards of a group, sum the following steps' rewards.

    ``step_rewards[i][j]`` is the reward of step j of output i, ``step_end_token[i][j]`` the completion-token index
    where that step ends. Rewards are normalised with the mean/std over all steps of all G outputs of the group;
    token t of output i gets ``Σ_{j : end_j ≥ t} r̃_{i,j}``. Returns ``[N, seq_len]``.
    """
    n = len(step_rewards)
    if n % group_size or len(step_end_token) != n:
        raise ValueError("process_advantages: need one step list per output, a multiple of group_size outputs")
    adv = torch.zeros(n, seq_len)
    for g0 in range(0, n, group_size):
        flat = torch.tensor([r for i in range(g0, g0 + group_size) for r in step_rewards[i]], dtype=torch.float32)
        if flat.numel() == 0:
            continue
        mean = flat.mean()
        std = flat.std() if flat.numel() > 1 else torch.tensor(0.0)
        for i in range(g0, g0 + group_size):
            if len(step_rewards[i]) != len(step_end_token[i]):
                raise ValueError(f"process_advantages: output {i} has {len(step_rewards[i])} rewards but "
                                 f"{len(step_end_token[i])} step ends")
            for r, end in zip(step_rewards[i], step_end_token[i]):
                rn = (r - mean) / (std + eps) if scale_std else r - mean
                adv[i, :min(int(end), seq_len - 1) + 1] += rn
    return adv


def gae_advantages(token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
                   lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation on right-padded ``[N, T]`` tensors; returns (advantages, returns)."""
    mask = mask.to(values.dtype)
    n, t_len = values.shape
    adv = torch.zeros_like(values)
    last = torch.zeros(n, dtype=values.dtype)
    for t in reversed(range(t_len)):
        nxt_mask = mask[:, t + 1] if t + 1 < t_len else torch.zeros(n, dtype=values.dtype)
        nxt_v = values[:, t + 1] * nxt_mask if t + 1 < t_len else torch.zeros(n, dtype=values.dtype)
        delta = token_rewards[:, t] + gamma * nxt_v - values[:, t]
        last = (delta + gamma * lam * last * nxt_mask) * mask[:, t]
        adv[:, t] = last
    return adv, (adv + values) * mask


# ----------------------------------------------------------------------------------------- the losses


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_agg: str = "sequence",
              max_len: int | None = None) -> torch.Tensor:
    """``sequence``: mean over tokens of each output, then over outputs (the paper); ``token``: mean over all
    tokens of the batch (DAPO); ``constant``: sum / (N · max_len) (Dr. GRPO)."""
    if loss_agg == "sequence":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_agg == "token":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_agg == "constant":
        return (per_token * mask).sum() / (per_token.shape[0] * (max_len or per_token.shape[1]))
    raise ValueError(f"loss_agg={loss_agg!r}: valid values are 'sequence', 'token', 'constant'")


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The unbiased, always-positive KL estimator of the paper: ``π_ref/π_θ − log(π_ref/π_θ) − 1`` per token."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, *, beta: float = 0.04, eps_low: float = 0.2, eps_high: float | None = None,
              loss_agg: str = "sequence", max_len: int | None = None) -> tuple[torch.Tensor, dict]:
    """The GRPO objective (paper eq. 3), negated for minimisation.

    ``logp``/``old_logp``/``ref_logp`` are ``[N, T]`` log-probs of the completion tokens under π_θ, π_θ_old and
    π_ref; ``advantages`` is ``[N]`` (outcome) or ``[N, T]`` (process); ``mask`` ``[N, T]`` marks completion tokens.
    With ``beta=0`` and ``ref_logp=None`` it is PPO's clipped surrogate. Returns (loss, stats).
    """
    mask = mask.to(logp.dtype)
    adv = advantages[:, None] if advantages.dim() == 1 else advantages
    ratio = torch.exp(logp - old_logp)
    hi = eps_low if eps_high is None else eps_high
    clipped = ratio.clamp(1 - eps_low, 1 + hi)
    per_token = -torch.min(ratio * adv, clipped * adv)
    stats: dict[str, float] = {}
    if beta:
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
        stats["kl"] = float(_masked_mean(kl.detach(), mask))
    elif ref_logp is not None:
        stats["kl"] = float(_masked_mean(k3_kl(logp, ref_logp).detach(), mask))
    loss = aggregate(per_token, mask, loss_agg, max_len)
    is_clipped = ((ratio < 1 - eps_low) & (adv < 0)) | ((ratio > 1 + hi) & (adv > 0))
    stats["clip_frac"] = float(_masked_mean(is_clipped.to(logp.dtype), mask))
    stats["loss"] = float(loss.detach())
    return loss, stats


def weighted_logprob_loss(logp: torch.Tensor, coef: torch.Tensor, mask: torch.Tensor,
                          loss_agg: str = "sequence") -> torch.Tensor:
    """``−mean_i (1/|o_i|) Σ_t GC_{i,t} log π_θ(o_{i,t})``: its gradient is the unified paradigm's, GC held fixed."""
    return aggregate(-coef.detach() * logp, mask.to(logp.dtype), loss_agg)



# ----------------------------------------------------------------------------------------- Table 10: GC


def gc_sft(mask, **_):
    """SFT: GC = 1 on every token of the gold output."""
    return mask.float()


def gc_rft(mask, rewards, **_):
    """RFT: GC = I(o), 1 if the answer of o is correct else 0 (the same on every token of o)."""
    return (torch.as_tensor(rewards, dtype=torch.float32) > 0.5).float()[:, None] * mask.float()


def gc_online_rft(mask, rewards, **_):
    """Online RFT: the same I(o) as RFT; only the data source differs (π_θ instead of π_sft)."""
    return gc_rft(mask, rewards)


def gc_dpo(mask, logp, ref_logp, beta: float = 0.1, **_):
    """DPO: ``σ(β log π_θ(o⁻)/π_ref(o⁻) − β log π_θ(o⁺)/π_ref(o⁺))``, + on o⁺ (rows [0, P)), − on o⁻ ([P, 2P)).

    The log-ratios are per-token means (the paper's DPO objective, App. A.1.4).
    """
    m = mask.float()
    lr = ((logp - ref_logp) * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    p = lr.shape[0] // 2
    g = torch.sigmoid(beta * lr[p:] - beta * lr[:p])
    return torch.cat([g, -g])[:, None] * m


def gc_ppo(mask, rewards, values, logp, ref_logp, beta: float = 0.04, gamma: float = 1.0, lam: float = 0.95, **_):
    """PPO: A_t by GAE on ``r_t = r_φ(q, o)·[t = last] − β log(π_θ/π_ref)`` (the KL penalty lives in the reward)."""
    m = mask.float()
    tok_r = -beta * (logp - ref_logp) * m
    last = (m.sum(-1).long() - 1).clamp(min=0)
    tok_r[torch.arange(m.shape[0]), last] += torch.as_tensor(rewards, dtype=torch.float32)
    return gae_advantages(tok_r, values, m, gamma, lam)[0]


def gc_grpo(mask, advantages, logp, ref_logp, beta: float = 0.04, **_):
    """GRPO: ``Â_{i,t} + β (π_ref(o_{i,t})/π_θ(o_{i,t}) − 1)`` (the gradient of eq. 3 at π_θ = π_θ_old)."""
    adv = advantages[:, None] if advantages.dim() == 1 else advantages
    return (adv + beta * (torch.exp(ref_logp - logp) - 1)) * mask.float()


# ----------------------------------------------------------------------------------------- model plumbing


def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_mask: torch.Tensor,
                   temperature: float = 1.0, group_size: int = 1) -> torch.Tensor:
    """``[N, T]`` log-probs of the last ``T = completion_mask.shape[1]`` tokens of ``input_ids`` (the completion).

    Only the completion's logits are materialised (``logits_to_keep``); position ids follow the attention mask
    so left-padded prompts see the same positions as in sampling. ``group_size=G > 1`` says rows come in groups
    of G sharing one prompt (GRPO's layout): the prompt is then run once per group and its KV cache shared by
    the G completions (same values, fewer tokens through the model; gradients flow through the shared prompt).
    """
    t_len = completion_mask.shape[1]
    if group_size > 1:
        return _grouped_logprobs(model, input_ids, attention_mask, t_len, temperature, group_size)
    pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos,
                   logits_to_keep=t_len + 1, use_cache=False).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    tgt = input_ids[:, -t_len:]
    return torch.gather(logits.log_softmax(-1), -1, tgt[..., None]).squeeze(-1)


def _grouped_logprobs(model, input_ids, attention_mask, t_len, temperature, g):
    from transformers import DynamicCache

    n, total = input_ids.shape
    if n % g:
        raise ValueError(f"token_logprobs: {n} rows is not a multiple of group_size={g}")
    lp = total - t_len
    p_ids, p_att = input_ids[::g, :lp], attention_mask[::g, :lp]
    if not (torch.equal(input_ids[:, :lp], p_ids.repeat_interleave(g, 0))
            and torch.equal(attention_mask[:, :lp], p_att.repeat_interleave(g, 0))):
        raise ValueError("token_logprobs(group_size>1): rows of a group must share the same prompt")
    cache = DynamicCache()
    pos = (p_att.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=p_ids, attention_mask=p_att, position_ids=pos, cache=cache, use_cache=True,
                logits_to_keep=1)
    first = out.logits[:, -1:].repeat_interleave(g, 0)
    cache.batch_repeat_interleave(g)
    c_pos = pos[:, -1:].repeat_interleave(g, 0) + torch.arange(1, t_len + 1)[None, :]
    rest = model(input_ids=input_ids[:, lp:], attention_mask=attention_mask, position_ids=c_pos,
                 cache=cache, use_cache=True).logits[:, :-1]
    logits = torch.cat([first, rest], 1).float()
    if temperature != 1.0:
        logits = logits / temperature
    return torch.gather(logits.log_softmax(-1), -1, input_ids[:, lp:, None]).squeeze(-1)


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from (seed, step, ...): sampling at a step does not depend on what ran before."""
    return zlib.crc32(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


@torch.inference_mode()
def sample(model, tokenizer, prompts: Sequence[str], n: int = 1, max_new_tokens: int = 64, temperature: float = 1.0,
           seed: int = 0) -> list[list[int]]:
    """``n`` completions per prompt (groups contiguous), as token-id lists ending with EOS when it was sampled.

    A plain KV-cache decoding loop with its own ``torch.Generator``: no global RNG is touched, and on a tiny model
    it avoids most of ``generate``'s per-token overhead. ``temperature=0`` is greedy.
    """
    from transformers import StaticCache

    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(dev)
    ids, att = enc["input_ids"], enc["attention_mask"]
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    lp = ids.shape[1]
    # a static cache: no per-token concatenation of the keys/values
    cache = StaticCache(config=model.config, max_cache_len=lp + max_new_tokens)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    # prefill each prompt once, then give each of its n samples a copy of the KV cache
    out = model(input_ids=ids, attention_mask=att, position_ids=pos, cache=cache, use_cache=True,
                logits_to_keep=1, cache_position=torch.arange(lp, device=dev))
    logits = out.logits[:, -1].float().repeat_interleave(n, 0)
    for layer in cache.layers:  # (StaticLayer has no batch_repeat_interleave)
        layer.keys, layer.values = layer.keys.repeat_interleave(n, 0), layer.values.repeat_interleave(n, 0)
        layer.batch_size = layer.keys.shape[0]
    pos = pos.repeat_interleave(n, 0)
    att = torch.cat([att.repeat_interleave(n, 0), torch.ones(len(pos), max_new_tokens, dtype=att.dtype, device=dev)],
                    1)
    done = torch.zeros(att.shape[0], dtype=torch.bool, device=dev)
    new = []
    for step in range(max_new_tokens):
        if step:
            logits = out.logits[:, -1].float()
        if temperature > 0:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen).squeeze(1)
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        new.append(nxt)
        done = done | (nxt == eos)
        if bool(done.all()) or len(new) == max_new_tokens:
            break
        pos = pos[:, -1:] + 1
        out = model(input_ids=nxt[:, None], attention_mask=att, position_ids=pos, cache=cache,
                    use_cache=True, cache_position=torch.tensor([lp + step], device=dev))
    model.train(was_training)
    rows = torch.stack(new, 1).tolist()
    result = []
    for r in rows:
        result.append(r[:r.index(eos) + 1] if eos in r else r)
    return result


@dataclass
class Batch:
    """Prompts (left-padded) and completions (right-padded) of one step, in the layout the losses use."""

    input_ids: torch.Tensor  # [N, Lp + T]
    attention_mask: torch.Tensor  # [N, Lp + T]
    completion_mask: torch.Tensor  # [N, T]
    texts: list[str]
    completion_ids: list[list[int]]


def make_batch(tokenizer, prompts: Sequence[str], completion_ids: Sequence[Sequence[int]]) -> Batch:
    """Pack ``prompts[i]`` + ``completion_ids[i]`` (one prompt per completion) into tensors."""
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    t_len = max(1, max(len(c) for c in completion_ids))
    comp = torch.full((len(completion_ids), t_len), tokenizer.pad_token_id, dtype=torch.long)
    cmask = torch.zeros((len(completion_ids), t_len), dtype=torch.long)
    for i, c in enumerate(completion_ids):
        comp[i, :len(c)] = torch.tensor(list(c), dtype=torch.long)
        cmask[i, :len(c)] = 1
    texts = tokenizer.batch_decode([list(c) for c in completion_ids], skip_special_tokens=True)
    return Batch(torch.cat([enc["input_ids"], comp], 1), torch.cat([enc["attention_mask"], cmask], 1), cmask,
                 texts, [list(c) for c in completion_ids])


def char_to_token_ends(tokenizer, token_ids: Sequence[int], char_ends: Sequence[int]) -> list[int]:
    """Index of the token holding character ``end − 1`` of the decoded text, for each (exclusive) char end."""
    pieces = tokenizer.batch_decode([[t] for t in token_ids], skip_special_tokens=True)
    cum, ends = 0, []
    for p in pieces:
        cum += len(p)
        ends.append(cum)
    out = []
    for e in char_ends:
        k = next((i for i, c in enumerate(ends) if c >= e), len(ends) - 1)
        out.append(max(k, 0))
    return out


# ----------------------------------------------------------------------------------------- trainers


@dataclass
class RLConfig:
    """Knobs of every method (GRPO defaults are the paper's; toy profiles override ``lr``, sizes and steps)."""

    group_size: int = 8  # G outputs per question (paper: 64)
    questions_per_step: int = 8  # questions per sampling round (paper: 1024 outputs per batch)
    steps: int = 50
    mu: int = 1  # policy updates per sampling round
    lr: float = 1e-6
    beta: float = 0.04  # KL coefficient (GRPO: in the loss; PPO: in the reward)
    dpo_beta: float = 0.1
    eps_low: float = 0.2
    eps_high: float | None = None  # clip-higher (DAPO); None = symmetric
    max_new_tokens: int = 64
    temperature: float = 1.0
    supervision: str = "outcome"  # "outcome" | "process"
    reward: str = "rule"  # "rule" (step checker) | "model" (learned reward model)
    scale_std: bool = True  # False = Dr. GRPO
    loss_agg: str = "sequence"  # "token" = DAPO, "constant" = Dr. GRPO
    gamma: float = 1.0  # PPO GAE
    lam: float = 0.95
    value_lr: float | None = None  # PPO value model (None = lr)
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 0  # 0 = only at the end (when eval_fn is given)
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        if self.supervision not in ("outcome", "process"):
            raise ValueError(f"supervision={self.supervision!r}: valid values are 'outcome', 'process'")
        if self.reward not in ("rule", "model"):
            raise ValueError(f"reward={self.reward!r}: valid values are 'rule', 'model'")
        if self.loss_agg not in ("sequence", "token", "constant"):
            raise ValueError(f"loss_agg={self.loss_agg!r}: valid values are 'sequence', 'token', 'constant'")
        if self.group_size < 1 or self.mu < 1 or self.questions_per_step < 1:
            raise ValueError("group_size, mu and questions_per_step must be >= 1")


GRPOConfig = RLConfig  # the name the notebooks use for GRPO


# ----------------------------------------------------------------------------------------- one step, piece by piece
# A training step is: draw questions → the method's *data source* samples outputs → the *reward function* scores
# them → the method's *prepare* computes what its gradient coefficient needs → μ times the method's *update*.
# Each Table 10 row names its pieces in :data:`METHODS`; nothing below branches on a method's name.


@dataclass
class Ctx:
    """What the pieces share: models, tokenizer, config and optimisers."""

    policy: Any
    ref_model: Any
    tokenizer: Any
    cfg: RLConfig
    opt: Any
    reward_model: Any = None
    value_model: Any = None
    vopt: Any = None


@dataclass
class StepData:
    """One step's data: outputs in groups of ``g`` per question and everything computed about them."""

    probs: list  # the problem of each row
    prompts: list[str]  # the prompt of each row
    completions: list[list[int]]  # completion token ids of each row
    g: int  # rows per question (shared prompt)
    batch: Batch | None = None
    rewards: torch.Tensor | None = None  # [N] the reward function's outcome reward
    correct: torch.Tensor | None = None  # [N] the rule checker's outcome (logged)
    step_rewards: list | None = None  # process supervision: per-step rewards and their token ends
    step_ends: list | None = None
    ref_logp: torch.Tensor | None = None
    old_logp: torch.Tensor | None = None
    values: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    log: dict = field(default_factory=dict)

    @property
    def mask(self) -> torch.Tensor:
        return self.batch.completion_mask.float()


def draw_questions(pool: Sequence[P.Problem], cfg: RLConfig, step: int) -> list[P.Problem]:
    """``questions_per_step`` questions from a (seed, step) RNG: a resumed run replays exactly."""
    rng = random.Random(derive_seed(cfg.seed, step, "questions"))
    return rng.sample(list(pool), min(cfg.questions_per_step, len(pool)))


# -- data sources (Table 10, "Data Source")

def source_gold(ctx: Ctx, qs: list, step: int) -> StepData:
    """q, o ~ P_sft(Q, O): the gold CoT solution of each question."""
    tok = ctx.tokenizer
    comp = [tok(p.cot, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for p in qs]
    return StepData(list(qs), [P.chat_prompt(p.question) for p in qs], comp, 1)


def _sampled(model, ctx: Ctx, qs: list, step: int) -> StepData:
    cfg = ctx.cfg
    prompts = [P.chat_prompt(p.question) for p in qs]
    comp = sample(model, ctx.tokenizer, prompts, n=cfg.group_size, max_new_tokens=cfg.max_new_tokens,
                  temperature=cfg.temperature, seed=derive_seed(cfg.seed, step, "sample"))
    g = cfg.group_size
    return StepData([p for p in qs for _ in range(g)], [pr for pr in prompts for _ in range(g)], comp, g)


def source_offline(ctx: Ctx, qs: list, step: int) -> StepData:
    """o ~ π_sft(O|q): G samples per question from the SFT model (``ref_model``), never updated."""
    return _sampled(ctx.ref_model, ctx, qs, step)


def source_online(ctx: Ctx, qs: list, step: int) -> StepData:
    """o ~ π_θ(O|q): G samples per question from the current policy."""
    return _sampled(ctx.policy, ctx, qs, step)


# -- reward function (Table 10, "Reward Function"): the rule checker, or a learned reward model

def score(ctx: Ctx, d: StepData) -> None:
    """Outcome rewards (and per-step rewards under process supervision) of the sampled outputs."""
    cfg, tok = ctx.cfg, ctx.tokenizer
    d.batch = make_batch(tok, d.prompts, d.completions)
    checks = [P.check_solution(t, p) for t, p in zip(d.batch.texts, d.probs)]
    d.correct = torch.tensor([1.0 if c.correct else 0.0 for c in checks])
    if cfg.reward == "model":
        from . import reward_models

        if ctx.reward_model is None:
            raise ValueError("reward='model' needs reward_model=")
        d.rewards = torch.tensor(reward_models.score_outcome(ctx.reward_model, tok, d.prompts, d.batch.texts),
                                 dtype=torch.float32)
    else:
        d.rewards = d.correct.clone()
    if cfg.supervision == "process":
        d.step_ends = [char_to_token_ends(tok, ids, [s.end for s in c.steps])
                       for ids, c in zip(d.batch.completion_ids, checks)]
        if cfg.reward == "model":
            from . import reward_models

            d.step_rewards = reward_models.score_steps(ctx.reward_model, tok, d.prompts, d.batch.texts)
        else:
            d.step_rewards = [c.step_rewards for c in checks]
    d.log.update(reward_mean=float(d.rewards.mean()), correct_mean=float(d.correct.mean()))


# -- prepare: what each method's gradient coefficient needs, computed once per step

@torch.no_grad()
def _logp(model, d: StepData, ctx: Ctx) -> torch.Tensor:
    b = d.batch
    return token_logprobs(model, b.input_ids, b.attention_mask, b.completion_mask, ctx.cfg.temperature, d.g)


def prepare_dpo_pairs(ctx: Ctx, d: StepData) -> StepData:
    """DPO: pair each correct output of a question with an incorrect one; rows = [o⁺ ..., o⁻ ...]; π_ref log-probs."""
    pos, neg = [], []
    for q0 in range(0, len(d.completions), d.g):
        ok = [i for i in range(q0, q0 + d.g) if d.correct[i] > 0.5]
        bad = [i for i in range(q0, q0 + d.g) if d.correct[i] <= 0.5]
        pos += ok[:len(bad)]
        neg += bad[:len(ok)]
    keep = pos + neg
    p = StepData([d.probs[i] for i in keep], [d.prompts[i] for i in keep], [d.completions[i] for i in keep], 1,
             log={**d.log, "n_pairs": len(pos)})
    if keep:
        p.batch = make_batch(ctx.tokenizer, p.prompts, p.completions)
        p.ref_logp = _logp(ctx.ref_model, p, ctx)
    return p


def prepare_grpo_advantages(ctx: Ctx, d: StepData) -> StepData:
    """GRPO: group-normalised outcome (eq. 3 with Â_i = r̃_i) or process advantages; π_ref and π_θ_old log-probs."""
    cfg = ctx.cfg
    if cfg.supervision == "process":
        d.advantages = process_advantages(d.step_rewards, d.step_ends, d.g, d.mask.shape[1], cfg.scale_std)
    else:
        d.advantages = outcome_advantages(d.rewards, d.g, cfg.scale_std)
    if cfg.beta and ctx.ref_model is not None:
        d.ref_logp = _logp(ctx.ref_model, d, ctx)
    if cfg.mu > 1:
        d.old_logp = _logp(ctx.policy, d, ctx)
    return d


def prepare_ppo_gae(ctx: Ctx, d: StepData) -> StepData:
    """PPO: values of the value model, GAE advantages (KL penalty in the reward) and the value targets."""
    from . import reward_models

    cfg, b = ctx.cfg, d.batch
    d.ref_logp = _logp(ctx.ref_model, d, ctx)
    d.old_logp = _logp(ctx.policy, d, ctx)
    with torch.no_grad():
        d.values = reward_models.token_values(ctx.value_model, b.input_ids, b.attention_mask, d.mask.shape[1])
    d.advantages = gc_ppo(mask=d.mask, rewards=d.rewards, values=d.values, logp=d.old_logp, ref_logp=d.ref_logp,
                          beta=cfg.beta, gamma=cfg.gamma, lam=cfg.lam)
    d.returns = d.advantages + d.values
    return d


def prepare_nothing(ctx: Ctx, d: StepData) -> StepData:
    """SFT, RFT, Online RFT: the coefficient needs only the rewards."""
    if d.batch is None:
        d.batch = make_batch(ctx.tokenizer, d.prompts, d.completions)
    return d


# -- updates: one optimiser step of the method's loss

def _policy_logp(ctx: Ctx, d: StepData) -> torch.Tensor:
    b = d.batch
    return token_logprobs(ctx.policy, b.input_ids, b.attention_mask, b.completion_mask, ctx.cfg.temperature, d.g)


def _step(opt, params, loss: torch.Tensor, grad_clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()


def update_weighted(coefficient: Callable[..., torch.Tensor]) -> Callable[[Ctx, StepData], dict]:
    """SFT, RFT, Online RFT, DPO: minimise ``−GC · log π_θ`` with GC from the method's coefficient (held fixed)."""

    def update(ctx: Ctx, d: StepData) -> dict:
        logp = _policy_logp(ctx, d)
        gc = coefficient(mask=d.mask, rewards=d.rewards, logp=logp.detach(), ref_logp=d.ref_logp,
                         beta=ctx.cfg.dpo_beta)
        loss = weighted_logprob_loss(logp, gc, d.mask, ctx.cfg.loss_agg)
        _step(ctx.opt, ctx.policy.parameters(), loss, ctx.cfg.grad_clip)
        stats = {"loss": float(loss.detach())}
        if d.ref_logp is not None:
            stats["kl"] = float(_masked_mean(k3_kl(logp.detach(), d.ref_logp), d.mask))
        return stats

    update.__name__ = update.__qualname__ = f"update_weighted({coefficient.__name__})"
    return update


def update_grpo(ctx: Ctx, d: StepData) -> dict:
    """GRPO: eq. 3 (PPO-clip on the group advantages, k3 KL to π_ref in the loss)."""
    cfg = ctx.cfg
    logp = _policy_logp(ctx, d)
    old = d.old_logp if d.old_logp is not None else logp.detach()  # μ = 1: π_θ_old = π_θ
    loss, stats = grpo_loss(logp, old, d.ref_logp, d.advantages, d.mask, beta=cfg.beta, eps_low=cfg.eps_low,
                            eps_high=cfg.eps_high, loss_agg=cfg.loss_agg, max_len=cfg.max_new_tokens)
    _step(ctx.opt, ctx.policy.parameters(), loss, cfg.grad_clip)
    return stats


def update_ppo(ctx: Ctx, d: StepData) -> dict:
    """PPO: the clipped surrogate on GAE advantages (no KL term: it is in the reward), then a value-model step."""
    from . import reward_models

    cfg, b = ctx.cfg, d.batch
    logp = _policy_logp(ctx, d)
    loss, stats = grpo_loss(logp, d.old_logp, d.ref_logp, d.advantages, d.mask, beta=0.0, eps_low=cfg.eps_low,
                            eps_high=cfg.eps_high, loss_agg=cfg.loss_agg, max_len=cfg.max_new_tokens)
    _step(ctx.opt, ctx.policy.parameters(), loss, cfg.grad_clip)
    v = reward_models.token_values(ctx.value_model, b.input_ids, b.attention_mask, d.mask.shape[1])
    vloss = 0.5 * aggregate((v - d.returns) ** 2, d.mask)
    _step(ctx.vopt, ctx.value_model.parameters(), vloss, cfg.grad_clip)
    stats["value_loss"] = float(vloss.detach())
    return stats


# ----------------------------------------------------------------------------------------- Table 10: the methods


@dataclass(frozen=True)
class Method:
    """One row of Table 10 and the named pieces the trainer runs for it."""

    name: str
    data_source: str  # the paper's column, as text
    reward_function: str  # "—", "Rule" or "Model" (the paper's column)
    gradient_coefficient: str  # the paper's formula, as text
    sampler: str  # "gold" (SFT data), "reference" (offline: π_sft), "policy" (online: π_θ)
    coefficient: Callable[..., torch.Tensor] = field(repr=False)  # per-token GC [N, T]
    source: Callable[[Ctx, list, int], StepData] = field(repr=False, default=source_gold)
    prepare: Callable[[Ctx, StepData], StepData] = field(repr=False, default=prepare_nothing)
    update: Callable[[Ctx, StepData], dict] | None = field(repr=False, default=None)  # None: update_weighted(coefficient)

    @property
    def online(self) -> bool:
        return self.sampler == "policy"

    @property
    def rewarded(self) -> bool:
        return self.sampler != "gold"

    def step_update(self) -> Callable[[Ctx, StepData], dict]:
        return self.update or update_weighted(self.coefficient)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("SFT", "q, o ~ P_sft(Q, O)", "—", "1", "gold", gc_sft, source_gold),
    Method("RFT", "q ~ P_sft(Q), o ~ π_sft(O|q)", "Rule", "I(o): 1 if o is correct else 0", "reference",
           gc_rft, source_offline),
    Method("DPO", "q ~ P_sft(Q), o⁺, o⁻ ~ π_sft(O|q)", "Rule",
           "σ(β log π_θ(o⁻)/π_ref(o⁻) − β log π_θ(o⁺)/π_ref(o⁺))", "reference", gc_dpo, source_offline,
           prepare_dpo_pairs),
    Method("Online RFT", "q ~ P_sft(Q), o ~ π_θ(O|q)", "Rule", "I(o): 1 if o is correct else 0", "policy",
           gc_online_rft, source_online),
    Method("PPO", "q ~ P_sft(Q), o ~ π_θ(O|q)", "Model", "A_t (GAE of r_φ − β log π_θ/π_ref, value model)",
           "policy", gc_ppo, source_online, prepare_ppo_gae, update_ppo),
    Method("GRPO", "q ~ P_sft(Q), {o_i} ~ π_θ(O|q)", "Model", "Â_{i,t} + β (π_ref(o_{i,t})/π_θ(o_{i,t}) − 1)",
           "policy", gc_grpo, source_online, prepare_grpo_advantages, update_grpo),
]}


def _method(name: str) -> Method:
    key = {k.lower().replace(" ", "_").replace("-", "_"): k for k in METHODS}.get(
        name.lower().replace(" ", "_").replace("-", "_"))
    if key is None:
        raise ValueError(f"unknown method {name!r}: valid names are {list(METHODS)}")
    return METHODS[key]


def gradient_coefficient(method_name: str, **batch_fields) -> torch.Tensor:
    """Per-token GC ``[N, T]`` of a method on a batch (fields: ``mask`` and what the method needs: ``rewards``,
    ``logp``, ``ref_logp``, ``advantages``, ``values``, ``beta``, ``gamma``, ``lam``)."""
    return _method(method_name).coefficient(**batch_fields)


def table10():
    """Table 10 of the paper, rendered from :data:`METHODS` (the objects the trainer runs), with the names of the
    functions that implement each column."""
    import pandas as pd

    return pd.DataFrame([{"Methods": m.name, "Data Source": m.data_source, "Reward Function": m.reward_function,
                          "Gradient Coefficient": m.gradient_coefficient, "Online": m.online,
                          "code": f"{m.source.__name__} · {m.prepare.__name__} · {m.coefficient.__name__} · "
                                  f"{m.step_update().__name__}"} for m in METHODS.values()]).set_index("Methods")


# ----------------------------------------------------------------------------------------- the trainer


def _load_weights(model, path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model.load_state_dict(AutoModelForCausalLM.from_pretrained(str(path)).state_dict())


def train_step(m: Method, ctx: Ctx, pool: Sequence[P.Problem], step: int) -> dict:
    """One step of method ``m``: questions → data source → reward → prepare → μ updates; returns the log row."""
    d = m.source(ctx, draw_questions(pool, ctx.cfg, step), step)
    if m.rewarded:
        score(ctx, d)
    d = m.prepare(ctx, d)
    row: dict[str, Any] = {"step": step + 1, **d.log, "n_samples": len(d.completions)}
    if not d.completions:  # e.g. DPO without a (correct, wrong) pair this step
        return {**row, "loss": 0.0}
    update = m.step_update()
    for _ in range(ctx.cfg.mu):
        stats = update(ctx, d)
    return {**row, **stats}


def train(method_name: str, policy, ref_model, tokenizer, problems: Sequence[P.Problem], cfg: RLConfig, *,
          reward_model=None, value_model=None, eval_fn: Callable[[Any], dict] | None = None,
          checkpoint_dir: str | None = None, resume: bool = True, progress: bool = True,
          callback: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train ``policy`` with one method of Table 10; returns history rows (``step``, ``reward_mean``, ``kl``,
    ``loss``, ``clip_frac``, ``n_samples`` and ``eval_fn(policy)``'s fields on evaluation steps).

    Each step is :func:`train_step` with the method's pieces (see :data:`METHODS`). Questions and samples use
    (seed, step) seeds, so a run resumed from ``checkpoint_dir`` replays exactly. PPO also needs ``value_model``
    (:func:`dsm_utils.reward_models.make_value_model`), trained alongside. ``callback(step, row)`` runs after the
    step's checkpoint (notebooks use it for plots; tests to simulate kills).
    """
    from tqdm.auto import tqdm

    m = _method(method_name)
    if m.update is update_ppo and value_model is None:
        raise ValueError("PPO needs value_model= (reward_models.make_value_model(policy))")
    needs_ref = m.sampler == "reference" or m.prepare in (prepare_dpo_pairs, prepare_ppo_gae) or (
        m.prepare is prepare_grpo_advantages and cfg.beta)
    if needs_ref and ref_model is None:
        raise ValueError(f"{m.name} needs ref_model= (π_sft: the sampler of offline methods / the KL anchor)")
    if ref_model is not None:
        ref_model.eval()  # used under no_grad only; its requires_grad is left as the caller set it
    policy.train()
    ctx = Ctx(policy, ref_model, tokenizer, cfg, torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0),
              reward_model, value_model)
    if value_model is not None:
        ctx.vopt = torch.optim.AdamW(value_model.parameters(), lr=cfg.value_lr or cfg.lr, weight_decay=0.0)
    history: list[dict] = []
    start = 0
    ck = repo_path(checkpoint_dir) if checkpoint_dir else None
    if ck is not None and resume and (ck / "train_state.json").exists():
        _load_weights(policy, ck)
        state = training.load_train_state(ck, optimizer=ctx.opt)
        start, history = int(state["step"]), list(state["history"])
        if value_model is not None and (ck / "value.pt").exists():
            vs = torch.load(ck / "value.pt", weights_only=True)
            value_model.load_state_dict(vs["model"])
            ctx.vopt.load_state_dict(vs["optimizer"])
    for step in tqdm(range(start, cfg.steps), desc=m.name, disable=not progress, initial=start, total=cfg.steps,
                     mininterval=2):
        history.append(train_step(m, ctx, problems, step))
        last = step + 1 == cfg.steps
        if eval_fn is not None and (last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0)):
            policy.eval()
            history[-1].update(eval_fn(policy))
            policy.train()
        if ck is not None and cfg.checkpoint_every and ((step + 1) % cfg.checkpoint_every == 0 or last):
            training.save_checkpoint(ck, policy, optimizer=ctx.opt, state={"step": step + 1, "history": history})
            if value_model is not None:
                torch.save({"model": value_model.state_dict(), "optimizer": ctx.vopt.state_dict()}, ck / "value.pt")
        if callback is not None:
            callback(step + 1, history[-1])
    policy.eval()
    return history


def grpo_train(policy, ref_model, tokenizer, problems, cfg: RLConfig, *, reward_model=None, eval_fn=None,
               checkpoint_dir=None, resume=True, progress=True, callback=None) -> list[dict]:
    """GRPO (Algorithm 1 of the paper for one reference model): see :func:`train`."""
    return train("GRPO", policy, ref_model, tokenizer, problems, cfg, reward_model=reward_model, eval_fn=eval_fn,
                 checkpoint_dir=checkpoint_dir, resume=resume, progress=progress, callback=callback)


def sft_train(policy, tokenizer, problems, cfg: RLConfig, **kw) -> list[dict]:
    """SFT on the gold CoT solutions through the unified loss (GC = 1)."""
    return train("SFT", policy, None, tokenizer, problems, cfg, **kw)


def rft_train(policy, sft_model, tokenizer, problems, cfg: RLConfig, **kw) -> list[dict]:
    """Rejection-sampling fine-tuning: offline samples of π_sft (``sft_model``), GC = 1 on correct ones."""
    return train("RFT", policy, sft_model, tokenizer, problems, cfg, **kw)


def online_rft_train(policy, ref_model, tokenizer, problems, cfg: RLConfig, **kw) -> list[dict]:
    """Online RFT: like RFT but sampling from the current policy."""
    return train("Online RFT", policy, ref_model, tokenizer, problems, cfg, **kw)


def dpo_train(policy, sft_model, tokenizer, problems, cfg: RLConfig, **kw) -> list[dict]:
    """DPO on (correct, incorrect) pairs of offline π_sft samples; π_ref = ``sft_model``, β = ``cfg.dpo_beta``."""
    return train("DPO", policy, sft_model, tokenizer, problems, cfg, **kw)


def ppo_train(policy, ref_model, tokenizer, problems, cfg: RLConfig, *, value_model, reward_model=None,
              **kw) -> list[dict]:
    """PPO: GAE (γ = ``cfg.gamma``, λ = ``cfg.lam``) from ``value_model``, KL penalty β·log(π_θ/π_ref) in the reward."""
    return train("PPO", policy, ref_model, tokenizer, problems, cfg, value_model=value_model,
                 reward_model=reward_model, **kw)


def iteration_config(cfg: RLConfig, iteration: int) -> RLConfig:
    """The config of iteration ``iteration`` of iterative GRPO: iteration 0 is ``cfg`` itself (so it equals a plain
    GRPO run), later ones get their own seed, hence new questions and new samples at every step."""
    return cfg if iteration == 0 else dataclasses.replace(cfg, seed=derive_seed(cfg.seed, "iteration", iteration))


def iterative_grpo(policy, tokenizer, problems, cfg: RLConfig, *, reward_model=None, rm_dataset: list | None = None,
                   iterations: int = 2, rm_questions: int = 64, rm_samples_per_question: int = 4,
                   rm_steps: int = 100, rm_lr: float = 1e-4, replay: float = 0.1, eval_fn=None,
                   iteration_fn: Callable[[Any], dict] | None = None, checkpoint_dir=None, resume=True,
                   progress=True) -> list[dict]:
    """Iterative RL with GRPO (§4.1.4, Algorithm 1): per iteration, π_ref ← π_θ and GRPO for ``cfg.steps`` steps
    on new questions and samples (:func:`iteration_config`); then, between iterations, new RM data sampled from
    the current policy plus ``replay`` (10 %) of the historical data continues training the reward model.

    Rows carry ``iteration``; ``iteration_fn(policy)`` (e.g. a test-set evaluation) is stored on each iteration's
    last row as ``iteration_eval``. With ``reward_model=None`` (rule reward) only π_ref is reset.
    """
    from . import reward_models

    if cfg.reward == "model" and reward_model is None:
        raise ValueError("iterative_grpo: reward='model' needs reward_model=")
    history: list[dict] = []
    old = list(rm_dataset or [])
    for it in range(iterations):
        ref = copy.deepcopy(policy).eval()
        ck = str(Path(checkpoint_dir) / f"iter{it}") if checkpoint_dir else None
        rows = grpo_train(policy, ref, tokenizer, problems, iteration_config(cfg, it), reward_model=reward_model,
                          eval_fn=eval_fn, checkpoint_dir=ck, resume=resume, progress=progress)
        rows = [{**r, "iteration": it} for r in rows]
        if iteration_fn is not None and rows:
            rows[-1]["iteration_eval"] = iteration_fn(policy)
            policy.train()
        history += rows
        del ref
        if reward_model is None or it + 1 == iterations:
            continue  # the RM update only matters for the next iteration
        rng = random.Random(derive_seed(cfg.seed, it, "rm"))
        qs = rng.sample(list(problems), min(rm_questions, len(problems)))
        comp = sample(policy, tokenizer, [P.chat_prompt(p.question) for p in qs], n=rm_samples_per_question,
                      max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                      seed=derive_seed(cfg.seed, it, "rm-sample"))
        texts = tokenizer.batch_decode(comp, skip_special_tokens=True)
        new = reward_models.build_rm_dataset([p for p in qs for _ in range(rm_samples_per_question)], texts,
                                             kind="process" if cfg.supervision == "process" else "outcome")
        replayed = rng.sample(old, int(round(replay * len(old)))) if old else []
        reward_models.train_reward_model(reward_model, tokenizer, new + replayed, steps=rm_steps, lr=rm_lr,
                                         seed=derive_seed(cfg.seed, it, "rm-train"), progress=progress)
        old += new
    return history


# ----------------------------------------------------------------------------------------- toy experiments
# The RL notebooks (06, 07) and bench/rl_effect.py run one (method, seed) per process: `run_jobs` hands picklable
# job specs to a pool of single-thread worker processes (2 cores → 2 seeds at once) and `toy_job` does one run:
# load the SFT checkpoint, train, evaluate on the named toy splits. Plain `concurrent.futures`, nothing more.


def toy_eval(model, tokenizer, probs: Sequence[P.Problem], *, n: int = 1, temperature: float = 0.0,
             max_new_tokens: int = 96, seed: int = 0, batch_size: int = 64, ks: Sequence[int] = ()) -> dict:
    """Rule-checker evaluation on toy problems: ``acc`` (share of correct samples; greedy accuracy for
    ``n=1, temperature=0``), ``program_share`` (share of samples that chose the program behaviour), and for
    ``n > 1`` the Maj@k / Pass@k curves over ``ks`` (unbiased Pass@k; Maj@k votes among the first k samples)."""
    from .metrics import maj_at_k_curve, pass_at_k_curve

    answers, correct, programs = [], [], 0
    for i in range(0, len(probs), batch_size):
        chunk = probs[i:i + batch_size]
        ids = sample(model, tokenizer, [P.chat_prompt(p.question) for p in chunk], n=n,
                     max_new_tokens=max_new_tokens, temperature=temperature, seed=derive_seed(seed, i, "eval"))
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        for j, p in enumerate(chunk):
            checks = [P.check_solution(t, p) for t in texts[j * n:(j + 1) * n]]
            answers.append([c.answer for c in checks])
            correct.append([c.correct for c in checks])
            programs += sum(P.behaviour(t) == "program" for t in texts[j * n:(j + 1) * n])
    total = max(1, n * len(probs))
    out = {"acc": sum(map(sum, correct)) / total, "program_share": programs / total, "n_items": len(probs)}
    if n > 1 and ks:
        ks = [k for k in ks if k <= n]
        out["maj"] = {int(k): v for k, v in maj_at_k_curve(answers, correct, ks).items()}
        out["pass"] = {int(k): v for k, v in pass_at_k_curve([sum(c) for c in correct], n, ks).items()}
    return out


#: The toy splits by name: (generator prefix, difficulty). ``val`` picks lr/steps/temperature/model size; ``test``
#: (= ``benchmarks.load_benchmark("toy")``) and ``ood`` (= ``"toy_ood"``) are only used for reported numbers.
SPLITS = {"val": ("toyval", "EASY"), "test": ("toyeval", "EASY"), "ood": ("toyood", "OOD")}


def split_tokens(name: str, max_new_tokens: int) -> int:
    """Generation budget on a split: the OOD problems (4-5 steps, larger numbers) need up to ~75 tokens."""
    return max(max_new_tokens, 96) if name == "ood" else max_new_tokens


def split_problems(name: str, n: int) -> list[P.Problem]:
    """The first ``n`` problems of toy split ``name`` (``val``, ``test``, ``ood``); RL questions come from ``rl``."""
    if name not in SPLITS:
        raise ValueError(f"split {name!r}: valid splits are {list(SPLITS)}")
    prefix, diff = SPLITS[name]
    return P.generate(n, seed=0, difficulty=getattr(P, diff), prefix=prefix)


def toy_job(spec: dict) -> dict:
    """One training run of the toy world, as a picklable ``spec``; returns its history and evaluations.

    Keys: ``checkpoint`` (the SFT model), ``method`` (a Table 10 name), ``cfg`` (RLConfig fields), ``n_questions``
    (RL pool, stream ``rl``), ``evals`` ({split: n_items}; the final greedy evaluation), ``curve`` ((split, n):
    greedy accuracy every ``cfg.eval_every`` steps), ``k`` ({"split", "n_items", "n", "temperature"}: Maj@k/Pass@k
    of the final policy), ``rm`` ({"questions", "samples", "steps", "lr"}: a learned reward model for
    ``cfg.reward="model"``), ``iterations`` (> 0: iterative GRPO), ``save_to`` (a folder for the final policy),
    ``threads`` (torch threads), ``eval_max_new_tokens``, ``label``, ``work_dir`` (resume: training checkpoints
    every ``cfg.checkpoint_every`` steps go there, and the finished result, reused by a rerun of the same spec on
    the same SFT weights). ``method="none"`` only evaluates the SFT model.
    """
    import time

    from . import models, reward_models
    from .tokenizer import load_tokenizer

    from transformers.utils import logging as hf_logging

    t0 = time.time()
    hf_logging.disable_progress_bar()  # worker output goes to the kernel's terminal, not the notebook
    training.set_threads(spec.get("threads", 1))
    cfg = RLConfig(**spec.get("cfg", {}))
    training.seed_everything(cfg.seed)
    tok = load_tokenizer(spec["checkpoint"])
    sft_model = models.load_model(spec["checkpoint"], tok).eval()
    for p_ in sft_model.parameters():
        p_.requires_grad_(False)
    mnt = spec.get("eval_max_new_tokens", 64)
    curve_split = spec.get("curve")
    curve_probs = split_problems(*curve_split) if curve_split else None

    def eval_fn(model) -> dict:
        return {"acc": toy_eval(model, tok, curve_probs, max_new_tokens=mnt)["acc"]} if curve_probs else {}

    wd = Path(spec["work_dir"]) if spec.get("work_dir") else None
    key = _job_key(spec)
    if wd is not None and (wd / "result.json").exists():  # finished before (e.g. the notebook was killed later)
        cached = json.loads((wd / "result.json").read_text())
        if cached.get("key") == key:
            return _int_keys(cached["result"])
    train_dir = str(wd / "train") if wd is not None else None
    out: dict[str, Any] = {"label": spec.get("label", spec.get("method")), "seed": cfg.seed, "history": []}

    def _k_and_save(model) -> None:
        k = spec.get("k")
        if k:
            out["k"] = toy_eval(model, tok, split_problems(k["split"], k["n_items"]), n=k["n"],
                                temperature=k["temperature"], max_new_tokens=mnt, seed=1,
                                ks=[x for x in (1, 2, 4, 8, 16, 32, 64) if x <= k["n"]])
        if spec.get("save_to"):
            training.save_checkpoint(spec["save_to"], model, tok, state={"label": out["label"], "seed": cfg.seed})

    policy = sft_model
    if spec.get("method", "none") != "none":
        policy = copy.deepcopy(sft_model)
        for p_ in policy.parameters():
            p_.requires_grad_(True)
        pool = P.generate(spec.get("n_questions", 2000), seed=cfg.seed, prefix="rl")
        rm = None
        if cfg.reward == "model":
            r = spec.get("rm", {})
            rm_q = P.generate(r.get("questions", 64), seed=cfg.seed, prefix="rm")
            comp = sample(sft_model, tok, [P.chat_prompt(p.question) for p in rm_q], n=r.get("samples", 4),
                          max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=cfg.seed + 1)
            texts = tok.batch_decode(comp, skip_special_tokens=True)
            data = reward_models.build_rm_dataset([p for p in rm_q for _ in range(r.get("samples", 4))], texts,
                                                  kind="process" if cfg.supervision == "process" else "outcome")
            rm = reward_models.make_reward_model(sft_model, seed=cfg.seed)
            for p_ in rm.parameters():
                p_.requires_grad_(True)
            reward_models.train_reward_model(rm, tok, data, steps=r.get("steps", 100), lr=r.get("lr", 3e-4),
                                             seed=cfg.seed, progress=False)
            out["rm_rows"] = len(data)
        if spec.get("iterations"):
            r = spec.get("rm", {})

            done: list[int] = []

            def iteration_fn(model) -> dict:
                """Evaluations after each iteration; Maj@k/Pass@k and the saved policy after the first one
                (iteration 1 = a plain GRPO run of the same seed; iteration 2 = iterative GRPO)."""
                done.append(1)
                res = {s: toy_eval(model, tok, split_problems(s, n), max_new_tokens=split_tokens(s, mnt))
                       for s, n in spec.get("evals", {}).items()}
                if len(done) == 1:
                    _k_and_save(model)
                return res

            hist = iterative_grpo(policy, tok, pool, cfg, reward_model=rm, rm_dataset=data if rm else None,
                                  iterations=spec["iterations"], rm_questions=r.get("questions", 64),
                                  rm_samples_per_question=r.get("samples", 4), rm_steps=r.get("steps", 100) // 2,
                                  rm_lr=r.get("lr", 3e-4), eval_fn=eval_fn, iteration_fn=iteration_fn,
                                  checkpoint_dir=train_dir, progress=False)
        else:
            kw = {}
            if spec["method"] == "PPO":
                kw["value_model"] = reward_models.make_value_model(policy, seed=cfg.seed)
                for p_ in kw["value_model"].parameters():
                    p_.requires_grad_(True)
            hist = train(spec["method"], policy, sft_model, tok, pool, cfg, reward_model=rm, eval_fn=eval_fn,
                         checkpoint_dir=train_dir, progress=False, **kw)
        out["history"] = hist
        policy.eval()
    if spec.get("iterations") and out["history"]:
        out["final"] = out["history"][-1]["iteration_eval"]
    else:
        out["final"] = {s: toy_eval(policy, tok, split_problems(s, n), max_new_tokens=split_tokens(s, mnt))
                        for s, n in spec.get("evals", {}).items()}
    if not spec.get("iterations"):
        _k_and_save(policy)
    out["seconds"] = round(time.time() - t0, 1)
    if wd is not None:
        _write_json(wd / "result.json", {"key": key, "result": out})
    return out


def _job_key(spec: dict) -> str:
    """What a cached job result depends on: the spec (less where it writes) and the SFT checkpoint's weights."""
    import hashlib

    ck = Path(spec["checkpoint"])
    w = next((f for f in (ck / "model.safetensors", ck / "pytorch_model.bin") if f.exists()), None)
    stamp = [w.stat().st_size, w.stat().st_mtime_ns] if w is not None else None
    body = {k: v for k, v in spec.items() if k not in ("work_dir", "save_to", "threads")}
    return hashlib.sha256(json.dumps([body, stamp], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)


def _int_keys(result: dict) -> dict:
    """JSON turned the K of Maj@K / Pass@K into strings: back to ints, as a fresh result has them."""
    def fix(d):
        if isinstance(d, dict):
            return {k: ({int(kk): vv for kk, vv in v.items()} if k in ("maj", "pass") and isinstance(v, dict)
                        else fix(v)) for k, v in d.items()}
        if isinstance(d, list):
            return [fix(x) for x in d]
        return d

    return fix(result)


def run_jobs(specs: Sequence[dict], processes: int = 2, progress: bool = True) -> list[dict]:
    """Run :func:`toy_job` on every spec, ``processes`` at a time in fresh single-thread processes (1 = inline);
    results in the order of ``specs``."""
    from tqdm.auto import tqdm

    if processes <= 1 or len(specs) <= 1:
        return [toy_job(s) for s in tqdm(specs, desc="runs", disable=not progress)]
    import concurrent.futures as cf
    import multiprocessing as mp
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the spawned workers before torch loads
    results: list[dict | None] = [None] * len(specs)
    with cf.ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("spawn")) as ex:
        futs = {ex.submit(toy_job, s): i for i, s in enumerate(specs)}
        for f in tqdm(cf.as_completed(futs), total=len(futs), desc="runs", disable=not progress):
            results[futs[f]] = f.result()
    return results
