"""Answer grading for math benchmarks (DeepSeekMath §3 evaluation): extract, normalise, compare.

Pipeline for one item ``grade(prediction, reference)``:

1. **Extraction** (:func:`extract_answer`), routes tried in the paper's evaluation order:
   ``final answer is $…$. I hope`` (Minerva few-shot format) → ``\\boxed{…}`` / ``\\fbox{…}``
   (brace-matched) → ``he answer is …`` / ``答案是…`` (CMATH) → the last ````output`` program block →
   a *bare answer* (the whole text when it is short and not prose, e.g. ``"\\frac{1}{2}"``) → the last
   number. Several boxes: the last box, except that a final *run* of boxes separated only by list
   separators (``,`` ``;`` ``and`` ``or`` ``\\quad``, optionally ``x =``) is joined with ``", "``, so
   ``$\\boxed{1}$ and $\\boxed{2}$`` gives ``"1, 2"`` (a list answer); repeated identical boxes collapse.
   A joined list compared with a single-item reference is correct only if *every* item equals it.
2. **Normalisation** (:func:`normalize_answer`): units/``\\text{ cm}``, ``\\left``/``\\right``, spacing
   commands, ``\\tfrac``/``\\dfrac``, ``\\frac12``, degrees, ``%``, ``$``, thousands commas, trailing ``.0``,
   leading ``x =``, mixed numbers (``2\\frac{1}{2}`` → ``\\frac{5}{2}``), ….
3. **Equivalence** (:func:`is_equiv`): normalised strings equal → structure (tuples / intervals with
   bracket type, sets and comma lists order-insensitive, ``\\cup`` unions, matrices cell-wise, ``a=b`` as
   ``a-b`` up to a non-zero factor, ``\\pm`` expanded) → leaves: exact rationals via :mod:`fractions`
   (``1/460`` ≠ ``1/462``), decimals with 1e-3 *relative* tolerance, a small float/complex evaluator for
   closed forms (``\\sqrt``, ``\\pi``, ``i``, powers; expressions in one-letter variables are compared at
   random points) → otherwise sympy on ``latex2sympy2_extended`` parses, run in a persistent worker
   process under a hard per-item timeout (the worker is killed and restarted on timeout; a timeout is
   wrong and counted in :func:`grading_stats`).

``compat="deepseek"`` reproduces the DeepSeek-Math evaluator's leniency: percentages ×100/÷100 accepted,
interval bracket types ignored, *absolute* 1e-3 numeric tolerance (so ``1/460`` == ``1/462`` there).

Workers: symbolic checks run in persistent processes started with ``fork`` on Linux (sympy is imported
and warmed in the parent first, so a restart after a timeout takes milliseconds); set
``DSM_GRADING_START_METHOD=spawn`` (or ``forkserver``) to change that. :func:`grading_stats` counts items,
symbolic checks, timeouts and errors; :func:`shutdown_workers` stops the workers.

Multiple choice: ``choices=True`` (or ``None`` = auto: the reference is a single letter A–J, possibly
``(B)`` / ``\\text{(B)}``) compares option letters; ``(B)``, ``B)``, ``B.``, ``B`` and ``(B) 12`` all read
as ``B``; a non-letter prediction is mapped to a letter through the options parsed from ``problem``.
"""
from __future__ import annotations

import atexit
import cmath
import math
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

__all__ = [
    "GradeResult", "grade", "grade_detailed", "grade_batch", "extract_answer", "normalize_answer",
    "is_equiv", "grading_stats", "reset_grading_stats", "shutdown_workers",
]

COMPATS = ("strict", "deepseek")
REL_TOL = 1e-3  # strict: decimals vs anything (the model rounded)
EXACT_REL_TOL = 1e-9  # strict: float evaluation of two exact closed forms
DEEPSEEK_ABS_TOL = 1e-3
_MAX_FAST_LEN = 400  # longer answers skip the hand-written evaluator
_MAX_FAST_DEPTH = 40


@dataclass
class GradeResult:
    """Outcome of grading one item: ``reason`` is match / mismatch / no_answer / timeout / error."""

    correct: bool
    extracted: Optional[str]
    reason: str


# --------------------------------------------------------------------------------------------------
# statistics (how often the symbolic worker was needed, timeouts)
_STATS: Counter = Counter()


def grading_stats() -> dict:
    """Counters since the last reset: ``items``, ``symbolic`` (sent to sympy), ``timeout``, ``error``."""
    return dict(_STATS)


def reset_grading_stats() -> None:
    """Zero the counters of :func:`grading_stats`."""
    _STATS.clear()


# --------------------------------------------------------------------------------------------------
# extraction

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")


