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


def test_choices_from_comments_are_checked_with_the_valid_list(tmp_path: Path):
    src = ('backend = "hf"  # one of: "hf", "vllm"\n'
           'modes = ["cot"]  # each one of: "cot", "tool"; the modes to run\n'
           'n_shot = {"a": 1}  # each one of: "a", "b"\n'
           'seed = 0  # a plain comment\n')
    assert runner.parse_choices(src) == {"backend": ("one", ["hf", "vllm"]), "modes": ("each", ["cot", "tool"]),
                                         "n_shot": ("each", ["a", "b"])}
    nb = runner.Notebook(Path("05_x.ipynb"), runner.parse_parameters(src), runner.parse_choices(src))
    runner.check_overrides(nb, {"backend": "vllm", "modes": ["tool", "cot"], "n_shot": {"b": 2}}, "--set")
    with pytest.raises(runner.ParameterError, match=r"'backend' of 05_x is 'trl', not one of: 'hf', 'vllm'"):
        runner.check_overrides(nb, {"backend": "trl"}, "params/cpu/05_x.yaml")
    with pytest.raises(runner.ParameterError, match=r"has 'pot', not among the valid choices: 'cot', 'tool'"):
        runner.check_overrides(nb, {"modes": ["cot", "pot"]}, "--set")
    with pytest.raises(runner.ParameterError, match=r"has 'c'"):
        runner.check_overrides(nb, {"n_shot": {"c": 1}}, "--set")
    with pytest.raises(runner.ParameterError, match="cannot read the choices of 'x'"):
        runner.parse_choices('x = "a"  # one of: a, b\n')
    bad = _nb(tmp_path, "00_bad", 'run_dir = "x"\ndata_dir = ""\nmode = "typo"  # one of: "a", "b"', "pass")
    with pytest.raises(runner.ParameterError, match="the default of 'mode' is 'typo'"):
        runner.load_notebook(bad)


@pytest.mark.parametrize("default,value,msg", [
    ([1, 2], [1, "x"], "element 1 must be int"),
    (["a"], ["b", 3], "element 1 must be str"),
    ([0.5], [1, "2"], "element 1 must be float"),
    ({"k": 1}, {"k": "1"}, "value of key 'k' must be int"),
    ({"k": [1]}, {"k": 2}, "value of key 'k' must be list"),
    ({"k": 1}, {3: 1}, "key 3 must be str"),
])
def test_element_types_of_lists_and_dicts(default, value, msg):
    nb = runner.Notebook(Path("00_x.ipynb"), {"p": default})
    with pytest.raises(runner.ParameterError, match=msg):
        runner.check_overrides(nb, {"p": value}, "--set")


def test_element_types_accept_what_they_should():
    nb = runner.Notebook(Path("00_x.ipynb"), {"xs": [0.5, 1], "e": [], "d": {}, "mixed": [1, "a"], "f": {"a": 0.1}})
    runner.check_overrides(nb, {"xs": [1, 2.5], "e": ["anything", 3], "d": {"a": [1]}, "mixed": [None, 2.0],
                                "f": {"b": 2}}, "--set")


def test_runner_marks_a_successful_notebook_complete(tmp_path: Path):
    path = _nb(tmp_path, "00_ok", "run_dir = 'x'\ndata_dir = ''\nn = 1", "print(n)")
    nb = runner.load_notebook(path)
    assert runner.execute([(nb, {"n": 2})], "smoke", runs_dir=tmp_path / "runs") == 0
    assert (tmp_path / "runs" / "smoke" / "00_ok" / "done.json").exists()
    fail = _nb(tmp_path, "00_no", "run_dir = 'x'\ndata_dir = ''", "raise SystemExit('no')")
    assert runner.execute([(runner.load_notebook(fail), {})], "smoke", runs_dir=tmp_path / "runs") == 1
    assert not (tmp_path / "runs" / "smoke" / "00_no" / "done.json").exists()


def test_our_notebooks_parse_without_papermill_warnings():
    """papermill reads a parameters cell line by line; a comment with '=' makes it warn 'Unable to parse line'."""
    from papermill.translators import PythonTranslator

    for nb in runner.discover():
        cell = {"source": runner.parameters_source(nb.path)}
        names = {p.name for p in PythonTranslator.inspect(cell)}
        assert names == set(nb.defaults), f"{nb.name}: papermill reads {sorted(names ^ set(nb.defaults))} differently"
