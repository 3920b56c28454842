"""Run folders: every notebook writes ``params.json`` and ``metrics.json`` (and figures) into its run dir.

The final tables notebook reads these files only; it never scrapes cell outputs.

A run folder is *complete* only once ``done.json`` exists: :meth:`Run.finish` writes it as the notebook's last
step (the runner writes it too after a notebook that succeeded without calling it). :func:`start_run` removes it
first and clears the outputs of an earlier run, so a notebook that fails half-way leaves a folder that
downstream notebooks (:meth:`Run.require_sibling`, :func:`load_run`) and 09 treat as missing. A notebook that
resumes from a checkpoint names what to keep: ``start_run(run_dir, params, keep=["checkpoint*"])``.

:func:`setup_notebook` (called by :func:`start_run`) quiets library logs to WARNING and, when the runner executes
the notebook headless, makes tqdm print plain lines instead of widgets.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import repo_path

#: The completion marker, written last by :meth:`Run.finish` (or by the runner after a successful notebook).
DONE = "done.json"
#: Set by the runner for the kernels it starts: progress bars as plain text lines, not widgets.
HEADLESS_ENV = "DSM_HEADLESS"
#: Library loggers kept at WARNING inside notebooks.
QUIET_LOGGERS = ("transformers", "datatrove", "papermill", "urllib3", "filelock", "httpx", "huggingface_hub",
                 "datasets", "torch", "accelerate", "trl", "matplotlib", "PIL", "numexpr", "fsspec", "asyncio",
                 "traitlets", "nbclient", "blib2to3", "jieba")


class IncompleteRunError(FileNotFoundError):
    """A run folder is missing or has no completion marker (the notebook did not finish)."""

_SKIP = {"In", "Out", "exit", "quit", "get_ipython"}
_PLAIN = (bool, int, float, str, type(None), list, tuple, dict)


def notebook_params(namespace: dict[str, Any]) -> dict[str, Any]:
    """Pick the plain parameter values out of a notebook's globals (call it right after the parameters cell)."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _SKIP and isinstance(v, _PLAIN)}


def _jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars, paths, tuples and NaN to plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON atomically (temp file + rename) so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file in the error if it is malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None


@dataclass
class Run:
    """A notebook's run folder: ``params.json``, ``metrics.json`` and figures."""

    dir: Path
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def log(self, **metrics: Any) -> None:
        """Merge ``metrics`` into ``metrics.json`` (rewritten atomically each call).

        Returns None, so a notebook cell ending in ``run.log(...)`` shows nothing (read ``run.metrics``).
        """
        self.metrics.update(metrics)
        self.metrics["elapsed_s"] = round(time.time() - self.started, 2)
        write_json(self.dir / "metrics.json", self.metrics)

    def finish(self, **metrics: Any) -> None:
        """Log the last ``metrics``, then write the completion marker ``done.json`` (the notebook's last call)."""
        self.log(**metrics)
        mark_complete(self.dir, elapsed_s=self.metrics["elapsed_s"])

    def path(self, name: str) -> Path:
        """A path inside the run folder (parents created)."""
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def savefig(self, fig, name: str, dpi: int = 120) -> Path:
        """Save a matplotlib figure as PNG in the run folder."""
        p = self.path(name if name.endswith(".png") else name + ".png")
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
        return p

    def sibling(self, notebook: str) -> Path:
        """Run folder of another notebook of the same profile, e.g. ``run.sibling("05_sft")`` (not checked)."""
        return self.dir.parent / notebook

    def require_sibling(self, notebook: str) -> Path:
        """Run folder of another notebook of this profile that must have *finished*, else a clear error.

        E.g. ``run.require_sibling("05_sft") / "checkpoint"``. A folder without ``done.json`` (a run that
        failed or was killed half-way) counts as missing.
        """
        d = self.sibling(notebook)
        require_complete(d)
        return d


def is_complete(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a finished run (its completion marker exists)."""
    return (repo_path(run_dir) / DONE).exists()


def require_complete(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path if it holds a finished run; else :class:`IncompleteRunError` saying what to run."""
    d = repo_path(run_dir)
    if not d.exists():
        raise IncompleteRunError(f"run folder {show_path(d)} does not exist: run notebook {d.name} of this profile "
                                 f"first (python -m dsm_utils.run --profile {d.parent.name} --only {d.name[:2]})")
    if not (d / DONE).exists():
        raise IncompleteRunError(f"run folder {show_path(d)} has no {DONE}: notebook {d.name} did not finish "
                                 "(it failed or was stopped); rerun it")
    return d


def mark_complete(run_dir: str | os.PathLike, **info: Any) -> Path:
    """Write the completion marker of ``run_dir`` (atomically): the last file a finished run gets."""
    d = repo_path(run_dir)
    return write_json(d / DONE, {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info})


def show_path(p: str | os.PathLike) -> str:
    """A path as outputs show it: relative to the repository, else its last three parts (never the machine's paths)."""
    from . import REPO_ROOT

    p = Path(p)
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return "…/" + "/".join(p.parts[-3:])  # outside the checkout (e.g. --runs-dir /tmp/x): the run's own part


def clear_run_dir(d: Path, keep: Sequence[str] = ()) -> list[str]:
    """Remove an earlier run's outputs from run folder ``d``, except entries matching a ``keep`` glob pattern.

    Kept always: the executed notebook the runner is writing (``<folder name>.ipynb``). Refuses a non-empty
    folder that is not a run folder (no ``params.json``), so a mistyped ``run_dir`` never deletes anything.
    Returns the names removed.
    """
    import fnmatch
    import shutil

    entries = [e for e in d.iterdir()] if d.exists() else []
    own_nb = f"{d.name}.ipynb"
    if entries and not (d / "params.json").exists() and any(e.name != own_nb for e in entries):
        raise ValueError(f"run_dir {show_path(d)} is not empty and holds no params.json, so it is not a run folder; "
                         "refusing to clear it (choose an empty or a run folder)")
    removed = []
    for e in entries:
        if e.name == own_nb or any(fnmatch.fnmatch(e.name, pat) for pat in keep):
            continue
        if e.is_dir() and not e.is_symlink():
            shutil.rmtree(e)
        else:
            e.unlink()
        removed.append(e.name)
    return removed


def start_run(run_dir: str | os.PathLike, params: dict[str, Any], keep: Sequence[str] = (),
              notebook: str | None = None) -> Run:
    """Start a run in ``run_dir``: clear an earlier run's outputs, write ``params.json``, quiet the notebook.

    The completion marker goes first, then every other entry except those matching a glob in ``keep`` (e.g.
    ``keep=["checkpoint*"]`` for a notebook that resumes from its checkpoint) and the runner's executed notebook.
    ``notebook`` (e.g. ``"08_evaluation"``): check ``params`` against that notebook's parameters cell (types and
    the ``# one of:`` choices) before anything is cleared, for readers who edit the cell in JupyterLab.
    """
    if notebook is not None:
        from .run import validate_notebook_params

        validate_notebook_params(notebook, params)
    d = repo_path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / DONE).unlink(missing_ok=True)  # first: from here on the folder is an unfinished run
    clear_run_dir(d, keep)
    write_json(d / "params.json", params)
    setup_notebook()
    return Run(dir=d, params=dict(params))


