"""The launch path: in-process vs ``accelerate launch`` on 2 CPU processes (gloo), TRL stages, accelerate configs."""
from __future__ import annotations

import json
import os
from unittest import mock

import pytest

from dsm_utils import REPO_ROOT, launch, problems, sft, sft_loop

pytest.importorskip("accelerate")


@pytest.fixture(scope="module")
def sft_rows() -> list[dict]:
    recs = sft.build_records(problems.generate(48, seed=0, prefix="sft"), {"cot": 0.5, "tool": 0.5}, seed=0)
    return sft_loop.record_rows(recs)


def test_sft_loss_on_two_processes_equals_one_process(tmp_path, sft_rows):
    """Same global batch (8): one process in one micro-batch vs 2 processes x 2 micro-batches of 2."""
    params = dict(init_from="llama-1m", steps=3, global_batch_size=8, lr=3e-3, max_len=160, save=False)
    one = launch.launch("sft_loop", params, tmp_path / "one", records=sft_rows)
    two = launch.launch("sft_loop", dict(params, micro_batch_size=2, save=True), tmp_path / "two", records=sft_rows,
                        num_processes=2, config="cpu", stream=False)
    assert one.command is None and two.command is not None and "--num_processes" in two.command
    assert two.metrics["num_processes"] == 2 and two.metrics["grad_accum"] == 2
    a = [h["loss"] for h in one.metrics["loss_curve"]]
    b = [h["loss"] for h in two.metrics["loss_curve"]]
    assert len(a) == len(b) == 3
    assert a[0] != a[-1]  # it trained
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-4
    assert two.checkpoint is not None and (two.checkpoint / "tokenizer.json").exists()
    assert json.loads((tmp_path / "two" / "params.json").read_text())["records_file"].endswith("records.jsonl")


def test_trl_grpo_runs_on_two_processes_with_the_papers_loss(tmp_path):
    res = launch.launch("grpo_trl", dict(init_from="llama-1m", steps=2, group_size=4, questions_per_step=2,
                                         max_new_tokens=16, n_questions=16, lr=1e-5),
                        tmp_path / "grpo", num_processes=2, config="cpu", stream=False)
    m = res.metrics
    assert m["steps_done"] == 2 and m["num_processes"] == 2
    assert (m["loss_type"], m["beta"], m["use_bias_correction_kl"]) == ("grpo", 0.04, False)
    # the global batch is G x questions_per_step whatever the number of processes
    assert (m["global_batch_size"], m["per_device_batch_size"]) == (8, 4)
    assert [r["step"] for r in m["log"]] == [1, 2]
    assert res.checkpoint is not None


def test_trl_sft_in_process_with_global_batch_through_accumulation(tmp_path, sft_rows):
    from dsm_utils.models import load_model
    from dsm_utils.tokenizer import default_tokenizer

    tok = default_tokenizer()
    model = load_model("llama-1m", tok, seed=0)
    rows = [{"prompt": r["prompt"], "completion": "".join(t for t, _ in r["segments"])} for r in sft_rows]
    res = launch.launch("sft_trl", dict(steps=2, batch_size=2, global_batch_size=4, lr=1e-3, max_len=128,
                                        logging_steps=1, lr_scheduler="constant"),
                        tmp_path / "trl", records=rows, model=model, tokenizer=tok)
    m = res.metrics
    assert (m["grad_accum"], m["global_batch_size"]) == (2, 4)
    assert len(m["loss_curve"]) == 2 and all(h["loss"] > 0 for h in m["loss_curve"])
    assert res.checkpoint is None  # a passed-in model is trained in place, not saved
    assert not model.training


def test_bad_launches_are_clear_errors(tmp_path, sft_rows):
    with pytest.raises(ValueError, match="no stage module"):
        launch.launch("nope", {}, tmp_path / "a")
    with pytest.raises(ValueError, match=r"unknown stage parameter\(s\) \['stepz'\]"):
        launch.launch("sft_loop", {"stepz": 3}, tmp_path / "b", records=sft_rows)
    with pytest.raises(ValueError, match="init_from"):
        launch.launch("sft_loop", {"steps": 1}, tmp_path / "c", num_processes=2, config="cpu")
    with pytest.raises(FileNotFoundError, match="valid names"):
        launch.accelerate_config("zero9")
    from dsm_utils import grpo_trl, sft_trl

    with pytest.raises(ValueError, match="do not split over 3 processes"):
        grpo_trl.per_device_batch(4, 2, 3)
    assert sft_trl.grad_accum_steps(256, 4, 8) == 8
    with pytest.raises(ValueError, match="not a multiple"):
        sft_trl.grad_accum_steps(256, 3, 8)


def test_stage_main_reads_params_and_writes_metrics(tmp_path, sft_rows):
    rec = tmp_path / "records.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in sft_rows[:8]))
    pfile = tmp_path / "p.json"
    pfile.write_text(json.dumps(dict(steps=1, global_batch_size=4, records_file=str(rec), save=False)))
    launch.stage_main(sft_loop.run, ["--params", str(pfile), "--run-dir", str(tmp_path / "out")])
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["steps"] == 1 and len(m["loss_curve"]) == 1


def _accelerate_env(config: str) -> tuple[object, dict[str, str]]:
    """What ``accelerate launch --config_file config`` would hand its processes (args, env), without launching."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import launch as L

    args = launch_command_parser().parse_args(["--config_file", config, "-m", "dsm_utils.sft_trl", "--params", "p"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before its deepspeed launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = L.prepare_deepspeed_cmd_env(args)
    else:
        env = L.prepare_multi_gpu_env(args)
    return args, {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "zero3"])
def test_cluster_accelerate_configs_are_accepted_by_accelerate(name, monkeypatch):
    """accelerate parses each config and builds its plugin from it (training on them needs GPUs: not done here)."""
    cfg = launch.accelerate_config(name, "cluster")
    monkeypatch.chdir(REPO_ROOT)  # the DeepSpeed json path in the yaml is relative to the repository root, as launch runs
    args, env = _accelerate_env(str(cfg))
    assert args.num_processes == 8
    with mock.patch.dict(os.environ, env):
        if name.startswith("zero"):
            from accelerate.utils import DeepSpeedPlugin

            plugin = DeepSpeedPlugin()
            assert plugin.zero_stage == int(name[-1])
            assert plugin.deepspeed_config["zero_optimization"]["stage"] == int(name[-1])
            assert plugin.hf_ds_config.is_zero3() == (name == "zero3")
            assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"  # TRL's Trainer fills it
        elif name == "fsdp":
            from accelerate.utils import FullyShardedDataParallelPlugin

            plugin = FullyShardedDataParallelPlugin()
            assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
        else:
            assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed
            assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
