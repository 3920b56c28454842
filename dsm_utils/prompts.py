"""Evaluation prompts: DeepSeek-Math's own few-shot prompts, read as data, and the zero-shot chat forms.

The few-shot exemplars, templates and stop words are those of DeepSeek-Math's evaluation code (repository
``deepseek-ai/DeepSeek-Math``, folder ``evaluation/few_shot_prompts/``, MIT licence), stored as text data in
``$DSM_DATA_DIR/prompts/deepseek_math_prompts.json`` at a pinned commit (see that folder's README, and
:func:`derive_prompts_json`, which rebuilds the file from the upstream ``.py`` files). Nothing here invents an
exemplar. The prompt formats are credited to that repository, not to the paper: the paper reports the numbers
(Tables 2–5), the repository says how they were prompted.

Modes (``MODES``):

- ``few_shot_cot`` — base models, Table 2: the repository's chain-of-thought prompt of the benchmark (GSM8K
  8-shot ``Q:/A:``, MATH 4-shot Minerva ``Problem:/Solution:``, SAT / MMLU-STEM / OCW 4-shot, CMATH 6-shot,
  Gaokao-MathCloze / -MathQA 5-shot). MATH-500 uses the MATH prompt (its own row: the paper reports the full
  5,000-problem MATH test only). The toy benchmarks (GSM8K-like word problems) use the GSM8K prompt.
- ``few_shot_pot`` — base models, Table 3 ("+Python"): the repository's PAL prompts (GSM8K 8-shot, MATH 4-shot);
  the program is run in the sandbox and its answer graded.
- ``zero_shot_cot`` — instruct / RL models, Table 5: ``User: {question}\\n{instruction}\\n\\nAssistant:`` with
  ``Please reason step by step, and put your final answer within \\boxed{}.`` (Chinese benchmarks:
  ``请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。``), exactly :func:`dsm_utils.problems.chat_prompt`.
- ``tool`` — tool-integrated reasoning, Table 5: the same chat form with the program instruction; generation stops
  at the ``\u0060\u0060\u0060output`` fence so the evaluator can run the program and append its output.
- ``pot`` — the toy world's zero-shot program form (the chat form with a program instruction, what 05 trains):
  no paper number belongs to it.

A few-shot prompt may be cut to its first ``n_shot`` exemplars (a model with a short context): the exemplars are
still the repository's, in its order; the cut is recorded by the caller. Every prompt comes with its stop
strings (the repository's for few-shot forms; the next ``User:`` turn for chat forms; plus the output fence for
``tool``).
"""
from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

from . import problems
from .benchmarks import CHINESE, LETTERS, MULTIPLE_CHOICE, Item, format_choices, question_with_choices
from .data import require

__all__ = ["MODES", "Prompt", "PromptFile", "build_prompt", "build_prompts", "has_prompt", "prompt_file", "prompt_name",
           "exemplar_blocks", "n_exemplars", "few_shot_prefix", "stop_strings", "instruction", "derive_prompts_json",
           "PROMPTS_FILE", "FEW_SHOT_PROMPTS", "PAL_PROMPTS", "UPSTREAM", "UPSTREAM_PROMPT_FILES",
           "COT_INSTRUCTION", "COT_INSTRUCTION_ZH", "TOOL_INSTRUCTION", "TOOL_INSTRUCTION_ZH", "POT_INSTRUCTION",
           "POT_INSTRUCTION_ZH", "OUTPUT_FENCE", "is_multiple_choice", "format_choices"]

MODES = ("few_shot_cot", "few_shot_pot", "zero_shot_cot", "tool", "pot")

COT_INSTRUCTION = problems.INSTRUCTION  # "Please reason step by step, and put your final answer within \boxed{}."
COT_INSTRUCTION_ZH = "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。"
TOOL_INSTRUCTION = ("Please integrate natural language reasoning with programs to solve the problem above, "
                    "and put your final answer within \\boxed{}.")
TOOL_INSTRUCTION_ZH = "请结合自然语言推理和程序来解答上述问题，并把最终答案放置于\\boxed{}中。"
#: The toy world's program instruction (05 trains with it); not a DeepSeek-Math prompt.
POT_INSTRUCTION = ("Please write a Python program to solve the problem above. "
                   "The program should print the final answer.")
POT_INSTRUCTION_ZH = "请编写一个 Python 程序来解答上述问题，程序应打印出最终答案。"
#: The tool-integrated format: the model's program is followed by its output in this fence.
OUTPUT_FENCE = "```output"
CHAT_STOP = ["User:"]

