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
# The paper's recipe (§2.1, paraphrased): train a fastText classifier with OpenWebMath as the seed corpus —
# 500,000 seed pages as positives against 500,000 random Common Crawl pages as negatives (vector dimension 256,
# learning rate 0.1, word n-grams up to 3, minimum word count 3, 3 epochs); recall math pages from the URL- and
# near-deduplicated Common Crawl with it, rank them by score and keep the top-ranking ones. Then split Common Crawl
# into domains (pages sharing a base URL), call a domain math-related when over 10 % of its pages were collected
# in the first iteration (e.g. mathoverflow.net), annotate by hand its URLs with math content (e.g.
# mathoverflow.net/questions), and add the pages under them that were not collected to the seed corpus. Four
# iterations give 35.5M math web pages, 120B tokens.
#
# **At scale.** Every pass over the pages below is a datatrove pipeline stage under the chosen executor (local
# processes, Ray or Slurm): extraction, the short-page filter, URL dedup, datatrove's four MinHash stages, fastText
# scoring, the per-round statistics, the final selection, decontamination and writing. This notebook (the driver)
# only samples training pages, trains the classifier and reads small per-rank statistics files: it never holds
# the pool, so the same cells run over a Common Crawl segment on a cluster.
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
extractor = "auto"  # one of: "auto", "resiliparse", "trafilatura"; auto: resiliparse when installed
seed_glob = "web/math_qa/*.jsonl"  # seed pages (StackExchange threads)
seed_hub_id = ""  # e.g. "open-web-math/open-web-math": overrides seed_glob
seed_limit = -1
negatives_glob = "web/cc_wet_text/*.jsonl.gz"  # random Common Crawl pages (negatives)
labels_path = "web/minicc/labels.tsv"  # ground truth (evaluation + simulated annotator); "" at scale
annotator = "simulated"  # one of: "simulated", "file"; simulated: from labels; file: a person's TSV in the run folder
annotation_file = "annotations.tsv"  # relative to run_dir
annotation_depth = 1  # URL path prefix depth offered for annotation
use_annotated_negatives = True  # prefixes annotated not_math also become negatives (see decisions)
n_rounds = 4
keep_fraction = 0.35  # top-ranked fraction of the pool kept each round, at most
min_score = 0.5  # and only pages scored at least this, from round 2 on
min_domain_fraction = 0.10  # paper: domains with > 10 % of their pages collected
min_words = 20
minhash_bands = 8  # datatrove MinHash: buckets x hashes per bucket over word 5-grams
minhash_rows = 8
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
executor = "local"  # one of: "local", "ray", "slurm"
tasks = 4  # pool shards: tasks of every stage, at most one per WARC file
workers = 2  # processes of the heavy stages (extraction, scoring, decontamination) on the local executor
slurm_partition = "cpu"
slurm_time = "04:00:00"

# %%
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dsm_utils import corpus, tracking
from dsm_utils.data import data_dir as _data_dir

run = tracking.start_run(run_dir, tracking.notebook_params(globals()))
DATA = str(_data_dir(data_dir or None))
WORK = run.dir / "work"
ex_kw: dict = {"slurm": {"partition": slurm_partition, "time": slurm_time}} if executor == "slurm" else {}
cfg = corpus.CorpusConfig(
    data_dir=DATA, work_dir=str(WORK), warc_folder=warc_folder, warc_glob=warc_glob,
    max_pages_per_task=max_pages_per_task, extractor=extractor, labels_path=labels_path,
    annotation_depth=annotation_depth, min_words=min_words, seed=seed, executor=executor, tasks=tasks,
    workers=workers, executor_kwargs=ex_kw,
    dedup=corpus.DedupParams(bands=minhash_bands, rows=minhash_rows))
ft = corpus.FastTextParams(dim=ft_dim, lr=ft_lr, word_ngrams=ft_word_ngrams, min_count=ft_min_count,
                           epoch=ft_epoch, bucket=ft_bucket, thread=ft_thread, max_chars=ft_max_chars,
                           min_words=ft_min_words)
stage_s: dict = {}
print(f"data: {data_dir or '$DSM_DATA_DIR'} · run folder: {tracking.show_path(run.dir)} · executor: {executor} "
      f"({tasks} tasks) · datatrove log: {tracking.show_path(WORK / 'logs' / 'datatrove.log')}")

