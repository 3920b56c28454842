"""Evaluate a generator on a benchmark in one mode: prompts → completions (→ programs run) → grades → metrics.

``evaluate(generator, items, mode)`` glues :mod:`dsm_utils.prompts`, a generator from
:mod:`dsm_utils.generation` (anything with ``.generate(prompts, SamplingConfig) -> list[list[Completion]]``),
:mod:`dsm_utils.sandbox` (``pot`` and ``tool`` modes), :mod:`dsm_utils.grading` and :mod:`dsm_utils.metrics`.
It returns an :class:`EvalResult`: one record per (item, sample) as a DataFrame and a JSON-able metrics dict.

:data:`PAPER_RESULTS` holds the paper's reported numbers (Tables 2, 3 and 5) for the comparison tables; 09 reads
its Table 5 rows (Instruct and RL, chain-of-thought and tool-integrated) from there too.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import grading, metrics, sandbox
from .benchmarks import Item, question_with_choices
from .generation import Completion, SamplingConfig
from .prompts import MODES, OUTPUT_FENCE, build_prompts

__all__ = ["EvalResult", "evaluate", "PAPER_RESULTS", "PAPER_MAJ", "PAPER_GENERAL", "paper_number", "paper_row_for",
           "default_k_values", "comparison_table", "pal_program"]

# --------------------------------------------------------------------------------------------------
# the paper's numbers (accuracy in %)

#: Reported accuracies (%) of the DeepSeekMath 7B models, by model → mode → benchmark.
#: Base: Table 2 (few-shot chain-of-thought) and Table 3 (few-shot program-of-thought with the PAL prompts).
#: Instruct / RL: Table 5 (zero-shot chain-of-thought and tool-integrated reasoning, greedy).
#: "math" is the full 5,000-problem MATH test set; the paper reports no MATH-500 number.
PAPER_RESULTS: dict[str, dict[str, dict[str, float]]] = {
    "DeepSeekMath-Base 7B": {
        "few_shot_cot": {"gsm8k": 64.2, "math": 36.2, "ocw": 15.4, "sat": 84.4, "mmlu_stem": 56.5, "cmath": 71.7,
                         "gaokao_mathcloze": 20.3, "gaokao_mathqa": 35.3},
        "few_shot_pot": {"gsm8k": 66.9, "math": 31.4},
    },
    "DeepSeekMath-Instruct 7B": {
        "zero_shot_cot": {"gsm8k": 82.9, "math": 46.8, "mgsm_zh": 73.2, "cmath": 84.6},
        "tool": {"gsm8k": 83.7, "math": 57.4, "mgsm_zh": 72.0, "cmath": 84.3},
    },
    "DeepSeekMath-RL 7B": {
        "zero_shot_cot": {"gsm8k": 88.2, "math": 51.7, "mgsm_zh": 79.6, "cmath": 88.8},
        "tool": {"gsm8k": 86.7, "math": 58.8, "mgsm_zh": 78.4, "cmath": 87.6},
    },
}
#: Self-consistency reported in the abstract / §1: DeepSeekMath-RL 7B, 64 samples on MATH.
PAPER_MAJ: dict[str, dict[str, dict[int, float]]] = {"DeepSeekMath-RL 7B": {"math": {64: 60.9}}}
#: Table 3 (formal, miniF2F few-shot autoformalised proofs) and Table 4 (general benchmarks) of the base model;
#: not evaluated by this project, listed for completeness of the final tables.
PAPER_GENERAL: dict[str, dict[str, float]] = {
    "DeepSeekMath-Base 7B": {"minif2f_valid": 25.8, "minif2f_test": 24.6, "mmlu": 54.9, "bbh": 59.5,
                             "humaneval": 40.9, "mbpp": 52.6},
}


def paper_number(model: str, benchmark: str, mode: str) -> float | None:
    """The paper's reported accuracy (%) of ``model`` on ``benchmark`` in ``mode``; None when not reported.

    MATH-500 has no paper number (the paper reports the full 5,000-problem MATH test only).
    """
    return PAPER_RESULTS.get(model, {}).get(mode, {}).get(benchmark)


def paper_row_for(checkpoint: str, mode: str | None = None) -> str | None:
    """Which paper model a checkpoint should be compared with, guessed from its name and the mode.

    ``…base…`` / pre-training runs → Base; ``…instruct…`` / SFT runs → Instruct; ``…rl…`` / GRPO runs → RL;
    otherwise by mode (few-shot → Base, zero-shot/tool → Instruct).
    """
    s = checkpoint.lower()
    if re.search(r"(^|[^a-z])rl([^a-z]|$)|grpo", s):
        return "DeepSeekMath-RL 7B"
    if "instruct" in s or "sft" in s:
        return "DeepSeekMath-Instruct 7B"
    if "base" in s or "pretrain" in s:
        return "DeepSeekMath-Base 7B"
    if mode in ("few_shot_cot", "few_shot_pot"):
        return "DeepSeekMath-Base 7B"
    if mode in ("zero_shot_cot", "tool"):
        return "DeepSeekMath-Instruct 7B"
    return None


def full_test_size(benchmark: str) -> int | None:
    """Items in the benchmark's whole test split (None for an unknown benchmark)."""
    from .benchmarks import expected_count

    try:
        return expected_count(benchmark, "test")
    except KeyError:
        return None


