"""The runner: execute the numbered notebooks of a profile with papermill.

    python -m dsm_utils.run --profile {smoke,cpu,gpu,cluster} [--only 05,06] [--set 05_sft.steps=100 ...]

Each notebook ``notebooks/NN_name.ipynb`` runs (kernel ``python3``, cwd = repo root) into
``runs/<profile>/NN_name/``: the executed notebook, ``params.json``, ``metrics.json`` and figures.
Before anything executes, every key of ``params/<profile>/NN_name.yaml`` and of ``--set`` is checked
against the notebook's ``parameters`` cell (papermill itself only warns about unknown keys): an
unknown key or a wrong type is an error naming the key, the file and the valid keys. The run stops
at the first failing notebook and prints its failing cell and error in a few lines.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import REPO_ROOT

PROFILES = ("smoke", "cpu", "gpu", "cluster")
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
RUNS_DIR = REPO_ROOT / "runs"


def _yaml_loader():
    """A YAML safe loader that also reads ``1e-3`` as a float (plain YAML 1.1 reads it as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))
    return Loader


def yaml_load(text: str):
    """Parse YAML with :func:`_yaml_loader` (so profile files may write ``lr: 1e-6``)."""
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass


class ParameterError(ValueError):
    """A profile file or ``--set`` names an unknown parameter or gives it a wrong type."""


@dataclass
class Notebook:
    """A numbered notebook and the defaults of its ``parameters`` cell."""

    path: Path
    defaults: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


