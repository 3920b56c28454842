"""Training plumbing shared by the notebooks: seeding, device choice, checkpoints, batching, a plain LM loop.

The loop is deliberately small (nanoGPT-style): on 2 CPU cores and 1–30 M-parameter models it is faster and
easier to read than a Trainer; the ``gpu``/``cluster`` profiles hand the same data to accelerate.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from . import repo_path

IGNORE_INDEX = -100


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(preference: str = "auto") -> str:
    """``"auto"`` → ``cuda`` if available, else ``mps``, else ``cpu``; otherwise returns ``preference`` checked."""
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={preference!r} requested but CUDA is not available; use device='auto' or 'cpu'")
    if preference not in ("cpu", "mps") and not preference.startswith("cuda"):
        raise ValueError(f"device={preference!r}: valid values are 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
    return preference


def set_threads(n: int | None) -> int:
    """Limit torch CPU threads (``None``/0 = leave as is); returns the thread count in force."""
    import torch

    if n:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


# ------------------------------------------------------------------------------------------ checkpoints

def save_checkpoint(path: str | os.PathLike, model, tokenizer=None, optimizer=None, state: dict | None = None) -> Path:
    """Save model (+ tokenizer, optimizer, training state) atomically: write to ``path.partial`` then rename.

    A run killed mid-save leaves the previous checkpoint intact.
    """
    import torch

    d = repo_path(path)
    tmp = d.with_name(d.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(tmp))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    extra = dict(state or {})
    extra["torch_rng"] = torch.get_rng_state().tolist()
    extra["python_rng"] = repr(random.getstate())
    (tmp / "train_state.json").write_text(json.dumps(extra))
    old = d.with_name(d.name + ".old")
    if d.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(d, old)
    os.replace(tmp, d)
    if old.exists():
        shutil.rmtree(old)
    return d


def load_train_state(path: str | os.PathLike, optimizer=None, restore_rng: bool = True) -> dict | None:
    """Read ``train_state.json`` (and optimizer state) of a checkpoint; ``None`` if there is none."""
    import ast

    import torch

    d = repo_path(path)
    f = d / "train_state.json"
    if not f.exists():
        return None
    state = json.loads(f.read_text())
    if optimizer is not None and (d / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=True))
    if restore_rng:
        torch.set_rng_state(torch.tensor(state.pop("torch_rng"), dtype=torch.uint8))
        random.setstate(_tuplify(ast.literal_eval(state.pop("python_rng"))))
    return state


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


# ------------------------------------------------------------------------------------------ batching

@dataclass
class Example:
    """A prompt/completion pair; the loss is taken on the completion tokens only."""

    prompt: str
    completion: str


def encode_example(tokenizer, ex: Example, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels (prompt masked with -100), completion followed by EOS, cut to ``max_len``."""
    p = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
    c = tokenizer(ex.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (p + c)[:max_len]
    labels = ([IGNORE_INDEX] * len(p) + c)[:max_len]
    return ids, labels


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int, right_pad: bool = True):
    """Pad a list of (ids, labels) into tensors ``input_ids``, ``attention_mask``, ``labels``."""
    import torch

    n = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    lab = torch.full((len(rows), n), IGNORE_INDEX, dtype=torch.long)
    att = torch.zeros((len(rows), n), dtype=torch.long)
    for i, (a, b) in enumerate(rows):
        sl = slice(0, len(a)) if right_pad else slice(n - len(a), n)
        ids[i, sl] = torch.tensor(a)
        lab[i, sl] = torch.tensor(b)
        att[i, sl] = 1
    return {"input_ids": ids, "attention_mask": att, "labels": lab}


