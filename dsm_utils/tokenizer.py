"""The toy tokenizer: byte-level BPE that splits numbers into single digits, as DeepSeek's tokenizer does.

Trained locally with ``tokenizers`` and saved as a transformers tokenizer folder, so notebooks load it
exactly like a hub tokenizer (``load_tokenizer("runs/cpu/00_setup/tokenizer")`` or a hub id).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from . import repo_path

SPECIAL_TOKENS = {"bos_token": "<|begin|>", "eos_token": "<|end|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"}
DEFAULT_CACHE = "runs/_cache/toy_tokenizer"


def train_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike, vocab_size: int = 2048,
                    min_frequency: int = 2):
    """Train a byte-level BPE with single-digit splitting on ``texts`` and save it to ``out_dir``.

    Returns the loaded ``PreTrainedTokenizerFast``. Digits are pre-split so ``1234`` is always 4 tokens:
    arithmetic then works on a fixed per-digit vocabulary.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise ValueError(f"vocab_size={vocab_size}: must be >= 300 (256 bytes + special tokens + merges)")
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.padding_side = "left"  # decoder-only generation wants left padding
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return fast


def load_tokenizer(name_or_path: str | os.PathLike):
    """Load a tokenizer from a local folder or a hub id; ensures a pad token and left padding."""
    from transformers import AutoTokenizer

    p = repo_path(name_or_path) if not _looks_like_hub_id(str(name_or_path)) else None
    src = str(p) if p is not None and p.exists() else str(name_or_path)
    if p is not None and not p.exists() and not _looks_like_hub_id(str(name_or_path)):
        raise FileNotFoundError(f"tokenizer folder not found: {p}")
    tok = AutoTokenizer.from_pretrained(src)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def _looks_like_hub_id(s: str) -> bool:
    return s.count("/") == 1 and not s.startswith((".", "/", "~")) and not Path(s).exists() and not s.startswith("runs")


def toy_corpus(n_problems: int = 3000, seed: int = 0, code_chars: int = 400_000,
               data_dir: str | None = None) -> Iterator[str]:
    """Texts the toy tokenizer is trained on: generated problems (CoT and PoT), stdlib code, LaTeX if present."""
    from . import problems, sources

    for p in problems.generate(n_problems, seed=seed, prefix="tok"):
        yield problems.chat_prompt(p.question) + " " + p.cot
        yield p.pot
    for p in problems.generate(n_problems // 4, seed=seed, difficulty=problems.OOD, prefix="tokood"):
        yield p.question + "\n" + p.cot
    yield from sources.python_stdlib_texts(max_chars=code_chars)
    try:
        yield from sources.latex_texts(max_chars=code_chars, data_dir=data_dir)
    except FileNotFoundError:
        pass  # the tokenizer does not need LaTeX; problems and code cover the toy world


def default_tokenizer(cache_dir: str | os.PathLike = DEFAULT_CACHE, vocab_size: int = 2048):
    """The shared toy tokenizer, trained once into ``cache_dir`` and loaded from there afterwards."""
    d = repo_path(cache_dir)
    if (d / "tokenizer.json").exists():
        return load_tokenizer(d)
    tmp = d.with_name(d.name + ".partial")
    tok = train_tokenizer(toy_corpus(), tmp, vocab_size=vocab_size)
    if d.exists():
        import shutil
        shutil.rmtree(d)
    os.replace(tmp, d)
    return load_tokenizer(d)
