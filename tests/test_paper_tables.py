"""09 renders from finished run folders only: findings.md, Fig. 5-7 copies, Table 5 from 06's rows."""
from __future__ import annotations

import json
from pathlib import Path

from dsm_utils import run as runner
from dsm_utils import tracking

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _finished(root: Path, name: str, metrics: dict, files: dict | None = None, done: bool = True,
              params: dict | None = None) -> None:
    run = tracking.start_run(root / name, params or {"seed": 0})
    for fname, data in (files or {}).items():
        (root / name / fname).write_bytes(data)
    if done:
        run.finish(**metrics)
    else:
        run.log(**metrics)


def test_09_reads_finished_runs_only(tmp_path: Path):
    root = tmp_path / "runs" / "t"
    good = {"claim": "GRPO beats SFT | greedy", "status": "reproduced", "delta": 0.12, "ci": [0.05, 0.19],
            "source": "§4.2, Table 5", "detail": "3 seeds x 500 items"}
    _finished(root, "07_unified_paradigm", {"findings": [good], "table10": []}, {"fig5.png": PNG, "fig7.png": PNG})
    _finished(root, "06_grpo", {"findings": [{**good, "claim": "stale", "status": "not reproduced"}]},
              {"fig6.png": PNG}, done=False)  # failed half-way: must be ignored
    ev = [{"model": m, "benchmark": "toy", "mode": mode, "n_items": 100, "accuracy": a, "ci_low": a - 0.05,
           "ci_high": a + 0.05} for m, a in (("05_sft", 0.3), ("06_grpo", 0.45)) for mode in ("zero_shot_cot", "tool")]
    _finished(root, "08_evaluation", {"evaluations": ev, "comparison": []})
    nb = runner.load_notebook(runner.NOTEBOOK_DIR / "09_paper_tables_and_figures.ipynb")
    assert runner.execute([(nb, {"run_dir": str(root / nb.name), "results_in_run_folder": True})], "t",
                          runs_dir=tmp_path / "runs") == 0
    out = root / nb.name
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_findings"] == 1 and m["findings_invalid"] == {} and "06_grpo" in m["runs_missing"]
    assert m["figures"] == {"fig5.png": "copied", "fig6.png": "not run", "fig7.png": "copied"}
    assert (out / "results" / "fig5.png").read_bytes() == PNG and not (out / "results" / "fig6.png").exists()
    md = (out / "results" / "findings.md").read_text()
    assert "GRPO beats SFT \\| greedy" in md and "| reproduced |" in md and "stale" not in md
    assert "[0.05, 0.19]" in md and "3 seeds x 500 items" in md
    assert m["n_table5_ours"] == 0  # 06 did not finish: no row of ours in Table 5
    inv = (out / "inventory.csv").read_text()
    assert "06_grpo,did not finish" in inv and "00_setup,not run" in inv


def test_09_table5_sft_and_rl_from_one_grader_and_one_item_set(tmp_path: Path):
    root = tmp_path / "runs" / "t"
    _finished(root, "06_grpo", {"test_acc": {"sft": [0.3, 0.3, 0.3], "os_rule": [0.44, 0.45, 0.46]},
                                "ood_acc": {"sft": [0.1] * 3, "os_rule": [0.1, 0.1, 0.1]}},
              params={"n_test": 500, "n_test_ood": 500})
    nb = runner.load_notebook(runner.NOTEBOOK_DIR / "09_paper_tables_and_figures.ipynb")
    assert runner.execute([(nb, {"run_dir": str(root / nb.name), "results_in_run_folder": True})], "t",
                          runs_dir=tmp_path / "runs") == 0
    out = root / nb.name
    assert json.loads((out / "metrics.json").read_text())["n_table5_ours"] == 4
    delta = (out / "table5_delta.csv").read_text().splitlines()
    toy = next(r for r in delta if r.startswith("ours: GRPO − SFT,toy,"))
    lo, hi = (float(x) for x in toy.split(",")[-1].split(" to "))
    assert ",3,15.0," in toy and 0 < lo < 15.0 < hi  # paired by seed, binomial error of 500 items
    ood = next(r for r in delta if r.startswith("ours: GRPO − SFT,toy_ood,"))
    assert ",0.0," in ood
