"""Learned reward models (DeepSeekMath §4.1, Math-Shepherd-style process supervision) and PPO's value model.

A reward model is a causal-LM backbone with a scalar head: one logit per token. The outcome RM reads it at the
last token (the EOS after the solution) and is trained with label "the final answer is right"; the process RM
reads it at the last token of each step (a solution line, as :func:`dsm_utils.problems.check_solution` splits
them) and is trained with label "this step is right". Labels come from the rule-based step checker on
sampled solutions. PPO's value model is the same class initialised from the policy (one value per token).
"""
from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from . import problems as P
from . import repo_path

HEAD_FILE = "scalar_head.pt"


class ScalarHeadModel(torch.nn.Module):
    """``backbone`` (a decoder without LM head, e.g. ``LlamaModel``) + ``Linear(hidden, 1)``: ``[N, L]`` scalars."""

    def __init__(self, backbone, seed: int = 0):
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        g = torch.Generator().manual_seed(seed)
        self.head = torch.nn.Linear(backbone.config.hidden_size, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=g) * 0.02)
            self.head.bias.zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos,
                          use_cache=False).last_hidden_state
        return self.head(h).squeeze(-1).float()

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        d = repo_path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(str(d))
        torch.save(self.head.state_dict(), d / HEAD_FILE)
        return d


def _backbone(lm):
    return lm.get_decoder() if hasattr(lm, "get_decoder") else lm.base_model


def make_reward_model(name_or_path, tokenizer=None, seed: int = 0) -> ScalarHeadModel:
    """A scalar-head model from: a saved reward model folder; a causal LM object or checkpoint/toy name (the
    paper initialises the RM from the SFT model: the LM head is dropped, a fresh scalar head is added)."""
    from transformers import AutoModel

    from .models import load_model

    if isinstance(name_or_path, torch.nn.Module):
        return ScalarHeadModel(copy.deepcopy(_backbone(name_or_path)), seed=seed)
    d = repo_path(name_or_path)
    if (d / HEAD_FILE).exists():
        rm = ScalarHeadModel(AutoModel.from_pretrained(str(d)), seed=seed)
        rm.head.load_state_dict(torch.load(d / HEAD_FILE, weights_only=True))
        return rm
    lm = load_model(name_or_path, tokenizer, seed=seed)
    return ScalarHeadModel(_backbone(lm), seed=seed)


def make_value_model(policy, seed: int = 0) -> ScalarHeadModel:
    """PPO's value model: a copy of the policy's backbone with a scalar head (as large as the policy)."""
    return make_reward_model(policy, seed=seed)


def token_values(vm: ScalarHeadModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 t_len: int) -> torch.Tensor:
    """``[N, T]`` values V(q, o_<t) for the last ``t_len`` tokens: read at the position before each token."""
    return vm(input_ids, attention_mask)[:, -t_len - 1:-1]


# ----------------------------------------------------------------------------------------- data


def step_char_ends(text: str) -> list[int]:
    """Exclusive character ends of the steps of ``text`` (equation lines and the ``\\boxed`` line)."""
    dummy = P.Problem(id="", question="", answer="", cot="", pot="")
    return [s.end for s in P.check_solution(text, dummy).steps]


def build_rm_dataset(problems: Sequence[P.Problem], completions: Sequence[str], kind: str = "outcome") -> list[dict]:
    """Rows ``{prompt, completion, kind, label, step_ends, step_labels}`` labelled by the rule checker.

    ``problems[i]`` is the problem ``completions[i]`` answers. ``kind`` picks what the RM is trained on:
    ``outcome`` (``label``) or ``process`` (``step_labels`` at ``step_ends`` characters).
    """
    if kind not in ("outcome", "process"):
        raise ValueError(f"kind={kind!r}: valid values are 'outcome', 'process'")
    if len(problems) != len(completions):
        raise ValueError(f"build_rm_dataset: {len(problems)} problems but {len(completions)} completions")
    rows = []
    for p, c in zip(problems, completions):
        chk = P.check_solution(c, p)
        rows.append({"prompt": P.chat_prompt(p.question), "completion": c, "kind": kind,
                     "label": 1.0 if chk.correct else 0.0, "step_ends": [s.end for s in chk.steps],
                     "step_labels": chk.step_rewards})
    return rows


def _encode(tokenizer, prompt: str, completion: str, char_ends: Sequence[int] = ()) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + EOS and the token indices to read: each step end, or the EOS."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    c, offs = enc["input_ids"], enc["offset_mapping"]
    ids = p + c + [tokenizer.eos_token_id]
    reads = []
    for e in char_ends:
        k = next((i for i, (_, b) in enumerate(offs) if b >= e), len(c) - 1)
        reads.append(len(p) + max(k, 0))
    return ids, reads