def load_run(run_dir: str | os.PathLike, require_complete_run: bool = True) -> dict[str, Any]:
    """Read a finished run folder: ``{"params": ..., "metrics": ..., "dir": ...}``.

    A folder without the completion marker raises :class:`IncompleteRunError` (``require_complete_run=False``
    reads it anyway, e.g. to inspect a failed run).
    """
    d = require_complete(run_dir) if require_complete_run else repo_path(run_dir)
    out: dict[str, Any] = {"dir": str(d)}
    for name in ("params", "metrics"):
        p = d / f"{name}.json"
        out[name] = read_json(p) if p.exists() else {}
    return out


def completed_runs(root: str | os.PathLike, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`load_run` of every folder ``root/<name>`` that holds a finished run (others are left out)."""
    base = repo_path(root)
    return {n: load_run(base / n) for n in names if is_complete(base / n)}


# --------------------------------------------------------------------------------------------------
# what a notebook shows: library logs at WARNING, tqdm as widgets in JupyterLab and plain lines headless


def quiet_logs(level: int | None = None) -> None:
    """Set the loggers of :data:`QUIET_LOGGERS` to WARNING (or ``level``), datatrove's loguru output included.

    datatrove re-adds a stderr sink at INFO for every task (``add_task_logger``); it is wrapped so the sink
    stays at ERROR for the notebook while the task's log file (``logging_dir``) keeps everything. This needs
    datatrove imported first (``from dsm_utils import corpus`` before :func:`start_run`, or call this again).
    """
    import logging

    level = logging.WARNING if level is None else level
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
    import sys

    if "transformers" in sys.modules:  # else its default verbosity is WARNING already
        sys.modules["transformers"].logging.set_verbosity(level)
    _quiet_datatrove()


def _quiet_datatrove() -> None:
    import sys

    if "datatrove" not in sys.modules:  # not used by this notebook (yet): call quiet_logs() after importing it
        return
    try:
        import datatrove.executor.base as dt_base
        import datatrove.utils.logging as dt_log
    except ImportError:
        return
    if getattr(dt_log.add_task_logger, "_dsm_quiet", False):
        return
    original = dt_log.add_task_logger

    def add_task_logger(logging_dir, rank, local_rank=0, node_rank=-1):
        # local_rank != 0 is datatrove's own switch for an ERROR-level stderr sink; the log file keeps DEBUG.
        return original(logging_dir, rank, 1, node_rank=node_rank)

    def setup_default_logger():
        dt_log.logger.remove()
        dt_log.logger.add(sys.stderr, level="WARNING", colorize=dt_log.DATATROVE_COLORIZE_LOGS)

    add_task_logger._dsm_quiet = True  # type: ignore[attr-defined]
    for mod in (dt_log, dt_base):
        mod.add_task_logger = add_task_logger
    dt_log.setup_default_logger = setup_default_logger
    setup_default_logger()
    for name in ("datatrove.executor.ray", "datatrove.executor.jobs"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "add_task_logger"):
            mod.add_task_logger = add_task_logger


def plain_progress() -> None:
    """Make ``tqdm.auto`` the plain-text tqdm (what a headless run stores in the executed notebook)."""
    import tqdm
    import tqdm.auto
    import tqdm.autonotebook

    for mod in (tqdm.auto, tqdm.autonotebook):
        mod.tqdm = tqdm.std.tqdm
        mod.trange = tqdm.std.trange


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line naming the package file, never the machine's path to it."""
    short = str(filename)
    for marker in ("site-packages/", "dist-packages/"):
        if marker in short:
            short = short.split(marker, 1)[1]
            break
    else:
        short = show_path(short) if os.path.isabs(short) else short
    return f"{category.__name__}: {message} ({short}:{lineno})\n"


def setup_notebook() -> None:
    """Quiet library logs; warnings name package files, not machine paths; under the runner
    (``DSM_HEADLESS=1``) progress bars become plain text lines."""
    import warnings

    quiet_logs()
    warnings.formatwarning = _format_warning
    if os.environ.get(HEADLESS_ENV) == "1":
        plain_progress()
