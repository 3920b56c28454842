"""Evaluation prompts as the paper uses them (DeepSeekMath §3.2.1, §5.1.2).

Modes (``MODES``):

- ``few_shot_cot`` — base models: few-shot chain-of-thought. GSM8K 8-shot ``Q: … A: … The answer is N.``;
  MATH / MATH-500 / OCW / Gaokao-MathCloze 4-shot in the Minerva form (``Problem:`` / ``Solution:`` ending
  ``Final Answer: The final answer is $X$. I hope it is correct.``); MMLU-STEM / SAT / Gaokao-MathQA the
  Minerva form with an ``Answer Choices:`` line; CMATH / MGSM-zh a Chinese few-shot form (``问题：`` /
  ``解答：`` … ``答案是 N。``). Exemplars come from each benchmark's *train* split, drawn deterministically
  (benchmarks without a train split borrow from GSM8K / MATH train; the Chinese ones use four short
  problems written for this project, since no Chinese train split is available). Exemplars whose question
  also appears in the benchmark's test split are excluded.
- ``zero_shot_cot`` — instruct / RL models: ``User: {question}\\n{instruction}\\n\\nAssistant:`` with
  ``Please reason step by step, and put your final answer within \\boxed{}.`` (Chinese benchmarks:
  ``请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。``), exactly :func:`dsm_utils.problems.chat_prompt`.
- ``tool`` — tool-integrated reasoning: the same chat form with the program instruction; generation stops at
  the ``\u0060\u0060\u0060output`` fence so the evaluator can run the program and append its output.
- ``pot`` — program-of-thought: the model writes a program; the answer is what it prints or returns.

Every prompt comes with its stop strings (the next exemplar header for few-shot; the next ``User:`` turn for
chat forms; plus the output fence for ``tool``).
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

from . import problems
from .benchmarks import CHINESE, LETTERS, MULTIPLE_CHOICE, Item, cached_items, format_choices, question_with_choices

__all__ = ["MODES", "Prompt", "build_prompt", "build_prompts", "exemplars", "few_shot_prefix", "stop_strings",
           "instruction", "COT_INSTRUCTION", "COT_INSTRUCTION_ZH", "TOOL_INSTRUCTION", "TOOL_INSTRUCTION_ZH",
           "POT_INSTRUCTION", "POT_INSTRUCTION_ZH", "OUTPUT_FENCE", "FEW_SHOT", "ZH_EXEMPLARS"]

MODES = ("few_shot_cot", "zero_shot_cot", "pot", "tool")

COT_INSTRUCTION = problems.INSTRUCTION  # "Please reason step by step, and put your final answer within \boxed{}."
COT_INSTRUCTION_ZH = "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。"
TOOL_INSTRUCTION = ("Please integrate natural language reasoning with programs to solve the problem above, "
                    "and put your final answer within \\boxed{}.")
TOOL_INSTRUCTION_ZH = "请结合自然语言推理和程序来解答上述问题，并把最终答案放置于\\boxed{}中。"
POT_INSTRUCTION = ("Please write a Python program to solve the problem above. "
                   "The program should print the final answer.")
POT_INSTRUCTION_ZH = "请编写一个 Python 程序来解答上述问题，程序应打印出最终答案。"
#: The tool-integrated format: the model's program is followed by its output in this fence.
OUTPUT_FENCE = "```output"
CHAT_STOP = ["User:"]


@dataclass
class Prompt:
    """A prompt and the strings that end its completion."""

    text: str
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FewShotSpec:
    """How a benchmark is prompted few-shot: exemplar ``style``, ``n_shot``, and where exemplars come from."""

    style: str  # "qa" | "toy_qa" | "minerva" | "minerva_mc" | "zh_qa"
    n_shot: int
    source: tuple[str, str] | None  # (benchmark, split) of the exemplar pool; None = ZH_EXEMPLARS


FEW_SHOT: dict[str, FewShotSpec] = {
    "gsm8k": FewShotSpec("qa", 8, ("gsm8k", "train")),
    "math": FewShotSpec("minerva", 4, ("math", "train")),
    "math500": FewShotSpec("minerva", 4, ("math", "train")),
    "ocw": FewShotSpec("minerva", 4, ("math", "train")),
    "gaokao_mathcloze": FewShotSpec("minerva", 4, ("math", "train")),
    "gaokao_mathqa": FewShotSpec("minerva_mc", 4, ("math", "train")),
    "sat": FewShotSpec("minerva_mc", 4, ("math", "train")),
    "mmlu_stem": FewShotSpec("minerva_mc", 4, ("math", "train")),
    "cmath": FewShotSpec("zh_qa", 4, None),
    "mgsm_zh": FewShotSpec("zh_qa", 4, None),
    "toy": FewShotSpec("toy_qa", 4, ("toy", "train")),
    "toy_ood": FewShotSpec("toy_qa", 4, ("toy", "train")),
}

#: Short Chinese arithmetic word problems written for this project (CMATH / MGSM-zh have no train split).
ZH_EXEMPLARS: tuple[Item, ...] = (
    Item(question="小明有 5 个苹果，妈妈又给了他 3 个，他吃掉了 2 个。小明现在有几个苹果？",
         solution="妈妈给了 3 个后，小明有 5 + 3 = 8 个苹果；吃掉 2 个后，剩下 8 - 2 = 6 个。", answer="6",
         id="zh-own-0", benchmark="zh_exemplars"),
    Item(question="一本故事书 12 元，一支钢笔 7 元。买 3 本故事书和 2 支钢笔一共要多少元？",
         solution="3 本故事书要 3 × 12 = 36 元，2 支钢笔要 2 × 7 = 14 元，一共要 36 + 14 = 50 元。", answer="50",
         id="zh-own-1", benchmark="zh_exemplars"),
    Item(question="学校买来 96 棵树苗，平均分给 4 个班，每个班再把分到的树苗平均分成 3 组种植。每组种多少棵？",
         solution="每个班分到 96 ÷ 4 = 24 棵，每组种 24 ÷ 3 = 8 棵。", answer="8", id="zh-own-2",
         benchmark="zh_exemplars"),
    Item(question="一块长方形菜地长 15 米，宽 8 米。这块菜地的周长是多少米？",
         solution="长方形的周长 = (长 + 宽) × 2，所以周长是 (15 + 8) × 2 = 46 米。", answer="46", id="zh-own-3",
         benchmark="zh_exemplars"),
)

_MAX_Q_CHARS = 400  # short exemplars keep prompts inside small context windows
_MAX_SOL_CHARS = 700
_BOX_CMD = re.compile(r"\\(?:boxed|fbox)\s*")


def _norm_q(q: str) -> str:
    return re.sub(r"\s+", " ", q).strip()


def _strip_boxes(text: str) -> str:
    """``\\boxed{X}`` -> ``X`` (brace-matched), for solutions shown in non-boxed formats."""
    out, i = [], 0
    for m in _BOX_CMD.finditer(text):
        if m.start() < i:
            continue
        j = m.end()
        if j < len(text) and text[j] == "{":
            depth, k = 0, j
            while k < len(text):
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            out.append(text[i:m.start()] + text[j + 1:k])
            i = k + 1
        else:
            out.append(text[i:m.start()])
            i = j
    out.append(text[i:])
    return "".join(out)


def _int_answer(ans: str | None) -> int | None:
    if ans is None or not re.fullmatch(r"-?\d+", ans.strip()):
        return None
    return int(ans)


def _make_mc(item: Item, rng: random.Random) -> Item:
    """A MATH train problem with an integer answer, turned into a 4-option question with a fixed answer slot."""
    a = _int_answer(item.answer)
    assert a is not None
    distract = []
    for d in (a + 1, a - 1, 2 * a, a + 2, a - 2, a + 10, 3 * a, a + 5):
        if d != a and d not in distract:
            distract.append(d)
        if len(distract) == 3:
            break
    slot = rng.randrange(4)
    opts = [str(d) for d in distract]
    opts.insert(slot, str(a))
    return Item(question=item.question, answer=LETTERS[slot], solution=_strip_boxes(item.solution or ""),
                subject=item.subject, level=item.level, id=item.id, benchmark=item.benchmark, choices=opts)


def _test_questions(benchmark: str, data_dir) -> set[str]:
    try:
        return {_norm_q(it.question) for it in cached_items(benchmark, "test", data_dir=data_dir)}
    except FileNotFoundError:
        return set()


@lru_cache(maxsize=64)
def _exemplars_cached(benchmark: str, n: int, data_dir: str | None) -> tuple[Item, ...]:
    spec = FEW_SHOT[benchmark]
    if spec.source is None:
        pool = list(ZH_EXEMPLARS)
        if n > len(pool):
            raise ValueError(f"{benchmark}: only {len(pool)} Chinese exemplars exist, asked for {n}")
        return tuple(pool[:n])
    src_name, src_split = spec.source
    banned = _test_questions(benchmark, data_dir)
    cands = []
    for it in cached_items(src_name, src_split, data_dir=data_dir):
        if _norm_q(it.question) in banned:
            continue  # never show a test problem (MATH train holds one test problem verbatim)
        if not it.answer or len(it.question) > _MAX_Q_CHARS or not it.solution or len(it.solution) > _MAX_SOL_CHARS:
            continue
        if "[asy]" in it.question or "[asy]" in it.solution:
            continue  # Asymptote figures are long and mean nothing without the picture
        if spec.style == "minerva_mc" and _int_answer(it.answer) is None:
            continue
        cands.append(it)
    if len(cands) < n:
        raise ValueError(f"{benchmark}: only {len(cands)} usable exemplars in {src_name}/{src_split}, asked for {n}")
    # The seed depends on the benchmark only, so the same exemplars are drawn on every run and machine.
    rng = random.Random(f"fewshot:{benchmark}")
    picked = rng.sample(cands, n)
    if spec.style == "minerva_mc":
        picked = [_make_mc(it, rng) for it in picked]
    return tuple(picked)


def exemplars(benchmark: str, n: int | None = None, data_dir: str | os.PathLike | None = None) -> list[Item]:
    """The few-shot exemplars of ``benchmark`` (default count: the paper's, see :data:`FEW_SHOT`).

    Drawn from the train split named in :data:`FEW_SHOT` with a seed fixed by the benchmark name, so the
    result is the same on every call; questions that appear in the benchmark's test split are excluded.
    """
    if benchmark not in FEW_SHOT:
        raise ValueError(f"no few-shot prompt for {benchmark!r}; benchmarks with one: {', '.join(FEW_SHOT)}")
    spec = FEW_SHOT[benchmark]
    n = spec.n_shot if n is None else n
    if n < 0:
        raise ValueError(f"n_shot must be >= 0, got {n}")
    return list(_exemplars_cached(benchmark, n, str(data_dir) if data_dir else None))


# --------------------------------------------------------------------------------------------------
# formats


def _gsm_rationale(sol: str) -> str:
    lines = [ln.strip() for ln in sol.strip().splitlines() if ln.strip()]
    return " ".join(ln if ln.endswith((".", "!", "?", ":")) else ln + "." for ln in lines)


def _format_shot(style: str, it: Item, with_answer: bool) -> str:
    """One exemplar (``with_answer``) or the final question (without)."""
    if style in ("qa", "toy_qa"):
        head = f"Q: {it.question}\nA:"
        if not with_answer:
            return head
        if style == "toy_qa":
            return f"{head} {it.solution}"
        return f"{head} {_gsm_rationale(it.solution or '')} The answer is {it.answer}."
    if style == "zh_qa":
        head = f"问题：{it.question}\n解答："
        return head if not with_answer else f"{head}{it.solution} 答案是 {it.answer}。"
    if style in ("minerva", "minerva_mc"):
        q = it.question.rstrip()
        if style == "minerva_mc" and it.choices:
            q += "\nAnswer Choices: " + " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(it.choices))
        head = f"Problem:\n{q}\n\nSolution:"
        if not with_answer:
            return head
        final = f"({it.answer})" if style == "minerva_mc" else f"${it.answer}$"
        return f"{head}\n{(it.solution or '').strip()}\nFinal Answer: The final answer is {final}. I hope it is correct."
    raise ValueError(f"unknown few-shot style {style!r}")


_FEW_SHOT_STOP = {
    "qa": ["\n\nQ:", "\nQ:"],
    "toy_qa": ["\n\nQ:", "\nQ:"],
    "minerva": ["\n\nProblem:", "\nProblem:"],
    "minerva_mc": ["\n\nProblem:", "\nProblem:"],
    "zh_qa": ["\n\n问题：", "\n问题："],
}


def few_shot_prefix(benchmark: str, n_shot: int | None = None, data_dir: str | os.PathLike | None = None) -> str:
    """The exemplar block that precedes every question of ``benchmark`` (ends with a blank line)."""
    style = FEW_SHOT[benchmark].style
    shots = exemplars(benchmark, n_shot, data_dir)
    return "".join(_format_shot(style, s, True) + "\n\n" for s in shots)


def instruction(benchmark: str, mode: str) -> str:
    """The zero-shot instruction of ``mode`` in the benchmark's language."""
    zh = benchmark in CHINESE
    if mode == "zero_shot_cot":
        return COT_INSTRUCTION_ZH if zh else COT_INSTRUCTION
    if mode == "tool":
        return TOOL_INSTRUCTION_ZH if zh else TOOL_INSTRUCTION
    if mode == "pot":
        return POT_INSTRUCTION_ZH if zh else POT_INSTRUCTION
    raise ValueError(f"mode {mode!r} has no instruction; valid modes: {', '.join(MODES)}")


def stop_strings(benchmark: str, mode: str) -> list[str]:
    """Where a completion of ``mode`` on ``benchmark`` ends (besides EOS)."""
    if mode == "few_shot_cot":
        if benchmark not in FEW_SHOT:
            raise ValueError(f"no few-shot prompt for {benchmark!r}")
        return list(_FEW_SHOT_STOP[FEW_SHOT[benchmark].style])
    if mode == "tool":
        return [OUTPUT_FENCE] + CHAT_STOP
    if mode in ("zero_shot_cot", "pot"):
        return list(CHAT_STOP)
    raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")


def build_prompt(item: Item, mode: str, *, n_shot: int | None = None,
                 data_dir: str | os.PathLike | None = None) -> Prompt:
    """The prompt text and stop strings for ``item`` in ``mode`` (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if item.benchmark == "minif2f":
        raise ValueError("minif2f is loaded for its statements only (formal proving is not evaluated here)")
    stop = stop_strings(item.benchmark, mode)
    if mode == "few_shot_cot":
        style = FEW_SHOT[item.benchmark].style
        last = item
        if style == "minerva_mc" and not item.choices:
            raise ValueError(f"{item.id}: a multiple-choice prompt needs choices")
        return Prompt(few_shot_prefix(item.benchmark, n_shot, data_dir) + _format_shot(style, last, False), stop)
    q = question_with_choices(item)
    return Prompt(problems.chat_prompt(q, instruction(item.benchmark, mode)), stop)


def build_prompts(items: Sequence[Item], mode: str, *, n_shot: int | None = None,
                  data_dir: str | os.PathLike | None = None) -> list[Prompt]:
    """:func:`build_prompt` for many items (exemplars are drawn once per benchmark and cached)."""
    return [build_prompt(it, mode, n_shot=n_shot, data_dir=data_dir) for it in items]


def is_multiple_choice(benchmark: str) -> bool:
    """Whether ``benchmark`` is graded by option letter."""
    return benchmark in MULTIPLE_CHOICE


__all__ += ["is_multiple_choice", "format_choices"]
