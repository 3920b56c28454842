"""Does GRPO's effect show in the toy world? SFT vs GRPO (outcome supervision, rule reward) on the test split.

Reuses the cpu-profile instruct checkpoint (``runs/cpu/05_sft/checkpoint``) or trains it with the settings of
``params/cpu/05_sft.yaml``; then runs GRPO-OS for each seed with the settings of ``params/cpu/06_grpo.yaml``, one
single-thread process per seed, ``--processes`` at a time (``rl.run_jobs``), plus one job that evaluates the SFT
model. Every model is scored by the rule checker on the same test items (greedy), and by Maj@16 / Pass@16 at
the 06 temperature. Differences carry 95 % intervals (seed spread + binomial error, ``dsm_utils.findings``).

    .venv/bin/python bench/rl_effect.py [--seeds 0 1 2] [--processes 2] [--n-test 500] [--sft-checkpoint PATH]
        [--work-dir runs/cpu/_bench_rl_effect]

Last line: one JSON object with sft_greedy, grpo_greedy, delta, delta_ci_low, maj16_delta, pass16_delta, seeds,
n_test, seconds (and the intervals of the Maj/Pass deltas).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _yaml(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params" / "cpu" / f"{name}.yaml").read_text()) or {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--sft-checkpoint", default="runs/cpu/05_sft/checkpoint")
    ap.add_argument("--work-dir", default="runs/cpu/_bench_rl_effect",
                    help="per-run checkpoints and results (a rerun reuses finished runs); '' = none")
    args = ap.parse_args()

    from dsm_utils import findings, models, rl, sft, training

    t0 = time.time()
    training.set_threads(1)
    ck = ROOT / args.sft_checkpoint
    if not models.checkpoint_exists(ck):
        p5 = _yaml("05_sft")
        sft.train_toy_instruct(ck, steps=p5.get("steps", 600), format_mix=p5.get("format_mix"),
                               n_train=p5.get("n_train", 20000), batch_size=p5.get("batch_size", 32),
                               lr=p5.get("lr", 3e-3), progress=False)
    p6 = _yaml("06_grpo")
    k = p6.get("k_samples", 16)
    kspec = {"split": "test", "n_items": args.n_test, "n": k, "temperature": p6.get("k_temperature", 0.7)}
    evals = {"test": args.n_test}
    wd = (lambda name: str(ROOT / args.work_dir / name)) if args.work_dir else (lambda name: None)
    specs = [dict(checkpoint=str(ck), method="none", label="sft", cfg={"seed": args.seeds[0]}, evals=evals, k=kspec,
                  work_dir=wd("sft"))]
    for s in args.seeds:
        cfg = dict(group_size=p6.get("group_size", 8), questions_per_step=p6.get("questions_per_step", 8),
                   steps=p6.get("steps", 30), lr=p6.get("lr", 1e-4), beta=p6.get("beta", 0.04),
                   max_new_tokens=p6.get("max_new_tokens", 64), temperature=p6.get("temperature", 0.7), seed=s,
                   checkpoint_every=5)
        specs.append(dict(checkpoint=str(ck), method="GRPO", label="grpo", cfg=cfg, evals=evals, k=kspec,
                          n_questions=p6.get("n_questions", 2000),
                          eval_max_new_tokens=p6.get("eval_max_new_tokens", 64), work_dir=wd(f"grpo-{s}")))
    res = rl.run_jobs(specs, processes=args.processes, progress=False)
    sft_r, grpo = res[0], res[1:]
    n = len(grpo)
    s_acc = [sft_r["final"]["test"]["acc"]] * n
    g_acc = [r["final"]["test"]["acc"] for r in grpo]
    f = findings.finding("GRPO > SFT", g_acc, s_acc, args.n_test, paired=True)
    kv = {"maj": [r["k"]["maj"][k] for r in grpo], "pass": [r["k"]["pass"][k] for r in grpo],
          "pass1": [r["k"]["pass"][1] for r in grpo]}
    base = {"maj": [sft_r["k"]["maj"][k]], "pass": [sft_r["k"]["pass"][k]], "pass1": [sft_r["k"]["pass"][1]]}
    maj, pas, _ = findings.maj_pass_findings(kv, base, args.n_test, k)  # the SFT value is paired with each seed
    for r in res:
        print(f"{r['label']} seed {r['seed']}: greedy {r['final']['test']['acc']:.3f}, Maj@{k} "
              f"{r['k']['maj'][k]:.3f}, Pass@{k} {r['k']['pass'][k]:.3f}, programs "
              f"{r['final']['test']['program_share']:.2f} [{r['seconds']:.0f}s]")
    out = {"sft_greedy": round(s_acc[0], 4), "grpo_greedy": round(sum(g_acc) / n, 4), "delta": f.delta,
           "delta_ci_low": f.ci[0], "delta_ci": f.ci, "verdict": f.status, "maj16_delta": maj.delta,
           "maj16_ci": maj.ci, "pass16_delta": pas.delta, "pass16_ci": pas.ci, "pass16_verdict": pas.status,
           "grpo_greedy_per_seed": g_acc, "seeds": args.seeds, "n_test": args.n_test,
           "seconds": round(time.time() - t0, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
