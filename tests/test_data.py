"""Data dir setting, jsonl reading with file:line errors, missing-file errors, tracking helpers."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from dsm_utils import data, tracking
from dsm_utils import prompts as prompts_mod


def test_data_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DSM_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    assert data.data_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("DSM_DATA_DIR")
    assert data.data_dir().name == "data"


def test_every_expected_file_present_with_its_count(data_root):
    rows = data.check()
    bad = [r for r in rows if not r["ok"]]
    assert not bad, f"missing or wrong counts: {bad}"


def test_missing_file_error_names_file_and_remedy(monkeypatch, tmp_path):
    monkeypatch.setenv("DSM_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        data.require("gsm8k/test.jsonl")
    msg = str(e.value)
    assert "gsm8k/test.jsonl" in msg and "python -m dsm_utils.data fetch" in msg and "DSM_DATA_DIR" in msg


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(data.DataError, match=r"bad\.jsonl:3: malformed JSON"):
        data.read_jsonl(p)
    p.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(data.DataError, match=r"bad\.jsonl:2: expected a JSON object"):
        data.read_jsonl(p)


def test_jsonl_roundtrip_gz_and_atomic(tmp_path):
    recs = [{"x": i, "t": "é"} for i in range(5)]
    p = data.write_jsonl(tmp_path / "a.jsonl.gz", recs)
    assert data.read_jsonl(p) == recs
    with gzip.open(p, "rt") as fh:
        assert json.loads(fh.readline()) == recs[0]
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_check_exit_code(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DSM_DATA_DIR", str(tmp_path))
    assert data.main(["check"]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_run_folder_params_and_metrics(tmp_path):
    ns = {"seed": 1, "lr": 0.1, "name": "x", "In": [], "_hidden": 3, "mod": json, "xs": [1, 2]}
    params = tracking.notebook_params(ns)
    assert params == {"seed": 1, "lr": 0.1, "name": "x", "xs": [1, 2]}
    run = tracking.start_run(tmp_path / "r", params)
    import numpy as np

    run.log(acc=np.float32(0.5), curve=np.arange(3), nan=float("nan"))
    run.log(more=1)
    run.finish()
    got = tracking.load_run(tmp_path / "r")
    assert got["params"] == params
    assert got["metrics"]["acc"] == 0.5 and got["metrics"]["curve"] == [0, 1, 2] and got["metrics"]["nan"] is None
    assert got["metrics"]["more"] == 1
    assert run.sibling("05_sft") == tmp_path / "05_sft"
    # a new run in the same folder drops stale metrics
    tracking.start_run(tmp_path / "r", params)
    assert tracking.load_run(tmp_path / "r", require_complete_run=False)["metrics"] == {}


def test_malformed_json_names_file(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{\n 'a': 1}")
    with pytest.raises(ValueError, match=r"m\.json:2"):
        tracking.read_json(p)


# ------------------------------------------------------------------------------------------------ fetch (offline)
def _aw_tarball(rows: list[dict], path: Path) -> Path:
    """A stand-in for the aiwaves-cn/agents snapshot: one JSON file per MATH train problem, as upstream."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for r in reversed(rows):  # member order must not matter
            rec = {k: v for k, v in r.items() if k != "source_file"}
            blob = json.dumps(rec, indent=4).encode()
            info = tarfile.TarInfo(f"agents-{data.AW_COMMIT}/{data.AW_MATH_DIR}/{r['source_file'][6:]}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        info = tarfile.TarInfo(f"agents-{data.AW_COMMIT}/README.md")
        tar.addfile(info, io.BytesIO(b""))
    return path


def test_math_train_assembly_reproduces_the_reference_copy(data_root, tmp_path):
    # Given upstream's 7,500 one-problem files, the assembly gives the exact file the suite reads (sha256).
    rows = data.read_jsonl(data_root / "math/train.jsonl")
    blob = data.math_train_from_tarball(_aw_tarball(rows, tmp_path / "aw.tar.gz"))
    assert hashlib.sha256(blob).hexdigest() == data.expected_file("math/train.jsonl").sha256
    with pytest.raises(data.DataError, match="no src/agents/datasets/data/math/train"):
        data.math_train_from_tarball(_aw_tarball([], tmp_path / "empty.tar.gz"))


@pytest.fixture
def offline_sources(data_root, tmp_path, monkeypatch):
    """Serve every pinned URL from the reference copy (what the pinned commits hold), recording the calls."""
    by_url = {f.url: data_root / f.relpath for f in data.EXPECTED if f.url.startswith("https://")}
    by_url[data.AW_TARBALL] = _aw_tarball(data.read_jsonl(data_root / "math/train.jsonl"), tmp_path / "aw.tar.gz")
    prompts = json.loads((data_root / "prompts/deepseek_math_prompts.json").read_text())["prompts"]
    for name, entry in prompts.items():
        by_url[data._DSM + f"few_shot_prompts/{name}.py"] = tmp_path / f"{name}.py"
        (tmp_path / f"{name}.py").write_text(_prompt_module_source(entry))
    calls: list[str] = []

    def fake_urlopen(url, timeout=60.0):
        calls.append(url)
        if url not in by_url:
            raise OSError(f"unexpected URL {url}")
        return open(by_url[url], "rb")

    monkeypatch.setattr(data, "_urlopen", fake_urlopen)
    return by_url, calls


def test_fetch_gets_every_public_file_checked_and_names_what_it_cannot(offline_sources, tmp_path):
    by_url, calls = offline_sources
    dest = tmp_path / "fresh"
    with pytest.raises(data.DataError) as e:
        data.fetch(dest, build=False)
    downloadable = [f for f in data.EXPECTED if not f.url.startswith("build:")]
    built = [f for f in data.EXPECTED if f.url.startswith("build:")]
    assert len(calls) == len(downloadable) - 1 + len([n.removesuffix(".py") for n in prompts_mod.UPSTREAM_PROMPT_FILES]) and built
    rows = {r["file"]: r for r in data.check(dest)}
    assert all(rows[f.relpath]["ok"] and rows[f.relpath]["sha256_ok"] for f in downloadable)
    msg = str(e.value)
    for f in built:  # each file that could not be had is named with the command that gets it
        assert f"{dest / f.relpath}: not built; get it with `python -m dsm_utils.data build " in msg
    assert not list(dest.rglob("*.part"))
    calls.clear()
    with pytest.raises(data.DataError):
        data.fetch(dest, build=False)
    assert calls == []  # files that are as expected are not fetched again


def _prompt_module_source(entry: dict) -> str:
    """A module written the way DeepSeek-Math writes its few-shot prompt files, from one parsed entry."""
    consts = "".join(f"{k} = {v!r}\n" for k, v in entry["module_constants"].items()) or "few_shot_prompt = {}\n"
    args = ", ".join(entry["format_prompt_args"])
    return (f"from .few_shot_prompting import FewShotPrompting\n\n{consts}\nclass {entry['class']}(FewShotPrompting):\n"
            f"    def format_prompt(self, {args}):\n        tag = 'other'\n        prompt = f{entry['template']!r}\n"
            f"        return {entry['template_postprocess']}\n\n    def stop_words(self):\n"
            f"        return {entry['stop_words']!r}\n")


def test_prompts_file_is_derived_from_module_sources(data_root, tmp_path, monkeypatch):
    ref = json.loads((data_root / "prompts/deepseek_math_prompts.json").read_text())
    sources = {name: _prompt_module_source(e) for name, e in ref["prompts"].items()}
    assert sorted(sources) == sorted([n.removesuffix(".py") for n in prompts_mod.UPSTREAM_PROMPT_FILES])
    blob = data.prompts_json_from_sources(sources)
    assert hashlib.sha256(blob).hexdigest() == data.expected_file("prompts/deepseek_math_prompts.json").sha256
    # fetch reads each module from the pinned commit and writes the derived file (checked) atomically.
    urls = {data._DSM + f"few_shot_prompts/{n}.py": s.encode() for n, s in sources.items()}
    import io

    monkeypatch.setattr(data, "_urlopen", lambda url, timeout=60.0: io.BytesIO(urls[url]))
    out = data._fetch_prompts(tmp_path / "p.json", data.expected_file("prompts/deepseek_math_prompts.json").sha256)
    assert out.read_bytes() == blob
    urls[data._DSM + "few_shot_prompts/cot_gsm_8_shot.py"] = sources["cot_gsm_8_shot"].replace("Q:", "Question:").encode()
    with pytest.raises(data.DataError, match="sha256 of the file derived from"):
        data._fetch_prompts(tmp_path / "q.json", data.expected_file("prompts/deepseek_math_prompts.json").sha256)
    assert not (tmp_path / "q.json").exists()


def test_download_rejects_wrong_sha256_and_writes_nothing(tmp_path, monkeypatch):
    src = tmp_path / "src.jsonl"
    src.write_text('{"x": 1}\n')
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "a.jsonl"
    assert data._download(src.as_uri(), dest, good).read_text() == '{"x": 1}\n'  # a real file:// fetch
    dest.unlink()
    with pytest.raises(data.DataError, match=r"a\.jsonl: sha256 of file://.* expected 0{64}"):
        data._download(src.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_fetch_reports_unreachable_and_corrupt_files(data_root, tmp_path, monkeypatch, capsys):
    def offline(url, timeout=60.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_urlopen", offline)
    dest = tmp_path / "d"
    (dest / "gsm8k").mkdir(parents=True)
    (dest / "gsm8k/test.jsonl").write_text('{"question": "tampered"}\n')
    assert data.main(["fetch", "--no-build", "--data-dir", str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"{dest / 'math/test.jsonl'}: OSError: network unreachable; get it with `python -m dsm_utils.data fetch`" in err
    assert f"{dest / 'gsm8k/test.jsonl'}: present but not as expected" in err and "--overwrite" in err
    assert data.main(["check", "--quiet", "--data-dir", str(dest)]) == 1
    out = capsys.readouterr()
    assert "SHA256?" in out.out or "COUNT?" in out.out
    assert "get it with `python -m dsm_utils.data build minicc`" in out.err


def test_check_verifies_contents_not_only_counts(data_root, tmp_path):
    f = data.expected_file("sat/test.jsonl")
    (tmp_path / "sat").mkdir()
    lines = (data_root / f.relpath).read_text().splitlines(keepends=True)
    (tmp_path / f.relpath).write_text("".join(lines[:-1] + [lines[-1].replace("A", "B", 1)]))
    row = next(r for r in data.check(tmp_path) if r["file"] == f.relpath)
    assert row["records"] == f.records and row["sha256_ok"] is False and not row["ok"]


# ------------------------------------------------------------------------------------------------ Debian builds
_APT = shutil.which("apt-get") and shutil.which("dpkg-deb")
needs_apt = pytest.mark.skipif(not _APT, reason="needs apt-get and dpkg-deb (Debian/Ubuntu; CI has them)")


@needs_apt
def test_apt_missing_package_error_names_the_fix(tmp_path):
    with pytest.raises(data.AptError, match=r"apt-get download dsm-no-such-package=1\.0.*apt-get update"):
        data.apt_download([("dsm-no-such-package", "1.0")], tmp_path)


@needs_apt
def test_small_pool_built_from_debian_reads_through_the_corpus_pipeline(data_root, tmp_path):
    """Two small documentation packages -> WARC pool -> the corpus pipeline's first stage (extraction)."""
    import csv

    from dsm_utils import corpus

    out = tmp_path / "minicc"
    stats = data.build_minicc(out, packages=["python-mpmath-doc", "r-doc-html"], shards=2)
    assert stats["pages"] == 43 and stats["math_pages"] == 36, stats
    assert sorted(p.name for p in out.iterdir()) == ["labels.tsv", "minicc-0000.warc.gz", "minicc-0001.warc.gz"]
    labels = list(csv.DictReader(open(out / "labels.tsv"), delimiter="\t"))
    # Same pages, URLs and record ids as those packages' rows of the reference pool.
    ref = [r for r in csv.DictReader(open(data_root / "web/minicc/labels.tsv"), delimiter="\t")
           if r["package"] in ("python-mpmath-doc", "r-doc-html")]
    key = ("url", "domain", "package", "is_math_domain", "warc_record_id")
    assert sorted(tuple(r[k] for k in key) for r in labels) == sorted(tuple(r[k] for k in key) for r in ref)
    ex = tmp_path / "extracted"
    corpus.run_stage(corpus.extraction_pipeline(str(out), str(ex)), "local", tasks=1, workers=1,
                     logging_dir=str(tmp_path / "logs"))
    pages = list(corpus.iter_pages(ex))
    assert {p["url"] for p in pages} <= {r["url"] for r in labels} and len(pages) >= 40
    mp = next(p for p in pages if p["url"].endswith("mpmath.org/doc/1.2.1/functions/gamma.html"))
    assert "gamma" in mp["text"].lower() and mp["domain"] == "mpmath.org"


def test_corpus_texts_reads_text_fields(tmp_path):
    from dsm_utils import sources

    p = data.write_jsonl(tmp_path / "c.jsonl.gz", [{"text": "a" * 10}, {"text": ""}, {"text": "b" * 10}])
    assert list(sources.corpus_texts(p)) == ["a" * 10, "b" * 10]
    assert list(sources.corpus_texts(p, max_chars=5)) == ["a" * 10]


def test_make_gets_data_before_test_and_reproduce_and_never_hides_a_failure():
    import re

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    rules = dict(re.findall(r"^([a-z-]+):([^\n=]*)$", makefile, re.M))
    for target in ("test", "reproduce", "smoke"):
        assert "data-ready" in rules[target].split(), (target, rules[target])
    recipe = makefile.split("\ndata-ready:", 1)[1].split("\n\n", 1)[0]
    assert "dsm_utils.data check" in recipe and "dsm_utils.data fetch" in recipe
    assert "|| true" not in makefile and "-$(BIN)" not in makefile  # no ignored failure anywhere
