"""Where benchmarks and corpora live (``DSM_DATA_DIR``), reading them safely, and fetching originals.

One setting locates every data file: the environment variable ``DSM_DATA_DIR`` (default ``./data``,
relative paths resolved against the repository root). CI and development use ``../shared/data``.
``python -m dsm_utils.data fetch`` obtains every file any profile reads: public originals from pinned commits,
each checked by sha256, and the mini Common Crawl pool and LaTeX set built from Debian packages
(``python -m dsm_utils.data build minicc|latex``); a file that cannot be had is an error naming it and the command
that gets it. ``python -m dsm_utils.data check`` lists every expected file with its record count and checksum.
See docs/DATA.md.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from . import repo_path

ENV_VAR = "DSM_DATA_DIR"
DEFAULT_DATA_DIR = "./data"


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file (and line)."""


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the data directory: ``override`` if given (non-empty), else ``$DSM_DATA_DIR``, else ``./data``."""
    raw = str(override) if override else os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR
    return repo_path(raw)


@dataclass(frozen=True)
class DataFile:
    """One expected file under the data dir: where it comes from, its record count and its sha256."""

    relpath: str
    records: int | None  # jsonl(.gz) line count; None for binary files (WARC shards, tsv)
    url: str  # pinned public original that `fetch` downloads, or "build:NAME" / "derive:NAME"
    what: str
    #: expected contents: the copy CI reads, or several accepted digests (a rebuild that is not byte-identical)
    sha256: str | tuple[str, ...] | None = None

    def accepts(self, digest: str) -> bool | None:
        """Whether ``digest`` is an expected sha256 of this file (None when no digest is recorded)."""
        if not self.sha256:
            return None
        return digest in ((self.sha256,) if isinstance(self.sha256, str) else self.sha256)

    @property
    def command(self) -> str:
        """The command that obtains this file."""
        if self.url.startswith("build:"):
            return f"python -m dsm_utils.data build {self.url[6:]}"
        return "python -m dsm_utils.data fetch"

    @property
    def source(self) -> str:
        """Where the file's contents come from (a pinned URL, or what it is built or derived from)."""
        return {"derive:math_train": f"{AW_TARBALL} ({AW_MATH_DIR}/)",
                "derive:prompts": f"{_DSM}few_shot_prompts/*.py"}.get(self.url, self.url)


_DSM_COMMIT = "b8b0f8ce093d80bf8e9a641e44142f06d092c305"
_DSM = f"https://raw.githubusercontent.com/deepseek-ai/DeepSeek-Math/{_DSM_COMMIT}/evaluation/"
_GSM = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/"
_ZG = "https://raw.githubusercontent.com/ZubinGou/math-evaluation-harness/db77bc6bb2a17c90ed2d63e88ebd8c40a82858c5/data/"
_DOLMA = "https://raw.githubusercontent.com/allenai/dolma/"
_WW = "https://raw.githubusercontent.com/commoncrawl/whirlwind-python/08dcfbe4d579a7b1ee27e7ce39a019de6292c1c7/"
_FUTON = ("https://raw.githubusercontent.com/tothedarktowercame/futon6/3f7810cecebe8bbfffec8cdcbae60779fb39fc32/"
          "data/stackexchange-samples/")
#: MATH train: one JSON file per problem in this repository snapshot (a tarball; see :func:`_math_train_from_tarball`).
AW_COMMIT = "e8c4e3c2d19739d3dff59e577d1c97090cc15f59"
AW_TARBALL = f"https://codeload.github.com/aiwaves-cn/agents/tar.gz/{AW_COMMIT}"
AW_MATH_DIR = "src/agents/datasets/data/math/train"
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")
_CC_WET = "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _d(relpath: str, records: int | None, url: str, what: str, sha256: str | tuple[str, ...]) -> DataFile:
    return DataFile(relpath, records, url, what, sha256)


