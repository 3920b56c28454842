"""Metrics: Pass@K against brute force, Maj@K grouping and deterministic ties, breakdowns."""
from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from dsm_utils import metrics as M


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
            assert M.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    v = M.pass_at_k(1000, 3, 64)
    exact = 1 - math.comb(997, 64) / math.comb(1000, 64)
    assert v == pytest.approx(exact, rel=1e-9)
    with pytest.raises(ValueError):
        M.pass_at_k(4, 1, 5)


def test_pass_curve_mean_over_items():
    curve = M.pass_at_k_curve([0, 4, 2], 4, [1, 2, 4])
    assert curve[1] == pytest.approx((0 + 1 + 0.5) / 3)
    assert curve[4] == pytest.approx(2 / 3)


def test_majority_groups_equivalent_answers():
    answers = ["0.5", "1/2", "3", "\\frac{1}{2}", "3", None]
    groups = M.group_answers(answers)
    assert groups[0] == [0, 1, 3] and groups[1] == [2, 4]
    assert M.majority_vote(answers) == 0
    assert M.maj_at_k(answers, [True, True, False, True, False, False])


def test_majority_ties_break_by_first_occurrence():
    assert M.majority_vote(["7", "8", "8", "7"]) == 0
    assert M.majority_vote(["8", "7", "7", "8"]) == 0
    assert M.majority_vote(["5", "6"]) == 0
    assert M.majority_vote([None, None]) is None
    assert M.maj_at_k(["7", "8", "8", "7"], [False, True, True, False]) is False
    assert M.maj_at_k(["7", "8", "8", "7"], [False, True, True, False], k=3) is True
    # Repeated calls and a custom equivalence give the same, deterministic winner.
    assert M.majority_vote(["a", "B", "b"], equiv=lambda x, y: x.lower() == y.lower()) == 1


def test_maj_curve_prefix_and_orders():
    answers = [["1", "2", "2"], ["5", "5", "5"]]
    correct = [[True, False, False], [True, True, True]]
    c = M.maj_at_k_curve(answers, correct, [1, 2, 3])
    assert c == {1: 1.0, 2: 1.0, 3: 0.5}
    c2 = M.maj_at_k_curve(answers, correct, [1, 2, 3], n_orders=4, seed=1)
    assert c2 == M.maj_at_k_curve(answers, correct, [1, 2, 3], n_orders=4, seed=1)
    assert c2[3] == 0.5


def test_breakdown_and_accuracy():
    df = pd.DataFrame({"subject": ["a", "a", "b", None], "level": [1, 2, 1, None],
                       "correct": [True, False, True, True]})
    bd = M.breakdown(df, "subject").set_index("subject")
    assert bd.loc["a", "accuracy"] == 0.5 and bd.loc["(none)", "n"] == 1
    assert len(M.breakdown(df, ["subject", "level"])) == 4
    assert M.accuracy([True, False]) == 0.5 and math.isnan(M.accuracy([]))
    assert M.k_grid(3) == [1, 2, 3]
