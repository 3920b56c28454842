"""One launch path for the training stages: in-process for one process, ``accelerate launch`` for more.

A notebook cell calls :func:`launch` with a stage module name (``sft_loop``, ``sft_trl``, ``grpo_trl``,
``pretrain``, ...) and the cell's parameters. With one process and no accelerate config the stage's
``run(params, run_dir, **objects)`` runs in this process (live objects such as the model may be passed). Otherwise
the parameters go to ``run_dir/params.json`` and the stage runs as

    accelerate launch --config_file params/<profile>/accelerate/<name>.yaml --num_processes N \
        -m dsm_utils.<stage> --params run_dir/params.json --run-dir run_dir

whose output is streamed (and kept in ``run_dir/launch.log``); the stage's rank-0 process writes
``run_dir/metrics.json`` (and ``run_dir/checkpoint`` when it trains a model), which :func:`launch` reads back.
The project has no distributed layer of its own: every multi-process detail is accelerate's (DDP, FSDP,
DeepSpeed ZeRO), or TRL's on top of it.

A stage module needs two things::

    def run(params: dict, run_dir: Path, **objects) -> dict:   # metrics
        ...
    if __name__ == "__main__":
        launch.stage_main(run)
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import repo_path
from .tracking import read_json, write_json

#: Short names of the accelerate configs under ``params/<profile>/accelerate/``.
CONFIG_NAMES = ("ddp", "fsdp", "zero2", "zero3", "cpu")


@dataclass
class LaunchResult:
    """What a stage left in its run folder, plus how it was run."""

    metrics: dict[str, Any]
    run_dir: Path
    num_processes: int
    command: list[str] | None = None  # None: ran in-process
    seconds: float = 0.0
    log_tail: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path | None:
        """``run_dir/checkpoint`` when the stage saved a model there (multi-process runs always do)."""
        p = self.run_dir / "checkpoint"
        return p if (p / "config.json").exists() else None


def accelerate_config(name: str | os.PathLike, profile: str = "cluster") -> Path:
    """The accelerate config file for ``name``: a path to a yaml, or a short name (``ddp``, ``fsdp``, ``zero2``,
    ``zero3``, ``cpu``) looked up in ``params/<profile>/accelerate/``, then ``params/cpu/accelerate/`` and ``params/cluster/accelerate/``."""
    p = repo_path(name)
    if str(name).endswith((".yaml", ".yml", ".json")):
        if not p.exists():
            raise FileNotFoundError(f"accelerate config {p} not found")
        return p
    tried = []
    for prof in dict.fromkeys([profile, "cpu", "cluster"]):
        cand = repo_path(f"params/{prof}/accelerate/{name}.yaml")
        tried.append(str(cand))
        if cand.exists():
            return cand
    have = sorted({f.stem for f in repo_path("params").glob("*/accelerate/*.yaml")})
    raise FileNotFoundError(f"accelerate config {name!r}: none of {tried} exists; valid names are {have}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_records(path: Path, records: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records :func:`launch` wrote for a stage (one JSON object a line)."""
    from .data import read_jsonl

    return read_jsonl(path)


