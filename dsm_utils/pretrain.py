"""Pre-training (DeepSeekMath §2.2 and §5.1): packed blocks, AdamW, the multi-step schedule, on ``accelerate``.

One training run ("job") is a params dict in and a run folder out: ``metrics.json`` (loss curve, held-out bits
per byte, few-shot accuracy) and the final model. The same function runs

* in-process or in a pool of single-thread worker processes (the toy profiles: seeds in parallel),
* under ``accelerate launch -m dsm_utils.pretrain --params P.json --run-dir D`` with DDP, FSDP or DeepSpeed:
  the loop only talks to an :class:`accelerate.Accelerator` wrapped around model, optimiser and data loader.

The paper's recipe (§2.2.1, for the 1.3B corpus comparisons): AdamW with β1 = 0.9, β2 = 0.95 and weight decay
0.1; a multi-step learning-rate schedule that warms up to the peak, drops to 31.6 % of it after 80 % of the
training and to 10.0 % after 90 %. A killed run resumes from its last checkpoint (``accelerator.save_state``)
and reaches the same numbers as an uninterrupted one.

The toy corpora of notebooks 02–04 (:func:`source_texts`), their held-out evaluation sets (:func:`math_eval_pairs`,
:func:`code_eval_pairs`) and the paper's Tables 1 and 6 (:data:`PAPER_TABLE1`, :data:`PAPER_TABLE6`) are here too,
with :func:`paper_vs_ours` to put them side by side from a run folder's ``metrics.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import repo_path
from .tracking import read_json, write_json

# --------------------------------------------------------------------------------------------------
# the paper's numbers (accuracy in %, DeepSeek-LLM 1.3B trained on each corpus)

#: Table 1 (§2.2.1): DeepSeek-LLM 1.3B trained 150B tokens on each math corpus, few-shot chain-of-thought.
#: Columns: GSM8K, MATH, OCW, SAT, MMLU-STEM, CMATH, Gaokao MathCloze, Gaokao MathQA; "size" in tokens (B).
PAPER_TABLE1: dict[str, dict[str, float | None]] = {
    "No Math Training": {"size_b": None, "gsm8k": 2.9, "math": 3.0, "ocw": 2.9, "sat": 15.6, "mmlu_stem": 19.5,
                         "cmath": 12.3, "gaokao_mathcloze": 0.8, "gaokao_mathqa": 17.9},
    "MathPile": {"size_b": 8.9, "gsm8k": 2.7, "math": 3.3, "ocw": 2.2, "sat": 12.5, "mmlu_stem": 15.7, "cmath": 1.2,
                 "gaokao_mathcloze": 0.0, "gaokao_mathqa": 2.8},
    "OpenWebMath": {"size_b": 13.6, "gsm8k": 11.5, "math": 8.9, "ocw": 3.7, "sat": 31.3, "mmlu_stem": 29.6,
                    "cmath": 16.8, "gaokao_mathcloze": 0.0, "gaokao_mathqa": 14.2},
    "Proof-Pile-2": {"size_b": 51.9, "gsm8k": 14.3, "math": 11.2, "ocw": 3.7, "sat": 43.8, "mmlu_stem": 29.2,
                     "cmath": 19.9, "gaokao_mathcloze": 5.1, "gaokao_mathqa": 11.7},
    "DeepSeekMath Corpus": {"size_b": 120.2, "gsm8k": 23.8, "math": 13.6, "ocw": 4.8, "sat": 56.3,
                            "mmlu_stem": 33.1, "cmath": 41.5, "gaokao_mathcloze": 5.9, "gaokao_mathqa": 23.6},
}

#: Table 6 (§5.1.1): DeepSeek-LLM 1.3B, two-stage vs one-stage training; few-shot CoT (GSM8K, MATH, CMATH) and
#: program-aided with Python (GSM8K+Python, MATH+Python). Tokens in B per kind of data.
PAPER_TABLE6: dict[str, dict[str, float | None]] = {
    "No Continual Training": {"general_b": None, "code_b": None, "math_b": None, "gsm8k": 2.9, "math": 3.0,
                              "cmath": 12.3, "gsm8k_python": 2.7, "math_python": 2.3},
    "General → Math": {"general_b": 400, "code_b": None, "math_b": 150, "gsm8k": 19.1, "math": 14.4, "cmath": 37.2,
                       "gsm8k_python": 14.3, "math_python": 6.7},
    "Code → Math": {"general_b": None, "code_b": 400, "math_b": 150, "gsm8k": 21.9, "math": 15.3, "cmath": 39.7,
                    "gsm8k_python": 17.4, "math_python": 9.4},
    "Math only": {"general_b": None, "code_b": None, "math_b": 150, "gsm8k": 20.5, "math": 13.1, "cmath": 37.6,
                  "gsm8k_python": 11.4, "math_python": 6.5},
    "Code & Math mixed": {"general_b": None, "code_b": 400, "math_b": 150, "gsm8k": 17.6, "math": 12.1,
                          "cmath": 36.3, "gsm8k_python": 19.7, "math_python": 13.5},
}

#: Table 8 (§5.1.2) rows for DeepSeek-LLM 1.3B that are the same runs as Table 1 (no math training, MathPile).
#: The ArXiv-RedPajama rows, the DeepSeek-Coder-Base-v1.5 7B rows, Table 7 (MMLU/BBH/HumanEval/MBPP of the
#: Table 6 runs) and Table 9 (miniF2F) are left out: we were not sure enough of their numbers, and the paper's
#: text could not be consulted offline. Tables 1 and 6 above were entered from the paper without that check
#: either; compare them with the PDF before quoting them.
PAPER_TABLE8: dict[str, dict[str, float | None]] = {
    "No Math Training": dict(PAPER_TABLE1["No Math Training"]),
    "MathPile": dict(PAPER_TABLE1["MathPile"]),
}

#: Tables 7 and 9 have rows (the same runs as Tables 6 and 8) but no stored numbers (see above).
PAPER_TABLES: dict[str, dict[str, dict[str, float | None]]] = {"table1": PAPER_TABLE1, "table6": PAPER_TABLE6,
                                                                "table7": {}, "table8": PAPER_TABLE8, "table9": {}}
#: Where each table is in the paper.
PAPER_SOURCES = {"table1": "§2.2.1, Table 1", "table6": "§5.1.1, Table 6", "table7": "§5.1.1, Table 7",
                 "table8": "§5.1.2, Table 8", "table9": "§5.1.2, Table 9"}
#: Our arm → the paper's row it stands in for (``None``: no row in the paper).
ARM_TO_PAPER = {
    "table1": {"no_math": "No Math Training", "random_cc": None, "seed_only": "OpenWebMath",
               "dsm_corpus": "DeepSeekMath Corpus"},
    "table6": {"base": "No Continual Training", "general_math": "General → Math", "code_math": "Code → Math",
               "math_only": "Math only", "code_only": None, "code_math_mixed": "Code & Math mixed"},
    "table8": {"no_math": "No Math Training", "arxiv_only": None, "dsm_corpus": None},
}
ARM_TO_PAPER["table7"] = {**ARM_TO_PAPER["table6"], "code_only": "Code Training"}
ARM_TO_PAPER["table9"] = dict(ARM_TO_PAPER["table8"])
#: Which notebook's metrics.json feeds each table.
TABLE_NOTEBOOK = {"table1": "02_corpus_comparison", "table6": "03_pretrain_code_to_math",
                  "table7": "03_pretrain_code_to_math", "table8": "04_ablation_arxiv", "table9": "04_ablation_arxiv"}

# --------------------------------------------------------------------------------------------------
# the schedule


def multistep_lr(step: int, total_steps: int, peak_lr: float, warmup_steps: int,
                 milestones: Sequence[tuple[float, float]] = ((0.8, 0.316), (0.9, 0.1))) -> float:
    """The paper's multi-step schedule: linear warm-up to ``peak_lr`` over ``warmup_steps``, then the peak until
    80 % of the steps, 31.6 % of it until 90 %, 10.0 % of it to the end. ``step`` counts from 0."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    factor = 1.0
    for frac, f in milestones:
        if step >= frac * total_steps:
            factor = f
    return peak_lr * factor