# %% [markdown]
# ## 1–2 · Read WARC, extract text keeping the math, filter, deduplicate: the pool
#
# One datatrove pipeline per stage, each task on one shard:
#
# | stage | datatrove steps |
# |---|---|
# | extract | `WarcReader` → `MathToTex` → extractor → `MinWords` → `JsonlWriter` → `ExactDedupSignature` (normalised URL) |
# | URL dedup | `ExactFindDedups`; then `JsonlReader` → `ExactDedupFilter` → `JsonlWriter` → `MinhashDedupSignature` |
# | near dedup | `MinhashDedupBuckets` (one task per band) → `MinhashDedupCluster` |
# | pool | `JsonlReader` → `MinhashDedupFilter` → `PoolStats` → `JsonlWriter` |
#
# `MathToTex` (ours) rewrites `<img class="math" alt="\frac..">`, `<script type="math/tex">` and MathML
# `alttext` into `$…$` text, which every HTML-to-text extractor would otherwise drop; the mini-CC's SymPy pages
# render all formulas as such images. `PoolStats` (ours) writes per-shard counts per domain and URL prefix, the
# ground-truth votes the simulated annotator reads, and a random sample of page texts for the token estimate.
#
# **Extractor decision.** Resiliparse (a small datatrove `BaseExtractor` subclass of ours, since datatrove 0.10.1
# ships only Trafilatura and Readability+Inscriptis) is the default when installed: on these pages datatrove's
# `Trafilatura` took 40–55 ms/page (21 ms with `no_fallback=True`), ≈3 minutes of the 4-minute budget for the
# 7.7 K pages on 2 cores; Resiliparse's main-content mode is several times faster. Trafilatura remains selectable
# (`extractor="trafilatura"`). Our Resiliparse step extracts in-process: datatrove's `BaseExtractor.run` pipes every
# page to a sandbox process (a timeout guard for Python extractors), which cost more than the extraction itself.
#
# **Dedup.** URL dedup is datatrove's exact dedup with the normalised URL as content (`corpus.url_key`: no
# scheme, `www.`, fragment, trailing `/` or index page). Near dedup is datatrove's MinHash with `minhash_bands`
# buckets of `minhash_rows` hashes over word 5-grams (8 × 8 collides ~50 % at Jaccard 0.92, ~98 % at 0.97);
# its word tokenizer is a plain whitespace split (datatrove's English one needs spaCy).

# %%
built = corpus.build_pool(cfg)
pool = built.pop("pool")
stage_s["extract"] = (built["seconds"]["extract"], built["pages_extracted"])
stage_s["dedup"] = (built["seconds"]["dedup"], built["pages_extracted"])
used_extractor = extractor if extractor != "auto" else corpus.default_extractor()
near_pairs = corpus.near_dup_examples(WORK, pool)
print(f"{built['pages_extracted']} pages extracted with {used_extractor}; pool {pool.n_pages} pages after dropping "
      f"{built['dropped_short']} short, {built['dropped_url_dup']} URL duplicates, "
      f"{built['dropped_near_dup']} near duplicates")
pd.Series(pool.domains, name="pages in the pool").sort_values(ascending=False).to_frame()

# %%
pd.DataFrame(near_pairs, columns=["dropped (near duplicate)", "kept page of its MinHash cluster"])

# %% [markdown]
# ## 3 · Seed, negatives, ground truth, token counts
#
# Token counts use the project's toy tokenizer (`dsm_utils.tokenizer.default_tokenizer`); if it cannot be loaded the
# count falls back to whitespace words, and the name printed below says which.
# **Decision.** The toy BPE runs at ~0.3 M tokens/s here, so exact counts of the whole pool (~20 M tokens) would take
# longer than all four rounds (and at CC scale are a job of their own): each page's tokens are its length times the
# tokens-per-character ratio of the random page sample `PoolStats` drew (`token_sample_pages` per shard).

# %%
seed_pages = (corpus.load_hub_texts(seed_hub_id, seed_limit) if seed_hub_id
              else corpus.load_math_qa_seed(corpus._glob(seed_glob, DATA)))
negatives = corpus.load_text_records(corpus._glob(negatives_glob, DATA))
labels_file = corpus.resolve(labels_path, DATA) if labels_path else ""
tok_name, count_tokens = corpus.token_counter()
tok_name = tracking.show_path(tok_name) if "/" in tok_name else tok_name  # a local tokenizer folder
t0 = time.time()
tpc = corpus.tokens_per_char(pool.sample, count_tokens)
stage_s["tokens"] = (time.time() - t0, len(pool.sample))
token_info = {"exact": False, "tokens_per_char": round(tpc, 4), "sample_pages": len(pool.sample)}
print(f"seed {len(seed_pages)} pages, negatives {len(negatives)}, tokenizer: {tok_name}, "
      f"{tpc:.3f} tokens per character from {len(pool.sample)} sampled pages → pool ≈ {pool.chars * tpc:,.0f} tokens")

