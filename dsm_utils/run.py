"""The runner: execute the numbered notebooks of a profile with papermill.

    python -m dsm_utils.run --profile {smoke,cpu,gpu,cluster} [--only 05,06] [--set 05_sft.steps=100 ...]

Each notebook ``notebooks/NN_name.ipynb`` runs (kernel ``python3``, cwd = repo root) into
``runs/<profile>/NN_name/``: the executed notebook, ``params.json``, ``metrics.json`` and figures.
Before anything executes, every key of ``params/<profile>/NN_name.yaml`` and of ``--set`` is checked
against the notebook's ``parameters`` cell (papermill itself only warns about unknown keys): an
unknown key or a wrong type (element types of lists and dicts included) is an error naming the key, the
file and the valid keys. An enumerated parameter says its choices in a comment on its line, which readers
see and the runner checks::

    backend = "hf"  # one of: "hf", "vllm"
    modes = ["zero_shot_cot", "tool"]  # each one of: "few_shot_cot", "few_shot_pot", "zero_shot_cot", "tool", "pot"

(``one of:`` for a scalar; ``each one of:`` for the elements of a list or the keys of a dict.) Comments in a
parameters cell hold no ``=`` sign, so papermill's own parser reads every line. The run stops at the first
failing notebook and prints its failing cell and error in a few lines. A notebook that succeeds gets its run
folder's completion marker (``done.json``) if it did not write it itself (:meth:`dsm_utils.tracking.Run.finish`).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
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
    """A numbered notebook, the defaults of its ``parameters`` cell and the choices of its enumerated ones."""

    path: Path
    defaults: dict[str, Any]
    choices: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)  # name -> ("one"|"each", values)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


def parameters_source(nb_path: Path) -> str:
    """Source of the cell tagged ``parameters`` (exactly one must exist).

    Read as plain JSON (importing nbformat costs ~2 s, which every notebook's setup cell would pay).
    """
    try:
        doc = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ParameterError(f"{nb_path}: cannot read the notebook ({exc})") from None
    cells = [c for c in doc.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{nb_path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    src = cells[0].get("source", "")
    return "".join(src) if isinstance(src, list) else src


_CHOICES_RE = re.compile(r"#.*?\b(each one of|one of):\s*(.+)$")


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line of ``source``."""
    import io
    import tokenize

    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def parse_choices(source: str, where: str = "<parameters cell>") -> dict[str, tuple[str, list[Any]]]:
    """The enumerated parameters of a parameters cell: ``{name: ("one" | "each", [choices])}``.

    Read from a comment on the assignment's last line: ``# one of: "a", "b"`` (the value is one of them) or
    ``# each one of: "a", "b"`` (every element of a list value, or every key of a dict value, is one of them).
    Text after the choices may follow a ``;``.
    """
    tree = ast.parse(source)
    comments = _comments(source)
    out: dict[str, tuple[str, list[Any]]] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if not isinstance(target, ast.Name):
            continue
        m = _CHOICES_RE.search(comments.get(node.end_lineno, ""))
        if not m:
            continue
        raw = m.group(2).split(";", 1)[0].strip()
        try:
            values = ast.literal_eval(f"[{raw}]")
        except (ValueError, SyntaxError):
            raise ParameterError(f"{where}: line {node.end_lineno}: cannot read the choices of {target.id!r} "
                                 f"({raw!r}); write them as literals: # one of: \"a\", \"b\"") from None
        out[target.id] = ("each" if m.group(1) == "each one of" else "one", values)
    return out


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


def load_notebook(nb_path: Path) -> Notebook:
    """A notebook with the defaults and choices of its parameters cell (defaults must obey their choices)."""
    src = parameters_source(nb_path)
    nb = Notebook(nb_path, parse_parameters(src, str(nb_path)), parse_choices(src, str(nb_path)))
    for key, value in nb.defaults.items():
        problem = _choice_problem(nb, key, value)
        if problem:
            raise ParameterError(f"{nb_path}: the default of {key!r} {problem}")
    return nb


def discover(only: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Notebook]:
    """Numbered notebooks in order, optionally filtered by number/name prefixes (``["05", "06"]``)."""
    paths = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [o.strip() for o in only if o.strip()]
        unknown = [o for o in wanted if not any(p.stem.startswith(o) for p in paths)]
        if unknown:
            raise ParameterError(f"--only {','.join(unknown)}: no such notebook; have {[p.stem for p in paths]}")
        paths = [p for p in paths if any(p.stem.startswith(o) for o in wanted)]
    return [load_notebook(p) for p in paths]


def _type_problem(default: Any, value: Any, where: str = "") -> str | None:
    """Why ``value`` does not have the type of ``default`` (None when it does); lists and dicts elementwise."""
    if default is None or value is None:
        return None  # None means "unset/any" in a parameters cell; None as override resets to unset
    want = type(default).__name__
    bad = f"{where or 'the value'} must be {want}, got {type(value).__name__} {value!r}"
    if isinstance(default, bool) or isinstance(value, bool):
        return None if isinstance(default, bool) and isinstance(value, bool) else bad
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) else bad
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return bad
        if default and len({_kind(d) for d in default}) == 1:  # a homogeneous default fixes the element type
            proto = _proto(default)
            for i, v in enumerate(value):
                p = _type_problem(proto, v, f"element {i}")
                if p:
                    return p
        return None
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return bad
        for k in value:
            if not isinstance(k, str):
                return f"key {k!r} must be str"
        if default and len({_kind(d) for d in default.values()}) == 1:
            proto = _proto(list(default.values()))
            for k, v in value.items():
                p = _type_problem(proto, v, f"value of key {k!r}")
                if p:
                    return p
        return None
    return None if isinstance(value, type(default)) else bad


