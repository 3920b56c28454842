"""Pre-training throughput: our accelerate loop (``dsm_utils.pretrain.train``) vs ``transformers.Trainer``.

Same toy model (fresh ``llama-1m``, same seed), same packed blocks of standard-library code, same batch, sequence
length, optimiser (AdamW β = (0.9, 0.95), weight decay 0.1), gradient clipping and thread count, measured in one
run, alternating ours / Trainer ``--repeats`` times and keeping each one's best. Each side is timed by its own loop
clock (ours: ``train_s`` around the step loop; Trainer: its ``train_runtime``), so model building and data loading
are excluded on both sides. Last line: one JSON object ``{"ours_tokens_per_s", "hf_trainer_tokens_per_s",
"ratio", ...}``.

    OMP_NUM_THREADS=1 python bench/pretrain_throughput.py [--steps 60] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llama-1m")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import torch
    from transformers import Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from dsm_utils import models, pretrain
    from dsm_utils.tokenizer import DEFAULT_CACHE, default_tokenizer

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    tok = default_tokenizer()
    work = Path(tempfile.mkdtemp(prefix="pretrain_bench_"))
    blocks = work / "code.npy"
    info = pretrain.write_blocks(blocks, tok, pretrain.stdlib_texts("train", 1_000_000), args.seq_len)
    tokens = args.steps * args.batch_size * args.seq_len
    lr = 2e-3

    def ours(k: int) -> float:
        params = {"model": args.model, "tokenizer": DEFAULT_CACHE, "data": {str(blocks): 1.0}, "tokens": tokens,
                  "seq_len": args.seq_len, "batch_size": args.batch_size, "lr": lr, "warmup_frac": 0.05,
                  "threads": args.threads, "save_model": False, "seed": 0}
        m = pretrain.train(params, work / f"ours{k}")
        return m["tokens"] / m["train_s"]

    arr = np.load(blocks)

    class DS(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(arr)

        def __getitem__(self, i: int):
            x = torch.from_numpy(arr[i].astype(np.int64))
            return {"input_ids": x, "labels": x}

    def hf(k: int) -> float:
        model = models.load_model(args.model, tok, seed=0)
        targs = TrainingArguments(output_dir=str(work / f"hf{k}"), per_device_train_batch_size=args.batch_size,
                                  max_steps=args.steps, learning_rate=lr, weight_decay=0.1, adam_beta1=0.9,
                                  adam_beta2=0.95, max_grad_norm=1.0, warmup_steps=max(1, args.steps // 20),
                                  lr_scheduler_type="constant_with_warmup", logging_strategy="no",
                                  save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                                  disable_tqdm=True, seed=0)
        out = Trainer(model=model, args=targs, train_dataset=DS()).train()
        return tokens / out.metrics["train_runtime"]

    ours_best, hf_best = 0.0, 0.0
    t0 = time.time()
    for k in range(args.repeats):
        ours_best = max(ours_best, ours(k))
        hf_best = max(hf_best, hf(k))
        print(f"repeat {k}: ours {ours_best:.0f} tok/s, Trainer {hf_best:.0f} tok/s", file=sys.stderr)
    print(json.dumps({"ours_tokens_per_s": round(ours_best, 1), "hf_trainer_tokens_per_s": round(hf_best, 1),
                      "ratio": round(ours_best / hf_best, 3), "model": args.model, "steps": args.steps,
                      "batch_size": args.batch_size, "seq_len": args.seq_len, "threads": args.threads,
                      "repeats": args.repeats, "data_tokens": info["tokens"], "wall_s": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
