"""Benchmark decontamination of the math corpus (DeepSeekMath §2.1, last paragraph).

The paper's rule: drop a web page that contains any 10-gram of a benchmark question or answer; a benchmark text
shorter than 10 grams but of at least 3 grams is matched exactly, as a whole.

Why not datatrove's ``NGramsDecontIndexer``/``NGramsDecontFilter``: they need ``lighteval`` for the task data,
index the answer (and optionally query/overlap) n-grams only, have no "short text matched as a whole" rule, and
their default ``TextNormConfig`` maps every number to ``0`` -- then a page holding a table or matrix of zeros
shares 10-grams with many GSM8K/MATH items and is wrongly dropped. So the index is built here (numpy rolling
hashes over token ids, one ``np.isin`` per window length) and numbers are kept verbatim.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import xxhash

from .data import DataError, iter_jsonl

_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")
_WORD = re.compile(r"[^\W_]+")
_GSM_CALC = re.compile(r"<<[^>]*>>")  # GSM8K calculator annotations never appear on web pages
_P = np.uint64(1_000_003)  # multiplier of the rolling window hash (uint64 arithmetic wraps, which is fine)


def decont_tokens(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation (incl. LaTeX backslashes/braces) separates tokens, each CJK character
    is one token (Chinese benchmarks have no spaces), digits are kept as they are (no number placeholder)."""
    return _WORD.findall(_CJK.sub(r" \1 ", text.lower()))


def _token_ids(tokens: list[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh64_intdigest(t) for t in tokens), dtype=np.uint64, count=len(tokens))


def _window_hashes(ids: np.ndarray, max_len: int) -> dict[int, np.ndarray]:
    """Hashes of every window of length 1..max_len: h_L[i] = h_{L-1}[i] * P + ids[i+L-1]."""
    out: dict[int, np.ndarray] = {}
    h = ids.copy()
    out[1] = h
    with np.errstate(over="ignore"):
        for length in range(2, max_len + 1):
            if len(ids) < length:
                break
            h = h[:-1] * _P + ids[length - 1:]
            out[length] = h
    return out


# Which fields of each benchmark file are the "question" and the "answer" texts. Multiple-choice answers are the
# letter (below 3 grams, so never matched); option texts are not indexed: generic options such as "A and B" or
# "None of these." matched PostgreSQL and Maxima manual pages as whole 3-gram texts in a first run.
def _mgsm_question(r: dict[str, Any]) -> str:
    return " ".join(str(m.get("content", "")) for m in r.get("messages", []) if m.get("role") == "user")


BENCHMARKS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "gsm8k/test.jsonl": {"question": lambda r: r["question"], "answer": lambda r: r.get("cot", "")},
    "math/test.jsonl": {"question": lambda r: r["problem"], "answer": lambda r: r.get("solution", "")},
    "cmath/test.jsonl": {"question": lambda r: r["question"], "answer": lambda r: str(r.get("golden", ""))},
    "mgsm_zh/mgsm_zh.jsonl": {"question": _mgsm_question, "answer": lambda r: str(r.get("answer", ""))},
    "agieval/gaokao-mathcloze.jsonl": {"question": lambda r: r["question"], "answer": lambda r: str(r.get("answer") or "")},
    "agieval/gaokao-mathqa.jsonl": {"question": lambda r: r["question"], "answer": lambda r: str(r.get("answer") or "")},
    "ocw/test.jsonl": {"question": lambda r: r["problem"], "answer": lambda r: r.get("solution", "")},
    "sat/test.jsonl": {"question": lambda r: r["question"], "answer": lambda r: ""},
    "mmlu_stem/test.jsonl": {"question": lambda r: r["question"], "answer": lambda r: str(r.get("answer", ""))},
}


@dataclass(frozen=True)
class BenchItem:
    """One indexed benchmark text: which file, which record, question or answer, and the text itself."""

    benchmark: str
    item: int  # 1-based line number in the benchmark file
    field: str
    text: str


def load_benchmark_items(data_root: str | Path, benchmarks: Iterable[str] | None = None) -> list[BenchItem]:
    """Read the question and answer texts of every benchmark test file (errors name the file and line)."""
    root = Path(data_root)
    items: list[BenchItem] = []
    for rel in benchmarks or BENCHMARKS:
        if rel not in BENCHMARKS:
            raise KeyError(f"unknown benchmark {rel!r}; known: {sorted(BENCHMARKS)}")
        path = root / rel
        if not path.exists():
            raise FileNotFoundError(f"benchmark file not found: {path} (needed for decontamination)")
        for lineno, rec in iter_jsonl(path):
            for fname, get in BENCHMARKS[rel].items():
                try:
                    text = get(rec)
                except KeyError as exc:
                    raise DataError(f"{path}:{lineno}: missing key {exc.args[0]!r} for the {fname} text") from None
                text = _GSM_CALC.sub("", str(text or ""))
                if text.strip():
                    items.append(BenchItem(rel.split("/")[0], lineno, fname, text))
    return items


