"""Speed of ``dsm_utils.grading`` on one core: MATH *train* solutions graded against their own boxed answers
plus the same solutions with a perturbed (wrong) final answer.

Prints, as the last line, one JSON object:
``{"items", "ms_per_item", "startup_s", "sympy_fraction", "timeouts", "self_consistency", "wrong_rejected", "agreement_on_pairs"}``.
Run: ``.venv/bin/python bench/grading_speed.py`` (no arguments; DSM_DATA_DIR defaults to ../shared/data).
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_SHARED = REPO.parent / "shared" / "data"
if not os.environ.get("DSM_DATA_DIR") and _SHARED.exists():
    os.environ["DSM_DATA_DIR"] = str(_SHARED)

from dsm_utils import grading  # noqa: E402
from dsm_utils.data import read_jsonl, require  # noqa: E402

N_ITEMS = 2000
PAIRS = REPO / "tests" / "data" / "grading_pairs.jsonl"


def perturb(answer: str, rng: random.Random) -> str | None:
    """A plausible but wrong variant of a reference answer (None when we cannot make one safely)."""
    a = answer.strip()
    if re.fullmatch(r"-?\d+", a):
        return str(int(a) + rng.choice([1, -1, 2, 10]))
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", a)
    if m:
        num, den = int(m.group(2)), int(m.group(3))
        if Fraction(num + 1, den) != Fraction(num, den):
            return f"{m.group(1)}\\frac{{{num + 1}}}{{{den}}}"
    m = re.fullmatch(r"-?\d+\.\d+", a)
    if m:
        return str(round(float(a) * 1.5 + 1, 3))
    nums = list(re.finditer(r"\d+", a))
    if nums:  # change the last integer inside the expression
        k = nums[-1]
        return a[:k.start()] + str(int(k.group(0)) + 1) + a[k.end():]
    return None


def main() -> None:
    rows = read_jsonl(require("math/train.jsonl"))
    rng = random.Random(0)
    rng.shuffle(rows)
    preds, refs, expect = [], [], []
    for r in rows:
        sol = r["solution"]
        ans = grading.extract_answer(sol)
        if ans is None:
            continue
        preds.append(sol)
        refs.append("\\boxed{" + ans + "}")
        expect.append(True)
        if len(preds) >= N_ITEMS:
            break
        boxes = grading._find_boxes(sol)
        last = boxes[-1]
        wrong = perturb(last[2], rng)
        if wrong is not None and len(boxes) == 1:
            preds.append(sol[:last[0]] + "\\boxed{" + wrong + "}" + sol[last[1]:])
            refs.append("\\boxed{" + ans + "}")
            expect.append(False)
        if len(preds) >= N_ITEMS:
            break

    t_start = time.perf_counter()
    grading.grade("\\boxed{\\sin^2 x+\\cos^2 x}", "1")  # one-off: import sympy, start the worker
    startup_s = time.perf_counter() - t_start
    grading.reset_grading_stats()
    t0 = time.perf_counter()
    got = [grading.grade_detailed(p, r, timeout=2.0) for p, r in zip(preds, refs)]
    elapsed = time.perf_counter() - t0
    stats = grading.grading_stats()
    pos = [g.correct for g, e in zip(got, expect) if e]
    neg = [not g.correct for g, e in zip(got, expect) if not e]

    agreement = None
    if PAIRS.exists():
        pairs = read_jsonl(PAIRS)
        ok = sum(grading.grade(p["prediction"], p["reference"], p.get("problem"), compat=p.get("compat", "strict"))
                 == p["expected"] for p in pairs)
        agreement = round(ok / len(pairs), 4)
    grading.shutdown_workers()
    print(json.dumps({
        "items": len(preds),
        "ms_per_item": round(1000 * elapsed / len(preds), 3),
        "startup_s": round(startup_s, 2),
        "sympy_fraction": round(stats.get("symbolic", 0) / max(1, stats.get("items", 1)), 4),
        "timeouts": stats.get("timeout", 0),
        "self_consistency": round(sum(pos) / max(1, len(pos)), 4),
        "wrong_rejected": round(sum(neg) / max(1, len(neg)), 4),
        "agreement_on_pairs": agreement,
    }))


if __name__ == "__main__":
    main()