def comparison_table(rows: Sequence[dict[str, Any]], comparable_only: bool = True):
    """A DataFrame of our accuracies beside the paper's.

    ``rows``: dicts with ``model`` (our checkpoint label), ``benchmark``, ``mode``, ``accuracy`` (0–1),
    ``n_items`` and optionally ``paper_model``. Adds ``n``, ``ours_%`` with its 95 % binomial interval
    ``ours_ci_%``, ``paper_model``, ``paper_%``. ``comparable_only``: keep only rows that can sit beside a paper
    number, i.e. the paper reports this model/mode/benchmark and we evaluated its *whole* test split (a subset,
    or MATH-500 against the full MATH number, is not the paper's measurement).
    """
    import pandas as pd

    from .metrics import binomial_ci

    out = []
    for r in rows:
        pm = r.get("paper_model") or paper_row_for(str(r["model"]), r["mode"])
        acc = r.get("accuracy")
        n = r.get("n_items")
        paper = paper_number(pm, r["benchmark"], r["mode"]) if pm else None
        full = full_test_size(r["benchmark"])
        if comparable_only and (paper is None or n is None or full is None or int(n) != full):
            continue
        ok = acc is not None and not (isinstance(acc, float) and math.isnan(acc)) and n
        lo, hi = binomial_ci(round(acc * n), int(n)) if ok else (None, None)
        out.append({"model": r["model"], "benchmark": r["benchmark"], "mode": r["mode"],
                    "n": None if n is None else int(n),
                    "ours_%": round(100 * acc, 1) if ok else None,
                    "ours_ci_%": f"{100 * lo:.1f}–{100 * hi:.1f}" if ok else None,
                    "paper_model": pm, "paper_%": paper})
    return pd.DataFrame(out, columns=["model", "benchmark", "mode", "n", "ours_%", "ours_ci_%", "paper_model",
                                      "paper_%"])


__all__ += ["full_test_size"]


# --------------------------------------------------------------------------------------------------
# result


@dataclass
class EvalResult:
    """Per-(item, sample) ``records`` and the ``metrics`` dict of one evaluation."""

    records: Any  # pandas.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)

    def per_item(self):
        """One row per item: its first sample's verdict, the number of correct samples, and the majority verdict."""
        import pandas as pd

        rows = []
        for item_id, g in self.records.groupby("item_id", sort=False):
            g = g.sort_values("sample")
            answers = [a if isinstance(a, str) else None for a in g["extracted"]]
            rows.append({"item_id": item_id, "benchmark": g["benchmark"].iat[0], "subject": g["subject"].iat[0],
                         "level": g["level"].iat[0], "correct": bool(g["correct"].iat[0]),
                         "n_samples": len(g), "n_correct": int(g["correct"].sum()),
                         "maj_correct": metrics.maj_at_k(answers, list(g["correct"]))})
        return pd.DataFrame(rows)

    def breakdown(self, by: str | Sequence[str] = "subject"):
        """Accuracy (first sample) per subject / level."""
        return metrics.breakdown(self.records[self.records["sample"] == 0], by)


def default_k_values(n_samples: int) -> list[int]:
    """1, powers of two below ``n_samples``, and ``n_samples`` itself."""
    ks = {1, n_samples}
    k = 2
    while k < n_samples:
        ks.add(k)
        k *= 2
    return sorted(ks)


