"""A killed SFT run resumes from its training state and ends exactly where an uninterrupted run ends.

Unit level: ``training.train_lm`` with ``Checkpointing``, a crash raised from the callback. Runner level:
05_sft killed with SIGKILL mid-training (runner and kernel), rerun, metrics compared with a run never killed.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsm_utils import sft, training

REPO = Path(__file__).resolve().parent.parent


class Crash(Exception):
    pass


def _train(tmp: Path, steps: int, crash_at: int | None = None, key: str = "k", every: int = 2):
    """A 1 M toy model trained ``steps`` steps with checkpointing; the callback appends to a curve."""
    from dsm_utils import models
    from dsm_utils import problems as P
    from dsm_utils.tokenizer import default_tokenizer

    training.set_threads(1)
    training.seed_everything(0)
    tok = default_tokenizer()
    model = models.load_model("llama-1m", tok, seed=0)
    records = sft.build_records(P.generate(40, seed=0, prefix="sft"), {"cot": 0.75, "program": 0.25}, seed=0)
    curve: list[dict] = []

    def on_step(step: int, loss: float) -> None:
        if step % 3 == 0:
            curve.append({"step": step, "loss": loss})
        if step == crash_at:
            raise Crash(step)

    ck = training.Checkpointing(tmp / "train_state", every, key, lists={"curve": curve})
    hist = training.train_lm(model, sft.record_batches(tok, records, 4, 96, seed=0), steps, lr=3e-3, warmup=2,
                             log_every=2, callback=on_step, progress=False, checkpointing=ck)
    return hist, curve, model, ck


def test_train_lm_resumes_after_a_crash_to_the_same_end(tmp_path: Path):
    import torch

    hist0, curve0, model0, ck0 = _train(tmp_path / "a", 9)
    assert ck0.resumed_from == 0 and not (tmp_path / "a" / "train_state").exists()  # removed when done

    with pytest.raises(Crash):
        _train(tmp_path / "b", 9, crash_at=7)
    state = json.loads((tmp_path / "b" / "train_state" / "train_state.json").read_text())
    assert state["step"] == 6 and [c["step"] for c in state["lists"]["curve"]] == [3, 6]

    hist1, curve1, model1, ck1 = _train(tmp_path / "b", 9)
    assert ck1.resumed_from == 6
    assert hist1 == hist0 and curve1 == curve0
    for (n, a), b in zip(model0.state_dict().items(), model1.state_dict().values()):
        assert torch.equal(a, b), n
    assert not (tmp_path / "b" / "train_state").exists()


def test_state_of_other_parameters_is_never_resumed(tmp_path: Path):
    with pytest.raises(Crash):
        _train(tmp_path, 6, crash_at=5, key="old-params")
    assert (tmp_path / "train_state").exists()
    _, curve, _, ck = _train(tmp_path, 4, key="new-params")
    assert ck.resumed_from == 0 and [c["step"] for c in curve] == [3]
    assert not (tmp_path / "train_state").exists()


# ------------------------------------------------------------------------------------------ runner level

SETS = ["05_sft.steps=60", "05_sft.checkpoint_every=3", "05_sft.eval_every=20"]


def _runner(runs_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "dsm_utils.run", "--profile", "smoke", "--only", "05", "--runs-dir", str(runs_dir)]
    for s in SETS:
        cmd += ["--set", s]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the runner and its descendants (the Jupyter kernel runs in a session of its own)."""
    import psutil

    p = psutil.Process(proc.pid)
    family = p.children(recursive=True) + [p]
    for q in family:
        try:
            q.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
    proc.communicate()


def _close(a, b, rel: float = 1e-6) -> bool:
    """Equal structures, floats within ``rel``."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    return a == b


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]


def test_killed_notebook_resumes_and_matches_an_uninterrupted_run(tmp_path: Path):
    ref = _runner(tmp_path / "ref")  # runs alongside the killed one: one core each
    run_dir = tmp_path / "killed" / "smoke" / "05_sft"
    proc = _runner(tmp_path / "killed")
    deadline = time.time() + 300
    while not (run_dir / "train_state" / "train_state.json").exists():
        assert proc.poll() is None, "05_sft finished or failed before its first training state: " + proc.stdout.read()[-3000:]
        assert time.time() < deadline, "no training state after 300 s"
        time.sleep(0.02)
    _kill_tree(proc)
    assert (run_dir / "train_state").exists(), "the kill came after training had finished"
    assert not (run_dir / "done.json").exists() and not (run_dir / "checkpoint").exists()
    killed_at = json.loads((run_dir / "train_state" / "train_state.json").read_text())["step"]
    assert 0 < killed_at < 60

    _finish(_runner(tmp_path / "killed"))
    _finish(ref)
    a = json.loads((tmp_path / "ref" / "smoke" / "05_sft" / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert a["resumed_from_step"] == 0 and b["resumed_from_step"] >= killed_at
    assert (run_dir / "done.json").exists() and not (run_dir / "train_state").exists()
    for key in ("loss_curve", "accuracy_curve", "greedy", "greedy_table", "behaviour_mix", "maj_at_k", "pass_at_k"):
        assert _close(a[key], b[key]), (key, a[key], b[key])
    assert len(a["loss_curve"]) == 6 and len(a["accuracy_curve"]) == 3
