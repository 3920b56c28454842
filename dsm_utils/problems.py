"""The toy world's math word problems: generator, solutions in CoT and PoT form, and the step checker.

Each problem is a story of 1–5 arithmetic steps on one quantity. Its chain-of-thought (CoT) solution has
one checkable equation per line (``12 + 5 = 17``) and ends with ``The answer is \\boxed{14}.``; its
program-of-thought (PoT) solution is a short Python program that prints the answer. The step checker
says which lines of a model's solution are right: it is the rule-based reward of the RL notebooks,
per outcome (``outcome_reward``) and per step (``check_solution(...).steps``).

**Two behaviours under one prompt (the RL toy).** A solution may also be a short program in a ```python block
(``program_solution``): its answer is what the program prints. The checker grades both: a CoT line by its
equation, a program line by the value it assigns. Programs are run by :func:`run_program`, a restricted
evaluator of the toy's straight-line programs (assignments of ``+ - * //`` on integers, one ``print``): the
toy's stand-in for the process sandbox of ``dsm_utils.sandbox`` (~13 programs/s), fast enough for the RL loop
(thousands of programs per step), and it refuses anything else (no calls but ``print``, no imports, no loops).
"""
from __future__ import annotations

import ast
import random
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

NAMES = ("Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena", "Milo", "Nora",
         "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tara")
ITEMS = ("apples", "marbles", "stickers", "coins", "books", "pens", "cards", "shells", "stamps", "beads")

#: Templates per operation; ``{x}`` is the operand. Every template names the operation unambiguously.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "+": ("{name} buys {x} more {item}.", "{name} finds {x} more {item}.", "A friend gives {name} {x} {item}."),
    "-": ("{name} gives away {x} {item}.", "{name} loses {x} {item}.", "{name} sells {x} {item}."),
    "*": ("Then {name} gets {x} times as many {item} as before.", "The number of {item} becomes {x} times larger."),
    "/": ("{name} splits the {item} into {x} equal piles and keeps one pile.",
          "{name} keeps one out of every {x} {item}."),
}
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the generator: number of steps, size of numbers, allowed operations."""

    min_steps: int = 1
    max_steps: int = 3
    max_start: int = 20  # largest starting quantity
    max_operand: int = 10  # largest operand of + and -
    max_factor: int = 4  # largest factor of * and divisor of /
    max_value: int = 200  # intermediate results stay in [0, max_value]
    ops: tuple[str, ...] = ("+", "-", "*", "/")

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"Difficulty: need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        bad = set(self.ops) - set(TEMPLATES)
        if bad:
            raise ValueError(f"Difficulty.ops: unknown operations {sorted(bad)}; valid: {sorted(TEMPLATES)}")


#: The in-distribution toy world and the harder out-of-distribution split (more steps, larger numbers).
EASY = Difficulty()
OOD = Difficulty(min_steps=4, max_steps=5, max_start=60, max_operand=30, max_factor=6, max_value=999)


@dataclass
class Step:
    """One arithmetic step: ``lhs op operand = result``."""

    lhs: int
    op: str
    operand: int
    result: int

    @property
    def equation(self) -> str:
        return f"{self.lhs} {_OP_TEXT[self.op]} {self.operand} = {self.result}"


@dataclass
class Problem:
    """A generated word problem with its reference solutions."""

    id: str
    question: str
    answer: str
    cot: str
    pot: str
    steps: list[Step] = field(default_factory=list)
    start: int = 0

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for jsonl); ``steps`` become dicts."""
        return asdict(self)


_OP_TEXT = {"+": "+", "-": "-", "*": "*", "/": "/"}


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b


def _pick_step(rng: random.Random, value: int, d: Difficulty) -> tuple[str, int] | None:
    """Choose an operation and operand keeping the result a whole number in [0, max_value]."""
    ops = list(d.ops)
    rng.shuffle(ops)
    for op in ops:
        if op == "+":
            hi = min(d.max_operand, d.max_value - value)
            if hi >= 1:
                return op, rng.randint(1, hi)
        elif op == "-":
            hi = min(d.max_operand, value)
            if hi >= 1:
                return op, rng.randint(1, hi)
        elif op == "*":
            cands = [k for k in range(2, d.max_factor + 1) if value * k <= d.max_value]
            if cands and value > 0:
                return op, rng.choice(cands)
        else:
            cands = [k for k in range(2, d.max_factor + 1) if value % k == 0 and value > 0]
            if cands:
                return op, rng.choice(cands)
    return None