def _match_brace(s: str, i: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``s[i]`` (escaped ``\\{`` ``\\}`` ignored), or -1."""
    depth = 0
    j = i
    n = len(s)
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _find_boxes(text: str) -> list[tuple[int, int, str]]:
    """All ``\\boxed{…}`` / ``\\fbox{…}`` / ``\\boxed 5`` spans as (start, end, content)."""
    out = []
    for m in _BOX_RE.finditer(text):
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            k = _match_brace(text, j)
            if k < 0:  # unbalanced: take the rest, it is the best guess
                out.append((m.start(), len(text), text[j + 1:]))
                continue
            out.append((m.start(), k + 1, text[j + 1:k]))
        elif j > m.end():  # "\boxed 5"
            mm = re.match(r"[^\s$.,]+", text[j:])
            if mm:
                out.append((m.start(), j + mm.end(), mm.group(0)))
    return out


_SEP_RE = re.compile(
    r"^(?:\s|\$|\\\(|\\\)|\\\[|\\\]|,|;|\\quad|\\qquad|\\text\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b|"
    r"(?:\\?[A-Za-z](?:_\{?\w+\}?)?|\\[a-z]+)\s*=)*$"
)


def _join_boxes(text: str, boxes: list[tuple[int, int, str]]) -> str:
    """The last box, or the final run of boxes separated only by list separators joined by ', '."""
    run = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        gap = text[prev[1]:run[0][0]]
        if len(gap) > 40 or not _SEP_RE.match(gap) or not re.search(r",|;|\band\b|\bor\b|quad", gap):
            break
        run.insert(0, prev)
    items: list[str] = []
    for _, _, c in run:
        c = c.strip()
        if c not in items:
            items.append(c)
    return ", ".join(items)


def _boxed_answer(text: str) -> Optional[str]:
    boxes = _find_boxes(text)
    if not boxes:
        return None
    return _join_boxes(text, boxes)


_NUM_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")


def _is_prose(s: str) -> bool:
    """Three or more plain words (LaTeX commands and \\text{} wrappers aside) read as a sentence."""
    return len(_WORD_RE.findall(re.sub(r"\\[A-Za-z]+", " ", s))) >= 3


def _answer_is_segment(seg: str) -> Optional[str]:
    """Text after 'the answer is' up to the end of the sentence; the math inside ``$…$`` if any."""
    seg = seg.lstrip(" :：\t")
    m = re.match(r"\$\$?(.+?)\$\$?", seg, re.S) or re.match(r"\\\((.+?)\\\)", seg, re.S) or re.match(
        r"\\\[(.+?)\\\]", seg, re.S)
    if m:
        return m.group(1).strip()
    seg = re.split(r"\n|\.(?:\s|$)|。|\$\.", seg, maxsplit=1)[0]
    seg = seg.strip().rstrip(".。")
    return seg or None


def extract_answer(text: str) -> str | None:
    """Final answer of a model output (raw LaTeX, not normalised), or None when nothing is found.

    Routes, first hit wins: ``final answer is $X$. I hope`` → boxes (see module doc for several boxes)
    → ``he answer is X`` / ``答案是X`` (last occurrence) → last ````output`` block → bare short
    answer → last number.
    """
    if not text:
        return None
    m = None
    for m in re.finditer(r"final answer is\s*\$(.+?)\$\s*\.?\s*I hope", text, re.S):
        pass
    if m is not None:
        return m.group(1).strip()
    boxed = _boxed_answer(text)
    if boxed is not None:
        return boxed
    last = max(text.rfind("he answer is"), text.rfind("答案是"))
    if last >= 0:
        start = last + (len("he answer is") if text.startswith("he answer is", last) else len("答案是"))
        seg = _answer_is_segment(text[start:])
        if seg:
            return seg
    blocks = re.findall(r"```output\s*\n(.*?)(?:```|$)", text, re.S)
    if blocks:
        lines = [ln.strip() for ln in blocks[-1].strip().splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    stripped = text.strip().strip("$").strip()
    if stripped and len(stripped) <= 80 and "\n" not in stripped and not _is_prose(stripped):
        return stripped
    nums = _NUM_RE.findall(text)
    if nums:
        return nums[-1]
    return None


def _reference_answer(reference: str) -> str:
    """A reference answer: the content of its box(es) when boxed, else the string itself."""
    ref = reference.strip()
    if _BOX_RE.search(ref):
        b = _boxed_answer(ref)
        if b is not None:
            return b
    return ref


# --------------------------------------------------------------------------------------------------
# normalisation

_UNIT_WORDS = set("""
cm mm km m meter meters metre metres centimeter centimeters millimeter millimeters kilometer kilometers
in inch inches ft foot feet yd yard yards mile miles mi unit units sq square cubic degree degrees deg
dollar dollars cent cents hour hours hr hrs h minute minutes min mins second seconds sec secs s day days
week weeks month months year years mph kmh kg g gram grams pound pounds lb lbs ounce ounces oz liter
liters litre litres l ml gallon gallons quart quarts pint pints cup cups people person persons student
students way ways point points coin coins marble marbles book books page pages ticket tickets
cookie cookies apple apples hand handshakes handshake game games time times child children boy boys girl
girls men women tile tiles term terms digit digits integer integers number numbers box boxes mph kph
km/h m/s ft/s radian radians rad percent per of area volume units^2 yen euro euros rupee rupees
""".split())


def _is_unit_phrase(t: str) -> bool:
    t = re.sub(r"\^\{?[23]\}?|[.]", " ", t.lower())
    words = t.split()
    return bool(words) and all(w in _UNIT_WORDS for w in words)


_TEXT_CMD = r"\\(?:text|textbf|textit|textrm|textnormal|textsf|texttt|mbox|mathrm|mathbf|mathit|mathsf|" \
            r"mathtt|mathnormal|operatorname|emph|boldsymbol|bm)"
_TEXT_UNIT_RE = re.compile(_TEXT_CMD + r"\s*\{([^{}]*)\}(\s*\^\s*\{?[23]\}?)?")
_TEXT_WRAP_RE = re.compile(_TEXT_CMD + r"\s*\{([^{}]*)\}")


def _strip_outer(s: str, left: str, right: str) -> str:
    if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
        inner = s[len(left):len(s) - len(right)]
        if left == "{" and _match_brace(s, 0) != len(s) - 1:
            return s
        return inner.strip()
    return s


def _fix_fracs(s: str) -> str:
    r"""``\frac12`` → ``\frac{1}{2}``, ``\frac1{x}``, ``\frac{a}2``, ``\sqrt2`` → ``\sqrt{2}``."""
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*([0-9a-zA-Z])", r"\\frac\1{\2}", s)
    s = re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)
    return s


_LHS_RE = re.compile(
    r"^\s*(?:\\?[A-Za-z]+(?:_\{?[\w]+\}?)?(?:\([^=()]*\))?|\([A-Za-z,\s]+\)|\\[a-z]+)\s*(?:=|\\in)\s*(?=\S)")


def _strip_lhs(s: str) -> str:
    """``x = 5`` → ``5``, ``f(2) = 7`` → ``7``, ``(x, y) = (1, 2)`` → ``(1,2)``, ``x \\in [0,1]`` → …"""
    m = _LHS_RE.match(s)
    if m and "=" not in s[m.end():] and not re.match(r"\\(?:frac|sqrt|pi|infty)", s.lstrip()):
        return s[m.end():]
    return s


def _strip_units(s: str) -> str:
    def text_unit(m: re.Match) -> str:
        before = s[:m.start()].strip()
        if before and _is_unit_phrase(m.group(1)):
            return ""
        return m.group(0)

    s = _TEXT_UNIT_RE.sub(text_unit, s)
    s = _TEXT_WRAP_RE.sub(lambda m: m.group(1), s)
    s = _TEXT_WRAP_RE.sub(lambda m: m.group(1), s)  # one more level of nesting
    # plain trailing unit words after a number: "5 cm", "12 square inches", "3 dollars"
    m = re.match(r"^(.*?[\d}.)])\s+([A-Za-z][A-Za-z ./]*?(?:\^\{?[23]\}?)?)\s*$", s)
    if m and _is_unit_phrase(m.group(2)):
        s = m.group(1)
    # CJK unit after a number (CMATH): "12元", "5个"
    s = re.sub(r"^([-\d.,/\s]+)[\u4e00-\u9fff]{1,3}$", r"\1", s)
    return s


def _mixed_to_frac(s: str) -> str:
    m = re.fullmatch(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}", s)
    if m and int(m.group(4)) != 0 and int(m.group(3)) < int(m.group(4)):
        v = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return f"{m.group(1)}\\frac{{{v.numerator}}}{{{v.denominator}}}"
    return s


def normalize_answer(ans: str) -> str:
    """Canonical string form of an extracted answer (see the module doc for the rules)."""
    if ans is None:
        return ""
    s = str(ans).strip()
    s = s.replace("\n", " ").replace("\u2212", "-").replace("\u00b7", "\\cdot ").replace("\u00d7", "\\times ")
    s = s.replace("\uff0c", ",").replace("\u3002", "").replace("\uff1a", ":")
    # math delimiters
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        s = _strip_outer(s, left, right)
    s = s.replace("\\$", "").replace("$", "")
    if _BOX_RE.match(s):
        b = _boxed_answer(s)
        s = b if b is not None else s
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\right\s*\.", "", s)
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![A-Za-z])", "", s)
    s = re.sub(r"\\(?:displaystyle|textstyle|limits|mathstrut|strut)(?![A-Za-z])", "", s)
    s = re.sub(r"\\\\|\\[!,;:> ]|\\q?quad(?![A-Za-z])|~", lambda m: m.group(0) if m.group(0) == "\\\\" else " ", s)
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    # degrees and percent
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree(?![A-Za-z])", "", s)
    s = re.sub(r"\\text\{\s*(?:degrees?|deg)\s*\}", "", s)
    s = re.sub(r"\\?%|\\text\{\s*percent\s*\}", "", s)
    s = _strip_units(s).strip()
    s = re.sub(r"\s+(?:and|or)\s+|\\text\{\s*(?:and|or)\s*\}", ",", s)
    s = s.strip().rstrip(".,;").rstrip("\\").strip()
    s = re.sub(r"\\(?:dots|ldots|cdots)", r"\\dots", s)
    s = re.sub(r"\\le(?![A-Za-z])", r"\\leq", s)
    s = re.sub(r"\\ge(?![A-Za-z])", r"\\geq", s)
    s = re.sub(r"\\ne(?![A-Za-z])", r"\\neq", s)
    s = re.sub(r"\\varnothing|\\O(?![A-Za-z])", r"\\emptyset", s)
    s = re.sub(r"\\inf(?:ty)?(?![A-Za-z])|∞", r"\\infty", s)
    s = re.sub(r"\binfinity\b", r"\\infty", s)
    s = _fix_fracs(s)
    # "\log_2 5", "x^2 y": brace one-character scripts before spaces go
    s = re.sub(r"([_^])([A-Za-z0-9])(?=\s)", r"\1{\2}", s)
    s = re.sub(r"^(?:\\approx|\\sim|=)\s*", "", s)
    # whitespace: drop it except where it separates a command from a following letter
    s = re.sub(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])", lambda m: m.group(1) + "\x00", s)
    s = re.sub(r"\s+", "", s).replace("\x00", " ")
    s = s.replace("{,}", "")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    s = _strip_lhs(s)
    prev = None
    while prev != s:  # "{{5}}" -> "5"
        prev, s = s, _strip_outer(s, "{", "}")
    if s.startswith("+") and len(s) > 1:
        s = s[1:]
    # numbers: leading ".5", trailing ".0" / zeros after the point
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)
    s = re.sub(r"(\d)\.0+(?![\d])", r"\1", s)
    s = re.sub(r"(\d\.\d*?[1-9])0+(?![\d])", r"\1", s)
    s = _mixed_to_frac(s)
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1]
    return s


# --------------------------------------------------------------------------------------------------
# structure: split an answer into tuples / sets / lists / matrices / equations


def _depth_ok(s: str, limit: int = _MAX_FAST_DEPTH) -> bool:
    d = 0
    for c in s:
        if c in "({[":
            d += 1
            if d > limit:
                return False
        elif c in ")}]":
            d -= 1
    return True


def _split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` outside any (), [], {}, \\{\\} nesting."""
    parts, depth, start, i, n = [], 0, 0, 0, len(s)
    ls = len(sep)
    while i < n:
        c = s[i]
        if c == "\\":
            if depth == 0 and s.startswith(sep, i) and sep.startswith("\\") and not s[i + ls:i + ls + 1].isalpha():
                parts.append(s[start:i])
                i += ls
                start = i
                continue
            if s.startswith("\\{", i):
                depth += 1
            elif s.startswith("\\}", i):
                depth -= 1
            i += 2 if i + 1 < n and not s[i + 1].isalpha() else 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += ls
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _wrapped(s: str) -> bool:
    """True when the bracket at s[0] closes exactly at s[-1] (any of ( [ against ) ])."""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return depth == 0


_MATRIX_RE = re.compile(r"^\\begin\{([pbvBV]?matrix|array|smallmatrix)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.S)


def _expand_pm(item: str) -> list[str]:
    if "\\pm" not in item and "\\mp" not in item:
        return [item]
    m = re.search(r"\\(pm|mp)(?![A-Za-z])", item)
    if not m:
        return [item]
    a, b = ("+", "-") if m.group(1) == "pm" else ("-", "+")
    head, tail = item[:m.start()], item[m.end():]
    out = []
    for sign in (a, b):
        out.extend(_expand_pm(head + sign + tail))
    return out


def _structure(s: str):
    """Parse a normalised answer into a small tree: ("leaf", s) / ("list", kind, [..]) / ("seq", brackets, [..])
    / ("matrix", rows) / ("union", [..]) / ("eq", lhs, rhs)."""
    s = s.strip()
    m = _MATRIX_RE.match(s)
    if m:
        body = m.group(2).strip().rstrip("\\").strip()
        rows = [[c.strip() for c in r.split("&")] for r in re.split(r"\\\\", body) if r.strip()]
        return ("matrix", rows)
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        items = [x.strip() for x in _split_top(inner, ",") if x.strip()]
        return ("list", "set", [_structure(x) for it in items for x in _expand_pm(_strip_lhs(it))])
    parts = _split_top(s, "\\cup")
    if len(parts) > 1:
        return ("union", [_structure(p) for p in parts])
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _wrapped(s):
        items = _split_top(s[1:-1], ",")
        if len(items) > 1:
            return ("seq", s[0] + s[-1], [_structure(x) for x in items])
    if s.startswith("\\langle") and s.endswith("\\rangle"):
        items = _split_top(s[len("\\langle"):-len("\\rangle")], ",")
        return ("seq", "()", [_structure(x) for x in items])
    items = [x for x in _split_top(s, ",") if x.strip()]
    if len(items) > 1 or (items and ("\\pm" in s or "\\mp" in s)):
        flat = [x for it in items for x in _expand_pm(_strip_lhs(it.strip()))]
        if len(flat) > 1:
            return ("list", "list", [_structure(x) for x in flat])
        s = flat[0] if flat else s
    eq = _split_top(s, "=")
    if len(eq) == 2 and eq[0] and eq[1]:
        return ("eq", eq[0], eq[1])
    return ("leaf", s)


# --------------------------------------------------------------------------------------------------
# leaves: exact numbers, then a small evaluator

_INT_RE = re.compile(r"-?\d+")
_DEC_RE = re.compile(r"-?\d*\.\d+")


def _parse_number(s: str) -> Optional[tuple[Fraction | float, bool]]:
    """(value, is_decimal) for integers, decimals, a/b, \\frac{a}{b}, -\\frac{a}{b}, \\pm\\infty; else None."""
    s = s.strip()
    if _INT_RE.fullmatch(s):
        return Fraction(int(s)), False
    if _DEC_RE.fullmatch(s):
        return Fraction(s), True
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s) or re.fullmatch(r"(-?)\(?(-?\d+)\)?/\(?(-?\d+)\)?", s)
    if m and int(m.group(3)) != 0:
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return (-v if m.group(1) else v), False
    m = re.fullmatch(r"(-?)\\frac\{(-?\d*\.?\d+)\}\{(-?\d*\.?\d+)\}", s)
    if m and float(m.group(3)) != 0:
        v = Fraction(m.group(2)) / Fraction(m.group(3))
        return (-v if m.group(1) else v), True
    m = re.fullmatch(r"([-+]?)\\infty", s)
    if m:
        return (float("-inf") if m.group(1) == "-" else float("inf")), False
    return None


def _close(a: complex, b: complex, rel: float, abs_tol: float = 0.0) -> bool:
    if a == b:
        return True
    if any(map(math.isinf, (a.real, a.imag, b.real, b.imag))):
        return False
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)


