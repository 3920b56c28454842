"""Findings: does a paper claim reproduce in our numbers? A 95 % interval per difference, then a verdict.

Every reported difference between two arms (GRPO vs SFT, code→math vs math only, ...) is measured over several
training seeds, each evaluated on the same ``n_items`` test items. Its interval covers both sources of error:

* the **seed spread**: the sample standard deviation over seeds (paired by seed when both arms share seeds, e.g.
  GRPO seed i starts from SFT seed i), scaled by Student's t with ``k - 1`` degrees of freedom;
* the **binomial error** of a finite test set: ``p(1 - p) / (k · n)`` per arm for accuracies (skipped for metrics
  that are not proportions, such as bits per byte).

The two half-widths add in quadrature. A verdict is then read off the interval, never off the point estimate:

* ``"reproduced"``: the interval lies entirely on the paper's side (for ``direction="increase"``: above 0; for
  ``"equal"``: inside ``±margin``);
* ``"not reproduced"``: the interval lies entirely on the other side (below 0; or entirely outside ``±margin``);
* ``"within noise"``: anything else.

Comparisons are rounded to ``ROUND`` decimals first, so a difference of 0.030000000000000027 against a margin of
0.03 does not flip a verdict on a float edge.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

STATUSES = ("reproduced", "not reproduced", "within noise")
DIRECTIONS = ("increase", "decrease", "equal")
ROUND = 9  # decimals kept before comparing: differences below 1e-9 are float noise, not results


def _t975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t (exact table for small df, normal beyond)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
    if df < 1:
        raise ValueError(f"_t975: need at least 1 degree of freedom (2 seeds), got {df}")
    for k in sorted(table):
        if df <= k:
            return table[k]
    return 1.96


def _mean(x: Sequence[float]) -> float:
    return sum(x) / len(x)


def _var(x: Sequence[float]) -> float:
    m = _mean(x)
    return sum((v - m) ** 2 for v in x) / (len(x) - 1) if len(x) > 1 else 0.0


@dataclass
class Interval:
    """``delta = mean(a) − mean(b)`` with its 95 % interval ``[lo, hi]`` and the two error parts (half-widths)."""

    delta: float
    lo: float
    hi: float
    seed_half: float
    binom_half: float
    n_seeds: int
    n_items: int | None


def diff_interval(a: Sequence[float], b: Sequence[float], n_items: int | None = None, *, paired: bool = False,
                  proportion: bool = True) -> Interval:
    """95 % interval of ``mean(a) − mean(b)`` from per-seed values ``a`` and ``b``.

    ``n_items``: test items per seed (each seed scored on the same items); with ``proportion=True`` it adds the
    binomial error. ``paired=True`` when ``a[i]`` and ``b[i]`` come from the same seed (uses the spread of the
    per-seed differences). With one seed per arm there is no seed spread to measure: the interval then has the
    binomial part only, which the caller should say (``n_seeds`` is kept in the result).
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError("diff_interval: both arms need at least one value")
    if paired and len(a) != len(b):
        raise ValueError(f"diff_interval(paired=True): {len(a)} values vs {len(b)}; pair them by seed")
    if proportion and any(not 0.0 <= v <= 1.0 for v in a + b):
        raise ValueError("diff_interval(proportion=True): values must be accuracies in [0, 1]")
    if proportion and n_items is not None and n_items < 1:
        raise ValueError(f"diff_interval: n_items must be >= 1, got {n_items}")
    delta = _mean(a) - _mean(b)
    if paired:
        k = len(a)
        d = [x - y for x, y in zip(a, b)]
        seed_half = _t975(k - 1) * math.sqrt(_var(d) / k) if k > 1 else 0.0
    else:
        ka, kb = len(a), len(b)
        se2 = _var(a) / ka + _var(b) / kb
        df = max(min(ka, kb) - 1, 1)  # conservative Welch-style degrees of freedom
        seed_half = _t975(df) * math.sqrt(se2) if max(ka, kb) > 1 else 0.0
    binom_half = 0.0
    if proportion and n_items:
        pa, pb = _mean(a), _mean(b)
        binom_half = 1.96 * math.sqrt(pa * (1 - pa) / (len(a) * n_items) + pb * (1 - pb) / (len(b) * n_items))
    half = math.hypot(seed_half, binom_half)
    return Interval(delta, delta - half, delta + half, seed_half, binom_half, max(len(a), len(b)), n_items)


