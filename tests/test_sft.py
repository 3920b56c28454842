"""Tests of dsm_utils.sft: the three SFT formats, prompts, loss masks and batches."""
from __future__ import annotations

import pytest

from dsm_utils import problems as P
from dsm_utils import prompts, sandbox, sft
from dsm_utils.training import IGNORE_INDEX


@pytest.fixture(scope="module")
def tok():
    from dsm_utils.tokenizer import default_tokenizer

    return default_tokenizer()


@pytest.fixture(scope="module")
def prob():
    return P.generate(3, seed=1, prefix="t")[2]


def test_prompts_match_evaluation(prob):
    item_modes = {"cot": "zero_shot_cot", "pot": "pot", "tool": "tool"}
    from dsm_utils.benchmarks import Item

    it = Item(question=prob.question, answer=prob.answer, benchmark="toy")
    for fmt, mode in item_modes.items():
        assert sft.prompt_for(prob.question, fmt) == prompts.build_prompt(it, mode).text
        assert sft.EVAL_MODES[fmt] == mode
    assert sft.prompt_for(prob.question, "cot") == P.chat_prompt(prob.question)


def test_cot_record_is_checked_correct(prob):
    r = sft.cot_record(prob)
    assert r.fmt == "cot" and r.answer == prob.answer
    assert P.check_solution(r.completion, prob).correct
    assert all(s.correct for s in P.check_solution(r.completion, prob).steps)


def test_pot_program_prints_answer(prob):
    r = sft.pot_record(prob)
    code = sandbox.extract_program(r.completion)
    assert code is not None
    res = sandbox.run_pot(code)
    assert res.ok and res.stdout.strip() == prob.answer


def test_tool_record_layout(prob):
    r = sft.tool_record(prob)
    text = r.completion
    assert text.index("```python") < text.index("```output") < text.index("\\boxed{")
    assert P.extract_boxed(text) == prob.answer
    # the untrained segment is exactly the interpreter's output
    masked = [s for s in r.segments if not s.train]
    assert len(masked) == 1 and masked[0].text.startswith(prob.answer + "\n")
    # the trained part ends where evaluation's tool loop stops (at the output fence)
    assert r.segments[0].text.endswith(prompts.OUTPUT_FENCE + "\n")


def test_encode_masks_prompt_and_tool_output(tok, prob):
    r = sft.tool_record(prob)
    ids, labels = sft.encode_record(tok, r, max_len=10_000)
    n_prompt = len(tok(r.prompt, add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ids[-1] == tok.eos_token_id and labels[-1] == tok.eos_token_id
    trained = tok.decode([i for i, l in zip(ids, labels) if l != IGNORE_INDEX], skip_special_tokens=True)
    assert "```python" in trained and "\\boxed{" in trained
    assert f"{prob.answer}\n```\nThe answer" not in trained  # output block not trained
    masked_after_prompt = [i for i, l in zip(ids[n_prompt:], labels[n_prompt:]) if l == IGNORE_INDEX]
    assert tok.decode(masked_after_prompt).strip().startswith(prob.answer)


def test_encode_plain_matches_training_encode_example(tok, prob):
    from dsm_utils.training import encode_example

    r = sft.cot_record(prob)
    assert sft.encode_record(tok, r, 512) == encode_example(tok, r.as_example(), 512)


def test_encode_truncates(tok, prob):
    ids, labels = sft.encode_record(tok, sft.pot_record(prob), max_len=20)
    assert len(ids) == len(labels) == 20


def test_build_records_mix_and_list():
    ps = P.generate(300, seed=0, prefix="t")
    recs = sft.build_records(ps, {"cot": 0.5, "pot": 0.25, "tool": 0.25}, seed=0)
    assert len(recs) == 300
    counts = {f: sum(r.fmt == f for r in recs) for f in sft.FORMATS}
    assert 110 < counts["cot"] < 190 and counts["pot"] > 40 and counts["tool"] > 40
    assert recs == sft.build_records(ps, {"cot": 0.5, "pot": 0.25, "tool": 0.25}, seed=0)
    both = sft.build_records(ps[:5], ["cot", "pot"])
    assert [r.fmt for r in both] == ["cot", "pot"] * 5
    with pytest.raises(ValueError, match="valid formats"):
        sft.build_records(ps[:2], {"cot": 1.0, "latex": 1.0})


def test_record_batches_shapes(tok):
    recs = sft.build_records(P.generate(10, seed=0, prefix="t"), ["cot", "tool"])
    b = next(sft.record_batches(tok, recs, batch_size=4, max_len=64, seed=0))
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
    assert b["input_ids"].shape[0] == 4
    assert (b["labels"][b["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_real_records():
    g = sft.gsm8k_record({"question": "Q?", "answer": "Half is 48/2 = <<48/2=24>>24.\n#### 1,024"})
    assert "<<" not in g.completion and g.completion.endswith("\\boxed{1024}.") and g.answer == "1024"
    m = sft.math_record({"problem": "x?", "solution": "So $x = \\boxed{\\frac12}$."})
    assert m.fmt == "cot" and m.answer is not None and "frac" in m.answer


def test_instruct_model_fallback_and_greedy_accuracy(tmp_path):
    from dsm_utils import models, training

    model, tok, source = sft.load_instruct_model(tmp_path / "no-checkpoint", seed=0, fallback_steps=2)
    assert source == "inline SFT (2 steps)"
    probs = P.generate(6, seed=0, prefix="toyeval")
    acc = sft.greedy_accuracy(model, tok, probs, batch_size=4, max_new_tokens=8)
    assert 0.0 <= acc <= 1.0
    training.save_checkpoint(tmp_path / "ck", model, tok)
    again, tok2, source2 = sft.load_instruct_model(tmp_path / "ck")
    assert source2 == str(tmp_path / "ck") and models.count_parameters(again) == models.count_parameters(model)
    assert sft.greedy_accuracy(again, tok2, probs, batch_size=6, max_new_tokens=8) == acc


def test_program_record_shares_the_cot_prompt_and_is_correct(prob):
    r = sft.program_record(prob)
    assert r.prompt == sft.cot_record(prob).prompt  # one prompt, two behaviours
    chk = P.check_solution(r.completion, prob)
    assert chk.correct and P.behaviour(r.completion) == "program"
    recs = sft.build_records(P.generate(400, seed=1), {"cot": 0.75, "program": 0.25}, seed=0)
    share = sum(x.fmt == "program" for x in recs) / len(recs)
    assert 0.18 < share < 0.32 and len({x.prompt.split("\n")[-3] for x in recs}) == 1