def _num_equal(a, b, a_dec: bool, b_dec: bool, compat: str) -> bool:
    if compat == "deepseek":
        if isinstance(a, float) or isinstance(b, float):
            return a == b
        fa, fb = float(a), float(b)
        cands = [fa, fa * 100, fa / 100]
        return any(abs(c - fb) <= DEEPSEEK_ABS_TOL for c in cands)
    if a == b:
        return True
    if isinstance(a, float) or isinstance(b, float):
        return False
    if a_dec or b_dec:
        # an integer is exact: 999.5 is not 1000 even though it is within 1e-3 relative
        if (not a_dec and a.denominator == 1) or (not b_dec and b.denominator == 1):
            return False
        return _close(complex(float(a)), complex(float(b)), REL_TOL)
    return False  # two exact rationals that differ


class _Bail(Exception):
    """The mini evaluator cannot handle this input (fall back to sympy)."""


_TOK_RE = re.compile(r"\d+\.\d*|\.\d+|\d+|\\[A-Za-z]+|\\.|[A-Za-z]|\S")
_FUNCS = {"\\sin": cmath.sin, "\\cos": cmath.cos, "\\tan": cmath.tan, "\\ln": cmath.log, "\\exp": cmath.exp,
          "\\sec": lambda x: 1 / cmath.cos(x), "\\csc": lambda x: 1 / cmath.sin(x),
          "\\cot": lambda x: 1 / cmath.tan(x)}
