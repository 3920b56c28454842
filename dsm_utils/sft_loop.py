"""Our SFT loop (DeepSeekMath §3.1) on accelerate: one process, DDP, FSDP or DeepSpeed ZeRO, same code.

The single-process notebooks use ``training.train_lm``; this is the same answer-only loss and AdamW for the
launch path (``dsm_utils.launch``), where the batch is a *global* batch of ``global_batch_size`` examples:
each process takes its share and splits it into micro-batches of ``micro_batch_size`` (gradient accumulation).
The loss is the token-level mean over the whole global batch (every process knows the global token count, so
each micro-batch's summed cross-entropy is divided by it), which makes a run on N processes compute the same
loss and gradients as one process with the same global batch, up to float rounding. The paper trains with a
batch of 256 at a constant 5e-5 (``lr_scheduler="constant"``).

Run: ``python -m dsm_utils.sft_loop --params P.json --run-dir DIR`` (or through ``accelerate launch -m``).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path
from typing import Any, Sequence

from . import launch
from .training import IGNORE_INDEX, collate

DEFAULTS: dict[str, Any] = {
    "init_from": "llama-1m", "tokenizer_name": "", "records_file": "", "steps": 10, "global_batch_size": 8,
    "micro_batch_size": 0, "lr": 3e-3, "lr_scheduler": "cosine", "warmup": 0, "min_lr_ratio": 0.1,
    "max_len": 192, "grad_clip": 1.0, "weight_decay": 0.0, "seed": 0, "threads": 1, "save": True,
}


def check_params(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``params``; an unknown key is an error naming it and the valid keys."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown stage parameter(s) {unknown}; valid keys are {sorted(defaults)}")
    return {**defaults, **params}


def load_tokenizer_and_model(init_from: str, tokenizer_name: str = "", seed: int = 0, dtype=None):
    """Tokenizer (``tokenizer_name``, else the toy one for toy names, else the checkpoint's) and model."""
    from . import models
    from .tokenizer import default_tokenizer, load_tokenizer

    if tokenizer_name:
        tok = load_tokenizer(tokenizer_name)
    elif models.is_toy_name(init_from):
        tok = default_tokenizer()
    else:
        tok = load_tokenizer(init_from)
    return tok, models.load_model(init_from, tok, dtype=dtype, seed=seed)


def record_rows(records: Sequence[Any]) -> list[dict[str, Any]]:
    """``sft.SFTRecord`` objects -> plain rows ``{prompt, segments: [[text, trained], ...]}`` for a records file."""
    return [{"prompt": r.prompt, "segments": [[s.text, bool(s.train)] for s in r.segments]} for r in records]


def encode_row(tok, row: dict[str, Any], max_len: int) -> tuple[list[int], list[int]]:
    """Ids and labels of a row (prompt and untrained segments masked, EOS trained), as ``sft.encode_record``."""
    ids = tok(row["prompt"], add_special_tokens=False)["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    segs = row.get("segments") or [[row["completion"], True]]
    for text, train in segs:
        t = tok(text, add_special_tokens=False)["input_ids"]
        ids += t
        labels += t if train else [IGNORE_INDEX] * len(t)
    ids.append(tok.eos_token_id)
    labels.append(tok.eos_token_id)
    return ids[:max_len], labels[:max_len]


def lr_at(step: int, p: dict[str, Any]) -> float:
    """Linear warmup, then constant or cosine decay to ``min_lr_ratio * lr`` (as ``training.train_lm``)."""
    lr, warmup = float(p["lr"]), int(p["warmup"])
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if p["lr_scheduler"] == "constant":
        return lr
    if p["lr_scheduler"] != "cosine":
        raise ValueError(f"lr_scheduler must be 'constant' or 'cosine', got {p['lr_scheduler']!r}")
    frac = (step - warmup) / max(1, int(p["steps"]) - warmup)
    return lr * (p["min_lr_ratio"] + (1 - p["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def global_batches(n: int, batch: int, seed: int):
    """Endless lists of ``batch`` example indices, reshuffled each epoch; the same on every process."""
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for i in range(0, max(1, n - batch + 1), batch):
            yield order[i:i + batch]


def run(params: dict[str, Any], run_dir: Path, model=None, tokenizer=None) -> dict[str, Any]:
    """Train ``params["steps"]`` steps of answer-only SFT on ``records_file``; returns the metrics.

    ``model``/``tokenizer`` (in-process only) are trained in place instead of loading ``init_from``; the
    checkpoint is saved to ``run_dir/checkpoint`` when ``save`` is true and the model was not passed in.
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from . import training

    p = check_params(params, DEFAULTS)
    training.set_threads(int(p["threads"]))
    acc = Accelerator()
    world, rank = acc.num_processes, acc.process_index
    gb = int(p["global_batch_size"])
    mb = int(p["micro_batch_size"]) or gb // world
    if gb % (world * mb):
        raise ValueError(f"global_batch_size={gb} is not a multiple of num_processes ({world}) x "
                         f"micro_batch_size ({mb})")
    accum = gb // (world * mb)
    passed_in = model is not None
    with acc.main_process_first():  # the toy tokenizer is trained once, by rank 0
        if model is None:
            tokenizer, model = load_tokenizer_and_model(p["init_from"], p["tokenizer_name"], seed=int(p["seed"]))
        elif tokenizer is None:
            raise ValueError("sft_loop.run: a passed-in model needs its tokenizer")
    if not p["records_file"]:
        raise ValueError("sft_loop: params['records_file'] is empty (launch(..., records=rows) writes one)")
    rows = launch.read_records(p["records_file"])
    enc = [encode_row(tokenizer, r, int(p["max_len"])) for r in rows]
    if not enc:
        raise ValueError(f"{p['records_file']}: no records")

    training.seed_everything(int(p["seed"]))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"]),
                            betas=(0.9, 0.95))
    ds = acc.state.deepspeed_plugin
    if ds is not None:  # DeepSpeed does accumulation and clipping itself: give it our numbers (UNTESTED: needs GPUs)
        ds.deepspeed_config.update({"train_micro_batch_size_per_gpu": mb, "gradient_accumulation_steps": accum,
                                    "train_batch_size": gb, "gradient_clipping": float(p["grad_clip"] or 0.0)})
        if ds.deepspeed_config.get("bf16", {}).get("enabled") == "auto":
            ds.deepspeed_config["bf16"]["enabled"] = acc.mixed_precision == "bf16"
    model, opt = acc.prepare(model, opt)
    batches = global_batches(len(enc), gb, int(p["seed"]))
    history: list[dict[str, Any]] = []
    t0 = time.time()
    for step in tqdm(range(int(p["steps"])), desc="sft", disable=not acc.is_local_main_process, mininterval=2):
        idx = next(batches)
        # every process knows the global batch, so it knows the global number of trained tokens
        n_tokens = sum(sum(1 for x in enc[i][1][1:] if x != IGNORE_INDEX) for i in idx)
        share = idx[rank * (len(idx) // world):(rank + 1) * (len(idx) // world)]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, p)
        local_sum = torch.zeros(())
        for k in range(accum):
            micro = share[k * mb:(k + 1) * mb]
            batch = collate([enc[i] for i in micro], tokenizer.pad_token_id)
            batch = {key: v.to(acc.device) for key, v in batch.items()}
            ctx = acc.no_sync(model) if k < accum - 1 else contextlib.nullcontext()
            with ctx:
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                ce = torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                    ignore_index=IGNORE_INDEX, reduction="sum")
                # DDP averages gradients over processes: x world makes the sum of shares / global tokens;
                # DeepSpeed also divides by its accumulation steps, undone by x accum
                acc.backward(ce / max(1, n_tokens) * world * (accum if ds is not None else 1))
            local_sum += ce.detach().cpu()
        if p["grad_clip"] and ds is None:
            acc.clip_grad_norm_(model.parameters(), float(p["grad_clip"]))
        opt.step()
        opt.zero_grad(set_to_none=True)
        total = acc.reduce(local_sum.to(acc.device), reduction="sum")
        history.append({"step": step + 1, "loss": float(total) / max(1, n_tokens), "lr": lr_at(step, p),
                        "tokens": n_tokens})
    train_s = time.time() - t0
    acc.wait_for_everyone()
    saved = None
    if p["save"] and not passed_in:
        state = acc.get_state_dict(model)  # gathers FSDP / ZeRO-3 shards (a collective: every rank calls it)
        if acc.is_main_process:
            out = run_dir / "checkpoint"
            acc.unwrap_model(model).save_pretrained(str(out), state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(str(out))
            saved = str(out)
        acc.wait_for_everyone()
    model = acc.unwrap_model(model)
    model.eval()
    return {"stage": "sft_loop", "num_processes": world, "global_batch_size": gb, "micro_batch_size": mb,
            "grad_accum": accum, "steps": int(p["steps"]), "loss_curve": history,
            "final_loss": history[-1]["loss"] if history else None, "train_seconds": round(train_s, 2),
            "checkpoint": saved, "n_examples": len(enc)}


if __name__ == "__main__":
    launch.stage_main(run)
