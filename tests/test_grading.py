"""Tests for dsm_utils.grading: extraction routes, normalisation, equivalence (strict vs deepseek),
adversarial LaTeX under timeouts, batch == single, MATH-train self-consistency, agreement on the pairs file."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from dsm_utils import grading
from dsm_utils.data import read_jsonl, require
from dsm_utils.grading import GradeResult, extract_answer, grade, grade_batch, grade_detailed, is_equiv, normalize_answer

PAIRS = Path(__file__).parent / "data" / "grading_pairs.jsonl"


# ---------------------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("text, expected", [
    # 1. Minerva format wins even when a box and "the answer is" follow
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct. \\boxed{3}", "\\frac{1}{2}"),
    # 2. boxes (brace-matched, nested braces, \fbox, "\boxed 5")
    ("so $x = \\boxed{\\frac{a}{b^{2}}}$ and the answer is 7", "\\frac{a}{b^{2}}"),
    ("\\fbox{12} cm", "12"),
    ("the value is \\boxed 5.", "5"),
    ("first $\\boxed{3}$, then after checking, the answer is $\\boxed{4}$.", "4"),
    ("The roots are $\\boxed{1}$ and $\\boxed{2}$.", "1, 2"),
    ("$k = \\boxed{5}$ or $k = \\boxed{-3}$", "5, -3"),
    ("\\boxed{7} \\boxed{7}", "7"),
    # 3. "he answer is" / 答案是
    ("Thus the answer is $-3$. Done", "-3"),
    ("So, The answer is: 42.\nNext line 9", "42"),
    ("所以答案是：12。", "12"),
    # 4. last program output
    ("```python\nprint(6*7)\n```\n```output\n42\n```\nthe result 5 is", "42"),
    # 5. bare answer, 6. last number
    ("\\frac{3}{4}", "\\frac{3}{4}"),
    ("We first get 3 apples, then 12 more, so 15 apples total.", "15"),
    ("The total is 1,250 dollars in all", "1,250"),
])
def test_extraction_routes(text, expected):
    assert extract_answer(text) == expected


def test_extraction_failure_and_unbalanced():
    assert extract_answer("") is None
    assert extract_answer("I do not know how to solve this problem at all.") is None
    assert extract_answer("answer \\boxed{\\frac{1}{2}") == "\\frac{1}{2}"  # unbalanced: rest of text


# ---------------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("raw, expected", [
    ("5\\text{ cm}", "5"), ("12 square inches", "12"), ("\\$4.50", "4.5"), ("30^\\circ", "30"),
    ("30^{\\circ}", "30"), ("45\\%", "45"), ("10,000", "10000"), ("1{,}000", "1000"), ("1,\\!000", "1000"),
    ("\\left( 1, 2 \\right]", "(1,2]"), ("\\dfrac{3}{4}", "\\frac{3}{4}"), ("\\tfrac12", "\\frac{1}{2}"),
    ("\\frac1{x}", "\\frac{1}{x}"), ("\\sqrt2", "\\sqrt{2}"), ("x = 5", "5"), ("f(2) = 7", "7"), ("5.0", "5"),
    ("2.50", "2.5"), (".5", "0.5"), ("2\\frac{1}{2}", "\\frac{5}{2}"), ("-1\\frac{1}{3}", "-\\frac{4}{3}"),
    ("\\text{(B)}", "(B)"), ("\\boxed{7}", "7"), ("$\\pi r$", "\\pi r"), ("{{5}}", "5"), ("3\\!:\\!15", "3:15"),
    ("\\log_2 5", "\\log_{2}5"), ("1 and 2", "1,2"), ("\\approx 8.24 \\text{ mph}", "8.24"),
])
def test_normalize(raw, expected):
    assert normalize_answer(raw) == expected


# ---------------------------------------------------------------------------------------------- equivalence
EQUIV = [
    ("0.5", "\\frac{1}{2}", True), ("\\frac{1}{460}", "\\frac{1}{462}", False), ("1/460", "1/462", False),
    ("(1,2]", "(1,2)", False), ("[1,2)", "[1, 2)", True), ("1\\pm\\sqrt{2}", "1+\\sqrt{2},1-\\sqrt{2}", True),
    ("1+\\sqrt{2}", "1\\pm\\sqrt{2}", False), ("2\\frac{1}{2}", "\\frac{5}{2}", True), ("2\\frac{1}{2}", "1", False),
    ("\\{3, 1, 2\\}", "1,2,3", True), ("1,2", "1,2,3", False), ("3", "1,2,3", False),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)", True),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", False),
    ("y=2x+3", "2x-y+3=0", True), ("x+y=3", "2x+2y=6", True), ("x+y=3", "x-y=3", False),
    ("2\\sqrt{3}", "\\sqrt{12}", True), ("(x+1)^2", "x^2+2x+1", True), ("(x-1)^2", "x^2+2x+1", False),
    ("0.3333", "\\frac{1}{3}", True), ("0.3", "\\frac{1}{3}", False), ("999.5", "1000", False),
    ("3.1416", "3.14", True), ("15.18", "15.17", False), ("8+4i", "4i+8", True), ("8-4i", "8+4i", False),
    ("1103_6", "1103", True), ("1103_7", "1103_6", False), ("2^{100}-2", "2^{100}-3", False),
    ("(-\\infty,3]", "(-\\infty, 3]", True), ("\\text{Devon}", "devon", True), ("e^{i\\pi}", "-1", True),
    ("\\frac{\\ln 5}{\\ln 2}", "\\log_2 5", True),  # needs sympy
    ("\\sin^2 x+\\cos^2 x", "1", True),  # needs sympy
]


@pytest.mark.parametrize("pred, ref, expected", EQUIV)
def test_equivalence_both_directions(pred, ref, expected):
    assert is_equiv(pred, ref) is expected
    if not (pred, ref) == ("3", "1,2,3") and not pred.startswith("1+\\sqrt"):
        assert is_equiv(ref, pred) is expected


@pytest.mark.parametrize("pred, ref, strict, deepseek", [
    ("\\frac{1}{460}", "\\frac{1}{462}", False, True),  # absolute 1e-3 tolerance
    ("(1,2]", "(1,2)", False, True),  # bracket type ignored
    ("0.45", "45\\%", False, True),  # percent /100
    ("45", "0.45", False, True),  # percent x100
    ("\\frac{1}{2}", "0.5", True, True),
    ("3", "4", False, False),
])
def test_strict_vs_deepseek(pred, ref, strict, deepseek):
    assert is_equiv(pred, ref, compat="strict") is strict
    assert is_equiv(pred, ref, compat="deepseek") is deepseek


def test_compat_validated():
    with pytest.raises(ValueError):
        grade("\\boxed{1}", "1", compat="lenient")


def test_grade_whole_outputs_and_reference_forms():
    assert grade("We find $x=\\boxed{\\dfrac{3}{4}}$.", "\\boxed{0.75}")
    assert grade("We find $x=\\boxed{\\dfrac{3}{4}}$.", "\\frac34")
    assert not grade("We find $x=\\boxed{\\dfrac{3}{5}}$.", "\\frac34")
    r = grade_detailed("no idea", "5")
    assert r == GradeResult(False, None, "no_answer") or r.reason in ("mismatch", "no_answer")
    assert grade_detailed("I cannot solve this problem, sorry about that.", "5").reason == "no_answer"
    # several boxes vs one-item reference: correct only if every box matches
    assert not grade("$\\boxed{1}$ and $\\boxed{2}$", "2")
    assert grade("$\\boxed{28}$ or $\\boxed{28_{10}}$", "28")
    assert grade("$\\boxed{2}$, $\\boxed{1}$", "1, 2")


def test_multiple_choice():
    problem = "Which is largest? $\\textbf{(A)}\\ 10 \\qquad \\textbf{(B)}\\ 12 \\qquad \\textbf{(C)}\\ 14$"
    assert grade("The answer is (B).", "B")
    assert grade("The answer is B) 12", "\\text{(B)}")
    assert grade("\\boxed{B}", "(B)")
    assert not grade("\\boxed{C}", "(B)")
    assert grade("so the largest is $\\boxed{14}$", "C", problem=problem)
    assert not grade("so the largest is $\\boxed{12}$", "C", problem=problem)
    assert not grade("\\boxed{B}", "B", choices=False) is False  # plain string equality still holds
    assert grade("answer: (D) is right, so \\boxed{D}", "D", choices=True)


# ---------------------------------------------------------------------------------------------- adversarial
ADVERSARIAL = [
    "\\boxed{" + "(" * 500 + "1" + ")" * 500 + "}",  # deep nesting
    "\\boxed{" + "{" * 500 + "x" + "}" * 500 + "}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{1000!}",
    "\\boxed{\\frac{1}{2}",  # unbalanced
    "\\boxed{}}}{{{\\frac{",
    "\\boxed{2^{99999999999}}",
    "\\boxed{9^{9^{9^{9}}}-x}",
    "\\boxed{\\left(\\right(\\sqrt{\\sqrt{\\sqrt}}}",
]


def test_adversarial_inputs_return_within_timeout_and_are_counted():
    grading.reset_grading_stats()
    timeout = 1.0
    for text in ADVERSARIAL:
        t0 = time.monotonic()
        res = grade_detailed(text, "5", timeout=timeout)
        took = time.monotonic() - t0
        assert isinstance(res, GradeResult)
        assert res.correct is False
        assert res.reason in ("mismatch", "timeout", "error")
        # generous bound (not a timing test): a worker restart may add its start-up time
        assert took < timeout + 30
    stats = grading.grading_stats()
    assert stats.get("timeout", 0) >= 1  # 10^{10^{10}} cannot be decided within a second
    assert grade("\\boxed{10^{10^{10}}}", "10^{10^{10}}")  # string equality needs no sympy
    r = grade_detailed("\\boxed{10^{10^{10}}}", "10^{10^{10}}+1", timeout=0.5)
    assert r.reason in ("timeout", "mismatch") and r.correct is False


# ---------------------------------------------------------------------------------------------- batch
def test_batch_equals_single():
    pairs = read_jsonl(PAIRS)[:60]
    preds = [p["prediction"] for p in pairs] + ["\\boxed{10^{10^{10}}}", "\\boxed{\\sin^2 x+\\cos^2 x}"]
    refs = [p["reference"] for p in pairs] + ["7", "1"]
    probs = [p.get("problem") for p in pairs] + [None, None]
    batch = grade_batch(preds, refs, probs, timeout=3.0, workers=2)
    single = [grade_detailed(p, r, q, timeout=3.0) for p, r, q in zip(preds, refs, probs)]
    assert [b.correct for b in batch] == [s.correct for s in single]
    assert [b.extracted for b in batch] == [s.extracted for s in single]
    assert batch[-2].reason == "timeout" and batch[-1].correct
    with pytest.raises(ValueError):
        grade_batch(["1"], [])


# ---------------------------------------------------------------------------------------------- data
def test_math500_solutions_agree_with_their_separate_answers():
    # MATH-500 ships each reference answer in its own field (PRM800K), independent of the solution text: the
    # grader must find that answer in the worked solution, and must reject another problem's answer.
    rows = read_jsonl(require("math/math500_test.jsonl"))
    preds = [r["solution"] for r in rows]
    results = grade_batch(preds, [r["answer"] for r in rows])
    bad = [r["unique_id"] for r, g in zip(rows, results) if not g.correct]
    # The one miss boxes two forms of the answer ("15\\frac{39}{40}, \\frac{639}{40}").
    assert bad == ["test/number_theory/459.json"], bad
    shifted = grade_batch(preds, [rows[(i + 1) % len(rows)]["answer"] for i in range(len(rows))])
    assert sum(g.correct for g in shifted) <= 5


def test_agreement_on_pairs():
    pairs = read_jsonl(PAIRS)
    assert len(pairs) >= 150
    assert {p["expected"] for p in pairs} == {True, False}
    assert all(not str(p["source"]).startswith("test/") for p in pairs)  # train split only
    by_compat: dict[str, list] = {}
    for p in pairs:
        by_compat.setdefault(p.get("compat", "strict"), []).append(p)
    ok = 0
    wrong = []
    for compat, items in by_compat.items():
        res = grade_batch([p["prediction"] for p in items], [p["reference"] for p in items],
                          [p.get("problem") for p in items], compat=compat)
        for p, g in zip(items, res):
            if g.correct == p["expected"]:
                ok += 1
            else:
                wrong.append((p["note"], p["prediction"][-60:], p["reference"]))
    assert ok / len(pairs) >= 0.98, wrong[:10]