def launch_command(stage: str, params_file: Path, run_dir: Path, num_processes: int, config: Path,
                   port: int | None = None) -> list[str]:
    """The ``accelerate launch`` command line of a stage (``python -m accelerate.commands.launch`` of this venv)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            "--num_processes", str(num_processes), "--main_process_port", str(port or _free_port()),
            "-m", f"dsm_utils.{stage}", "--params", str(params_file), "--run-dir", str(run_dir)]


def launch(stage: str, params: dict[str, Any], run_dir: str | os.PathLike, *, num_processes: int = 1,
           config: str | os.PathLike | None = None, profile: str = "cluster",
           records: Sequence[dict] | None = None, stream: bool = True, env: dict[str, str] | None = None,
           timeout: float | None = None, **objects: Any) -> LaunchResult:
    """Run training stage ``dsm_utils.<stage>`` with ``params``; returns its metrics (``run_dir/metrics.json``).

    - ``num_processes == 1`` and no ``config``: in this process, ``module.run(params, run_dir, **objects)``
      (``objects``: live things such as ``model=``, ``tokenizer=``, ``eval_fn=``; the stage trains them in place).
    - otherwise: ``accelerate launch`` with ``config`` (a short name or a yaml path, see
      :func:`accelerate_config`; default ``ddp``, or ``cpu`` without CUDA). ``objects`` cannot cross processes: the stage loads
      ``params["init_from"]``, which must then be set. Without CUDA the processes run on CPU with gloo
      (``ACCELERATE_USE_CPU=true``), which is what CI tests.

    ``records`` (plain dicts, e.g. prompt/completion rows) go to ``run_dir/records.jsonl`` and
    ``params["records_file"]``. A failing stage raises ``RuntimeError`` with the tail of its log.
    """
    mod_name = f"dsm_utils.{stage}"
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"launch: no stage module {mod_name} ({exc})") from None
    if not callable(getattr(module, "run", None)):
        raise ValueError(f"launch: {mod_name} has no run(params, run_dir) function")
    if num_processes < 1:
        raise ValueError(f"launch: num_processes must be >= 1, got {num_processes}")
    run_dir = repo_path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    params = dict(params)
    if records is not None:
        params["records_file"] = str(_write_records(run_dir / "records.jsonl", records))
    (run_dir / "metrics.json").unlink(missing_ok=True)  # never read a previous run's metrics
    write_json(run_dir / "params.json", params)
    t0 = time.time()

    if num_processes == 1 and config is None:
        metrics = module.run(params, run_dir, **objects)
        write_json(run_dir / "metrics.json", metrics)
        return LaunchResult(read_json(run_dir / "metrics.json"), run_dir, 1, None, time.time() - t0)

    if not params.get("init_from"):
        raise ValueError(f"launch({stage!r}, num_processes={num_processes}): params['init_from'] must name the "
                         "starting model (live objects cannot cross processes)")
    unused = [k for k, v in objects.items() if v is not None and k not in ("model", "tokenizer")]
    if unused:
        raise ValueError(f"launch: {unused} only work in-process (num_processes=1, no config)")
    cfg = accelerate_config(config or ("ddp" if _cuda_available() else "cpu"), profile)
    cmd = launch_command(stage, run_dir / "params.json", run_dir, num_processes, cfg)
    penv = dict(os.environ)
    root = str(repo_path("."))
    penv["PYTHONPATH"] = root + (os.pathsep + penv["PYTHONPATH"] if penv.get("PYTHONPATH") else "")
    penv.setdefault("OMP_NUM_THREADS", "1")
    penv.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not _cuda_available():
        penv["ACCELERATE_USE_CPU"] = "true"  # torchrun-launched CPU processes: accelerate picks gloo
    penv.update(env or {})
    tail: deque[str] = deque(maxlen=40)
    with open(run_dir / "launch.log", "w", encoding="utf-8") as log:
        log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=root, env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                if stream:
                    print(line, end="", flush=True)
                if timeout is not None and time.time() - t0 > timeout:
                    proc.kill()
                    raise TimeoutError(f"launch({stage!r}) ran past {timeout} s; log: {run_dir / 'launch.log'}")
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[1:6])} ... -m {mod_name} exited with {rc}; "
                           f"last lines of {run_dir / 'launch.log'}:\n" + "\n".join(tail))
    mfile = run_dir / "metrics.json"
    if not mfile.exists():
        raise RuntimeError(f"{mod_name} exited 0 but wrote no {mfile}")
    return LaunchResult(read_json(mfile), run_dir, num_processes, cmd, time.time() - t0, list(tail))


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


# ------------------------------------------------------------------------------------------ stage side

def rank() -> int:
    """This process's rank under ``accelerate launch``/torchrun (0 when not launched)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Number of processes under ``accelerate launch``/torchrun (1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def stage_main(run: Callable[..., dict], argv: Sequence[str] | None = None) -> dict:
    """Entry point of ``python -m dsm_utils.<stage> --params P.json --run-dir DIR`` (under accelerate or not):
    reads the parameters, calls ``run(params, run_dir)``, and rank 0 writes ``run_dir/metrics.json``."""
    ap = argparse.ArgumentParser(description=(run.__doc__ or "").strip().split("\n")[0])
    ap.add_argument("--params", required=True, help="JSON file of the stage's parameters")
    ap.add_argument("--run-dir", required=True, help="folder for metrics.json, checkpoint/, logs")
    args = ap.parse_args(argv)
    pfile = Path(args.params)
    if not pfile.exists():
        raise SystemExit(f"--params {pfile}: file not found")
    params = read_json(pfile)
    if not isinstance(params, dict):
        raise SystemExit(f"--params {pfile}: expected a JSON object, got {type(params).__name__}")
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run(params, run_dir)
    if rank() == 0:
        write_json(run_dir / "metrics.json", metrics)
    return metrics