def sft_batches(tokenizer, examples: Sequence[Example], batch_size: int, max_len: int, seed: int = 0,
                epochs: int | None = None) -> Iterator[dict]:
    """Endless (or ``epochs``-long) shuffled batches of encoded examples."""
    enc = [encode_example(tokenizer, e, max_len) for e in examples]
    rng = random.Random(seed)
    epoch = 0
    while epochs is None or epoch < epochs:
        order = list(range(len(enc)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            yield collate([enc[j] for j in order[i:i + batch_size]], tokenizer.pad_token_id)
        epoch += 1


def packed_batches(tokenizer, texts: Iterable[str], batch_size: int, seq_len: int, seed: int = 0) -> Iterator[dict]:
    """Pre-training batches: texts joined with EOS and cut into ``seq_len`` blocks (loss on every token)."""
    import torch

    buf: list[int] = []
    blocks: list[list[int]] = []
    for t in texts:
        buf.extend(tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
        while len(buf) >= seq_len:
            blocks.append(buf[:seq_len])
            buf = buf[seq_len:]
    if not blocks:
        raise ValueError("packed_batches: the texts hold fewer tokens than one block of seq_len")
    rng = random.Random(seed)
    while True:
        rng.shuffle(blocks)
        for i in range(0, len(blocks) - batch_size + 1, batch_size):
            x = torch.tensor(blocks[i:i + batch_size])
            yield {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x.clone()}
        if len(blocks) < batch_size:
            x = torch.tensor(blocks)
            yield {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x.clone()}


def count_tokens(tokenizer, texts: Iterable[str]) -> int:
    """Total tokens of ``texts`` (no special tokens)."""
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


# ------------------------------------------------------------------------------------------ resuming

def params_key(params: dict, exclude: Sequence[str] = ("run_dir",)) -> str:
    """A short hash of a run's parameters (``exclude``d keys left out): a training state is resumed only by
    a run with the same key."""
    import hashlib

    kept = {k: v for k, v in params.items() if k not in exclude}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Checkpointing:
    """Where and how often :func:`train_lm` saves its training state, and what else to keep with it.

    ``dir``: the state folder (model, optimizer, step, loss log, running loss, RNG state; saved atomically
    with :func:`save_checkpoint`). ``every``: steps between saves (0: never save; a stale state is removed).
    ``key``: :func:`params_key` of the run; a state with another key belongs to other settings and is deleted,
    never resumed. ``lists``: the caller's lists (e.g. an evaluation curve its callback appends to), saved
    with the state and refilled in place on resume. After a resume ``resumed_from`` is the step it started at.
    The folder is removed when training completes.
    """

    dir: Path | str
    every: int
    key: str
    lists: dict[str, list] = field(default_factory=dict)
    resumed_from: int = 0

    def __post_init__(self) -> None:
        self.dir = repo_path(self.dir)

    def save(self, model, optimizer, step: int, history: list[dict], running: float | None) -> Path:
        state = {"key": self.key, "step": step, "history": history, "running": running,
                 "lists": {k: list(v) for k, v in self.lists.items()}}
        return save_checkpoint(self.dir, model, optimizer=optimizer, state=state)

    def resume(self, model, optimizer) -> dict | None:
        """Load a matching state into ``model`` and ``optimizer`` (and the RNGs, and ``lists``); ``None`` if
        there is none, checkpointing is off or it belongs to other parameters (then it is deleted)."""
        d, old = Path(self.dir), Path(self.dir).with_name(Path(self.dir).name + ".old")
        if old.exists() and not d.exists():
            os.replace(old, d)  # killed between the two renames of save_checkpoint: the older state is whole
        f = d / "train_state.json"
        if not self.every or not f.exists() or json.loads(f.read_text()).get("key") != self.key:
            self.clear()
            return None
        _load_weights(model, d)
        state = load_train_state(d, optimizer=optimizer, restore_rng=True)
        for k, v in self.lists.items():
            v[:] = state["lists"].get(k, [])
        self.resumed_from = int(state["step"])
        return state

    def clear(self) -> None:
        d = Path(self.dir)
        for p in (d, d.with_name(d.name + ".partial"), d.with_name(d.name + ".old")):
            if p.exists():
                shutil.rmtree(p)


def _load_weights(model, folder: Path) -> None:
    """Load ``save_pretrained`` safetensors (single file or shards) into ``model`` in place."""
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \
        else ["model.safetensors"]
    sd: dict = {}
    for name in files:
        sd.update(load_file(str(folder / name)))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    own = model.state_dict()
    loaded_ptrs = {own[k].data_ptr() for k in sd if k in own}
    untied = [k for k in missing if own[k].data_ptr() not in loaded_ptrs]  # tied weights are saved once
    if unexpected or untied:
        raise ValueError(f"training state {folder}: weights do not fit the model "
                         f"(missing {untied[:3]}, unexpected {list(unexpected)[:3]})")


# ------------------------------------------------------------------------------------------ the loop

def train_lm(model, batches: Iterator[dict], steps: int, lr: float = 1e-3, weight_decay: float = 0.0,
             warmup: int = 0, min_lr_ratio: float = 0.1, grad_clip: float = 1.0, device: str = "cpu",
             log_every: int = 10, callback: Callable[[int, float], None] | None = None,
             optimizer=None, start_step: int = 0, progress: bool = True, desc: str = "train",
             checkpointing: Checkpointing | None = None) -> list[dict]:
    """Plain AdamW loop with warmup + cosine decay; returns ``[{"step", "loss", "lr"}, ...]`` every ``log_every``.

    ``callback(step, loss)`` runs after each step (evaluation). The loss is the model's mean token cross-entropy
    over non-masked labels. ``checkpointing``: save the training state every ``checkpointing.every`` steps and,
    when a state of the same run is there, resume from it (see :class:`Checkpointing`); ``batches`` must then be
    the same deterministic iterator as in the killed run (its first ``step`` batches are skipped).
    """
    import math

    import torch
    from tqdm.auto import tqdm

    model.to(device).train()
    opt = optimizer or torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95))

    def lr_at(s: int) -> float:
        if warmup and s < warmup:
            return lr * (s + 1) / warmup
        frac = (s - warmup) / max(1, steps - warmup)
        return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    history: list[dict] = []
    running = None
    if checkpointing is not None:
        resumed = checkpointing.resume(model, opt)
        if resumed is not None:
            start_step, history, running = resumed["step"], resumed["history"], resumed["running"]
            for _ in range(start_step):  # the batches the killed run had consumed
                next(batches)
    bar = tqdm(range(start_step, steps), desc=desc, disable=not progress, mininterval=2)
    for step in bar:
        batch = next(batches)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(**{k: v.to(device) for k, v in batch.items()})
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        loss = float(out.loss.detach())
        running = loss if running is None else 0.9 * running + 0.1 * loss
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.append({"step": step + 1, "loss": round(running, 4), "lr": lr_at(step)})
            bar.set_postfix(loss=f"{running:.3f}")
        if callback is not None:
            callback(step + 1, loss)
        if checkpointing is not None and checkpointing.every and (step + 1) % checkpointing.every == 0 \
                and step + 1 < steps:  # after the callback, so its lists hold this step's entries
            checkpointing.save(model, opt, step + 1, history, running)
    if checkpointing is not None:
        checkpointing.clear()  # done: the caller saves the final model; a rerun starts afresh
    model.eval()
    return history