# --------------------------------------------------------------------------------------------------
# generation helpers


def _generate(generator, prompts: list[str], cfg: SamplingConfig, progress: bool, desc: str) -> list[list[Completion]]:
    """Call ``generator.generate`` (passing progress/desc only when its signature takes them)."""
    if not prompts:
        return []
    try:
        params = inspect.signature(generator.generate).parameters
    except (TypeError, ValueError):
        params = {}
    kw = {}
    if "progress" in params:
        kw["progress"] = progress
    if "desc" in params:
        kw["desc"] = desc
    outs = generator.generate(prompts, cfg, **kw)
    if len(outs) != len(prompts):
        raise RuntimeError(f"generator returned {len(outs)} results for {len(prompts)} prompts")
    return outs


_TOOL_CALL_RE = re.compile(r"```[ \t]*(?:python|py|python3)[ \t]*\r?\n.*?```\s*$", re.S | re.I)


def _wants_tool(segment: str) -> bool:
    """A tool-integrated completion asks for execution when it ends with a closed python block."""
    return bool(_TOOL_CALL_RE.search(segment))


def pal_program(completion: str) -> str:
    """The program of a few-shot PAL completion, read the way DeepSeek-Math's ``run_pal_eval.py`` reads it.

    GSM8K form (no fences): the completion is a ``def solution(): ... return result`` function; the sandbox's PoT
    convention calls ``solution()``. MATH form: a fenced program that sets ``answer``, then "The imports required
    for this program are" and a fenced import block (exactly four fences); the program is the imports, then the
    code, then ``print(answer)``. Any other MATH-form completion answers ``[invalid]``.
    """
    if "```" not in completion:
        return completion
    parts = completion.split("```")
    if len(parts) != 5:
        return "print('[invalid]')"
    return f"{parts[3]}\n\n{parts[1]}\nprint(answer)\n"