_GREEK = ("\\alpha", "\\beta", "\\gamma", "\\delta", "\\theta", "\\phi", "\\varphi", "\\lambda", "\\mu",
          "\\omega", "\\sigma", "\\tau", "\\rho", "\\psi", "\\epsilon", "\\varepsilon")


class _Evaluator:
    """Recursive-descent evaluator for a small LaTeX subset to complex floats.

    Supports numbers, + - * / ^, \\cdot \\times \\div, \\frac, \\sqrt[n]{}, \\pi, i, parentheses/braces,
    implicit multiplication, n!, one-letter variables (values from ``env``), and a few functions with an
    explicit argument group.  Anything else raises :class:`_Bail`.
    """

    def __init__(self, s: str, env: dict[str, complex], exact: bool = False):
        self.toks = _TOK_RE.findall(s)
        self.i = 0
        self.env = env
        self.exact = exact  # exact mode: Fractions only (integers, + - * / ^int, !), else bail
        self.vars: set[str] = set()

    def num(self, t: str):
        return Fraction(t) if self.exact else complex(float(t))

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, t=None):
        tok = self.peek()
        if tok is None or (t is not None and tok != t):
            raise _Bail(f"expected {t}")
        self.i += 1
        return tok

    def run(self) -> complex:
        v = self.expr()
        if self.peek() is not None:
            raise _Bail("trailing")
        return v

    def expr(self) -> complex:
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            w = self.term()
            v = v + w if op == "+" else v - w
        return v

    def term(self) -> complex:
        v = self.unary()
        while True:
            t = self.peek()
            if t in ("*", "\\cdot", "\\times"):
                self.take()
                v = v * self.unary()
            elif t in ("/", "\\div"):
                self.take()
                d = self.unary()
                if d == 0:
                    raise _Bail("div0")
                v = v / d
            elif t is not None and self._starts_atom(t):
                v = v * self.power()
            else:
                return v

    @staticmethod
    def _starts_atom(t: str) -> bool:
        return (t[0].isdigit() or t[0] == "." or t in ("(", "{", "\\frac", "\\sqrt", "\\pi")
                or (len(t) == 1 and t.isalpha()) or t in _FUNCS or t in _GREEK)

    def unary(self) -> complex:
        t = self.peek()
        if t == "-":
            self.take()
            return -self.unary()
        if t == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> complex:
        base = self.postfix()
        if self.peek() == "^":
            self.take()
            if self.peek() == "-":  # x^-1
                self.take()
                ex = -self.group()
            else:
                ex = self.group()
            if self.exact:
                if ex.denominator != 1 or (base == 0 and ex <= 0):
                    raise _Bail("exact power")
                bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length())
                if bits * abs(ex) > 200_000:
                    raise _Bail("huge power")
                return base ** int(ex)
            if abs(ex) > 300 or (abs(base) > 1e6 and abs(ex) > 30):
                raise _Bail("huge power")
            try:
                if base == 0 and ex.real <= 0:
                    raise _Bail("0^neg")
                if ex.imag == 0 and ex.real == int(ex.real) and base.imag == 0:
                    return complex(base.real ** int(ex.real))
                return base ** ex
            except (OverflowError, ZeroDivisionError):
                raise _Bail("overflow") from None
        return base

    def postfix(self) -> complex:
        v = self.atom()
        while self.peek() == "!":
            self.take()
            if self.exact:
                if v.denominator != 1 or not 0 <= v <= 2000:
                    raise _Bail("factorial")
                v = Fraction(math.factorial(int(v)))
                continue
            if v.imag != 0 or v.real != int(v.real) or not 0 <= v.real <= 170:
                raise _Bail("factorial")
            v = complex(math.factorial(int(v.real)))
        return v

    def group(self) -> complex:
        """A braced group or a single token (for ^ and \\frac/\\sqrt arguments)."""
        t = self.peek()
        if t == "{":
            self.take()
            v = self.expr()
            self.take("}")
            return v
        if t is not None and t[0].isdigit():  # x^23 means x^{2}3 in TeX; single digit only
            self.take()
            if len(t) > 1 and "." not in t:
                self.toks.insert(self.i, t[1:])
                t = t[0]
            return self.num(t)
        return self.atom()

    def atom(self) -> complex:
        t = self.peek()
        if t is None:
            raise _Bail("eof")
        if t[0].isdigit() or t[0] == ".":
            self.take()
            return self.num(t)
        if self.exact and t not in ("(", "{", "[", "\\frac"):
            raise _Bail("not exact")
        if t in ("(", "{", "["):
            self.take()
            v = self.expr()
            self.take({"(": ")", "{": "}", "[": "]"}[t])
            return v
        if t == "\\frac":
            self.take()
            a = self.group()
            b = self.group()
            if b == 0:
                raise _Bail("div0")
            return a / b
        if t == "\\sqrt":
            self.take()
            n = 2.0
            if self.peek() == "[":
                self.take()
                n = self.expr()
                self.take("]")
            x = self.group()
            if n == 2:
                return cmath.sqrt(x)
            if x.imag == 0 and x.real < 0 and n.imag == 0 and n.real % 2 == 1:
                return -complex((-x.real) ** (1 / n.real))
            return x ** (1 / n)
        if t == "\\pi":
            self.take()
            return complex(math.pi)
        if t in _FUNCS:
            self.take()
            if self.peek() in ("(", "{"):
                x = self.atom()
            else:  # "\sec x", "\csc 11": one bare token, unless more factors follow ("\sin 2x" is ambiguous)
                nxt = self.peek()
                if nxt is None or not (nxt[0].isdigit() or (len(nxt) == 1 and nxt.isalpha()) or nxt in _GREEK):
                    raise _Bail("func arg")
                x = self.atom()
                after = self.peek()
                if after is not None and (self._starts_atom(after) or after == "^"):
                    raise _Bail("ambiguous func arg")
            try:
                return complex(_FUNCS[t](x))
            except (ValueError, OverflowError):
                raise _Bail("func") from None
        if t in _GREEK and t in self.env:
            self.take()
            self.vars.add(t)
            return self.env[t]
        if len(t) == 1 and t.isalpha():
            self.take()
            if t == "i":
                return 1j
            if t == "e":  # in final answers e is Euler's number
                return complex(math.e)
            if t not in self.env:
                raise _Bail("var")
            self.vars.add(t)
            return self.env[t]
        raise _Bail(f"token {t}")


