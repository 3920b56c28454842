"""The runner: parameter validation errors name the key, the file and the valid keys; failures are summarised."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dsm_utils import run as runner

REPO = Path(__file__).resolve().parent.parent


def _nb(tmp: Path, name: str, params: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p, nbformat.v4.new_code_cell(body)]
    path = tmp / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_parse_parameters_literals_only():
    got = runner.parse_parameters("a = 1\nb: float = 0.5\nc = 'x'  # comment\nd = [1, 2]\ne = None\nf = True")
    assert got == {"a": 1, "b": 0.5, "c": "x", "d": [1, 2], "e": None, "f": True}
    with pytest.raises(runner.ParameterError, match="line 2"):
        runner.parse_parameters("a = 1\nb = a + 1")
    with pytest.raises(runner.ParameterError, match="only `name = <literal>`"):
        runner.parse_parameters("import os")


def test_unknown_key_names_key_file_and_valid_keys():
    nb = runner.Notebook(Path("00_setup.ipynb"), {"seed": 0, "lr": 0.1, "name": "x", "flag": False, "xs": [1]})
    with pytest.raises(runner.ParameterError) as e:
        runner.check_overrides(nb, {"sede": 1}, "params/smoke/00_setup.yaml")
    msg = str(e.value)
    assert "'sede'" in msg and "params/smoke/00_setup.yaml" in msg and "flag, lr, name, seed, xs" in msg


@pytest.mark.parametrize("key,value", [("seed", "3"), ("seed", 1.5), ("flag", 1), ("seed", True), ("name", 3),
                                       ("xs", "a")])
def test_wrong_type_is_an_error(key, value):
    nb = runner.Notebook(Path("00_setup.ipynb"), {"seed": 0, "lr": 0.1, "name": "x", "flag": False, "xs": [1]})
    with pytest.raises(runner.ParameterError, match=repr(key)):
        runner.check_overrides(nb, {key: value}, "--set")


def test_int_accepted_for_float_and_none_default_accepts_anything():
    nb = runner.Notebook(Path("00_setup.ipynb"), {"lr": 0.1, "ckpt": None})
    runner.check_overrides(nb, {"lr": 1, "ckpt": "runs/x"}, "--set")


def test_parse_sets_typed_values_and_errors():
    assert runner.parse_sets(["05_sft.steps=100", "05_sft.lr=1e-3", "06.name=abc", "06.xs=[1,2]"]) == {
        "05_sft": {"steps": 100, "lr": 1e-3}, "06": {"name": "abc", "xs": [1, 2]}}
    with pytest.raises(runner.ParameterError, match="notebook.key=value"):
        runner.parse_sets(["steps=100"])


def test_bad_yaml_profile_names_file(tmp_path: Path):
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "00_x.yaml").write_text("a: [1, 2\n")
    nb = runner.Notebook(tmp_path / "00_x.ipynb", {"a": [1]})
    with pytest.raises(runner.ParameterError, match="00_x.yaml"):
        runner.load_profile("smoke", nb, tmp_path)
    (tmp_path / "smoke" / "00_x.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(runner.ParameterError, match="expected a mapping"):
        runner.load_profile("smoke", nb, tmp_path)


def test_resolve_sets_run_dir_and_rejects_unknown_profile():
    nbs = runner.discover(["00"])
    plan = runner.resolve("smoke", nbs, {"00_setup": {"seed": 3}})
    nb, params = plan[0]
    assert params["run_dir"] == "runs/smoke/00_setup" and params["seed"] == 3
    with pytest.raises(runner.ParameterError, match="valid profiles"):
        runner.resolve("laptop", nbs, {})
    with pytest.raises(runner.ParameterError, match="no such notebook"):
        runner.discover(["77"])


def test_cli_unknown_key_fails_before_running():
    r = subprocess.run([sys.executable, "-m", "dsm_utils.run", "--profile", "smoke", "--set", "00_setup.nonexistent=1"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "'nonexistent'" in r.stderr and "--set" in r.stderr and "valid keys" in r.stderr
    assert "sanity_steps" in r.stderr


def test_failing_notebook_is_summarised(tmp_path: Path, capsys):
    path = _nb(tmp_path, "00_boom", "run_dir = 'x'\ndata_dir = ''\nn = 1", "x = 1\nraise ValueError(f'boom {n}')")
    nb = runner.Notebook(path, runner.parse_parameters("run_dir = 'x'\ndata_dir = ''\nn = 1"))
    rc = runner.execute([(nb, {"n": 7})], "smoke", runs_dir=tmp_path / "runs")
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAILED 00_boom" in err and "ValueError" in err and "boom 7" in err and "raise ValueError" in err
    assert (tmp_path / "runs" / "smoke" / "00_boom" / "00_boom.ipynb").exists()