def generate_problem(rng: random.Random, difficulty: Difficulty = EASY, idx: int = 0, prefix: str = "toy") -> Problem:
    """Generate one problem with ``rng`` (deterministic for a given rng state)."""
    d = difficulty
    n = rng.randint(d.min_steps, d.max_steps)
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    while True:
        value = start = rng.randint(2, d.max_start)
        steps: list[Step] = []
        for _ in range(n):
            pick = _pick_step(rng, value, d)
            if pick is None:
                break
            op, x = pick
            res = _apply(op, value, x)
            steps.append(Step(value, op, x, res))
            value = res
        if len(steps) == n:
            break
    sentences = [f"{name} has {start} {item}."]
    for s in steps:
        sentences.append(rng.choice(TEMPLATES[s.op]).format(name=name, item=item, x=s.operand))
    sentences.append(f"How many {item} does {name} have now?")
    question = " ".join(sentences)
    answer = str(value)
    cot = "\n".join([s.equation for s in steps] + [f"The answer is \\boxed{{{answer}}}."])
    var = item.rstrip("s") if item.endswith("s") else item
    pot_lines = [f"{var} = {start}"] + [f"{var} = {var} {_OP_TEXT[s.op] if s.op != '/' else '//'} {s.operand}"
                                         for s in steps] + [f"print({var})"]
    pot = "\n".join(pot_lines)
    return Problem(id=f"{prefix}-{idx}", question=question, answer=answer, cot=cot, pot=pot, steps=steps, start=start)


def generate(n: int, seed: int = 0, difficulty: Difficulty = EASY, prefix: str = "toy") -> list[Problem]:
    """Generate ``n`` problems, reproducibly from ``seed``."""
    if n < 0:
        raise ValueError(f"generate: n must be >= 0, got {n}")
    rng = random.Random(f"{prefix}:{seed}")
    return [generate_problem(rng, difficulty, i, prefix) for i in range(n)]


def chat_prompt(question: str, instruction: str = INSTRUCTION) -> str:
    """DeepSeek-Math's zero-shot chat form (its evaluation code): ``User: {question}\\n{instruction}\\n\\nAssistant:``."""
    q = f"{question}\n{instruction}" if instruction else question
    return f"User: {q}\n\nAssistant:"


# ---------------------------------------------------------------- step checker (the rule-based reward)