_VAR_NAMES = list("abcdfghjklmnopqrstuvwxyz") + [g for g in _GREEK]
_ENVS = [
    {c: complex(v) for c, v in zip(_VAR_NAMES, r)}
    for r in ([random.Random(seed).uniform(0.31, 2.7) for _ in range(len(_VAR_NAMES))] for seed in (11, 23))
]


def _evaluate(s: str, env_idx: int) -> Optional[tuple[complex, bool]]:
    """(value, uses_variables) or None when the evaluator cannot handle ``s``."""
    if len(s) > _MAX_FAST_LEN or not _depth_ok(s) or re.search(r"[A-Za-z]{4,}", re.sub(r"\\[A-Za-z]+", "", s)):
        return None
    try:
        ev = _Evaluator(s, _ENVS[env_idx])
        v = ev.run()
    except (_Bail, RecursionError, ValueError, OverflowError, ZeroDivisionError, TypeError):
        return None
    if any(map(math.isnan, (v.real, v.imag))) or any(map(math.isinf, (v.real, v.imag))):
        return None
    return v, bool(ev.vars)


def _exact_value(s: str) -> Optional[Fraction]:
    """Exact rational value of an integer-arithmetic expression (2^{100}-2, 10!, \\frac{1}{2^{98}}), or None."""
    if len(s) > _MAX_FAST_LEN or not _depth_ok(s) or re.search(r"[A-Za-z]", re.sub(r"\\(?:frac|cdot|times|div)", "", s)):
        return None
    if re.search(r"\d\.\d|(?<!\d)\.\d", s):
        return None
    try:
        return _Evaluator(s, {}, exact=True).run()
    except (_Bail, RecursionError, ValueError, OverflowError, ZeroDivisionError, TypeError, AttributeError):
        return None


def _round_half_up(x: Fraction, places: int) -> Fraction:
    q = Fraction(10) ** places
    v = abs(x) * q
    r = Fraction(math.floor(v + Fraction(1, 2))) / q
    return -r if x < 0 else r


def _decimals_equal(a: str, b: str, fa: Fraction, fb: Fraction) -> bool:
    """Two decimals: the longer rounded to the shorter's places gives the shorter (3.1416 ~ 3.14), and
    they agree to 1e-3 relative (so 2.46 is not 2.5)."""
    pa = len(a.split(".")[1]) if "." in a else 0
    pb = len(b.split(".")[1]) if "." in b else 0
    (short, ps), long_ = ((fa, pa), fb) if pa <= pb else ((fb, pb), fa)
    return _round_half_up(long_, ps) == short and _close(complex(float(fa)), complex(float(fb)), REL_TOL)


_NUM_WORD_RE = re.compile(r"(-?[\d.]+)([A-Za-z]{4,})")
_CLOCK_RE = re.compile(r"\d+(?::\d+)+(?:[ap]\.?m\.?)?", re.I)


def _strip_zeros(s: str) -> str:
    return re.sub(r"(?<!\d)0+(?=\d)", "", s).replace(".", "")


_BASE_RE = re.compile(r"([0-9A-Za-z]+)_\{?(\d+)\}?")


def _has_decimal(s: str) -> bool:
    return bool(re.search(r"\d\.\d|(?<!\d)\.\d", s))


def _fast_leaf(a: str, b: str, compat: str) -> Optional[bool]:
    """Compare two leaves without sympy: True / False, or None when undecided."""
    if a == b:
        return True
    if not a or not b:
        return False
    na, nb = _parse_number(a), _parse_number(b)
    if na is not None and nb is not None:
        if compat == "strict" and na[1] and nb[1] and _DEC_RE.fullmatch(a) and _DEC_RE.fullmatch(b):
            return _decimals_equal(a, b, na[0], nb[0])
        return _num_equal(na[0], nb[0], na[1], nb[1], compat)
    ba, bb = _BASE_RE.fullmatch(a), _BASE_RE.fullmatch(b)
    if ba or bb:  # numbers in base n: 1103_6; a missing subscript compares the digits
        if ba and bb:
            return ba.group(1).lower() == bb.group(1).lower() and ba.group(2) == bb.group(2)
        digits, other = (ba.group(1), b) if ba else (bb.group(1), a)
        if re.fullmatch(r"[0-9A-Za-z]+", other):
            return digits.lower() == other.lower()
    ea, eb = _exact_value(a), _exact_value(b)
    if ea is not None and eb is not None:
        return _num_equal(ea, eb, False, False, compat)
    if ea is not None and nb is not None and nb[1]:
        return _num_equal(ea, nb[0], False, True, compat)
    if eb is not None and na is not None and na[1]:
        return _num_equal(na[0], eb, True, False, compat)
    if re.fullmatch(r"[A-Za-z][A-Za-z ]+", a) and re.fullmatch(r"[A-Za-z][A-Za-z ]+", b):
        return a.lower().replace(" ", "") == b.lower().replace(" ", "")  # words
    wa, wb = _NUM_WORD_RE.fullmatch(a), _NUM_WORD_RE.fullmatch(b)
    if wa and wb:  # "320000acres": a number with an unknown unit word on both sides
        if wa.group(2).lower() != wb.group(2).lower():
            return False
        return _fast_leaf(wa.group(1), wb.group(1), compat)
    if _CLOCK_RE.fullmatch(a) and _CLOCK_RE.fullmatch(b):  # times and ratios: 4:51, 3:5
        return _strip_zeros(a).lower() == _strip_zeros(b).lower()
    va, vb = _evaluate(a, 0), _evaluate(b, 0)
    if va is None or vb is None:
        return None
    if va[1] or vb[1]:  # functions of variables: compare at two random points
        if not _close(va[0], vb[0], 1e-7, 1e-9):
            return False
        va2, vb2 = _evaluate(a, 1), _evaluate(b, 1)
        if va2 is None or vb2 is None:
            return None
        return _close(va2[0], vb2[0], 1e-7, 1e-9)
    if compat == "deepseek":
        x, y = va[0], vb[0]
        return any(abs(c - y) <= DEEPSEEK_ABS_TOL for c in (x, x * 100, x / 100))
    rel = REL_TOL if (_has_decimal(a) or _has_decimal(b)) else EXACT_REL_TOL
    same = _close(va[0], vb[0], rel, 1e-12)
    if same and rel == EXACT_REL_TOL and max(abs(va[0]), abs(vb[0])) > 1e6:
        return None  # floats cannot tell 2^{40}\sqrt{2} from 2^{40}\sqrt{2}+1: ask sympy
    return same