def verdict(lo: float, hi: float, direction: str = "increase", margin: float = 0.0) -> str:
    """The verdict for a paper claim about a difference whose 95 % interval is ``[lo, hi]``.

    ``direction``: ``"increase"`` (the paper says a > b), ``"decrease"`` (a < b) or ``"equal"`` (|a − b| is
    within ``margin``, e.g. "RL does not raise Pass@K"). ``margin`` > 0 is required for ``"equal"``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"verdict: direction={direction!r}; valid: {list(DIRECTIONS)}")
    if lo > hi:
        raise ValueError(f"verdict: interval [{lo}, {hi}] has lo > hi")
    lo, hi = round(lo, ROUND), round(hi, ROUND)
    if direction == "increase":
        return "reproduced" if lo > 0 else "not reproduced" if hi < 0 else "within noise"
    if direction == "decrease":
        return "reproduced" if hi < 0 else "not reproduced" if lo > 0 else "within noise"
    if margin <= 0:
        raise ValueError("verdict(direction='equal'): needs margin > 0")
    m = round(margin, ROUND)
    if -m <= lo and hi <= m:
        return "reproduced"
    if lo > m or hi < -m:
        return "not reproduced"
    return "within noise"


@dataclass
class Finding:
    """One paper claim against our numbers: what ``metrics.json['findings']`` holds and 09 renders."""

    claim: str
    status: str
    delta: float
    ci: list[float]
    source: str = ""  # where the claim is in the paper (e.g. "§5.2.2, Fig. 7")
    detail: str = ""  # our numbers in words (e.g. "GRPO 0.41 vs SFT 0.28, 3 seeds x 500 items")

    def to_dict(self) -> dict:
        return asdict(self)


def finding(claim: str, a: Sequence[float], b: Sequence[float], n_items: int | None = None, *,
            direction: str = "increase", margin: float = 0.0, paired: bool = False, proportion: bool = True,
            source: str = "", detail: str = "") -> Finding:
    """:func:`diff_interval` of ``a − b`` and its :func:`verdict`, as a :class:`Finding`."""
    iv = diff_interval(a, b, n_items, paired=paired, proportion=proportion)
    status = verdict(iv.lo, iv.hi, direction, margin)
    r = lambda v: round(v, 4)  # noqa: E731 - four decimals are plenty for accuracies and bits per byte
    return Finding(claim, status, r(iv.delta), [r(iv.lo), r(iv.hi)], source, detail)


def check_findings(rows: Sequence[dict], where: str = "findings") -> list[dict]:
    """Validate ``findings`` rows read from a metrics.json: keys ``claim``, ``status``, ``delta``, ``ci``."""
    out = []
    for i, r in enumerate(rows):
        missing = {"claim", "status", "delta", "ci"} - set(r)
        if missing:
            raise ValueError(f"{where}[{i}]: missing keys {sorted(missing)}")
        if r["status"] not in STATUSES:
            raise ValueError(f"{where}[{i}].status={r['status']!r}; valid: {list(STATUSES)}")
        if len(r["ci"]) != 2:
            raise ValueError(f"{where}[{i}].ci must be [lo, hi]")
        out.append(dict(r))
    return out


def maj_pass_findings(rl: dict[str, Sequence[float]], base: dict[str, Sequence[float]], n_items: int, k: int, *,
                      margin: float = 0.05, source: str = "§5.2.2, Fig. 7") -> list[Finding]:
    """Figure 7's three claims from per-seed Maj@K / Pass@K values: RL raises Maj@K; RL leaves Pass@K within
    ``±margin``; RL's gain is larger at Pass@1 than at Pass@K.

    ``rl`` and ``base`` map ``"maj"``, ``"pass"`` and ``"pass1"`` to per-seed values (the base model may have a
    single value: it is then compared with each RL seed). A Pass@K that collapses by more than ``margin`` is
    "not reproduced", whatever Maj@K does.
    """
    for name, d in (("rl", rl), ("base", base)):
        missing = {"maj", "pass", "pass1"} - set(d)
        if missing:
            raise ValueError(f"maj_pass_findings: {name} lacks {sorted(missing)}")

    def rep(v: Sequence[float], n: int) -> list[float]:
        return list(v) * n if len(v) == 1 else list(v)

    n = len(rl["maj"])
    out = [finding(f"RL raises Maj@{k}", rl["maj"], rep(base["maj"], n), n_items, paired=True, source=source,
                   detail=f"RL {_mean(rl['maj']):.3f} vs base {_mean(base['maj']):.3f}"),
           finding(f"RL leaves Pass@{k} unchanged (±{margin:g})", rl["pass"], rep(base["pass"], n), n_items,
                   direction="equal", margin=margin, paired=True, source=source,
                   detail=f"RL {_mean(rl['pass']):.3f} vs base {_mean(base['pass']):.3f}")]
    d1 = [a - b for a, b in zip(rl["pass1"], rep(base["pass1"], n))]
    dk = [a - b for a, b in zip(rl["pass"], rep(base["pass"], n))]
    out.append(finding(f"RL's gain is larger at Pass@1 than at Pass@{k}", d1, dk, None, paired=True,
                       proportion=False, source=source,
                       detail=f"Δ Pass@1 {_mean(d1):+.3f} vs Δ Pass@{k} {_mean(dk):+.3f} (seed spread only)"))
    return out
