"""The smoke profile, end to end through the runner: every notebook executes and writes its run folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_profile_runs_every_notebook(tmp_path: Path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-m", "dsm_utils.run", "--profile", "smoke", "--runs-dir", str(runs)],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, f"smoke profile failed:\n{r.stderr[-4000:]}"
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name in notebooks:
        d = runs / "smoke" / name
        assert (d / f"{name}.ipynb").exists(), f"{name}: executed notebook missing"
        params = json.loads((d / "params.json").read_text())
        metrics = json.loads((d / "metrics.json").read_text())
        assert params["run_dir"].endswith(f"smoke/{name}"), f"{name}: params.json does not record the run dir"
        assert len(metrics) > 1, f"{name}: metrics.json is empty"
