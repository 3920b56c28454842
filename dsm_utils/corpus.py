"""Math corpus collection (DeepSeekMath §2.1): WARC -> text -> dedup -> fastText rounds -> domains -> annotation.

Every pass over the pages is a datatrove pipeline stage under the executor chosen by a parameter
(``LocalPipelineExecutor``, ``RayPipelineExecutor`` or ``SlurmPipelineExecutor``): extraction (``WarcReader`` ->
:class:`MathToTex` -> extractor), the short-page filter, URL dedup (datatrove's exact dedup on the normalised URL),
datatrove's MinHash dedup (signatures -> buckets -> clusters -> filter), fastText scoring
(``FastTextClassifierFilter``), per-round statistics, the final selection, decontamination and writing. Each stage
writes small per-rank statistics files; the driver (this process) only samples training pages, trains the
classifier (in a fresh process: fastText leaks state), reads those statistics and decides the next round -- it
never holds a list of the pool. Only what datatrove lacks lives here: keeping math markup through HTML
extraction, the statistics steps, training the classifier, domain discovery, the URL-path annotation file and its
*simulated* annotator. The decontamination index is :mod:`dsm_utils.corpus_decont`.
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
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.utils.word_tokenizers import WordTokenizer
except ImportError:  # pragma: no cover
    PipelineStep = WordTokenizer = MinhashDedupSignature = object  # type: ignore[assignment,misc]

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


def make_executor(pipeline: list, executor: str = "local", tasks: int = 1, workers: int = 1,
                  logging_dir: str | None = None, slurm: dict | None = None, ray: dict | None = None,
                  depends=None):
    """A datatrove executor by name: ``local`` (default), ``ray`` (needs ``ray.init()`` first) or ``slurm``.

    ``slurm``/``ray`` hold extra keyword arguments (partition, time, cpus_per_task, ...); ``depends`` chains
    Slurm jobs (``--dependency=afterok``). ``skip_completed=False``: every notebook run recomputes (the run folder
    is the cache, not the executor). ``workers`` is capped at ``tasks``.
    """
    common = dict(pipeline=pipeline, tasks=tasks, workers=max(1, min(workers, tasks)), logging_dir=logging_dir,
                  skip_completed=False)
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor
        return LocalPipelineExecutor(**common)
    if executor == "ray":
        from datatrove.executor import RayPipelineExecutor
        return RayPipelineExecutor(**common, **(ray or {}))
    if executor == "slurm":
        import sys

        from datatrove.executor import SlurmPipelineExecutor
        kw = dict(slurm or {})
        kw.setdefault("time", "04:00:00")
        kw.setdefault("partition", "cpu")
        kw.setdefault("job_name", f"dsm_{Path(logging_dir).name}" if logging_dir else "dsm_corpus")
        if "venv_path" not in kw and "condaenv" not in kw and "env_command" not in kw:
            activate = Path(sys.prefix) / "bin" / "activate"
            if activate.exists():
                kw["venv_path"] = str(activate)
        if depends is not None:
            kw["depends"] = depends
        common["workers"] = -1 if workers < 1 else workers
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


class _LogTee:
    """stderr stand-in while a stage runs: every line to the full log file, WARNING and worse also to stderr.

    datatrove re-adds a ``sys.stderr`` sink at INFO level for every task it runs in this process
    (``add_task_logger``), so a logger level set beforehand does not hold; swapping ``sys.stderr`` does."""

    _LOUD = ("| WARNING", "| ERROR", "| CRITICAL", "Traceback")

    def __init__(self, logfile, stderr):
        self.logfile, self.stderr = logfile, stderr

    def write(self, s: str) -> int:
        self.logfile.write(s)
        if any(k in s for k in self._LOUD):
            self.stderr.write(s)
        return len(s)

    def flush(self) -> None:
        self.logfile.flush()
        self.stderr.flush()

    def isatty(self) -> bool:
        return False


def run_stage(pipeline: list, executor: str = "local", tasks: int = 1, workers: int = 1,
              logging_dir: str | None = None, quiet: bool = True, log_file: str | Path | None = None,
              wait: bool = True, **kw) -> float:
    """Run one datatrove pipeline to completion; returns wall seconds. Ray is started locally if not running.

    ``quiet``: datatrove's INFO lines (progress, per-task stats tables) go to ``log_file`` (default
    ``<logging_dir>/../datatrove.log``); only WARNING and worse lines of this process reach stderr. datatrove
    re-adds an INFO ``sys.stderr`` sink for every task it runs, in this process and in its worker processes, so
    a logger level set beforehand does not hold: while the stage runs, file descriptor 2 (which the local
    executor's worker processes inherit) points at the log file and ``sys.stderr`` at a filter. With Slurm the jobs
    are submitted and, when ``wait``, polled until every task has completed (datatrove's completion markers).
    """
    import contextlib
    import sys

    from datatrove.utils.logging import logger

    if executor == "ray" and not _ray_ready():
        start_local_ray(num_cpus=max(1, workers))
    t0 = time.time()
    ex = make_executor(pipeline, executor, tasks, workers, logging_dir, **kw)
    if log_file is None and logging_dir:
        log_file = Path(logging_dir).parent / "datatrove.log"
    if not quiet or not log_file:
        ex.run()
        return time.time() - t0
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log_file, "a", encoding="utf-8") as fh, os.fdopen(os.dup(saved), "w", buffering=1) as loud:
        logger.remove()
        logger.add(loud, level="WARNING")
        os.dup2(fh.fileno(), 2)
        try:
            with contextlib.redirect_stderr(_LogTee(fh, loud)):
                ex.run()
                if executor == "slurm" and wait:
                    while ex.get_incomplete_ranks(skip_completed=True):
                        time.sleep(30)
        finally:
            fh.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logger.remove()  # leave the logger where a notebook wants it: warnings only
            logger.add(sys.stderr, level="WARNING")
    return time.time() - t0


def rank_files(folder: str | Path, pattern: str = "*.jsonl*") -> list[Path]:
    """The per-rank output files of a datatrove stage, in rank order (``00000.jsonl``, ``00001.jsonl``, ...)."""
    return sorted(Path(folder).glob(pattern), key=lambda p: (len(p.name), p.name))


def iter_pages(folder: str | Path) -> Iterable[dict[str, Any]]:
    """Stream datatrove's ``{id, text, metadata: {url, title}}`` rows of a folder as ``{id, url, domain, title,
    text}`` (one page at a time: for inspection and tests; the pipeline itself never lists the pool)."""
    for f in rank_files(folder):
        for _, rec in iter_jsonl(f):
            md = rec.get("metadata") or {}
            url = md.get("url") or rec.get("url")
            if not url or "text" not in rec:
                raise DataError(f"{f}: record {rec.get('id')!r} lacks 'text' or 'metadata.url'")
            yield {"id": rec.get("id"), "url": url, "domain": domain_of(url), "title": md.get("title", ""),
                   "text": rec["text"]}


# ----------------------------------------------------------------------------------------------------------------
# 2. Filters and dedup as datatrove stages: short pages, URL duplicates (exact dedup on the normalised URL), then
#    near duplicates with datatrove's MinHash (signatures -> buckets -> clusters -> filter)
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


def doc_url_key(doc) -> str:
    """datatrove ``ExactDedupConfig.content_getter``: the normalised URL of a document (URL dedup)."""
    return url_key(doc.metadata.get("url", ""))


class MinWords(PipelineStep):
    """datatrove filter: drop pages with fewer than ``min_words`` whitespace-separated words."""

    name = "✂ min words"
    type = "🔻 - FILTER"

    def __init__(self, min_words: int = 20):
        super().__init__()
        self.min_words = min_words

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("total")
            if len(doc.text.split()) >= self.min_words:
                self.stat_update("forwarded")
                yield doc
            else:
                self.stat_update("dropped")


@dataclass
class DedupParams:
    """Near-duplicate MinHash: ``bands`` buckets of ``rows`` hashes over word ``shingle``-grams (datatrove's
    ``MinhashConfig``). 8 x 8 collides ~50 % at Jaccard 0.92, ~98 % at 0.97, ~3 % at 0.75."""

    bands: int = 8
    rows: int = 8
    shingle: int = 5
    seed: int = 1


class SplitWords(WordTokenizer):
    """Whitespace word tokenizer for the MinHash shingles (datatrove's English and "whitespace" tokenizers both need
    spaCy; shingles of ``simplify_text``-normalised text split on spaces are what near-dup detection needs)."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class HeadMinhashSignature(MinhashDedupSignature):
    """datatrove's ``MinhashDedupSignature`` with cheaper shingles: the first ``max_shingles`` word ``n``-grams of the
    ``simplify_text``-normalised page, each word hashed once with xxh64 and the n-grams combined by a rolling
    polynomial (vectorised). The stock step SHA-1-hashes every n-gram of the whole page in Python, which on the
    mini-CC's long documentation pages (up to 200 K characters) cost several times the extraction (measured: 108 s
    of CPU for 7.7 K pages). Near duplicates share their heads; the permutations, bands, buckets, clustering and
    filtering are datatrove's."""

    def __init__(self, *args, max_shingles: int = 5000, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_shingles = max_shingles

    def get_shingles(self, text: str) -> np.ndarray:
        import xxhash
        from datatrove.utils.text import simplify_text

        n = self.config.n_grams
        words = self.word_tokenizer.word_tokenize(
            simplify_text(text[: (self.max_shingles + n) * 16], self.config.norm_config))[: self.max_shingles + n - 1]
        if not words:
            return np.empty((0, 1), dtype=np.uint64)
        ids = np.fromiter(map(xxhash.xxh64_intdigest, words), dtype=np.uint64, count=len(words))
        k = min(n, len(ids))
        m = len(ids) - k + 1
        with np.errstate(over="ignore"):
            h = ids[:m].copy()
            for j in range(1, k):
                h = h * np.uint64(1_000_003) + ids[j: j + m]
        # below 2**61 - 1 like datatrove's own 64-bit shingles (its permutations work modulo that prime)
        return (h % np.uint64((1 << 61) - 1)).reshape((-1, 1))


def minhash_config(p: DedupParams):
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    return MinhashConfig(n_grams=p.shingle, num_buckets=p.bands, hashes_per_bucket=p.rows, seed=p.seed)


def extraction_pipeline(warc_folder: str, output_folder: str, glob_pattern: str = "*.warc.gz",
                        limit: int = -1, extractor: str = "auto", extractor_timeout: float = 5.0,
                        min_words: int = 0, url_sig_folder: str | None = None) -> list:
    """WARC files -> :class:`MathToTex` -> text extractor -> :class:`MinWords` -> ``JsonlWriter`` (one file per
    rank) -> (``url_sig_folder``) datatrove ``ExactDedupSignature`` of the normalised URL.

    ``glob_pattern`` matters: without it ``WarcReader`` also opens non-WARC files in the folder (``labels.tsv``).
    ``extractor``: ``resiliparse`` (our small datatrove extractor), ``trafilatura`` (datatrove's, run with
    ``no_fallback=True`` -- 2x faster -- and without its own dedup; ``favour_precision=False`` keeps short doc pages),
    or ``auto`` (:func:`default_extractor`).
    """
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupSignature
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
    steps = [
        WarcReader(warc_folder, glob_pattern=glob_pattern, limit=limit),
        MathToTex(),
        ex,
    ]
    if min_words:
        steps.append(MinWords(min_words))
    # uncompressed: gzip at datatrove's default level cost ~2 ms/page, as much as the extraction itself
    steps.append(JsonlWriter(output_folder, output_filename="${rank}.jsonl", compression=None))
    if url_sig_folder:
        steps.append(ExactDedupSignature(url_sig_folder, ExactDedupConfig(content_getter=doc_url_key)))
    return steps


def url_dedup_stages(extracted: str, sig_folder: str, dups_folder: str, output_folder: str,
                     minhash_sig_folder: str, dedup: DedupParams) -> tuple[list, list]:
    """(find, filter) pipelines: ``ExactFindDedups`` over the URL signatures (1 task), then ``JsonlReader`` ->
    ``ExactDedupFilter`` (first page per normalised URL kept) -> ``JsonlWriter`` -> ``MinhashDedupSignature``."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactFindDedups
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = ExactDedupConfig(content_getter=doc_url_key)
    find = [ExactFindDedups(sig_folder, dups_folder, config=cfg)]
    filt = [JsonlReader(extracted, glob_pattern="*.jsonl"),
            ExactDedupFilter(dups_folder, config=cfg),
            JsonlWriter(output_folder, output_filename="${rank}.jsonl", compression=None),
            HeadMinhashSignature(minhash_sig_folder, config=minhash_config(dedup), language=SplitWords())]
    return find, filt


def minhash_stages(sig_folder: str, buckets_folder: str, clusters_folder: str, dedup: DedupParams) -> tuple[list, list]:
    """(buckets, cluster) pipelines of datatrove's MinHash: ``MinhashDedupBuckets`` (one task per band),
    ``MinhashDedupCluster`` (1 task; keeps cluster ids so the notebook can show what was dropped next to what)."""
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster

    cfg = minhash_config(dedup)
    return ([MinhashDedupBuckets(sig_folder, buckets_folder, config=cfg)],
            [MinhashDedupCluster(buckets_folder, clusters_folder, config=cfg, save_cluster_id=True)])


def pool_pipeline(urldedup: str, clusters_folder: str, pool_folder: str, stats_folder: str, near_dup_folder: str,
                  labels_path: str = "", depth: int = 1, token_sample_pages: int = 60, seed: int = 0) -> list:
    """``JsonlReader`` -> ``MinhashDedupFilter`` (removed pages to ``near_dup_folder``) -> :class:`PoolStats` ->
    ``JsonlWriter`` of the pool (uncompressed: datatrove's gzip level 9 cost more than reading it back each round)."""
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    return [JsonlReader(urldedup, glob_pattern="*.jsonl"),
            MinhashDedupFilter(clusters_folder, load_cluster_ids=True,
                               exclusion_writer=JsonlWriter(near_dup_folder, output_filename="${rank}.jsonl",
                                                            compression=None)),
            PoolStats(stats_folder, labels_path, depth, token_sample_pages, seed),
            JsonlWriter(pool_folder, output_filename="${rank}.jsonl", compression=None)]


def _labels_cached(path: str) -> dict[str, int]:
    """The labels file, read once per process (workers of a stage share it)."""
    if path not in _LABELS_CACHE:
        _LABELS_CACHE[path] = read_labels(path)
    return _LABELS_CACHE[path]


_LABELS_CACHE: dict[str, dict[str, int]] = {}


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


class PoolStats(PipelineStep):
    """Per-rank statistics of the deduplicated pool, written to ``stats_folder/<rank>.json``: pages and characters
    per domain and URL-path prefix (with a few titles), labelled/math pages per prefix (simulated annotator,
    recall), near-duplicate cluster ids of kept pages, and a random sample of page texts (token ratio).
    Passes every document on."""

    name = "📊 pool stats"
    type = "📊 - STATS"

    def __init__(self, stats_folder: str, labels_path: str = "", depth: int = 1, sample_pages: int = 60,
                 seed: int = 0, n_titles: int = 3):
        super().__init__()
        self.stats_folder, self.labels_path, self.depth = stats_folder, labels_path, depth
        self.sample_pages, self.seed, self.n_titles = sample_pages, seed, n_titles

    def run(self, data, rank: int = 0, world_size: int = 1):
        labels = _labels_cached(self.labels_path) if self.labels_path else {}
        rng = random.Random(self.seed * 1_000_003 + rank)
        prefixes: dict[str, dict[str, Any]] = {}
        sample: list[str] = []
        clusters: dict[str, str] = {}
        n = chars = n_math = n_known = 0
        for doc in data:
            url = doc.metadata.get("url", "")
            dom = domain_of(url)
            key = f"{dom}\t{path_prefix(url, self.depth)}"
            s = prefixes.setdefault(key, {"n_pages": 0, "n_labelled": 0, "n_math": 0, "titles": []})
            s["n_pages"] += 1
            if url in labels:
                s["n_labelled"] += 1
                s["n_math"] += labels[url]
                n_known += 1
                n_math += labels[url]
            title = doc.metadata.get("title", "")
            if title and len(s["titles"]) < self.n_titles:
                s["titles"].append(title[:60])
            cid = doc.metadata.get("minhash_cluster_id", -1)
            if cid is not None and cid != -1:
                clusters[str(cid)] = url
            n += 1
            chars += len(doc.text)
            if len(sample) < self.sample_pages:  # reservoir sample of page heads (token ratio)
                sample.append(doc.text[:4000])
            else:
                j = rng.randrange(n)
                if j < self.sample_pages:
                    sample[j] = doc.text[:4000]
            self.stat_update("pages")
            yield doc
        _write_json_atomic(Path(self.stats_folder) / f"{rank:05d}.json",
                           {"n_pages": n, "chars": chars, "n_labelled": n_known, "n_math": n_math,
                            "prefixes": prefixes, "kept_of_cluster": clusters, "sample": sample})


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
    """JsonlWriter adapter: id, url, P(math) and the page length (the texts stay in the pool folder)."""
    return {"id": document.id, "url": document.metadata.get("url"),
            "score": float(document.metadata.get(f"__label__{MATH}", 0.0)),
            "chars": int(document.metadata.get("chars", 0))}


class FastTextNormalize(PipelineStep):
    """datatrove step before ``FastTextClassifierFilter``: the text as the classifier was trained on it
    (:func:`ft_line`: lower-cased, one line, truncated); the page length goes to ``metadata["chars"]``.
    Only the scores are written, so the pool is unchanged."""

    name = "🔡 fastText normalise"
    type = "🔻 - FILTER"

    def __init__(self, max_chars: int | None = None):
        super().__init__()
        self.max_chars = max_chars

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            with self.track_time():
                doc.metadata["chars"] = len(doc.text)
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


#: Score histogram resolution for the top-fraction threshold (pages within one bin are kept or dropped together).
SCORE_BINS = 100_000


class ScoreHistogram(PipelineStep):
    """Per-rank histogram of P(math) (``SCORE_BINS`` bins, stored sparse) to ``folder/<rank>.json``: the driver
    merges them into the score of the top ``keep_fraction`` without reading any per-page score."""

    name = "📊 score histogram"
    type = "📊 - STATS"

    def __init__(self, folder: str, bins: int = SCORE_BINS):
        super().__init__()
        self.folder, self.bins = folder, bins

    def run(self, data, rank: int = 0, world_size: int = 1):
        counts: Counter = Counter()
        for doc in data:
            s = float(doc.metadata.get(f"__label__{MATH}", 0.0))
            counts[min(self.bins - 1, max(0, int(s * self.bins)))] += 1
            yield doc
        _write_json_atomic(Path(self.folder) / f"{rank:05d}.json",
                           {"bins": self.bins, "counts": {str(k): v for k, v in counts.items()}})


def scoring_pipeline(pool_folder: str, model_path: str, output_folder: str, max_chars: int | None = None,
                     hist_folder: str | None = None) -> list:
    """datatrove: ``JsonlReader`` (pool) -> :class:`FastTextNormalize` -> ``FastTextClassifierFilter`` (annotates,
    keeps all) -> :class:`ScoreHistogram` -> scores jsonl (``id, url, score, chars``)."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    FastTextClassifierFilter = _fasttext_filter_class()
    steps = [
        JsonlReader(pool_folder, glob_pattern="*.jsonl"),
        FastTextNormalize(max_chars),
        # remove_labels with an unreachable threshold = "annotate only": datatrove 0.10.1 crashes in its label
        # check when neither keep_labels nor remove_labels is given (`a or [] + None` precedence bug)
        FastTextClassifierFilter(str(model_path), remove_labels=[(MATH, 2.0)], save_labels_in_metadata=True,
                                 newline_replacement=" "),
    ]
    if hist_folder:
        steps.append(ScoreHistogram(hist_folder))
    steps.append(JsonlWriter(output_folder, output_filename="${rank}.jsonl", adapter=_score_adapter,
                             compression=None))
    return steps


# ----------------------------------------------------------------------------------------------------------------
# 4. Domain discovery and URL-path annotation (from per-rank statistics, never from a list of pages)
# ----------------------------------------------------------------------------------------------------------------
def discover_domains(n_pages: dict[str, int], n_collected: dict[str, int], min_fraction: float = 0.10):
    """Per domain: pages in the pool, pages collected, fraction; ``selected`` = fraction > ``min_fraction``."""
    import pandas as pd

    g = pd.DataFrame({"domain": list(n_pages), "n_pages": [int(n_pages[d]) for d in n_pages],
                      "n_collected": [int(n_collected.get(d, 0)) for d in n_pages]},
                     columns=["domain", "n_pages", "n_collected"])
    g["fraction"] = g["n_collected"] / g["n_pages"].clip(lower=1)
    g["selected"] = g["fraction"] > min_fraction
    return g.sort_values(["selected", "fraction", "domain"], ascending=[False, False, True]).reset_index(drop=True)


def path_prefix(url: str, depth: int = 1) -> str:
    """The first ``depth`` directories of the URL path, e.g. ``/questions/`` (depth 1) of mathoverflow.net."""
    parts = [p for p in urlsplit(url).path.split("/")[:-1] if p]  # directories only, not the file name
    return "/" + "".join(f"{p}/" for p in parts[:depth])


def candidate_prefixes(prefixes: dict[tuple[str, str], dict[str, Any]], domain: str,
                       collected: dict[tuple[str, str], int] | None = None):
    """Interactive helper: path prefixes of ``domain`` with page counts, collected counts and sample titles,
    from the pool statistics (``prefixes``: ``(domain, prefix) -> {n_pages, titles}``) and a round's
    collected counts per prefix."""
    import pandas as pd

    rows = [{"domain": d, "path_prefix": pfx, "n_pages": s["n_pages"],
             "n_collected": int((collected or {}).get((d, pfx), 0)),
             "sample_titles": " | ".join(s.get("titles", []))}
            for (d, pfx), s in prefixes.items() if d == domain]
    df = pd.DataFrame(rows, columns=["domain", "path_prefix", "n_pages", "n_collected", "sample_titles"])
    return df.sort_values(["n_pages", "path_prefix"], ascending=[False, True]).reset_index(drop=True)


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


def simulated_annotator(candidates, votes: dict[tuple[str, str], tuple[int, int]]) -> list[Annotation]:
    """SIMULATED stand-in for the paper's manual URL annotation, driven by the ground-truth labels file.

    ``votes``: ``(domain, path_prefix) -> (labelled pages, math pages)`` under that prefix (the pool statistics).
    Each candidate prefix is labelled ``math`` when most labelled pages under it are math, else ``not_math``.
    A person does the same by reading the titles that :func:`candidate_prefixes` shows.
    """
    out = []
    for domain, prefix in candidates:
        n, n_math = votes.get((domain, prefix), (0, 0))
        if not n:
            continue  # nothing to read under that prefix: a person would skip it too
        out.append(Annotation(domain, prefix, MATH if n_math / n >= 0.5 else NOT_MATH,
                              f"simulated from labels: {n_math}/{n} math"))
    return out


def annotations_by_domain(annotations: Iterable[Annotation]) -> dict[str, list[Annotation]]:
    """Annotations per domain, longest prefix first (the one that decides)."""
    by_domain: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by_domain[a.domain].append(a)
    for v in by_domain.values():
        v.sort(key=lambda a: -len(a.path_prefix))
    return by_domain


def annotation_label(url: str, by_domain: dict[str, list[Annotation]]) -> str | None:
    """Label of one page from the annotations (longest matching prefix of its domain wins), else None."""
    path = urlsplit(url).path or "/"
    return next((a.label for a in by_domain.get(domain_of(url), []) if path.startswith(a.path_prefix)), None)


def annotation_labels(pages: Sequence[dict[str, Any]], annotations: Iterable[Annotation]) -> list[str | None]:
    """:func:`annotation_label` of each page of a (small) list."""
    by_domain = annotations_by_domain(annotations)
    return [annotation_label(p["url"], by_domain) for p in pages]


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


def tokens_per_char(sample: Sequence[str], count) -> float:
    """Tokens per character of a random sample of page heads (the pool statistics' sample).

    The toy BPE tokenizer runs at ~0.3 M tokens/s here: exact counts of the whole mini-CC pool (~20 M tokens)
    would take over a minute, more than all the rounds together, and at CC scale counting is a job of its own.
    Each page's tokens are estimated as its length times this ratio."""
    sample = [s for s in sample if s]
    if not sample:
        return 0.0
    return sum(count(list(sample))) / max(1, sum(len(s) for s in sample))


# ----------------------------------------------------------------------------------------------------------------
# 6. Rounds: every pass over the pool is a datatrove stage; the driver keeps statistics only
# ----------------------------------------------------------------------------------------------------------------
def score_bin(score: float, bins: int = SCORE_BINS) -> int:
    return min(bins - 1, max(0, int(score * bins)))


def is_collected(score: float, t_bin: int, min_score: float) -> bool:
    """The keep rule of a round: in the top-fraction bins and at least ``min_score``."""
    return score_bin(score) >= t_bin and score >= min_score


def threshold_bin(hist_folder: str | Path, keep_fraction: float) -> tuple[int, int]:
    """``(bin, n_pool)``: the lowest score bin such that the pages in it and above are the top ``keep_fraction`` of
    the pool (all pages of that bin are kept: at least ``keep_fraction``, ties included), from the per-rank
    histograms of :class:`ScoreHistogram`."""
    total: Counter = Counter()
    for f in rank_files(hist_folder, "*.json"):
        total.update({int(k): v for k, v in json.loads(f.read_text())["counts"].items()})
    n = sum(total.values())
    k = int(round(keep_fraction * n))
    if k <= 0:
        return SCORE_BINS, n  # nothing kept
    seen = 0
    for b in sorted(total, reverse=True):
        seen += total[b]
        if seen >= k:
            return b, n
    return 0, n


def _load_scores(folder: str | Path, rank: int) -> dict[str, float]:
    """Scores of one rank's shard (``id -> P(math)``): the per-worker state of the round and final stages."""
    f = Path(folder) / f"{rank:05d}.jsonl"
    return {rec["id"]: rec["score"] for _, rec in iter_jsonl(f)} if f.exists() else {}


class AnnotatedSample(PipelineStep):
    """Reservoir sample (per rank, per label) of pool pages under annotated URL prefixes -> ``folder/<rank>.jsonl``
    rows ``{label, text}``: the in-distribution positives/negatives of the next classifier."""

    name = "🎲 annotated sample"
    type = "📊 - STATS"

    def __init__(self, folder: str, annotations: list[tuple[str, str, str]], n_per_label: int, max_chars: int,
                 seed: int = 0):
        super().__init__()
        self.folder, self.annotations, self.n, self.max_chars, self.seed = folder, annotations, n_per_label, \
            max_chars, seed

    def run(self, data, rank: int = 0, world_size: int = 1):
        by_domain = annotations_by_domain(Annotation(*a) for a in self.annotations)
        rng = random.Random(self.seed * 1_000_003 + rank)
        res: dict[str, list[str]] = {MATH: [], NOT_MATH: []}
        seen: Counter = Counter()
        for doc in data:
            label = annotation_label(doc.metadata.get("url", ""), by_domain)
            if label is None:
                continue
            seen[label] += 1
            text = doc.text[: self.max_chars] if self.max_chars else doc.text
            if len(res[label]) < self.n:
                res[label].append(text)
            else:
                j = rng.randrange(seen[label])
                if j < self.n:
                    res[label][j] = text
        out = Path(self.folder) / f"{rank:05d}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for label, texts in res.items():
                for t in texts:
                    fh.write(json.dumps({"label": label, "text": t, "of": seen[label]}, ensure_ascii=False) + "\n")
        return
        yield  # a generator that consumes the pages


class RoundStats(PipelineStep):
    """Statistics of one round from its scores (``JsonlReader`` of the scores, text = URL) -> ``folder/<rank>.json``:
    pages collected (overall, new this round, ever so far), per domain and URL prefix, tokens, ground-truth hits,
    score histograms. Earlier rounds' scores of the same shard decide what is new."""

    name = "📊 round stats"
    type = "📊 - STATS"

    def __init__(self, folder: str, t_bin: int, min_score: float, previous: list[tuple[str, int, float]],
                 labels_path: str = "", depth: int = 1, tokens_per_char: float = 0.0):
        super().__init__()
        self.folder, self.t_bin, self.min_score, self.previous = folder, t_bin, min_score, previous
        self.labels_path, self.depth, self.tpc = labels_path, depth, tokens_per_char

    def run(self, data, rank: int = 0, world_size: int = 1):
        labels = _labels_cached(self.labels_path) if self.labels_path else {}
        before = [(_load_scores(f, rank), t, m) for f, t, m in self.previous]
        dom: Counter = Counter()
        pfx: Counter = Counter()
        st = Counter()
        hist = np.zeros(20, dtype=np.int64)
        hist_math = np.zeros(20, dtype=np.int64)
        hist_other = np.zeros(20, dtype=np.int64)
        for doc in data:
            url, s = doc.text, float(doc.metadata["score"])
            hb = min(19, max(0, int(s * 20)))
            hist[hb] += 1
            truth = labels.get(url, -1)
            if truth == 1:
                hist_math[hb] += 1
            elif truth == 0:
                hist_other[hb] += 1
            st["n_pages"] += 1
            got = is_collected(s, self.t_bin, self.min_score)
            ever = any(is_collected(sc[doc.id], t, m) for sc, t, m in before if doc.id in sc)
            if got or ever:
                st["cumulative"] += 1
            if not got:
                continue
            st["collected"] += 1
            st["new"] += int(not ever)
            st["tokens"] += int(round(int(doc.metadata.get("chars", 0)) * self.tpc))
            d = domain_of(url)
            dom[d] += 1
            pfx[f"{d}\t{path_prefix(url, self.depth)}"] += 1
            if truth >= 0:
                st["collected_known"] += 1
                st["tp"] += int(truth == 1)
        _write_json_atomic(Path(self.folder) / f"{rank:05d}.json",
                           {**{k: int(v) for k, v in st.items()}, "domains": dict(dom), "prefixes": dict(pfx),
                            "hist": hist.tolist(), "hist_math": hist_math.tolist(),
                            "hist_other": hist_other.tolist()})
        return
        yield


@dataclass
class PoolSummary:
    """The pool statistics merged over ranks (sizes: domains and URL prefixes, not pages)."""

    n_pages: int = 0
    chars: int = 0
    n_labelled: int = 0
    n_math: int = 0
    prefixes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)
    kept_of_cluster: dict[str, str] = field(default_factory=dict)
    sample: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, folder: str | Path) -> "PoolSummary":
        out = cls()
        for f in rank_files(folder, "*.json"):
            s = json.loads(f.read_text())
            out.n_pages += s["n_pages"]
            out.chars += s["chars"]
            out.n_labelled += s["n_labelled"]
            out.n_math += s["n_math"]
            out.kept_of_cluster.update(s["kept_of_cluster"])
            out.sample += s["sample"]
            for key, v in s["prefixes"].items():
                d, p = key.split("\t")
                cur = out.prefixes.setdefault((d, p), {"n_pages": 0, "n_labelled": 0, "n_math": 0, "titles": []})
                for k in ("n_pages", "n_labelled", "n_math"):
                    cur[k] += v[k]
                cur["titles"] = (cur["titles"] + v["titles"])[:3]
                out.domains[d] = out.domains.get(d, 0) + v["n_pages"]
        return out

    def votes(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {k: (v["n_labelled"], v["n_math"]) for k, v in self.prefixes.items()}


def read_round_stats(folder: str | Path) -> dict[str, Any]:
    """Merge the per-rank files of :class:`RoundStats`."""
    out: dict[str, Any] = {"domains": Counter(), "prefixes": Counter(), "hist": np.zeros(20, dtype=np.int64),
                           "hist_math": np.zeros(20, dtype=np.int64), "hist_other": np.zeros(20, dtype=np.int64)}
    for k in ("n_pages", "collected", "new", "cumulative", "tokens", "collected_known", "tp"):
        out[k] = 0
    for f in rank_files(folder, "*.json"):
        s = json.loads(f.read_text())
        for k in ("n_pages", "collected", "new", "cumulative", "tokens", "collected_known", "tp"):
            out[k] += s.get(k, 0)
        out["domains"].update(s["domains"])
        out["prefixes"].update({tuple(k.split("\t")): v for k, v in s["prefixes"].items()})
        for h in ("hist", "hist_math", "hist_other"):
            out[h] += np.array(s[h])
    return out


@dataclass
class RoundState:
    """What carries over between rounds: training texts, annotations, thresholds, per-round records. No pages."""

    seed_texts: list[str]
    negative_texts: list[str]
    pool: PoolSummary
    tokens_per_char: float = 0.0
    annotations: list[Annotation] = field(default_factory=list)
    math_domains: list[str] = field(default_factory=list)  # domains annotated with a math prefix, in order found
    rounds: list[dict[str, Any]] = field(default_factory=list)
    keep_rules: list[tuple[str, int, float]] = field(default_factory=list)  # (scores folder, bin, min score)
    last_collected: dict[tuple[str, str], int] = field(default_factory=dict)  # per prefix, last round


def _fill(first: Sequence[str], rest: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Up to ``n`` examples: annotated pool pages ``first`` (in-distribution, the informative ones) take up to
    three quarters of the budget, the seed/random-CC texts ``rest`` fill the remainder (at least a quarter)."""
    a = rng.sample(list(first), min(len(first), (3 * n) // 4))
    b = rng.sample(list(rest), min(len(rest), n - len(a)))
    return a + b


def _read_samples(folder: str | Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {MATH: [], NOT_MATH: []}
    for f in rank_files(folder, "*.jsonl"):
        for _, rec in iter_jsonl(f):
            out[rec["label"]].append(rec["text"])
    return out


def run_round(state: RoundState, r: int, work_dir: str | Path, ft: FastTextParams, *, keep_fraction: float,
              min_score: float = 0.5, min_domain_fraction: float = 0.10, annotator: str = "simulated",
              labels_path: str = "", annotation_file: str | Path | None = None, annotation_depth: int = 1,
              use_annotated_negatives: bool = True, max_train_per_class: int = 3000,
              executor: str = "local", tasks: int = 1, workers: int = 1, light_workers: int = 1, seed: int = 0,
              executor_kwargs: dict | None = None) -> dict[str, Any]:
    """One iteration of §2.1: sample -> train -> score the pool -> keep top -> domains -> annotate -> grow seed.

    Every pass over the pool is a datatrove stage on ``executor`` with ``tasks`` tasks, one per pool shard
    (``light_workers`` run the cheap statistics stages, ``workers`` the scoring). The driver only reads the
    per-rank sample and statistics files.

    Training data: positives are the seed plus pages under a URL prefix annotated ``math`` (collected or not: the
    paper's "uncollected pages are added to the seed"); negatives are random CC pages plus, when
    ``use_annotated_negatives``, pages under a prefix annotated ``not_math`` -- the hard negatives that random CC
    lacks (documentation sites that look like the math ones). Kept ("collected") pages are the ``keep_fraction``
    top-ranked pages (by score bin) whose P(math) is also at least ``min_score``. The threshold is not applied
    while no annotation exists (round 1): the seed-vs-random-CC classifier is calibrated on another distribution
    than the pool (on the mini-CC it gives P(math) >= 0.5 to 3 of 4,917 pages), so round 1 is rank-only as in the
    paper; from the first annotations on, the classifier has trained on pool pages and its scores mean what
    they say.
    """
    work = Path(work_dir)
    rd = work / f"round{r}"
    rng = random.Random(seed + r)
    ex = dict(executor=executor, tasks=tasks, log_file=str(work / "logs" / "datatrove.log"), **(executor_kwargs or {}))
    light = dict(ex, workers=light_workers if executor == "local" else workers)
    heavy = dict(ex, workers=workers)

    t0 = time.time()
    ann_pos: list[str] = []
    ann_neg: list[str] = []
    if state.annotations:
        from datatrove.pipeline.readers import JsonlReader

        n_per_label = max(1, -(-max_train_per_class // max(1, tasks)))  # ceil: enough for the 3/4 share
        run_stage([JsonlReader(str(work / "pool"), glob_pattern="*.jsonl"),
                   AnnotatedSample(str(rd / "sample"), [(a.domain, a.path_prefix, a.label) for a in state.annotations],
                                   n_per_label, ft.max_chars, seed + r)],
                  logging_dir=str(rd / "logs_sample"), **light)
        samples = _read_samples(rd / "sample")
        ann_pos = samples[MATH]
        ann_neg = samples[NOT_MATH] if use_annotated_negatives else []
    pos = _fill(ann_pos, state.seed_texts, max_train_per_class, rng)
    neg = _fill(ann_neg, state.negative_texts, max_train_per_class, rng)
    model_path = rd / "classifier.bin"
    train_classifier(pos, neg, model_path, ft, seed=seed)
    t_train = time.time() - t0

    t0 = time.time()
    run_stage(scoring_pipeline(str(work / "pool"), str(model_path), str(rd / "scores"), ft.max_chars,
                               hist_folder=str(rd / "hist")), logging_dir=str(rd / "logs_score"), **heavy)
    t_bin, n = threshold_bin(rd / "hist", keep_fraction)
    if n != state.pool.n_pages:
        raise RuntimeError(f"{rd / 'hist'}: {n} pages scored, the pool has {state.pool.n_pages}")
    min_s = min_score if state.annotations else float("-inf")  # see the docstring
    t_score = time.time() - t0

    from datatrove.pipeline.readers import JsonlReader
    run_stage([JsonlReader(str(rd / "scores"), glob_pattern="*.jsonl", text_key="url"),
               RoundStats(str(rd / "stats"), t_bin, min_s, list(state.keep_rules), labels_path,
                          annotation_depth, state.tokens_per_char)],
              logging_dir=str(rd / "logs_stats"), **light)
    rs = read_round_stats(rd / "stats")
    state.keep_rules.append((str(rd / "scores"), t_bin, min_s))
    state.last_collected = dict(rs["prefixes"])

    doms = discover_domains(state.pool.domains, rs["domains"], min_domain_fraction)
    selected = doms.loc[doms["selected"], "domain"].tolist()
    cands = [(d, pfx) for d in selected
             for pfx in candidate_prefixes(state.pool.prefixes, d, rs["prefixes"])["path_prefix"]]
    done = {(a.domain, a.path_prefix) for a in state.annotations}
    todo = [c for c in cands if c not in done]
    if annotator == "simulated":
        if not labels_path:
            raise ValueError("annotator='simulated' needs the labels file (labels_path)")
        new = simulated_annotator(todo, state.pool.votes())
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
        "round": r, "n_pos_train": len(pos), "n_neg_train": len(neg), "pages_collected": rs["collected"],
        "new_pages": rs["new"], "cumulative_pages": rs["cumulative"], "tokens_collected": rs["tokens"],
        "threshold": round(t_bin / SCORE_BINS, 5), "candidate_domains": selected, "new_math_domains": new_domains,
        "math_domains": list(state.math_domains), "n_annotations": len(state.annotations),
        "seconds_train": round(t_train, 2), "seconds_score": round(t_score, 2),
        "pages_per_s_score": round(n / max(t_score, 1e-9), 1), "score_hist": rs["hist"].tolist(),
    }
    if labels_path:
        rec["precision"] = rs["tp"] / max(1, rs["collected_known"])
        rec["recall"] = rs["tp"] / max(1, state.pool.n_math)
        rec["score_hist_math"] = rs["hist_math"].tolist()
        rec["score_hist_other"] = rs["hist_other"].tolist()
    state.rounds.append(rec)
    return rec


def _append_blank(path: str | Path, rows: list[Annotation]) -> None:
    path = Path(path)
    existing = []
    if path.exists():
        with open(path, encoding="utf-8", newline="") as fh:
            existing = [Annotation(*(row + ["", "", "", ""])[:4]) for row in csv.reader(fh, delimiter="\t")][1:]
    write_annotations(path, existing + rows)


class FinalSelect(PipelineStep):
    """The corpus pages: collected in the last round; ``metadata`` gets the first round that collected the page,
    its last score and its estimated tokens. Reads the shard's scores of every round (per worker)."""

    name = "🎯 final select"
    type = "🔻 - FILTER"

    def __init__(self, keep_rules: list[tuple[str, int, float]], tokens_per_char: float):
        super().__init__()
        self.keep_rules, self.tpc = keep_rules, tokens_per_char

    def run(self, data, rank: int = 0, world_size: int = 1):
        scores = [(_load_scores(f, rank), t, m) for f, t, m in self.keep_rules]
        for doc in data:
            got = [is_collected(sc[doc.id], t, m) if doc.id in sc else False for sc, t, m in scores]
            self.stat_update("total")
            if not got or not got[-1]:
                self.stat_update("dropped")
                continue
            doc.metadata["round"] = got.index(True) + 1
            doc.metadata["score"] = float(scores[-1][0][doc.id])
            doc.metadata["tokens"] = int(round(len(doc.text) * self.tpc))
            self.stat_update("forwarded")
            yield doc


_DECONT_CACHE: dict[tuple[str, int, int], Any] = {}


class Decontaminate(PipelineStep):
    """§2.1 decontamination as a datatrove filter (:mod:`dsm_utils.corpus_decont`'s index, built once per worker
    process): drops pages holding a benchmark 10-gram (or a whole 3-9-token benchmark text); the dropped rows and
    the kept pages/tokens per round go to ``folder/<rank>.json``."""

    name = "🧼 decontaminate"
    type = "🔻 - FILTER"

    def __init__(self, folder: str, data_dir: str, n: int = 10, min_len: int = 3, batch: int = 2048):
        super().__init__()
        self.folder, self.data_dir, self.n, self.min_len, self.batch = folder, data_dir, n, min_len, batch

    def _index(self):
        from .corpus_decont import DecontIndex, load_benchmark_items

        key = (self.data_dir, self.n, self.min_len)
        if key not in _DECONT_CACHE:
            _DECONT_CACHE[key] = DecontIndex.build(load_benchmark_items(self.data_dir), n=self.n, min_len=self.min_len)
        return _DECONT_CACHE[key]

    def run(self, data, rank: int = 0, world_size: int = 1):
        index = self._index()
        dropped: list[dict[str, Any]] = []
        by_round: dict[str, list[int]] = {}
        checked = 0

        def flush(buf):
            nonlocal checked
            checked += len(buf)
            flags = index.flag([d.text for d in buf])
            for d, f in zip(buf, flags):
                m = index.match(d.text) if f else None
                if m is not None:
                    hit, gram = m
                    dropped.append({"url": d.metadata.get("url"), "benchmark": hit.benchmark, "item": hit.item,
                                    "field": hit.field, "matched": gram, "benchmark_text": hit.text[:200]})
                    self.stat_update("dropped")
                    continue
                r = by_round.setdefault(str(d.metadata.get("round", 0)), [0, 0])
                r[0] += 1
                r[1] += int(d.metadata.get("tokens", 0))
                self.stat_update("forwarded")
                yield d

        buf = []
        for doc in data:
            buf.append(doc)
            if len(buf) >= self.batch:
                yield from flush(buf)
                buf = []
        if buf:
            yield from flush(buf)
        _write_json_atomic(Path(self.folder) / f"{rank:05d}.json",
                           {"checked": checked, "dropped": dropped, "kept_by_round": by_round,
                            "index_sizes": index.sizes()})


def _corpus_adapter(self, document) -> dict:
    md = document.metadata
    return {"url": md.get("url"), "text": document.text, "round": int(md.get("round", 0)),
            "score": round(float(md.get("score", 0.0)), 4)}


def final_pipeline(pool_folder: str, keep_rules: list[tuple[str, int, float]], tokens_per_char: float,
                   decont_folder: str, data_dir: str, corpus_folder: str, decont_n: int = 10,
                   decont_min: int = 3) -> list:
    """``JsonlReader`` (pool) -> :class:`FinalSelect` -> :class:`Decontaminate` -> ``JsonlWriter`` (corpus shards,
    ``{url, text, round, score}``, gzip)."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    return [JsonlReader(pool_folder, glob_pattern="*.jsonl"),
            FinalSelect(keep_rules, tokens_per_char),
            Decontaminate(decont_folder, data_dir, decont_n, decont_min),
            JsonlWriter(corpus_folder, output_filename="${rank}.jsonl.gz", adapter=_corpus_adapter)]


def concat_corpus(shards_folder: str | Path, path: str | Path) -> Path:
    """One ``corpus.jsonl.gz`` from the gzip shards, byte by byte (concatenated gzip members are one valid gzip
    file), so the driver never holds the corpus."""
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        for f in rank_files(shards_folder, "*.jsonl.gz"):
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out)
    os.replace(tmp, path)
    return path


def read_decont_stats(folder: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = {"checked": 0, "dropped": [], "kept_by_round": {}, "index_sizes": {}}
    for f in rank_files(folder, "*.json"):
        s = json.loads(f.read_text())
        out["checked"] += s["checked"]
        out["dropped"] += s["dropped"]
        out["index_sizes"] = s["index_sizes"]
        for r, (p, t) in s["kept_by_round"].items():
            cur = out["kept_by_round"].setdefault(int(r), [0, 0])
            cur[0] += p
            cur[1] += t
    out["kept_by_round"] = dict(sorted(out["kept_by_round"].items()))
    return out


def _stage_stat(logging_dir: str | Path, step: str, key: str) -> int:
    """A counter of one step from datatrove's merged ``stats.json`` of a stage (0 when absent)."""
    f = Path(logging_dir) / "stats.json"
    if not f.exists():
        return 0
    for s in json.loads(f.read_text()):
        if step.lower() in s.get("name", "").lower():
            v = s.get("stats", {}).get(key, 0)
            return int(v["total"] if isinstance(v, dict) else v)
    return 0


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
    negatives_hub_id: str = ""
    negatives_limit: int = -1
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
    dedup: DedupParams = field(default_factory=DedupParams)
    decont_n: int = 10
    decont_min: int = 3
    ft: FastTextParams = field(default_factory=FastTextParams)
    executor: str = "local"
    tasks: int = 4
    workers: int = 2
    light_workers: int = 1  # local executor: the cheap statistics stages run in this process, one task after another
    executor_kwargs: dict = field(default_factory=dict)  # {"slurm": {...}} or {"ray": {...}}
    seed: int = 0
    count_tokens: bool = True
    token_sample_pages: int = 60  # pages per task whose tokens are counted (token-per-character ratio)


def _glob(pattern: str, root: str) -> list[str]:
    full = resolve(pattern, root)
    base, pat = os.path.split(full)
    files = sorted(str(p) for p in Path(base).glob(pat))
    if not files:
        raise FileNotFoundError(f"no files match {full}")
    return files


def _n_input_files(folder: str, glob_pattern: str) -> int | None:
    """Number of input files of a local folder (None for remote ones: not listed by the driver)."""
    if "://" in folder:
        return None
    return len(list(Path(folder).glob(glob_pattern)))


def build_pool(cfg: CorpusConfig) -> dict[str, Any]:
    """Extraction -> short pages out -> URL dedup -> MinHash dedup -> pool, all datatrove stages; returns the
    counts (pages extracted, dropped at each step, pool size) and the stage seconds. The pool lands in
    ``work/pool/<rank>.jsonl`` (one shard per task), its statistics in ``work/pool_stats``."""
    work = Path(cfg.work_dir)
    ex = dict(executor=cfg.executor, **cfg.executor_kwargs)
    warc = resolve(cfg.warc_folder, cfg.data_dir)
    n_files = _n_input_files(warc, cfg.warc_glob)
    if n_files == 0:
        raise FileNotFoundError(f"no files match {warc}/{cfg.warc_glob}")
    # every task needs at least one WARC file: each stage after extraction reads shard <rank> of the one before
    tasks = min(cfg.tasks, n_files) if n_files else cfg.tasks
    light = cfg.light_workers if cfg.executor == "local" else cfg.workers
    ex["log_file"] = str(work / "logs" / "datatrove.log")
    seconds: dict[str, float] = {}

    seconds["extract"] = run_stage(
        extraction_pipeline(warc, str(work / "extracted"), cfg.warc_glob, cfg.max_pages_per_task, cfg.extractor,
                            min_words=cfg.min_words, url_sig_folder=str(work / "dedup/url_sigs")),
        tasks=tasks, workers=cfg.workers, logging_dir=str(work / "logs/extract"), **ex)
    shards = len(rank_files(work / "extracted", "*.jsonl"))
    if shards != tasks:
        raise RuntimeError(f"{work / 'extracted'}: {shards} shards from {tasks} extraction tasks (a task found no "
                           f"page: lower `tasks` or check {warc})")
    t0 = time.time()
    find, filt = url_dedup_stages(str(work / "extracted"), str(work / "dedup/url_sigs"), str(work / "dedup/url_dups"),
                                  str(work / "urldedup"), str(work / "dedup/minhash_sigs"), cfg.dedup)
    run_stage(find, tasks=1, workers=1, logging_dir=str(work / "logs/url_find"), **ex)
    run_stage(filt, tasks=tasks, workers=cfg.workers, logging_dir=str(work / "logs/url_filter"), **ex)
    buckets, cluster = minhash_stages(str(work / "dedup/minhash_sigs"), str(work / "dedup/minhash_buckets"),
                                      str(work / "dedup/minhash_clusters"), cfg.dedup)
    run_stage(buckets, tasks=cfg.dedup.bands, workers=light, logging_dir=str(work / "logs/minhash_buckets"), **ex)
    run_stage(cluster, tasks=1, workers=1, logging_dir=str(work / "logs/minhash_cluster"), **ex)
    (work / "dedup/minhash_clusters").mkdir(parents=True, exist_ok=True)
    for rank in range(tasks):  # datatrove's filter skips a shard with no removal, cluster ids included (and warns)
        for ext in (".remove", ".clusters"):
            (work / "dedup/minhash_clusters" / f"{rank:06d}{ext}").touch(exist_ok=True)
    run_stage(pool_pipeline(str(work / "urldedup"), str(work / "dedup/minhash_clusters"), str(work / "pool"),
                            str(work / "pool_stats"), str(work / "near_dups"),
                            resolve(cfg.labels_path, cfg.data_dir) if cfg.labels_path else "", cfg.annotation_depth,
                            cfg.token_sample_pages, cfg.seed),
              tasks=tasks, workers=cfg.workers, logging_dir=str(work / "logs/pool"), **ex)
    seconds["dedup"] = time.time() - t0
    pool = PoolSummary.read(work / "pool_stats")
    extracted = _stage_stat(work / "logs/extract", "min words", "total")
    return {"tasks": tasks, "seconds": seconds, "pages_extracted": extracted,
            "dropped_short": _stage_stat(work / "logs/extract", "min words", "dropped"),
            "dropped_url_dup": _stage_stat(work / "logs/url_filter", "exact-deduplication", "dropped"),
            "dropped_near_dup": _stage_stat(work / "logs/pool", "minhash", "dropped"),
            "pool_pages": pool.n_pages, "pool": pool}


def near_dup_examples(work_dir: str | Path, pool: PoolSummary, n: int = 8) -> list[tuple[str, str]]:
    """``(dropped url, kept url of its cluster)`` for the first ``n`` near duplicates MinHash removed."""
    out = []
    for f in rank_files(Path(work_dir) / "near_dups", "*.jsonl"):
        for _, rec in iter_jsonl(f):
            md = rec.get("metadata") or {}
            out.append((md.get("url"), pool.kept_of_cluster.get(str(md.get("minhash_cluster_id")), "")))
            if len(out) >= n:
                return out
    return out


def run_pipeline(cfg: CorpusConfig, progress: bool = False) -> dict[str, Any]:
    """Pool (datatrove stages) -> ``n_rounds`` rounds -> final selection + decontamination -> ``corpus.jsonl.gz``;
    returns the stats. The driver holds statistics, the seed/negative texts and training samples, never the pool."""
    work = Path(cfg.work_dir)
    stats: dict[str, Any] = {"stage_seconds": {}, "pages_per_s_by_stage": {}}
    t_all = time.time()
    built = build_pool(cfg)
    pool: PoolSummary = built.pop("pool")
    for k, v in built.pop("seconds").items():
        stats["stage_seconds"][k] = round(v, 2)
    stats["pages_per_s_by_stage"]["extract"] = round(built["pages_extracted"] / max(stats["stage_seconds"]["extract"], 1e-9), 1)
    stats["pages_per_s_by_stage"]["dedup"] = round(built["pages_extracted"] / max(stats["stage_seconds"]["dedup"], 1e-9), 1)
    stats.update(extractor=cfg.extractor if cfg.extractor != "auto" else default_extractor(), **built)

    seed_pages = (load_hub_texts(cfg.seed_hub_id, cfg.seed_limit) if cfg.seed_hub_id
                  else load_math_qa_seed(_glob(cfg.seed_glob, cfg.data_dir)))
    negatives = (load_hub_texts(cfg.negatives_hub_id, cfg.negatives_limit) if cfg.negatives_hub_id
                 else load_text_records(_glob(cfg.negatives_glob, cfg.data_dir), limit=cfg.negatives_limit))
    labels_path = resolve(cfg.labels_path, cfg.data_dir) if cfg.labels_path else ""

    t0 = time.time()
    tok_name, count = token_counter() if cfg.count_tokens else ("whitespace", lambda ts: [len(t.split()) for t in ts])
    tpc = tokens_per_char(pool.sample, count)
    stats["stage_seconds"]["tokens"] = round(time.time() - t0, 2)
    stats["tokenizer"] = tok_name
    stats["token_counts"] = {"exact": False, "tokens_per_char": round(tpc, 4), "sample_pages": len(pool.sample)}

    state = RoundState([s["text"] for s in seed_pages], [x["text"] for x in negatives], pool, tpc)
    t0 = time.time()
    for r in range(1, cfg.n_rounds + 1):
        run_round(state, r, work, cfg.ft, keep_fraction=cfg.keep_fraction, min_score=cfg.min_score,
                  min_domain_fraction=cfg.min_domain_fraction, annotator=cfg.annotator, labels_path=labels_path,
                  annotation_file=resolve(cfg.annotation_file, cfg.work_dir) if cfg.annotation_file else None,
                  annotation_depth=cfg.annotation_depth, use_annotated_negatives=cfg.use_annotated_negatives,
                  max_train_per_class=cfg.max_train_per_class, executor=cfg.executor, tasks=built["tasks"],
                  workers=cfg.workers, light_workers=cfg.light_workers, seed=cfg.seed,
                  executor_kwargs=cfg.executor_kwargs)
    stats["stage_seconds"]["rounds"] = round(time.time() - t0, 2)
    stats["rounds"] = state.rounds
    t_score = sum(r["seconds_score"] for r in state.rounds)  # the datatrove scoring part of the rounds, on its own
    stats["pages_per_s_by_stage"]["score"] = round(pool.n_pages * cfg.n_rounds / max(t_score, 1e-9), 1)

    t0 = time.time()
    fin = finalize(state, cfg.work_dir, cfg.data_dir, work / "corpus.jsonl.gz", decont_n=cfg.decont_n,
                   decont_min=cfg.decont_min, executor=cfg.executor, tasks=built["tasks"], workers=cfg.workers,
                   executor_kwargs=cfg.executor_kwargs)
    stats["stage_seconds"]["decontaminate_write"] = round(time.time() - t0, 2)
    dec = fin["decont"]
    stats["decontamination"] = {"checked": dec["checked"], "dropped": len(dec["dropped"]),
                                "by_benchmark": dict(Counter(d["benchmark"] for d in dec["dropped"])),
                                "examples": dec["dropped"][:20]}
    stats.update(corpus_path=str(fin["path"]), corpus_pages=fin["pages"], corpus_tokens=fin["tokens"],
                 math_domains=state.math_domains, seconds=round(time.time() - t_all, 2))
    return stats


def finalize(state: RoundState, work_dir: str | Path, data_dir: str, corpus_path: str | Path, *, decont_n: int = 10,
             decont_min: int = 3, executor: str = "local", tasks: int = 1, workers: int = 1,
             executor_kwargs: dict | None = None) -> dict[str, Any]:
    """Final selection, decontamination and writing as one datatrove stage, then the shards concatenated into
    ``corpus_path`` (``{url, text, round, score}`` rows); returns path, pages, tokens and decontamination stats."""
    work = Path(work_dir)
    run_stage(final_pipeline(str(work / "pool"), list(state.keep_rules), state.tokens_per_char,
                             str(work / "decont"), str(data_dir), str(work / "corpus_shards"), decont_n, decont_min),
              executor=executor, tasks=tasks, workers=workers, logging_dir=str(work / "logs/final"),
              log_file=str(work / "logs" / "datatrove.log"), **(executor_kwargs or {}))
    dec = read_decont_stats(work / "decont")
    path = concat_corpus(work / "corpus_shards", corpus_path)
    return {"path": path, "pages": sum(p for p, _ in dec["kept_by_round"].values()),
            "tokens": sum(t for _, t in dec["kept_by_round"].values()), "decont": dec}


def config_dict(cfg: CorpusConfig) -> dict[str, Any]:
    return asdict(cfg)
