"""Math corpus pipeline (DeepSeekMath §2.1): dedup, classifier, domains, annotation, decontamination, executors."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from dsm_utils import corpus
from dsm_utils.corpus_decont import BenchItem, DecontIndex, decont_tokens, decontaminate, load_benchmark_items
from dsm_utils.data import DataError


def _page(url: str, text: str, title: str = "") -> dict:
    return {"id": url, "url": url, "domain": corpus.domain_of(url), "title": title, "text": text}


# ---------------------------------------------------------------- extraction helpers
def test_math_to_tex_keeps_formulas():
    html = ('<p>x <img class="math" src="a.png" alt="\\frac{a}{b}"/> and <img src="logo.png" alt="Logo"/></p>'
            '<script type="math/tex; mode=display">x^2 < 1</script>'
            '<math alttext="\\sqrt{2}"><msqrt><mn>2</mn></msqrt></math>')
    out = corpus.math_to_tex(html)
    assert "$\\frac{a}{b}$" in out and 'alt="Logo"' in out
    assert "$$x^2 &lt; 1$$" in out and "$\\sqrt{2}$" in out and "<math" not in out


# ---------------------------------------------------------------- dedup
def test_url_key_normalises():
    keys = {corpus.url_key(u) for u in ["https://www.Ex.org/a/index.html", "http://ex.org/a/", "https://ex.org/a#frag"]}
    assert keys == {"ex.org/a"} and corpus.url_key("https://ex.org/b?x=1") == "ex.org/b?x=1"


def _write_warc(path: Path, pages: list[tuple[str, str]]) -> None:
    """A WARC file of HTML responses (url, body), as Common Crawl ships them."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for url, body in pages:
            html = f"<html><head><title>{url}</title></head><body><article><p>{body}</p></article></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=BytesIO(html.encode()),
                                                http_headers=headers))


def test_pool_stages_drop_short_url_and_near_duplicates(tmp_path):
    """build_pool on a synthetic WARC: the datatrove stages drop a short page, a URL duplicate (another spelling of
    the same URL) and a near duplicate (MinHash), and PoolStats counts what is left."""
    rng = np.random.default_rng(0)
    # letters only: datatrove's MinHash text normalisation maps every digit to 0
    vocab = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 6)) for _ in range(5000)]
    base = " ".join(rng.choice(vocab, 400))
    near = base.replace(base.split()[200], "changed", 1)  # one word changed of 400
    other = " ".join(rng.choice(vocab, 400))
    warcs = tmp_path / "warc"
    warcs.mkdir()
    _write_warc(warcs / "a.warc.gz", [("https://a.org/1", base), ("https://www.a.org/1/", base),
                                      ("https://c.org/3", other), ("https://d.org/short", "too short")])
    _write_warc(warcs / "b.warc.gz", [("https://b.org/2", near)])
    cfg = corpus.CorpusConfig(data_dir=str(tmp_path), work_dir=str(tmp_path / "work"), warc_folder=str(warcs),
                              tasks=2, workers=1, labels_path="", min_words=20)
    built = corpus.build_pool(cfg)
    pool = built["pool"]
    assert (built["pages_extracted"], built["dropped_short"], built["dropped_url_dup"], built["dropped_near_dup"]) \
        == (5, 1, 1, 1)
    assert pool.n_pages == 2 and set(pool.domains) == {"a.org", "c.org"}
    kept = {p["url"] for p in corpus.iter_pages(tmp_path / "work" / "pool")}
    assert "https://c.org/3" in kept and len(kept & {"https://a.org/1", "https://www.a.org/1/"}) == 1
    [(dropped, kept_of_cluster)] = corpus.near_dup_examples(tmp_path / "work", pool)
    assert dropped == "https://b.org/2" and kept_of_cluster in kept