# --------------------------------------------------------------------------------------------------
# packing


def pack_tokens(token_lists: Iterable[Sequence[int]], seq_len: int, eos_id: int) -> np.ndarray:
    """Join documents with EOS and cut the stream into ``seq_len`` blocks (the tail shorter than a block is
    dropped): an ``int32`` array of shape ``(n_blocks, seq_len)``."""
    if seq_len < 2:
        raise ValueError(f"pack_tokens: seq_len must be >= 2, got {seq_len}")
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(eos_id)
    n = len(stream) // seq_len
    return np.asarray(stream[: n * seq_len], dtype=np.int32).reshape(n, seq_len)


def tokenize_texts(tokenizer, texts: Sequence[str], batch: int = 256) -> list[list[int]]:
    """Token ids of each text (no special tokens), batched through the fast tokenizer."""
    out: list[list[int]] = []
    for i in range(0, len(texts), batch):
        out.extend(tokenizer(list(texts[i:i + batch]), add_special_tokens=False)["input_ids"])
    return out


def write_blocks(path: str | os.PathLike, tokenizer, texts: Sequence[str], seq_len: int,
                 max_tokens: int | None = None) -> dict[str, Any]:
    """Tokenize ``texts`` (stopping once ``max_tokens`` are reached), pack them and save ``path`` (``.npy``).

    Returns the size of what was written: documents, characters, tokens, blocks."""
    ids: list[list[int]] = []
    n_tok = n_chars = 0
    for i in range(0, len(texts), 256):
        chunk = list(texts[i:i + 256])
        for t, x in zip(chunk, tokenize_texts(tokenizer, chunk)):
            ids.append(x)
            n_tok += len(x) + 1
            n_chars += len(t)
        if max_tokens and n_tok >= max_tokens:
            break
    blocks = pack_tokens(ids, seq_len, tokenizer.eos_token_id)
    if len(blocks) == 0:
        raise ValueError(f"write_blocks({path}): {n_tok} tokens are fewer than one block of seq_len={seq_len}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npy")
    np.save(tmp, blocks)
    os.replace(tmp, path)
    return {"documents": len(ids), "chars": n_chars, "tokens": n_tok, "blocks": int(len(blocks))}


