"""Math corpus collection (DeepSeekMath §2.1): WARC -> text -> dedup -> fastText rounds -> domains -> annotation.

datatrove does the heavy, shardable stages (``WarcReader`` + ``Trafilatura`` extraction, ``FastTextClassifierFilter``
scoring, ``JsonlWriter``) under a ``LocalPipelineExecutor``, ``RayPipelineExecutor`` or ``SlurmPipelineExecutor``
chosen by a parameter. Only what datatrove lacks lives here: keeping math markup through HTML extraction
(:class:`MathToTex`), a small in-process MinHash for the toy pool, training the fastText classifier, domain discovery,
the URL-path annotation file and its *simulated* annotator, and the per-round bookkeeping.
Decontamination is in :mod:`dsm_utils.corpus_decont`.
"""
from __future__ import annotations

import csv
import gzip
import html
import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

import numpy as np

from .data import DataError, iter_jsonl

try:  # datatrove is an optional extra (`pip install .[corpus]`): the pure helpers below work without it
    from datatrove.pipeline.base import PipelineStep
except ImportError:  # pragma: no cover
    PipelineStep = object  # type: ignore[assignment,misc]

MATH, NOT_MATH = "math", "not_math"
ANNOTATION_COLUMNS = ("domain", "path_prefix", "label", "note")


# ----------------------------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------------------------
def resolve(path: str, root: str | Path) -> str:
    """Resolve a data path: URLs (``s3://``, ``hf://``...) and absolute paths as given, others under ``root``."""
    if not path or "://" in path or os.path.isabs(path):
        return path
    return str(Path(root) / path)


# ----------------------------------------------------------------------------------------------------------------
# 1. Extraction: WARC -> HTML with math kept as TeX -> text (datatrove)
# ----------------------------------------------------------------------------------------------------------------
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(["'])(.*?)\1""", re.I | re.S)
_CLASS_MATH = re.compile(r"""class\s*=\s*["'][^"']*\b(math|latex|tex)\b""", re.I)
_SCRIPT_TEX = re.compile(r"""<script\b[^>]*type\s*=\s*["']math/tex(;\s*mode=display)?["'][^>]*>(.*?)</script>""",
                         re.I | re.S)
_MATHML = re.compile(r"""<math\b[^>]*?\balttext\s*=\s*(["'])(.*?)\1[^>]*>.*?</math>""", re.I | re.S)
_TEXLIKE = re.compile(r"\\[a-zA-Z]+|[\^_{}]")


def math_to_tex(page_html: str) -> str:
    """Rewrite math markup that HTML-to-text extractors drop into inline TeX text.

    Handles what OpenWebMath found on the web: ``<img class="math" alt="\\frac{..}">`` (Sphinx imgmath, wikis),
    ``<script type="math/tex">`` (MathJax 2) and MathML ``<math alttext=..>``. ``\\(..\\)`` and ``$..$`` already sit
    in the text and survive extraction unchanged.
    """
    def img(m: re.Match) -> str:
        tag = m.group(0)
        alt = _ALT.search(tag)
        if alt and (_CLASS_MATH.search(tag) or _TEXLIKE.search(html.unescape(alt.group(2)))):
            return f"<span>${alt.group(2)}$</span>"  # alt is already HTML-escaped: keep it so
        return tag

    out = _IMG.sub(img, page_html)
    out = _SCRIPT_TEX.sub(lambda m: f"<span>{'$$' if m.group(1) else '$'}{html.escape(m.group(2).strip())}"
                                    f"{'$$' if m.group(1) else '$'}</span>", out)
    return _MATHML.sub(lambda m: f"<span>${m.group(2)}$</span>", out)


class MathToTex(PipelineStep):
    """datatrove step before the extractor: keep math as TeX (:func:`math_to_tex`) and the ``<title>`` in metadata."""

    name = "∑ math to TeX"
    type = "🛢 - EXTRAC"

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            with self.track_time():
                t = _TITLE.search(doc.text[:20000])
                doc.metadata["title"] = html.unescape(re.sub(r"\s+", " ", t.group(1))).strip()[:200] if t else ""
                doc.text = math_to_tex(doc.text)
            self.stat_update("pages")
            yield doc


def _base_extractor():
    from datatrove.pipeline.extractors.base import BaseExtractor
    return BaseExtractor


class Resiliparse(_base_extractor() if PipelineStep is not object else object):  # type: ignore[misc]
    """datatrove extractor on Resiliparse's ``extract_plain_text`` (datatrove 0.10.1 ships Trafilatura and
    Readability+Inscriptis only). Main-content mode, no alt texts (math alts are already TeX via MathToTex)."""

    name = "⛏ Resiliparse"
    _requires_dependencies = ["resiliparse"]

    def __init__(self, timeout: float = 5.0, main_content: bool = True):
        super().__init__(timeout)
        self.main_content = main_content

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(text, main_content=self.main_content, preserve_formatting=True,
                                  list_bullets=True, alt_texts=False, links=False, noscript=False)

    def run(self, data, rank: int = 0, world_size: int = 1):
        """In-process extraction. ``BaseExtractor.run`` ships every page through a pipe to a sandbox process (to
        enforce the timeout on Python extractors that can hang); for Resiliparse (C++, linear time) that round trip
        cost 3-8 ms/page here against 1-2 ms for the extraction itself."""
        from datatrove.utils.typeshelper import StatHints

        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                try:
                    doc.text = self.extract(doc.text)
                    self.stat_update("extracted")
                except Exception as exc:  # a broken page is skipped, not fatal (as in BaseExtractor)
                    self.stat_update("clean_error")
                    if not self._warned_error:
                        from datatrove.utils.logging import logger
                        logger.warning(f"resiliparse failed on {doc.id}: {exc!r}; skipping (warned once)")
                        self._warned_error = True
                    continue
            if doc.text:
                self.stat_update(StatHints.forwarded)
                self.update_doc_stats(doc)
                yield doc
            else:
                self.stat_update(StatHints.dropped)


def default_extractor() -> str:
    """``resiliparse`` when installed (≈10x faster than Trafilatura here), else ``trafilatura``."""
    try:
        import resiliparse  # noqa: F401
        return "resiliparse"
    except ImportError:
        return "trafilatura"


def extraction_pipeline(warc_folder: str, output_folder: str, glob_pattern: str = "*.warc.gz",
                        limit: int = -1, extractor: str = "auto", extractor_timeout: float = 5.0) -> list:
    """WARC files -> :class:`MathToTex` -> text extractor -> ``JsonlWriter`` (``${rank}.jsonl``).

    ``glob_pattern`` matters: without it ``WarcReader`` also opens non-WARC files in the folder (``labels.tsv``).
    ``extractor``: ``resiliparse`` (our small datatrove extractor), ``trafilatura`` (datatrove's, run with
    ``no_fallback=True`` -- 2x faster -- and without its own dedup; ``favour_precision=False`` keeps short doc pages),
    or ``auto`` (:func:`default_extractor`).
    """
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    extractor = default_extractor() if extractor == "auto" else extractor
    if extractor == "resiliparse":
        ex = Resiliparse(timeout=extractor_timeout)
    elif extractor == "trafilatura":
        ex = Trafilatura(favour_precision=False, deduplicate=False, timeout=extractor_timeout, no_fallback=True)
    else:
        raise ValueError(f"extractor must be 'auto', 'resiliparse' or 'trafilatura', got {extractor!r}")
    return [
        WarcReader(warc_folder, glob_pattern=glob_pattern, limit=limit),
        MathToTex(),
        ex,
        # uncompressed: gzip at datatrove's default level cost ~2 ms/page, as much as the extraction itself
        JsonlWriter(output_folder, output_filename="${rank}.jsonl", compression=None),
    ]


def make_executor(pipeline: list, executor: str = "local", tasks: int = 1, workers: int = 1,
                  logging_dir: str | None = None, slurm: dict | None = None, ray: dict | None = None):
    """A datatrove executor by name: ``local`` (default), ``ray`` (needs ``ray.init()`` first) or ``slurm``.

    ``slurm``/``ray`` hold extra keyword arguments (partition, time, cpus_per_task, ...).
    ``skip_completed=False``: every notebook run recomputes (the run folder is the cache, not the executor).
    """
    common = dict(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=False)
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor
        return LocalPipelineExecutor(**common)
    if executor == "ray":
        from datatrove.executor import RayPipelineExecutor
        return RayPipelineExecutor(**common, **(ray or {}))
    if executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor
        kw = dict(slurm or {})
        kw.setdefault("time", "04:00:00")
        kw.setdefault("partition", "cpu")
        return SlurmPipelineExecutor(**common, **kw)
    raise ValueError(f"executor must be 'local', 'ray' or 'slurm', got {executor!r}")


RAY_START_ENV = {  # generous start-up timeouts: on a loaded 2-core machine worker start-up alone can exceed 60 s
    "RAY_raylet_start_wait_time_s": "180",
    "RAY_worker_register_timeout_seconds": "300",
    "RAY_gcs_rpc_server_connect_timeout_s": "60",
}


def _ray_ready() -> bool:
    import ray
    return ray.is_initialized()


def start_local_ray(num_cpus: int = 2, **kw) -> None:
    """``ray.init`` of a local instance (no dashboard, generous start timeouts from :data:`RAY_START_ENV`).

    Raises ``RuntimeError`` naming the cause (Ray's own message) when Ray cannot start in this environment.
    """
    import ray

    for k, v in RAY_START_ENV.items():
        os.environ.setdefault(k, v)
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False, **kw)
    except Exception as exc:
        raise RuntimeError(f"a local Ray instance ({num_cpus} CPUs) could not start: {type(exc).__name__}: {exc}"
                           ) from exc


