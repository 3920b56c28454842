"""GRPO throughput: dsm_utils.rl.grpo_train vs TRL's GRPOTrainer, same tiny model / prompts / G / length / threads.

Both run the paper's loss settings (per-sequence averaging, group std scaling, β = 0.04, ε = 0.2, μ = 1) on CPU
(TRL without vLLM). Each does a few warmup steps, then ``--steps`` timed steps (sampling + reward + update);
completions per second = completions in the timed steps / their wall time. Last line: one JSON object.

    .venv/bin/python bench/grpo_vs_trl.py [--model llama-1m] [--group-size 8] [--questions 4] [--max-new 32] [--threads 1]

One thread by default: on the shared 2-core machine two threads per process oversubscribe the cores and make
both timings noisy.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-1m")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dsm_utils import problems as P
    from dsm_utils import rl
    from dsm_utils.models import load_model
    from dsm_utils.tokenizer import default_tokenizer

    torch.set_num_threads(a.threads)
    tok = default_tokenizer()
    base = load_model(a.model, tok, seed=0)
    probs = P.generate(64, seed=0)
    total = a.warmup + a.steps
    n_per_step = a.questions * a.group_size

    # ---- ours
    stamps: list[float] = []
    cfg = rl.GRPOConfig(group_size=a.group_size, questions_per_step=a.questions, steps=total,
                        max_new_tokens=a.max_new, lr=1e-6, beta=0.04, eps_low=0.2, mu=1, temperature=1.0)
    ours_pol = copy.deepcopy(base)
    t0 = time.perf_counter()
    rl.grpo_train(ours_pol, copy.deepcopy(base), tok, probs, cfg, progress=False,
                  callback=lambda step, row: stamps.append(time.perf_counter()))
    ours_time = stamps[-1] - stamps[a.warmup - 1] if a.warmup else stamps[-1] - t0
    ours_cps = a.steps * n_per_step / ours_time

    # ---- TRL
    by_prompt = {P.chat_prompt(p.question): p for p in probs}

    def reward(prompts, completions, **kw):
        return [P.outcome_reward(c, by_prompt[p]) for p, c in zip(prompts, completions)]

    class Stamp(TrainerCallback):
        def __init__(self):
            self.t: list[float] = []

        def on_step_end(self, args, state, control, **kw):
            self.t.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as d:
        base.save_pretrained(f"{d}/m")
        tok.save_pretrained(f"{d}/m")
        args = GRPOConfig(output_dir=f"{d}/out", loss_type="grpo", beta=0.04, use_bias_correction_kl=False,
                          scale_rewards="group", epsilon=0.2, num_iterations=1, num_generations=a.group_size,
                          per_device_train_batch_size=n_per_step, max_completion_length=a.max_new, temperature=1.0,
                          learning_rate=1e-6, max_steps=total, use_cpu=True, report_to="none", bf16=False,
                          save_strategy="no", logging_steps=1000, disable_tqdm=True, seed=0,
                          dataloader_num_workers=0)
        ds = Dataset.from_list([{"prompt": P.chat_prompt(p.question)} for p in probs])
        cb = Stamp()
        tr = GRPOTrainer(model=f"{d}/m", reward_funcs=reward, args=args, train_dataset=ds, processing_class=tok,
                         callbacks=[cb])
        torch.set_num_threads(a.threads)
        tr.train()
    trl_time = cb.t[-1] - cb.t[a.warmup - 1]
    trl_cps = a.steps * n_per_step / trl_time

    print(f"ours: {ours_cps:.1f} completions/s, TRL: {trl_cps:.1f} completions/s "
          f"({a.model}, G={a.group_size}, {a.questions} questions/step, {a.max_new} new tokens, {a.threads} threads)")
    print(json.dumps({"ours_completions_per_s": round(ours_cps, 2), "trl_completions_per_s": round(trl_cps, 2),
                      "ratio": round(ours_cps / trl_cps, 2), "model": a.model, "group_size": a.group_size,
                      "questions_per_step": a.questions, "max_new_tokens": a.max_new, "threads": a.threads,
                      "timed_steps": a.steps}))


if __name__ == "__main__":
    main()
