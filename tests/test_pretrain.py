"""dsm_utils.pretrain: schedule, packing, mixtures, the accelerate loop (2 processes = 1 process at twice the
batch; a stopped run resumes to the same losses), bits per byte, sources and the paper tables."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsm_utils import pretrain

REPO = Path(__file__).resolve().parent.parent


def test_multistep_schedule_matches_the_paper():
    lr = lambda s: pretrain.multistep_lr(s, total_steps=100, peak_lr=1.0, warmup_steps=10)  # noqa: E731
    assert lr(0) == pytest.approx(0.1) and lr(4) == pytest.approx(0.5) and lr(9) == pytest.approx(1.0)
    assert lr(10) == 1.0 and lr(79) == 1.0
    assert lr(80) == pytest.approx(0.316) and lr(89) == pytest.approx(0.316)
    assert lr(90) == pytest.approx(0.1) and lr(99) == pytest.approx(0.1)


def test_pack_tokens_joins_with_eos_and_drops_the_tail():
    b = pretrain.pack_tokens([[1, 2, 3], [4, 5], [6]], seq_len=4, eos_id=0)
    assert b.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6]]  # the trailing [0] is shorter than a block
    with pytest.raises(ValueError, match="seq_len"):
        pretrain.pack_tokens([[1]], seq_len=1, eos_id=0)


def test_mixture_order_shares_repeats_and_checks_names():
    order = pretrain.mixture_order({"a": 3, "b": 100}, {"a": 0.5, "b": 0.5}, n_blocks=20, seed=0)
    names = [n for n, _ in order]
    assert len(order) == 20 and names.count("a") == 10 and names.count("b") == 10
    a_idx = sorted(i for n, i in order if n == "a")
    assert set(a_idx) == {0, 1, 2}  # 3 blocks repeated (epochs) to fill 10
    assert order == pretrain.mixture_order({"a": 3, "b": 100}, {"a": 0.5, "b": 0.5}, n_blocks=20, seed=0)
    with pytest.raises(ValueError, match="unknown sources"):
        pretrain.mixture_order({"a": 3}, {"c": 1.0}, 5, 0)


def test_params_reject_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['lr_peak'\]"):
        pretrain.PretrainParams.from_dict({"model": "llama-1m", "tokenizer": "t", "data": {}, "tokens": 1,
                                           "lr_peak": 1.0})
    with pytest.raises(ValueError, match="missing required keys"):
        pretrain.PretrainParams.from_dict({"model": "llama-1m"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A few thousand tokens of standard-library code packed into 32-token blocks, plus eval pairs."""
    from dsm_utils.tokenizer import default_tokenizer

    d = tmp_path_factory.mktemp("pretrain")
    tok = default_tokenizer()
    info = pretrain.write_blocks(d / "code.npy", tok, pretrain.stdlib_texts("train", 30_000), seq_len=32)
    pretrain.write_pairs(d / "code_test.jsonl", pretrain.code_eval_pairs("test", 3, max_file_chars=600))
    tok_dir = str(REPO / "runs/_cache/toy_tokenizer")
    base = {"model": "llama-1m", "tokenizer": tok_dir, "data": {str(d / "code.npy"): 1.0}, "tokens": 32 * 8 * 12,
            "seq_len": 32, "batch_size": 8, "lr": 3e-3, "log_every": 1, "save_model": False, "seed": 3}
    return d, base, info, tok


def test_write_blocks_reports_sizes(tiny):
    d, _, info, _ = tiny
    a = np.load(d / "code.npy")
    assert a.shape == (info["blocks"], 32) and a.dtype == np.int32
    assert info["tokens"] >= a.size and info["chars"] > info["tokens"]


def test_train_learns_and_writes_metrics(tiny, tmp_path):
    _, base, _, _ = tiny
    params = dict(base, eval={"code": str(tiny[0] / "code_test.jsonl")})
    m = pretrain.train(params, tmp_path / "run")
    assert m["done"] and m["steps"] == 12 and m["tokens"] == 32 * 8 * 12
    losses = [h["loss"] for h in m["loss"]]
    assert losses[-1] < losses[0] - 0.5  # it learns
    assert [h["lr"] for h in m["loss"]][-1] == pytest.approx(0.1 * 3e-3)  # last 10 %: 10 % of the peak
    assert 0 < m["bpb"]["code"] < 8
    again = pretrain.train(params, tmp_path / "run")  # done with the same params: read back, not retrained
    assert again == json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_stopped_run_resumes_to_the_same_losses(tiny, tmp_path):
    _, base, _, _ = tiny
    params = dict(base, ckpt_every=4)
    full = pretrain.train(params, tmp_path / "full")
    part = pretrain.train(dict(params, stop_after=6), tmp_path / "resumed")  # "killed" after step 6
    assert part["stopped_at"] == 6 and (tmp_path / "resumed" / "checkpoint" / "state.json").exists()
    assert json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())["step"] == 4
    resumed = pretrain.train(params, tmp_path / "resumed")
    assert [h["step"] for h in resumed["loss"]] == list(range(1, 13))
    np.testing.assert_allclose([h["loss"] for h in resumed["loss"]], [h["loss"] for h in full["loss"]],
                               rtol=0, atol=1e-6)
    assert not (tmp_path / "resumed" / "checkpoint").exists()  # the final model replaced it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_at_twice_the_batch(tiny, tmp_path):
    """`accelerate launch` with 2 CPU processes (torchrun, gloo DDP) vs one process with twice the batch."""
    _, base, _, _ = tiny
    one = dict(base, batch_size=8)
    two = dict(base, batch_size=4)
    (tmp_path / "two.json").write_text(json.dumps(two))
    ref = pretrain.train(one, tmp_path / "one")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()),
           "-m", "dsm_utils.pretrain", "--params", str(tmp_path / "two.json"), "--run-dir", str(tmp_path / "two")]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert got["world_size"] == 2 and ref["world_size"] == 1
    assert got["global_batch"] == ref["global_batch"] == 8 and got["steps"] == ref["steps"]
    np.testing.assert_allclose([h["loss"] for h in got["loss"]], [h["loss"] for h in ref["loss"]],
                               rtol=0, atol=1e-5)


