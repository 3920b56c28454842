"""Where benchmarks and corpora live (``DSM_DATA_DIR``), reading them safely, and fetching originals.

One setting locates every data file: the environment variable ``DSM_DATA_DIR`` (default ``./data``,
relative paths resolved against the repository root). CI and development use ``../shared/data``.
``python -m dsm_utils.data fetch`` downloads the public originals for users who are online;
``python -m dsm_utils.data check`` lists every expected file with its record count.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
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
    """One expected file under the data dir: where it comes from and how many records it has."""

    relpath: str
    records: int | None  # jsonl(.gz) line count; None for binary files (WARC shards)
    url: str  # public original that `fetch` downloads
    what: str


_DSM = "https://raw.githubusercontent.com/deepseek-ai/DeepSeek-Math/b8b0f8ce093d80bf8e9a641e44142f06d092c305/evaluation/datasets/"
_GSM = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/"
_ZG = "https://raw.githubusercontent.com/ZubinGou/math-evaluation-harness/db77bc6bb2a17c90ed2d63e88ebd8c40a82858c5/data/"
_DOLMA = "https://raw.githubusercontent.com/allenai/dolma/"
_WW = "https://raw.githubusercontent.com/commoncrawl/whirlwind-python/08dcfbe4d579a7b1ee27e7ce39a019de6292c1c7/"

#: Every file the notebooks read, with its documented record count (see the data dir's README).
EXPECTED: tuple[DataFile, ...] = (
    DataFile("gsm8k/test.jsonl", 1319, _DSM + "gsm8k/test.jsonl", "GSM8K test (DeepSeek-Math copy)"),
    DataFile("gsm8k/openai_test.jsonl", 1319, _GSM + "test.jsonl", "GSM8K test (OpenAI original)"),
    DataFile("gsm8k/openai_train.jsonl", 7473, _GSM + "train.jsonl", "GSM8K train"),
    DataFile("math/test.jsonl", 5000, _ZG + "math/test.jsonl", "MATH test (5000)"),
    DataFile("math/math500_test.jsonl", 500, _ZG + "math_oai/test.jsonl", "MATH-500"),
    DataFile("math/train.jsonl", 7500, "hf://datasets/EleutherAI/hendrycks_math", "MATH train (7500)"),
    DataFile("cmath/test.jsonl", 1098, _DSM + "cmath/test.jsonl", "CMATH test"),
    DataFile("mgsm_zh/mgsm_zh.jsonl", 250, _DSM + "mgsm_zh/mgsm_zh.jsonl", "MGSM-zh"),
    DataFile("agieval/gaokao-mathcloze.jsonl", 118, _DSM + "agieval/gaokao-mathcloze.jsonl", "Gaokao-MathCloze"),
    DataFile("agieval/gaokao-mathqa.jsonl", 351, _DSM + "agieval/gaokao-mathqa.jsonl", "Gaokao-MathQA"),
    DataFile("ocw/test.jsonl", 272, _DSM + "ocw/test.jsonl", "OCW Courses"),
    DataFile("sat/test.jsonl", 32, _DSM + "sat/test.jsonl", "SAT math"),
    DataFile("mmlu_stem/test.jsonl", 3018, _DSM + "mmlu_stem/test.jsonl", "MMLU-STEM"),
    DataFile("minif2f/test.jsonl", 244, _DSM + "minif2f/test.jsonl", "miniF2F test"),
    DataFile("minif2f/validation.jsonl", 244, _DSM + "minif2f/validation.jsonl", "miniF2F validation"),
    DataFile(
        "web/cc_wet_text/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
        697,
        _DOLMA + "937ccc06f6fa4cefba496b2f48cc77418b941345/tests/data/formats/gz/"
        "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
        "random Common Crawl page texts (negatives)",
    ),
    DataFile("web/warc/dolma-sample-0000.warc.gz", None,
             _DOLMA + "669f534823b08d266a8fff01f8a1c916a5a56576/tests/data/warc/sample-0000.warc.gz", "CC WARC sample"),
    DataFile("web/warc/dolma-sample-0001.warc.gz", None,
             _DOLMA + "669f534823b08d266a8fff01f8a1c916a5a56576/tests/data/warc/sample-0001.warc.gz", "CC WARC sample"),
    DataFile("web/warc/whirlwind.warc.gz", None, _WW + "whirlwind.warc.gz", "CC WARC record"),
    DataFile("web/minicc/labels.tsv", None, "(built locally: see web/README.md of the data dir)", "mini-CC labels"),
    DataFile("latex/tex_docs.jsonl.gz", None, "(see latex/README.md of the data dir)", "LaTeX articles"),
)


def require(relpath: str, root: str | os.PathLike | None = None) -> Path:
    """Return the path of ``relpath`` under the data dir, or raise a clear error naming it and how to get it."""
    base = data_dir(root)
    path = base / relpath
    if not path.exists():
        hint = next((f.url for f in EXPECTED if f.relpath == relpath), None)
        how = f"run `python -m dsm_utils.data fetch` (source: {hint})" if hint else "see the data dir's README"
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


def check(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Report each expected file: present?, record count, documented count."""
    base = data_dir(root)
    rows = []
    for f in EXPECTED:
        p = base / f.relpath
        n = count_records(p) if (p.exists() and f.records is not None) else None
        rows.append({"file": f.relpath, "present": p.exists(), "records": n, "expected": f.records,
                     "ok": p.exists() and (f.records is None or n == f.records), "what": f.what})
    return rows


