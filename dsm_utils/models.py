"""Model factory: toy Llama-architecture configs by name (~1 M to ~30 M parameters), or any hub id / path.

The same notebook code then runs a from-scratch toy model on CPU and a real model (``AutoModelForCausalLM``)
in the ``gpu`` profile.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import repo_path

#: Toy configs: hidden size, layers, heads, MLP width. Parameter counts depend on the vocabulary
#: (2048 for the toy tokenizer, embeddings tied); ``count_parameters`` reports the real number.
TOY_CONFIGS: dict[str, dict[str, int]] = {
    "llama-1m": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384),
    "llama-3m": dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=6, intermediate_size=576),
    "llama-10m": dict(hidden_size=320, num_hidden_layers=8, num_attention_heads=8, intermediate_size=960),
    "llama-30m": dict(hidden_size=512, num_hidden_layers=10, num_attention_heads=8, intermediate_size=1536),
    "llama-100m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=2560),
}


def toy_config(name: str, vocab_size: int, max_position_embeddings: int = 512, **overrides):
    """A ``LlamaConfig`` for a toy model name (raises naming the valid names if unknown)."""
    from transformers import LlamaConfig

    if name not in TOY_CONFIGS:
        raise ValueError(f"unknown model name {name!r}: valid toy names are {sorted(TOY_CONFIGS)}, "
                         "or give a local checkpoint path or a hub id like 'deepseek-ai/deepseek-math-7b-base'")
    kw = dict(TOY_CONFIGS[name])
    kw.update(overrides)
    return LlamaConfig(vocab_size=vocab_size, max_position_embeddings=max_position_embeddings,
                       tie_word_embeddings=True, rms_norm_eps=1e-5, num_key_value_heads=kw["num_attention_heads"],
                       **kw)


def is_toy_name(name: str) -> bool:
    return name in TOY_CONFIGS


def load_model(name_or_path: str | os.PathLike, tokenizer=None, dtype=None, device: str | None = None, seed: int = 0,
               **config_overrides):
    """Build or load a causal LM.

    - a toy name (``llama-1m`` … ``llama-100m``): a fresh Llama initialised with ``seed``; needs ``tokenizer``
      for the vocabulary size and special token ids;
    - a local folder (a checkpoint written by ``training.save_checkpoint`` or ``save_pretrained``);
    - a hub id (``org/name``), loaded with ``AutoModelForCausalLM.from_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    name = str(name_or_path)
    if is_toy_name(name):
        if tokenizer is None:
            raise ValueError(f"load_model({name!r}): a toy model needs the tokenizer (for vocab size and token ids)")
        cfg = toy_config(name, vocab_size=len(tokenizer), **config_overrides)
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = (tokenizer.bos_token_id, tokenizer.eos_token_id,
                                                                tokenizer.pad_token_id)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    else:
        local = repo_path(name)
        if local.exists():
            src = str(local)
        elif name.count("/") == 1 and not name.startswith((".", "/", "~", "runs")):
            src = name  # hub id
        else:
            raise ValueError(f"unknown model name {name!r}: not a toy name ({sorted(TOY_CONFIGS)}), "
                             f"not an existing path ({local}), not a hub id 'org/name'")
        kw = {"torch_dtype": dtype} if dtype is not None else {}
        model = AutoModelForCausalLM.from_pretrained(src, **kw)
    if device:
        model.to(device)
    return model


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of (unique) parameters of a model."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def model_summary(model) -> dict[str, object]:
    """Small dict for tables: architecture, layers, hidden size, parameters."""
    cfg = model.config
    return {"arch": cfg.architectures[0] if getattr(cfg, "architectures", None) else type(model).__name__,
            "layers": getattr(cfg, "num_hidden_layers", None), "hidden": getattr(cfg, "hidden_size", None),
            "params_m": round(count_parameters(model) / 1e6, 2)}


def checkpoint_exists(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a saved model (``config.json``)."""
    return (Path(repo_path(path)) / "config.json").exists()
