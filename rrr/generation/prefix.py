"""Shared-prefix generation on a local ``transformers`` model: prefill a group's common prefix once, decode G rows.

The G reflections of one RRR group share one prompt (task, failed attempt, reflection request), and the G retries
share everything up to their reflection. :func:`hf_generate_ids` prefills every row separately; here the common
prefix is run through the model once (batch 1), its ``DynamicCache`` is repeated to the rows of a chunk, and
``model.generate`` continues from it with only the rows' own suffixes left to prefill.

Exactness: the rows are processed in the same order and chunks as :func:`hf_generate_ids` (sorted by length, stable),
with the same token multiset in every row (the padding a row needs sits between the cached prefix and the row's
suffix instead of at the left; position ids come from the attention mask, so every real token keeps its position).
The decoding config is :func:`sampling_generation_config` under :func:`clean_generation_config`, so each
``SamplingParams`` field (repetition penalty included: it sees the same tokens) applies exactly as there. Greedy
outputs are token-for-token those of :func:`hf_generate_ids`; sampled ones follow the same distribution and, for a
fixed seed, draw from the same random stream (the prefix prefill consumes no random numbers).

Opt-in building block: nothing in the trainer calls it yet (issue 15, Deliver 2).
"""

from __future__ import annotations

import copy
import time

from rrr.generation.base import SamplingParams
from rrr.generation.hf import clean_generation_config, eos_ids_of, hf_generate_ids, sampling_generation_config


def longest_common_prefix(sequences: list[list[int]]) -> list[int]:
    """The longest list of ids every sequence starts with (``[]`` for no sequences)."""
    if not sequences:
        return []
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for k in range(n):
        t = first[k]
        if any(s[k] != t for s in sequences):
            return list(first[:k])
    return list(first[:n])


