"""SFT with TRL's ``SFTTrainer`` (DeepSeekMath §3.1) for the gpu/cluster profiles, under ``dsm_utils.launch``.

The paper: "Training examples are randomly concatenated until reaching a maximum context length of 4K tokens.
We train the model for 500 steps with a batch size of 256 and a constant learning rate of 5e-5." — §3.1.
Here ``packing=True`` with ``max_len=4096`` concatenates examples into 4K rows, ``lr_scheduler="constant"``,
and the *global* batch ``global_batch_size`` (256) is reached through gradient accumulation:
``per_device_train_batch_size x gradient_accumulation_steps x num_processes``. The loss is on completion
tokens only (``completion_only_loss``); TRL masks the prompt.

Run: ``python -m dsm_utils.sft_trl --params P.json --run-dir DIR`` (or through ``accelerate launch -m``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from . import launch
from .sft_loop import check_params, load_tokenizer_and_model

DEFAULTS: dict[str, Any] = {
    "init_from": "llama-1m", "tokenizer_name": "", "records_file": "", "steps": 10, "batch_size": 8,
    "global_batch_size": 0, "lr": 3e-3, "warmup": 0, "lr_scheduler": "cosine", "max_len": 192, "packing": False,
    "logging_steps": 10, "bf16": None, "seed": 0, "threads": 1, "save": True,
}


def grad_accum_steps(global_batch_size: int, batch_size: int, num_processes: int) -> int:
    """Gradient accumulation that makes ``batch_size x accum x num_processes == global_batch_size``
    (``global_batch_size`` 0 = no accumulation); an impossible split is an error naming the numbers."""
    if not global_batch_size:
        return 1
    per_step = batch_size * num_processes
    if global_batch_size % per_step:
        raise ValueError(f"global_batch_size={global_batch_size} is not a multiple of batch_size ({batch_size}) x "
                         f"num_processes ({num_processes})")
    return global_batch_size // per_step


def sft_config(output_dir: str | Path, *, steps: int, batch_size: int, lr: float, warmup: int = 0,
               lr_scheduler: str = "cosine", max_len: int = 1024, global_batch_size: int = 0, packing: bool = False,
               bf16: bool = False, seed: int = 0, logging_steps: int = 10, num_processes: int | None = None):
    """The ``SFTConfig`` of our runs: completion-only loss, no checkpoints or reporting, the global batch."""
    from trl import SFTConfig

    world = num_processes or launch.world_size()
    return SFTConfig(output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=batch_size,
                     gradient_accumulation_steps=grad_accum_steps(global_batch_size, batch_size, world),
                     learning_rate=lr, warmup_steps=warmup, lr_scheduler_type=lr_scheduler,
                     logging_steps=logging_steps, completion_only_loss=True, max_length=max_len, packing=packing,
                     report_to=[], save_strategy="no", bf16=bf16, seed=seed, disable_tqdm=False)


def train(model, tokenizer, rows: Sequence[dict[str, Any]], output_dir: str | Path, *, steps: int, batch_size: int,
          lr: float, warmup: int = 0, lr_scheduler: str = "cosine", max_len: int = 1024, global_batch_size: int = 0,
          packing: bool = False, bf16: bool = False, seed: int = 0, logging_steps: int = 10):
    """Train ``model`` in place on ``{prompt, completion}`` rows with ``SFTTrainer``; returns
    ``(trainer, history)`` with ``history = [{"step", "loss"}, ...]`` from TRL's log."""
    from datasets import Dataset
    from trl import SFTTrainer

    cfg = sft_config(output_dir, steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, lr_scheduler=lr_scheduler,
                     max_len=max_len, global_batch_size=global_batch_size, packing=packing, bf16=bf16, seed=seed,
                     logging_steps=logging_steps)
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tokenizer)
    trainer.train()
    history = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return trainer, history


def run(params: dict[str, Any], run_dir: Path, model=None, tokenizer=None) -> dict[str, Any]:
    """The stage: load ``init_from`` (unless a model is passed in-process), train on ``records_file``
    (``{prompt, completion}`` rows), save ``run_dir/checkpoint`` (``save`` and no model passed in)."""
    from . import training

    p = check_params(params, DEFAULTS)
    training.set_threads(int(p["threads"]))
    passed_in = model is not None
    if model is None:
        from accelerate import PartialState

        with PartialState().main_process_first():  # the toy tokenizer is trained once, by rank 0
            tokenizer, model = load_tokenizer_and_model(p["init_from"], p["tokenizer_name"], seed=int(p["seed"]))
    if not p["records_file"]:
        raise ValueError("sft_trl: params['records_file'] is empty (launch(..., records=rows) writes one)")
    rows = launch.read_records(p["records_file"])
    bf16 = p["bf16"] if p["bf16"] is not None else training.pick_device("auto") == "cuda"
    t0 = time.time()
    trainer, history = train(model, tokenizer, rows, run_dir / "trl", steps=int(p["steps"]),
                             batch_size=int(p["batch_size"]), lr=float(p["lr"]), warmup=int(p["warmup"]),
                             lr_scheduler=p["lr_scheduler"], max_len=int(p["max_len"]),
                             global_batch_size=int(p["global_batch_size"]), packing=bool(p["packing"]), bf16=bf16,
                             seed=int(p["seed"]), logging_steps=int(p["logging_steps"]))
    train_s = time.time() - t0
    saved = None
    if p["save"] and not passed_in:
        out = run_dir / "checkpoint"
        trainer.save_model(str(out))  # gathers FSDP / DeepSpeed shards; writes on the main process
        if trainer.accelerator.is_main_process:
            tokenizer.save_pretrained(str(out))
        saved = str(out)
    args = trainer.args
    return {"stage": "sft_trl", "num_processes": args.world_size, "per_device_batch_size": args.per_device_train_batch_size,
            "grad_accum": args.gradient_accumulation_steps,
            "global_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
            "steps": int(p["steps"]), "lr_scheduler": p["lr_scheduler"], "packing": bool(p["packing"]),
            "max_len": int(p["max_len"]), "loss_curve": history,
            "final_loss": history[-1]["loss"] if history else None, "train_seconds": round(train_s, 2),
            "checkpoint": saved, "n_examples": len(rows)}


if __name__ == "__main__":
    launch.stage_main(run)
