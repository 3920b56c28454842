"""Ours beside the paper: only comparable rows, MATH-500 apart, PAL programs, binomial intervals, context errors."""
from __future__ import annotations

import pytest

from dsm_utils import evaluation as E
from dsm_utils import metrics as M


def _row(model, bench, mode, acc, n):
    return {"model": model, "benchmark": bench, "mode": mode, "accuracy": acc, "n_items": n}


def test_comparison_keeps_only_whole_test_sets_with_a_paper_number():
    rows = [_row("deepseek-math-7b-rl", "math", "zero_shot_cot", 0.5, 5000),      # comparable
            _row("deepseek-math-7b-rl", "math", "zero_shot_cot", 0.5, 500),       # a subset: left out
            _row("deepseek-math-7b-rl", "math500", "zero_shot_cot", 0.5, 500),    # MATH-500: no paper number
            _row("05_sft", "toy", "zero_shot_cot", 0.9, 500),                      # toy: the paper has none
            _row("deepseek-math-7b-base", "gsm8k", "few_shot_pot", 0.6, 1319),    # Table 3 (PAL)
            _row("deepseek-math-7b-base", "gsm8k", "pot", 0.6, 1319)]             # zero-shot program: not Table 3
    t = E.comparison_table(rows)
    assert list(zip(t["benchmark"], t["mode"])) == [("math", "zero_shot_cot"), ("gsm8k", "few_shot_pot")]
    assert list(t["paper_%"]) == [51.7, 66.9] and list(t["n"]) == [5000, 1319]
    lo, hi = M.binomial_ci(2500, 5000)
    assert t.loc[0, "ours_ci_%"] == f"{100 * lo:.1f}–{100 * hi:.1f}"
    everything = E.comparison_table(rows, comparable_only=False)
    assert len(everything) == len(rows) and everything["paper_%"].isna().sum() == 3


def test_binomial_ci_wilson():
    lo, hi = M.binomial_ci(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17  # not zero-width at 0 %
    lo, hi = M.binomial_ci(50, 100)
    assert lo == pytest.approx(0.404, abs=1e-3) and hi == pytest.approx(0.596, abs=1e-3)
    with pytest.raises(ValueError, match="k=5, n=3"):
        M.binomial_ci(5, 3)


def test_pal_program_forms():
    gsm = "\n\n\ndef solution():\n    a = 2\n    return a * 21\n"
    assert E.pal_program(gsm).strip().startswith("def solution()")
    # (the PAL MATH exemplars import sympy; a stdlib import keeps this test independent of the sandbox's packages)
    math_form = ("```\nx = Fraction(4, 2)\nanswer = x\n```\nThe imports required for this "
                 "program are\n```\nfrom fractions import Fraction\n```\nI hope my solution is correct.")
    prog = E.pal_program(math_form)
    assert prog.index("from fractions import") < prog.index("answer = x") < prog.index("print(answer)")
    from dsm_utils import sandbox

    res = sandbox.run_pot(prog, timeout_s=20, cpu_s=20)
    assert res.ok and res.stdout.strip() == "2"
    assert sandbox.run_pot(E.pal_program(gsm), timeout_s=20, cpu_s=20).stdout.strip() == "42"
    # a MATH-form completion without the import block is not read (as in DeepSeek-Math's evaluation)
    bad = sandbox.run_pot(E.pal_program("```\nanswer = 2\n```\nI hope my solution is correct."), timeout_s=20, cpu_s=20)
    assert bad.stdout.strip() == "[invalid]"


def test_context_overflow_is_an_error():
    from dsm_utils.generation import ContextError, check_context

    check_context([100, 400], 112, 512)
    with pytest.raises(ContextError, match="400 tokens plus max_new_tokens=113 needs 513 positions.*512"):
        check_context([100, 400], 113, 512)
    check_context([10_000], 10, None)  # a model that states no context is not checked
