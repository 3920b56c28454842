"""Text generation with one interface over two backends.

- ``HFGenerator``: transformers ``generate`` — batched, KV cache, left padding, stop strings, temperature,
  top-p and ``n`` samples per prompt. The CPU default.
- ``VLLMGenerator``: vLLM for the ``gpu``/``cluster`` profiles (optional import from the ``gpu`` extra).

Both return, for each prompt, a list of ``n`` :class:`Completion`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class SamplingConfig:
    """What to sample: ``temperature=0`` means greedy (then ``n`` must be 1 for distinct outputs)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"SamplingConfig.n must be >= 1, got {self.n}")


@dataclass
class Completion:
    """One sampled continuation: text (cut before any stop string), its token ids, and why it ended."""

    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or stop string) or "length"


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; returns (text, whether a stop string was found)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class ContextError(ValueError):
    """A prompt (plus the tokens to generate) does not fit the model's context window."""


def context_length(model) -> int | None:
    """The model's context window in tokens (``max_position_embeddings``), or None when it does not say."""
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def check_context(prompt_lengths, max_new_tokens: int, context: int | None) -> None:
    """Raise :class:`ContextError` when the longest prompt plus ``max_new_tokens`` exceeds ``context``.

    A model fed more tokens than its context silently degrades (and a few-shot prompt cut short scores near 0 %),
    so an overlong prompt is an error, never a silent truncation.
    """
    lengths = list(prompt_lengths)
    if context is None or not lengths:
        return
    longest = max(lengths)
    if longest + max_new_tokens > context:
        raise ContextError(f"a prompt of {longest} tokens plus max_new_tokens={max_new_tokens} needs "
                           f"{longest + max_new_tokens} positions, but the model's context is {context} tokens; "
                           "use fewer few-shot exemplars (n_shot), a smaller max_new_tokens, or a model with a "
                           "longer context")


class HFGenerator:
    """Batched sampling with transformers ``generate`` (left padding, KV cache)."""

    backend = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 32, device: str | None = None):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.device = device or str(next(model.parameters()).device)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    def generate(self, prompts: Sequence[str], cfg: SamplingConfig | None = None,
                 progress: bool = True, desc: str = "generate") -> list[list[Completion]]:
        """Sample ``cfg.n`` completions for each prompt; output order follows ``prompts``."""
        import torch
        from tqdm.auto import tqdm

        cfg = cfg or SamplingConfig()
        tok, model = self.tokenizer, self.model
        jobs = [(i, p) for i, p in enumerate(prompts) for _ in range(cfg.n)]
        # Similar lengths in one batch waste less padding.
        lengths = {i: len(tok(p, add_special_tokens=False)["input_ids"]) for i, p in enumerate(prompts)}
        check_context(lengths.values(), cfg.max_new_tokens, context_length(model))
        order = sorted(range(len(jobs)), key=lambda j: lengths[jobs[j][0]])
        results: list[list[Completion]] = [[] for _ in prompts]
        slots: dict[int, Completion] = {}
        was_training = model.training
        model.eval()
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        batches = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        for b in tqdm(batches, desc=desc, disable=not progress, mininterval=2):
            texts = [jobs[j][1] for j in b]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            kw = dict(max_new_tokens=cfg.max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      use_cache=True)
            if cfg.temperature > 0:
                kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            else:
                kw.update(do_sample=False)
            if cfg.stop:
                kw.update(stop_strings=list(cfg.stop), tokenizer=tok)
            with torch.no_grad():
                out = model.generate(**enc, **kw)
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            for j, ids in zip(b, new):
                if tok.eos_token_id in ids:
                    ids = ids[:ids.index(tok.eos_token_id) + 1]
                ids = [t for t in ids if t != tok.pad_token_id or t == tok.eos_token_id]
                ended_eos = bool(ids) and ids[-1] == tok.eos_token_id
                text = tok.decode(ids, skip_special_tokens=True)
                text, hit = truncate_at_stop(text, cfg.stop)
                reason = "stop" if (ended_eos or hit) else "length"
                slots[j] = Completion(text=text, token_ids=ids, finish_reason=reason)
        del gen
        for j in range(len(jobs)):
            results[jobs[j][0]].append(slots[j])
        model.train(was_training)
        return results


class VLLMGenerator:
    """vLLM engine with the same ``generate`` interface (needs the ``gpu`` extra and a GPU)."""

    backend = "vllm"

    def __init__(self, model_name_or_path: str, tokenizer=None, **engine_kwargs):
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - exercised only where vLLM is installed
            raise ImportError("the vLLM backend needs `pip install -e .[gpu]` on a CUDA machine") from exc
        self.llm = LLM(model=str(model_name_or_path), **engine_kwargs)
        self.tokenizer = tokenizer or self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[str], cfg: SamplingConfig | None = None,
                 progress: bool = True, desc: str = "generate") -> list[list[Completion]]:
        from vllm import SamplingParams  # pragma: no cover

        cfg = cfg or SamplingConfig()
        sp = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                            stop=list(cfg.stop) or None, seed=cfg.seed)
        outs = self.llm.generate(list(prompts), sp, use_tqdm=progress)
        return [[Completion(text=o.text, token_ids=list(o.token_ids),
                            finish_reason="length" if o.finish_reason == "length" else "stop") for o in r.outputs]
                for r in outs]


def make_generator(backend: str, model, tokenizer=None, batch_size: int = 32, **kwargs):
    """``backend`` is ``"hf"`` (model object) or ``"vllm"`` (model path or hub id)."""
    if backend == "hf":
        return HFGenerator(model, tokenizer, batch_size=batch_size, **kwargs)
    if backend == "vllm":
        return VLLMGenerator(model, tokenizer, **kwargs)
    raise ValueError(f"generation backend {backend!r}: valid values are 'hf', 'vllm'")