# --------------------------------------------------------------------------------------------------
# structural comparison, generic over a leaf comparator returning True/False/None

LeafCmp = Callable[[str, str], Optional[bool]]


def _and3(vals) -> Optional[bool]:
    undecided = False
    for v in vals:
        if v is False:
            return False
        if v is None:
            undecided = True
    return None if undecided else True


def _multiset_equal(xs: list, ys: list, cmp) -> Optional[bool]:
    if len(xs) != len(ys):
        return False
    used = [False] * len(ys)
    undecided = False
    for x in xs:
        found = False
        for j, y in enumerate(ys):
            if used[j]:
                continue
            r = cmp(x, y)
            if r is True:
                used[j] = True
                found = True
                break
            if r is None:
                undecided = True
        if not found:
            return None if undecided else False
    return True


def _dedupe(items: list) -> list:
    out = []
    for it in items:
        if it not in out:
            out.append(it)
    return out


def _eq_as_leaf(l1: str, r1: str, l2: str, r2: str, leaf: LeafCmp, compat: str) -> Optional[bool]:
    """Equations are equal when (l1-r1) is a non-zero constant multiple of (l2-r2)."""
    if leaf(l1, l2) is True:
        return leaf(r1, r2)
    d1, d2 = f"({l1})-({r1})", f"({l2})-({r2})"
    ratios = []
    for k in (0, 1):
        v1, v2 = _evaluate(d1, k), _evaluate(d2, k)
        if v1 is None or v2 is None:
            return leaf(d1, d2) or leaf(d1, f"-({d2})")
        if abs(v2[0]) < 1e-12:
            return abs(v1[0]) < 1e-12 and None
        ratios.append(v1[0] / v2[0])
    return abs(ratios[0]) > 1e-12 and _close(ratios[0], ratios[1], 1e-7, 1e-12)


def _cmp_struct(p, r, leaf: LeafCmp, compat: str) -> Optional[bool]:
    kp, kr = p[0], r[0]

    def rec(x, y):
        return _cmp_struct(x, y, leaf, compat)

    if kp == "leaf" and kr == "leaf":
        return leaf(p[1], r[1])
    if kp == "list" and kr == "list":
        return _multiset_equal(_dedupe(p[2]), _dedupe(r[2]), rec)
    if kp == "list" and kr != "list":  # several boxes / alternatives vs one answer: all must match
        return _and3(rec(x, r) for x in _dedupe(p[2]))
    if kr == "list" and kp != "list":
        items = _dedupe(r[2])
        return rec(p, items[0]) if len(items) == 1 else False
    if kp == "seq" and kr == "seq":
        if len(p[2]) != len(r[2]):
            return False
        if compat == "strict" and p[1] != r[1]:
            return False
        return _and3(rec(x, y) for x, y in zip(p[2], r[2]))
    if kp == "union" and kr == "union":
        return _multiset_equal(p[1], r[1], rec)
    if kp == "matrix" and kr == "matrix":
        if len(p[1]) != len(r[1]) or any(len(a) != len(b) for a, b in zip(p[1], r[1])):
            return False
        return _and3(leaf(a, b) for ra, rb in zip(p[1], r[1]) for a, b in zip(ra, rb))
    if {kp, kr} == {"matrix", "seq"}:  # a vector written as a tuple
        mat, seq = (p, r) if kp == "matrix" else (r, p)
        cells = [c for row in mat[1] for c in row]
        if (len(mat[1]) == 1 or all(len(row) == 1 for row in mat[1])) and len(cells) == len(seq[2]):
            pairs = [("leaf", c) for c in cells]
            return _and3(rec(a, b) for a, b in zip(pairs, seq[2]))
        return False
    if kp == "eq" and kr == "eq":
        return _eq_as_leaf(p[1], p[2], r[1], r[2], leaf, compat)
    if kp == "eq" and kr == "leaf":
        return _eq_vs_stripped(p, r[1], leaf, compat)
    if kr == "eq" and kp == "leaf":
        return _eq_vs_stripped(r, p[1], leaf, compat)
    return False


def _eq_vs_stripped(eq, value: str, leaf: LeafCmp, compat: str) -> Optional[bool]:
    """An equation against an answer whose ``v =`` was stripped by normalisation ("y=2x+1" -> "2x+1"):
    try ``v = value`` for each one-letter variable of the equation that the value lacks (y first)."""
    if re.fullmatch(r"[A-Za-z]", eq[1]):
        return leaf(eq[2], value)
    letters = sorted(set(re.findall(r"(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])", eq[1] + eq[2])) - set(value),
                     key=lambda c: (c != "y", c))
    undecided = False
    for v in letters[:3]:
        res = _eq_as_leaf(eq[1], eq[2], v, value, leaf, compat)
        if res:
            return True
        undecided |= res is None
    return None if undecided else False


# --------------------------------------------------------------------------------------------------
# multiple choice

_LETTER_RE = re.compile(r"^\(?([A-J])\)?(?:[.:]|\)|$|\s)")


def _choice_letter(s: Optional[str]) -> Optional[str]:
    if s is None:
        return None
    t = re.sub(_TEXT_CMD + r"\s*\{([^{}]*)\}", r"\1", s).strip().strip("$").strip()
    t = re.sub(r"^(?:option|choice|answer)\s*:?\s*", "", t, flags=re.I)
    m = re.match(r"^\(([A-J])\)", t) or re.match(r"^([A-J])(?:\)|[.:]|$|\s)", t)
    return m.group(1) if m else None