@dataclass
class DecontIndex:
    """n-gram index of benchmark texts: all ``n``-grams of long texts, whole texts of ``min_len..n-1`` tokens."""

    n: int = 10
    min_len: int = 3
    items: list[BenchItem] = field(default_factory=list)
    # window length -> sorted hashes, and hash -> item index (for reporting which item matched)
    _sorted: dict[int, np.ndarray] = field(default_factory=dict)
    _owner: dict[int, np.ndarray] = field(default_factory=dict)  # item index of each sorted hash

    @classmethod
    def build(cls, items: list[BenchItem], n: int = 10, min_len: int = 3) -> "DecontIndex":
        idx = cls(n=n, min_len=min_len, items=list(items))
        hashes: dict[int, list[np.ndarray]] = {}
        owners: dict[int, list[np.ndarray]] = {}
        for k, it in enumerate(idx.items):
            ids = _token_ids(decont_tokens(it.text))
            if len(ids) >= n:
                hs = _window_hashes(ids, n)[n]
            elif len(ids) >= min_len:  # short text: the whole text is one "gram" of its own length
                hs = _window_hashes(ids, len(ids))[len(ids)][:1]
            else:
                continue
            hashes.setdefault(len(ids) if len(ids) < n else n, []).append(hs)
            owners.setdefault(len(ids) if len(ids) < n else n, []).append(np.full(len(hs), k, dtype=np.int64))
        for L in hashes:  # sorted hashes + the item of each (numpy, not a dict of ~1M Python ints)
            h, o = np.concatenate(hashes[L]), np.concatenate(owners[L])
            order = np.argsort(h, kind="stable")
            idx._sorted[L], idx._owner[L] = h[order], o[order]
        return idx

    def match(self, text: str) -> tuple[BenchItem, str] | None:
        """``(benchmark item, matched tokens)`` for the first n-gram (or whole short text) of a benchmark that
        occurs in ``text``, else None."""
        toks = decont_tokens(text)
        if len(toks) < self.min_len:
            return None
        windows = _window_hashes(_token_ids(toks), self.n)
        for length in sorted(self._sorted, reverse=True):  # 10-grams first
            hs, ref = windows.get(length), self._sorted[length]
            if hs is None:
                continue
            pos = np.minimum(np.searchsorted(ref, hs), len(ref) - 1)  # O(n log m), no re-sort of the index
            hit = np.flatnonzero(ref[pos] == hs)
            if hit.size:
                i = int(hit[0])
                return self.items[int(self._owner[length][pos[i]])], " ".join(toks[i:i + length])
        return None

    def flag(self, texts: Iterable[str], progress: bool = False) -> np.ndarray:
        """Boolean per text: does it contain a benchmark n-gram (or whole short text)? Same rule as :meth:`match`,
        batched: one ``searchsorted`` per window length over the windows of all texts."""
        texts = list(texts)
        if progress:
            from tqdm.auto import tqdm
            texts_it = tqdm(texts, desc="decontaminate", unit="page", mininterval=5)
        else:
            texts_it = texts
        per_len: dict[int, list[np.ndarray]] = {L: [] for L in self._sorted}
        page_of: dict[int, list[np.ndarray]] = {L: [] for L in self._sorted}
        for i, text in enumerate(texts_it):
            toks = decont_tokens(text)
            if len(toks) < self.min_len:
                continue
            windows = _window_hashes(_token_ids(toks), self.n)
            for L in self._sorted:
                if L in windows:
                    per_len[L].append(windows[L])
                    page_of[L].append(np.full(len(windows[L]), i, dtype=np.int64))
        out = np.zeros(len(texts), dtype=bool)
        for L, ref in self._sorted.items():
            if per_len[L]:
                hs, pages = np.concatenate(per_len[L]), np.concatenate(page_of[L])
                pos = np.minimum(np.searchsorted(ref, hs), len(ref) - 1)  # (np.isin sorts both: slower here)
                out[pages[ref[pos] == hs]] = True
        return out

    def sizes(self) -> dict[str, int]:
        return {f"{L}-gram": len(v) for L, v in sorted(self._sorted.items())}


def decontaminate(pages: list[dict[str, Any]], index: DecontIndex, text_key: str = "text",
                  progress: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split ``pages`` into (kept, dropped); each dropped row names the page URL and the benchmark item matched."""
    kept, dropped = [], []
    flagged = index.flag([p[text_key] for p in pages], progress=progress)
    for p, f in zip(pages, flagged):
        m = index.match(p[text_key]) if f else None  # only flagged pages pay for the detailed (reporting) match
        if m is None:
            kept.append(p)
        else:
            hit, gram = m
            dropped.append({"url": p.get("url"), "benchmark": hit.benchmark, "item": hit.item, "field": hit.field,
                            "matched": gram, "benchmark_text": hit.text[:200]})
    return kept, dropped
