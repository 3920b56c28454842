"""Benchmark metrics of DeepSeekMath (§2.3, §3.2; §5.2.2 and Figure 7): accuracy, Maj@K, Pass@K, breakdowns.

- **Greedy accuracy**: the fraction of items whose (first) completion is graded correct.
- **Maj@K** (self-consistency): among K sampled completions, the answers are grouped into equivalence
  classes (normalised with :func:`dsm_utils.grading.normalize_answer`, numbers compared as exact fractions);
  the largest class wins, ties going to the class that appeared first; the item counts as correct when the
  winning class's first completion is correct. Completions without an answer do not vote.
- **Pass@K**: the unbiased estimator of Chen et al. (2021) from n >= K samples with c correct,
  ``1 - C(n-c, K) / C(n, K)``, computed as the product ``1 - prod_{i=n-c+1}^{n} (1 - K/i)`` so that it
  never forms huge binomials.
"""
from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Callable, Hashable, Iterable, Sequence

__all__ = ["pass_at_k", "pass_at_k_curve", "answer_key", "group_answers", "majority_vote", "maj_at_k",
           "maj_at_k_curve", "accuracy", "breakdown", "k_grid", "binomial_ci"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k from ``n`` samples of which ``c`` are correct (needs ``n >= k >= 1``)."""
    if not (0 <= c <= n):
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0  # every k-subset holds a correct sample
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_curve(n_correct: Sequence[int], n_samples: int | Sequence[int], ks: Iterable[int]) -> dict[int, float]:
    """Mean Pass@k over items for each ``k`` in ``ks`` (items with fewer than k samples are skipped for that k)."""
    ns = [n_samples] * len(n_correct) if isinstance(n_samples, int) else list(n_samples)
    if len(ns) != len(n_correct):
        raise ValueError("pass_at_k_curve: n_correct and n_samples differ in length")
    out = {}
    for k in ks:
        vals = [pass_at_k(n, c, k) for n, c in zip(ns, n_correct) if n >= k]
        out[int(k)] = float(sum(vals) / len(vals)) if vals else float("nan")
    return out


def answer_key(answer: str | None) -> Hashable | None:
    """A hashable key under which equivalent answers collide: the normalised string, numbers as fractions."""
    if answer is None:
        return None
    from .grading import normalize_answer

    try:
        s = normalize_answer(answer)
    except Exception:  # noqa: BLE001 - a voting key must never crash the evaluation
        s = answer.strip()
    t = s.replace(" ", "")
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:/(\d+))?", t)
    if m:
        try:
            return ("num", Fraction(m.group(1)) / (Fraction(m.group(2)) if m.group(2) else 1))
        except ZeroDivisionError:
            pass
    fm = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", t)
    if fm and int(fm.group(3)) != 0:
        v = Fraction(int(fm.group(2)), int(fm.group(3)))
        return ("num", -v if fm.group(1) else v)
    return ("str", t)


def group_answers(answers: Sequence[str | None],
                  equiv: Callable[[str, str], bool] | None = None) -> list[list[int]]:
    """Indices of ``answers`` grouped into classes of equivalent answers, classes in first-occurrence order.

    ``None`` answers are left out. Without ``equiv`` answers are grouped by :func:`answer_key`; with it, each
    answer joins the first class whose first member it is ``equiv`` to (e.g. ``grading.is_equiv``).
    """
    groups: list[list[int]] = []
    if equiv is None:
        where: dict[Hashable, int] = {}
        for i, a in enumerate(answers):
            key = answer_key(a)
            if key is None:
                continue
            if key not in where:
                where[key] = len(groups)
                groups.append([])
            groups[where[key]].append(i)
        return groups
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if equiv(a, answers[g[0]]):  # type: ignore[arg-type]
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def majority_vote(answers: Sequence[str | None], equiv: Callable[[str, str], bool] | None = None) -> int | None:
    """Index of the completion that represents the majority answer (first member of the largest class).

    Ties between equally large classes go to the class whose first member comes first, so the result is
    deterministic. ``None`` when no completion has an answer.
    """
    groups = group_answers(answers, equiv)
    if not groups:
        return None
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return best[0]


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int | None = None,
             equiv: Callable[[str, str], bool] | None = None) -> bool:
    """Whether majority voting over the first ``k`` completions (all if None) gives a correct answer."""
    if len(answers) != len(correct):
        raise ValueError("maj_at_k: answers and correct differ in length")
    k = len(answers) if k is None else k
    if not 1 <= k <= len(answers):
        raise ValueError(f"maj_at_k: need 1 <= k <= {len(answers)}, got {k}")
    idx = majority_vote(list(answers[:k]), equiv)
    return bool(correct[idx]) if idx is not None else False


def maj_at_k_curve(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]], ks: Iterable[int],
                   equiv: Callable[[str, str], bool] | None = None, n_orders: int = 1, seed: int = 0) -> dict[int, float]:
    """Mean Maj@k over items for each ``k``.

    With ``n_orders == 1`` the first k samples of each item vote (deterministic). With more, the value is
    averaged over that many orderings (the first is the original order, the rest are seeded shuffles), which
    lowers the variance of small-k points. Items with fewer than k samples are skipped for that k.
    """
    if len(answers) != len(correct):
        raise ValueError("maj_at_k_curve: answers and correct differ in length")
    rng = random.Random(seed)
    orders_per_item = []
    for a in answers:
        idx = list(range(len(a)))
        orders = [idx]
        for _ in range(max(0, n_orders - 1)):
            perm = idx[:]
            rng.shuffle(perm)
            orders.append(perm)
        orders_per_item.append(orders)
    out = {}
    for k in ks:
        vals = []
        for a, c, orders in zip(answers, correct, orders_per_item):
            if len(a) < k:
                continue
            hits = [maj_at_k([a[i] for i in o], [c[i] for i in o], k, equiv) for o in orders]
            vals.append(sum(hits) / len(hits))
        out[int(k)] = float(sum(vals) / len(vals)) if vals else float("nan")
    return out


def accuracy(correct: Iterable[bool]) -> float:
    """Fraction of True (NaN for no items)."""
    vals = [bool(c) for c in correct]
    return sum(vals) / len(vals) if vals else float("nan")


def breakdown(df, by: str | Sequence[str], value: str = "correct"):
    """Accuracy per group (e.g. ``by="subject"`` or ``["subject", "level"]``): a DataFrame with n and accuracy.

    Rows whose grouping key is missing are grouped under ``"(none)"``.
    """
    import pandas as pd

    cols = [by] if isinstance(by, str) else list(by)
    d = df.copy()
    for c in cols:
        d[c] = d[c].astype(object).where(d[c].notna(), "(none)")
    g = d.groupby(cols, dropna=False)[value]
    out = pd.DataFrame({"n": g.size(), "accuracy": g.mean().astype(float)}).reset_index()
    return out


def k_grid(k_max: int) -> list[int]:
    """Every K from 1 to ``k_max`` (the curves of Figure 7 are plotted over all of them)."""
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    return list(range(1, k_max + 1))


def binomial_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95 % interval of a proportion with ``k`` successes out of ``n`` (an accuracy on ``n`` items).

    Wilson rather than the normal approximation: it stays inside [0, 1] and is not zero-width at 0 % or 100 %.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"binomial_ci: need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
    return max(0.0, centre - half), min(1.0, centre + half)
