# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Math corpus (DeepSeekMath §2.1)
#
# > "we first choose OpenWebMath, a collection of high-quality mathematical web texts, as our initial seed corpus.
# > Using this corpus, we train a fastText model to recall more OpenWebMath-like mathematical web pages.
# > Specifically, we randomly select 500,000 data points from the seed corpus as positive training examples and
# > another 500,000 web pages from Common Crawl as negative ones. [...] we set the vector dimension to 256,
# > learning rate to 0.1, the maximum length of word n-gram to 3, the minimum number of word occurrences to 3,
# > and the number of training epochs to 3. [...] we rank the collected pages according to their scores predicted by
# > the fastText model, and only preserve the top-ranking ones. [...] we divide the full Common Crawl into disjoint
# > domains; a domain is defined as web pages sharing the same base URL. For each domain, we calculate the
# > percentage of web pages that are collected in the first iteration. Domains where over 10% of the web pages have
# > been collected are classified as math-related (e.g., mathoverflow.net). Subsequently, we manually annotate the
# > URLs associated with mathematical content within these identified domains (e.g., mathoverflow.net/questions).
# > Web pages linked to these URLs, yet uncollected, will be added to the seed corpus. [...] After four iterations
# > of data collection, we end up with 35.5M mathematical web pages, totaling 120B tokens."
#
# Toy world: a mini Common Crawl of 7,732 real HTML pages from 12 documentation sites (6 math, 6 not), 200 real
# math StackExchange/MathOverflow threads as the seed (stand-in for OpenWebMath) and 670 real Common Crawl page
# texts as random negatives. The ground-truth labels are used **only** to measure precision/recall and to drive the
# **simulated** annotator; the `gpu`/`cluster` profiles read real CC WARC paths and OpenWebMath from the hub, and
# use a person's annotation file.

# %% tags=["parameters"]
run_dir = "runs/local/01_math_corpus"  # the runner sets runs/<profile>/01_math_corpus
data_dir = ""  # empty: $DSM_DATA_DIR, else ./data
seed = 0
warc_folder = "web/minicc"  # relative to data_dir, or absolute / s3:// path of CC WARC files
warc_glob = "*.warc.gz"  # WarcReader opens every file otherwise (labels.tsv would fail)
max_pages_per_task = -1  # WarcReader limit per task, -1 for all
extractor = "auto"  # "resiliparse" | "trafilatura" | "auto" (resiliparse when installed)
seed_glob = "web/math_qa/*.jsonl"  # seed pages (StackExchange threads)
seed_hub_id = ""  # e.g. "open-web-math/open-web-math": overrides seed_glob
seed_limit = -1
negatives_glob = "web/cc_wet_text/*.jsonl.gz"  # random Common Crawl pages (negatives)
labels_path = "web/minicc/labels.tsv"  # ground truth (evaluation + simulated annotator); "" at scale
annotator = "simulated"  # "simulated" (from labels) | "file" (a person's TSV in the run folder)
annotation_file = "annotations.tsv"  # relative to run_dir
annotation_depth = 1  # URL path prefix depth offered for annotation
use_annotated_negatives = True  # prefixes annotated not_math also become negatives (see decisions)
n_rounds = 4
keep_fraction = 0.35  # top-ranked fraction of the pool kept each round, at most
min_score = 0.5  # and only pages scored at least this, from round 2 on
min_domain_fraction = 0.10  # paper: domains with > 10 % of their pages collected
min_words = 20
minhash_perm = 64
minhash_bands = 8
decont_n = 10
decont_min = 3
ft_dim = 64  # paper: 256
ft_lr = 0.2  # paper: 0.1
ft_word_ngrams = 2  # paper: 3
ft_min_count = 2  # paper: 3
ft_epoch = 10  # paper: 3
ft_bucket = 200000  # caps the model file (bucket x dim floats); fastText default 2,000,000
ft_thread = 1
ft_max_chars = 4000  # text per page for training and scoring (lower-cased, one line)
ft_min_words = 5  # training examples shorter than this are dropped
max_train_per_class = 1500
executor = "local"  # "local" | "ray" | "slurm"
tasks = 4
workers = 2
slurm_partition = "cpu"

# %%
import os
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dsm_utils import corpus, tracking
from dsm_utils.corpus_decont import DecontIndex, decontaminate, load_benchmark_items
from dsm_utils.data import data_dir as _data_dir

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
DATA = str(_data_dir(data_dir or None))
WORK = run.dir / "work"
ex_kw = dict(executor=executor, tasks=tasks, workers=workers)
if executor == "slurm":
    ex_kw["slurm"] = {"partition": slurm_partition}