def fetch(root: str | os.PathLike | None = None, overwrite: bool = False) -> list[Path]:
    """Download every expected file that has a plain URL into the data dir (needs internet)."""
    base = data_dir(root)
    got = []
    for f in EXPECTED:
        dest = base / f.relpath
        if dest.exists() and not overwrite:
            continue
        if not f.url.startswith("https://"):
            print(f"skip {f.relpath}: {f.url}", file=sys.stderr)
            continue
        if f.relpath == "math/train.jsonl":
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        print(f"fetch {f.url} -> {dest}")
        urllib.request.urlretrieve(f.url, tmp)  # noqa: S310 - fixed https URLs above
        os.replace(tmp, dest)
        got.append(dest)
    try:
        _fetch_math_train(base, overwrite)
    except Exception as exc:  # noqa: BLE001 - the hub may be unreachable; the other files are still useful
        print(f"skip math/train.jsonl: could not load it from the hub ({type(exc).__name__}: {exc})", file=sys.stderr)
    return got


def _fetch_math_train(base: Path, overwrite: bool) -> None:
    """MATH train has no single-file original; build it from the hub dataset when `datasets` is present."""
    dest = base / "math/train.jsonl"
    if dest.exists() and not overwrite:
        return
    try:
        from datasets import load_dataset  # type: ignore
    except ImportError:
        print("skip math/train.jsonl: `pip install datasets` and rerun to fetch MATH train", file=sys.stderr)
        return
    recs = []
    for cfg in ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                "number_theory", "prealgebra", "precalculus"):
        for r in load_dataset("EleutherAI/hendrycks_math", cfg, split="train"):
            recs.append({"problem": r["problem"], "level": r["level"], "type": r["type"], "solution": r["solution"]})
    write_jsonl(dest, recs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsm_utils.data", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["check", "fetch", "where"])
    ap.add_argument("--data-dir", default=None, help=f"overrides ${ENV_VAR}")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    if args.command == "where":
        print(data_dir(args.data_dir))
        return 0
    if args.command == "fetch":
        fetch(args.data_dir, args.overwrite)
    rows = check(args.data_dir)
    for r in rows:
        flag = "ok " if r["ok"] else "MISSING" if not r["present"] else "COUNT?"
        print(f"{flag:8s} {r['file']:70s} {r['records'] if r['records'] is not None else '-':>6} {r['what']}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
