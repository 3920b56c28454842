"""Repository hygiene: notebooks stripped and paired, one parameters cell, valid profile keys, env files agree."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from dsm_utils import run as runner

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLANNED = ["00_setup", "01_math_corpus", "02_corpus_comparison", "03_pretrain_code_to_math", "04_ablation_arxiv",
           "05_sft", "06_grpo", "07_unified_paradigm", "08_evaluation", "09_paper_tables_and_figures"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no numbered notebooks"
    assert (REPO / "notebooks" / "00_setup.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_name_is_planned(nb_path: Path):
    assert nb_path.stem in PLANNED, f"{nb_path.name}: notebook names are fixed: {PLANNED}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stripped_and_kernel(nb_path: Path):
    nb = nbformat.read(str(nb_path), as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{nb_path.name}: kernelspec must be python3"
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert not c.get("outputs"), f"{nb_path.name} cell {i}: outputs must be stripped (make strip)"
            assert c.get("execution_count") is None, f"{nb_path.name} cell {i}: execution_count must be empty"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_first_with_run_and_data_dir(nb_path: Path):
    nb = nbformat.read(str(nb_path), as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{nb_path.name}: exactly one parameters cell, found {len(tagged)}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert tagged[0] == first_code, f"{nb_path.name}: the parameters cell must be the first code cell"
    defaults = runner.parse_parameters(nb.cells[tagged[0]].source, nb_path.name)
    assert "run_dir" in defaults and "data_dir" in defaults


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_jupytext_pair_in_sync(nb_path: Path):
    import jupytext

    py = nb_path.with_suffix(".py")
    assert py.exists(), f"{nb_path.name}: missing its .py:percent twin ({py.name}); run make pair"
    a = nbformat.read(str(nb_path), as_version=4)
    b = jupytext.read(str(py))
    sa = [(c.cell_type, c.source.strip()) for c in a.cells]
    sb = [(c.cell_type, c.source.strip()) for c in b.cells]
    assert sa == sb, f"{nb_path.name} and {py.name} differ; run `jupytext --sync {py}`"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_profile_has_a_params_file(nb_path: Path):
    for prof in runner.PROFILES:
        assert (REPO / "params" / prof / f"{nb_path.stem}.yaml").exists(), f"params/{prof}/{nb_path.stem}.yaml missing"


@pytest.mark.parametrize("profile", runner.PROFILES)
def test_every_profile_key_is_valid(profile: str):
    notebooks = runner.discover()
    plan = runner.resolve(profile, notebooks, {})  # raises ParameterError naming key and file
    assert len(plan) == len(notebooks)
    names = {nb.name for nb in notebooks}
    for f in (REPO / "params" / profile).glob("*.yaml"):
        assert f.stem in names, f"{f}: no notebook named {f.stem}"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert len(pip) == 1, "environment.yml installs only the project; dependencies live in pyproject.toml"
    m = re.fullmatch(r"-e \.\[(.+)\]", pip[0].strip())
    assert m, f"environment.yml pip entry must be `-e .[extras]`, got {pip[0]!r}"
    extras = set(m.group(1).split(","))
    optional = _pyproject()["project"]["optional-dependencies"]
    assert extras <= set(optional), f"environment.yml names unknown extras {extras - set(optional)}"
    # Everything but the GPU-only extra is installed by environment.yml, as by `make test`.
    assert extras == set(optional) - {"gpu"}
    makefile = (REPO / "Makefile").read_text()
    assert "EXTRAS := " + ",".join(sorted(extras, key=["notebooks", "rl", "corpus", "test"].index)) in makefile


def test_pyproject_requires_what_the_package_imports():
    names = {re.split(r"[<>=\[ ]", d)[0].lower().replace("-", "_") for d in _pyproject()["project"]["dependencies"]}
    for needed in ("torch", "transformers", "tokenizers", "pandas", "matplotlib", "tqdm", "pyyaml", "sympy"):
        assert needed in names


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in ci and "set -euo pipefail" in ci


# --------------------------------------------------------------------------------------------------
# round trips: `make pair` / `make strip`, and saving from JupyterLab, change nothing in git


def _recipe(target: str) -> list[str]:
    """The shell lines of a Makefile target, with $(BIN) pointing at this environment's scripts."""
    import sys

    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"{target}:", ln))
    out = []
    for ln in lines[start + 1:]:
        if not ln.startswith("\t"):
            break
        out.append(ln.strip().replace("$(BIN)", str(Path(sys.executable).parent)))
    assert out, f"Makefile target {target} has no recipe"
    return out


def _run_recipe(target: str, cwd: Path) -> None:
    import subprocess

    for line in _recipe(target):
        r = subprocess.run(line, shell=True, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"make {target}: {line!r} failed: {r.stderr[-800:]}"


def _copy_notebooks(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return tmp_path / "notebooks"


def _changed(copy: Path) -> list[str]:
    return sorted(p.name for p in copy.iterdir() if p.is_file()
                  and p.read_bytes() != (REPO / "notebooks" / p.name).read_bytes())


@pytest.mark.parametrize("target", ["pair", "strip"])
def test_make_pair_and_strip_change_nothing_on_a_clean_checkout(tmp_path: Path, target: str):
    copy = _copy_notebooks(tmp_path)
    _run_recipe(target, tmp_path)
    assert _changed(copy) == [], f"`make {target}` rewrites these committed files: {_changed(copy)}"


def test_saving_from_jupyterlab_then_make_strip_restores_the_committed_notebook(tmp_path: Path):
    """JupyterLab saves outputs, execution counts and the kernel's language_info; `make strip` must undo all."""
    copy = _copy_notebooks(tmp_path)
    for p in sorted(copy.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(p), as_version=4)
        nb.metadata["language_info"] = {"codemirror_mode": {"name": "ipython", "version": 3}, "name": "python",
                                        "version": "3.11.7", "file_extension": ".py", "mimetype": "text/x-python"}
        for c in nb.cells:
            if c.cell_type == "code":
                c.execution_count = 1
                c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
        nbformat.write(nb, str(p))
    _run_recipe("strip", tmp_path)
    assert _changed(copy) == [], f"after a JupyterLab save, `make strip` leaves changes in {_changed(copy)}"


def test_opening_the_py_twin_through_jupytext_and_saving_changes_nothing(tmp_path: Path):
    import jupytext

    copy = _copy_notebooks(tmp_path)
    for py in sorted(copy.glob("[0-9][0-9]_*.py")):
        nb = jupytext.read(str(py))
        jupytext.write(nb, str(py), fmt="py:percent")
    assert _changed(copy) == [], f"jupytext read + write rewrites {_changed(copy)}"
