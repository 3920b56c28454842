"""The toy world: problem generator, step checker, tokenizer, model factory, training loop, generation."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from dsm_utils import generation, models, problems, sources, tokenizer, training


# ---------------------------------------------------------------------------------------- problems

def test_generator_is_deterministic_and_respects_difficulty():
    a = problems.generate(50, seed=3)
    b = problems.generate(50, seed=3)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.question for p in a] != [p.question for p in problems.generate(50, seed=4)]
    for p in a:
        assert problems.EASY.min_steps <= p.n_steps <= problems.EASY.max_steps
    for p in problems.generate(50, seed=3, difficulty=problems.OOD):
        assert 4 <= p.n_steps <= 5
        assert all(0 <= s.result <= problems.OOD.max_value for s in p.steps)


def test_reference_solutions_are_correct_everywhere():
    for p in problems.generate(200, seed=0) + problems.generate(100, seed=1, difficulty=problems.OOD):
        chk = problems.check_solution(p.cot, p)
        assert chk.correct and all(s.correct for s in chk.steps)
        assert len(chk.steps) == p.n_steps + 1  # every equation line and the boxed line
        assert problems.outcome_reward(p.cot, p) == 1.0
        # the program-of-thought solution computes the same answer
        out: list[str] = []
        exec(p.pot, {"print": lambda v: out.append(str(v))})  # noqa: S102 - our own generated code
        assert out == [p.answer]


def test_step_checker_flags_the_wrong_step():
    p = next(q for q in problems.generate(50, seed=5) if q.n_steps >= 2)
    lines = p.cot.split("\n")
    s0 = p.steps[0]
    lines[0] = f"{s0.lhs} {s0.op} {s0.operand} = {s0.result + 1}"  # arithmetic slip in step 1
    chk = problems.check_solution("\n".join(lines), p)
    assert chk.step_rewards[0] == 0.0 and chk.step_rewards[1] == 1.0 and chk.correct
    # a true equation on the wrong quantities is still a wrong step
    lines = p.cot.split("\n")
    lines[0] = f"{s0.result - 1} + 1 = {s0.result}" if s0.op != "+" or s0.operand != 1 else f"{s0.result} * 1 = {s0.result}"
    assert problems.check_solution("\n".join(lines), p).step_rewards[0] == 0.0
    wrong = p.cot.replace(f"\\boxed{{{p.answer}}}", f"\\boxed{{{int(p.answer) + 1}}}")
    chk = problems.check_solution(wrong, p)
    assert not chk.correct and chk.step_rewards[-1] == 0.0
    assert problems.outcome_reward("no answer here", p) == 0.0
    # commutative operands may be swapped
    if s0.op in "+*":
        lines = p.cot.split("\n")
        lines[0] = f"{s0.operand} {s0.op} {s0.lhs} = {s0.result}"
        assert problems.check_solution("\n".join(lines), p).step_rewards[0] == 1.0
    # spans point at the lines
    text = p.cot
    for st in problems.check_solution(text, p).steps:
        assert text[st.start:st.end] == st.text


def test_difficulty_validation_and_roundtrip():
    with pytest.raises(ValueError, match="min_steps"):
        problems.Difficulty(min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="unknown operations"):
        problems.Difficulty(ops=("+", "^"))
    p = problems.generate(1, seed=0)[0]
    assert problems.problem_from_dict(p.to_dict()) == p
    assert problems.chat_prompt("Q?").startswith("User: Q?\nPlease reason step by step")
    assert problems.chat_prompt("Q?").endswith("\n\nAssistant:")


# ---------------------------------------------------------------------------------------- tokenizer/model

@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    texts = [problems.chat_prompt(p.question) + " " + p.cot for p in problems.generate(300, seed=0)]
    texts += list(sources.python_stdlib_texts(max_chars=30_000))
    return tokenizer.train_tokenizer(texts, tmp_path_factory.mktemp("tok"), vocab_size=512)


def test_tokenizer_splits_digits_and_roundtrips(tok, tmp_path):
    pieces = tok.tokenize("x 12345 + 6")
    assert [p for p in pieces if p.strip("Ġ").isdigit()] == ["1", "2", "3", "4", "5", "6"]
    text = "def f(x):\n    return x * 10  # ünïcode"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.pad_token and tok.eos_token and tok.padding_side == "left"
    tok.save_pretrained(tmp_path)
    again = tokenizer.load_tokenizer(tmp_path)
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    with pytest.raises(FileNotFoundError):
        tokenizer.load_tokenizer(tmp_path / "nope")
    with pytest.raises(ValueError, match="vocab_size"):
        tokenizer.train_tokenizer(["a"], tmp_path / "t", vocab_size=100)


def test_model_factory_sizes_and_errors(tok, tmp_path):
    sizes = {}
    for name in ("llama-1m", "llama-3m", "llama-10m", "llama-30m"):
        sizes[name] = models.count_parameters(models.load_model(name, tok, seed=0))
    assert sizes["llama-1m"] < sizes["llama-3m"] < sizes["llama-10m"] < sizes["llama-30m"]
    assert 0.5e6 < sizes["llama-1m"] and sizes["llama-30m"] < 40e6
    with pytest.raises(ValueError, match="unknown model name 'llama-7b'.*llama-1m"):
        models.load_model("llama-7b", tok)
    with pytest.raises(ValueError, match="needs the tokenizer"):
        models.load_model("llama-1m")
    m = models.load_model("llama-1m", tok, seed=0)
    training.save_checkpoint(tmp_path / "ck", m, tok)
    assert models.checkpoint_exists(tmp_path / "ck")
    m2 = models.load_model(tmp_path / "ck")
    x = torch.tensor([[1, 2, 3]])
    assert torch.allclose(m(x).logits, m2(x).logits, atol=1e-6)


def test_training_learns_and_checkpoint_resumes(tok, tmp_path):
    training.seed_everything(0)
    easy = problems.Difficulty(min_steps=1, max_steps=1, ops=("+",), max_start=9, max_operand=9)
    exs = [training.Example(problems.chat_prompt(p.question, ""), " " + p.cot)
           for p in problems.generate(200, seed=0, difficulty=easy)]
    ids, labels = training.encode_example(tok, exs[0], 256)
    n_prompt = len(tok(exs[0].prompt, add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [training.IGNORE_INDEX] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tok.eos_token_id
    model = models.load_model("llama-1m", tok, seed=0)
    hist = training.train_lm(model, training.sft_batches(tok, exs, 16, 96), steps=30, lr=3e-3, log_every=5,
                             progress=False)
    assert hist[-1]["loss"] < hist[0]["loss"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    training.save_checkpoint(tmp_path / "ck", model, tok, opt, state={"step": 30})
    random.random()
    st = training.load_train_state(tmp_path / "ck", opt)
    assert st == {"step": 30}


def test_packed_batches_and_count_tokens(tok):
    texts = ["hello world " * 20, "def f():\n    return 1\n" * 10]
    b = next(training.packed_batches(tok, texts, batch_size=2, seq_len=16))
    assert b["input_ids"].shape == (2, 16) and torch.equal(b["labels"], b["input_ids"])
    assert training.count_tokens(tok, texts) > 32
    with pytest.raises(ValueError, match="fewer tokens"):
        next(training.packed_batches(tok, ["hi"], batch_size=2, seq_len=1000))


def test_pick_device_and_threads():
    assert training.pick_device("cpu") == "cpu"
    assert training.pick_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="valid values"):
        training.pick_device("tpu")
    assert training.set_threads(None) >= 1


def test_generation_greedy_sampling_and_stop(tok):
    model = models.load_model("llama-1m", tok, seed=0)
    gen = generation.HFGenerator(model, tok, batch_size=4)
    prompts = ["User: hi\n\nAssistant:", "User: a much longer prompt here\n\nAssistant:", "x"]
    g1 = gen.generate(prompts, generation.SamplingConfig(max_new_tokens=8), progress=False)
    g2 = gen.generate(prompts, generation.SamplingConfig(max_new_tokens=8), progress=False)
    assert [[c.text for c in r] for r in g1] == [[c.text for c in r] for r in g2]
    assert all(len(r) == 1 for r in g1)
    # batching must not change greedy outputs (left padding + attention mask)
    solo = generation.HFGenerator(model, tok, batch_size=1).generate(prompts, generation.SamplingConfig(max_new_tokens=8),
                                                                       progress=False)
    assert [r[0].token_ids for r in solo] == [r[0].token_ids for r in g1]
    s = gen.generate(prompts[:1], generation.SamplingConfig(max_new_tokens=8, temperature=1.0, n=5, seed=1),
                     progress=False)
    assert len(s[0]) == 5 and all(c.finish_reason in ("stop", "length") for c in s[0])
    assert generation.truncate_at_stop("abc\nQ: next", ["\nQ:", "zz"]) == ("abc", True)
    assert generation.truncate_at_stop("abc", ["zz"]) == ("abc", False)
    with pytest.raises(ValueError, match="top_p"):
        generation.SamplingConfig(top_p=0)
    with pytest.raises(ValueError, match="'hf', 'vllm'"):
        generation.make_generator("tgi", model, tok)


def test_sources_stdlib_and_latex(data_root):
    code = list(sources.python_stdlib_texts(max_chars=50_000))
    assert code and sum(map(len, code)) >= 50_000 and any("def " in t for t in code)
    tex = list(sources.latex_texts(max_chars=100_000))
    assert tex and any("\\begin{document}" in t for t in tex)


def test_program_behaviour_is_run_and_checked_line_by_line():
    p = problems.generate(1, seed=3, difficulty=problems.Difficulty(min_steps=3, max_steps=3))[0]
    text = " " + problems.program_solution(p)
    chk = problems.check_solution(text, p)
    assert chk.correct and chk.answer == p.answer and len(chk.steps) == p.n_steps + 2  # start, steps, print
    assert all(s.correct for s in chk.steps) and problems.behaviour(text) == "program"
    assert problems.outcome_reward(text, p) == 1.0 and problems.behaviour(p.cot) == "cot"
    lines = p.pot.split("\n")
    var = lines[0].split(" =")[0]
    lines[2] = f"{var} = {var} + 1000"  # the second step is wrong: that line, the later ones and the answer
    bad = problems.check_solution("```python\n" + "\n".join(lines) + "\n```", p)
    assert [s.correct for s in bad.steps][:2] == [True, True] and not bad.steps[2].correct and not bad.correct
    assert problems.outcome_reward("```python\n" + "\n".join(lines) + "\n```", p) == 0.0


def test_run_program_is_restricted_to_straight_line_arithmetic():
    assert problems.run_program("a = 7\na = a * 3\na = a // 2\nprint(a)") == "10"
    assert problems.run_program("a = 7\nprint(a - 9)") == "-2"
    for src in ("import os\nprint(1)", "a = (1).__class__\nprint(a)", "for i in range(3):\n    a = i\nprint(a)",
                "a = 5\na = a // 0\nprint(a)", "print(b)", "a = 10 ** 100\nprint(a)", "a = 2\na = a * 10000000\n"
                "a = a * 10000000\nprint(a)", "open('x')", "a = 1 +", "a = 1\nprint(a, a)"):
        assert problems.run_program(src) is None, src
    # an unclosed block (the model ran out of tokens) still runs what is there
    assert problems.extract_program("```python\na = 2\nprint(a)") == "a = 2\nprint(a)"