def mixture_order(block_counts: dict[str, int], weights: dict[str, float], n_blocks: int,
                  seed: int) -> list[tuple[str, int]]:
    """``n_blocks`` (source, block index) pairs: each source gets its share of ``weights`` (rounded, the last
    source takes the remainder); a source smaller than its share is repeated in fresh permutations (epochs);
    the whole order is shuffled with ``seed``."""
    bad = [k for k in weights if k not in block_counts]
    if bad:
        raise ValueError(f"mixture_order: weights name unknown sources {bad}; known: {sorted(block_counts)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"mixture_order: weights must be >= 0 with a positive sum, got {weights}")
    rng = np.random.default_rng(seed)
    total = sum(weights.values())
    names = [k for k in weights if weights[k] > 0]
    counts = [int(round(n_blocks * weights[k] / total)) for k in names]
    counts[-1] = n_blocks - sum(counts[:-1])
    order: list[tuple[str, int]] = []
    for name, c in zip(names, counts):
        have = block_counts[name]
        idx: list[int] = []
        while len(idx) < c:
            idx.extend(rng.permutation(have).tolist())
        order.extend((name, i) for i in idx[:c])
    perm = rng.permutation(len(order))
    return [order[i] for i in perm]


# --------------------------------------------------------------------------------------------------
# one training run


@dataclass
class PretrainParams:
    """What one run needs; ``from_dict`` rejects unknown keys, naming them."""

    model: str  # toy name (llama-1m …), checkpoint folder, or hub id
    tokenizer: str  # tokenizer folder or hub id
    data: dict[str, float]  # {blocks .npy path: mixture weight}
    tokens: int  # token budget (optimizer steps = tokens / (seq_len x global batch))
    seq_len: int = 128
    batch_size: int = 16  # sequences per process per micro-step
    grad_accum: int = 1
    lr: float = 1e-3  # peak learning rate
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    grad_clip: float = 1.0
    seed: int = 0  # model initialisation (toy names)
    data_seed: int | None = None  # order of the blocks (default: seed); give later stages their own
    device: str = "cpu"  # "cpu" forces CPU; anything else lets accelerate pick (GPU when present)
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"
    threads: int = 1
    ckpt_every: int = 0  # optimizer steps between checkpoints (0: none)
    stop_after: int = -1  # stop (as if killed) after this many steps; for the resume test
    log_every: int = 10
    eval: dict[str, str] = field(default_factory=dict)  # {name: jsonl of {"context", "text"}}
    eval_batch: int = 16
    eval_max_len: int = 512
    fewshot: dict[str, Any] = field(default_factory=dict)  # {"benchmarks": [...], "n_items", "max_new_tokens", "n_shot"}
    save_model: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "params") -> "PretrainParams":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; valid keys: {sorted(names)}")
        missing = [k for k in ("model", "tokenizer", "data", "tokens") if k not in d]
        if missing:
            raise ValueError(f"{where}: missing required keys {missing}")
        p = cls(**d)
        if p.tokens < 0 or p.seq_len < 2 or p.batch_size < 1 or p.grad_accum < 1:
            raise ValueError(f"{where}: tokens, seq_len, batch_size and grad_accum must be positive ({d})")
        return p


class BlockDataset:
    """Map-style dataset over a precomputed (source, block) order; items are ``int64`` token tensors."""

    def __init__(self, arrays: dict[str, np.ndarray], order: list[tuple[str, int]]):
        self.arrays, self.order = arrays, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        import torch

        name, j = self.order[i]
        return torch.from_numpy(self.arrays[name][j].astype(np.int64))


def _load_blocks(data: dict[str, float], seq_len: int) -> dict[str, np.ndarray]:
    arrays = {}
    for path in data:
        p = repo_path(path)
        if not p.exists():
            raise FileNotFoundError(f"params.data: blocks file not found: {p}")
        a = np.load(p, mmap_mode="r")
        if a.ndim != 2 or a.shape[1] != seq_len:
            raise ValueError(f"params.data: {p} has shape {a.shape}; expected (n_blocks, seq_len={seq_len})")
        arrays[path] = a
    return arrays


