"""Scale-out checks on this machine: the launch path on 2 CPU processes and the corpus pipeline's executors.

- ``sft_loss_1proc`` / ``sft_loss_2proc``: mean SFT loss over 5 steps of ``dsm_utils.sft_loop`` (llama-1m, global
  batch 8) in-process vs ``accelerate launch`` on 2 processes (gloo, 2 micro-batches of 2 each);
  ``max_abs_diff`` over the per-step losses (goal <= 1e-4).
- ``trl_grpo_2proc_steps``: steps done by TRL's ``GRPOTrainer`` (``dsm_utils.grpo_trl``, loss_type "grpo",
  beta 0.04) on 2 processes (asked: 3).
- ``corpus_local_ray_same``: the corpus pipeline (100 mini-CC pages, 2 rounds) keeps exactly the same pages with the
  local executor and on a local Ray instance.
- ``driver_rss_mib_1x`` / ``driver_rss_mib_2x``: peak RSS of the driver process (``ru_maxrss`` of a fresh process;
  worker processes not included) for the whole cpu-profile pipeline over the mini-CC and over a 2x pool (the
  mini-CC's WARC shards listed twice, the copies under new URLs). Goal: 2x <= 1.2 x 1x.

Last output line: one JSON object. Run niced: ``nice -n 10 python bench/distributed_check.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _data_root() -> Path:
    if not os.environ.get("DSM_DATA_DIR") and (REPO.parent / "shared" / "data").exists():
        os.environ["DSM_DATA_DIR"] = str(REPO.parent / "shared" / "data")
    from dsm_utils.data import data_dir
    return data_dir()


def _cpu_cfg(data_root: Path, work: str, warc_folder: str, executor: str = "local"):
    """The cpu profile of 01 (as bench/corpus_pipeline.py)."""
    from dsm_utils import corpus

    return corpus.CorpusConfig(
        data_dir=str(data_root), work_dir=work, warc_folder=warc_folder, n_rounds=4, keep_fraction=0.35,
        min_score=0.5, executor=executor, tasks=4, workers=2, max_train_per_class=1500,
        ft=corpus.FastTextParams(dim=64, lr=0.2, word_ngrams=2, min_count=2, epoch=10, bucket=200_000, thread=1,
                                 max_chars=4000))


def corpus_run(warc_folder: str) -> dict:
    """One whole pipeline in this (fresh) process; returns its peak RSS, seconds and precision."""
    import resource

    from dsm_utils import corpus

    root = _data_root()
    with tempfile.TemporaryDirectory(prefix="bench_dist_") as work:
        t0 = time.time()
        st = corpus.run_pipeline(_cpu_cfg(root, work, warc_folder))
        secs = time.time() - t0
    return {"rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "seconds": round(secs, 1), "pages_extracted": st["pages_extracted"], "pool_pages": st["pool_pages"],
            "corpus_pages": st["corpus_pages"], "precision_by_round": [round(r["precision"], 4) for r in st["rounds"]],
            "stage_seconds": st["stage_seconds"]}


def doubled_pool(src: Path, dst: Path) -> Path:
    """The mini-CC's WARC shards twice: as they are, and copies whose pages have new URLs (``mirror<N>.`` hosts)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.warc.gz")):
        (dst / f.name).symlink_to(f)
        # "mirror-*" sorts after "minicc-*": MinHash keeps the first page of a cluster, so the originals (with their
        # ground-truth labels) stay in the pool and the copies are the near duplicates dropped
        with open(f, "rb") as fin, open(dst / f"mirror-{f.name}", "wb") as fout:
            w = WARCWriter(fout, gzip=True)
            for rec in ArchiveIterator(fin):
                uri = rec.rec_headers.get_header("WARC-Target-URI")
                if uri:
                    rec.rec_headers.replace_header("WARC-Target-URI", uri.replace("://", "://mirror2.", 1))
                w.write_record(rec)
    return dst


def _in_fresh_process(warc_folder: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--corpus-run", warc_folder], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    if out.returncode != 0:
        raise RuntimeError(f"corpus run over {warc_folder} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> dict:
    from dsm_utils import corpus, launch, problems, sft, sft_loop

    root = _data_root()
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_launch_") as tmp:
        rows = sft_loop.record_rows(sft.build_records(problems.generate(64, seed=0, prefix="sft"),
                                                      {"cot": 0.5, "tool": 0.5}, seed=0))
        p = dict(init_from="llama-1m", steps=5, global_batch_size=8, lr=3e-3, max_len=160, save=False)
        one = launch.launch("sft_loop", p, f"{tmp}/one", records=rows, stream=False)
        two = launch.launch("sft_loop", dict(p, micro_batch_size=2), f"{tmp}/two", records=rows, num_processes=2,
                            config="cpu", stream=False)
        a = [h["loss"] for h in one.metrics["loss_curve"]]
        b = [h["loss"] for h in two.metrics["loss_curve"]]
        res["sft_loss_1proc"] = round(sum(a) / len(a), 6)
        res["sft_loss_2proc"] = round(sum(b) / len(b), 6)
        res["max_abs_diff"] = max(abs(x - y) for x, y in zip(a, b))
        g = launch.launch("grpo_trl", dict(init_from="llama-1m", steps=3, group_size=4, questions_per_step=2,
                                           max_new_tokens=16, n_questions=24), f"{tmp}/grpo", num_processes=2,
                          config="cpu", stream=False)
        res["trl_grpo_2proc_steps"] = g.metrics["steps_done"]

    import ray

    with tempfile.TemporaryDirectory(prefix="bench_exec_") as tmp:
        def small(executor: str):
            cfg = _cpu_cfg(root, f"{tmp}/{executor}", "web/minicc", executor)
            cfg.max_pages_per_task, cfg.n_rounds, cfg.max_train_per_class, cfg.count_tokens = 25, 2, 300, False
            st = corpus.run_pipeline(cfg)
            import gzip
            return sorted(gzip.open(st["corpus_path"], "rt").read().splitlines())
        local = small("local")
        corpus.start_local_ray(num_cpus=2)
        try:
            on_ray = small("ray")
        finally:
            ray.shutdown()
        res["corpus_local_ray_same"] = bool(local) and local == on_ray
        res["corpus_small_pages"] = len(local)

    one = _in_fresh_process(str(root / "web/minicc"))
    with tempfile.TemporaryDirectory(prefix="bench_2x_") as tmp:
        two = _in_fresh_process(str(doubled_pool(root / "web/minicc", Path(tmp) / "warc")))
    res["driver_rss_mib_1x"], res["driver_rss_mib_2x"] = one["rss_mib"], two["rss_mib"]
    res["driver_rss_ratio"] = round(two["rss_mib"] / one["rss_mib"], 3)
    res["corpus_1x"], res["corpus_2x"] = one, two
    res["goals_met"] = {"max_abs_diff": res["max_abs_diff"] <= 1e-4, "corpus_local_ray_same": res["corpus_local_ray_same"],
                        "driver_rss": res["driver_rss_ratio"] <= 1.2}
    return res


if __name__ == "__main__":  # the guard matters: datatrove's local executor starts workers with forkserver
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus-run":
        print(json.dumps(corpus_run(sys.argv[2])))
    else:
        print(json.dumps(main()))
