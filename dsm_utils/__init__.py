"""dsm_utils: the thin shared package behind the DeepSeekMath reproduction notebooks.

Each module is named after the paper concept it implements (``corpus``, ``grading``, ``rl``, ...).
Modules are imported explicitly (``from dsm_utils import grading``) so that importing the package
stays cheap and optional extras (datatrove, vLLM, TRL) are only needed where they are used.
"""
from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

#: Root of the repository checkout (the folder holding ``notebooks/`` and ``params/``).
REPO_ROOT: Path = Path(__file__).resolve().parent.parent


def repo_path(path: str | Path) -> Path:
    """Resolve ``path`` against the repository root unless it is absolute.

    Notebooks run with cwd = repo root under the runner but cwd = ``notebooks/`` in JupyterLab;
    resolving relative paths here makes both behave the same.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()
