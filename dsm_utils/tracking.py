"""Run folders: every notebook writes ``params.json`` and ``metrics.json`` (and figures) into its run dir.

The final tables notebook reads these files only; it never scrapes cell outputs.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import repo_path

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

    def log(self, **metrics: Any) -> dict[str, Any]:
        """Merge ``metrics`` into ``metrics.json`` (rewritten atomically each call)."""
        self.metrics.update(metrics)
        self.metrics["elapsed_s"] = round(time.time() - self.started, 2)
        write_json(self.dir / "metrics.json", self.metrics)
        return self.metrics

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
        """Run folder of another notebook of the same profile, e.g. ``run.sibling("05_sft")``."""
        return self.dir.parent / notebook


def start_run(run_dir: str | os.PathLike, params: dict[str, Any]) -> Run:
    """Create the run folder, write ``params.json`` and start an empty ``metrics.json``."""
    d = repo_path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "params.json", params)
    run = Run(dir=d, params=dict(params))
    if (d / "metrics.json").exists():
        (d / "metrics.json").unlink()  # stale metrics of an earlier run must not survive
    return run


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a finished run folder: ``{"params": ..., "metrics": ..., "dir": ...}``."""
    d = repo_path(run_dir)
    out: dict[str, Any] = {"dir": str(d)}
    for name in ("params", "metrics"):
        p = d / f"{name}.json"
        out[name] = read_json(p) if p.exists() else {}
    return out