def test_bits_per_byte_is_the_model_loss_per_byte(tiny):
    import torch

    from dsm_utils.models import load_model

    _, _, _, tok = tiny
    model = load_model("llama-1m", tok, seed=0).eval()
    text = "def add(a, b):\n    return a + b\n"
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    want = loss * (len(ids) - 1) / math.log(2) / len(text.encode())
    assert pretrain.bits_per_byte(model, tok, [("", text)]) == pytest.approx(want, rel=1e-4)
    # a context is conditioned on but not scored
    assert pretrain.bits_per_byte(model, tok, [("x = 1\n", text), ("", text)]) != pytest.approx(want, rel=1e-6)


def test_eval_splits_are_disjoint_and_benchmark_based():
    test = {t for _, t in pretrain.code_eval_pairs("test", 5, max_file_chars=10 ** 9)}
    val = {t for _, t in pretrain.code_eval_pairs("validation", 5, max_file_chars=10 ** 9)}
    train = set(pretrain.stdlib_texts("train", 200_000, max_file_chars=10 ** 9))
    assert test and val and not (test & val) and not (test & train) and not (val & train)
    mt = pretrain.math_eval_pairs("test", 3)
    mv = pretrain.math_eval_pairs("validation", 3)
    assert len(mt) == len(mv) == 6 and not ({c for c, _ in mt} & {c for c, _ in mv})
    assert all(c.startswith("Problem:\n") and "<<" not in t for c, t in mt)
    with pytest.raises(ValueError, match="split"):
        pretrain.math_eval_pairs("train", 3)


def test_sources_need_the_math_corpus_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_math_corpus"):
        pretrain.source_texts("dsm_corpus", tmp_path / "01_math_corpus")
    with pytest.raises(ValueError, match="unknown source"):
        pretrain.source_texts("books", tmp_path)
    assert len(pretrain.source_texts("seed_only", tmp_path)) == 200  # the StackExchange threads
    assert sum(map(len, pretrain.source_texts("arxiv", tmp_path, max_chars=50_000))) >= 50_000


def test_paper_vs_ours_puts_the_paper_row_beside_each_arm():
    metrics = {"arms": {"no_math": {"math_bpb": [2.0, 2.1, 2.2], "code_bpb": [3, 3, 3], "toy_acc": [0, 0, 0]},
                        "dsm_corpus": {"math_bpb": [1.5, 1.6, 1.7], "code_bpb": [3, 3, 3], "toy_acc": [0, 0.1, 0]}}}
    df = pretrain.paper_vs_ours(metrics, "table1")
    assert list(df["paper row"]) == ["No Math Training", "DeepSeekMath Corpus"]
    assert df.loc[1, "paper gsm8k"] == 23.8 and df.loc[1, "math bpb"].startswith("1.600 ±")
    with pytest.raises(ValueError, match="valid"):
        pretrain.paper_vs_ours(metrics, "table5")


def test_tokens_zero_evaluates_the_model_as_it_is(tiny, tmp_path):
    d, base, _, _ = tiny
    m = pretrain.train(dict(base, tokens=0, eval={"code": str(d / "code_test.jsonl")}), tmp_path / "eval")
    assert m["done"] and m["steps"] == 0 and m["bpb"]["code"] > 0
    assert not (tmp_path / "eval" / "model").exists()  # nothing trained: the model is params["model"] itself
    j = pretrain.job("base-eval", dict(base, tokens=0), tmp_path)
    assert pretrain.model_of(j) == "llama-1m"
    k = pretrain.job("base", base, tmp_path)
    assert pretrain.model_of(k).endswith("/model") and k.run_dir != pretrain.job("base", dict(base, seed=4), tmp_path).run_dir