def prefill_prefix(model, prefix_ids: list[int]):
    """Run ``prefix_ids`` through ``model`` once (batch 1) and return its ``DynamicCache``."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([prefix_ids], dtype=torch.long, device=device)
    with torch.no_grad():
        model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,  # only the cache is wanted; skip the LM head on the prefix
        )
    return cache


def shared_prefix_generate_ids(
    model,
    tokenizer,
    prefix_ids: list[int],
    suffixes: list[list[int]],
    params: SamplingParams,
    batch_size: int = 64,
    eos_ids=None,
) -> list[tuple[list[int], bool]]:
    """Sample one completion per prompt ``prefix_ids + suffixes[i]``; returns ``(token_ids, truncated)`` per row.

    Same contract and same outputs as ``hf_generate_ids(model, tokenizer, [prefix_ids + s for s in suffixes], ...)``
    (see the module docstring), but the prefix is prefilled once for all rows instead of once per row. Suffixes may
    be empty (G reflections of one prompt) and of different lengths (G retries after G reflections).
    """
    import torch

    if not suffixes:
        return []
    prompts = [list(prefix_ids) + list(s) for s in suffixes]
    if len(prefix_ids) < 2:  # nothing worth caching: one token of prefix is re-fed anyway
        return hf_generate_ids(model, tokenizer, prompts, params, batch_size, eos_ids)
    eos_ids = eos_ids or eos_ids_of(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids))
    gen_config = sampling_generation_config(params, eos_ids, pad_id)
    device = next(model.parameters()).device
    # the last prefix token is fed with the suffixes, so every row has at least one uncached real token
    cached, tail = list(prefix_ids[:-1]), list(prefix_ids[-1:])
    n_cached = len(cached)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # hf_generate_ids' order and chunks
    by_index: dict[int, tuple[list[int], bool]] = {}
    with torch.no_grad(), clean_generation_config(model):
        base = prefill_prefix(model, cached)
        starts = list(range(0, len(order), batch_size))
        for c, start in enumerate(starts):
            idx = order[start : start + batch_size]
            rest = [tail + list(suffixes[i]) for i in idx]
            width = max(len(r) for r in rest)
            input_ids = torch.full((len(idx), n_cached + width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(idx), n_cached + width), dtype=torch.long)
            input_ids[:, :n_cached] = torch.tensor(cached, dtype=torch.long)
            attention[:, :n_cached] = 1
            for row, r in enumerate(rest):
                input_ids[row, n_cached + width - len(r) :] = torch.tensor(r, dtype=torch.long)
                attention[row, n_cached + width - len(r) :] = 1
            cache = base if c == len(starts) - 1 else copy.deepcopy(base)
            cache.batch_repeat_interleave(len(idx))
            out = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                past_key_values=cache,
                generation_config=gen_config,
            )
            for row, i in enumerate(idx):
                seq = out[row, n_cached + width :].tolist()
                cut = next((k + 1 for k, t in enumerate(seq) if t in eos_ids), None)
                by_index[i] = (seq[:cut], False) if cut is not None else (seq, True)
    return [by_index[i] for i in range(len(prompts))]


def hf_generate_ids_shared_prefix(
    model, tokenizer, prompt_ids: list[list[int]], params: SamplingParams, batch_size: int = 64, eos_ids=None
) -> list[tuple[list[int], bool]]:
    """Drop-in for :func:`hf_generate_ids` that prefills the prompts' longest common prefix once.

    Meant for one group's rows (G copies of a reflection prompt, or G retries after G reflections); across groups the
    common prefix is short and this is plain :func:`hf_generate_ids`.
    """
    prefix = longest_common_prefix(prompt_ids)
    suffixes = [p[len(prefix) :] for p in prompt_ids]
    return shared_prefix_generate_ids(model, tokenizer, prefix, suffixes, params, batch_size, eos_ids)


def benchmark_shared_prefix(
    model,
    tokenizer,
    group_size: int = 8,
    prefix_len: int = 200,
    suffix_len: int = 16,
    max_new_tokens: int = 32,
    repeats: int = 3,
    seed: int = 0,
    print_fn=print,
) -> dict:
    """Time :func:`hf_generate_ids` and :func:`shared_prefix_generate_ids` side by side on one synthetic group.

    ``prefill`` runs each with ``max_new_tokens=1`` (prefill-dominated); ``total`` with ``max_new_tokens``. Ratios
    are shared / hf (below 1 is a saving), medians over ``repeats``. A measurement, not a test.
    """
    import statistics

    import torch

    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    special = set(eos_ids_of(tokenizer, model)) | {tokenizer.pad_token_id}
    ids = [t for t in torch.randint(0, vocab, (prefix_len + group_size * suffix_len * 2,), generator=gen).tolist()]
    ids = [t for t in ids if t not in special]
    prefix = ids[:prefix_len]
    pool = ids[prefix_len:]
    suffixes = [pool[g * suffix_len : g * suffix_len + max(1, suffix_len - g % 3)] for g in range(group_size)]
    prompts = [prefix + s for s in suffixes]

    def timed(fn, n_new):
        params = SamplingParams(n_new, temperature=0.0)
        fn(params)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(params)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def hf(p):
        return hf_generate_ids(model, tokenizer, prompts, p)

    def shared(p):
        return shared_prefix_generate_ids(model, tokenizer, prefix, suffixes, p)

    result = {"group_size": group_size, "prefix_len": prefix_len, "suffix_len": suffix_len}
    for name, n_new in (("prefill", 1), ("total", max_new_tokens)):
        t_hf, t_sh = timed(hf, n_new), timed(shared, n_new)
        result[name] = {"hf_s": t_hf, "shared_s": t_sh, "ratio": t_sh / t_hf, "max_new_tokens": n_new}
    print_fn(
        f"shared-prefix vs hf_generate_ids (G={group_size}, prefix {prefix_len}, suffix <= {suffix_len} tokens)\n"
        f"| phase | new tokens | hf_generate_ids s | shared prefix s | ratio |\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {k} | {result[k]['max_new_tokens']} | {result[k]['hf_s']:.4f} | {result[k]['shared_s']:.4f} "
            f"| {result[k]['ratio']:.2f}x |"
            for k in ("prefill", "total")
        )
    )
    return result


if __name__ == "__main__":  # python -m rrr.generation.prefix [model_dir]
    import sys

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    if len(sys.argv) > 1:
        tok = AutoTokenizer.from_pretrained(sys.argv[1])
        mdl = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
    else:
        from rrr.models import build_tiny_model, build_tiny_tokenizer

        tok = build_tiny_tokenizer()
        mdl = build_tiny_model(tok).eval()
    benchmark_shared_prefix(mdl, tok)