# %% [markdown]
# ## 4–5 · Four rounds: train fastText → score the pool → keep the top → domains > 10 % → annotate URL paths → grow the seed
#
# Per round, three datatrove stages over the pool shards: `AnnotatedSample` (a reservoir sample of pages under
# annotated prefixes: the next classifier's in-distribution examples; skipped in round 1), scoring
# (`JsonlReader` → `FastTextNormalize` → `FastTextClassifierFilter` → `ScoreHistogram` → `JsonlWriter` of
# id/url/score), and `RoundStats` (what was kept, new and ever kept, per domain and URL prefix, against the
# ground truth). The driver merges the score histograms into the top-`keep_fraction` score and reads the
# statistics; it never sees a per-page list.
#
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
# **Keeping.** The paper keeps "the top-ranking" pages. Here a page is kept when its score is in the top
# `keep_fraction` (by score bins of 1e-5: pages tied in the last bin are all kept) *and* its P(math) ≥ `min_score`.
# The threshold is skipped in round 1: the seed-vs-random-CC classifier is calibrated on another distribution than
# this pool (it can put almost every documentation page below 0.5), so round 1 is rank-only and serves domain
# discovery; from round 2 the classifier has trained on annotated pool pages and the threshold trims what it is
# unsure about.
#
# **fastText.** Each training runs in a freshly spawned interpreter (~1 s). This fasttext-numpy2-wheel build keeps
# state across trainings of one process: the same training repeated in one process fails with "Encountered NaN."
# from the third run on, at any learning rate and loss, and a forked child inherits the damage (measured; see
# `corpus.train_classifier`). Training and scoring both see the same normalised text (lower-cased, one line,
# `ft_max_chars`).

# %%
state = corpus.RoundState([s["text"] for s in seed_pages], [x["text"] for x in negatives], pool, tpc)
ann_path = run.dir / annotation_file
t0 = time.time()
for r in tqdm(range(1, n_rounds + 1), desc="rounds"):
    rec = corpus.run_round(state, r, WORK, ft, keep_fraction=keep_fraction, min_score=min_score,
                           min_domain_fraction=min_domain_fraction, annotator=annotator, labels_path=labels_file,
                           annotation_file=ann_path, annotation_depth=annotation_depth,
                           use_annotated_negatives=use_annotated_negatives, max_train_per_class=max_train_per_class,
                           executor=executor, tasks=built["tasks"], workers=workers, seed=seed,
                           executor_kwargs=ex_kw)
stage_s["rounds"] = (time.time() - t0, pool.n_pages * n_rounds)
stage_s["score"] = (sum(r["seconds_score"] for r in state.rounds), pool.n_pages * n_rounds)  # datatrove part
if annotator == "simulated":
    corpus.write_annotations(ann_path, state.annotations)  # what the simulated annotator decided, same format
cols = ["round", "n_pos_train", "n_neg_train", "pages_collected", "new_pages", "cumulative_pages",
        "tokens_collected", "precision", "recall", "new_math_domains", "candidate_domains"]
rounds_df = pd.DataFrame(state.rounds)[[c for c in cols if c in state.rounds[0]]]
rounds_df

# %% [markdown]
# Interactive helper for a human annotator: candidate path prefixes of a selected domain with page counts and
# sample titles (edit `annotations.tsv` in the run folder, then rerun with `annotator="file"`).

# %%
cands = state.rounds[-1]["candidate_domains"]
cand_domain = cands[0] if cands else max(pool.domains, key=pool.domains.get)
corpus.candidate_prefixes(pool.prefixes, cand_domain, state.last_collected)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
rd = pd.DataFrame(state.rounds)
axes[0].bar(rd["round"], rd["tokens_collected"], color="C0")
axes[0].set(xlabel="iteration", ylabel="tokens collected", title="collected per round")
if labels_path:
    axes[1].plot(rd["round"], rd["precision"], "o-", label="precision")
    axes[1].plot(rd["round"], rd["recall"], "s-", label="recall")
    axes[1].set(ylim=(0, 1.02), xlabel="iteration", title="vs ground-truth labels")
    axes[1].legend()
