"""Peak memory of GRPO vs PPO (§4.1: GRPO drops PPO's value model) on a ≥100 M-parameter policy, CPU.

Each method runs a few steps of :func:`dsm_utils.rl.train` in a fresh subprocess, in the paper's setting: both
with a frozen reference model and a learned reward model (``reward="model"``); PPO also trains a value model the
size of the policy (its backbone plus a scalar head) with its own AdamW. Same questions, G, lengths and seed.
Peak = ``ru_maxrss`` of the subprocess (MiB). Last line: one JSON object.

    .venv/bin/python bench/grpo_vs_ppo_memory.py [--model llama-100m] [--steps 2]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(method: str, a) -> None:
    import torch

    from dsm_utils import problems as P
    from dsm_utils import reward_models as R
    from dsm_utils import rl
    from dsm_utils.models import count_parameters, load_model
    from dsm_utils.tokenizer import default_tokenizer

    torch.set_num_threads(a.threads)
    tok = default_tokenizer()
    policy = load_model(a.model, tok, seed=0)
    ref = copy.deepcopy(policy).eval()
    rm = R.make_reward_model(policy, seed=1).eval()  # a learned RM (initialised from the policy, as in the paper)
    cfg = rl.RLConfig(group_size=a.group_size, questions_per_step=a.questions, steps=a.steps,
                      max_new_tokens=a.max_new, lr=1e-6, reward="model", seed=0)
    probs = P.generate(16, seed=0)
    kw = {}
    if method == "PPO":
        kw["value_model"] = R.make_value_model(policy)
    rows = rl.train(method, policy, ref, tok, probs, cfg, reward_model=rm, progress=False, **kw)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"method": method, "peak_mib": round(peak_mib, 1), "policy_params_m":
                      round(count_parameters(policy) / 1e6, 1), "steps": len(rows),
                      "value_params_m": round(count_parameters(kw["value_model"]) / 1e6, 1) if kw else 0}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-100m")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--questions", type=int, default=1)
    ap.add_argument("--max-new", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", default=None)
    a = ap.parse_args()
    if a.child:
        child(a.child, a)
        return
    res = {}
    for method in ("GRPO", "PPO"):
        cmd = [sys.executable, __file__, "--child", method, "--model", a.model, "--steps", str(a.steps),
               "--group-size", str(a.group_size), "--questions", str(a.questions), "--max-new", str(a.max_new),
               "--threads", str(a.threads)]
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if out.returncode:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"{method} child failed")
        res[method] = json.loads(out.stdout.strip().splitlines()[-1])
        print(res[method])
    g, p = res["GRPO"]["peak_mib"], res["PPO"]["peak_mib"]
    print(json.dumps({"grpo_peak_mib": g, "ppo_peak_mib": p, "ratio": round(g / p, 3), "model": a.model,
                      "policy_params_m": res["GRPO"]["policy_params_m"],
                      "value_params_m": res["PPO"]["value_params_m"], "group_size": a.group_size,
                      "questions_per_step": a.questions, "max_new_tokens": a.max_new, "steps": a.steps}))


if __name__ == "__main__":
    main()
