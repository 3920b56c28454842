"""Prompts: paper formats, exemplars from train splits only and deterministic, stop strings."""
from __future__ import annotations

import pytest

from dsm_utils import benchmarks as B
from dsm_utils import problems
from dsm_utils import prompts as P


def _norm(q):
    return " ".join(q.split())


@pytest.mark.parametrize("name", sorted(P.FEW_SHOT))
def test_exemplars_never_from_test_and_deterministic(data_root, name):
    ex = P.exemplars(name)
    assert len(ex) == P.FEW_SHOT[name].n_shot
    P._exemplars_cached.cache_clear()
    again = P.exemplars(name)
    assert [e.question for e in ex] == [e.question for e in again]
    test_q = {_norm(it.question) for it in B.load_benchmark(name)}
    assert not any(_norm(e.question) in test_q for e in ex)
    src = P.FEW_SHOT[name].source
    if src is not None:
        assert src[1] == "train"
        assert all(not e.id.startswith(f"{name}-test") for e in ex)


def test_gsm8k_few_shot_format(data_root):
    it = B.load_benchmark("gsm8k", limit=1)[0]
    p = P.build_prompt(it, "few_shot_cot")
    assert p.text.count("Q: ") == 9 and p.text.endswith(f"Q: {it.question}\nA:")
    assert p.text.count("The answer is ") == 8 and "<<" not in p.text
    assert p.stop == ["\n\nQ:", "\nQ:"]


def test_math_minerva_format(data_root):
    it = B.load_benchmark("math500", limit=1)[0]
    p = P.build_prompt(it, "few_shot_cot")
    assert p.text.count("Problem:\n") == 5 and p.text.endswith(f"Problem:\n{it.question}\n\nSolution:")
    assert p.text.count("Final Answer: The final answer is $") == 4
    assert p.text.count("I hope it is correct.") == 4
    assert "\nProblem:" in p.stop


def test_multiple_choice_and_chinese_forms(data_root):
    it = B.load_benchmark("mmlu_stem", limit=1)[0]
    p = P.build_prompt(it, "few_shot_cot")
    assert p.text.count("Answer Choices: (A)") == 5 and "The final answer is (" in p.text
    z = P.build_prompt(it, "zero_shot_cot").text
    assert "(A) 0\n(B) 4" in z
    c = B.load_benchmark("cmath", limit=1)[0]
    pc = P.build_prompt(c, "few_shot_cot")
    assert pc.text.endswith(f"问题：{c.question}\n解答：") and pc.text.count("答案是") == 4
    assert P.build_prompt(c, "zero_shot_cot").text == problems.chat_prompt(c.question, P.COT_INSTRUCTION_ZH)


def test_zero_shot_matches_chat_prompt_and_stops():
    it = B.load_benchmark("toy", limit=1)[0]
    p = P.build_prompt(it, "zero_shot_cot")
    assert p.text == problems.chat_prompt(it.question)
    assert p.text == f"User: {it.question}\n{P.COT_INSTRUCTION}\n\nAssistant:"
    t = P.build_prompt(it, "tool")
    assert P.TOOL_INSTRUCTION in t.text and t.stop[0] == P.OUTPUT_FENCE == "```output"
    assert "User:" in P.build_prompt(it, "pot").stop
    assert P.build_prompt(it, "few_shot_cot").stop == ["\n\nQ:", "\nQ:"]


def test_stop_strings_cut_the_next_exemplar():
    from dsm_utils.generation import truncate_at_stop

    it = B.load_benchmark("toy", limit=1)[0]
    stop = P.build_prompt(it, "few_shot_cot").stop
    text, hit = truncate_at_stop(" 3 + 4 = 7\nThe answer is \\boxed{7}.\n\nQ: Ben has", stop)
    assert hit and text == " 3 + 4 = 7\nThe answer is \\boxed{7}."


def test_bad_modes():
    it = B.load_benchmark("toy", limit=1)[0]
    with pytest.raises(ValueError, match="valid modes"):
        P.build_prompt(it, "five_shot")
    mf = B.Item(question="q", answer=None, benchmark="minif2f", id="m")
    with pytest.raises(ValueError, match="minif2f"):
        P.build_prompt(mf, "zero_shot_cot")