bins = np.linspace(0, 1, 21)
for rec in state.rounds:
    key = "score_hist_math" if labels_path else "score_hist"
    axes[2].step(bins[:-1], rec[key], where="post", label=f"round {rec['round']}")
axes[2].set(yscale="log", xlabel="fastText P(math)", title="score histogram" + (" (math pages)" if labels_path else ""))
axes[2].legend()
fig.tight_layout()
run.savefig(fig, "rounds.png");

# %% [markdown]
# ## 6 · Decontamination
#
# The paper (§2.1, paraphrased) removes from the math corpus every web page holding a question or answer of English
# (GSM8K, MATH) or Chinese (CMATH, AGIEval) math benchmarks: any text segment with a 10-gram that matches a
# sub-string of a benchmark exactly, and, for benchmark texts shorter than 10 grams but of at least 3, an exact match.
#
# **Decision.** Our own index (`dsm_utils.corpus_decont`), not datatrove's `NGramsDecont*`: those need `lighteval`,
# have no "short text as a whole" rule, and normalise every number to `0`, so a table of zeros would match GSM8K.
# Tokens: lower-cased words, CJK characters one by one, numbers verbatim; multiple-choice options are not indexed.
# It runs as a datatrove step (`Decontaminate`, index built once per worker) in the final stage: `JsonlReader`
# (pool) → `FinalSelect` (kept in the last round; first round that kept it) → `Decontaminate` → `JsonlWriter`.

# %% [markdown]
# ## 7 · Write the corpus
# `corpus.jsonl.gz` (`url, text, round, score`) in the run folder: notebooks 02/03 pre-train on it. The final
# stage writes gzip shards; the driver concatenates their bytes (gzip members concatenate into one valid file).

# %%
t0 = time.time()
fin = corpus.finalize(state, WORK, DATA, run.dir / "corpus.jsonl.gz", decont_n=decont_n, decont_min=decont_min,
                      executor=executor, tasks=built["tasks"], workers=workers, executor_kwargs=ex_kw)
dec = fin["decont"]
stage_s["decontaminate+write"] = (time.time() - t0, dec["checked"])
print(f"index: {sum(dec['index_sizes'].values()):,} benchmark n-grams · checked {dec['checked']} pages, "
      f"dropped {len(dec['dropped'])}")
pd.DataFrame(dec["dropped"][:20], columns=["url", "benchmark", "item", "field", "matched", "benchmark_text"])

# %%
by_round = pd.DataFrame([{"round": r, "pages": p, "tokens": t} for r, (p, t) in dec["kept_by_round"].items()],
                        columns=["round", "pages", "tokens"]).set_index("round")
pages_per_s = {k: round(n / max(dt, 1e-9), 1) for k, (dt, n) in stage_s.items()}
print(f"corpus: {fin['pages']} pages, {fin['tokens']:,} tokens ({tok_name}) · pages/s by stage: "
      + ", ".join(f"{k} {v:,.0f}" for k, v in pages_per_s.items()))
run.log(
    extractor=used_extractor, tokenizer=tok_name, token_counts=token_info, pages_extracted=built["pages_extracted"],
    pool_pages=pool.n_pages, dropped_short=built["dropped_short"], dropped_url_dup=built["dropped_url_dup"],
    dropped_near_dup=built["dropped_near_dup"],
    pages_by_round=[r["pages_collected"] for r in state.rounds],
    new_pages_per_round=[r["new_pages"] for r in state.rounds],
    cumulative_pages_per_round=[r["cumulative_pages"] for r in state.rounds],
    tokens_by_round=[r.get("tokens_collected") for r in state.rounds],
    precision_by_round=[r.get("precision") for r in state.rounds],
    recall_by_round=[r.get("recall") for r in state.rounds],
    domains_by_round=[r["math_domains"] for r in state.rounds],
    new_domains_by_round=[r["new_math_domains"] for r in state.rounds],
    score_hist_by_round=[r["score_hist"] for r in state.rounds],
    decont_checked=dec["checked"], decont_dropped=len(dec["dropped"]),
    decont_dropped_by_benchmark=dict(Counter(d["benchmark"] for d in dec["dropped"])),
    decont_examples=dec["dropped"][:50], corpus_path=str(fin["path"]), corpus_pages=fin["pages"],
    corpus_tokens=fin["tokens"], pages_per_s_by_stage=pages_per_s, executor=executor, tasks=built["tasks"],
);
by_round