ft = corpus.FastTextParams(dim=ft_dim, lr=ft_lr, word_ngrams=ft_word_ngrams, min_count=ft_min_count,
                           epoch=ft_epoch, bucket=ft_bucket, thread=ft_thread, max_chars=ft_max_chars,
                           min_words=ft_min_words)
stage_s: dict = {}
print("data:", DATA, "| run:", run.dir)

# %% [markdown]
# ## 1 · Read WARC, extract text keeping the math
#
# datatrove `WarcReader` → `MathToTex` (ours: rewrites `<img class="math" alt="\frac..">`, `<script type="math/tex">`
# and MathML `alttext` into `$…$` text, which every HTML-to-text extractor would otherwise drop; the mini-CC's
# SymPy pages render all formulas as such images) → extractor → `JsonlWriter`, on the executor chosen above.
#
# **Extractor decision.** Resiliparse (a small datatrove `BaseExtractor` subclass of ours, since datatrove 0.10.1
# ships only Trafilatura and Readability+Inscriptis) is the default when installed: on these pages datatrove's
# `Trafilatura` took 40–55 ms/page (21 ms with `no_fallback=True`), ≈3 minutes of the 4-minute budget for the
# 7.7 K pages on 2 cores, and up to ~200 ms/page on a loaded machine; Resiliparse's main-content mode is several times
# faster. Trafilatura remains selectable (`extractor="trafilatura"`) and is the fallback when resiliparse is absent.
# Our Resiliparse step extracts in-process: datatrove's `BaseExtractor.run` pipes every page to a sandbox process
# (a timeout guard for Python extractors), which cost more than the extraction itself; the step outputs are
# written uncompressed for the same reason (gzip level 9 ≈ 2 ms/page).

# %%
import time

t0 = time.time()
corpus.run_stage(corpus.extraction_pipeline(corpus.resolve(warc_folder, DATA), str(WORK / "extracted"), warc_glob,
                                            max_pages_per_task, extractor),
                 logging_dir=str(WORK / "logs_extract"), **ex_kw)
pages = corpus.load_pages(WORK / "extracted")
stage_s["extract"] = (time.time() - t0, len(pages))
used_extractor = extractor if extractor != "auto" else corpus.default_extractor()
print(f"{len(pages)} pages extracted with {used_extractor} in {stage_s['extract'][0]:.1f}s")
pd.Series(Counter(p["domain"] for p in pages)).sort_values(ascending=False).to_frame("pages")

# %% [markdown]
# ## 2 · Deduplicate the pool: URL, then MinHash near-duplicates
#
# **Dedup decision.** datatrove's MinHash is four executor stages (signatures → buckets → clusters → filter) with
# files on disk per stage; for a pool of a few thousand pages it costs more in process start-up and I/O than the
# dedup itself, so the toy pool uses a small in-process MinHash (64 permutations, 8 bands × 8 rows, word 5-gram
# shingles). At CC scale this stage is datatrove's `MinhashDedupSignature/Buckets/Cluster/Filter` on the same
# executor.

