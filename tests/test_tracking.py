"""Run folders: the completion marker is written last, reruns clear stale outputs, quiet logs, plain tqdm."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsm_utils import tracking

REPO = Path(__file__).resolve().parent.parent


def test_marker_written_last_and_required_downstream(tmp_path: Path):
    run = tracking.start_run(tmp_path / "05_sft", {"seed": 0})
    run.log(acc=0.5)
    assert not tracking.is_complete(run.dir)
    other = tracking.start_run(tmp_path / "06_grpo", {"seed": 0})
    with pytest.raises(tracking.IncompleteRunError, match="05_sft has no done.json"):
        other.require_sibling("05_sft")
    with pytest.raises(tracking.IncompleteRunError, match="did not finish"):
        tracking.load_run(run.dir)
    with pytest.raises(tracking.IncompleteRunError, match="does not exist: run notebook 07_x"):
        other.require_sibling("07_x")
    assert tracking.load_run(run.dir, require_complete_run=False)["metrics"]["acc"] == 0.5
    assert run.finish(acc=0.6) is None and tracking.is_complete(run.dir)
    assert other.require_sibling("05_sft") == run.dir
    assert tracking.load_run(run.dir)["metrics"]["acc"] == 0.6
    assert tracking.completed_runs(tmp_path, ["05_sft", "06_grpo", "07_x"]).keys() == {"05_sft"}


def test_log_returns_nothing_so_a_cell_shows_no_dict(tmp_path: Path):
    run = tracking.start_run(tmp_path / "r", {})
    assert run.log(big=list(range(1000))) is None
    assert run.metrics["big"][-1] == 999


def test_rerun_clears_stale_outputs_but_keeps_what_resume_needs(tmp_path: Path):
    d = tmp_path / "06_grpo"
    run = tracking.start_run(d, {"seed": 0})
    (d / "fig6.png").write_bytes(b"png")
    (d / "checkpoint").mkdir()
    (d / "checkpoint" / "model.safetensors").write_bytes(b"w")
    (d / "06_grpo.ipynb").write_text("{}")  # the runner's executed notebook, being written
    run.finish(acc=1.0)
    # a killed rerun that resumes: the marker and old results go, the checkpoint stays
    tracking.start_run(d, {"seed": 0}, keep=["checkpoint*"])
    assert sorted(p.name for p in d.iterdir()) == ["06_grpo.ipynb", "checkpoint", "params.json"]
    # a fresh rerun: everything but the executed notebook goes
    tracking.start_run(d, {"seed": 1})
    assert sorted(p.name for p in d.iterdir()) == ["06_grpo.ipynb", "params.json"]


def test_refuses_to_clear_a_folder_that_is_not_a_run(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a run folder"):
        tracking.start_run(tmp_path, {})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_start_run_checks_choices_of_the_named_notebook(tmp_path: Path):
    from dsm_utils.run import ParameterError

    with pytest.raises(ParameterError, match=r"'backend' of 08_evaluation is 'vlm', not one of: 'hf', 'vllm'"):
        tracking.start_run(tmp_path / "r", {"backend": "vlm"}, notebook="08_evaluation")
    assert not (tmp_path / "r").exists()  # nothing written before the check


def test_quiet_logs_and_paths():
    logging.getLogger("transformers").setLevel(logging.INFO)
    tracking.quiet_logs()
    assert logging.getLogger("transformers").level == logging.WARNING
    assert tracking.show_path(REPO / "runs" / "cpu" / "05_sft") == "runs/cpu/05_sft"
    assert tracking.show_path("/somewhere/else/runs/cpu/05_sft") == "…/runs/cpu/05_sft"


def test_datatrove_task_logs_stay_out_of_the_notebook(tmp_path: Path):
    pytest.importorskip("datatrove")
    code = (
        "import datatrove.executor.base, datatrove.utils.logging as L\n"
        "from dsm_utils import tracking\n"
        "tracking.quiet_logs()\n"
        "from datatrove.io import get_datafolder\n"
        f"f = L.add_task_logger(get_datafolder({str(tmp_path)!r}), 0)\n"
        "L.logger.info('INFO-LINE'); L.logger.warning('WARN-LINE'); L.logger.error('ERROR-LINE')\n"
        "L.close_task_logger(f)\n"
        "L.logger.info('AFTER-INFO')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "ERROR-LINE" in r.stderr and "INFO-LINE" not in r.stderr and "AFTER-INFO" not in r.stderr
    log = (tmp_path / "logs" / "task_00000.log").read_text()
    assert "INFO-LINE" in log and "WARN-LINE" in log  # the task's log file keeps everything


def test_headless_progress_is_plain_text():
    code = ("import os; os.environ['DSM_HEADLESS'] = '1'\n"
            "from dsm_utils import tracking; tracking.setup_notebook()\n"
            "from tqdm.auto import tqdm; from tqdm.std import tqdm as std\n"
            "print(tqdm is std)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.stdout.strip() == "True", r.stderr


def test_warnings_name_the_package_file_not_the_machine_path():
    import warnings

    tracking.setup_notebook()
    text = warnings.formatwarning("x is deprecated", FutureWarning,
                                  "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", 1789)
    assert text == "FutureWarning: x is deprecated (torch/nn/modules/module.py:1789)\n"
    assert str(REPO) not in warnings.formatwarning("w", UserWarning, str(REPO / "dsm_utils" / "rl.py"), 3)