# ---------------------------------------------------------------- classifier
def test_classifier_train_and_score(tmp_path, data_root):
    """Tiny real sample: train on half the seed threads vs half the CC pages, score the other halves.
    (Synthetic bag-of-random-words data makes this fastText build diverge to NaN, so real text it is.)"""
    seed = corpus.load_math_qa_seed(sorted((data_root / "web/math_qa").glob("*.jsonl")))
    neg = corpus.load_text_records(sorted((data_root / "web/cc_wet_text").glob("*.jsonl.gz")))
    pos, ng = [s["text"] for s in seed], [n["text"] for n in neg]
    params = corpus.FastTextParams(dim=32, lr=0.2, word_ngrams=2, min_count=2, epoch=10, bucket=100_000,
                                   max_chars=3000)
    for rep in range(3):  # three trainings from one test process (this fastText build fails that in-process)
        model = corpus.train_classifier(pos[::2], ng[::2], tmp_path / "m.bin", params, seed=rep)
        assert (tmp_path / "m.bin").exists() and (tmp_path / "m.bin").stat().st_size < 20_000_000
        s1 = corpus.math_scores(model, pos[1::2], params.max_chars)
        s0 = corpus.math_scores(model, ng[1::2], params.max_chars)
        auc = (s1[:, None] > s0[None, :]).mean()
        assert auc > 0.85, (rep, auc)
    with pytest.raises(ValueError, match="positives and negatives"):
        corpus.train_classifier(pos, [], tmp_path / "x.bin", params)
    with pytest.raises(ValueError, match="positives and negatives"):  # too short after normalisation
        corpus.train_classifier(["a b"], ng[:3], tmp_path / "x.bin", params)


def test_ft_line_normalises():
    assert corpus.ft_line("  Foo\tBAR\n\nbaz  ") == "foo bar baz"
    assert corpus.ft_line("Abc Def", max_chars=5) == "abc d"


# ---------------------------------------------------------------- domains and annotation
def _toy_pool():
    pages = [_page(f"https://math.org/wiki/p{i}.html", "m", f"Theorem {i}") for i in range(10)]
    pages += [_page(f"https://math.org/shop/p{i}.html", "s", f"Shop {i}") for i in range(5)]
    pages += [_page(f"https://news.com/a/p{i}.html", "n", f"News {i}") for i in range(20)]
    collected = np.array([True] * 8 + [False] * 2 + [False] * 5 + [True] * 1 + [False] * 19)
    return pages, collected


def _toy_stats(pages, collected):
    """What PoolStats / RoundStats write for the toy pool: counts per domain and (domain, prefix), titles."""
    from collections import Counter

    n_pages = Counter(p["domain"] for p in pages)
    n_coll = Counter(p["domain"] for p, c in zip(pages, collected) if c)
    prefixes: dict = {}
    for p in pages:
        s = prefixes.setdefault((p["domain"], corpus.path_prefix(p["url"])), {"n_pages": 0, "titles": []})
        s["n_pages"] += 1
        if len(s["titles"]) < 3:
            s["titles"].append(p["title"])
    coll_pfx = Counter((p["domain"], corpus.path_prefix(p["url"])) for p, c in zip(pages, collected) if c)
    return n_pages, n_coll, prefixes, coll_pfx


def test_domain_discovery_threshold():
    pages, collected = _toy_pool()
    n_pages, n_coll, _, _ = _toy_stats(pages, collected)
    df = corpus.discover_domains(n_pages, n_coll, min_fraction=0.10)
    sel = dict(zip(df["domain"], df["selected"]))
    assert sel == {"math.org": True, "news.com": False}  # 8/15 > 10 %; 1/20 = 5 %
    assert corpus.path_prefix("https://mathoverflow.net/questions/12/title") == "/questions/"
    assert corpus.path_prefix("https://x.org/a/b/c.html", depth=2) == "/a/b/"


