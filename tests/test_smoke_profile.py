"""The smoke profile, end to end through the runner: every notebook finishes, computes something, and shows a
reader clean output (no long blocks, no warnings or log lines in stderr, no paths of this machine)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_LINES = 60
LOG_WORDS = re.compile(r"Warning|WARNING|\b(?:DEBUG|INFO|ERROR|CRITICAL)\b")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("smoke") / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "dsm_utils.run", "--profile", "smoke", "--runs-dir", str(runs)],
                       cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, f"smoke profile failed:\n{r.stderr[-4000:]}"
    return runs / "smoke"


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _acc(x) -> bool:
    return _num(x) and 0.0 <= x <= 1.0


# One computed value per notebook, read from its metrics.json (notebooks not listed: any number or finding).
COMPUTED = {
    "00_setup": lambda m: _acc(m["sanity_accuracy"]) and m["vocab_size"] > 100 and _num(m["sanity_final_loss"]),
    "01_math_corpus": lambda m: any(_num(v) and v > 0 for v in m.get("pages_by_round", [])
                                    + m.get("cumulative_pages_per_round", [])),
    "05_sft": lambda m: _acc(m["greedy_cot_accuracy"]),
    "06_grpo": lambda m: bool(m["final"]) and all(_acc(v["acc"]) for v in m["final"].values()),
    "07_unified_paradigm": lambda m: len(m["findings"]) > 0 and len(m["table10"]) == 6,
    "08_evaluation": lambda m: len(m["evaluations"]) > 0 and all(_acc(r["accuracy"]) for r in m["evaluations"]),
    "09_paper_tables_and_figures": lambda m: m["n_table5_ours"] >= 2 and m["tables"]["table5"] > 0,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_finishes_and_computes(smoke: Path, name: str):
    d = smoke / name
    assert (d / f"{name}.ipynb").exists(), f"{name}: executed notebook missing"
    assert (d / "done.json").exists(), f"{name}: run folder has no completion marker"
    params = json.loads((d / "params.json").read_text())
    metrics = json.loads((d / "metrics.json").read_text())
    assert params["run_dir"].endswith(f"smoke/{name}"), f"{name}: params.json does not record the run dir"
    check = COMPUTED.get(name, lambda m: bool(m.get("findings")) or any(
        _num(v) for k, v in m.items() if k != "elapsed_s"))
    try:
        ok = check(metrics)
    except (KeyError, TypeError) as exc:
        ok, exc_txt = False, f" ({type(exc).__name__}: {exc})"
    else:
        exc_txt = ""
    assert ok, f"{name}: metrics.json lacks the computed value this test reads{exc_txt}; keys: {sorted(metrics)}"
    if name == "09_paper_tables_and_figures":  # every run's findings must be in the findings format
        assert metrics["findings_invalid"] == {}, f"findings 09 could not read: {metrics['findings_invalid']}"


def _text_lines(out) -> tuple[str, int]:
    """(text, lines) of one output; an HTML table counts its rows, not its wrapped plain-text repr."""
    if out.output_type == "stream":
        return out.text, out.text.count("\n") + (not out.text.endswith("\n"))
    if out.output_type in ("execute_result", "display_data"):
        data = out.get("data", {})
        html = data.get("text/html", "")
        text = data.get("text/plain", "")
        if "<table" in html:
            return text + html, html.count("<tr")
        return text, text.count("\n") + 1
    return "\n".join(out.get("traceback", [])), 0


def _machine_paths(smoke: Path) -> list[str]:
    paths = {str(REPO), str(smoke.parent.parent), os.path.expanduser("~"), sys.prefix, os.path.realpath(sys.prefix)}
    if os.environ.get("DSM_DATA_DIR"):
        paths.add(os.path.realpath(os.environ["DSM_DATA_DIR"]))
        paths.add(os.environ["DSM_DATA_DIR"])
    return sorted(p for p in paths if p and p not in ("/", "/root") and len(p) > 4)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_notebook_reads_cleanly(smoke: Path, name: str):
    nb = nbformat.read(str(smoke / name / f"{name}.ipynb"), as_version=4)
    paths = _machine_paths(smoke)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        head = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        for out in cell.get("outputs", []):
            text, n = _text_lines(out)
            if n > MAX_LINES:
                problems.append(f"cell {i} ({head!r}): {out.output_type} of {n} lines (> {MAX_LINES})")
            if out.output_type == "stream" and out.name == "stderr" and LOG_WORDS.search(text):
                line = next(ln for ln in text.splitlines() if LOG_WORDS.search(ln))
                problems.append(f"cell {i} ({head!r}): stderr warning/log line: {line.strip()[:160]!r}")
            for p in paths:
                if p in text:
                    problems.append(f"cell {i} ({head!r}): shows a path of this machine ({p})")
                    break
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_trl_branches_of_05_and_06_run_in_process(tmp_path):
    """05 with TRL's SFTTrainer (gradient accumulation to a global batch) and 06 with TRL's GRPOTrainer, both through
    dsm_utils.launch in the notebook's own process, on the smoke settings."""
    runs = tmp_path / "runs"
    sets = ["05_sft.backend=trl", "05_sft.batch_size=4", "05_sft.global_batch_size=8", "05_sft.lr_scheduler=constant",
            "06_grpo.backend=trl"]
    r = subprocess.run([sys.executable, "-m", "dsm_utils.run", "--profile", "smoke", "--only", "05,06", "--runs-dir",
                        str(runs)] + [a for s in sets for a in ("--set", s)],
                       cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    m05 = json.loads((runs / "smoke" / "05_sft" / "metrics.json").read_text())
    m06 = json.loads((runs / "smoke" / "06_grpo" / "metrics.json").read_text())
    assert len(m05["loss_curve"]) == 4 and all(_num(h["loss"]) for h in m05["loss_curve"])
    assert m05["loss_curve"][-1]["loss"] < m05["loss_curve"][0]["loss"]
    assert [h["step"] for h in m06["trl_history"]] == [1, 2] and all(_acc(h["reward_mean"]) for h in m06["trl_history"])
    assert (runs / "smoke" / "06_grpo" / "checkpoint" / "config.json").exists()
