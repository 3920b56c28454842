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
def test_url_dedup_normalises():
    pages = [_page("https://www.Ex.org/a/index.html", "one"), _page("http://ex.org/a/", "two"),
             _page("https://ex.org/a#frag", "three"), _page("https://ex.org/b", "four")]
    kept, n = corpus.url_dedup(pages)
    assert n == 2 and [p["text"] for p in kept] == ["one", "four"]


def test_minhash_near_dup():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(5000)]
    base = " ".join(rng.choice(vocab, 400))
    near = base.replace(base.split()[200], "CHANGED", 1)  # one word changed of 400
    other = " ".join(rng.choice(vocab, 400))
    pages = [_page("https://a.org/1", base), _page("https://b.org/2", near), _page("https://c.org/3", other)]
    kept, pairs = corpus.minhash_dedup(pages)
    assert [p["url"] for p in kept] == ["https://a.org/1", "https://c.org/3"]
    assert pairs == [("https://b.org/2", "https://a.org/1")]
    with pytest.raises(ValueError, match="bands"):
        corpus.near_duplicates(np.zeros((2, 16), dtype=np.uint64), bands=8, rows=8)


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


def test_domain_discovery_threshold():
    pages, collected = _toy_pool()
    df = corpus.discover_domains([p["domain"] for p in pages], collected, min_fraction=0.10)
    sel = dict(zip(df["domain"], df["selected"]))
    assert sel == {"math.org": True, "news.com": False}  # 8/15 > 10 %; 1/20 = 5 %
    assert corpus.path_prefix("https://mathoverflow.net/questions/12/title") == "/questions/"
    assert corpus.path_prefix("https://x.org/a/b/c.html", depth=2) == "/a/b/"


def test_annotation_file_roundtrip_and_simulated_annotator(tmp_path):
    pages, collected = _toy_pool()
    cands = corpus.candidate_prefixes(pages, "math.org", collected)
    assert list(cands["path_prefix"]) == ["/wiki/", "/shop/"]
    assert list(cands["n_collected"]) == [8, 0] and "Theorem 0" in cands.loc[0, "sample_titles"]
    labels = {p["url"]: int("/wiki/" in p["url"]) for p in pages}
    ann = corpus.simulated_annotator([("math.org", "/wiki/"), ("math.org", "/shop/"), ("math.org", "/none/")],
                                     labels, pages)
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
def test_extraction_and_rounds_under_ray(data_root, tmp_path):
    """Extraction + one scoring round run as datatrove pipelines on a local Ray instance (2 CPUs), 8 pages.

    Ray is a declared dependency of the corpus extra: if it cannot start here the test FAILS with Ray's reason
    (it is not skipped), so a sandbox that cannot run Ray shows up in the report."""
    ray = pytest.importorskip("ray")
    try:
        corpus.start_local_ray(num_cpus=2)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        cfg = corpus.CorpusConfig(
            data_dir=str(data_root), work_dir=str(tmp_path / "work"), max_pages_per_task=2, executor="ray",
            tasks=2, workers=2, n_rounds=1, keep_fraction=0.5, min_score=0.0, min_words=5, count_tokens=False,
            ft=corpus.FastTextParams(dim=16, lr=0.2, word_ngrams=2, min_count=1, epoch=5, bucket=10_000,
                                     max_chars=3000))
        stats = corpus.run_pipeline(cfg)
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    assert 2 <= stats["pages_extracted"] <= 8 and stats["pool_pages"] > 0
    assert stats["rounds"][0]["pages_collected"] == round(0.5 * stats["pool_pages"])
    rows = [json.loads(line) for line in gzip.open(stats["corpus_path"], "rt")]
    assert rows and set(rows[0]) == {"url", "text", "round", "score"}
    assert all(r["round"] == 1 and 0 <= r["score"] <= 1 for r in rows)


def test_warc_extraction_local_keeps_math(data_root, tmp_path):
    """datatrove WarcReader + MathToTex + Trafilatura with the local executor; labels.tsv in the folder is skipped."""
    out = tmp_path / "ex"
    corpus.run_stage(corpus.extraction_pipeline(str(data_root / "web/minicc"), str(out), limit=30), "local",
                     tasks=1, workers=1, logging_dir=str(tmp_path / "logs"))
    pages = corpus.load_pages(out)
    assert 20 <= len(pages) <= 30
    assert all(p["url"].startswith("http") and p["domain"] and p["text"] for p in pages)
    assert any(p["title"] for p in pages)