def _pad(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Left-pad; returns ids, mask and each row's shift (to move read indices)."""
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), n), dtype=torch.long)
    shifts = []
    for i, r in enumerate(rows):
        ids[i, n - len(r):] = torch.tensor(r)
        att[i, n - len(r):] = 1
        shifts.append(n - len(r))
    return ids, att, shifts


def _forward_reads(rm, tokenizer, prompts, completions, ends_list):
    encs = [_encode(tokenizer, p, c, e) for p, c, e in zip(prompts, completions, ends_list)]
    ids, att, shifts = _pad([e[0] for e in encs], tokenizer.pad_token_id)
    scores = rm(ids.to(next(rm.parameters()).device), att.to(next(rm.parameters()).device))
    last = ids.shape[1] - 1
    return scores, [[s + r for r in e[1]] for s, e in zip(shifts, encs)], last


def train_reward_model(rm: ScalarHeadModel, tokenizer, dataset: Sequence[dict], steps: int = 200, lr: float = 1e-4,
                       batch_size: int = 16, seed: int = 0, grad_clip: float = 1.0, progress: bool = True) -> list[dict]:
    """Binary cross-entropy on the rule labels: outcome rows at the final token, process rows at each step end.

    Returns ``[{"step", "loss"}, ...]`` (every step).
    """
    from tqdm.auto import tqdm

    if not dataset:
        raise ValueError("train_reward_model: empty dataset")
    rng = random.Random(seed)
    opt = torch.optim.AdamW(rm.parameters(), lr=lr, weight_decay=0.0)
    rm.train()
    hist = []
    for step in tqdm(range(steps), desc="reward model", disable=not progress, mininterval=2):
        rows = [dataset[rng.randrange(len(dataset))] for _ in range(min(batch_size, len(dataset)))]
        ends = [r["step_ends"] if r["kind"] == "process" else [] for r in rows]
        scores, reads, last = _forward_reads(rm, tokenizer, [r["prompt"] for r in rows],
                                             [r["completion"] for r in rows], ends)
        logits, labels = [], []
        for i, r in enumerate(rows):
            if r["kind"] == "process":
                logits += [scores[i, k] for k in reads[i]]
                labels += list(r["step_labels"])
            else:
                logits.append(scores[i, last])
                labels.append(r["label"])
        if not logits:
            continue
        loss = F.binary_cross_entropy_with_logits(torch.stack(logits), torch.tensor(labels, dtype=torch.float32))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(rm.parameters(), grad_clip)
        opt.step()
        hist.append({"step": step + 1, "loss": float(loss.detach())})
    rm.eval()
    return hist


@torch.no_grad()
def score_outcome(rm: ScalarHeadModel, tokenizer, prompts: Sequence[str], completions: Sequence[str],
                  batch_size: int = 64) -> list[float]:
    """P(correct) of each solution: sigmoid of the scalar at the final token."""
    out: list[float] = []
    for i in range(0, len(prompts), batch_size):
        s, _, last = _forward_reads(rm, tokenizer, prompts[i:i + batch_size], completions[i:i + batch_size],
                                    [[]] * len(prompts[i:i + batch_size]))
        out += torch.sigmoid(s[:, last]).tolist()
    return out


@torch.no_grad()
def score_steps(rm: ScalarHeadModel, tokenizer, prompts: Sequence[str], completions: Sequence[str],
                batch_size: int = 64) -> list[list[float]]:
    """P(step correct) for each step of each solution (steps as :func:`step_char_ends` splits them)."""
    out: list[list[float]] = []
    for i in range(0, len(prompts), batch_size):
        cs = completions[i:i + batch_size]
        s, reads, _ = _forward_reads(rm, tokenizer, prompts[i:i + batch_size], cs, [step_char_ends(c) for c in cs])
        p = torch.sigmoid(s)
        out += [[float(p[j, k]) for k in reads[j]] for j in range(len(cs))]
    return out


def rm_accuracy(rm: ScalarHeadModel, tokenizer, dataset: Sequence[dict], threshold: float = 0.5) -> dict[str, float]:
    """Accuracy of thresholded RM scores against the rule labels: ``outcome_acc`` and ``step_acc``."""
    prompts = [r["prompt"] for r in dataset]
    comps = [r["completion"] for r in dataset]
    res: dict[str, float] = {}
    o = score_outcome(rm, tokenizer, prompts, comps)
    res["outcome_acc"] = sum((s > threshold) == (r["label"] > 0.5) for s, r in zip(o, dataset)) / max(1, len(dataset))
    st = score_steps(rm, tokenizer, prompts, comps)
    pairs = [(s > threshold, lab > 0.5) for ss, r in zip(st, dataset) for s, lab in zip(ss, r["step_labels"])]
    res["step_acc"] = sum(a == b for a, b in pairs) / max(1, len(pairs))
    return res