_OP_CANON = {"+": "+", "-": "-", "*": "*", "x": "*", "×": "*", "/": "/", "÷": "/"}
_EQ = re.compile(r"(-?\d+(?:\.\d+)?)\s*([-+*/x×÷])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


@dataclass
class StepCheck:
    """Verdict on one line of a solution: its character span in the text and whether it is right."""

    start: int
    end: int
    text: str
    correct: bool


@dataclass
class SolutionCheck:
    """Verdict on a whole solution: per-step results, the extracted answer and the outcome."""

    steps: list[StepCheck]
    answer: str | None
    correct: bool

    @property
    def step_rewards(self) -> list[float]:
        return [1.0 if s.correct else 0.0 for s in self.steps]


def _num(s: str) -> Fraction:
    return Fraction(s)


def _eval(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in "*x×":
        return a * b
    if b == 0:
        return None
    return a / b


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (no nested braces: the toy answers are integers)."""
    found = _BOXED.findall(text)
    return found[-1].strip() if found else None


# ---------------------------------------------------------------- programs (the second behaviour)

PROGRAM_OPEN, PROGRAM_CLOSE = "```python\n", "\n```"
_PROGRAM = re.compile(r"```python\n(.*?)(?:\n```|$)", re.S)
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.FloorDiv: lambda a, b: a // b, ast.Div: lambda a, b: a // b if a % b == 0 else Fraction(a, b)}
MAX_PROGRAM_VALUE = 10 ** 12  # larger intermediate values are refused (no runaway arithmetic)


def program_solution(p: Problem) -> str:
    """The program behaviour: the reference PoT program in a ```python block (its output is the answer)."""
    return f"{PROGRAM_OPEN}{p.pot}{PROGRAM_CLOSE}"


def extract_program(text: str) -> str | None:
    """The body of the first ```python block (an unclosed block runs to the end of the text), else None."""
    m = _PROGRAM.search(text)
    return m.group(1) if m else None


def _expr(node: ast.AST, env: dict[str, int]):
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_expr(node.operand, env)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _expr(node.left, env), _expr(node.right, env)
        if isinstance(node.op, (ast.FloorDiv, ast.Div)) and b == 0:
            raise ZeroDivisionError
        v = _BINOPS[type(node.op)](a, b)
        if abs(v) > MAX_PROGRAM_VALUE:
            raise OverflowError
        return v
    raise ValueError(f"unsupported expression {ast.dump(node)[:40]}")


def program_trace(src: str) -> tuple[list[tuple[int, object]], str | None]:
    """Run a straight-line toy program: ``([(line_no, value assigned), ...], printed text or None)``.

    Only ``name = expr`` (integers, names, ``+ - * // /``) and ``print(expr)`` are allowed; anything else, a syntax
    error, an unknown name or a division by zero stops the run (the trace so far is kept, the output is None).
    """
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return [], None
    env: dict[str, object] = {}
    trace: list[tuple[int, object]] = []
    out = None
    try:
        for st in tree.body:
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                env[st.targets[0].id] = _expr(st.value, env)
                trace.append((st.lineno, env[st.targets[0].id]))
            elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name)
                  and st.value.func.id == "print" and len(st.value.args) == 1 and not st.value.keywords):
                out = str(_expr(st.value.args[0], env))
            else:
                return trace, None
    except (ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return trace, None
    return trace, out


def run_program(src: str) -> str | None:
    """What a toy program prints (``None`` if it fails or is not a straight-line toy program)."""
    return program_trace(src)[1]


def _check_program(text: str, body: str, problem: Problem) -> SolutionCheck:
    """Grade a program solution: one step per assignment line, right when its value is the reference's value
    after the same number of steps (the first line: the starting quantity); outcome = printed value."""
    trace, out = program_trace(body)
    offset = text.index(body)
    starts = [0]
    for line in body.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    want = [problem.start] + [s.result for s in problem.steps]
    steps = []
    for k, (line_no, val) in enumerate(trace):
        a, b = offset + starts[line_no - 1], offset + starts[line_no] - 1
        steps.append(StepCheck(a, b, text[a:b], k < len(want) and val == want[k]))
    ok = out is not None and _same_number(out, problem.answer)
    if out is not None:  # the print line is a step too, as the boxed line of a CoT solution
        pl = body.rstrip().split("\n")[-1]
        a = offset + body.rfind(pl)
        steps.append(StepCheck(a, a + len(pl), pl, ok))
    return SolutionCheck(steps=steps, answer=out, correct=ok)


def behaviour(text: str) -> str:
    """``"program"`` when the solution holds a ```python block, else ``"cot"``."""
    return "program" if extract_program(text) is not None else "cot"


def check_solution(text: str, problem: Problem) -> SolutionCheck:
    """Check a CoT solution line by line against ``problem``.

    A step (a line holding an equation ``a op b = c``) is right when the equation is arithmetically true
    and it is the reference's k-th step (same operation, same operands — either order for ``+``/``*`` —
    same result), so a true equation on the wrong quantities is still a wrong step. The line with the final
    ``\\boxed{}`` is a step too: right when the boxed value equals the answer. The outcome is right when
    the boxed answer equals the reference answer. A program solution (a ```python block) is graded by
    :func:`_check_program`: its steps are the values it assigns and its answer is what it prints.
    """
    body = extract_program(text)
    if body is not None:
        return _check_program(text, body, problem)
    steps: list[StepCheck] = []
    k = 0
    pos = 0
    answer = extract_boxed(text)
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if not line.strip():
            continue
        m = _EQ.search(line)
        if m:
            a, op, b, c = m.groups()
            try:
                val = _eval(_num(a), op, _num(b))
                ok = val is not None and val == _num(c)
            except (ValueError, ZeroDivisionError):
                ok = False
            if k < len(problem.steps):
                ref = problem.steps[k]
                ops = (_num(a), _num(b))
                want = (Fraction(ref.lhs), Fraction(ref.operand))
                same_operands = ops == want or (ref.op in "+*" and ops == want[::-1])
                ok = ok and _num(c) == ref.result and same_operands and _OP_CANON.get(op) == ref.op
            else:
                ok = False  # more steps than the problem has
            steps.append(StepCheck(start, end, line, ok))
            k += 1
        elif "\\boxed{" in line:
            b = extract_boxed(line)
            steps.append(StepCheck(start, end, line, _same_number(b, problem.answer)))
    return SolutionCheck(steps=steps, answer=answer, correct=_same_number(answer, problem.answer))


def _same_number(a: str | None, b: str) -> bool:
    if a is None:
        return False
    try:
        return Fraction(a.replace(",", "").strip()) == Fraction(b)
    except (ValueError, ZeroDivisionError):
        return a.strip() == b.strip()


def outcome_reward(text: str, problem: Problem) -> float:
    """1.0 if the solution's answer is right (the boxed value; for a program, what it prints), else 0.0."""
    body = extract_program(text)
    answer = run_program(body) if body is not None else extract_boxed(text)
    return 1.0 if _same_number(answer, problem.answer) else 0.0


def problem_from_dict(d: dict[str, Any]) -> Problem:
    """Inverse of :meth:`Problem.to_dict`."""
    steps = [Step(**s) for s in d.get("steps", [])]
    return Problem(**{**d, "steps": steps})