def run(params: dict[str, Any], run_dir: str | os.PathLike, **objects: Any) -> dict[str, Any]:
    """Stage entry point of the project's launch path (``launch.launch("pretrain", params, run_dir)``): the same
    as :func:`train` (a pre-training run loads its model from ``params["model"]``; live objects are not used)."""
    if objects:
        raise ValueError(f"pretrain.run: live objects {sorted(objects)} are not supported; set params['model']")
    return train(params, run_dir)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same run settings (``stop_after`` only simulates a kill; it does not change the run)."""
    strip = lambda d: {k: v for k, v in d.items() if k != "stop_after"}  # noqa: E731
    return strip(a) == strip(b)


def _done(run_dir: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    m = run_dir / "metrics.json"
    if m.exists() and (run_dir / "params.json").exists():
        metrics = read_json(m)
        if metrics.get("done") and _same(read_json(run_dir / "params.json"), params):
            return metrics
    return None


def train(params: dict[str, Any], run_dir: str | os.PathLike) -> dict[str, Any]:
    """Run (or resume, or skip when already done with the same params) one pre-training run into ``run_dir``.

    Returns the metrics written to ``run_dir/metrics.json``: ``loss`` per logged step, ``steps``, ``tokens``,
    ``tokens_per_s``, ``bpb`` per evaluation set, ``fewshot`` accuracy when asked, ``done``.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    p = PretrainParams.from_dict(params)
    run_dir = repo_path(run_dir)
    if (prev := _done(run_dir, params)) is not None:
        return prev
    from . import models, tokenizer as toklib

    torch.set_num_threads(max(1, p.threads))
    acc = Accelerator(cpu=p.device == "cpu", gradient_accumulation_steps=p.grad_accum,
                      mixed_precision=p.mixed_precision)
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        ck = run_dir / "checkpoint"
        if (run_dir / "params.json").exists() and not _same(read_json(run_dir / "params.json"), params) and ck.exists():
            shutil.rmtree(ck)  # a checkpoint of other settings must not be resumed
        write_json(run_dir / "params.json", params)
    acc.wait_for_everyone()
    set_seed(p.seed)
    tok = toklib.load_tokenizer(p.tokenizer)
    model = models.load_model(p.model, tok, seed=p.seed)
    arrays = _load_blocks(p.data, p.seq_len)
    world = acc.num_processes
    global_batch = p.batch_size * world * p.grad_accum
    steps = p.tokens // (p.seq_len * global_batch) if p.tokens else 0  # tokens=0: evaluate the model as it is
    if p.tokens and steps == 0:
        raise ValueError(f"params.tokens={p.tokens} is less than one step of {p.seq_len * global_batch} tokens")
    data_seed = p.seed if p.data_seed is None else p.data_seed
    order = mixture_order({k: len(v) for k, v in arrays.items()}, p.data, steps * global_batch, data_seed) \
        if steps else []
    dl = torch.utils.data.DataLoader(BlockDataset(arrays, order), batch_size=p.batch_size, shuffle=False)
    decay = [x for n, x in model.named_parameters() if x.ndim >= 2]
    no_decay = [x for n, x in model.named_parameters() if x.ndim < 2]  # norms: no weight decay
    groups = [{"params": decay, "weight_decay": p.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel (CPU and CUDA) is ~4x faster per optimiser step than the default
        opt = torch.optim.AdamW(groups, lr=p.lr, betas=tuple(p.betas), fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(groups, lr=p.lr, betas=tuple(p.betas))
    model, opt, dl = acc.prepare(model, opt, dl)
    warmup = max(1, int(round(p.warmup_frac * steps))) if p.warmup_frac > 0 else 0

    ckpt = run_dir / "checkpoint"
    start, history = 0, []
    if (ckpt / "state.json").exists():
        st = json.loads((ckpt / "state.json").read_text())
        acc.load_state(str(ckpt))
        start, history = int(st["step"]), list(st["history"])
    batches = iter(acc.skip_first_batches(dl, start * p.grad_accum) if start else dl)
    model.train()
    t0, n_tok = time.time(), 0
    for step in range(start, steps):
        lr = multistep_lr(step, steps, p.lr, warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        total = torch.zeros((), device=acc.device)
        for _ in range(p.grad_accum):
            x = next(batches)
            with acc.accumulate(model):
                out = model(input_ids=x, labels=x)
                acc.backward(out.loss)
                if acc.sync_gradients and p.grad_clip:
                    acc.clip_grad_norm_(model.parameters(), p.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += out.loss.detach().float()
            n_tok += x.numel() * world
        loss = acc.reduce(total / p.grad_accum, reduction="mean").item()
        history.append({"step": step + 1, "loss": loss, "lr": lr})
        done_steps = step + 1
        if p.ckpt_every and done_steps % p.ckpt_every == 0 and done_steps < steps:
            _save_checkpoint(acc, ckpt, done_steps, history)
        if p.stop_after >= 0 and done_steps >= p.stop_after and done_steps < steps:
            acc.wait_for_everyone()
            _reset_accelerate()
            return {"stopped_at": done_steps, "history": history}
    elapsed = time.time() - t0
    model.eval()
    metrics: dict[str, Any] = {"steps": steps, "tokens": steps * global_batch * p.seq_len, "world_size": world,
                               "global_batch": global_batch, "warmup_steps": warmup,
                               "tokens_per_s": round(n_tok / max(elapsed, 1e-9), 1), "train_s": round(elapsed, 2),
                               "final_loss": history[-1]["loss"] if history else None,
                               "loss": [h for h in history if h["step"] % p.log_every == 0 or h["step"] == steps]}
    acc.wait_for_everyone()
    if acc.is_main_process:
        net = acc.unwrap_model(model)
        t1 = time.time()
        metrics["bpb"] = {name: bits_per_byte(net, tok, read_pairs(path), p.eval_batch, p.eval_max_len)
                          for name, path in p.eval.items()}
        if p.fewshot:
            fs = dict(p.fewshot)
            metrics["fewshot"] = {b: fewshot_accuracy(net, tok, b, **fs) for b in fs.pop("benchmarks", ["toy"])}
        metrics["eval_s"] = round(time.time() - t1, 2)
        if p.save_model and steps:
            _save_model(acc, net, tok, run_dir / "model")
        metrics["done"] = True
        write_json(run_dir / "metrics.json", metrics)
        if ckpt.exists():
            shutil.rmtree(ckpt)  # the final model replaces it
    acc.wait_for_everyone()
    _reset_accelerate()
    return metrics


def _save_checkpoint(acc, ckpt: Path, step: int, history: list[dict]) -> None:
    """``accelerator.save_state`` into ``checkpoint.partial``, then swap it in (a kill mid-save keeps the old)."""
    tmp = ckpt.with_name(ckpt.name + ".partial")
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "state.json").write_text(json.dumps({"step": step, "history": history}))
        old = ckpt.with_name(ckpt.name + ".old")
        if ckpt.exists():
            os.replace(ckpt, old)
        os.replace(tmp, ckpt)
        if old.exists():
            shutil.rmtree(old)
    acc.wait_for_everyone()


def _save_model(acc, net, tok, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    net.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _reset_accelerate() -> None:
    """Forget the accelerator of this run so the next run in the same worker process starts clean (the process
    group of a launched run is kept)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


# --------------------------------------------------------------------------------------------------
# held-out metrics


def write_pairs(path: str | os.PathLike, pairs: Sequence[tuple[str, str]]) -> Path:
    """Save evaluation pairs ``(context, text)`` as jsonl (bits per byte are taken on ``text`` only)."""
    from .data import write_jsonl

    return write_jsonl(repo_path(path), [{"context": c, "text": t} for c, t in pairs])


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    from .data import read_jsonl

    return [(r.get("context", ""), r["text"]) for r in read_jsonl(repo_path(path))]


def bits_per_byte(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16,
                  max_len: int = 512) -> float:
    """Bits per UTF-8 byte of each ``text`` given its ``context``: total negative log-likelihood (in bits) of the
    text tokens divided by their bytes. Long texts are cut to ``max_len`` tokens (context first, at most half)."""
    import torch
    import torch.nn.functional as F

    rows = []
    for ctx, text in pairs:
        c = tokenizer(ctx, add_special_tokens=False)["input_ids"] if ctx else [tokenizer.bos_token_id]
        t = tokenizer(text, add_special_tokens=False)["input_ids"]
        c = c[-(max_len // 2):]
        t = t[: max_len - len(c)]
        if t:
            rows.append((c, t, len(tokenizer.decode(t).encode("utf-8"))))
    if not rows:
        raise ValueError("bits_per_byte: no text to score")
    rows.sort(key=lambda r: len(r[0]) + len(r[1]))
    device = next(model.parameters()).device
    nll, nbytes = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            n = max(len(c) + len(t) for c, t, _ in chunk)
            ids = torch.full((len(chunk), n), tokenizer.pad_token_id, dtype=torch.long)
            lab = torch.full((len(chunk), n), -100, dtype=torch.long)
            att = torch.zeros((len(chunk), n), dtype=torch.long)
            for k, (c, t, b) in enumerate(chunk):
                ids[k, : len(c) + len(t)] = torch.tensor(c + t)
                lab[k, len(c): len(c) + len(t)] = torch.tensor(t)
                att[k, : len(c) + len(t)] = 1
                nbytes += b
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            nll += F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), lab[:, 1:].reshape(-1).to(device),
                                   ignore_index=-100, reduction="sum").item()
    model.train(was_training)
    return nll / math.log(2) / nbytes


def fewshot_accuracy(model, tokenizer, benchmark: str = "toy", n_items: int = 50, max_new_tokens: int = 96,
                     n_shot: int | None = None, batch_size: int = 16, data_dir: str | None = None) -> dict[str, Any]:
    """Greedy few-shot chain-of-thought accuracy on ``benchmark`` (the paper's few-shot format, through
    :func:`dsm_utils.evaluation.evaluate`); ``{"benchmark", "n", "accuracy", "answered"}``."""
    from .benchmarks import load_benchmark
    from .evaluation import evaluate
    from .generation import HFGenerator

    items = load_benchmark(benchmark, "test", limit=n_items, data_dir=data_dir)
    res = evaluate(HFGenerator(model, tokenizer, batch_size=batch_size), items, "few_shot_cot",
                   max_new_tokens=max_new_tokens, n_shot=n_shot, data_dir=data_dir, progress=False, grade_workers=0)
    rec = res.records
    return {"benchmark": benchmark, "n": len(items), "accuracy": float(rec["correct"].mean()),
            "answered": float(rec["extracted"].notna().mean())}


def math_eval_pairs(split: str, n_per_benchmark: int, data_dir: str | None = None,
                    seed: int = 0) -> list[tuple[str, str]]:
    """GSM8K + MATH ``(problem, reference solution)`` pairs, ``n_per_benchmark`` of each (a seeded sample).

    ``split="test"``: the test sets (reported numbers); ``"validation"``: the train sets (choosing settings)."""
    import random

    from .benchmarks import load_benchmark, strip_calc_annotations

    if split not in ("test", "validation"):
        raise ValueError(f"math_eval_pairs: split={split!r}; valid: 'test', 'validation'")
    src = "test" if split == "test" else "train"
    out = []
    for name in ("gsm8k", "math"):
        items = [it for it in load_benchmark(name, src, data_dir=data_dir) if it.solution]
        random.Random(f"{name}:{seed}").shuffle(items)
        for it in items[:n_per_benchmark]:
            out.append((f"Problem:\n{it.question.strip()}\n\nSolution:", " " + strip_calc_annotations(it.solution.strip())))
    return out


def stdlib_split(path: Path) -> str:
    """Stable split of a standard-library file by its relative path: 10 % test, 10 % validation, 80 % train."""
    import sysconfig

    rel = str(path.relative_to(sysconfig.get_paths()["stdlib"]))
    h = int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 10
    return "test" if h == 0 else "validation" if h == 1 else "train"


def stdlib_texts(split: str, max_chars: int, max_file_chars: int = 20_000, seed: int = 0) -> list[str]:
    """Python standard-library sources of one split (see :func:`stdlib_split`) until ``max_chars``."""
    from .sources import python_stdlib_files

    out, total = [], 0
    for f in python_stdlib_files(seed):
        if stdlib_split(f) != split:
            continue
        try:
            text = f.read_text(encoding="utf-8")[:max_file_chars]
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            out.append(text)
            total += len(text)
            if total >= max_chars:
                break
    return out


def code_eval_pairs(split: str, n_files: int, max_file_chars: int = 3000) -> list[tuple[str, str]]:
    """Unseen Python source (held-out standard-library files, never in the code training split) as pairs."""
    if split not in ("test", "validation"):
        raise ValueError(f"code_eval_pairs: split={split!r}; valid: 'test', 'validation'")
    return [("", t) for t in stdlib_texts(split, max_chars=10 ** 12, max_file_chars=max_file_chars)[:n_files]]


# --------------------------------------------------------------------------------------------------
# the toy corpora

SOURCES = ("dsm_corpus", "random_cc", "seed_only", "arxiv", "code")


def math_corpus_path(math_corpus_run: str | os.PathLike) -> Path:
    """``corpus.jsonl.gz`` of a ``01_math_corpus`` run folder, or a clear error naming the notebook to run."""
    p = repo_path(math_corpus_run) / "corpus.jsonl.gz"
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run notebook 01_math_corpus first "
                                f"(python -m dsm_utils.run --profile <profile> --only 01)")
    return p


def source_texts(name: str, math_corpus_run: str | os.PathLike, data_dir: str | None = None,
                 max_chars: int = 10 ** 12) -> list[str]:
    """Texts of a toy pre-training source (up to about ``max_chars``):

    * ``dsm_corpus``: the math corpus written by ``01_math_corpus`` (stand-in for the DeepSeekMath Corpus);
    * ``random_cc``: random Common Crawl page texts (CC WET) plus the mini-CC pool pages the pipeline did not keep;
    * ``seed_only``: the StackExchange / MathOverflow threads that seeded the pipeline (OpenWebMath stand-in);
    * ``arxiv``: LaTeX documents (``latex/tex_docs.jsonl.gz``);
    * ``code``: the train split of the interpreter's standard-library source.
    """
    from . import corpus
    from .data import data_dir as _dd
    from .data import iter_jsonl
    from .sources import latex_texts

    root = str(_dd(data_dir))
    if name == "dsm_corpus":
        texts = [r["text"] for _, r in iter_jsonl(math_corpus_path(math_corpus_run)) if r.get("text")]
    elif name == "random_cc":
        path = math_corpus_path(math_corpus_run)
        kept = {r.get("url") for _, r in iter_jsonl(path)}
        pool_dir = repo_path(math_corpus_run) / "work" / "pool"
        if not pool_dir.exists():
            raise FileNotFoundError(f"{pool_dir} not found: rerun notebook 01_math_corpus (it writes the pool)")
        wet = [r["text"] for r in corpus.load_text_records(corpus._glob("web/cc_wet_text/*.jsonl.gz", root))]
        rejected = [p["text"] for p in corpus.iter_pages(pool_dir) if p["url"] not in kept]
        # interleave so a character cap keeps both kinds in their proportion
        texts = _interleave(wet, rejected)
    elif name == "seed_only":
        texts = [r["text"] for r in corpus.load_math_qa_seed(corpus._glob("web/math_qa/*.jsonl", root))]
    elif name == "arxiv":
        texts = list(latex_texts(max_chars=max_chars, data_dir=data_dir))
    elif name == "code":
        texts = stdlib_texts("train", max_chars=max_chars)
    else:
        raise ValueError(f"unknown source {name!r}; valid: {list(SOURCES)}")
    out, total = [], 0
    for t in texts:
        out.append(t)
        total += len(t)
        if total >= max_chars:
            break
    return out


def _interleave(a: list[str], b: list[str]) -> list[str]:
    out, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        # proportional interleaving by count
        if j >= len(b) or (i < len(a) and i * len(b) <= j * len(a)):
            out.append(a[i]); i += 1  # noqa: E702
        else:
            out.append(b[j]); j += 1  # noqa: E702
    return out


def fingerprint(*parts: Any) -> str:
    """Short content hash of JSON-able parts (cache keys of data files and runs)."""
    h = hashlib.sha1()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:10]


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's vocabulary and merges (same text + same tokenizer = same blocks)."""
    return fingerprint(tokenizer.backend_tokenizer.to_str() if hasattr(tokenizer, "backend_tokenizer")
                       else sorted(tokenizer.get_vocab().items()))


def prepare_source(name: str, tokenizer, seq_len: int, max_tokens: int, cache_dir: str | os.PathLike,
                   math_corpus_run: str | os.PathLike, data_dir: str | None = None) -> tuple[str, dict[str, Any]]:
    """Pack source ``name`` (at most ``max_tokens``) into a blocks file under ``cache_dir``; returns its path and
    size. The file name holds a hash of the texts and the tokenizer, so notebooks that need the same data share
    one file and a changed corpus (01 rerun) never reads a stale one."""
    texts = source_texts(name, math_corpus_run, data_dir)
    total_chars = sum(map(len, texts))
    # ~4 characters per token is an upper bound for this tokenizer on web text; cut before tokenizing everything
    use = texts
    cap = 6 * max_tokens
    if total_chars > cap:
        use, c = [], 0
        for t in texts:
            use.append(t)
            c += len(t)
            if c >= cap:
                break
    key = fingerprint(name, seq_len, max_tokens, tokenizer_fingerprint(tokenizer),
                      hashlib.sha1("\x00".join(use).encode()).hexdigest())
    path = repo_path(cache_dir) / "data" / f"{name}-L{seq_len}-{key}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        info = read_json(meta)
    else:
        info = write_blocks(path, tokenizer, use, seq_len, max_tokens)
        info.update(source=name, source_documents=len(texts), source_chars=total_chars)
        write_json(meta, info)
    return str(path), info


def prepare_eval(kind: str, split: str, n: int, cache_dir: str | os.PathLike, data_dir: str | None = None) -> str:
    """An evaluation set file: ``kind="math"`` (GSM8K + MATH, ``n`` of each) or ``"code"`` (``n`` unseen stdlib
    files), ``split`` ``"test"`` or ``"validation"``."""
    pairs = math_eval_pairs(split, n, data_dir) if kind == "math" else code_eval_pairs(split, n) if kind == "code" \
        else None
    if pairs is None:
        raise ValueError(f"prepare_eval: kind={kind!r}; valid: 'math', 'code'")
    path = repo_path(cache_dir) / "eval" / f"{kind}_{split}-{n}-{fingerprint(pairs)}.jsonl"
    if not path.exists():
        write_pairs(path, pairs)
    return str(path)


def prepare_sources(budgets: dict[str, int], tokenizer, seq_len: int, max_tokens: int, cache_dir: str | os.PathLike,
                    math_corpus_run: str | os.PathLike, data_dir: str | None = None):
    """:func:`prepare_source` for each source of ``budgets`` (name → tokens an arm trains on it): the blocks files
    by name and a table of each source's size, with the epochs the budget takes (> 1: the source repeats)."""
    import pandas as pd

    files, sizes = {}, []
    for name, need in budgets.items():
        files[name], info = prepare_source(name, tokenizer, seq_len, max_tokens, cache_dir, math_corpus_run, data_dir)
        sizes.append({"source": name, "documents": info["source_documents"], "characters": info["source_chars"],
                      "tokens packed": info["tokens"], "blocks": info["blocks"],
                      "epochs at budget": round(need / (info["blocks"] * seq_len), 2)})
    return files, pd.DataFrame(sizes)


def prepare_evals(n_math: int, n_code: int, cache_dir: str | os.PathLike, data_dir: str | None = None) -> dict[str, str]:
    """The four evaluation sets every arm is scored on: ``math_test``, ``math_validation``, ``code_test``,
    ``code_validation`` (validation for choosing settings, test for reported numbers)."""
    return {f"{k}_{s}": prepare_eval(k, s, n_math if k == "math" else n_code, cache_dir, data_dir)
            for k in ("math", "code") for s in ("test", "validation")}


def base_job(seed: int, common: dict[str, Any], cache_dir: str | os.PathLike, *, base_model: str = "",
             model: str = "", general_data: str = "", base_tokens: int = 0) -> Job:
    """The start every arm continues from: ``base_model`` evaluated as it is (``tokens=0``), or ``model`` trained
    from scratch on ``base_tokens`` of the general text ``general_data`` (seed ``seed``)."""
    if base_model:
        return job(f"base-eval-s{seed}", dict(common, model=base_model, data={}, tokens=0, seed=seed), cache_dir)
    return job(f"base-s{seed}", dict(common, model=model, data={general_data: 1.0}, tokens=base_tokens, seed=seed,
                                     data_seed=1000 * seed), cache_dir)


def job(name: str, params: dict[str, Any], cache_dir: str | os.PathLike, after: Sequence[Job] = ()) -> Job:
    """A :class:`Job` whose run folder is ``cache_dir/runs/<name>-<hash of params>``: the same run asked for by
    two notebooks (e.g. 02's DSM-corpus arm and 04's) is trained once and read back by the other."""
    return Job(name, str(repo_path(cache_dir) / "runs" / f"{name}-{fingerprint(params)}"), dict(params),
               [a.name for a in after])


def model_of(j: Job) -> str:
    """The model a job ends with (the start of a later stage): its saved model, or, for an evaluation-only job
    (``tokens=0``), the model it evaluated."""
    return j.params["model"] if not j.params.get("tokens") else str(Path(j.run_dir) / "model")


def collect_arms(results: dict[str, dict], arms: dict[str, Sequence[str]],
                 labels: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per-arm, per-seed metrics: ``{arm: {"label", "jobs", "math_bpb", "code_bpb", "math_bpb_val",
    "code_bpb_val", "toy_acc", "toy_n", "tokens"}}`` from the job results (one job name per seed)."""
    out = {}
    for arm, names in arms.items():
        rows = [results[n] for n in names]
        get = lambda key: [r.get("bpb", {}).get(key) for r in rows]  # noqa: E731
        out[arm] = {"label": (labels or {}).get(arm, arm), "jobs": list(names),
                    "math_bpb": get("math_test"), "code_bpb": get("code_test"),
                    "math_bpb_val": get("math_validation"), "code_bpb_val": get("code_validation"),
                    "fewshot": {b: [r.get("fewshot", {}).get(b, {}).get("accuracy") for r in rows]
                                for b in (rows[0].get("fewshot") or {})} if rows else {},
                    "fewshot_answered": {b: [r.get("fewshot", {}).get(b, {}).get("answered") for r in rows]
                                         for b in (rows[0].get("fewshot") or {})} if rows else {},
                    "fewshot_n": {b: v.get("n") for b, v in (rows[0].get("fewshot") or {}).items()} if rows else {}}
        first = next(iter(out[arm]["fewshot"]), None)
        out[arm]["toy_acc"] = out[arm]["fewshot"].get(first, []) if first else []
        out[arm]["toy_answered"] = out[arm]["fewshot_answered"].get(first, []) if first else []
        out[arm]["toy_n"] = out[arm]["fewshot_n"].get(first) if first else None
        out[arm]["toy_benchmark"] = first
    return out


def arms_table(arms: dict[str, dict[str, Any]]):
    """Mean ± half-width of the 95 % seed interval per arm (test and validation bits per byte, toy accuracy)."""
    import pandas as pd

    from .findings import _t975

    def fmt(v: list, scale: float = 1.0, nd: int = 3) -> str | None:
        v = [x for x in v if x is not None]
        if not v:
            return None
        m = float(np.mean(v)) * scale
        half = _t975(len(v) - 1) * float(np.std(v, ddof=1)) / math.sqrt(len(v)) * scale if len(v) > 1 else 0.0
        return f"{m:.{nd}f} ± {half:.{nd}f}"

    return pd.DataFrame([{"arm": a["label"], "seeds": len(a["math_bpb"]), "math bpb (test)": fmt(a["math_bpb"]),
                          "code bpb (test)": fmt(a["code_bpb"]), "math bpb (val)": fmt(a["math_bpb_val"]),
                          "code bpb (val)": fmt(a["code_bpb_val"]),
                          **{f"{b} few-shot acc % (n={a['fewshot_n'].get(b)})": fmt(v, 100.0, 1)
                             for b, v in a["fewshot"].items()}}
                         for a in arms.values()])


def combined_finding(claim: str, parts: Sequence, source: str = "", detail: str = ""):
    """One finding for a claim made of several comparisons that must all hold (e.g. "A < B and A < C"): reproduced
    when every part is, not reproduced when any part is not, else within noise; delta and interval are those of
    the least favourable part (the one whose interval reaches furthest towards the other side)."""
    from .findings import Finding

    statuses = [f.status for f in parts]
    status = ("reproduced" if all(s == "reproduced" for s in statuses)
              else "not reproduced" if "not reproduced" in statuses else "within noise")
    worst = max(parts, key=lambda f: f.ci[1])
    return Finding(claim, status, worst.delta, list(worst.ci), source,
                   detail or "; ".join(f"{f.claim}: {f.delta:+.4f} [{f.ci[0]:+.4f}, {f.ci[1]:+.4f}]" for f in parts))


# --------------------------------------------------------------------------------------------------
# many runs: seeds in parallel single-thread processes, stages in order


@dataclass
class Job:
    """A training run of an arm: its params, its run folder, and the jobs whose models it starts from."""

    name: str
    run_dir: str
    params: dict[str, Any]
    after: list[str] = field(default_factory=list)


def _worker(params: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """One job in a pool process: its own log file (so library warnings stay out of notebook cells)."""
    import warnings

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    d = repo_path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "train.log", "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        warnings.filterwarnings("ignore")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        return train(params, run_dir)


def run_jobs(jobs: Sequence[Job], processes: int = 2, launch_cmd: str = "", progress: bool = True) -> dict[str, dict]:
    """Run ``jobs`` (a job starts once the jobs in its ``after`` are done) and return ``{name: metrics}``.

    ``launch_cmd`` empty: a pool of ``processes`` spawned worker processes (one thread each on the toy
    profiles). Otherwise each job runs as ``{launch_cmd} -m dsm_utils.pretrain --params … --run-dir …`` (e.g.
    ``accelerate launch --config_file fsdp.yaml``), one after another.
    """
    import concurrent.futures as cf
    import multiprocessing as mp
    import subprocess

    from tqdm.auto import tqdm

    by_name = {j.name: j for j in jobs}
    for j in jobs:
        missing = [a for a in j.after if a not in by_name]
        if missing:
            raise ValueError(f"job {j.name!r}: 'after' names unknown jobs {missing}")
    results: dict[str, dict] = {}
    for j in jobs:  # finished runs with the same params are read back without starting any process
        if (m := _done(repo_path(j.run_dir), j.params)) is not None:
            results[j.name] = m
    pending = [j for j in jobs if j.name not in results]
    bar = tqdm(total=len(jobs), initial=len(results), desc="pre-training runs", disable=not progress)
    if not pending:
        bar.close()
        return results
    if launch_cmd:
        while pending:
            ready = [j for j in pending if all(a in results for a in j.after)]
            if not ready:
                raise ValueError(f"jobs {[j.name for j in pending]}: circular 'after'")
            j = ready[0]
            d = repo_path(j.run_dir)
            d.mkdir(parents=True, exist_ok=True)
            pfile = d / "job_params.json"
            write_json(pfile, j.params)
            cmd = f"{launch_cmd} -m dsm_utils.pretrain --params {pfile} --run-dir {d}"
            subprocess.run(cmd, shell=True, check=True)  # noqa: S602 - the user's launcher command
            results[j.name] = read_json(d / "metrics.json")
            pending.remove(j)
            bar.update(1)
        bar.close()
        return results
    with cf.ProcessPoolExecutor(max_workers=max(1, processes), mp_context=mp.get_context("spawn")) as ex:
        running: dict[cf.Future, Job] = {}
        while pending or running:
            for j in [j for j in pending if all(a in results for a in j.after)]:
                if len(running) >= max(1, processes):
                    break
                running[ex.submit(_worker, j.params, j.run_dir)] = j
                pending.remove(j)
            if not running:
                raise ValueError(f"jobs {[j.name for j in pending]}: circular 'after'")
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for f in done:
                j = running.pop(f)
                results[j.name] = f.result()
                bar.update(1)
    bar.close()
    return results


# --------------------------------------------------------------------------------------------------
# tables


def arm_values(metrics: dict[str, Any], arm: str, key: str) -> list[float]:
    """Per-seed values of ``key`` (``math_bpb``, ``code_bpb``, ``toy_acc``, …) of ``arm`` in a notebook's metrics."""
    arms = metrics.get("arms") or {}
    if arm not in arms:
        raise KeyError(f"arm {arm!r} not in metrics['arms'] (have {sorted(arms)})")
    return [v for v in arms[arm].get(key, []) if v is not None]


def paper_vs_ours(metrics: dict[str, Any], table: str):
    """The paper's table beside ours, from a notebook's ``metrics.json`` (02 → ``table1``, 03 → ``table6`` /
    ``table7``, 04 → ``table8`` / ``table9``; see :data:`TABLE_NOTEBOOK`): one row per our arm, our per-seed means
    (± half the 95 % seed interval) of held-out math and code bits per byte and toy few-shot accuracy, then the
    paper row it stands in for with its accuracies (%; Tables 7 and 9: row names only, numbers not stored)."""
    import pandas as pd

    from .findings import _t975

    if table not in PAPER_TABLES:
        raise ValueError(f"paper_vs_ours: table={table!r}; valid: {sorted(PAPER_TABLES)}")
    arms = metrics.get("arms") or {}
    if not arms:
        raise ValueError(f"paper_vs_ours({table}): metrics have no 'arms' (run {TABLE_NOTEBOOK[table]} first)")
    paper = PAPER_TABLES[table]
    rows = []
    for arm, paper_row in ARM_TO_PAPER[table].items():
        if arm not in arms:
            continue
        r: dict[str, Any] = {"arm": arms[arm].get("label", arm)}
        for key, col in (("math_bpb", "math bpb"), ("code_bpb", "code bpb"), ("toy_acc", "toy acc %")):
            v = arm_values(metrics, arm, key)
            scale = 100.0 if key == "toy_acc" else 1.0
            if v:
                m = float(np.mean(v)) * scale
                half = _t975(len(v) - 1) * float(np.std(v, ddof=1)) / math.sqrt(len(v)) * scale if len(v) > 1 else 0.0
                r[col] = f"{m:.3f} ± {half:.3f}" if scale == 1.0 else f"{m:.1f} ± {half:.1f}"
            else:
                r[col] = None
        r["seeds"] = len(arm_values(metrics, arm, "math_bpb"))
        r["paper row"] = paper_row or "—"
        for k, v in (paper.get(paper_row, {}) if paper_row else {}).items():
            r[f"paper {k}"] = v
        rows.append(r)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# command line (what `accelerate launch -m dsm_utils.pretrain` runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsm_utils.pretrain", description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="JSON file of one run's params (see PretrainParams)")
    ap.add_argument("--run-dir", required=True, help="folder for params.json, metrics.json, checkpoint, model")
    args = ap.parse_args(argv)
    params = read_json(args.params)
    if not isinstance(params, dict):
        raise ValueError(f"{args.params}: expected a JSON object of params")
    metrics = train(params, args.run_dir)
    if metrics.get("done"):
        print(json.dumps({k: metrics[k] for k in ("steps", "tokens", "final_loss", "bpb") if k in metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