# %%
t0 = time.time()
n_extracted = len(pages)
pages = [p for p in pages if len(p["text"].split()) >= min_words]
n_short = n_extracted - len(pages)
pages, n_url_dups = corpus.url_dedup(pages)
pages, near_pairs = corpus.minhash_dedup(pages, num_perm=minhash_perm, bands=minhash_bands,
                                         rows=minhash_perm // minhash_bands, seed=seed)
corpus.write_pool(pages, WORK / "pool", shards=tasks)
stage_s["dedup"] = (time.time() - t0, n_extracted)
print(f"pool: {len(pages)} pages (dropped {n_short} short, {n_url_dups} URL dups, {len(near_pairs)} near dups)")
pd.DataFrame(near_pairs[:8], columns=["dropped", "near-duplicate of"])

# %% [markdown]
# ## 3 · Seed, negatives, ground truth, token counts
#
# Token counts use the project's toy tokenizer (`dsm_utils.tokenizer.default_tokenizer`); if it cannot be imported
# or loaded the count falls back to whitespace words, and the name printed below says which.
# **Decision.** The toy BPE runs at ~0.3 M tokens/s here, so exact counts of the whole pool (~20 M tokens) would
# take longer than all four rounds: pools above 600 K characters get a sampled estimate (tokens per character of
# a random ~600 K-character sample, times each page's length); small pools (smoke) are counted exactly.

# %%
seed_pages = (corpus.load_hub_texts(seed_hub_id, seed_limit) if seed_hub_id
              else corpus.load_math_qa_seed(corpus._glob(seed_glob, DATA)))
negatives = corpus.load_text_records(corpus._glob(negatives_glob, DATA))
labels = corpus.read_labels(corpus.resolve(labels_path, DATA)) if labels_path else None
tok_name, count_tokens = corpus.token_counter()
t0 = time.time()
token_counts, token_info = corpus.token_counts_for([p["text"] for p in pages], count_tokens, seed=seed)
stage_s["tokens"] = (time.time() - t0, len(pages))
print(f"seed {len(seed_pages)} pages, negatives {len(negatives)}, tokenizer: {tok_name}, "
      f"pool tokens {token_counts.sum():,} ({'exact' if token_info['exact'] else 'estimated: ' + str(token_info)})")

# %% [markdown]
# ## 4–5 · Four rounds: train fastText → score the pool → keep the top → domains > 10 % → annotate URL paths → grow the seed
#
# Scoring runs as a datatrove pipeline (`JsonlReader` → `FastTextClassifierFilter` → `JsonlWriter`) on the executor.
# The annotator is **simulated** here (`annotator="simulated"`): it labels each candidate path prefix `math` when most
# labelled pages under it are math. With `annotator="file"` a person fills in `annotations.tsv` (columns
# `domain  path_prefix  label  note`, label `math`/`not_math`; blank rows are the candidates still to do) — the
# helper cell after the loop lists the candidates with counts and sample titles.
#
# **Deviation.** The paper adds annotated math pages to the seed only. Here a prefix annotated `not_math` also adds its
# pages to the negatives (`use_annotated_negatives`): random CC pages are far from documentation pages, so without
# them the classifier cannot tell Python/PostgreSQL manuals from Octave/Maxima manuals (precision stays near the
# ~36 % math share of the deduplicated pool; most Octave pages are 9-word redirect stubs, dropped by `min_words`).
#
# **Keeping.** The paper keeps "the top-ranking" pages. Here a page is kept when it is in the top `keep_fraction`
# *and* its P(math) ≥ `min_score`. The threshold is skipped in round 1: the seed-vs-random-CC classifier is
# calibrated on another distribution than this pool (it can put almost every documentation page below 0.5), so
# round 1 is rank-only and serves domain discovery; from round 2 the classifier has trained on annotated pool
# pages and the threshold trims what it is unsure about.
#
# **fastText.** Each training runs in a freshly spawned interpreter (~1 s). This fasttext-numpy2-wheel build keeps
# state across trainings of one process: the same training repeated in one process fails with "Encountered NaN."
# from the third run on, at any learning rate and loss, and a forked child inherits the damage (measured; see
# `corpus.train_classifier`). Training and scoring both see the same normalised text (lower-cased, one line,
# `ft_max_chars`).

# %%
state = corpus.RoundState(pages, [s["text"] for s in seed_pages], [x["text"] for x in negatives])
ann_path = run.dir / annotation_file
t0 = time.time()
for r in tqdm(range(1, n_rounds + 1), desc="rounds"):
    rec = corpus.run_round(state, r, WORK, ft, keep_fraction=keep_fraction, min_score=min_score,
                           min_domain_fraction=min_domain_fraction,
                           annotator=annotator, labels=labels, annotation_file=ann_path,
                           annotation_depth=annotation_depth, use_annotated_negatives=use_annotated_negatives,
                           max_train_per_class=max_train_per_class, token_counts=token_counts, seed=seed, **ex_kw)
stage_s["rounds"] = (time.time() - t0, len(pages) * n_rounds)
stage_s["score"] = (sum(r["seconds_score"] for r in state.rounds), len(pages) * n_rounds)  # datatrove part
if annotator == "simulated":
    corpus.write_annotations(ann_path, state.annotations)  # what the simulated annotator decided, same format
cols = ["round", "n_pos_train", "n_neg_train", "pages_collected", "tokens_collected", "precision", "recall",
        "new_math_domains", "candidate_domains"]
rounds_df = pd.DataFrame(state.rounds)[[c for c in cols if c in state.rounds[0]]]
rounds_df

# %% [markdown]
# Interactive helper for a human annotator: candidate path prefixes of a selected domain with page counts and
# sample titles (edit `annotations.tsv` in the run folder, then rerun with `annotator="file"`).

# %%
cand_domain = state.rounds[-1]["candidate_domains"][0] if state.rounds[-1]["candidate_domains"] else pages[0]["domain"]
corpus.candidate_prefixes(state.pages, cand_domain, state.collected, depth=annotation_depth)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
rd = pd.DataFrame(state.rounds)
axes[0].bar(rd["round"], rd["tokens_collected"] if "tokens_collected" in rd else rd["pages_collected"], color="C0")
axes[0].set(xlabel="iteration", ylabel="tokens collected", title="collected per round")
if labels:
    axes[1].plot(rd["round"], rd["precision"], "o-", label="precision")
    axes[1].plot(rd["round"], rd["recall"], "s-", label="recall")
    axes[1].set(ylim=(0, 1.02), xlabel="iteration", title="vs ground-truth labels")
    axes[1].legend()
bins = np.linspace(0, 1, 21)
for rec in state.rounds:
    key = "score_hist_math" if labels else "score_hist"
    axes[2].step(bins[:-1], rec[key], where="post", label=f"round {rec['round']}")
axes[2].set(yscale="log", xlabel="fastText P(math)", title="score histogram" + (" (math pages)" if labels else ""))
axes[2].legend()
fig.tight_layout()
run.savefig(fig, "rounds.png")

# %% [markdown]
# ## 6 · Decontamination
#
# > "we filter out web pages containing questions or answers from English mathematical benchmarks such as GSM8K and
# > MATH and Chinese benchmarks such as CMATH and AGIEval. The filtering criteria are as follows: any text segment
# > containing a 10-gram string that matches exactly with any sub-string from the evaluation benchmarks is removed
# > from our math training corpus. For benchmark texts that are shorter than 10 grams but have at least 3 grams, we
# > employ exact matching to filter out contaminated web pages."
#
# **Decision.** Our own index (`dsm_utils.corpus_decont`), not datatrove's `NGramsDecont*`: those need `lighteval`,
# have no "short text as a whole" rule, and normalise every number to `0`, so a table of zeros would match GSM8K.
# Tokens: lower-cased words, CJK characters one by one, numbers verbatim; multiple-choice options are not indexed.

# %%
t0 = time.time()
final = [dict(p, round=int(state.first_round[i]), score=float(state.scores[i]), tokens=int(token_counts[i]))
         for i, p in enumerate(state.pages) if state.collected[i]]
index = DecontIndex.build(load_benchmark_items(DATA), n=decont_n, min_len=decont_min)
kept, dropped = decontaminate(final, index, progress=True)
stage_s["decontaminate"] = (time.time() - t0, len(final))
print("index:", index.sizes())
print(f"checked {len(final)} pages, dropped {len(dropped)}")
pd.DataFrame(dropped, columns=["url", "benchmark", "item", "field", "matched", "benchmark_text"])

# %% [markdown]
# ## 7 · Write the corpus
# `corpus.jsonl.gz` (`url, text, round, score`) in the run folder: notebooks 02/03 pre-train on it.

# %%
t0 = time.time()
corpus_path = corpus.write_corpus(run.dir / "corpus.jsonl.gz", kept)
stage_s["write"] = (time.time() - t0, len(kept))
total_tokens = int(sum(p["tokens"] for p in kept))
by_round = pd.DataFrame(kept).groupby("round").agg(pages=("url", "size"), tokens=("tokens", "sum"))
pages_per_s = {k: round(n / max(dt, 1e-9), 1) for k, (dt, n) in stage_s.items()}
print(f"{corpus_path}: {len(kept)} pages, {total_tokens:,} tokens ({tok_name})")
print("pages/s by stage:", pages_per_s)
run.log(
    extractor=used_extractor, tokenizer=tok_name, token_counts=token_info, pages_extracted=n_extracted, pool_pages=len(pages),
    dropped_short=n_short, dropped_url_dup=n_url_dups, dropped_near_dup=len(near_pairs),
    pages_by_round=[r["pages_collected"] for r in state.rounds],
    tokens_by_round=[r.get("tokens_collected") for r in state.rounds],
    precision_by_round=[r.get("precision") for r in state.rounds],
    recall_by_round=[r.get("recall") for r in state.rounds],
    domains_by_round=[r["math_domains"] for r in state.rounds],
    new_domains_by_round=[r["new_math_domains"] for r in state.rounds],
    score_hist_by_round=[r["score_hist"] for r in state.rounds],
    decont_checked=len(final), decont_dropped=len(dropped),
    decont_dropped_by_benchmark=dict(Counter(d["benchmark"] for d in dropped)), decont_examples=dropped[:50],
    corpus_path=str(corpus_path), corpus_pages=len(kept), corpus_tokens=total_tokens,
    pages_per_s_by_stage=pages_per_s,
)
by_round