def test_annotation_file_roundtrip_and_simulated_annotator(tmp_path):
    pages, collected = _toy_pool()
    _, _, prefixes, coll_pfx = _toy_stats(pages, collected)
    cands = corpus.candidate_prefixes(prefixes, "math.org", coll_pfx)
    assert list(cands["path_prefix"]) == ["/wiki/", "/shop/"]
    assert list(cands["n_collected"]) == [8, 0] and "Theorem 0" in cands.loc[0, "sample_titles"]
    votes = {("math.org", "/wiki/"): (10, 10), ("math.org", "/shop/"): (5, 0)}  # (labelled, math) per prefix
    ann = corpus.simulated_annotator([("math.org", "/wiki/"), ("math.org", "/shop/"), ("math.org", "/none/")],
                                     votes)
    assert [(a.path_prefix, a.label) for a in ann] == [("/wiki/", "math"), ("/shop/", "not_math")]
    assert ann[0].note.startswith("simulated")
    path = corpus.write_annotations(tmp_path / "ann.tsv", ann + [corpus.Annotation("x.org", "/todo/", "")])
    assert path.read_text().splitlines()[0] == "domain\tpath_prefix\tlabel\tnote"
    back = corpus.read_annotations(path)  # the blank (not yet annotated) row is skipped
    assert back == ann
    got = corpus.annotation_labels(pages, back)
    assert got[0] == "math" and got[10] == "not_math" and got[20] is None


@pytest.mark.parametrize("body,match", [
    ("math.org\t/wiki/\tmaybe\n", r"ann.tsv:2: column 'label'"),
    ("math.org\twiki/\tmath\n", r"ann.tsv:2: column 'path_prefix'"),
    ("math.org\t/wiki/\n", r"ann.tsv:2: expected columns"),
])
def test_annotation_file_errors_name_line(tmp_path, body, match):
    p = tmp_path / "ann.tsv"
    p.write_text("domain\tpath_prefix\tlabel\tnote\n" + body)
    with pytest.raises(DataError, match=match):
        corpus.read_annotations(p)
    p.write_text("url\tlabel\n")
    with pytest.raises(DataError, match="ann.tsv:1: header"):
        corpus.read_annotations(p)


def test_malformed_inputs_name_file_and_key(tmp_path):
    bad = tmp_path / "labels.tsv"
    bad.write_text("url\tdomain\nhttps://a\ta\n")
    with pytest.raises(DataError, match="labels.tsv:1: missing column 'is_math_domain'"):
        corpus.read_labels(bad)
    bad.write_text("url\tis_math_domain\nhttps://a\tyes\n")
    with pytest.raises(DataError, match="labels.tsv:2: column 'is_math_domain'"):
        corpus.read_labels(bad)
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"question": {"title": "t", "body_text": "b"}}\n{"thread_id": 1}\n')
    with pytest.raises(DataError, match="seed.jsonl:2: expected key 'question'"):
        corpus.load_math_qa_seed([seed])
    neg = tmp_path / "neg.jsonl"
    neg.write_text('{"text": "ok"}\n{"body": "x"}\n')
    with pytest.raises(DataError, match="neg.jsonl:2: missing key 'text'"):
        corpus.load_text_records([neg])
    neg.write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(DataError, match="neg.jsonl:2: malformed JSON"):
        corpus.load_text_records([neg])
    with pytest.raises(FileNotFoundError, match="no files match"):
        corpus._glob("nothing/*.jsonl", str(tmp_path))
    with pytest.raises(ValueError, match="executor must be"):
        corpus.make_executor([], "spark")


# ---------------------------------------------------------------- decontamination
def _index():
    items = [BenchItem("gsm8k", 1, "question", "Janet's ducks lay 16 eggs per day. She eats three for breakfast "
                                             "every morning and bakes muffins for her friends every day with four."),
             BenchItem("math", 7, "answer", "The answer is $x = 42$."),  # 6 grams: matched only as a whole
             BenchItem("cmath", 3, "answer", "18")]  # 1 gram: never matched
    return DecontIndex.build(items, n=10, min_len=3)