#: Every file the notebooks read: documented record count and sha256 of the copy the tests pass with
#: (``../shared/data``; see its READMEs). Public files come from pinned commits; mini-CC and LaTeX are built.
EXPECTED: tuple[DataFile, ...] = (
    _d("gsm8k/test.jsonl", 1319, _DSM + "datasets/gsm8k/test.jsonl", "GSM8K test (DeepSeek-Math copy)",
       "fd32e8e549626b0dcce350eec7bbace9c463ddbcfa1c0303ba5abe9122450839"),
    _d("gsm8k/openai_test.jsonl", 1319, _GSM + "test.jsonl", "GSM8K test (OpenAI original)",
       "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"),
    _d("gsm8k/openai_train.jsonl", 7473, _GSM + "train.jsonl", "GSM8K train",
       "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"),
    _d("math/test.jsonl", 5000, _ZG + "math/test.jsonl", "MATH test (5000)",
       "3371949f33dd702d04b43fddd7d53a028de0aaca0e76abb1b875a050297b3aa4"),
    _d("math/math500_test.jsonl", 500, _ZG + "math_oai/test.jsonl", "MATH-500",
       "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
    _d("math/train.jsonl", 7500, "derive:math_train", "MATH train (7500; concatenated from aiwaves-cn/agents)",
       "aa3527c064b5e84f546c421747a67edc05ef88324c78151d05a2feb2487fec5d"),
    _d("cmath/test.jsonl", 1098, _DSM + "datasets/cmath/test.jsonl", "CMATH test",
       "cabe17c127c3227912b3384f4755e180f3aa0d9e5865677e7e5e223439bf15eb"),
    _d("mgsm_zh/mgsm_zh.jsonl", 250, _DSM + "datasets/mgsm_zh/mgsm_zh.jsonl", "MGSM-zh",
       "165c3b6753e8a8786183c27b9af7b7590d54dca4d0136edadb24d684c95bb50d"),
    _d("agieval/gaokao-mathcloze.jsonl", 118, _DSM + "datasets/agieval/gaokao-mathcloze.jsonl", "Gaokao-MathCloze",
       "088675c147794970a3ed25c7147a3bbc59715d6813837d5f483f46dcb1b5008d"),
    _d("agieval/gaokao-mathqa.jsonl", 351, _DSM + "datasets/agieval/gaokao-mathqa.jsonl", "Gaokao-MathQA",
       "d246f12752d121289ef55cbf1bcf954243cefb65d110f71d09358e24065c808f"),
    _d("ocw/test.jsonl", 272, _DSM + "datasets/ocw/test.jsonl", "OCW Courses",
       "095ba49696fcd401474a5014e2fae5e6b0b8ec1939d8dded0343fcbdb0bf1a9b"),
    _d("sat/test.jsonl", 32, _DSM + "datasets/sat/test.jsonl", "SAT math",
       "96720a1dc496ea72f80db55250290cf9c48e95b657ac2183b7deb1dc4627351f"),
    _d("mmlu_stem/test.jsonl", 3018, _DSM + "datasets/mmlu_stem/test.jsonl", "MMLU-STEM",
       "1c918d1df6de635a0202c989705c34f19b0c4ad858cbdb27135cdfc7fd44f14a"),
    _d("minif2f/test.jsonl", 244, _DSM + "datasets/minif2f/test.jsonl", "miniF2F test",
       "0b1ffa866b2d8eaff9ac00d8c4042bae915e2d153f3a600cf2c3b05193b0daef"),
    _d("minif2f/validation.jsonl", 244, _DSM + "datasets/minif2f/validation.jsonl", "miniF2F validation",
       "6091dd4c4e64a514fb2cba3a99e86678f791e9f5cbd9810db619522e81603ed5"),
    _d("prompts/deepseek_math_prompts.json", None, "derive:prompts",
       "DeepSeek-Math few-shot exemplars, templates, stop words (from evaluation/few_shot_prompts/*.py)",
       "c2bc52d2fc01a790b82bec2a14a87f05f35d73a8114aa62277ddeb7fcf5850ef"),
    _d("prompts/deepseek_math_few_shot_test_configs.json", None, _DSM + "configs/few_shot_test_configs.json",
       "DeepSeek-Math few-shot eval configs", "9c3f1bf5c64dfd7e1ff4d9c5013fb6e43a987ab68366d5b4daff44ab1382449f"),
    _d("prompts/deepseek_math_zero_shot_test_configs.json", None, _DSM + "configs/zero_shot_test_configs.json",
       "DeepSeek-Math zero-shot eval configs", "75d15ddfa66697ef7e549808d5e2359e479f49b4dae87395b2c1136ec49a3198"),
    _d("web/cc_wet_text/" + _CC_WET, 697,
       _DOLMA + "937ccc06f6fa4cefba496b2f48cc77418b941345/tests/data/formats/gz/" + _CC_WET,
       "random Common Crawl page texts (negatives)",
       "13abf424b40c6f71f16fa618a1215f506a9ca57708f36521b7de7d3153e5005a"),
    _d("web/warc/dolma-sample-0000.warc.gz", None,
       _DOLMA + "669f534823b08d266a8fff01f8a1c916a5a56576/tests/data/warc/sample-0000.warc.gz", "CC WARC sample",
       "53bca229270eb5f5f02f64af20807178b710bc2fa13de5c96f58c70114ab839a"),
    _d("web/warc/dolma-sample-0001.warc.gz", None,
       _DOLMA + "669f534823b08d266a8fff01f8a1c916a5a56576/tests/data/warc/sample-0001.warc.gz", "CC WARC sample",
       "fe202be30b77ee0fd4819f1c58b6db6d7dc67ce1b3a3c0335729ca1a12fa77f8"),
    _d("web/warc/whirlwind.warc.gz", None, _WW + "whirlwind.warc.gz", "CC WARC record",
       "2219c8d0fe743f47657de4921eed91fabdbab6dba4bd7497e37b3e96d89648f8"),
    _d("web/warc/whirlwind.warc.wet.gz", None, _WW + "whirlwind.warc.wet.gz", "CC WET record",
       "b2f1db3943b2bfbb34ad807c36e5eff315cc28efd474edf5a91cbb4962a1deef"),
    _d("web/math_qa/manifest.json", None, _FUTON + "manifest.json", "StackExchange sample manifest",
       "d726ad8b44d2bce4429fe7cd2b0d0ac079b0fdb46f511be8b95bb88e92670724"),
    _d("web/math_qa/math.stackexchange.com__category-theory.jsonl", 50,
       _FUTON + "math.stackexchange.com__category-theory.jsonl", "math Q&A threads (seed positives)",
       "7ac68d4a0e16103ed72a9c400db308d9879738772d598d915386a94509bf1fe0"),
    _d("web/math_qa/math.stackexchange.com__mathematical-physics.jsonl", 50,
       _FUTON + "math.stackexchange.com__mathematical-physics.jsonl", "math Q&A threads (seed positives)",
       "b205e533a71dcf5b762726077e5733920f8b2a7c1389e7622b10ea4a5b5739da"),
    _d("web/math_qa/mathoverflow.net__category-theory.jsonl", 50,
       _FUTON + "mathoverflow.net__category-theory.jsonl", "math Q&A threads (seed positives)",
       "015d502f9d78208f6ded798c7944cc323a1dff41e8a008dd8bd91362b5b7e3cd"),
    _d("web/math_qa/mathoverflow.net__mathematical-physics.jsonl", 50,
       _FUTON + "mathoverflow.net__mathematical-physics.jsonl", "math Q&A threads (seed positives)",
       "82798ba9f6e680e5b274e4c3bf3b0d94ed585d19291f2c27f5628e4daa3d151b"),
    _d("web/minicc/minicc-0000.warc.gz", None, "build:minicc", "mini Common Crawl shard (Debian HTML docs)",
       "f91f3d5b1b6e5b1bf633c55c36df12d43050adcee8d2b6afd9861eeb8fe7e00c"),
    _d("web/minicc/minicc-0001.warc.gz", None, "build:minicc", "mini Common Crawl shard (Debian HTML docs)",
       "0e1711d5c28bd47f0c8a1731ac657dc2d37a9b5147af8725ae164d056bba06ba"),
    _d("web/minicc/minicc-0002.warc.gz", None, "build:minicc", "mini Common Crawl shard (Debian HTML docs)",
       "49e39645044f5183a719b8d3a42bf4ec138d2b037112694d6fb468d78c53b97a"),
    _d("web/minicc/minicc-0003.warc.gz", None, "build:minicc", "mini Common Crawl shard (Debian HTML docs)",
       "2d84ede03c27791b0cd16bc037a5c254e18a011083aa02552779c55305e30f4c"),
    _d("web/minicc/labels.tsv", None, "build:minicc", "mini-CC page labels (evaluation only)",
       "5b2a04a894430e1f61defa69d9fd7b06c9408c6a46dfc6d8c7a110c684b3a10c"),
    # The reference copy (625 documents) and what `build latex` makes from the pinned packages (623 documents,
    # 613 of them the reference's): its selection rules are reproduced only approximately (docs/DATA.md).
    _d("latex/tex_docs.jsonl.gz", None, "build:latex", "LaTeX documents (Debian TeX Live docs; arXiv stand-in)",
       ("4d3db6df55a8ad19be8d1912d81df7c35b3e1b6fd6afd5463d1ddabd6b638f6f",
        "d0ab574e7be3760963d1cfee584b7583f771452e06a6e2fa4e12f0fa3466803d")),
)


def expected_file(relpath: str) -> DataFile | None:
    """The :data:`EXPECTED` entry of ``relpath`` (None when the file is not one of them)."""
    return next((f for f in EXPECTED if f.relpath == relpath), None)


def require(relpath: str, root: str | os.PathLike | None = None) -> Path:
    """Return the path of ``relpath`` under the data dir, or raise a clear error naming it and how to get it."""
    base = data_dir(root)
    path = base / relpath
    if not path.exists():
        f = expected_file(relpath)
        how = (f"run `{f.command}` (source: {f.source})" if f else "see docs/DATA.md")
        raise FileNotFoundError(
            f"data file not found: {path} (data dir {base} from ${ENV_VAR} or default {DEFAULT_DATA_DIR}); "
            f"to get it, {how}, or set {ENV_VAR} to a folder that holds it (CI uses ../shared/data)."
        )
    return path


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a ``.jsonl`` or ``.jsonl.gz`` file.

    A malformed line raises :class:`DataError` naming the file and the 1-based line number.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a whole ``.jsonl``/``.jsonl.gz`` file into a list of dicts (errors name file and line)."""
    return [rec for _, rec in iter_jsonl(path)]


def write_jsonl(path: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """Write records atomically (temp file then rename), gzip-compressed if the name ends in ``.gz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def count_records(path: Path) -> int:
    """Number of non-blank lines of a (gzipped) text file."""
    with _open_text(path) as fh:
        return sum(1 for line in fh if line.strip())


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(root: str | os.PathLike | None = None, verify: bool = True) -> list[dict[str, Any]]:
    """Report each expected file: present?, record count, documented count, sha256 as expected?"""
    base = data_dir(root)
    rows = []
    for f in EXPECTED:
        p = base / f.relpath
        present = p.is_file()
        n = count_records(p) if (present and f.records is not None) else None
        sha_ok = None
        if present and verify and f.sha256:
            sha_ok = f.accepts(sha256_of(p))
        ok = present and (f.records is None or n == f.records) and sha_ok is not False
        rows.append({"file": f.relpath, "present": present, "records": n, "expected": f.records, "sha256_ok": sha_ok,
                     "ok": ok, "what": f.what, "command": f.command})
    return rows


def missing_report(rows: list[dict[str, Any]], base: Path) -> str:
    """One line per file that is not as expected, naming it and the command that gets it."""
    lines = []
    for r in rows:
        if r["ok"]:
            continue
        why = ("missing" if not r["present"] else "sha256 differs from the expected contents"
               if r["sha256_ok"] is False else f"{r['records']} records, expected {r['expected']}")
        lines.append(f"  {base / r['file']}: {why}; get it with `{r['command']}`")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ downloads
def _urlopen(url: str, timeout: float = 60.0):
    """Open ``url`` (https:// or file://); a seam the tests replace to stay offline."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - pinned URLs from EXPECTED


def _sha_ok(digest: str, sha256: str | tuple[str, ...] | None) -> bool:
    return not sha256 or digest in ((sha256,) if isinstance(sha256, str) else sha256)


def _download(url: str, dest: Path, sha256: str | tuple[str, ...] | None) -> Path:
    """Stream ``url`` to ``dest`` (via ``dest.part``), check its sha256, then rename; nothing half-written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with _urlopen(url) as resp, open(tmp, "wb") as out:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        if not _sha_ok(h.hexdigest(), sha256):
            raise DataError(f"{dest}: sha256 of {url} is {h.hexdigest()}, expected {sha256} "
                            "(the source changed or the download was corrupted); nothing was written")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _write_checked(dest: Path, data: bytes, sha256: str | tuple[str, ...] | None, source: str) -> Path:
    """Write bytes made from a source after checking their sha256 (atomic)."""
    got = hashlib.sha256(data).hexdigest()
    if not _sha_ok(got, sha256):
        raise DataError(f"{dest}: sha256 of the file derived from {source} is {got}, expected {sha256}; "
                        "nothing was written")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def math_train_from_tarball(tar_path: str | os.PathLike) -> bytes:
    """MATH train as one jsonl: the 7,500 one-problem JSON files of the aiwaves-cn/agents snapshot, in order
    (subject, problem number), each with its fields as in the source plus
    ``source_file`` = ``train/<subject>/<n>.json``.
    """
    import tarfile

    found: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
    pat = re.compile(r"(?:^|/)" + re.escape(AW_MATH_DIR) + r"/([a-z_]+)/(\d+)\.json$")
    with tarfile.open(tar_path, "r:*") as tar:
        for m in tar:
            hit = pat.search(m.name) if m.isfile() else None
            if not hit or hit.group(1) not in MATH_SUBJECTS:
                continue
            fh = tar.extractfile(m)
            rec = json.loads(fh.read().decode("utf-8"))  # type: ignore[union-attr]
            key = (MATH_SUBJECTS.index(hit.group(1)), int(hit.group(2)))
            found[key] = (f"train/{hit.group(1)}/{hit.group(2)}.json", rec)
    if not found:
        raise DataError(f"{tar_path}: no {AW_MATH_DIR}/<subject>/<n>.json members")
    lines = []
    for key in sorted(found):
        src, rec = found[key]
        lines.append(json.dumps({**rec, "source_file": src}, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


def _fetch_math_train(dest: Path, sha256: str | None) -> Path:
    with tempfile.TemporaryDirectory(prefix="dsm_math_train_") as tmp:
        tar_path = Path(tmp) / "agents.tar.gz"
        print(f"fetch {AW_TARBALL} -> {dest}", file=sys.stderr)
        _download(AW_TARBALL, tar_path, None)  # the tarball's bytes are not stable; the result is checked
        return _write_checked(dest, math_train_from_tarball(tar_path), sha256, AW_TARBALL)


def prompts_json_from_sources(sources: dict[str, str]) -> bytes:
    """``prompts/deepseek_math_prompts.json`` from the prompt modules' source texts (module name -> text).

    The parsing lives in :func:`dsm_utils.prompts.derive_prompts_json` (``ast``, never imported or run)."""
    from . import prompts

    files = {name if name.endswith(".py") else f"{name}.py": text for name, text in sources.items()}
    return prompts.prompts_json_text(prompts.derive_prompts_json(files)).encode("utf-8")


def _fetch_prompts(dest: Path, sha256: str | None) -> Path:
    from . import prompts

    sources = {}
    for name in prompts.UPSTREAM_PROMPT_FILES:
        url = _DSM + f"few_shot_prompts/{name}"
        print(f"fetch {url}", file=sys.stderr)
        with _urlopen(url) as resp:
            sources[name] = resp.read().decode("utf-8")
    return _write_checked(dest, prompts_json_from_sources(sources), sha256, _DSM + "few_shot_prompts/")


def fetch(root: str | os.PathLike | None = None, overwrite: bool = False, build: bool = True) -> list[Path]:
    """Obtain every expected file that is missing (or, with ``overwrite``, not as expected) into the data dir.

    Public files are downloaded from their pinned URLs and checked by sha256; MATH train is assembled from its
    pinned repository snapshot; ``build`` runs the Debian builders (:func:`build`) for the mini Common Crawl pool
    and the LaTeX set. Raises :class:`DataError` naming every file that could not be had and its command;
    files that were obtained stay (each is written atomically).
    """
    base = data_dir(root)
    rows = {r["file"]: r for r in check(base)}
    errors: list[str] = []
    got: list[Path] = []
    builds: dict[str, list[DataFile]] = {}
    for f in EXPECTED:
        r = rows[f.relpath]
        if r["ok"]:
            continue
        dest = base / f.relpath
        if r["present"] and not overwrite:
            errors.append(f"  {dest}: present but not as expected ({missing_report([r], base).split(': ', 1)[1]}); "
                          f"remove it or rerun with --overwrite")
            continue
        if f.url.startswith("build:"):
            builds.setdefault(f.url[6:], []).append(f)
            continue
        try:
            if f.url == "derive:math_train":
                got.append(_fetch_math_train(dest, f.sha256))
            elif f.url == "derive:prompts":
                got.append(_fetch_prompts(dest, f.sha256))
            else:
                print(f"fetch {f.url} -> {dest}", file=sys.stderr)
                got.append(_download(f.url, dest, f.sha256))
        except Exception as exc:  # noqa: BLE001 - collect every failure, report them together
            errors.append(f"  {dest}: {type(exc).__name__}: {exc}; get it with `{f.command}` (source {f.source})")
    for name, files in builds.items():
        if not build:
            errors += [f"  {base / f.relpath}: not built; get it with `{f.command}`" for f in files]
            continue
        try:
            build_dataset(name, base)
            got += [base / f.relpath for f in files]
        except Exception as exc:  # noqa: BLE001
            errors += [f"  {base / f.relpath}: {type(exc).__name__}: {exc}; get it with `{f.command}`"
                       for f in files]
    if errors:
        raise DataError("some data files could not be had:\n" + "\n".join(errors))
    return got


# ------------------------------------------------------------------------------------------------ Debian builds
class AptError(DataError):
    """A Debian package could not be downloaded or unpacked; the message names the command to run."""


def apt_download(packages: list[tuple[str, str | None]], dest: str | os.PathLike) -> list[Path]:
    """``apt-get download PKG=VERSION ...`` into ``dest`` (no root needed; the package lists must exist).

    A missing package list or version is an :class:`AptError` naming the command that fixes it.
    """
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise AptError("apt-get and dpkg-deb are needed to build this data set (a Debian or Ubuntu system); "
                       "or copy the built files from a machine that has them")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    specs = [f"{p}={v}" if v else p for p, v in packages]
    res = subprocess.run(["apt-get", "download", *specs], cwd=dest, capture_output=True, text=True)
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()
        hint = ("run `sudo apt-get update` (the package lists are missing or stale), then rerun"
                if any("Unable to locate" in e or "has no installation candidate" in e for e in err)
                else "check the network and that the versions still exist in the Debian archive "
                     "(`apt-cache policy PKG`); `--any-version` builds from the current versions instead")
        raise AptError(f"`apt-get download {' '.join(specs)}` failed: {' | '.join(err[-3:])}; {hint}")
    debs = []
    for p, _ in packages:
        hits = sorted(dest.glob(f"{p}_*.deb"))
        if not hits:
            raise AptError(f"apt-get download {p}: no {p}_*.deb in {dest}")
        debs.append(hits[-1])
    return debs


def deb_version(deb: Path) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def unpack_debs(debs: list[Path], root: str | os.PathLike) -> Path:
    """``dpkg-deb -x`` every package into one root, as if installed (maintainer scripts are not run)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        res = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
        if res.returncode != 0:
            raise AptError(f"`dpkg-deb -x {deb} {root}` failed: {res.stderr.strip()[-300:]}")
    return root


@dataclass(frozen=True)
class DocPackage:
    """One Debian documentation package of the mini Common Crawl: where its HTML lives and its URL prefix."""

    package: str
    version: str
    html_root: str
    url_prefix: str
    is_math: int
    extra: tuple[tuple[str, str], ...] = ()  # packages unpacked alongside (targets of its symlinks, index hooks)


#: The mini Common Crawl's packages (Debian 12), in selection order. See :func:`build_minicc`.
MINICC_PACKAGES: tuple[DocPackage, ...] = (
    DocPackage("maxima-doc", "5.46.0-11", "/usr/share/doc/maxima-doc/html",
               "https://maxima.sourceforge.io/docs/manual/", 1),
    DocPackage("octave-doc", "7.3.0-2", "/usr/share/doc/octave/octave.html", "https://docs.octave.org/v7.3.0/", 1),
    DocPackage("python-sympy-doc", "1.11.1-1", "/usr/share/doc/python-sympy-doc/html",
               "https://docs.sympy.org/1.11/", 1),
    DocPackage("gap-doc", "4.12.1-2", "/usr/share/gap/doc", "https://docs.gap-system.org/doc/", 1,
               (("libjs-mathjax", "2.7.9+dfsg-1"),)),
    DocPackage("python-mpmath-doc", "1.2.1-2", "/usr/share/doc/python-mpmath-doc/html",
               "https://mpmath.org/doc/1.2.1/", 1),
    DocPackage("gnuplot-doc", "5.4.4+dfsg1-2", "/usr/share/doc/gnuplot/htmldocs", "http://gnuplot.info/docs_5.4/", 1),
    DocPackage("python3.11-doc", "3.11.2-6+deb12u9", "/usr/share/doc/python3.11/html",
               "https://docs.python.org/3.11/", 0),
    DocPackage("postgresql-doc-15", "15.20-0+deb12u1", "/usr/share/doc/postgresql-doc-15/html",
               "https://www.postgresql.org/docs/15/", 0),
    DocPackage("python-django-doc", "3:3.2.25-0+deb12u7", "/usr/share/doc/python-django-doc/html",
               "https://docs.djangoproject.com/en/3.2/", 0),
    DocPackage("apache2-doc", "2.4.71-1~deb12u1", "/usr/share/doc/apache2-doc/manual",
               "https://httpd.apache.org/docs/2.4/", 0),
    DocPackage("debian-reference-en", "2.100", "/usr/share/debian-reference",
               "https://www.debian.org/doc/manuals/debian-reference/", 0, (("debian-reference-common", "2.100"),)),
    DocPackage("r-doc-html", "4.2.2.20221110-2", "/usr/share/doc/r-doc-html/manual",
               "https://cran.r-project.org/doc/manuals/r-release/", 0),
)
MINICC_SHARDS = 4
MINICC_DATE = "2026-01-01T00:00:00Z"
MINICC_HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
#: The warcinfo payload, kept verbatim from the first build so that rebuilt shards are byte-identical.
MINICC_WARCINFO = (
    ("software", "build_minicc.py (warcio)"),
    ("format", "WARC File Format 1.1"),
    ("description", "Mini Common Crawl stand-in: Debian 12 HTML documentation packages, upstream-like URLs "
                    "assigned; not a real crawl"),
    ("isPartOf", "minicc"),
    ("operator", "offline build"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)


def page_charset(body: bytes) -> str:
    """The charset a page declares when its bytes decode with it; else UTF-8 if they decode, else ISO-8859-1."""
    m = _META_CHARSET.search(body)
    if m:
        declared = m.group(1).decode("ascii").upper()
        try:
            body.decode(declared)
            return declared
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        body.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "ISO-8859-1"


def _html_files(root: Path) -> list[str]:
    """Every ``*.html``/``*.htm`` under ``root`` (relative paths), following symlinks; each real directory is
    walked once (in sorted order, so the first path to reach it wins) and broken links are dropped."""
    seen_dirs: set[str] = set()
    out: list[str] = []

    def walk(d: Path, rel: str) -> None:
        real = os.path.realpath(d)
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        for name in sorted(os.listdir(d)):
            p = d / name
            r = f"{rel}{name}"
            if p.is_dir():  # follows symlinks; a broken link is neither dir nor file
                walk(p, r + "/")
            elif p.is_file() and name.endswith((".html", ".htm")):
                out.append(r)

    walk(root, "")
    return out


def _run_index_hooks(root: Path) -> None:
    """What installing debian-reference does beyond unpacking: its postinst writes ``index.html``."""
    script = root / "usr/share/debian-reference-common/mkindexhtml"
    doc_root = root / "usr/share/debian-reference"
    if script.is_file() and doc_root.is_dir():
        env = dict(os.environ, DOC_ROOT=str(doc_root))
        subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)
        index = doc_root / "index.html"
        text = index.read_text(encoding="utf-8").replace(str(root), "")  # the page names the installed path
        index.write_text(text, encoding="utf-8")


def minicc_pages(root: Path, packages: tuple[DocPackage, ...]) -> list[dict[str, Any]]:
    """Pages of the unpacked packages (see :func:`build_minicc` for the rules), in selection order."""
    taken: set[str] = set()
    pages = []
    for pkg in packages:
        html_root = root / pkg.html_root.lstrip("/")
        if not html_root.is_dir():
            raise DataError(f"{pkg.package}: HTML root {pkg.html_root} not found in the unpacked package")
        files = _html_files(html_root)
        if pkg.package == "apache2-doc":  # untranslated pages elsewhere are byte copies of en/: keep en/
            files.sort(key=lambda r: (not r.startswith("en/"), r))
        for rel in files:
            body = (html_root / rel).read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            if digest in taken:
                continue
            taken.add(digest)
            url = pkg.url_prefix + rel
            pages.append({"url": url, "body": body, "package": pkg.package, "is_math": pkg.is_math,
                          "domain": urllib.parse.urlsplit(url).netloc})
    return pages


def write_minicc(pages: list[dict[str, Any]], out_dir: Path, shards: int = MINICC_SHARDS) -> dict[str, Any]:
    """Shuffle (``random.Random(0)`` after sorting by URL), deal round-robin into ``shards`` WARC/1.1 files and
    write ``labels.tsv``; every file goes through a temp name, so nothing is half-written."""
    import io
    import random
    import uuid

    try:
        from warcio.statusandheaders import StatusAndHeaders
        from warcio.warcwriter import WARCWriter
    except ImportError as exc:  # pragma: no cover
        raise DataError("building the mini Common Crawl needs warcio: pip install -e '.[corpus]'") from exc
    pages = sorted(pages, key=lambda p: p["url"])
    random.Random(0).shuffle(pages)
    out_dir.mkdir(parents=True, exist_ok=True)
    label_rows = ["url\tdomain\tpackage\tis_math_domain\tshard\twarc_record_id\n"]
    charsets: dict[str, int] = {}
    written = []
    for k in range(shards):
        name = f"minicc-{k:04d}.warc.gz"
        tmp = out_dir / (name + ".part")
        info_id = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'warcinfo:' + name)}>"
        with open(tmp, "wb") as fh:
            w = WARCWriter(fh, gzip=True, warc_version="WARC/1.1")
            info = w.create_warcinfo_record(name, dict(MINICC_WARCINFO))
            info.rec_headers.replace_header("WARC-Record-ID", info_id)
            info.rec_headers.replace_header("WARC-Date", MINICC_DATE)
            w.write_record(info)
            for page in pages[k::shards]:
                body = page["body"]
                cs = page_charset(body)
                charsets[cs] = charsets.get(cs, 0) + 1
                rid = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, page['url'])}>"
                http = StatusAndHeaders("200 OK", [("Date", MINICC_HTTP_DATE),
                                                   ("Content-Type", f"text/html; charset={cs}"),
                                                   ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
                warc_headers = StatusAndHeaders("WARC/1.1", [
                    ("WARC-Type", "response"), ("WARC-Target-URI", page["url"]), ("WARC-Date", MINICC_DATE),
                    ("WARC-Record-ID", rid), ("WARC-Warcinfo-ID", info_id),
                    ("WARC-Identified-Payload-Type", "text/html")])
                rec = w.create_warc_record(page["url"], "response", payload=io.BytesIO(body), http_headers=http,
                                           warc_headers=warc_headers)
                w.write_record(rec)
                label_rows.append("\t".join([page["url"], page["domain"], page["package"], str(page["is_math"]),
                                              str(k), rid]) + "\n")
        written.append((tmp, out_dir / name))
    labels_tmp = out_dir / "labels.tsv.part"
    labels_tmp.write_text("".join(label_rows), encoding="utf-8")
    written.append((labels_tmp, out_dir / "labels.tsv"))
    for tmp, dest in written:
        os.replace(tmp, dest)
    return {"pages": len(pages), "shards": shards, "charsets": charsets,
            "math_pages": sum(p["is_math"] for p in pages), "files": [str(d) for _, d in written]}


def build_minicc(out_dir: str | os.PathLike, packages: list[str] | None = None, shards: int = MINICC_SHARDS,
                 workdir: str | os.PathLike | None = None, any_version: bool = False) -> dict[str, Any]:
    """Build the mini Common Crawl pool (``web/minicc/``) from Debian 12 documentation packages.

    Not a real crawl: real HTML pages from Debian's documentation packages, each given an upstream-like URL
    (the package's URL prefix + its path under the HTML root). Steps:

    1. ``apt-get download PKG=VERSION`` for every package below (no root; needs the package lists, i.e. an
       earlier ``apt-get update``) and ``dpkg-deb -x`` them all into one root. gap-doc's ``mathjax`` links need
       libjs-mathjax unpacked alongside; debian-reference-en's ``index.html`` is what debian-reference-common's
       postinst (``mkindexhtml``) writes, so that script is run on the unpacked tree.
    2. Pages, package by package in the order below: every ``*.html``/``*.htm`` under the HTML root, following
       symlinks, each real directory walked once (sorted order), broken links dropped; paths sorted, with Apache's
       ``en/`` first; a page whose bytes (sha256) equal a page already taken is skipped.
    3. Records: sorted by URL, shuffled with ``random.Random(0)``, dealt round-robin into ``shards`` WARC/1.1
       files ``minicc-000K.warc.gz`` (one gzip member per record): a ``warcinfo`` record, then one HTTP
       ``response`` per page with ``WARC-Date`` 2026-01-01T00:00:00Z, ``WARC-Record-ID``
       ``uuid5(NAMESPACE_URL, url)``, ``WARC-Warcinfo-ID``, ``WARC-Identified-Payload-Type: text/html``, and an
       ``HTTP/1.1 200 OK`` block with ``Content-Type: text/html; charset=X`` (X: the charset the page declares
       when its bytes decode with it, else UTF-8 if they decode, else ISO-8859-1).
    4. ``labels.tsv`` (evaluation ground truth, never classifier input): ``url``, ``domain``, ``package``,
       ``is_math_domain`` (by package), ``shard``, ``warc_record_id``, in WARC order.

    ============================  ===================  =======================================  =====
    package (version)             HTML root            URL prefix                               math
    ============================  ===================  =======================================  =====
    maxima-doc 5.46.0-11          /usr/share/doc/maxima-doc/html        maxima.sourceforge.io/docs/manual/  1
    octave-doc 7.3.0-2            /usr/share/doc/octave/octave.html     docs.octave.org/v7.3.0/             1
    python-sympy-doc 1.11.1-1     /usr/share/doc/python-sympy-doc/html  docs.sympy.org/1.11/                1
    gap-doc 4.12.1-2              /usr/share/gap/doc                    docs.gap-system.org/doc/            1
    python-mpmath-doc 1.2.1-2     /usr/share/doc/python-mpmath-doc/html mpmath.org/doc/1.2.1/               1
    gnuplot-doc 5.4.4+dfsg1-2     /usr/share/doc/gnuplot/htmldocs       gnuplot.info/docs_5.4/ (http)       1
    python3.11-doc 3.11.2-6+deb12u9  /usr/share/doc/python3.11/html     docs.python.org/3.11/               0
    postgresql-doc-15 15.20-0+deb12u1  /usr/share/doc/postgresql-doc-15/html  www.postgresql.org/docs/15/ 0
    python-django-doc 3:3.2.25-0+deb12u7  /usr/share/doc/python-django-doc/html  docs.djangoproject.com/en/3.2/ 0
    apache2-doc 2.4.71-1~deb12u1  /usr/share/doc/apache2-doc/manual     httpd.apache.org/docs/2.4/          0
    debian-reference-en 2.100     /usr/share/debian-reference           www.debian.org/doc/manuals/debian-reference/ 0
    r-doc-html 4.2.2.20221110-2   /usr/share/doc/r-doc-html/manual      cran.r-project.org/doc/manuals/r-release/ 0
    ============================  ===================  =======================================  =====

    (exact prefixes, with their scheme, are in :data:`MINICC_PACKAGES`). ``packages`` builds a subset (tests);
    ``any_version`` takes the archive's current versions when a pinned one is gone (the result then differs
    from the expected sha256). Returns page/charset counts and the package versions used.
    """
    chosen = MINICC_PACKAGES if packages is None else tuple(p for p in MINICC_PACKAGES if p.package in packages)
    unknown = set(packages or ()) - {p.package for p in chosen}
    if unknown:
        raise ValueError(f"unknown mini-CC package(s) {sorted(unknown)}; valid: {[p.package for p in MINICC_PACKAGES]}")
    specs = [(p.package, None if any_version else p.version) for p in chosen]
    specs += [(e, None if any_version else v) for p in chosen for e, v in p.extra]
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="dsm_minicc_")) if own_tmp else Path(workdir)
    try:
        debs = apt_download(specs, work / "debs")
        root = unpack_debs(debs, work / "root")
        _run_index_hooks(root)
        pages = minicc_pages(root, chosen)
        stats = write_minicc(pages, Path(out_dir), shards)
        stats["versions"] = {d.name.split("_")[0]: deb_version(d) for d in debs}
        return stats
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


BUILDERS = {"minicc": "web/minicc", "latex": "latex"}


#: The LaTeX stand-in's Debian 12 packages (TeX Live 2022), in selection order; the last three are scanned too
#: but gave no document in the reference build. See :func:`build_latex`.
LATEX_PACKAGES: tuple[tuple[str, str], ...] = tuple((p, "2022.20230122-" + r) for p, r in (
    ("texlive-publishers-doc", "4"), ("texlive-science-doc", "4"), ("texlive-latex-recommended-doc", "3"),
    ("texlive-latex-base-doc", "3"), ("texlive-lang-english", "1"), ("texlive-latex-extra-doc", "4"),
    ("texlive-fonts-extra-doc", "4"), ("texlive-fonts-recommended-doc", "3"), ("texlive-pictures-doc", "3"),
    ("texlive-pstricks-doc", "4"), ("texlive-metapost-doc", "3"), ("texlive-luatex", "3"),
    ("texlive-plain-generic", "4"), ("texlive-humanities-doc", "4"), ("texlive-xetex", "3"),
    ("texlive-extra-utils", "4"), ("texlive-games", "4"), ("texlive-formats-extra", "4"),
    ("texlive-bibtex-extra", "4"), ("texlive-lang-french", "1"), ("texlive-lang-german", "1"),
    ("texlive-lang-italian", "1"), ("texlive-lang-spanish", "1"), ("texlive-lang-portuguese", "1"),
    ("texlive-lang-polish", "1"), ("texlive-lang-european", "1"), ("texlive-lang-cyrillic", "1"),
    ("texlive-lang-greek", "1"), ("texlive-lang-chinese", "1"), ("texlive-lang-japanese", "1"),
    ("texlive-lang-korean", "1"), ("texlive-lang-arabic", "1"), ("texlive-lang-other", "1"),
    ("texlive-base", "3"), ("texlive-lang-czechslovak", "1"), ("texlive-lang-cjk", "1"),
))
_TEX_DOC = "usr/share/doc/texlive-doc/"
_TEX_COMMENT = re.compile(r"(?<!\\)%[^\n]*")
_DISPLAY_ENVS = "equation|align|gather|multline|eqnarray|displaymath|flalign|alignat|dmath|math"
_TEX_DISPLAY = re.compile(r"\\begin\{(" + _DISPLAY_ENVS + r")(\*?)\}(.*?)\\end\{\1\2\}|\\\[(.*?)\\\]|\$\$(.*?)\$\$",
                          re.S)
_TEX_INLINE = re.compile(r"(?<![\\$])\$([^$]+?)(?<!\\)\$")
_TEX_MATHLIKE = re.compile(r"[\\^_=+<>0-9]|^\s*[A-Za-z]\s*$")
_TEX_EQENV = re.compile(r"\\begin\{(?:equation|align|gather|multline|eqnarray)\*?\}")
_TEX_THEOREM = re.compile(r"\\begin\{(?:theorem|lemma|proposition|corollary|definition|proof|thm|lem|prop|cor)\*?\}")
_TEX_COMMAND = re.compile(r"\\[a-zA-Z@]+\*?|\\.")
_TEX_WORD = re.compile(r"[^\W\d_]{2,}")
_LANGS = {"english": "en", "american": "en", "british": "en", "USenglish": "en", "UKenglish": "en",
          "french": "fr", "francais": "fr", "frenchb": "fr", "german": "de", "ngerman": "de", "austrian": "de",
          "italian": "it", "spanish": "es", "portuguese": "pt", "portuges": "pt", "brazil": "pt", "brazilian": "pt",
          "polish": "pl", "russian": "ru", "ukrainian": "uk", "greek": "el", "polutonikogreek": "el",
          "dutch": "nl", "serbian": "sr", "serbianc": "sr", "czech": "cs", "slovak": "sk", "arabic": "ar",
          "farsi": "fa", "persian": "fa", "hebrew": "he", "korean": "ko", "japanese": "ja", "chinese": "zh",
          "vietnamese": "vi", "turkish": "tr", "catalan": "ca", "danish": "da", "swedish": "sv", "finnish": "fi",
          "hungarian": "hu", "magyar": "hu", "croatian": "hr", "slovene": "sl", "romanian": "ro", "bulgarian": "bg"}
_CJK_CLASSES = (("zh", r"ctex(art|rep|book|beamer)|\{ctex\}|CJKutf8|xeCJK"), ("ja", r"ltjs?\w*|jarticle|jbook|"
                r"jreport|bxjs\w*|jlreq|uj\w+|tarticle|luatexja"), ("ko", r"kotex|oblivoir"))


def tex_metrics(text: str) -> dict[str, Any] | None:
    """The LaTeX stand-in's per-document numbers (None without ``\\begin{document}``); see :func:`build_latex`."""
    t = _TEX_COMMENT.sub("", text)
    start = t.find("\\begin{document}")
    if start < 0:
        return None
    body = t[start:]
    disp = [m for m in _TEX_DISPLAY.finditer(body)
            if len(m.group(0)) <= 4000 and next(g for g in m.groups()[2:] if g is not None).strip()]
    rest = _TEX_DISPLAY.sub(" ", body)
    inline = [m for m in _TEX_INLINE.finditer(rest) if _TEX_MATHLIKE.search(m.group(1))]
    prose = _TEX_COMMAND.sub(" ", _TEX_INLINE.sub(" ", rest))
    n = max(1, len(body))
    return {"body_chars": len(body), "n_display": len(disp), "n_inline": len(inline),
            "math_density": round(1000 * (len(disp) + len(inline)) / n, 3),
            "prose_fraction": round(sum(len(w) for w in _TEX_WORD.findall(prose)) / n, 3),
            "n_eqenv": len(_TEX_EQENV.findall(body)), "n_theorem": len(_TEX_THEOREM.findall(body))}


def tex_lang_hint(text: str) -> str:
    """babel / polyglossia / CJK-class language, or a guess from the script (marked with ``?``)."""
    t = _TEX_COMMENT.sub("", text)
    m = re.search(r"\\set(?:default|main)language(?:\[[^\]]*\])?\{(\w+)\}", t)
    if m and m.group(1) in _LANGS:
        return _LANGS[m.group(1)]
    m = re.search(r"\\usepackage\[([^\]]*)\]\{babel\}", t) or re.search(r"\\documentclass\[([^\]]*)\]", t)
    if m:
        opts = [o.strip().split("=")[0] for o in m.group(1).split(",")]
        langs = [_LANGS[o] for o in opts if o in _LANGS]
        if langs:
            return langs[-1]  # babel's main language is the last one
    head = t[: t.find("\\begin{document}")]
    for code, pat in _CJK_CLASSES:
        if re.search(pat, head):
            return code
    counts = {"zh?": 0, "ja?": 0, "ko?": 0, "ar?": 0, "el?": 0, "ru?": 0}
    for ch in t:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF:
            counts["ja?"] += 1
        elif 0x4E00 <= o <= 0x9FFF:
            counts["zh?"] += 1
        elif 0xAC00 <= o <= 0xD7AF:
            counts["ko?"] += 1
        elif 0x0600 <= o <= 0x06FF:
            counts["ar?"] += 1
        elif 0x0370 <= o <= 0x03FF:
            counts["el?"] += 1
        elif 0x0400 <= o <= 0x04FF:
            counts["ru?"] += 1
    if counts["ja?"] and counts["zh?"]:
        counts["ja?"] += counts["zh?"]
    best = max(counts, key=counts.get)
    return best if counts[best] >= 50 else "en?"


def _licences(text: str) -> list[tuple[str, str, list[str]]]:
    """Debian's ``Licenses.gz``: (TeX Live package, licence, path patterns) blocks."""
    out: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^([^\s/:][^\s:]*):\s*(.*)$", line)
        if m and not line.startswith("texmf"):
            out.append((m.group(1), m.group(2).strip() or "unknown", []))
        elif out and line.strip():
            out[-1][2].append(line.strip())
    return out


def _tl_package(relpath: str, licences: list[tuple[str, str, list[str]]]) -> tuple[str, str]:
    """TeX Live package and licence of ``texlive-doc/<relpath>`` from the Licenses.gz patterns."""
    import fnmatch

    target = "texmf-dist/doc/" + relpath.removesuffix(".gz")
    for name, lic, pats in licences:
        if any(fnmatch.fnmatch(target, p) or fnmatch.fnmatch(target + ".gz", p) for p in pats):
            return name, lic
    parts = relpath.split("/")
    return (parts[1] if len(parts) > 2 else parts[0]), "unknown"


def _shingles(text: str, shingle: int = 5) -> set[str]:
    words = text.split()
    return {" ".join(words[i:i + shingle]) for i in range(max(1, len(words) - shingle + 1))}


def _minhash(grams: set[str], perms: int = 128):
    import numpy as np

    x = np.array([int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") for g in grams],
                 dtype=np.uint64)
    rng = np.random.default_rng(0)
    p = np.uint64((1 << 61) - 1)
    a = rng.integers(1, 1 << 29, perms, dtype=np.uint64)
    b = rng.integers(0, 1 << 29, perms, dtype=np.uint64)
    return ((x[None, :] * a[:, None] + b[:, None]) % p).min(axis=1)


def latex_candidates(debs: list[tuple[str, str, Path]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every kept document of the packages (before deduplication), in package then path order."""
    import tarfile

    docs: list[dict[str, Any]] = []
    seen = {"tex_files": 0, "with_document": 0}
    for pkg, version, deb in debs:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        found: list[tuple[str, bytes]] = []
        lic_text = ""
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:  # type: ignore[arg-type]
            for m in tar:
                name = m.name.lstrip("./")
                if not m.isfile():
                    continue
                if name == f"usr/share/doc/{pkg}/Licenses.gz":
                    lic_text = gzip.decompress(tar.extractfile(m).read()).decode("utf-8", "replace")  # type: ignore
                elif name.startswith(_TEX_DOC) and name.endswith((".tex", ".tex.gz")):
                    found.append((name, tar.extractfile(m).read()))  # type: ignore[union-attr]
        if proc.wait() != 0:
            raise AptError(f"`dpkg-deb --fsys-tarfile {deb}` failed")
        licences = _licences(lic_text)
        for name, raw in sorted(found):
            seen["tex_files"] += 1
            if name.endswith(".gz"):
                raw = gzip.decompress(raw)
            try:
                text, enc = raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, enc = raw.decode("latin-1"), "latin-1"
            met = tex_metrics(text)
            if met is None:
                continue
            seen["with_document"] += 1
            has_math = met["n_display"] >= 1 or met["n_inline"] >= 20
            if not (has_math and met["math_density"] >= 1 and met["body_chars"] >= 500
                    and met["prose_fraction"] >= 0.08):
                continue
            tl, lic = _tl_package(name[len(_TEX_DOC):], licences)
            docs.append({"path_in_package": "/" + name, "package": pkg, "package_version": version,
                         "tl_package": tl,
                         "licence_hint": f"{lic} (TeX Live package {tl}; Debian {pkg} Licenses.gz + copyright)",
                         "encoding": enc, "lang_hint": tex_lang_hint(text),
                         "body_chars": met["body_chars"], "n_display": met["n_display"], "n_inline": met["n_inline"],
                         "math_density": met["math_density"], "prose_fraction": met["prose_fraction"],
                         "n_eqenv": met["n_eqenv"], "n_theorem": met["n_theorem"], "text": text})
    return docs, seen


def dedup_latex(docs: list[dict[str, Any]], threshold: float = 0.8, bands: int = 32, rows: int = 4):
    """Drop exact duplicates (whitespace-normalised sha256) and near duplicates: LSH (``bands`` x ``rows`` over a
    MinHash of word 5-grams) proposes pairs, kept when their Jaccard similarity is >= ``threshold``. The first
    document of a group (package, then path order) is kept."""
    kept, exact, near = [], 0, 0
    seen_sha: set[str] = set()
    buckets: dict[tuple[int, bytes], list[int]] = {}
    grams_kept: list[set[str]] = []
    for d in docs:
        h = hashlib.sha256(" ".join(d["text"].split()).encode()).hexdigest()
        if h in seen_sha:
            exact += 1
            continue
        grams = _shingles(d["text"])
        sig = _minhash(grams, bands * rows)
        keys = [(i, sig[i * rows:(i + 1) * rows].tobytes()) for i in range(bands)]
        cands = {j for k in keys for j in buckets.get(k, ())}
        if any(len(grams & grams_kept[j]) >= threshold * len(grams | grams_kept[j]) for j in cands):
            near += 1
            continue
        seen_sha.add(h)
        for k in keys:
            buckets.setdefault(k, []).append(len(grams_kept))
        grams_kept.append(grams)
        kept.append(d)
    return kept, {"exact_duplicates": exact, "near_duplicates": near}


def build_latex(out_dir: str | os.PathLike, packages: list[str] | None = None,
                workdir: str | os.PathLike | None = None, any_version: bool = False) -> dict[str, Any]:
    """Build the LaTeX stand-in for the paper's arXiv sources (``latex/tex_docs.jsonl.gz``) from Debian 12's
    TeX Live documentation packages: documentation and sample articles with mathematics, not research papers.

    1. ``apt-get download`` every package of :data:`LATEX_PACKAGES` at its pinned version (no root; needs the
       package lists) and read every ``*.tex`` / ``*.tex.gz`` under ``/usr/share/doc/texlive-doc/`` straight
       from ``dpkg-deb --fsys-tarfile`` (nothing is installed); texts are kept exactly as shipped (decompressed;
       UTF-8, else Latin-1).
    2. After stripping ``%`` comments, a document is kept when: it has ``\\begin{document}``; it has a display-math
       block (``equation``, ``align``, ``gather``, ``multline``, ``eqnarray``, ``displaymath``, ``flalign``,
       ``alignat``, ``dmath``, ``math``, ``\\[…\\]``, ``$$…$$``, non-empty, a match over 4,000 characters being an
       unbalanced delimiter) or at least 20 math-looking inline ``$…$`` spans; ``math_density`` (display + inline
       spans per 1,000 body characters, the body running from ``\\begin{document}``) >= 1; the body has >= 500
       characters; ``prose_fraction`` (letters of words outside commands and math per body character) >= 0.08.
    3. Exact duplicates (whitespace-normalised sha256) and near duplicates (MinHash over word 5-grams, 128
       permutations, LSH 32x4, estimated Jaccard >= 0.8) are dropped, keeping the first in package, then path,
       order. Records (package, then path order) are written as one gzip (mtime 0) jsonl with the fields of
       ``latex/README.md``: ``path_in_package``, ``package``, ``package_version``, ``tl_package``,
       ``licence_hint`` (from the package's ``Licenses.gz``), ``encoding``, ``lang_hint``, ``body_chars``,
       ``n_display``, ``n_inline``, ``math_density``, ``prose_fraction``, ``n_eqenv``, ``n_theorem``, ``text``.

    The selection reproduces the reference file's documents only approximately (its inline-span and language
    rules are not fully documented): see docs/DATA.md for the measured overlap.
    """
    chosen = [(p, v) for p, v in LATEX_PACKAGES if packages is None or p in packages]
    unknown = set(packages or ()) - {p for p, _ in chosen}
    if unknown:
        raise ValueError(f"unknown LaTeX package(s) {sorted(unknown)}; valid: {[p for p, _ in LATEX_PACKAGES]}")
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="dsm_latex_")) if own_tmp else Path(workdir)
    try:
        debs = apt_download([(p, None if any_version else v) for p, v in chosen], work / "debs")
        triples = [(p, deb_version(d), d) for (p, _), d in zip(chosen, debs)]
        docs, seen = latex_candidates(triples)
        kept, dups = dedup_latex(docs)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        dest = out / "tex_docs.jsonl.gz"
        tmp = dest.with_name(dest.name + ".part")
        with open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
            for d in kept:
                gz.write((json.dumps(d, ensure_ascii=False) + "\n").encode("utf-8"))
        os.replace(tmp, dest)
        return {"documents": len(kept), "characters": sum(len(d["text"]) for d in kept), "selected": len(docs),
                **seen, **dups, "files": [str(dest)]}
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def build_dataset(name: str, root: str | os.PathLike | None = None, **kw) -> dict[str, Any]:
    """Build data set ``name`` (``minicc`` or ``latex``) into the data dir and check it against :data:`EXPECTED`."""
    if name not in BUILDERS:
        raise ValueError(f"unknown data set {name!r}; valid: {sorted(BUILDERS)}")
    base = data_dir(root)
    out = base / BUILDERS[name]
    print(f"build {name} -> {out} (apt-get download + dpkg-deb -x)", file=sys.stderr)
    stats = build_minicc(out, **kw) if name == "minicc" else build_latex(out, **kw)
    if not kw:
        bad = [f.relpath for f in EXPECTED
               if f.url == f"build:{name}" and f.accepts(sha256_of(base / f.relpath)) is False]
        stats["differs_from_expected"] = bad
        if bad:
            print(f"warning: built {name} differs from the reference copy in {bad} (package versions?)",
                  file=sys.stderr)
    return stats



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsm_utils.data", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["check", "fetch", "build", "where"])
    ap.add_argument("name", nargs="?", help=f"for build: one of {sorted(BUILDERS)}")
    ap.add_argument("--data-dir", default=None, help=f"overrides ${ENV_VAR}")
    ap.add_argument("--overwrite", action="store_true", help="fetch: replace files that are not as expected")
    ap.add_argument("--no-build", action="store_true", help="fetch: only download, do not build from Debian")
    ap.add_argument("--any-version", action="store_true",
                    help="build: use the archive's current package versions when a pinned one is gone")
    ap.add_argument("--quiet", action="store_true", help="check: print only what is wrong")
    args = ap.parse_args(argv)
    base = data_dir(args.data_dir)
    if args.command == "where":
        print(base)
        return 0
    if args.command == "build":
        if args.name not in BUILDERS:
            ap.error(f"build needs a data set name: one of {sorted(BUILDERS)}")
        try:
            stats = build_dataset(args.name, base, **({"any_version": True} if args.any_version else {}))
        except (DataError, ValueError, OSError, subprocess.SubprocessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({k: v for k, v in stats.items() if k != "files"}))
        return 0
    if args.command == "fetch":
        try:
            fetch(base, args.overwrite, build=not args.no_build)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    rows = check(base)
    for r in rows:
        flag = "ok " if r["ok"] else "MISSING" if not r["present"] else "SHA256?" if r["sha256_ok"] is False else "COUNT?"
        if not (args.quiet and r["ok"]):
            print(f"{flag:8s} {r['file']:70s} {r['records'] if r['records'] is not None else '-':>6} {r['what']}")
    if not all(r["ok"] for r in rows):
        print(f"error: data dir {base} is incomplete:\n{missing_report(rows, base)}", file=sys.stderr)
        return 1
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
