"""Outcome-supervised GRPO (DeepSeekMath §4.1) on TRL's ``GRPOTrainer``, under ``dsm_utils.launch``.

The paper's objective (Eq. 3): per-token clipped ratio with ε = 0.2, advantages normalised within each group of
G outputs (``scale_rewards="group"``), the KL to the reference model as the unbiased k3 estimator with
β = 0.04, and the loss averaged over each output's tokens then over the group. TRL's defaults differ
(``loss_type="dapo"``, ``beta=0.0``, bias-corrected KL), so they are set explicitly here:
``loss_type="grpo"``, ``beta=0.04``, ``use_bias_correction_kl=False``.

A GRPO step samples G outputs for each of ``questions_per_step`` questions: the *global* batch is
``G x questions_per_step`` completions, split over the processes (``per_device_train_batch_size`` is per
process in TRL, so it is computed from the number of processes here).

Run: ``python -m dsm_utils.grpo_trl --params P.json --run-dir DIR`` (or through ``accelerate launch -m``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import launch
from .sft_loop import check_params, load_tokenizer_and_model

DEFAULTS: dict[str, Any] = {
    "init_from": "llama-1m", "tokenizer_name": "", "records_file": "", "data": "toy", "n_questions": 200,
    "data_dir": "", "steps": 2, "group_size": 4, "questions_per_step": 2, "lr": 1e-6, "beta": 0.04, "mu": 1,
    "max_new_tokens": 64, "temperature": 1.0, "use_vllm": False, "eval_every": 0, "bf16": None, "seed": 0,
    "threads": 1, "save": True,
}


def question_rows(data: str = "toy", n_questions: int = 200, seed: int = 0, data_dir: str = "",
                  pool: Sequence[Any] | None = None) -> list[dict[str, str]]:
    """``{prompt, answer}`` rows: toy problems (``pool``, else the generator's ``rl`` stream) or GSM8K train."""
    from . import problems as P

    if data == "real":
        from . import benchmarks

        items = benchmarks.load_benchmark("gsm8k", split="train", limit=n_questions, data_dir=data_dir or None)
        return [{"prompt": P.chat_prompt(it.question), "answer": it.answer} for it in items]
    if data != "toy":
        raise ValueError(f"data={data!r}: valid values are 'toy', 'real'")
    pool = pool if pool is not None else P.generate(n_questions, seed=seed, prefix="rl")
    return [{"prompt": P.chat_prompt(p.question), "answer": p.answer} for p in pool]


def correctness(prompts, completions, answer, **kw) -> list[float]:
    """Rule reward: 1 when the completion's answer grades equal to the reference, else 0."""
    from . import grading

    return [1.0 if grading.grade(c, a) else 0.0 for c, a in zip(completions, answer)]


def per_device_batch(group_size: int, questions_per_step: int, num_processes: int) -> int:
    """Completions per process and step so that the global batch is ``group_size x questions_per_step``."""
    total = group_size * questions_per_step
    if total % num_processes:
        raise ValueError(f"group_size x questions_per_step = {total} completions per step do not split over "
                         f"{num_processes} processes")
    return total // num_processes


def grpo_config(output_dir: str | Path, *, steps: int, group_size: int, questions_per_step: int, lr: float,
                beta: float = 0.04, mu: int = 1, max_new_tokens: int = 64, temperature: float = 1.0,
                use_vllm: bool = False, seed: int = 0, bf16: bool = False, num_processes: int | None = None):
    """TRL ``GRPOConfig`` with the paper's loss (see the module docstring) and the global batch."""
    from trl import GRPOConfig

    world = num_processes or launch.world_size()
    return GRPOConfig(output_dir=str(output_dir), loss_type="grpo", beta=beta, use_bias_correction_kl=False,
                      epsilon=0.2, num_generations=group_size, scale_rewards="group",
                      per_device_train_batch_size=per_device_batch(group_size, questions_per_step, world),
                      max_completion_length=max_new_tokens, temperature=temperature, learning_rate=lr,
                      max_steps=steps, num_iterations=mu, logging_steps=1, use_vllm=use_vllm, vllm_mode="colocate",
                      report_to=[], save_strategy="no", seed=seed, bf16=bf16, disable_tqdm=False)


def reference_on_disk(policy, folder: str | Path) -> str:
    """TRL builds the β-KL reference model by *loading* the policy's ``config._name_or_path``; a policy built
    in memory (a fresh toy model, a deep copy being trained) has none or a stale one. Save the starting policy
    to ``folder`` (rank 0; the others wait) and point the config there, so the reference is exactly the start."""
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        policy.save_pretrained(str(folder), safe_serialization=True)
    state.wait_for_everyone()
    policy.config._name_or_path = str(folder)
    return str(folder)


def train(policy, tokenizer, rows: Sequence[dict[str, str]], output_dir: str | Path, *, steps: int,
          group_size: int, questions_per_step: int, lr: float, beta: float = 0.04, mu: int = 1,
          max_new_tokens: int = 64, temperature: float = 1.0, use_vllm: bool = False, seed: int = 0,
          bf16: bool = False, eval_fn: Callable[[Any], dict] | None = None, eval_every: int = 0):
    """GRPO on ``policy`` in place with the :func:`correctness` reward; returns ``(trainer, log)`` where ``log``
    holds ``{"step", "reward_mean", "kl"}`` per step, plus ``eval_fn(policy)`` every ``eval_every`` steps
    (in-process runs) and after the last step."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    log: list[dict] = []
    pending: dict[int, dict] = {}  # the Trainer calls on_step_end before it logs that step

    class Curves(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if eval_fn is not None and eval_every and state.global_step % eval_every == 0:
                pending[state.global_step] = eval_fn(model)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                log.append({"step": state.global_step, "reward_mean": logs["reward"], "kl": logs.get("kl"),
                            **pending.pop(state.global_step, {})})

    cfg = grpo_config(output_dir, steps=steps, group_size=group_size, questions_per_step=questions_per_step, lr=lr,
                      beta=beta, mu=mu, max_new_tokens=max_new_tokens, temperature=temperature, use_vllm=use_vllm,
                      seed=seed, bf16=bf16)
    if beta:
        reference_on_disk(policy, Path(output_dir) / "reference")
    trainer = GRPOTrainer(model=policy, reward_funcs=correctness, args=cfg, train_dataset=Dataset.from_list(list(rows)),
                          processing_class=tokenizer, callbacks=[Curves()])
    trainer.train()
    policy.eval()
    if eval_fn is not None and (not log or "acc" not in log[-1]):
        log.append({"step": steps, **eval_fn(policy)})
    return trainer, log


def run(params: dict[str, Any], run_dir: Path, model=None, tokenizer=None,
        eval_fn: Callable[[Any], dict] | None = None, pool: Sequence[Any] | None = None) -> dict[str, Any]:
    """The stage: questions from ``records_file`` (``{prompt, answer}`` rows) or ``data``; the policy from
    ``init_from`` (unless passed in-process); saves ``run_dir/checkpoint`` when ``save`` and not passed in."""
    from . import training

    p = check_params(params, DEFAULTS)
    training.set_threads(int(p["threads"]))
    passed_in = model is not None
    if model is None:
        from accelerate import PartialState

        with PartialState().main_process_first():
            tokenizer, model = load_tokenizer_and_model(p["init_from"], p["tokenizer_name"], seed=int(p["seed"]))
    rows = (launch.read_records(p["records_file"]) if p["records_file"]
            else question_rows(p["data"], int(p["n_questions"]), int(p["seed"]), p["data_dir"], pool))
    bf16 = p["bf16"] if p["bf16"] is not None else training.pick_device("auto") == "cuda"
    t0 = time.time()
    trainer, log = train(model, tokenizer, rows, run_dir / "trl", steps=int(p["steps"]), group_size=int(p["group_size"]),
                         questions_per_step=int(p["questions_per_step"]), lr=float(p["lr"]), beta=float(p["beta"]),
                         mu=int(p["mu"]), max_new_tokens=int(p["max_new_tokens"]), temperature=float(p["temperature"]),
                         use_vllm=bool(p["use_vllm"]), seed=int(p["seed"]), bf16=bf16, eval_fn=eval_fn,
                         eval_every=int(p["eval_every"]))
    train_s = time.time() - t0
    saved = None
    if p["save"] and not passed_in:
        out = run_dir / "checkpoint"
        trainer.save_model(str(out))
        if trainer.accelerator.is_main_process:
            tokenizer.save_pretrained(str(out))
        saved = str(out)
    a = trainer.args
    return {"stage": "grpo_trl", "num_processes": a.world_size, "per_device_batch_size": a.per_device_train_batch_size,
            "global_batch_size": a.per_device_train_batch_size * a.world_size * a.gradient_accumulation_steps,
            "group_size": a.num_generations, "loss_type": a.loss_type, "beta": a.beta,
            "use_bias_correction_kl": a.use_bias_correction_kl, "steps_done": int(trainer.state.global_step),
            "steps": int(p["steps"]), "log": log, "train_seconds": round(train_s, 2), "checkpoint": saved,
            "n_questions": len(rows)}


if __name__ == "__main__":
    launch.stage_main(run)