def test_decont_drops_planted_10gram_page():
    idx = _index()
    planted = _page("https://blog.org/x", "Homework help!\nJanet’s ducks LAY 16 eggs per day, she eats three for "
                                          "breakfast -- see below.")
    clean = _page("https://blog.org/y", "Ducks lay eggs. 16 eggs per day is a lot for one duck, says Janet.")
    kept, dropped = decontaminate([planted, clean], idx)
    assert [p["url"] for p in kept] == ["https://blog.org/y"]
    assert dropped[0]["benchmark"] == "gsm8k" and dropped[0]["item"] == 1
    assert dropped[0]["matched"] == "janet s ducks lay 16 eggs per day she eats"


def test_decont_numbers_not_normalised():
    idx = _index()
    zeros = _page("https://x.org/m", "A = [" + " ".join(["0"] * 100) + "]\n" + "| 0 | 0 | 0 |\n" * 20)
    other_numbers = _page("https://x.org/n", "Janet's ducks lay 99 eggs per day. She eats")  # 16 -> 99
    kept, dropped = decontaminate([zeros, other_numbers], idx)
    assert dropped == [] and len(kept) == 2


def test_decont_short_answer_matched_only_as_whole():
    idx = _index()
    assert idx.match("so the answer is x 42 indeed")[0].item == 7  # contiguous whole text inside a page: match
    assert idx.match("the answer is x = 41") is None  # a different number
    assert idx.match("the answer is not x = 42") is None  # not contiguous
    assert idx.match("it costs 18 dollars") is None  # 1-gram benchmark text is never matched
    assert decont_tokens("设集合 $A=\\{x\\}$") == ["设", "集", "合", "a", "x"]


def test_decont_real_benchmarks_do_not_match_zero_tables(data_root):
    items = load_benchmark_items(data_root)
    assert {i.benchmark for i in items} >= {"gsm8k", "math", "cmath", "mgsm_zh", "agieval", "ocw", "sat",
                                            "mmlu_stem"}
    idx = DecontIndex.build(items)
    q = next(i for i in items if i.benchmark == "gsm8k" and i.field == "question")
    assert idx.match("intro " + q.text + " outro") is not None
    assert idx.match("\n".join(" ".join(["0"] * 12) for _ in range(12))) is None
    assert idx.match("\\begin{pmatrix} 0 & 0 & 0 \\\\ 0 & 0 & 0 \\\\ 0 & 0 & 0 \\end{pmatrix}") is None


# ---------------------------------------------------------------- datatrove stages + executors
def _small_cfg(data_root, work, executor: str) -> "corpus.CorpusConfig":
    return corpus.CorpusConfig(
        data_dir=str(data_root), work_dir=str(work), max_pages_per_task=25, executor=executor, tasks=4, workers=2,
        n_rounds=2, keep_fraction=0.35, max_train_per_class=300, count_tokens=False,
        ft=corpus.FastTextParams(dim=16, lr=0.5, word_ngrams=2, min_count=2, epoch=15, bucket=20_000, max_chars=2000))


def _corpus_rows(stats) -> list[dict]:
    return sorted((json.loads(line) for line in gzip.open(stats["corpus_path"], "rt")), key=lambda r: r["url"])


def test_local_and_ray_executors_keep_the_same_pages(data_root, tmp_path):
    """The whole pipeline (pool stages, 2 rounds, final stage) on 100 mini-CC pages, once with the local executor
    and once on a local Ray instance (2 CPUs): the same pages, rounds and scores.

    Ray is a declared dependency of the corpus extra: if it cannot start here the test FAILS with Ray's reason
    (it is not skipped), so a sandbox that cannot run Ray shows up in the report."""
    ray = pytest.importorskip("ray")
    local = corpus.run_pipeline(_small_cfg(data_root, tmp_path / "local", "local"))
    try:
        corpus.start_local_ray(num_cpus=2)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        on_ray = corpus.run_pipeline(_small_cfg(data_root, tmp_path / "ray", "ray"))
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    rows = _corpus_rows(local)
    assert rows and set(rows[0]) == {"url", "text", "round", "score"}
    assert all(r["round"] in (1, 2) and 0 <= r["score"] <= 1.0001 for r in rows)
    assert rows == _corpus_rows(on_ray)
    for key in ("pages_extracted", "pool_pages", "dropped_url_dup", "dropped_near_dup", "corpus_pages"):
        assert local[key] == on_ray[key], key
    assert [r["pages_collected"] for r in local["rounds"]] == [r["pages_collected"] for r in on_ray["rounds"]]
    r2 = local["rounds"][1]
    assert r2["cumulative_pages"] == local["rounds"][0]["pages_collected"] + r2["new_pages"]