def _parse_options(problem: Optional[str]) -> dict[str, str]:
    if not problem:
        return {}
    problem = re.sub(_TEXT_CMD + r"\s*\{([^{}]*)\}", r"\1", problem)
    problem = re.sub(r"\\q?quad(?![A-Za-z])|\\[ ,;!]|\$|\\\\", " ", problem)
    opts = {}
    for m in re.finditer(r"(?:\(([A-J])\)|(?<![A-Za-z])([A-J])[.:)])\s*(.+?)(?=(?:\s*(?:\([A-J]\)|(?<![A-Za-z])[A-J][.:)]\s))|$)",
                         problem, re.S):
        letter = m.group(1) or m.group(2)
        text = m.group(3).strip().strip("$").strip()
        if letter not in opts and text:
            opts[letter] = text.splitlines()[0].strip().rstrip(",;").strip().strip("$")
    return opts


def _grade_choice(prediction: str, ref_letter: str, problem: Optional[str], compat: str) -> GradeResult:
    extracted = extract_answer(prediction)
    letter = _choice_letter(extracted)
    if letter is None and extracted is not None:
        opts = _parse_options(problem)
        for k, v in opts.items():
            if _fast_verdict(normalize_answer(extracted), normalize_answer(v), compat) is True:
                letter = k
                break
    if letter is None:  # last "(B)" anywhere in the text
        found = re.findall(r"\(([A-J])\)", prediction or "")
        letter = found[-1] if found else None
    if letter is None:
        return GradeResult(False, extracted, "no_answer" if extracted is None else "mismatch")
    ok = letter == ref_letter
    return GradeResult(ok, extracted if extracted is not None else letter, "match" if ok else "mismatch")


# --------------------------------------------------------------------------------------------------
# the fast verdict and the symbolic worker


def _fast_verdict(p: str, r: str, compat: str) -> Optional[bool]:
    """Normalised answers p, r: True/False decided without sympy, or None (needs the symbolic worker)."""
    if p == r:
        return True
    if not p or not r:
        return False
    try:
        return _cmp_struct(_structure(p), _structure(r), lambda a, b: _fast_leaf(a, b, compat), compat)
    except RecursionError:
        return None


def _sympy_numbers_equal(ea, eb, compat: str) -> bool:
    """Two constant sympy expressions: exact for exact forms, tolerances as in the fast path.

    Values are compared as 60-digit sympy Floats (never Python floats, which overflow to inf)."""
    import sympy

    if isinstance(ea, sympy.Rational) and isinstance(eb, sympy.Rational) and compat == "strict":
        return bool(ea == eb)
    try:
        va, vb = sympy.N(ea, 60), sympy.N(eb, 60)
        scale = sympy.Max(sympy.Abs(va), sympy.Abs(vb))
        diff = sympy.Abs(va - vb)
    except Exception:
        return False
    if compat == "deepseek":
        return any(bool(sympy.Abs(c - vb) <= DEEPSEEK_ABS_TOL) for c in (va, va * 100, va / 100))
    if ea.has(sympy.Float) or eb.has(sympy.Float):
        return bool(diff <= REL_TOL * scale)
    try:
        if sympy.simplify(ea - eb) == 0:
            return True
    except Exception:
        pass
    if scale > 1e15:  # 60 digits cannot separate 10^{10^{10}} from 10^{10^{10}}+1
        try:
            return bool((ea - eb).equals(0))
        except Exception:
            return False
    return bool(diff <= sympy.Float(10) ** -45 * max(scale, 1))


def _sympy_leaf(a: str, b: str, compat: str) -> bool:
    """Symbolic leaf comparison (runs inside the worker process)."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    def parse(s):
        try:
            e = latex2sympy(s)
        except Exception:
            return None
        if isinstance(e, (list, tuple)) and len(e) == 1:
            e = e[0]
        if isinstance(e, sympy.Eq):
            e = e.lhs - e.rhs
        return e

    ea, eb = parse(a), parse(b)
    if ea is None or eb is None:
        return False
    try:
        if ea == eb:
            return True
    except Exception:
        pass
    if not (isinstance(ea, sympy.Expr) and isinstance(eb, sympy.Expr)):
        try:
            return bool(sympy.simplify(ea) == sympy.simplify(eb))
        except Exception:
            return False
    if ea.is_number and eb.is_number:
        return _sympy_numbers_equal(ea, eb, compat)
    try:
        if sympy.simplify(ea - eb) == 0:
            return True
    except Exception:
        pass
    try:  # numeric check at random points
        syms = sorted(ea.free_symbols | eb.free_symbols, key=str)
        rng = random.Random(0)
        for _ in range(3):
            sub = {s: sympy.Float(rng.uniform(0.31, 2.7)) for s in syms}
            va, vb = complex(ea.evalf(subs=sub)), complex(eb.evalf(subs=sub))
            if not _close(va, vb, 1e-7, 1e-9):
                return False
        return True
    except Exception:
        return False


def _symbolic_verdict(p: str, r: str, compat: str) -> bool:
    """Full comparison with sympy as the leaf fallback (runs inside the worker process)."""

    def leaf(a, b):
        v = _fast_leaf(a, b, compat)
        return v if v is not None else _sympy_leaf(a, b, compat)

    try:
        st_p, st_r = _structure(p), _structure(r)
    except RecursionError:
        return _sympy_leaf(p, r, compat)
    v = _cmp_struct(st_p, st_r, leaf, compat)
    if v is None or (v is False and st_p[0] == "leaf" and st_r[0] != "leaf"):
        return bool(_sympy_leaf(p, r, compat))
    return bool(v)


_WARM = False


def _warm_up() -> None:
    """Import sympy/latex2sympy and fill their caches (once per process)."""
    global _WARM
    if _WARM:
        return
    _WARM = True
    try:
        _symbolic_verdict("\\sin^{2}x+\\cos^{2}x", "1", "strict")
    except Exception:
        pass


def _worker_main(conn) -> None:
    import sys
    sys.setrecursionlimit(3000)
    _warm_up()  # a no-op for forked workers: the parent warmed up before forking
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        p, r, compat = job
        try:
            conn.send(("ok", _symbolic_verdict(p, r, compat)))
        except Exception as exc:  # noqa: BLE001 - any parser/sympy failure is reported, not fatal
            conn.send(("error", repr(exc)[:200]))


def _start_method() -> str:
    m = os.environ.get("DSM_GRADING_START_METHOD")
    if m:
        return m
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


class _SymWorker:
    """A persistent sympy worker process; killed and restarted when a job exceeds its timeout."""

    def __init__(self):
        self.proc = None
        self.conn = None
        self.deadline = 0.0
        self.job_index = -1

    def ensure(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            return
        self.close()
        method = _start_method()
        if method == "fork":  # warm once here so that every (re)started worker forks warm, in milliseconds
            _warm_up()
        ctx = mp.get_context(method)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(120):
            proc.kill()
            raise RuntimeError("grading worker did not start")
        parent.recv()
        self.proc, self.conn = proc, parent

    def submit(self, p: str, r: str, compat: str, timeout: float, index: int = -1) -> None:
        self.ensure()
        self.conn.send((p, r, compat))
        self.deadline = time.monotonic() + timeout
        self.job_index = index

    def result(self) -> str:
        """Read a finished job's answer: 'match' / 'mismatch' / 'error'."""
        try:
            status, val = self.conn.recv()
        except (EOFError, OSError):
            self.close()
            return "error"
        self.job_index = -1
        if status == "ok":
            return "match" if val else "mismatch"
        return "error"

    def wait(self) -> str:
        left = max(0.0, self.deadline - time.monotonic())
        try:
            ready = self.conn.poll(left)
        except (EOFError, OSError):
            ready = True
        if not ready:
            self.close()
            self.job_index = -1
            return "timeout"
        return self.result()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.join(5)
            except Exception:
                pass
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.proc = None
        self.conn = None


