"""Benchmark: the §2.1 math-corpus pipeline, 4 rounds over the whole mini Common Crawl (cpu-profile settings).

Reads ``$DSM_DATA_DIR`` (default ``../shared/data`` next to the repo when present). Targets: <= 4 minutes on 2 cores,
precision of the collected pages >= 0.95 from round 2 on, all six math domains discovered. The last output line is
one JSON object: seconds, precision_by_round, recall_by_round, domains_by_round, pages_per_s_by_stage. Every pass over
the pages is a datatrove stage on the local executor (4 tasks, 2 workers).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KNOWN_MATH_DOMAINS = ["docs.gap-system.org", "docs.octave.org", "docs.sympy.org", "gnuplot.info",
                      "maxima.sourceforge.io", "mpmath.org"]


def main() -> dict:
    if not os.environ.get("DSM_DATA_DIR") and (REPO.parent / "shared" / "data").exists():
        os.environ["DSM_DATA_DIR"] = str(REPO.parent / "shared" / "data")
    from dsm_utils import corpus
    from dsm_utils.data import data_dir

    with tempfile.TemporaryDirectory(prefix="bench_corpus_") as work:
        cfg = corpus.CorpusConfig(
            data_dir=str(data_dir()), work_dir=work, n_rounds=4, keep_fraction=0.35, min_score=0.5,
            executor="local", tasks=4, workers=2, max_train_per_class=1500,
            ft=corpus.FastTextParams(dim=64, lr=0.2, word_ngrams=2, min_count=2, epoch=10, bucket=200_000,
                                     thread=1, max_chars=4000))
        t0 = time.time()
        stats = corpus.run_pipeline(cfg)
        seconds = time.time() - t0
    rounds = stats["rounds"]
    out = {
        "seconds": round(seconds, 1),
        "precision_by_round": [round(r["precision"], 4) for r in rounds],
        "recall_by_round": [round(r["recall"], 4) for r in rounds],
        "domains_by_round": [r["math_domains"] for r in rounds],
        "pages_per_s_by_stage": stats["pages_per_s_by_stage"],
        "stage_seconds": stats["stage_seconds"],
        "round_seconds": [{"train": r["seconds_train"], "score": r["seconds_score"]} for r in rounds],
        "token_counts": stats["token_counts"],
        "pages_collected_by_round": [r["pages_collected"] for r in rounds],
        "new_pages_per_round": [r.get("new_pages") for r in rounds],
        "cumulative_pages_per_round": [r.get("cumulative_pages") for r in rounds],
        "pool_pages": stats["pool_pages"],
        "extractor": stats["extractor"],
        "tokenizer": stats["tokenizer"],
        "decontaminated_pages": stats["decontamination"]["dropped"],
        "corpus_pages": stats["corpus_pages"],
        "all_math_domains_found": sorted(stats["math_domains"]) == KNOWN_MATH_DOMAINS,
        "precision_ok_from_round_2": all(r["precision"] >= 0.95 for r in rounds[1:]),
        "under_4_minutes": seconds <= 240,
    }
    return out


if __name__ == "__main__":  # the guard matters: datatrove's local executor starts workers with forkserver
    print(json.dumps(main()))