def test_slurm_job_scripts_without_a_cluster(data_root, tmp_path, monkeypatch):
    """datatrove's SlurmPipelineExecutor writes its sbatch scripts and the pickled pipeline; a stand-in ``sbatch``
    on PATH records the submissions (no cluster here). Rank 0 of the pickled extraction then runs as a Slurm array
    task would (``launch_pickled_pipeline``), which proves the pickled pipeline is complete."""
    import os
    import subprocess
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "sbatch_calls.txt"
    (bindir / "sbatch").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\necho Submitted batch job 4242\n")
    (bindir / "scontrol").write_text("#!/bin/sh\necho localhost\n")  # what a Slurm node answers
    for tool in ("sbatch", "scontrol"):
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    slurm = {"partition": "cpu-long", "time": "01:00:00", "cpus_per_task": 2}
    extract = corpus.make_executor(
        corpus.extraction_pipeline(str(data_root / "web/minicc"), str(work / "extracted"), limit=5, min_words=20,
                                   url_sig_folder=str(work / "dedup/url_sigs")),
        "slurm", tasks=4, workers=2, logging_dir=str(work / "logs/extract"), slurm=slurm)
    find, _ = corpus.url_dedup_stages(str(work / "extracted"), str(work / "dedup/url_sigs"),
                                      str(work / "dedup/url_dups"), str(work / "urldedup"),
                                      str(work / "dedup/minhash_sigs"), corpus.DedupParams())
    url_find = corpus.make_executor(find, "slurm", tasks=1, workers=1, logging_dir=str(work / "logs/url_find"),
                                    slurm=slurm, depends=extract)
    url_find.run()  # submits the extraction first, then the dependent job
    script = (work / "logs/extract/launch_script.slurm").read_text()
    for line in ("#SBATCH --partition=cpu-long", "#SBATCH --time=01:00:00", "#SBATCH --cpus-per-task=2",
                 "#SBATCH --array=0-3%2", "launch_pickled_pipeline"):
        assert line in script, line
    assert f"source {Path(sys.prefix) / 'bin' / 'activate'}" in script
    assert "#SBATCH --array=0-0" in (work / "logs/url_find/launch_script.slurm").read_text()
    submitted = calls.read_text().splitlines()
    assert any("--dependency=afterok:4242" in c for c in submitted)
    # rank 0 of the extraction, as Slurm would start it
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", RUN_OFFSET="0", SLURM_NODELIST="localhost",
               PYTHONPATH=str(Path(corpus.__file__).parents[1]))
    subprocess.run([str(Path(sys.executable).parent / "launch_pickled_pipeline"),
                    str(work / "logs/extract/executor.pik")], env=env, check=True, capture_output=True, timeout=300)
    pages = list(corpus.iter_pages(work / "extracted"))
    assert 1 <= len(pages) <= 5 and all(p["url"].startswith("http") for p in pages)
    assert (work / "dedup/url_sigs").exists()


def test_warc_extraction_local_keeps_math(data_root, tmp_path):
    """datatrove WarcReader + MathToTex + extractor with the local executor; labels.tsv in the folder is skipped."""
    out = tmp_path / "ex"
    corpus.run_stage(corpus.extraction_pipeline(str(data_root / "web/minicc"), str(out), limit=30), "local",
                     tasks=1, workers=1, logging_dir=str(tmp_path / "logs"))
    pages = list(corpus.iter_pages(out))
    assert 20 <= len(pages) <= 30
    assert all(p["url"].startswith("http") and p["domain"] and p["text"] for p in pages)
    assert any(p["title"] for p in pages)
    assert "datatrove" in (tmp_path / "datatrove.log").read_text()  # INFO went to the log file
