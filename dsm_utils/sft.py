"""Instruction-tuning data in the paper's three solution formats (DeepSeekMath §3.1) and their evaluation.

- **CoT** (chain-of-thought): natural-language / equation steps ending in ``\\boxed{answer}``.
- **PoT** (program-of-thought): a ```python program; the answer is what it prints (run in the sandbox).
- **Tool** (tool-integrated reasoning, ToRA-style): a line of reasoning, a ```python program, a ```output
  block holding the program's output, then the boxed answer. At inference (``evaluation.evaluate(mode="tool")``)
  the model stops at ```output, the program runs in the sandbox and its real output is fed back.

All three use the chat form ``User: {q}\\n{instruction}\\n\\nAssistant:`` (``problems.chat_prompt``) and the
loss is on the answer tokens only; in the tool format the ```output block (written by the interpreter, not
the model) is masked too, as in ToRA.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

from . import problems as P
from . import prompts
from .training import IGNORE_INDEX, Example, collate

FORMATS = ("cot", "pot", "tool", "program")

#: Per-format instructions appended to the question: the evaluation prompts of ``dsm_utils.prompts``, so the
#: model is trained on exactly the prompts ``evaluation.evaluate`` will show it.
INSTRUCTIONS = {"cot": prompts.COT_INSTRUCTION, "pot": prompts.POT_INSTRUCTION, "tool": prompts.TOOL_INSTRUCTION,
                "program": prompts.COT_INSTRUCTION}
#: The ``evaluation.evaluate`` mode of each format.
EVAL_MODES = {"cot": "zero_shot_cot", "pot": "pot", "tool": "tool"}
OUTPUT_OPEN = "```output\n"


@dataclass
class Segment:
    """Part of a completion: its text and whether the model is trained to produce it."""

    text: str
    train: bool = True


@dataclass
class SFTRecord:
    """One SFT example: prompt (masked), completion segments, its format and the reference answer."""

    prompt: str
    segments: list[Segment]
    fmt: str
    answer: str = ""

    @property
    def completion(self) -> str:
        return "".join(s.text for s in self.segments)

    def as_example(self) -> Example:
        """The plain prompt/completion pair (``training.encode_example``: every completion token trained)."""
        return Example(self.prompt, self.completion)


def prompt_for(question: str, fmt: str) -> str:
    """The chat prompt of ``question`` with the instruction of format ``fmt``."""
    _check_fmt(fmt)
    return P.chat_prompt(question, INSTRUCTIONS[fmt])


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown SFT format {fmt!r}: valid formats are {FORMATS}")


def _item_of(problem: P.Problem) -> str:
    """The quantity a toy problem is about (``"books"``), read from its PoT variable."""
    var = problem.pot.split("=", 1)[0].strip()
    return var + "s"


def cot_record(p: P.Problem) -> SFTRecord:
    """Chain-of-thought: one equation per line, then ``The answer is \\boxed{..}.``"""
    return SFTRecord(prompt_for(p.question, "cot"), [Segment(" " + p.cot)], "cot", p.answer)


def pot_record(p: P.Problem) -> SFTRecord:
    """Program-of-thought: the reference program in a ```python block (the answer is what it prints)."""
    return SFTRecord(prompt_for(p.question, "pot"), [Segment(f" ```python\n{p.pot}\n```")], "pot", p.answer)


def tool_record(p: P.Problem) -> SFTRecord:
    """Tool-integrated: reasoning, program, the program's output (masked: the interpreter wrote it), answer.

    The ```output fence itself is trained (it is where the model hands over to the interpreter, the stop
    string at inference); the output text and closing fence are masked.
    """
    reason = f" Let's track the number of {_item_of(p)} with a program."
    return SFTRecord(prompt_for(p.question, "tool"), [
        Segment(f"{reason}\n```python\n{p.pot}\n```\n{OUTPUT_OPEN}"),  # the model asks for execution ...
        Segment(f"{p.answer}\n```\n", train=False),  # ... the interpreter answers (masked) ...
        Segment(f"The answer is \\boxed{{{p.answer}}}."),
    ], "tool", p.answer)


def program_record(p: P.Problem) -> SFTRecord:
    """The RL toy's second behaviour: under the *same* prompt as CoT, a ```python program whose printed value is
    the answer (``problems.program_solution``). Mixed with CoT records, the model learns both behaviours and
    chooses one per sample; RL can then learn which one pays (06, 07)."""
    return SFTRecord(prompt_for(p.question, "program"), [Segment(" " + P.program_solution(p))], "program", p.answer)


BUILDERS = {"cot": cot_record, "pot": pot_record, "tool": tool_record, "program": program_record}


def build_records(probs: Sequence[P.Problem], mix: dict[str, float] | Sequence[str] = ("cot",),
                  seed: int = 0) -> list[SFTRecord]:
    """SFT records for ``probs``: each problem gets one format drawn with the weights of ``mix``
    (a dict ``{"cot": 0.6, "pot": 0.2, "tool": 0.2}``, or a list of formats = every problem in each)."""
    if isinstance(mix, dict):
        for f in mix:
            _check_fmt(f)
        fmts, w = list(mix), [float(mix[f]) for f in mix]
        if not fmts or sum(w) <= 0:
            raise ValueError(f"build_records: mix needs a positive weight, got {mix}")
        rng = random.Random(seed)
        return [BUILDERS[rng.choices(fmts, w)[0]](p) for p in probs]
    for f in mix:
        _check_fmt(f)
    return [BUILDERS[f](p) for p in probs for f in mix]


# ------------------------------------------------------------------------------ real data (gpu profile)

_GSM_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_record(row: dict) -> SFTRecord:
    """GSM8K train row → CoT record: calculator annotations dropped, ``#### x`` → boxed answer."""
    sol, _, ans = row["answer"].rpartition("####")
    ans = ans.strip().replace(",", "")
    text = _GSM_CALC.sub("", sol).strip()
    return SFTRecord(prompt_for(row["question"], "cot"), [Segment(f" {text}\nThe answer is \\boxed{{{ans}}}.")],
                     "cot", ans)