def run_stage(pipeline: list, executor: str = "local", tasks: int = 1, workers: int = 1,
              logging_dir: str | None = None, quiet: bool = True, **kw) -> float:
    """Run one datatrove pipeline to completion; returns wall seconds. Ray is started locally if not running."""
    if quiet:  # datatrove prints a stats table per task; keep warnings only (its per-rank log files stay complete)
        import sys

        from datatrove.utils.logging import logger
        logger.remove()
        logger.add(sys.stderr, level="WARNING")
    if executor == "ray" and not _ray_ready():
        start_local_ray(num_cpus=max(1, workers))
    t0 = time.time()
    make_executor(pipeline, executor, tasks, workers, logging_dir, **kw).run()
    return time.time() - t0


def read_folder(folder: str | Path) -> list[dict[str, Any]]:
    """All records of the ``*.jsonl`` / ``*.jsonl.gz`` files of a datatrove output folder, in rank order."""
    files = sorted([*Path(folder).glob("*.jsonl"), *Path(folder).glob("*.jsonl.gz")],
                   key=lambda p: (len(p.name), p.name))
    return [rec for f in files for _, rec in iter_jsonl(f)]


def load_pages(folder: str | Path) -> list[dict[str, Any]]:
    """Flatten datatrove's ``{id, text, metadata: {url, title}}`` rows into ``{id, url, domain, title, text}``."""
    pages = []
    for rec in read_folder(folder):
        md = rec.get("metadata") or {}
        url = md.get("url") or rec.get("url")
        if not url or "text" not in rec:
            raise DataError(f"{folder}: record {rec.get('id')!r} lacks 'text' or 'metadata.url'")
        pages.append({"id": rec.get("id"), "url": url, "domain": domain_of(url), "title": md.get("title", ""),
                      "text": rec["text"]})
    return pages


# ----------------------------------------------------------------------------------------------------------------
# 2. Dedup: URL, then MinHash near-duplicates
# ----------------------------------------------------------------------------------------------------------------
def domain_of(url: str) -> str:
    """Base URL (host, lower-case, without ``www.`` and port) -- the paper's "domain"."""
    host = urlsplit(url).netloc.lower().split("@")[-1].split(":")[0]
    return host[4:] if host.startswith("www.") else host


def url_key(url: str) -> str:
    """Normalised URL for exact dedup: scheme-less, host lower-case, no fragment, no trailing ``/`` or index page."""
    s = urlsplit(url.strip())
    path = re.sub(r"/(index\.html?)?$", "", s.path) or ""
    return f"{domain_of(url)}{path}" + (f"?{s.query}" if s.query else "")


