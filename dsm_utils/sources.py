"""Local text sources for pre-training the toy models (no hub, no internet needed).

- real code: the Python standard library source of the running interpreter (stand-in for a code model's data);
- LaTeX documents under the data dir (``latex/tex_docs.jsonl.gz``; stand-in for arXiv);
- web pages: the math corpus written by ``01_math_corpus`` (read by the notebooks from its run folder).
"""
from __future__ import annotations

import os
import random
import sysconfig
from pathlib import Path
from typing import Iterator

from .data import iter_jsonl, require


def python_stdlib_files(seed: int = 0) -> list[Path]:
    """The ``.py`` files of the running interpreter's standard library (tests excluded), shuffled by ``seed``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if "test" not in p.parts and "site-packages" not in p.parts and "idlelib" not in p.parts)
    random.Random(seed).shuffle(files)
    return files


def python_stdlib_texts(max_chars: int = 2_000_000, seed: int = 0, max_file_chars: int = 20_000) -> Iterator[str]:
    """Yield stdlib source texts (each file cut to ``max_file_chars``) until ``max_chars`` in total."""
    total = 0
    for f in python_stdlib_files(seed):
        try:
            text = f.read_text(encoding="utf-8")[:max_file_chars]
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        yield text
        total += len(text)
        if total >= max_chars:
            return


def latex_texts(max_chars: int = 2_000_000, data_dir: str | os.PathLike | None = None,
                english_only: bool = True) -> Iterator[str]:
    """Yield LaTeX document texts from ``latex/tex_docs.jsonl.gz`` until ``max_chars`` in total."""
    path = require("latex/tex_docs.jsonl.gz", data_dir)
    total = 0
    for _, rec in iter_jsonl(path):
        if english_only and not str(rec.get("lang_hint", "en")).startswith("en"):
            continue
        text = rec.get("text")
        if not isinstance(text, str):
            continue
        yield text
        total += len(text)
        if total >= max_chars:
            return


def corpus_texts(path: str | os.PathLike, max_chars: int = 2_000_000) -> Iterator[str]:
    """Yield the ``text`` field of a corpus jsonl(.gz) (e.g. the math corpus of ``01_math_corpus``)."""
    total = 0
    for _, rec in iter_jsonl(path):
        text = rec.get("text", "")
        if text:
            yield text
            total += len(text)
            if total >= max_chars:
                return