def _pot_prediction(res: sandbox.SandboxResult) -> str:
    """What a program-of-thought program answered: the last printed line (nothing when it failed)."""
    if not res.ok:
        return ""
    out = res.stdout
    if out.endswith(sandbox.TRUNCATION_MARKER):
        out = out[: -len(sandbox.TRUNCATION_MARKER)]
    lines = [ln.strip() for ln in out.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@dataclass
class _Sample:
    item: int
    sample: int
    text: str = ""
    n_tokens: int = 0
    finish_reason: str = "stop"
    tool_calls: int = 0
    sandbox_error: str | None = None
    prediction: str = ""  # what is graded (the text, or a PoT program's output)


def _run_tool_rounds(generator, prompts: list[str], states: list[_Sample], last_segments: list[str], stop: list[str],
                     base_cfg: SamplingConfig, max_rounds: int, sandbox_timeout_s: float, progress: bool) -> None:
    """Tool-integrated reasoning: run each completion's program, append its output block, let the model go on."""
    segs = dict(enumerate(last_segments))
    for rnd in range(max_rounds):
        need = [k for k, seg in segs.items() if states[k].finish_reason == "stop" and _wants_tool(seg)]
        if not need:
            return
        codes = [sandbox.extract_program(segs[k]) or "" for k in need]
        results = sandbox.run_many(codes, timeout_s=sandbox_timeout_s, cpu_s=sandbox_timeout_s, progress=False)
        conts = []
        for k, res in zip(need, results):
            st = states[k]
            st.tool_calls += 1
            if not res.ok and st.sandbox_error is None:
                st.sandbox_error = res.error
            if not st.text.endswith("\n"):
                st.text += "\n"
            st.text += sandbox.format_output_block(res) + "\n"
            conts.append(prompts[st.item] + st.text)
        cfg = SamplingConfig(max_new_tokens=base_cfg.max_new_tokens, temperature=base_cfg.temperature,
                             top_p=base_cfg.top_p, n=1, stop=stop, seed=base_cfg.seed + rnd + 1)
        outs = _generate(generator, conts, cfg, progress, desc=f"tool round {rnd + 1}")
        segs = {}
        for k, out in zip(need, outs):
            c = out[0]
            st = states[k]
            st.text += c.text
            st.n_tokens += len(c.token_ids)
            st.finish_reason = c.finish_reason
            segs[k] = c.text


# --------------------------------------------------------------------------------------------------
# the evaluation


def _grade(items: Sequence[Item], states: list[_Sample], compat: str, workers: int | None,
           progress: bool) -> list[grading.GradeResult]:
    preds, refs, probs, slots = [], [], [], []
    results: list[grading.GradeResult | None] = [None] * len(states)
    for k, st in enumerate(states):
        it = items[st.item]
        if it.answer is None:
            raise ValueError(f"{it.id}: item has no reference answer (miniF2F is not graded)")
        if it.choices and len(it.answer) > 1:
            # Several correct options (a few Gaokao-MathQA items): the set of letters must match exactly.
            ext = grading.extract_answer(st.prediction)
            letters = "".join(sorted(set(re.findall(r"[A-J]", ext or ""))))
            ok = letters == it.answer
            results[k] = grading.GradeResult(ok, ext, "no_answer" if ext is None else ("match" if ok else "mismatch"))
            continue
        preds.append(st.prediction)
        refs.append(it.answer)
        probs.append(question_with_choices(it) if it.choices else None)
        slots.append(k)
    graded = grading.grade_batch(preds, refs, probs, compat=compat, workers=workers, progress=progress) if preds else []
    for k, g in zip(slots, graded):
        results[k] = g
    return results  # type: ignore[return-value]


def evaluate(generator, items: Sequence[Item], mode: str, *, n_samples: int = 1, temperature: float = 0.0,
             top_p: float = 1.0, max_new_tokens: int = 512, k_values: Sequence[int] | None = None,
             compat: str = "strict", n_shot: int | dict[str, int] | None = None, seed: int = 0,
             max_tool_rounds: int = 2,
             sandbox_timeout_s: float = 5.0, grade_workers: int | None = None, maj_orders: int = 1,
             data_dir: str | None = None, progress: bool = True) -> EvalResult:
    """Evaluate ``generator`` on ``items`` in ``mode`` (one of :data:`dsm_utils.prompts.MODES`).

    ``n_samples`` completions per item at ``temperature`` (0 = greedy). ``k_values``: the K of the Maj@K /
    Pass@K numbers in the metrics (default 1, powers of two, ``n_samples``); full curves K = 1…``n_samples``
    are in ``metrics["maj_curve"]`` / ``metrics["pass_curve"]`` whenever ``n_samples > 1``. In ``tool`` mode a
    completion that ends with a python block has the program run in the sandbox, its output appended and
    generation continued, at most ``max_tool_rounds`` times. In ``pot`` mode the completion's program (the last
    python block, or the whole completion when it has none) is run and its last printed line is the answer.
    """
    import pandas as pd

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    items = list(items)
    prompts = build_prompts(items, mode, n_shot=n_shot, data_dir=data_dir)
    texts = [p.text for p in prompts]
    states: list[_Sample] = []
    # Items of different benchmarks may have different stop strings: one generate call per stop set.
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(tuple(p.stop), []).append(i)
    by_key: dict[tuple[int, int], _Sample] = {}
    segments: dict[tuple[int, int], str] = {}
    for stop, idx in groups.items():
        cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=n_samples,
                             stop=list(stop), seed=seed)
        outs = _generate(generator, [texts[i] for i in idx], cfg, progress, desc=f"{mode}")
        for i, comps in zip(idx, outs):
            if len(comps) != n_samples:
                raise RuntimeError(f"generator returned {len(comps)} completions for an item, expected {n_samples}")
            for j, c in enumerate(comps):
                by_key[(i, j)] = _Sample(item=i, sample=j, text=c.text, n_tokens=len(c.token_ids),
                                         finish_reason=c.finish_reason)
                segments[(i, j)] = c.text
    keys = sorted(by_key)
    states = [by_key[k] for k in keys]
    if mode == "tool" and max_tool_rounds > 0:
        for stop, idx in groups.items():
            sel = [n for n, st in enumerate(states) if st.item in set(idx)]
            sub = [states[n] for n in sel]
            base = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=1,
                                  stop=list(stop), seed=seed)
            _run_tool_rounds(generator, texts, sub, [segments[keys[n]] for n in sel], list(stop), base,
                             max_tool_rounds, sandbox_timeout_s, progress)
    if mode in ("pot", "few_shot_pot"):
        if mode == "pot":
            codes = [sandbox.extract_program(st.text) or st.text for st in states]
        else:
            codes = [pal_program(st.text) for st in states]
        results = sandbox.run_many(codes, pot=True, timeout_s=sandbox_timeout_s, cpu_s=sandbox_timeout_s,
                                   progress=progress, desc="pot programs")
        for st, res in zip(states, results):
            st.prediction = _pot_prediction(res)
            st.sandbox_error = res.error
            st.tool_calls = 1
    else:
        for st in states:
            st.prediction = st.text
    grades = _grade(items, states, compat, grade_workers, progress)

    rows = []
    for st, g in zip(states, grades):
        it = items[st.item]
        rows.append({"item_id": it.id, "benchmark": it.benchmark, "subject": it.subject, "level": it.level,
                     "sample": st.sample, "mode": mode, "reference": it.answer, "completion": st.text,
                     "prediction": st.prediction if mode in ("pot", "few_shot_pot") else None, "extracted": g.extracted,
                     "correct": bool(g.correct), "reason": g.reason, "n_tokens": st.n_tokens,
                     "finish_reason": st.finish_reason, "tool_calls": st.tool_calls,
                     "sandbox_error": st.sandbox_error})
    records = pd.DataFrame(rows, columns=["item_id", "benchmark", "subject", "level", "sample", "mode", "reference",
                                          "completion", "prediction", "extracted", "correct", "reason", "n_tokens",
                                          "finish_reason", "tool_calls", "sandbox_error"])
    m = summarize(records, n_samples=n_samples, k_values=k_values, maj_orders=maj_orders, seed=seed)
    m.update({"mode": mode, "temperature": temperature, "max_new_tokens": max_new_tokens, "compat": compat})
    return EvalResult(records=records, metrics=m)


