"""Throughput of the PoT sandbox: small program-of-thought programs run serially and in parallel.

No arguments. Prints progress lines, then one JSON object as the last line:
{"programs": N, "serial_programs_per_s": x, "parallel_programs_per_s": y, "workers": w, ...}
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dsm_utils.sandbox import run_many, run_pot  # noqa: E402

N = 200


def programs(n: int) -> list[str]:
    """GSM8K-sized PoT programs: a few arithmetic steps, half via solution(), half printing."""
    out = []
    for i in range(n):
        if i % 2:
            out.append(
                f"def solution():\n    apples = {i + 3}\n    eaten = {i % 3}\n"
                f"    bags = {i % 5 + 1}\n    return (apples - eaten) * bags\n"
            )
        else:
            out.append(f"from fractions import Fraction\nx = Fraction({i + 1}, {i % 7 + 2})\nprint(x * 3 - 1)\n")
    return out


def main() -> None:
    codes = programs(N)
    workers = max(2, min(8, os.cpu_count() or 1))
    t = time.perf_counter()
    serial = [run_pot(c) for c in codes]
    serial_s = time.perf_counter() - t
    t = time.perf_counter()
    parallel = run_many(codes, workers=workers, pot=True)
    parallel_s = time.perf_counter() - t
    ok_s = sum(r.ok for r in serial)
    ok_p = sum(r.ok for r in parallel)
    same = all(a.stdout == b.stdout for a, b in zip(serial, parallel))
    print(f"serial: {serial_s:.2f}s ({ok_s}/{N} ok); parallel x{workers}: {parallel_s:.2f}s ({ok_p}/{N} ok); "
          f"outputs agree: {same}; cpus: {os.cpu_count()}")
    print(json.dumps({
        "programs": N,
        "serial_programs_per_s": round(N / serial_s, 2),
        "parallel_programs_per_s": round(N / parallel_s, 2),
        "workers": workers,
        "ok_serial": ok_s,
        "ok_parallel": ok_p,
        "outputs_agree": same,
        "cpu_count": os.cpu_count(),
        "as_root": os.geteuid() == 0,
    }))


if __name__ == "__main__":
    main()