def _kind(v: Any) -> str:
    """Type family for homogeneity checks (int and float count as one number family)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def _proto(values: list[Any]) -> Any:
    """The element a homogeneous default list stands for (a float when its numbers mix int and float)."""
    return 0.0 if any(isinstance(v, float) for v in values) else values[0]


def _type_ok(default: Any, value: Any) -> bool:
    return _type_problem(default, value) is None


def _choice_problem(nb: Notebook, key: str, value: Any) -> str | None:
    """Why ``value`` is not among the declared choices of ``key`` (None when it is, or there are none)."""
    if key not in nb.choices or value is None:
        return None
    how, allowed = nb.choices[key]
    shown = ", ".join(repr(c) for c in allowed)
    if how == "one":
        return None if value in allowed else f"is {value!r}, not one of: {shown}"
    elems = list(value) if isinstance(value, (list, tuple, dict)) else [value]
    bad = [v for v in elems if v not in allowed]
    return None if not bad else f"has {', '.join(repr(b) for b in bad)}, not among the valid choices: {shown}"


def check_overrides(nb: Notebook, overrides: dict[str, Any], source: str) -> None:
    """Raise :class:`ParameterError` naming the key, ``source`` and the valid keys/types/choices on a bad override."""
    valid = sorted(nb.defaults)
    for key, value in overrides.items():
        if key not in nb.defaults:
            raise ParameterError(f"{source}: unknown parameter {key!r} for notebook {nb.name}; "
                                 f"valid keys: {', '.join(valid)}")
        problem = _type_problem(nb.defaults[key], value)
        if problem:
            raise ParameterError(f"{source}: parameter {key!r} of {nb.name}: {problem} "
                                 f"(default {nb.defaults[key]!r})")
        problem = _choice_problem(nb, key, value)
        if problem:
            raise ParameterError(f"{source}: parameter {key!r} of {nb.name} {problem}")


def validate_notebook_params(notebook: str, params: dict[str, Any], notebook_dir: Path = NOTEBOOK_DIR) -> None:
    """Check a notebook's current parameter values against its parameters cell (types and choices).

    For readers who edit the parameters cell in JupyterLab: :func:`dsm_utils.tracking.start_run` calls it
    with ``notebook="08_evaluation"``, so a typo stops the notebook with the valid choices before any work.
    """
    path = notebook_dir / f"{notebook}.ipynb"
    if not path.exists():
        raise ParameterError(f"no notebook {notebook!r} in {notebook_dir.name}/")
    nb = load_notebook(path)
    check_overrides(nb, {k: v for k, v in params.items() if k in nb.defaults}, f"the parameters cell of {notebook}")


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


_STARTUP = """\
# Written by dsm_utils.run for the kernels it starts headless: tqdm prints plain text lines into the executed
# notebook instead of widgets whose state papermill cannot save, whatever a notebook imports first.
import tqdm.auto, tqdm.autonotebook, tqdm.std
for _m in (tqdm.auto, tqdm.autonotebook):
    _m.tqdm, _m.trange = tqdm.std.tqdm, tqdm.std.trange
del _m
"""


def _headless_ipython_dir() -> Path:
    """An IPython profile dir for headless kernels: the tqdm startup file, and the kernel's own log at ERROR."""
    import tempfile

    d = Path(tempfile.gettempdir()) / f"dsm-ipython-{os.getuid() if hasattr(os, 'getuid') else 0}"
    startup = d / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00_dsm_headless.py").write_text(_STARTUP, encoding="utf-8")
    (d / "profile_default" / "ipython_kernel_config.py").write_text(
        "c.IPKernelApp.log_level = 'ERROR'  # no start-up warnings in a headless run\n", encoding="utf-8")
    return d


def execute(plan: list[tuple[Notebook, dict[str, Any]]], profile: str, runs_dir: Path = RUNS_DIR,
            kernel: str = "python3", log_output: bool = False) -> int:
    """Run the plan in order; returns 0, or 1 at the first failing notebook (after printing why)."""
    import logging

    import papermill as pm
    from tqdm.auto import tqdm

    from . import tracking

    # Keys were validated above (stricter than papermill's own check), so papermill's parse warnings are noise.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    os.environ[tracking.HEADLESS_ENV] = "1"  # the kernels inherit it: plain-text progress bars
    os.environ["IPYTHONDIR"] = str(_headless_ipython_dir())
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
        if not tracking.is_complete(out_dir):
            tracking.mark_complete(out_dir, marked_by="runner")
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