def summarize(records, *, n_samples: int, k_values: Sequence[int] | None = None, maj_orders: int = 1,
              seed: int = 0) -> dict[str, Any]:
    """The metrics dict of a records DataFrame (see :func:`evaluate`)."""
    first = records[records["sample"] == 0]
    benches = sorted(set(records["benchmark"]))
    sbx = records["sandbox_error"].dropna()
    m: dict[str, Any] = {
        "benchmark": benches[0] if len(benches) == 1 else benches,
        "n_items": int(len(first)),
        "n_samples": int(n_samples),
        "accuracy": metrics.accuracy(first["correct"]),
        "sample_accuracy": metrics.accuracy(records["correct"]),
        "mean_completion_tokens": float(records["n_tokens"].mean()) if len(records) else float("nan"),
        "n_no_answer": int((records["reason"] == "no_answer").sum()),
        "n_grade_timeouts": int((records["reason"] == "timeout").sum()),
        "n_grade_errors": int((records["reason"] == "error").sum()),
        "n_sandbox_timeouts": int((sbx == "timeout").sum()),
        "n_sandbox_errors": int((sbx != "timeout").sum()),
        "n_truncated": int((records["finish_reason"] == "length").sum()),
        "mean_tool_calls": float(records["tool_calls"].mean()) if len(records) else 0.0,
    }
    for col in ("subject", "level"):
        if first[col].notna().any():
            bd = metrics.breakdown(first, col)
            m[f"by_{col}"] = {str(k): {"n": int(n), "accuracy": float(a)}
                              for k, n, a in zip(bd[col], bd["n"], bd["accuracy"])}
    if n_samples > 1 and len(records):
        answers, correct, n_correct = [], [], []
        for _, g in records.groupby("item_id", sort=False):
            g = g.sort_values("sample")
            answers.append([a if isinstance(a, str) else None for a in g["extracted"]])
            correct.append([bool(c) for c in g["correct"]])
            n_correct.append(int(g["correct"].sum()))
        ks_all = metrics.k_grid(n_samples)
        maj = metrics.maj_at_k_curve(answers, correct, ks_all, n_orders=maj_orders, seed=seed)
        pas = metrics.pass_at_k_curve(n_correct, [len(a) for a in answers], ks_all)
        for k in (k_values or default_k_values(n_samples)):
            if 1 <= k <= n_samples:
                m[f"maj@{k}"] = maj[k]
                m[f"pass@{k}"] = pas[k]
        m["maj_curve"] = maj
        m["pass_curve"] = pas
    return m


__all__ += ["summarize"]