_WORKERS: list[_SymWorker] = []


def _get_workers(n: int) -> list[_SymWorker]:
    while len(_WORKERS) < n:
        _WORKERS.append(_SymWorker())
    return _WORKERS[:n]


def shutdown_workers() -> None:
    """Stop the symbolic worker processes (they are restarted on demand)."""
    for w in _WORKERS:
        w.close()


atexit.register(shutdown_workers)


def _symbolic_in_worker(p: str, r: str, compat: str, timeout: float) -> str:
    _STATS["symbolic"] += 1
    w = _get_workers(1)[0]
    try:
        w.submit(p, r, compat, timeout)
    except Exception:
        w.close()
        _STATS["error"] += 1
        return "error"
    verdict = w.wait()
    if verdict in ("timeout", "error"):
        _STATS[verdict] += 1
    return verdict


# --------------------------------------------------------------------------------------------------
# public API


def _check_compat(compat: str) -> None:
    if compat not in COMPATS:
        raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")


def _verdict(pred_answer: str, ref_answer: str, compat: str, timeout: float) -> str:
    p, r = normalize_answer(pred_answer), normalize_answer(ref_answer)
    fast = _fast_verdict(p, r, compat)
    if fast is not None:
        return "match" if fast else "mismatch"
    return _symbolic_in_worker(p, r, compat, timeout)


def is_equiv(pred_answer: str, ref_answer: str, *, compat: str = "strict", timeout: float = 2.0) -> bool:
    """Whether two *extracted* answers are equivalent (normalised inside; see the module doc)."""
    _check_compat(compat)
    if pred_answer is None or ref_answer is None:
        return False
    return _verdict(pred_answer, ref_answer, compat, timeout) == "match"


def _ref_choice_letter(ref: str, problem: Optional[str], choices: Optional[bool]) -> Optional[str]:
    if choices is False:
        return None
    letter = None
    t = normalize_answer(ref)
    m = re.fullmatch(r"\(?([A-J])\)?", t)
    if m:
        letter = m.group(1)
    if choices is True and letter is None:
        letter = _choice_letter(ref)
    return letter


def _prepare(prediction: str, reference: str, problem: Optional[str], compat: str,
             choices: Optional[bool]):
    """Everything up to the symbolic step: a finished GradeResult, or (extracted, p, r) to send to sympy."""
    _check_compat(compat)
    _STATS["items"] += 1
    ref = _reference_answer(reference or "")
    letter = _ref_choice_letter(ref, problem, choices)
    if letter is not None:
        return _grade_choice(prediction or "", letter, problem, compat)
    extracted = extract_answer(prediction or "")
    if extracted is None:
        return GradeResult(False, None, "no_answer")
    p, r = normalize_answer(extracted), normalize_answer(ref)
    fast = _fast_verdict(p, r, compat)
    if fast is not None:
        return GradeResult(fast, extracted, "match" if fast else "mismatch")
    return extracted, p, r


def grade_detailed(prediction: str, reference: str, problem: str | None = None, *, compat: str = "strict",
                   timeout: float = 2.0, choices: bool | None = None) -> GradeResult:
    """Grade a whole model output against a reference answer (boxed or not), with the reason.

    ``choices``: True forces multiple-choice letter grading, False disables it, None detects it from
    the reference (a single letter A–J).  ``timeout`` bounds the symbolic (sympy) step per item.
    """
    prep = _prepare(prediction, reference, problem, compat, choices)
    if isinstance(prep, GradeResult):
        return prep
    extracted, p, r = prep
    verdict = _symbolic_in_worker(p, r, compat, timeout)
    return GradeResult(verdict == "match", extracted, verdict)


def grade(prediction: str, reference: str, problem: str | None = None, *, compat: str = "strict",
          timeout: float = 2.0, choices: bool | None = None) -> bool:
    """True when the final answer of ``prediction`` is equivalent to ``reference`` (see the module doc)."""
    return grade_detailed(prediction, reference, problem, compat=compat, timeout=timeout, choices=choices).correct


def grade_batch(predictions: list[str], references: list[str], problems: list[str | None] | None = None, *,
                compat: str = "strict", timeout: float = 2.0, workers: int | None = None,
                progress: bool = False, choices: bool | None = None) -> list[GradeResult]:
    """Grade many items; results in input order and identical to :func:`grade_detailed` item by item.

    The fast path runs in this process; items that need sympy are spread over ``workers`` persistent
    worker processes (default: the CPU count, at most 8), each job under its own ``timeout``.
    """
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if problems is not None and len(problems) != len(predictions):
        raise ValueError("problems and predictions differ in length")
    n = len(predictions)
    results: list[Optional[GradeResult]] = [None] * n
    pending: list[tuple[int, str, str, str]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="grading")
    for i in range(n):
        prep = _prepare(predictions[i], references[i], problems[i] if problems else None, compat, choices)
        if isinstance(prep, GradeResult):
            results[i] = prep
            if bar:
                bar.update(1)
        else:
            pending.append((i, *prep))
    if pending:
        n_workers = max(1, min(len(pending), workers or min(os.cpu_count() or 1, 8)))
        pool = _get_workers(n_workers)
        extracted_of = {i: e for i, e, _, _ in pending}
        queue = list(reversed(pending))
        busy: dict[int, tuple[_SymWorker, int]] = {}  # id(worker) -> (worker, item index)

        def finish(i: int, verdict: str) -> None:
            _STATS["symbolic"] += 1
            if verdict in ("timeout", "error"):
                _STATS[verdict] += 1
            results[i] = GradeResult(verdict == "match", extracted_of[i], verdict)
            if bar:
                bar.update(1)

        while queue or busy:
            for w in pool:
                if id(w) not in busy and queue:
                    i, _, p, r = queue.pop()
                    try:
                        w.submit(p, r, compat, timeout, i)
                    except Exception:
                        w.close()
                        finish(i, "error")
                        continue
                    busy[id(w)] = (w, i)
            if not busy:
                continue
            left = max(0.0, min(w.deadline for w, _ in busy.values()) - time.monotonic())
            ready = mpc.wait([w.conn for w, _ in busy.values()], timeout=left)
            for key, (w, i) in list(busy.items()):
                if w.conn in ready:
                    finish(i, w.result())
                elif time.monotonic() >= w.deadline:
                    w.close()  # kill the stuck worker; it restarts on its next job
                    finish(i, "timeout")
                else:
                    continue
                del busy[key]
    if bar:
        bar.close()
    return results  # type: ignore[return-value]