#: The data file (under ``$DSM_DATA_DIR``) holding DeepSeek-Math's few-shot prompts.
PROMPTS_FILE = "prompts/deepseek_math_prompts.json"
#: Where the data file comes from: repository, pinned commit, folder.
UPSTREAM = {"repository": "deepseek-ai/DeepSeek-Math", "commit": "b8b0f8ce093d80bf8e9a641e44142f06d092c305",
            "folder": "evaluation/few_shot_prompts/"}
#: The upstream files :func:`derive_prompts_json` reads (raw URL = ``UPSTREAM_RAW + name``).
UPSTREAM_PROMPT_FILES = ("cot_cmath_6_shot.py", "cot_gaokao_mathcloze_5_shot.py", "cot_gaokao_mathqa_5_shot.py",
                         "cot_gsm_8_shot.py", "cot_math_sat_4_shot.py", "cot_minerva_math_4_shot.py",
                         "cot_mmlu_stem_4_shot.py", "cot_ocwcourses_4_shot.py", "minif2f_isabelle.py",
                         "pal_gsm_8_shot.py", "pal_math_4_shot.py")
UPSTREAM_RAW = (f"https://raw.githubusercontent.com/{UPSTREAM['repository']}/{UPSTREAM['commit']}/"
                f"{UPSTREAM['folder']}")

#: Benchmark -> the repository's chain-of-thought prompt (``evaluation/configs/few_shot_test_configs.json``).
FEW_SHOT_PROMPTS: dict[str, str] = {
    "gsm8k": "cot_gsm_8_shot",
    "math": "cot_minerva_math_4_shot",
    "math500": "cot_minerva_math_4_shot",
    "ocw": "cot_ocwcourses_4_shot",
    "sat": "cot_math_sat_4_shot",
    "mmlu_stem": "cot_mmlu_stem_4_shot",
    "cmath": "cot_cmath_6_shot",
    "gaokao_mathcloze": "cot_gaokao_mathcloze_5_shot",
    "gaokao_mathqa": "cot_gaokao_mathqa_5_shot",
    "toy": "cot_gsm_8_shot",  # toy word problems are GSM8K-like; the paper has no toy prompt
    "toy_ood": "cot_gsm_8_shot",
}
#: Benchmark -> the repository's PAL (program) prompt; only GSM8K and MATH have one (Table 3).
PAL_PROMPTS: dict[str, str] = {"gsm8k": "pal_gsm_8_shot", "math": "pal_math_4_shot", "math500": "pal_math_4_shot",
                               "toy": "pal_gsm_8_shot", "toy_ood": "pal_gsm_8_shot"}

# How each prompt file's exemplars start (used to split the exemplar block into single exemplars).
_HEADS = {"cot_gsm_8_shot": r"Q: ", "pal_gsm_8_shot": r"Q: ", "cot_cmath_6_shot": r"问题：",
          "cot_gaokao_mathcloze_5_shot": r"问题 \d+\.", "cot_gaokao_mathqa_5_shot": r"问题 \d+\.",
          "cot_minerva_math_4_shot": r"Problem:", "cot_math_sat_4_shot": r"Problem:",
          "cot_mmlu_stem_4_shot": r"Problem:", "cot_ocwcourses_4_shot": r"Problem:", "pal_math_4_shot": r"Problem:"}


@dataclass
class Prompt:
    """A prompt and the strings that end its completion."""

    text: str
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PromptFile:
    """One of the repository's few-shot prompt files: exemplar text, ``template`` and ``stop_words``."""

    name: str
    cls: str
    few_shot_prompt: str
    template: str
    stop_words: tuple[str, ...]

    @property
    def nominal_shots(self) -> int:
        """The number of exemplars the file name states (``cot_gsm_8_shot`` → 8; ``pal_math_4_shot`` holds 5)."""
        return int(re.search(r"_(\d+)_shot$", self.name).group(1))

    def format(self, task_input: str, few_shot_prompt: str | None = None) -> str:
        """The repository's ``format_prompt(task_input, task_output="")``: the template, then ``.rstrip()``."""
        fsp = self.few_shot_prompt if few_shot_prompt is None else few_shot_prompt
        return self.template.format(few_shot_prompt=fsp, task_input=task_input, task_output="").rstrip()


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def prompt_file(name: str, data_dir: str | os.PathLike | None = None) -> PromptFile:
    """The repository's prompt file ``name`` (e.g. ``"cot_gsm_8_shot"``), read from ``$DSM_DATA_DIR``."""
    path = require(PROMPTS_FILE, data_dir)
    doc = _load(str(path), path.stat().st_mtime)
    table = doc.get("prompts", {})
    if name not in table:
        raise KeyError(f"{path}: no prompt {name!r}; it has {sorted(table)}")
    rec = table[name]
    try:
        text = rec["module_constants"]["few_shot_prompt"]
        return PromptFile(name, rec["class"], text, rec["template"], tuple(rec["stop_words"]))
    except KeyError as exc:
        raise KeyError(f"{path}: prompt {name!r} lacks field {exc}") from None