def parameters_source(nb_path: Path) -> str:
    """Source of the cell tagged ``parameters`` (exactly one must exist)."""
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{nb_path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def parse_parameters(source: str, where: str = "<parameters cell>") -> dict[str, Any]:
    """Parse ``name = <literal>`` lines of a parameters cell into ``{name: default}``.

    Only literal assignments are allowed, so defaults (and hence the valid keys and types) are known
    without executing the notebook.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{where}: line {exc.lineno}: syntax error in the parameters cell") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            raise ParameterError(f"{where}: line {node.lineno}: only `name = <literal>` assignments are allowed")
        try:
            out[target] = ast.literal_eval(value)
        except ValueError:
            raise ParameterError(f"{where}: line {node.lineno}: value of {target!r} is not a literal") from None
    return out


def discover(only: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Notebook]:
    """Numbered notebooks in order, optionally filtered by number/name prefixes (``["05", "06"]``)."""
    paths = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [o.strip() for o in only if o.strip()]
        unknown = [o for o in wanted if not any(p.stem.startswith(o) for p in paths)]
        if unknown:
            raise ParameterError(f"--only {','.join(unknown)}: no such notebook; have {[p.stem for p in paths]}")
        paths = [p for p in paths if any(p.stem.startswith(o) for o in wanted)]
    return [Notebook(p, parse_parameters(parameters_source(p), str(p))) for p in paths]


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True  # None means "unset/any" in a parameters cell; None as override resets to unset
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_overrides(nb: Notebook, overrides: dict[str, Any], source: str) -> None:
    """Raise :class:`ParameterError` naming the key, ``source`` and the valid keys on a bad override."""
    valid = sorted(nb.defaults)
    for key, value in overrides.items():
        if key not in nb.defaults:
            raise ParameterError(f"{source}: unknown parameter {key!r} for notebook {nb.name}; "
                                 f"valid keys: {', '.join(valid)}")
        if not _type_ok(nb.defaults[key], value):
            raise ParameterError(f"{source}: parameter {key!r} of {nb.name} must be "
                                 f"{type(nb.defaults[key]).__name__} (default {nb.defaults[key]!r}), "
                                 f"got {type(value).__name__} {value!r}")


def load_profile(profile: str, nb: Notebook, params_dir: Path = PARAMS_DIR) -> tuple[dict[str, Any], str]:
    """Overrides of ``params/<profile>/<notebook>.yaml`` (empty if the file is absent) and the file's name."""
    import yaml

    path = params_dir / profile / f"{nb.name}.yaml"
    if not path.exists():
        return {}, str(path)
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ParameterError(f"{path}:{line} invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter: value, got {type(data).__name__}")
    return data, str(path)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["05_sft.steps=100"]`` → ``{"05_sft": {"steps": 100}}`` (values parsed as YAML scalars/lists)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ParameterError(f"--set {item!r}: expected notebook.key=value, e.g. 05_sft.steps=100")
        lhs, raw = item.split("=", 1)
        nb, key = lhs.split(".", 1)
        try:
            value = yaml_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(nb, {})[key] = value
    return out


def resolve(profile: str, notebooks: list[Notebook], sets: dict[str, dict[str, Any]],
            runs_dir: Path = RUNS_DIR, params_dir: Path = PARAMS_DIR) -> list[tuple[Notebook, dict[str, Any]]]:
    """Validated parameters for every notebook (profile file, then ``--set``, then ``run_dir``)."""
    if profile not in PROFILES:
        raise ParameterError(f"--profile {profile!r}: valid profiles are {', '.join(PROFILES)}")
    by_name = {nb.name: nb for nb in notebooks}
    for key in sets:
        matches = [n for n in by_name if n == key or n.split("_", 1)[0] == key]
        if not matches:
            raise ParameterError(f"--set {key}.…: no selected notebook named {key!r}; selected: {sorted(by_name)}")
    plan = []
    for nb in notebooks:
        prof, src = load_profile(profile, nb, params_dir)
        check_overrides(nb, prof, src)
        cli = {}
        for key, vals in sets.items():
            if key in (nb.name, nb.number):
                cli.update(vals)
        check_overrides(nb, cli, "--set")
        params = {**prof, **cli}
        if "run_dir" in nb.defaults:
            params["run_dir"] = str((runs_dir / profile / nb.name).relative_to(REPO_ROOT)
                                    if runs_dir.is_relative_to(REPO_ROOT) else runs_dir / profile / nb.name)
        plan.append((nb, params))
    return plan


def _failure_summary(exc: Exception, nb: Notebook, out_nb: Path) -> str:
    """A few lines: which notebook, which cell, which error."""
    lines = [f"FAILED {nb.name} (executed notebook: {out_nb})"]
    cell = getattr(exc, "exec_count", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    src = ""
    try:
        import nbformat

        done = nbformat.read(str(out_nb), as_version=4)
        for c in done.cells:
            if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", [])):
                src = c.source
                cell = c.get("execution_count", cell)
                break
    except Exception:  # noqa: BLE001 - the summary must never hide the original error
        pass
    lines.append(f"  cell [{cell}]:")
    lines += ["    " + s for s in src.strip().splitlines()[-6:]]
    lines.append(f"  {ename}: {str(evalue).strip().splitlines()[-1] if str(evalue).strip() else ''}")
    return "\n".join(lines)


def execute(plan: list[tuple[Notebook, dict[str, Any]]], profile: str, runs_dir: Path = RUNS_DIR,
            kernel: str = "python3", log_output: bool = False) -> int:
    """Run the plan in order; returns 0, or 1 at the first failing notebook (after printing why)."""
    import papermill as pm
    from tqdm.auto import tqdm

    bar = tqdm(plan, desc=f"profile {profile}", unit="notebook")
    for nb, params in bar:
        bar.set_postfix_str(nb.name)
        out_dir = runs_dir / profile / nb.name
        out_dir.mkdir(parents=True, exist_ok=True)  # papermill does not create output folders
        out_nb = out_dir / f"{nb.name}.ipynb"
        t0 = time.time()
        try:
            pm.execute_notebook(str(nb.path), str(out_nb), parameters=params, kernel_name=kernel,
                                cwd=str(REPO_ROOT), progress_bar=False, log_output=log_output)
        except Exception as exc:  # noqa: BLE001 - papermill raises several types; all stop the run
            bar.close()
            print(_failure_summary(exc, nb, out_nb), file=sys.stderr)
            return 1
        tqdm.write(f"ok {nb.name} in {time.time() - t0:.1f}s -> {out_dir.relative_to(REPO_ROOT) if out_dir.is_relative_to(REPO_ROOT) else out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsm_utils.run", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    ap.add_argument("--only", default="", help="comma-separated notebook numbers or names, e.g. 05,06")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NB.KEY=VALUE",
                    help="override a parameter, e.g. --set 05_sft.steps=100 (repeatable)")
    ap.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders go (default runs/)")
    ap.add_argument("--dry-run", action="store_true", help="validate and print the resolved parameters only")
    ap.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    args = ap.parse_args(argv)
    try:
        notebooks = discover(args.only.split(",") if args.only else None)
        if not notebooks:
            raise ParameterError(f"no numbered notebooks found in {NOTEBOOK_DIR}")
        runs_dir = Path(args.runs_dir).resolve()
        plan = resolve(args.profile, notebooks, parse_sets(args.sets), runs_dir=runs_dir)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps({nb.name: p for nb, p in plan}, indent=2))
        return 0
    return execute(plan, args.profile, runs_dir=runs_dir, log_output=args.log_output)


if __name__ == "__main__":
    raise SystemExit(main())
