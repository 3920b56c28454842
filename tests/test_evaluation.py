"""evaluate(): exact grading/metrics with a fake generator in every mode, and one real tiny-model run."""
from __future__ import annotations

import json

import pytest

from dsm_utils import benchmarks as B
from dsm_utils import evaluation as E
from dsm_utils.generation import Completion


class FakeGenerator:
    """Returns completions chosen by ``fn(prompt, cfg)``; records every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def generate(self, prompts, cfg):
        self.calls.append((list(prompts), cfg))
        out = []
        for p in prompts:
            texts = self.fn(p, cfg)
            out.append([Completion(t, list(range(len(t.split()))), "stop") for t in texts[:cfg.n]])
        return out


@pytest.fixture(scope="module")
def toy_items():
    return B.load_benchmark("toy", limit=4)


def _answer_of(items, prompt):
    return next(it.answer for it in items if it.question in prompt)


def test_zero_shot_sampling_metrics_exact(toy_items):
    # Samples per item: right, wrong ("1000"), right, no answer -> pass@1 = 0.5, majority right.
    def fn(p, cfg):
        a = _answer_of(toy_items, p)
        return [f"so \\boxed{{{a}}}", "\\boxed{1000}", f"The answer is \\boxed{{{a}}}.", "I do not know"]
    gen = FakeGenerator(fn)
    r = E.evaluate(gen, toy_items, "zero_shot_cot", n_samples=4, temperature=0.7, progress=False)
    assert gen.calls[0][1].n == 4 and gen.calls[0][1].stop == ["User:"]
    m = r.metrics
    assert m["n_items"] == 4 and len(r.records) == 16
    assert m["accuracy"] == 1.0 and m["sample_accuracy"] == 0.5
    assert m["pass@1"] == pytest.approx(0.5) and m["pass@4"] == 1.0
    assert m["pass@2"] == pytest.approx(1 - 1 / 6)  # C(2,2)/C(4,2) of picking the two wrong ones
    assert m["maj@4"] == 1.0 and m["maj_curve"][2] == 1.0  # tie "a" vs "1000" goes to the first
    assert m["n_no_answer"] == 4
    assert set(m["pass_curve"]) == {1, 2, 3, 4}
    assert set(r.per_item()["n_correct"]) == {2}
    json.dumps(m)  # the notebook writes it to metrics.json


def test_few_shot_grading_and_breakdown(data_root):
    items = B.load_benchmark("math500", limit=3) + B.load_benchmark("mmlu_stem", limit=2)

    def fn(p, cfg):
        if "What of the following is the right choice" in p:  # the MMLU-STEM prompt's option layout
            return ["So it is 4.\nFinal Answer: The final answer is (B). I hope it is correct."]
        it = next(i for i in items if i.question in p)
        return [f"Work.\nFinal Answer: The final answer is ${it.answer}$. I hope it is correct."]
    gen = FakeGenerator(fn)
    r = E.evaluate(gen, items, "few_shot_cot", progress=False)
    assert len(gen.calls) == 1  # MATH-500 and MMLU-STEM share the Minerva stop strings
    got = dict(zip(r.records["item_id"], r.records["correct"]))
    assert all(got[i.id] for i in items[:3])
    assert got["mmlu_stem-0"] is True and got["mmlu_stem-1"] is False  # answers B and C
    assert r.metrics["accuracy"] == pytest.approx(4 / 5)
    assert "by_subject" in r.metrics and "by_level" in r.metrics
    assert set(r.breakdown("subject")["subject"]) >= {"abstract_algebra"}


def test_multi_answer_choice(data_root):
    items = [it for it in B.load_benchmark("gaokao_mathqa") if it.answer == "ABD"]
    r = E.evaluate(FakeGenerator(lambda p, c: ["故选 \\boxed{ABD}"]), items, "zero_shot_cot", progress=False)
    assert r.metrics["accuracy"] == 1.0
    r = E.evaluate(FakeGenerator(lambda p, c: ["\\boxed{AB}"]), items, "zero_shot_cot", progress=False)
    assert r.metrics["accuracy"] == 0.0


def test_pot_runs_the_program(toy_items):
    def fn(p, cfg):
        a = _answer_of(toy_items, p)
        return [f"```python\nx = {a}\nprint(x)\n```"]
    r = E.evaluate(FakeGenerator(fn), toy_items[:2], "pot", progress=False)
    assert r.metrics["accuracy"] == 1.0
    assert list(r.records["prediction"]) == [it.answer for it in toy_items[:2]]
    r = E.evaluate(FakeGenerator(lambda p, c: ["```python\nwhile True:\n    pass\n```"]), toy_items[:1], "pot",
                   sandbox_timeout_s=1.0, progress=False)
    assert r.metrics["accuracy"] == 0.0 and r.metrics["n_sandbox_timeouts"] + r.metrics["n_sandbox_errors"] == 1
    assert r.metrics["n_no_answer"] == 1


def test_tool_rounds_append_output_and_stop_after_two(toy_items):
    def fn(p, cfg):
        assert "```output" in cfg.stop
        n_out = p.count("```output")
        if n_out == 0:
            return ["Compute.\n```python\nprint(40 + 2)\n```\n"]
        return ["Again.\n```python\nprint(1)\n```\n"]  # keeps asking for the tool
    gen = FakeGenerator(fn)
    r = E.evaluate(gen, toy_items[:1], "tool", max_tool_rounds=2, progress=False)
    rec = r.records.iloc[0]
    assert rec["tool_calls"] == 2 and len(gen.calls) == 3
    assert "```output\n42\n```" in rec["completion"] and rec["completion"].count("```output") == 2
    assert rec["extracted"] == "1"  # no box: the last output block is the answer

    def fn2(p, cfg):
        if "```output" in p:
            return ["So the answer is \\boxed{42}."]
        return ["```python\nprint(6 * 7)\n```"]
    r = E.evaluate(FakeGenerator(fn2), [B.Item(question="6*7?", answer="42", id="q", benchmark="toy")], "tool",
                   progress=False)
    assert r.metrics["accuracy"] == 1.0 and r.metrics["mean_tool_calls"] == 1.0


def test_paper_numbers_and_table():
    # Every stored paper cell is reached from a checkpoint name the way the notebooks name them, and lands in
    # the row of that model, benchmark and mode (a swapped key or a wrong routing puts another cell there).
    ckpt = {"DeepSeekMath-Base 7B": "runs/cpu/03_pretrain/checkpoint", "DeepSeekMath-Instruct 7B": "runs/cpu/05_sft/x",
            "DeepSeekMath-RL 7B": "runs/cpu/06_grpo/checkpoint"}
    rows = [{"model": ckpt[m], "benchmark": b, "mode": mode, "accuracy": i / 1000, "n_items": E.full_test_size(b)}
            for i, (m, mode, b) in enumerate((m, mode, b) for m, t in E.PAPER_RESULTS.items() for mode, c in t.items()
                                             for b in c)]
    t = E.comparison_table(rows)
    assert len(t) == len(rows) > 20
    for r, (_, got) in zip(rows, t.iterrows()):
        m = next(k for k, v in ckpt.items() if v == r["model"])
        assert got["paper_model"] == m and got["paper_%"] == E.PAPER_RESULTS[m][r["mode"]][r["benchmark"]]
        assert got["ours_%"] == round(100 * r["accuracy"], 1)
    # Unreported cells stay empty rather than borrowing a neighbour's number; an explicit paper_model wins.
    assert E.paper_number("DeepSeekMath-Base 7B", "mgsm_zh", "few_shot_cot") is None
    assert E.paper_number("DeepSeekMath-RL 7B", "math500", "zero_shot_cot") is None  # MATH-500 is not the paper's MATH
    # A subset of the test split is not the paper's measurement: it has no row beside the paper.
    assert E.comparison_table([{**rows[0], "n_items": 10}]).empty
    assert E.paper_number("DeepSeekMath-RL 7B", "gsm8k", "few_shot_cot") is None
    assert E.paper_row_for("deepseek-ai/deepseek-math-7b-instruct") == "DeepSeekMath-Instruct 7B"
    t = E.comparison_table([{"model": "mine", "benchmark": "gsm8k", "mode": "zero_shot_cot", "accuracy": None,
                             "paper_model": "DeepSeekMath-RL 7B"}], comparable_only=False)
    assert t.loc[0, "paper_model"] == "DeepSeekMath-RL 7B" and t.loc[0, "ours_%"] is None
    # The stored numbers obey what the paper states about them: the abstract's MATH scores ("51.7%", "60.9%" with
    # self-consistency over 64 samples), and Table 5's RL row above the Instruct row in every cell.
    assert E.paper_number("DeepSeekMath-RL 7B", "math", "zero_shot_cot") == 51.7 and E.PAPER_MAJ[
        "DeepSeekMath-RL 7B"]["math"][64] == 60.9
    for mode in ("zero_shot_cot", "tool"):
        ins, rl = E.PAPER_RESULTS["DeepSeekMath-Instruct 7B"][mode], E.PAPER_RESULTS["DeepSeekMath-RL 7B"][mode]
        assert ins.keys() == rl.keys() and all(rl[b] > ins[b] for b in ins), mode


def test_real_tiny_model_end_to_end_every_mode(data_root):
    from dsm_utils.generation import make_generator
    from dsm_utils.models import load_model
    from dsm_utils.tokenizer import default_tokenizer

    tok = default_tokenizer()
    gen = make_generator("hf", load_model("llama-1m", tokenizer=tok, seed=0), tok, batch_size=8)
    items = B.load_benchmark("toy", limit=2)
    for mode in ("few_shot_cot", "zero_shot_cot", "pot", "tool"):
        r = E.evaluate(gen, items, mode, n_samples=2 if mode == "zero_shot_cot" else 1, n_shot=1,
                       temperature=0.7 if mode == "zero_shot_cot" else 0.0, max_new_tokens=8, progress=False)
        assert len(r.records) == (4 if mode == "zero_shot_cot" else 2)
        assert 0.0 <= r.metrics["accuracy"] <= 1.0 and r.metrics["mean_completion_tokens"] > 0