def math_record(row: dict) -> SFTRecord:
    """MATH train row → CoT record (its solution already holds ``\\boxed{}``)."""
    from .grading import extract_answer

    return SFTRecord(prompt_for(row["problem"], "cot"), [Segment(" " + row["solution"].strip())], "cot",
                     extract_answer(row["solution"]) or "")


# ------------------------------------------------------------------------------ encoding

def encode_record(tokenizer, rec: SFTRecord, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: prompt and untrained segments get ``-100``; EOS closes the completion."""
    ids = tokenizer(rec.prompt, add_special_tokens=False)["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    for seg in rec.segments:
        t = tokenizer(seg.text, add_special_tokens=False)["input_ids"]
        ids += t
        labels += t if seg.train else [IGNORE_INDEX] * len(t)
    ids.append(tokenizer.eos_token_id)
    labels.append(tokenizer.eos_token_id)
    return ids[:max_len], labels[:max_len]


def record_batches(tokenizer, records: Sequence[SFTRecord], batch_size: int, max_len: int,
                   seed: int = 0) -> Iterator[dict]:
    """Endless shuffled batches of encoded records (right padding), for ``training.train_lm``."""
    enc = [encode_record(tokenizer, r, max_len) for r in records]
    if not enc:
        raise ValueError("record_batches: no records")
    rng = random.Random(seed)
    while True:
        order = list(range(len(enc)))
        rng.shuffle(order)
        for i in range(0, max(1, len(order) - batch_size + 1), batch_size):
            yield collate([enc[j] for j in order[i:i + batch_size]], tokenizer.pad_token_id)


# ------------------------------------------------------------------ the RL notebooks' starting point and metric

def load_instruct_model(checkpoint, *, seed: int = 0, device: str = "cpu", fallback_steps: int = 200,
                        fallback_model: str = "llama-1m"):
    """The SFT ("instruct") model the RL notebooks start from: ``(model, tokenizer, source)``.

    Loads ``checkpoint`` (written by ``05_sft``) when it exists; otherwise trains a quick CoT-only SFT model
    inline with the same code as 05 (``fallback_steps`` steps) and says so in ``source``.
    """
    from . import models, training
    from .tokenizer import default_tokenizer, load_tokenizer

    if models.checkpoint_exists(checkpoint):
        tok = load_tokenizer(checkpoint)
        return models.load_model(checkpoint, tok).to(device).eval(), tok, str(checkpoint)
    print(f"No SFT checkpoint at {checkpoint}: run 05_sft first for the real starting point. Training a quick "
          f"SFT model inline ({fallback_steps} steps, the same sft/training code as 05).")
    tok = default_tokenizer()
    model = models.load_model(fallback_model, tok, seed=seed)
    recs = build_records(P.generate(5000, seed=seed, prefix="sft"), {"cot": 1.0}, seed=seed)
    training.train_lm(model, record_batches(tok, recs, 32, 160, seed=seed), fallback_steps, lr=3e-3, warmup=20,
                      device=device, desc="inline sft")
    return model.eval(), tok, f"inline SFT ({fallback_steps} steps)"


def greedy_accuracy(model, tokenizer, probs: Sequence[P.Problem], *, batch_size: int = 100,
                    max_new_tokens: int = 96) -> float:
    """Greedy chain-of-thought accuracy on toy problems, graded by the rule checker's outcome."""
    from . import rl

    if not probs:
        return float("nan")
    right = 0.0
    for i in range(0, len(probs), batch_size):
        chunk = probs[i:i + batch_size]
        ids = rl.sample(model, tokenizer, [P.chat_prompt(p.question) for p in chunk], n=1,
                        max_new_tokens=max_new_tokens, temperature=0.0)
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        right += sum(P.outcome_reward(t, p) for t, p in zip(texts, chunk))
    return right / len(probs)


def train_toy_instruct(out_dir, *, steps: int = 600, format_mix: dict | None = None, n_train: int = 20000,
                       batch_size: int = 32, lr: float = 3e-3, warmup: int = 20, max_len: int = 192, seed: int = 0,
                       model_name: str = "llama-1m", progress: bool = True):
    """The cpu-profile instruct model of 05 without the notebook (for benches): a toy Llama from scratch on the
    ``format_mix`` of ``sft``-stream problems; saved with its tokenizer to ``out_dir``. Returns the path."""
    from . import models, training
    from .tokenizer import default_tokenizer

    tok = default_tokenizer()
    training.seed_everything(seed)
    model = models.load_model(model_name, tok, seed=seed)
    recs = build_records(P.generate(n_train, seed=seed, prefix="sft"), format_mix or {"cot": 0.75, "program": 0.25},
                         seed=seed)
    training.train_lm(model, record_batches(tok, recs, batch_size, max_len, seed=seed), steps, lr=lr, warmup=warmup,
                      desc="sft", progress=progress)
    return training.save_checkpoint(out_dir, model.eval(), tok, state={"step": steps, "notebook": "05_sft"})
