"""Data dir setting, jsonl reading with file:line errors, missing-file errors, tracking helpers."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dsm_utils import data, tracking


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
    got = tracking.load_run(tmp_path / "r")
    assert got["params"] == params
    assert got["metrics"]["acc"] == 0.5 and got["metrics"]["curve"] == [0, 1, 2] and got["metrics"]["nan"] is None
    assert got["metrics"]["more"] == 1
    assert run.sibling("05_sft") == tmp_path / "05_sft"
    # a new run in the same folder drops stale metrics
    tracking.start_run(tmp_path / "r", params)
    assert tracking.load_run(tmp_path / "r")["metrics"] == {}


def test_malformed_json_names_file(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{\n 'a': 1}")
    with pytest.raises(ValueError, match=r"m\.json:2"):
        tracking.read_json(p)


def test_fetch_downloads_each_public_file_atomically(monkeypatch, tmp_path):
    import urllib.request

    calls = []

    def fake_retrieve(url, dest):
        calls.append(url)
        Path(dest).write_text('{"x": 1}\n')

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_retrieve)
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # no hub: MATH train is skipped, not fatal
    got = data.fetch(tmp_path)
    https = [f for f in data.EXPECTED if f.url.startswith("https://") and f.relpath != "math/train.jsonl"]
    assert len(got) == len(https) == len(calls)
    assert all((tmp_path / f.relpath).read_text() == '{"x": 1}\n' for f in https)
    assert not list(tmp_path.rglob("*.part"))
    assert data.fetch(tmp_path) == []  # existing files are kept


def test_corpus_texts_reads_text_fields(tmp_path):
    from dsm_utils import sources

    p = data.write_jsonl(tmp_path / "c.jsonl.gz", [{"text": "a" * 10}, {"text": ""}, {"text": "b" * 10}])
    assert list(sources.corpus_texts(p)) == ["a" * 10, "b" * 10]
    assert list(sources.corpus_texts(p, max_chars=5)) == ["a" * 10]