def url_dedup(pages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep the first page per normalised URL; returns (kept, n_dropped)."""
    seen, kept = set(), []
    for p in pages:
        k = url_key(p["url"])
        if k not in seen:
            seen.add(k)
            kept.append(p)
    return kept, len(pages) - len(kept)


_WORDS = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1


def _shingle_hashes(text: str, shingle: int, max_shingles: int) -> np.ndarray:
    """uint64 hashes of the word ``shingle``-grams of one page (first ``max_shingles`` only)."""
    import xxhash

    n_words = max_shingles + shingle - 1
    # whitespace tokens (str.split is ~10x faster than a \w+ regex here), over the head of the page only
    head = text[: n_words * 16]
    words = head.lower().split()[:n_words]
    if len(words) < n_words and len(head) < len(text):  # a page of very long tokens: take the whole text
        words = text.lower().split()[:n_words]
    if not words:
        return np.empty(0, dtype=np.uint64)
    ids = np.fromiter(map(xxhash.xxh64_intdigest, words), dtype=np.uint64, count=len(words))
    k = min(shingle, len(ids))
    m = len(ids) - k + 1
    with np.errstate(over="ignore"):
        h = ids[:m].copy()
        for j in range(1, k):
            h = h * np.uint64(1_000_003) + ids[j: j + m]
    return h  # repeated shingles do not change a minimum; np.unique here cost more than it saved


def minhash_signatures(texts: Sequence[str], num_perm: int = 64, shingle: int = 5, seed: int = 0,
                       max_shingles: int = 5000) -> np.ndarray:
    """MinHash signatures (``len(texts) x num_perm`` uint64) of lower-cased whitespace-token ``shingle``-grams.

    Permutations are ``(x ^ a_i) * b_i`` over uint64 (odd ``b_i``); cheap and good enough for LSH banding.
    Only the first ``max_shingles`` shingles of a page are hashed (bounds the cost of very long pages). Words are
    hashed with xxh64 (stable across processes, unlike ``hash``). Vectorised over the whole pool: the
    shingle hashes of all pages are concatenated and each permutation is one pass + ``np.minimum.reduceat``.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
    b = rng.integers(0, 2**63, num_perm, dtype=np.uint64) | np.uint64(1)
    sigs = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    per_page = [_shingle_hashes(t, shingle, max_shingles) for t in texts]
    lens = np.array([len(h) for h in per_page], dtype=np.int64)
    rows = np.flatnonzero(lens > 0)
    if rows.size == 0:
        return sigs
    allh = np.concatenate([per_page[i] for i in rows])
    starts = np.concatenate([[0], np.cumsum(lens[rows])[:-1]])
    with np.errstate(over="ignore"):
        for j in range(num_perm):
            sigs[rows, j] = np.minimum.reduceat((allh ^ a[j]) * b[j], starts)
    return sigs


def near_duplicates(sigs: np.ndarray, bands: int = 8, rows: int = 8) -> list[int]:
    """Indices to drop: a page whose signature shares a full LSH band with an earlier page (first one is kept).

    With 8 bands x 8 rows the collision probability is ~50% at Jaccard 0.92, ~98% at 0.97 and ~3% at 0.75.
    """
    if sigs.shape[1] < bands * rows:
        raise ValueError(f"signatures have {sigs.shape[1]} permutations < bands*rows = {bands * rows}")
    parent = list(range(len(sigs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for band in range(bands):
        seen: dict[bytes, int] = {}
        block = np.ascontiguousarray(sigs[:, band * rows:(band + 1) * rows])
        for i in range(len(sigs)):
            key = block[i].tobytes()
            j = seen.setdefault(key, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return [i for i in range(len(sigs)) if find(i) != i]


def minhash_dedup(pages: list[dict[str, Any]], num_perm: int = 64, bands: int = 8, rows: int = 8,
                  shingle: int = 5, seed: int = 0) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Drop near-duplicate pages; returns (kept, [(dropped url, kept url of its cluster)])."""
    sigs = minhash_signatures([p["text"] for p in pages], num_perm=num_perm, shingle=shingle, seed=seed)
    drop = near_duplicates(sigs, bands=bands, rows=rows)
    dropset = set(drop)
    # report each dropped page against the first page sharing one of its bands
    first: dict[tuple[int, bytes], int] = {}
    for i in range(len(pages)):
        for band in range(bands):
            first.setdefault((band, sigs[i, band * rows:(band + 1) * rows].tobytes()), i)
    pairs = []
    for i in drop:
        j = min(first[(band, sigs[i, band * rows:(band + 1) * rows].tobytes())] for band in range(bands))
        pairs.append((pages[i]["url"], pages[j]["url"]))
    return [p for i, p in enumerate(pages) if i not in dropset], pairs


# ----------------------------------------------------------------------------------------------------------------
# 3. Seed, negatives and the fastText classifier
# ----------------------------------------------------------------------------------------------------------------
def load_math_qa_seed(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Seed pages from StackExchange thread dumps: title + question + answers + comments, one page per thread."""
    out = []
    for path in paths:
        for lineno, r in iter_jsonl(path):
            q = r.get("question")
            if not isinstance(q, dict) or "body_text" not in q:
                raise DataError(f"{path}:{lineno}: expected key 'question' with 'body_text'")
            parts = [q.get("title", ""), q["body_text"]]
            parts += [a.get("body_text", "") for a in r.get("answers") or []]
            com = r.get("comments") or {}
            parts += [c.get("text", "") for c in com.get("question", [])]
            parts += [c.get("text", "") for cs in (com.get("answers") or {}).values() for c in cs]
            out.append({"url": q.get("url", ""), "text": "\n".join(p for p in parts if p)})
    return out


def load_text_records(paths: Iterable[str | Path], text_key: str = "text", url_key_path: str = "metadata.url",
                      limit: int = -1) -> list[dict[str, Any]]:
    """``{url, text}`` rows from jsonl(.gz) files (e.g. CC WET texts in Dolma format), empty texts skipped."""
    out = []
    for path in paths:
        for lineno, r in iter_jsonl(path):
            if text_key not in r:
                raise DataError(f"{path}:{lineno}: missing key {text_key!r}")
            if not str(r[text_key]).strip():
                continue
            url: Any = r
            for k in url_key_path.split("."):
                url = url.get(k, "") if isinstance(url, dict) else ""
            out.append({"url": url or "", "text": str(r[text_key])})
            if 0 < limit <= len(out):
                return out
    return out


def load_hub_texts(dataset: str, limit: int, text_key: str = "text", split: str = "train") -> list[dict[str, Any]]:
    """Seed/negatives at scale from the Hugging Face hub (e.g. ``open-web-math/open-web-math``), streamed by
    datatrove's ``HuggingFaceDatasetReader``."""
    from datatrove.pipeline.readers import HuggingFaceDatasetReader

    reader = HuggingFaceDatasetReader(dataset, dataset_options={"split": split}, streaming=True, limit=limit,
                                      text_key=text_key)
    return [{"url": d.metadata.get("url", ""), "text": d.text} for d in reader.run()]


@dataclass
class FastTextParams:
    """fastText supervised hyper-parameters. Paper: dim 256, lr 0.1, word n-grams 3, min count 3, 3 epochs."""

    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 3
    bucket: int = 2_000_000  # fastText default; the toy profiles cap it so the model file stays small
    thread: int = 1
    max_chars: int = 20_000  # a page is truncated to this for training and scoring
    min_words: int = 5  # training examples with fewer words (after normalisation) are dropped


_FT_SPACE = re.compile(r"\s+")


def ft_line(text: str, max_chars: int | None = None) -> str:
    """One fastText input line: lower-cased, whitespace collapsed (fastText treats ``\\n`` as end of example),
    truncated to ``max_chars``. Training and scoring both go through this, so they see the same text."""
    return _FT_SPACE.sub(" ", (text[:max_chars] if max_chars else text).lower()).strip()


def train_classifier(positives: Sequence[str], negatives: Sequence[str], model_path: str | Path,
                     params: FastTextParams, seed: int = 0):
    """Train a ``__label__math`` vs ``__label__other`` fastText model and save it to ``model_path``.

    Examples are normalised by :func:`ft_line` and those under ``params.min_words`` words are dropped.
    Training runs in a fresh interpreter (``multiprocessing`` spawn, ~1 s): fasttext-numpy2-wheel 0.9.2 carries
    state across trainings of one process. Measured here on the seed-vs-CC data: the same training repeated in one
    process fails with "Encountered NaN." from the third run on, at any learning rate down to 0.0125 and with any
    loss (softmax/hs/ova); a *forked* child inherits the damage (parent that loaded a model); spawned children gave
    5/5 successes for every setting tried. A NaN is still retried in a new child with half the learning rate.
    """
    import fasttext

    pos = [x for x in (ft_line(t, params.max_chars) for t in positives) if len(x.split()) >= params.min_words]
    neg = [x for x in (ft_line(t, params.max_chars) for t in negatives) if len(x.split()) >= params.min_words]
    if not pos or not neg:
        raise ValueError(f"need positives and negatives of >= {params.min_words} words, "
                         f"got {len(pos)} and {len(neg)} (of {len(positives)} and {len(negatives)})")
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"__label__{MATH} {x}" for x in pos] + [f"__label__other {x}" for x in neg]
    random.Random(seed).shuffle(rows)
    train_file = model_path.with_suffix(".train.txt")
    train_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    kwargs = dict(dim=params.dim, lr=params.lr, wordNgrams=params.word_ngrams, minCount=params.min_count,
                  epoch=params.epoch, bucket=params.bucket, thread=params.thread, seed=seed,
                  verbose=int(os.environ.get("DSM_FT_VERBOSE", "0")))
    error = ""
    for _ in range(4):
        error = _train_in_child(str(train_file), str(model_path), kwargs)
        if not error:
            break
        if "NaN" not in error:
            raise RuntimeError(f"fastText training on {train_file} failed: {error}")
        kwargs["lr"] /= 2
    else:
        raise RuntimeError(f"fastText training on {train_file} failed 4 times, down to lr={kwargs['lr'] * 2}: {error}")
    train_file.unlink()
    return fasttext.load_model(str(model_path))


def _train_in_child(train_file: str, model_path: str, kwargs: dict) -> str:
    """Train + save in a forked child; returns "" on success, else the child's error message."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: a forked child inherits the poisoned state (see above)
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_train_child_body, args=(train_file, model_path, kwargs, send), daemon=True)
    proc.start()
    send.close()
    try:
        error = recv.recv()
    except EOFError:  # the child died without a word (e.g. killed for memory)
        error = "training process died"
    proc.join()
    return error if error or proc.exitcode == 0 else f"training process exit code {proc.exitcode}"


def _train_child_body(train_file: str, model_path: str, kwargs: dict, conn) -> None:
    """Body of the spawned training process: train, save, report "" or the error over ``conn``."""
    try:
        import fasttext

        fasttext.train_supervised(input=train_file, **kwargs).save_model(model_path)
        conn.send("")
    except BaseException as exc:  # report, never raise into multiprocessing's own error printing
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def math_scores(model, texts: Sequence[str], max_chars: int | None = None) -> np.ndarray:
    """P(math) for each text with an in-memory model (used for small samples; the pool is scored by datatrove)."""
    labels, probs = model.predict([ft_line(t, max_chars) for t in texts], k=-1)
    return np.array([dict(zip(ls, ps)).get(f"__label__{MATH}", 0.0) for ls, ps in zip(labels, probs)])


def _score_adapter(self, document) -> dict:
    """JsonlWriter adapter: keep only id, url and P(math) (the texts are already in the pool folder)."""
    return {"id": document.id, "url": document.metadata.get("url"),
            "score": float(document.metadata.get(f"__label__{MATH}", 0.0))}


class FastTextNormalize(PipelineStep):
    """datatrove step before ``FastTextClassifierFilter``: the text as the classifier was trained on it
    (:func:`ft_line`: lower-cased, one line, truncated). Only the scores are written, so the pool is unchanged."""

    name = "🔡 fastText normalise"
    type = "🔻 - FILTER"

    def __init__(self, max_chars: int | None = None):
        super().__init__()
        self.max_chars = max_chars

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            with self.track_time():
                doc.text = ft_line(doc.text, self.max_chars) or "."  # the filter drops docs with empty text
            yield doc


def _fasttext_filter_class():
    from datatrove.pipeline.filters import FastTextClassifierFilter

    class LocalFastTextFilter(FastTextClassifierFilter):
        """``FastTextClassifierFilter`` that loads a local model file directly. The parent copies every model into
        datatrove's asset cache keyed by its *path* and never refreshes it, so a rerun in the same run folder
        (``work/round1/classifier.bin`` again) silently scored with the first run's models."""

        @property
        def model(self):
            if self._model is None and "://" not in str(self.model_url):
                from fasttext.FastText import _FastText

                self._model = _FastText(str(self.model_url))
            return super().model

    return LocalFastTextFilter


def scoring_pipeline(pool_folder: str, model_path: str, output_folder: str, max_chars: int | None = None) -> list:
    """datatrove: ``JsonlReader`` (pool) -> :class:`FastTextNormalize` -> ``FastTextClassifierFilter`` (annotates,
    keeps all) -> scores jsonl."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    FastTextClassifierFilter = _fasttext_filter_class()
    return [
        JsonlReader(pool_folder, glob_pattern="*.jsonl.gz"),
        FastTextNormalize(max_chars),
        # remove_labels with an unreachable threshold = "annotate only": datatrove 0.10.1 crashes in its label
        # check when neither keep_labels nor remove_labels is given (`a or [] + None` precedence bug)
        FastTextClassifierFilter(str(model_path), remove_labels=[(MATH, 2.0)], save_labels_in_metadata=True,
                                 newline_replacement=" "),
        JsonlWriter(output_folder, output_filename="${rank}.jsonl", adapter=_score_adapter, compression=None),
    ]


def write_pool(pages: list[dict[str, Any]], folder: str | Path, shards: int = 1) -> Path:
    """Write the deduplicated pool in datatrove's jsonl layout (``{id, text, metadata}``), ``shards`` files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl.gz"):
        old.unlink()
    shards = max(1, min(shards, len(pages) or 1))
    # compresslevel 1: the pool is rewritten every run and read a few times; level 9 (the default) cost ~8 s
    handles = [gzip.open(folder / f"{s:05d}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1)
               for s in range(shards)]
    try:
        for i, p in enumerate(pages):
            handles[i % shards].write(json.dumps({"id": p["id"], "text": p["text"],
                                                  "metadata": {"url": p["url"], "title": p.get("title", "")}},
                                                 ensure_ascii=False) + "\n")
    finally:
        for h in handles:
            h.close()
    return folder


# ----------------------------------------------------------------------------------------------------------------
# 4. Domain discovery and URL-path annotation
# ----------------------------------------------------------------------------------------------------------------
def discover_domains(domains: Sequence[str], collected: np.ndarray, min_fraction: float = 0.10):
    """Per domain: pages in the pool, pages collected, fraction; ``selected`` = fraction > ``min_fraction``."""
    import pandas as pd

    df = pd.DataFrame({"domain": list(domains), "collected": np.asarray(collected, dtype=bool)})
    g = df.groupby("domain")["collected"].agg(n_pages="size", n_collected="sum").reset_index()
    g["fraction"] = g["n_collected"] / g["n_pages"]
    g["selected"] = g["fraction"] > min_fraction
    return g.sort_values(["selected", "fraction"], ascending=False).reset_index(drop=True)


def path_prefix(url: str, depth: int = 1) -> str:
    """The first ``depth`` directories of the URL path, e.g. ``/questions/`` (depth 1) of mathoverflow.net."""
    parts = [p for p in urlsplit(url).path.split("/")[:-1] if p]  # directories only, not the file name
    return "/" + "".join(f"{p}/" for p in parts[:depth])


def candidate_prefixes(pages: Sequence[dict[str, Any]], domain: str, collected: np.ndarray | None = None,
                       depth: int = 1, n_titles: int = 3):
    """Interactive helper: path prefixes of ``domain`` with page counts, collected counts and sample titles."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(pages):
        if p["domain"] != domain:
            continue
        r = rows.setdefault(path_prefix(p["url"], depth), {"n_pages": 0, "n_collected": 0, "titles": []})
        r["n_pages"] += 1
        r["n_collected"] += int(bool(collected[i])) if collected is not None else 0
        if len(r["titles"]) < n_titles and p.get("title"):
            r["titles"].append(p["title"][:60])
    df = pd.DataFrame([{"domain": domain, "path_prefix": k, **v, "sample_titles": " | ".join(v.pop("titles"))}
                       for k, v in rows.items()], columns=["domain", "path_prefix", "n_pages", "n_collected",
                                                          "titles", "sample_titles"])
    return df.drop(columns=["titles"]).sort_values("n_pages", ascending=False).reset_index(drop=True)


@dataclass(frozen=True)
class Annotation:
    """One row of the annotation file: pages of ``domain`` under ``path_prefix`` are ``math`` or ``not_math``."""

    domain: str
    path_prefix: str
    label: str
    note: str = ""


def write_annotations(path: str | Path, rows: Iterable[Annotation]) -> Path:
    """Write the annotation TSV (header ``domain path_prefix label note``); a person edits the ``label`` column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(ANNOTATION_COLUMNS)
        for a in rows:
            w.writerow([a.domain, a.path_prefix, a.label, a.note])
    return path


def read_annotations(path: str | Path, allow_blank: bool = True) -> list[Annotation]:
    """Read an annotation TSV. Rows with an empty label (not yet annotated) are skipped when ``allow_blank``.

    Errors name the file, line and column: a missing column, a label other than ``math``/``not_math``, or a
    path prefix that does not start with ``/``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}")
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != list(ANNOTATION_COLUMNS[:3]):
            raise DataError(f"{path}:1: header must start with {'/'.join(ANNOTATION_COLUMNS[:3])}, got {header}")
        for lineno, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise DataError(f"{path}:{lineno}: expected columns {ANNOTATION_COLUMNS[:3]}, got {row}")
            domain, prefix, label = (c.strip() for c in row[:3])
            if not label and allow_blank:
                continue
            if label not in (MATH, NOT_MATH):
                raise DataError(f"{path}:{lineno}: column 'label' must be {MATH!r} or {NOT_MATH!r}, got {label!r}")
            if not prefix.startswith("/"):
                raise DataError(f"{path}:{lineno}: column 'path_prefix' must start with '/', got {prefix!r}")
            out.append(Annotation(domain, prefix, label, row[3].strip() if len(row) > 3 else ""))
    return out


def read_labels(path: str | Path) -> dict[str, int]:
    """Ground truth of the mini-CC (``url -> is_math_domain``); evaluation and the simulated annotator only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"labels file not found: {path}")
    out = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        for key in ("url", "is_math_domain"):
            if key not in (reader.fieldnames or []):
                raise DataError(f"{path}:1: missing column {key!r} (have {reader.fieldnames})")
        for lineno, row in enumerate(reader, start=2):
            if row["is_math_domain"] not in ("0", "1"):
                raise DataError(f"{path}:{lineno}: column 'is_math_domain' must be 0 or 1, "
                                f"got {row['is_math_domain']!r}")
            out[row["url"]] = int(row["is_math_domain"])
    return out


def simulated_annotator(candidates, labels: dict[str, int], pages: Sequence[dict[str, Any]],
                        depth: int = 1) -> list[Annotation]:
    """SIMULATED stand-in for the paper's manual URL annotation, driven by the ground-truth labels file.

    For each candidate ``(domain, path_prefix)`` it labels the prefix ``math`` when most labelled pages under it are
    math, else ``not_math``. A person does the same by reading the titles that :func:`candidate_prefixes` shows.
    """
    votes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for p in pages:
        if p["url"] in labels:
            votes[(p["domain"], path_prefix(p["url"], depth))].append(labels[p["url"]])
    out = []
    for domain, prefix in candidates:
        v = votes.get((domain, prefix))
        if not v:
            continue  # nothing to read under that prefix: a person would skip it too
        frac = sum(v) / len(v)
        out.append(Annotation(domain, prefix, MATH if frac >= 0.5 else NOT_MATH,
                              f"simulated from labels: {sum(v)}/{len(v)} math"))
    return out


def annotation_labels(pages: Sequence[dict[str, Any]], annotations: Iterable[Annotation]) -> list[str | None]:
    """Label of each page from the annotations (longest matching prefix of its domain wins), else None."""
    by_domain: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by_domain[a.domain].append(a)
    for v in by_domain.values():
        v.sort(key=lambda a: -len(a.path_prefix))
    out: list[str | None] = []
    for p in pages:
        path = urlsplit(p["url"]).path or "/"
        out.append(next((a.label for a in by_domain.get(p["domain"], []) if path.startswith(a.path_prefix)), None))
    return out


# ----------------------------------------------------------------------------------------------------------------
# 5. Tokens
# ----------------------------------------------------------------------------------------------------------------
def token_counter():
    """``(name, count_fn)``: the project's toy tokenizer if importable, else a whitespace count (and says so)."""
    try:
        from .tokenizer import default_tokenizer  # written by another module owner; may not exist yet
        tok = default_tokenizer()

        def count(texts: Sequence[str]) -> list[int]:
            return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]
        return getattr(tok, "name_or_path", "default_tokenizer"), count
    except Exception:  # ImportError, or a tokenizer that cannot load offline: fall back, visibly
        return "whitespace (dsm_utils.tokenizer unavailable)", lambda texts: [len(t.split()) for t in texts]


def token_counts_for(texts: Sequence[str], count, budget_chars: int = 600_000, page_chars: int = 4000,
                     seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Tokens per page: exact when the pool holds at most ``budget_chars`` characters, else estimated.

    The toy BPE tokenizer runs at ~0.3 M tokens/s here: exact counts of the whole mini-CC pool (~20 M tokens)
    would take over a minute, more than all the rounds together. The estimate tokenizes a random sample of pages
    (each cut to ``page_chars``) up to ``budget_chars`` and scales every page's length by the sample's
    tokens-per-character ratio. ``info`` says which it was.
    """
    lens = np.array([len(t) for t in texts], dtype=np.int64)
    if lens.sum() <= budget_chars:
        return np.array(count(list(texts)), dtype=np.int64), {"exact": True}
    order = np.random.default_rng(seed).permutation(len(texts))
    take = order[: max(1, int(np.searchsorted(np.cumsum(np.minimum(lens[order], page_chars)), budget_chars)))]
    sample = [texts[i][:page_chars] for i in take]
    ratio = sum(count(sample)) / max(1, sum(len(x) for x in sample))
    return np.rint(lens * ratio).astype(np.int64), {"exact": False, "tokens_per_char": round(ratio, 4),
                                                    "sample_pages": len(sample)}


# ----------------------------------------------------------------------------------------------------------------
# 6. Rounds
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class RoundState:
    """Everything that carries over between rounds."""

    pages: list[dict[str, Any]]  # the deduplicated pool
    seed_texts: list[str]
    negative_texts: list[str]
    annotations: list[Annotation] = field(default_factory=list)
    first_round: np.ndarray | None = None  # round in which each page was first collected (0 = never)
    math_domains: list[str] = field(default_factory=list)  # domains annotated with a math prefix, in order found
    rounds: list[dict[str, Any]] = field(default_factory=list)
    scores: np.ndarray | None = None
    collected: np.ndarray | None = None


def top_fraction(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``fraction`` highest-scored pages (ties broken by order)."""
    k = int(round(fraction * len(scores)))
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(-scores, kind="stable")[:k]] = True
    return mask


def _fill(first: Sequence[str], rest: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Up to ``n`` examples: annotated pool pages ``first`` (in-distribution, the informative ones) take up to
    three quarters of the budget, the seed/random-CC texts ``rest`` fill the remainder (at least a quarter)."""
    a = rng.sample(list(first), min(len(first), (3 * n) // 4))
    b = rng.sample(list(rest), min(len(rest), n - len(a)))
    return a + b


def run_round(state: RoundState, r: int, work_dir: str | Path, ft: FastTextParams, *, keep_fraction: float,
              min_score: float = 0.5, min_domain_fraction: float = 0.10, annotator: str = "simulated",
              labels: dict[str, int] | None = None,
              annotation_file: str | Path | None = None, annotation_depth: int = 1,
              use_annotated_negatives: bool = True, max_train_per_class: int = 3000, token_counts=None,
              executor: str = "local", tasks: int = 1, workers: int = 1, seed: int = 0,
              executor_kwargs: dict | None = None) -> dict[str, Any]:
    """One iteration of §2.1: train -> score the pool (datatrove) -> keep top -> domains -> annotate -> grow seed.

    Training data: positives are the seed plus every page under a URL prefix annotated ``math`` (collected or not:
    the paper's "uncollected pages are added to the seed"); negatives are random CC pages plus, when
    ``use_annotated_negatives``, every page under a prefix annotated ``not_math`` -- the hard negatives that
    random CC lacks (documentation sites that look like the math ones). Kept ("collected") pages are the
    ``keep_fraction`` top-ranked pages whose P(math) is also at least ``min_score``. The threshold is not applied
    while no annotation exists (round 1): the seed-vs-random-CC classifier is calibrated on another distribution
    than the pool (on the mini-CC it gives P(math) >= 0.5 to 3 of 4,917 pages), so round 1 is rank-only as in
    the paper; from the first annotations on, the classifier has trained on pool pages and its scores mean what
    they say.
    """
    work = Path(work_dir)
    rng = random.Random(seed + r)
    n = len(state.pages)
    if state.first_round is None:
        state.first_round = np.zeros(n, dtype=int)
    ann = annotation_labels(state.pages, state.annotations)
    ann_pos = [p["text"] for p, a in zip(state.pages, ann) if a == MATH]
    ann_neg = [p["text"] for p, a in zip(state.pages, ann) if a == NOT_MATH] if use_annotated_negatives else []
    pos = _fill(ann_pos, state.seed_texts, max_train_per_class, rng)
    neg = _fill(ann_neg, state.negative_texts, max_train_per_class, rng)

    t0 = time.time()
    model_path = work / f"round{r}" / "classifier.bin"
    train_classifier(pos, neg, model_path, ft, seed=seed)
    t_train = time.time() - t0

    t0 = time.time()
    score_dir = work / f"round{r}" / "scores"
    run_stage(scoring_pipeline(str(work / "pool"), str(model_path), str(score_dir), ft.max_chars), executor,
              tasks, workers,
              logging_dir=str(work / f"round{r}" / "logs"), **(executor_kwargs or {}))
    by_id = {rec["id"]: rec["score"] for rec in read_folder(score_dir)}
    missing = [p["id"] for p in state.pages if p["id"] not in by_id]
    if missing:
        raise RuntimeError(f"{score_dir}: {len(missing)} pool pages have no score (e.g. {missing[:3]})")
    scores = np.array([by_id[p["id"]] for p in state.pages])
    t_score = time.time() - t0

    collected = top_fraction(scores, keep_fraction)
    if state.annotations:  # the threshold needs a classifier that has seen annotated pool pages (see docstring)
        collected &= scores >= min_score
    state.first_round[(state.first_round == 0) & collected] = r
    state.scores, state.collected = scores, collected

    doms = discover_domains([p["domain"] for p in state.pages], collected, min_domain_fraction)
    selected = doms.loc[doms["selected"], "domain"].tolist()
    cands = []
    for d in selected:
        cp = candidate_prefixes(state.pages, d, collected, depth=annotation_depth)
        cands += [(d, pfx) for pfx in cp["path_prefix"]]
    done = {(a.domain, a.path_prefix) for a in state.annotations}
    todo = [c for c in cands if c not in done]
    if annotator == "simulated":
        if labels is None:
            raise ValueError("annotator='simulated' needs the labels file (labels_path)")
        new = simulated_annotator(todo, labels, state.pages, depth=annotation_depth)
    elif annotator == "file":
        if annotation_file is None:
            raise ValueError("annotator='file' needs annotation_file")
        have = read_annotations(annotation_file) if Path(annotation_file).exists() else []
        new = [a for a in have if (a.domain, a.path_prefix) not in done]
        # append the still-unlabelled candidates so a person can fill them in for the next run
        labelled = {(a.domain, a.path_prefix) for a in have}
        blank = [Annotation(d, pfx, "", f"candidate from round {r}") for d, pfx in todo if (d, pfx) not in labelled]
        if blank:
            _append_blank(annotation_file, blank)
    else:
        raise ValueError(f"annotator must be 'simulated' or 'file', got {annotator!r}")
    state.annotations += new
    new_domains = sorted({a.domain for a in new if a.label == MATH} - set(state.math_domains))
    state.math_domains += new_domains

    rec: dict[str, Any] = {
        "round": r, "n_pos_train": len(pos), "n_neg_train": len(neg), "pages_collected": int(collected.sum()),
        "candidate_domains": selected, "new_math_domains": new_domains, "math_domains": list(state.math_domains),
        "n_annotations": len(state.annotations), "seconds_train": round(t_train, 2), "seconds_score": round(t_score, 2),
        "pages_per_s_score": round(n / max(t_score, 1e-9), 1),
        "score_hist": np.histogram(scores, bins=20, range=(0, 1))[0].tolist(),
    }
    if token_counts is not None:
        rec["tokens_collected"] = int(np.asarray(token_counts)[collected].sum())
    if labels:
        truth = np.array([labels.get(p["url"], -1) for p in state.pages])
        known = truth >= 0
        tp = int(((truth == 1) & collected).sum())
        rec["precision"] = tp / max(1, int((collected & known).sum()))
        rec["recall"] = tp / max(1, int((truth == 1).sum()))
        rec["score_hist_math"] = np.histogram(scores[truth == 1], bins=20, range=(0, 1))[0].tolist()
        rec["score_hist_other"] = np.histogram(scores[truth == 0], bins=20, range=(0, 1))[0].tolist()
    state.rounds.append(rec)
    return rec


def _append_blank(path: str | Path, rows: list[Annotation]) -> None:
    path = Path(path)
    existing = []
    if path.exists():
        with open(path, encoding="utf-8", newline="") as fh:
            existing = [Annotation(*(row + ["", "", "", ""])[:4]) for row in csv.reader(fh, delimiter="\t")][1:]
    write_annotations(path, existing + rows)


# ----------------------------------------------------------------------------------------------------------------
# 7. End to end (the bench and tests call this; the notebook runs the same steps one by one)
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class CorpusConfig:
    """Parameters of the whole pipeline; paths are relative to ``data_dir`` unless absolute/URLs."""

    data_dir: str
    work_dir: str
    warc_folder: str = "web/minicc"
    warc_glob: str = "*.warc.gz"
    max_pages_per_task: int = -1
    extractor: str = "auto"
    seed_glob: str = "web/math_qa/*.jsonl"
    seed_hub_id: str = ""
    seed_limit: int = -1
    negatives_glob: str = "web/cc_wet_text/*.jsonl.gz"
    labels_path: str = "web/minicc/labels.tsv"
    n_rounds: int = 4
    keep_fraction: float = 0.35
    min_score: float = 0.5
    min_domain_fraction: float = 0.10
    annotator: str = "simulated"
    annotation_file: str = ""
    annotation_depth: int = 1
    use_annotated_negatives: bool = True
    max_train_per_class: int = 3000
    min_words: int = 20
    minhash_perm: int = 64
    minhash_bands: int = 8
    decont_n: int = 10
    decont_min: int = 3
    ft: FastTextParams = field(default_factory=FastTextParams)
    executor: str = "local"
    tasks: int = 4
    workers: int = 2
    seed: int = 0
    count_tokens: bool = True


def _glob(pattern: str, root: str) -> list[str]:
    full = resolve(pattern, root)
    base, pat = os.path.split(full)
    files = sorted(str(p) for p in Path(base).glob(pat))
    if not files:
        raise FileNotFoundError(f"no files match {full}")
    return files


def run_pipeline(cfg: CorpusConfig, progress: bool = False) -> dict[str, Any]:
    """Extraction -> dedup -> ``n_rounds`` rounds -> decontamination -> ``corpus.jsonl.gz``; returns the stats."""
    from .corpus_decont import DecontIndex, decontaminate, load_benchmark_items

    work = Path(cfg.work_dir)
    stats: dict[str, Any] = {"stage_seconds": {}, "pages_per_s_by_stage": {}}
    t_all = time.time()

    t0 = time.time()
    run_stage(extraction_pipeline(resolve(cfg.warc_folder, cfg.data_dir), str(work / "extracted"), cfg.warc_glob,
                                  cfg.max_pages_per_task, cfg.extractor), cfg.executor, cfg.tasks, cfg.workers,
              logging_dir=str(work / "logs_extract"))
    pages = load_pages(work / "extracted")
    _stage(stats, "extract", t0, len(pages))

    t0 = time.time()
    n_extracted = len(pages)
    pages = [p for p in pages if len(p["text"].split()) >= cfg.min_words]
    n_short = n_extracted - len(pages)
    pages, n_url = url_dedup(pages)
    pages, near = minhash_dedup(pages, num_perm=cfg.minhash_perm, bands=cfg.minhash_bands,
                                rows=cfg.minhash_perm // cfg.minhash_bands, seed=cfg.seed)
    write_pool(pages, work / "pool", shards=cfg.tasks)
    _stage(stats, "dedup", t0, n_extracted)
    stats.update(extractor=cfg.extractor if cfg.extractor != "auto" else default_extractor(),
                 pages_extracted=n_extracted, dropped_short=n_short, dropped_url_dup=n_url,
                 dropped_near_dup=len(near), pool_pages=len(pages))

    seed_pages = (load_hub_texts(cfg.seed_hub_id, cfg.seed_limit) if cfg.seed_hub_id
                  else load_math_qa_seed(_glob(cfg.seed_glob, cfg.data_dir)))
    negatives = load_text_records(_glob(cfg.negatives_glob, cfg.data_dir))
    labels = read_labels(resolve(cfg.labels_path, cfg.data_dir)) if cfg.labels_path else None

    t0 = time.time()
    tok_name, count = token_counter() if cfg.count_tokens else ("whitespace", lambda ts: [len(t.split()) for t in ts])
    token_counts, tok_info = token_counts_for([p["text"] for p in pages], count, seed=cfg.seed)
    _stage(stats, "tokens", t0, len(pages))
    stats["tokenizer"] = tok_name
    stats["token_counts"] = tok_info

    state = RoundState(pages, [s["text"] for s in seed_pages], [x["text"] for x in negatives])
    t0 = time.time()
    for r in range(1, cfg.n_rounds + 1):
        run_round(state, r, work, cfg.ft, keep_fraction=cfg.keep_fraction, min_score=cfg.min_score,
                  min_domain_fraction=cfg.min_domain_fraction, annotator=cfg.annotator, labels=labels,
                  annotation_file=resolve(cfg.annotation_file, cfg.work_dir) if cfg.annotation_file else None,
                  annotation_depth=cfg.annotation_depth, use_annotated_negatives=cfg.use_annotated_negatives,
                  max_train_per_class=cfg.max_train_per_class, token_counts=token_counts, executor=cfg.executor,
                  tasks=cfg.tasks, workers=cfg.workers, seed=cfg.seed)
    _stage(stats, "rounds", t0, len(pages) * cfg.n_rounds)
    stats["rounds"] = state.rounds
    t_score = sum(r["seconds_score"] for r in state.rounds)  # the datatrove part of the rounds, on its own
    stats["pages_per_s_by_stage"]["score"] = round(len(pages) * cfg.n_rounds / max(t_score, 1e-9), 1)

    t0 = time.time()
    final = [dict(p, round=int(state.first_round[i]), score=float(state.scores[i]), tokens=int(token_counts[i]))
             for i, p in enumerate(state.pages) if state.collected[i]]
    index = DecontIndex.build(load_benchmark_items(cfg.data_dir), n=cfg.decont_n, min_len=cfg.decont_min)
    kept, dropped = decontaminate(final, index, progress=progress)
    _stage(stats, "decontaminate", t0, len(final))
    stats["decontamination"] = {"checked": len(final), "dropped": len(dropped),
                                "by_benchmark": dict(Counter(d["benchmark"] for d in dropped)), "examples": dropped[:20]}

    t0 = time.time()
    out = write_corpus(work / "corpus.jsonl.gz", kept)
    _stage(stats, "write", t0, len(kept))
    stats.update(corpus_path=str(out), corpus_pages=len(kept), corpus_tokens=int(sum(p["tokens"] for p in kept)),
                 math_domains=state.math_domains, seconds=round(time.time() - t_all, 2))
    return stats


def _stage(stats: dict[str, Any], name: str, t0: float, n: int) -> None:
    dt = time.time() - t0
    stats["stage_seconds"][name] = round(dt, 2)
    stats["pages_per_s_by_stage"][name] = round(n / max(dt, 1e-9), 1)


def write_corpus(path: str | Path, pages: Iterable[dict[str, Any]]) -> Path:
    """The corpus file later notebooks pre-train on: jsonl.gz rows ``{url, text, round, score}``."""
    from .data import write_jsonl

    return write_jsonl(path, [{"url": p["url"], "text": p["text"], "round": int(p["round"]),
                               "score": round(float(p["score"]), 4)} for p in pages])


def config_dict(cfg: CorpusConfig) -> dict[str, Any]:
    return asdict(cfg)