def prompt_name(benchmark: str, mode: str) -> str:
    """Which repository prompt file ``benchmark`` uses in a few-shot ``mode``."""
    table = FEW_SHOT_PROMPTS if mode == "few_shot_cot" else PAL_PROMPTS if mode == "few_shot_pot" else None
    if table is None:
        raise ValueError(f"mode {mode!r} is not few-shot; few-shot modes: few_shot_cot, few_shot_pot")
    if benchmark not in table:
        raise ValueError(f"DeepSeek-Math's evaluation has no {mode} prompt for {benchmark!r}; "
                         f"benchmarks with one: {', '.join(table)}")
    return table[benchmark]


def _raw_blocks(name: str, data_dir) -> list[str]:
    """The exemplar text cut at each exemplar head; ``"".join(blocks) == few_shot_prompt``."""
    pf = prompt_file(name, data_dir)
    text = pf.few_shot_prompt
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\n))" + _HEADS[name], text)]
    if not starts or starts[0] != 0:
        raise ValueError(f"{PROMPTS_FILE}: prompt {name!r} does not start with an exemplar head {_HEADS[name]!r}")
    bounds = starts + [len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def exemplar_blocks(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The exemplars of prompt file ``name`` one by one, as the file holds them (trailing separators dropped)."""
    return [b.rstrip() for b in _raw_blocks(name, data_dir)]


def n_exemplars(name: str, data_dir: str | os.PathLike | None = None) -> int:
    """How many exemplars prompt file ``name`` holds."""
    return len(_raw_blocks(name, data_dir))


def few_shot_prefix(name: str, n_shot: int | None = None, data_dir: str | os.PathLike | None = None) -> str:
    """The exemplar text of prompt file ``name``, cut to its first ``n_shot`` exemplars (None: all of them).

    A cut keeps the file's own text up to the end of exemplar ``n_shot`` (then stripped, as the file strips its
    whole text), so it equals what the repository would build from a file holding only those exemplars.
    """
    blocks = _raw_blocks(name, data_dir)
    if n_shot is None or n_shot == len(blocks):
        return prompt_file(name, data_dir).few_shot_prompt
    if not 1 <= n_shot <= len(blocks):
        raise ValueError(f"n_shot={n_shot} for {name}: must be between 1 and {len(blocks)} (its exemplars)")
    return "".join(blocks[:n_shot]).rstrip()


def _task_input(item: Item, name: str) -> str:
    """The question as the repository's prompt files show it (multiple-choice options in their layout)."""
    q = item.question.strip()
    if name in ("cot_mmlu_stem_4_shot", "cot_math_sat_4_shot"):
        if not item.choices:
            raise ValueError(f"{item.id}: a multiple-choice prompt needs choices")
        opts = ", ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(item.choices))
        return f"{q}\nWhat of the following is the right choice? Explain your answer.\n{opts}"
    if name == "cot_gaokao_mathqa_5_shot":
        if not item.choices:
            raise ValueError(f"{item.id}: a multiple-choice prompt needs choices")
        return f"{q}\n从以下选项中选择:    " + " ".join(f"({LETTERS[i]}){c}" for i, c in enumerate(item.choices))
    return q


def instruction(benchmark: str, mode: str) -> str:
    """The zero-shot instruction of ``mode`` in the benchmark's language."""
    zh = benchmark in CHINESE
    if mode == "zero_shot_cot":
        return COT_INSTRUCTION_ZH if zh else COT_INSTRUCTION
    if mode == "tool":
        return TOOL_INSTRUCTION_ZH if zh else TOOL_INSTRUCTION
    if mode == "pot":
        return POT_INSTRUCTION_ZH if zh else POT_INSTRUCTION
    raise ValueError(f"mode {mode!r} has no instruction; zero-shot modes: zero_shot_cot, tool, pot")


def stop_strings(benchmark: str, mode: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Where a completion of ``mode`` on ``benchmark`` ends (besides EOS)."""
    if mode in ("few_shot_cot", "few_shot_pot"):
        return list(prompt_file(prompt_name(benchmark, mode), data_dir).stop_words)
    if mode == "tool":
        return [OUTPUT_FENCE] + CHAT_STOP
    if mode in ("zero_shot_cot", "pot"):
        return list(CHAT_STOP)
    raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")


def has_prompt(benchmark: str, mode: str) -> bool:
    """Whether ``benchmark`` can be prompted in ``mode`` (few-shot modes need a repository prompt file)."""
    if mode == "few_shot_cot":
        return benchmark in FEW_SHOT_PROMPTS
    if mode == "few_shot_pot":
        return benchmark in PAL_PROMPTS
    return mode in MODES and benchmark != "minif2f"


def build_prompt(item: Item, mode: str, *, n_shot: int | Mapping[str, int] | None = None,
                 data_dir: str | os.PathLike | None = None) -> Prompt:
    """The prompt text and stop strings for ``item`` in ``mode`` (see the module docstring).

    ``n_shot``: keep only the first ``n_shot`` exemplars of a few-shot prompt (None: all of them); a mapping
    gives the count per prompt file name (``{"cot_gsm_8_shot": 2}``), files it does not name keep all.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if item.benchmark == "minif2f":
        raise ValueError("minif2f is loaded for its statements only (formal proving is not evaluated here)")
    stop = stop_strings(item.benchmark, mode, data_dir)
    if mode in ("few_shot_cot", "few_shot_pot"):
        name = prompt_name(item.benchmark, mode)
        pf = prompt_file(name, data_dir)
        k = n_shot.get(name) if isinstance(n_shot, Mapping) else n_shot
        return Prompt(pf.format(_task_input(item, name), few_shot_prefix(name, k, data_dir)), stop)
    q = question_with_choices(item)
    return Prompt(problems.chat_prompt(q, instruction(item.benchmark, mode)), stop)


def build_prompts(items: Sequence[Item], mode: str, *, n_shot: int | Mapping[str, int] | None = None,
                  data_dir: str | os.PathLike | None = None) -> list[Prompt]:
    """:func:`build_prompt` for many items."""
    return [build_prompt(it, mode, n_shot=n_shot, data_dir=data_dir) for it in items]


def is_multiple_choice(benchmark: str) -> bool:
    """Whether ``benchmark`` is graded by option letter."""
    return benchmark in MULTIPLE_CHOICE


# --------------------------------------------------------------------------------------------------
# deriving the data file from the upstream repository (for `python -m dsm_utils.data fetch`)


def _parse_prompt_module(source: str, filename: str) -> dict:
    """One upstream ``few_shot_prompts/*.py`` file -> its record of the data file, parsed without importing it."""
    tree = ast.parse(source, filename)
    consts: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            val = node.value
            strip = False
            # `"""...""".strip()` as the files write their exemplar text
            if (isinstance(val, ast.Call) and isinstance(val.func, ast.Attribute) and val.func.attr == "strip"
                    and not val.args):
                val, strip = val.func.value, True
            try:
                lit = ast.literal_eval(val)
            except ValueError:
                continue
            if isinstance(lit, str):  # the exemplar texts; other constants stay in the .py files
                consts[node.targets[0].id] = lit.strip() if strip else lit
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    fmt = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "format_prompt")
    stop_fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "stop_words")
    stops = next(ast.literal_eval(n.value) for n in ast.walk(stop_fn) if isinstance(n, ast.Return))
    fstring = next(n.value for n in ast.walk(fmt) if isinstance(n, ast.Assign) and isinstance(n.value, ast.JoinedStr))
    parts = []
    for v in fstring.values:
        if isinstance(v, ast.Constant):
            parts.append(v.value.replace("{", "{{").replace("}", "}}"))
        else:
            parts.append("{" + ast.unparse(v.value) + "}")
    return {"source_file": UPSTREAM["folder"] + filename,
            "class": cls.name, "format_prompt_args": [a.arg for a in fmt.args.args[1:]],
            "template": "".join(parts), "template_postprocess": "prompt.rstrip()", "stop_words": stops,
            "module_constants": consts}


def derive_prompts_json(sources: dict[str, str]) -> dict:
    """Rebuild ``deepseek_math_prompts.json`` from the upstream files' text (``{file name: source}``).

    ``data fetch`` downloads :data:`UPSTREAM_PROMPT_FILES` from :data:`UPSTREAM_RAW` and writes
    :func:`prompts_json_text` of the result to :data:`PROMPTS_FILE`; the exemplar texts, templates and stop words
    equal those of the shared copy (a test checks the round trip on the shared copy's own records).
    """
    prompts = {}
    for filename in sorted(sources):
        prompts[filename.removesuffix(".py")] = _parse_prompt_module(sources[filename], filename)
    return {"source": {**UPSTREAM, "licence": "MIT (LICENSE-CODE, Copyright (c) 2023 DeepSeek)"}, "prompts": prompts}


def prompts_json_text(doc: dict) -> str:
    """The file text of a prompts document, byte for byte as the shared copy is written (sha256 in its README)."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


__all__ += ["prompts_json_text"]
