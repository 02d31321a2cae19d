"""Shared-prefix generation on a local ``transformers`` model: prefill each group's common prefix once.

The G reflections of one RRR group share one prompt (task, failed attempt, reflection request), and the G retries
share everything up to their reflection. :func:`hf_generate_ids` prefills every row separately; here the rows of a
chunk are grouped by shared prefix (:func:`plan_prefix_groups`), each group's prefix is run through the model once
(one batched forward over the distinct prefixes), its ``DynamicCache`` rows are gathered to the rows of the chunk,
and ``model.generate`` continues from it with only the rows' own suffixes left to prefill.

Exactness: the rows are processed in the same order and chunks as :func:`hf_generate_ids` (sorted by length, stable),
with the same tokens at the same positions in every row (the padding a row needs sits before its cached prefix and
between the prefix and its suffix instead of all at the left; position ids come from the attention mask, so every
real token keeps its position). The decoding config is :func:`sampling_generation_config` under
:func:`clean_generation_config`, so each ``SamplingParams`` field (repetition penalty included: it sees the same
tokens) applies exactly as there. Greedy outputs are token-for-token those of :func:`hf_generate_ids` (up to
floating-point ties: the attention sums run over a different padding layout); sampled ones follow the same
distribution and, for a fixed seed, draw from the same random stream (the prefix prefill consumes no random numbers).
One caveat, transformers' own: its repetition penalty counts padding as a seen token, and a row's padding differs
between the two layouts (here most rows hold some; plain left padding spares the longest row), so with
``repetition_penalty != 1`` the pad token's logit can be penalised differently; it matters only if that token could be
sampled (when pad is end-of-turn).

A chunk whose rows share little (first attempts of different tasks: only the chat template's header) is generated
exactly as :func:`hf_generate_ids` does (``min_saving``), so nothing changes where there is nothing to gain.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from rrr.generation.base import SamplingParams
from rrr.generation.hf import (
    clean_generation_config,
    cut_at_eos,
    eos_ids_of,
    left_padded,
    sampling_generation_config,
)

#: Use the prefix cache for a chunk only when it saves at least this fraction of the chunk's prompt tokens: below it
#: the extra forward call costs about what it saves.
MIN_SAVING = 0.25


def _common_length(a: list[int], b: list[int], limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit``.

    Binary search over slice comparisons: O(n log n) element comparisons, all in C, so a long shared prefix (the
    whole prompt of G retries) costs microseconds rather than a Python loop per token."""
    n = min(len(a), len(b), limit)
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class PrefixGroup:
    """Rows (indices into the planned list) that share their first ``length`` tokens, prefilled once."""

    rows: list[int]
    length: int


def plan_prefix_groups(prompts: list[list[int]]) -> list[PrefixGroup]:
    """Group ``prompts`` so that prefilling each group's shared prefix once costs the fewest prompt tokens (greedy).

    Each row joins the group where it saves the most: joining a group of ``n`` rows with a ``p``-token prefix when
    the row shares ``L <= p`` of them saves the row ``L`` tokens but costs the ``n`` members ``p - L`` each, so it
    joins only when ``L > n * (p - L)``. G copies of one prompt form one group; G retries after G reflections share
    everything before their reflection; different tasks, sharing only a template header, stay apart. Every prefix
    is kept at most ``len(row) - 1`` tokens long, so each row has at least one token of its own to feed.
    """
    groups: list[PrefixGroup] = []
    for i, row in enumerate(prompts):
        best, best_gain, best_len = None, 0, 0
        for g in groups:
            head = prompts[g.rows[0]]
            shared = _common_length(head, row, min(g.length, len(row) - 1))
            gain = shared - len(g.rows) * (g.length - shared)
            if gain > best_gain:
                best, best_gain, best_len = g, gain, shared
        if best is None:
            groups.append(PrefixGroup([i], max(0, len(row) - 1)))
        else:
            best.rows.append(i)
            best.length = best_len
    return groups


def prompt_tokens_saved(prompts: list[list[int]], groups: list[PrefixGroup]) -> int:
    """Prompt tokens a grouped prefill does not feed, against feeding every row whole."""
    return sum(len(p) for p in prompts) - _fed_tokens(prompts, groups, [(-1, -1, 0)] * len(groups))


def supports_shared_prefix(model) -> bool:
    """Decoder-only models with full attention on every layer: their ``DynamicCache`` rows can be gathered and
    extended as here. Sliding-window, hybrid (linear-attention/SSM) and encoder-decoder models use the plain path."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "use_sliding_window", False) or getattr(config, "attention_chunk_size", None):
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(t != "full_attention" for t in layer_types):
        return False
    return not (getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True) is not False)


@dataclass
class _CachedChunk:
    """One chunk's KV cache after ``generate``, and which real tokens each of its rows holds where."""

    cache: Any  # transformers DynamicCache, one row per chunk row
    tokens: list[list[int]]  # per row: the real token ids its cache holds, in order
    slots: list[list[int]]  # per row: their indices along the cache's sequence axis (padding and post-EOS skipped)

    @property
    def width(self) -> int:
        return int(self.cache.get_seq_length())


class KVCarry:
    """The KV cache of one generate call, offered to the next call of the same model and weights.

    An RRR rollout's phases extend each other: a reflection prompt is the attempt prompt + the attempt + a request,
    and a retry prompt is the reflection prompt + the reflection + a request. After a call, each row's cache already
    holds its prompt and its completion, so the next phase only has to prefill its request. Holding one call's cache
    costs about one phase's KV memory until the next call replaces it; the owner (one generator per rollout, or per
    evaluation) drops it with itself. Never carry a cache across a weight update: the keys/values would be stale.
    """

    def __init__(self) -> None:
        self.chunks: list[_CachedChunk] = []

    def clear(self) -> None:
        self.chunks = []

    def best_source(self, prefix: list[int]) -> tuple[int, int, int]:
        """``(chunk, row, shared)``: the cached row holding the longest start of ``prefix`` (``shared`` tokens).

        A source is worth its width only when it is mostly used: at least half of its real tokens must be shared,
        else every row gathered from it attends over masked columns for nothing."""
        best = (-1, -1, 0)
        for c, chunk in enumerate(self.chunks):
            for q, tokens in enumerate(chunk.tokens):
                shared = _common_length(tokens, prefix, len(prefix))
                if shared > best[2] and 2 * shared >= len(tokens):
                    best = (c, q, shared)
        return best


def plan_chunk(prompts: list[list[int]], carry: KVCarry | None):
    """``(groups, sources, fed)``: how to prefill one chunk, and how many prompt tokens that feeds the model.

    Two plans, the cheaper wins: shared prefixes within the chunk (:func:`plan_prefix_groups`; a group's prefix may
    start from a row of the previous call's cache), or every row on its own from its best row in that cache (G
    retries each extend their own reflection's row: only the retry request is left to feed)."""
    groups = plan_prefix_groups(prompts)
    sources = [_source(carry, prompts[g.rows[0]][: g.length]) for g in groups]
    fed = _fed_tokens(prompts, groups, sources)
    if carry is not None and carry.chunks:
        singles = [PrefixGroup([r], max(0, len(p) - 1)) for r, p in enumerate(prompts)]
        own = [_source(carry, p[: g.length]) for g, p in zip(singles, prompts)]
        fed_own = _fed_tokens(prompts, singles, own)
        if fed_own < fed:
            return singles, own, fed_own
    return groups, sources, fed


def _source(carry: KVCarry | None, prefix: list[int]) -> tuple[int, int, int]:
    return carry.best_source(prefix) if carry is not None else (-1, -1, 0)


def _fed_tokens(prompts, groups, sources) -> int:
    """Prompt tokens the model is fed: each group's prefix beyond its source once, then each row's own tokens."""
    prefixes = sum(g.length - n for g, (_, _, n) in zip(groups, sources))
    return prefixes + sum(len(p) for p in prompts) - sum(g.length * len(g.rows) for g in groups)


def _gather_sources(model, carry: KVCarry, sources, device):
    """One cache row per group, copied from its source row (left-padded to a common width; no source = all padding).

    Returns ``(cache, width, mask, ids_at)``: the new ``DynamicCache``, its width, the attention mask over it (only the
    shared real tokens of each source are 1) and, per group, ``(slot, token)`` pairs to write into ``input_ids``.
    """
    import torch
    from transformers import DynamicCache

    used = [(carry.chunks[c], q, n) for c, q, n in sources if n > 0]
    width = max((chunk.width for chunk, _, _ in used), default=0)
    mask = torch.zeros((len(sources), width), dtype=torch.long)
    ids_at: list[list[tuple[int, int]]] = [[] for _ in sources]
    cache = DynamicCache(config=model.config)
    if width == 0:
        return cache, 0, mask, ids_at
    template = used[0][0].cache
    for layer in range(len(template.layers)):
        keys, values = [], []
        ref = template.layers[layer].keys
        for c, q, n in sources:
            if n == 0:
                keys.append(ref.new_zeros((ref.shape[1], width, ref.shape[3])))
                values.append(keys[-1])
                continue
            row_keys, row_values = _row_keys_values(carry.chunks[c].cache.layers[layer], q)
            pad = width - row_keys.shape[1]
            keys.append(torch.nn.functional.pad(row_keys, (0, 0, pad, 0)))
            values.append(torch.nn.functional.pad(row_values, (0, 0, pad, 0)))
        cache.update(torch.stack(keys).to(device), torch.stack(values).to(device), layer)
    for k, (c, q, n) in enumerate(sources):
        if n == 0:
            continue
        chunk = carry.chunks[c]
        offset = width - chunk.width
        slots = [offset + s for s in chunk.slots[q][:n]]
        mask[k, slots] = 1
        ids_at[k] = list(zip(slots, chunk.tokens[q][:n]))
    return cache, width, mask, ids_at


def _row_keys_values(layer, row: int):
    """One row's full ``(kv_heads, width, head_dim)`` keys and values in a cache layer (a cascade layer holds them
    as its group's prefix + the row's suffix)."""
    if hasattr(layer, "row_keys_values"):
        return layer.row_keys_values(row)
    return layer.keys[row], layer.values[row]


def shared_prefix_generate_ids(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    params: SamplingParams,
    batch_size: int = 64,
    eos_ids=None,
    min_saving: float = MIN_SAVING,
    stats: dict | None = None,
    carry: KVCarry | None = None,
    cascade: bool = False,
) -> list[tuple[list[int], bool]]:
    """Drop-in for :func:`hf_generate_ids` that prefills shared prefixes once; ``(token_ids, truncated)`` per row.

    Same contract and same outputs (see the module docstring). ``carry`` (a :class:`KVCarry`) also reuses the cache
    the previous call left in it and leaves this call's cache there for the next. ``stats``, when given, accumulates
    ``prompt_tokens`` (what :func:`hf_generate_ids` would prefill), ``prompt_tokens_saved`` (of which not fed) and
    ``prompt_tokens_carried`` (of which found in the previous call's cache). ``cascade`` keeps one copy of each
    group's prefix KV and attends to it once per group (:mod:`rrr.generation.cascade`) instead of copying it to every
    row; same outputs up to floating-point summation order, used only where ``supports_cascade`` accepts the model.
    """
    import torch

    if not prompt_ids:
        return []
    eos_ids = eos_ids or eos_ids_of(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids))
    gen_config = sampling_generation_config(params, eos_ids, pad_id)
    gen_config.return_dict_in_generate = True  # the cache comes back with the sequences, for ``carry``
    device = next(model.parameters()).device
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))  # hf_generate_ids' order and chunks
    by_index: dict[int, tuple[list[int], bool]] = {}
    kept: list[_CachedChunk] = []
    with torch.no_grad(), clean_generation_config(model):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            prompts = [prompt_ids[i] for i in idx]
            total = sum(len(p) for p in prompts)
            groups, sources, fed = plan_chunk(prompts, carry)
            saved = total - fed
            use_cache = saved > 0 and saved >= min_saving * total
            if stats is not None:
                stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + total
                stats["prompt_tokens_saved"] = stats.get("prompt_tokens_saved", 0) + (saved if use_cache else 0)
                carried = sum(n for _, _, n in sources) if use_cache else 0
                stats["prompt_tokens_carried"] = stats.get("prompt_tokens_carried", 0) + carried
            if use_cache:
                out, width, real = _generate_from_groups(
                    model, prompts, groups, sources, carry, pad_id, device, gen_config, cascade
                )
            else:  # exactly hf_generate_ids' chunk
                out, width, real = _generate_plain(model, prompts, pad_id, device, gen_config)
            for row, i in enumerate(idx):
                by_index[i] = cut_at_eos(out.sequences[row, width:].tolist(), eos_ids)
            if carry is not None:
                completions = [by_index[i][0] for i in idx]
                kept.append(_cached_chunk(out.past_key_values, prompts, real, completions, width))
    if carry is not None:
        carry.chunks = kept
    return [by_index[i] for i in range(len(prompt_ids))]


def _cached_chunk(cache, prompts, real, completions, width) -> _CachedChunk:
    """What a chunk's cache holds per row: its prompt at ``real`` slots, then the completion tokens that were fed
    back (``generate`` never feeds the last sampled token, and tokens after a row's end-of-turn are padding)."""
    fed = int(cache.get_seq_length()) - width
    tokens, slots = [], []
    for p, slot_list, completion in zip(prompts, real, completions):
        n = min(len(completion), fed)
        tokens.append(list(p) + list(completion[:n]))
        slots.append(list(slot_list) + list(range(width, width + n)))
    return _CachedChunk(cache, tokens, slots)


def _generate_plain(model, prompts, pad_id, device, gen_config):
    input_ids, attention = left_padded(prompts, pad_id)
    out = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        generation_config=gen_config,
    )
    width = input_ids.shape[1]
    real = [list(range(width - len(ids), width)) for ids in prompts]
    return out, width, real


def _generate_from_groups(model, prompts, groups, sources, carry, pad_id, device, gen_config, cascade=False):
    """Rows laid out as ``[source cache | pad, group prefix | pad, own tokens]``.

    Each group's cache row starts as its source row from the previous call (``carry``; only the shared tokens
    unmasked), the rest of the group's prefix is prefilled on top in one forward over all groups, the rows gather
    their group's row, and ``generate`` feeds each row's own tokens. Every real token keeps its position: position
    ids count unmasked tokens, as ``generate`` does. With ``cascade`` the rows do not copy their group's row: a
    :class:`rrr.generation.cascade.CascadeCache` keeps it once and cascade attention reads it once per group."""
    import torch

    if carry is not None:
        cache, src_width, src_mask, ids_at = _gather_sources(model, carry, sources, device)
    else:
        from transformers import DynamicCache

        cache, src_width = DynamicCache(config=model.config), 0
        src_mask, ids_at = torch.zeros((len(groups), 0), dtype=torch.long), [[] for _ in groups]
    feed = [prompts[g.rows[0]][n : g.length] for g, (_, _, n) in zip(groups, sources)]
    feed_width = max(len(f) for f in feed)
    group_mask = torch.cat([src_mask, torch.zeros((len(groups), feed_width), dtype=torch.long)], dim=1)
    if feed_width:
        ids = torch.full((len(groups), feed_width), pad_id, dtype=torch.long)
        for k, f in enumerate(feed):
            if f:
                ids[k, feed_width - len(f) :] = torch.tensor(f, dtype=torch.long)
                group_mask[k, src_width + feed_width - len(f) :] = 1
        # what generate derives from the mask: real tokens count 0, 1, ...; padding gets a harmless 1
        positions = (group_mask.cumsum(-1) - 1).masked_fill(group_mask == 0, 1)[:, src_width:]
        model(
            input_ids=ids.to(device),
            attention_mask=group_mask.to(device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,  # only the cache is wanted; skip the LM head on the prefixes
        )
    cached = src_width + feed_width
    group_of, length_of = [0] * len(prompts), [0] * len(prompts)
    for k, g in enumerate(groups):
        for r in g.rows:
            group_of[r], length_of[r] = k, g.length
    if cascade and cached > 0:
        from rrr.generation import cascade as cascade_module

        cascade = cascade_module.supports_cascade(model)
    else:
        cascade = False
    if cascade:
        cache = cascade_module.CascadeCache(cache, group_of)
    else:
        cache.reorder_cache(torch.tensor(group_of, dtype=torch.long, device=device))  # one cache row per chunk row
    rest = [p[length_of[r] :] for r, p in enumerate(prompts)]
    width = max(len(t) for t in rest)
    n = len(prompts)
    input_ids = torch.full((n, cached + width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, cached + width), dtype=torch.long)
    real = []
    for r in range(n):
        k = group_of[r]
        attention[r, :cached] = group_mask[k]
        slots = []
        for slot, token in ids_at[k]:  # the source's tokens, where a repetition penalty reads them
            input_ids[r, slot] = token
            slots.append(slot)
        f = feed[k]
        if f:
            input_ids[r, cached - len(f) : cached] = torch.tensor(f, dtype=torch.long)
            slots.extend(range(cached - len(f), cached))
        input_ids[r, cached + width - len(rest[r]) :] = torch.tensor(rest[r], dtype=torch.long)
        attention[r, cached + width - len(rest[r]) :] = 1
        slots.extend(range(cached + width - len(rest[r]), cached + width))
        real.append(slots)
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device), "past_key_values": cache}
    with cascade_module.cascade_attention(model, cache) if cascade else contextlib.nullcontext():
        out = model.generate(**inputs, generation_config=gen_config)
    return out, cached + width, real


def benchmark_shared_prefix(
    model,
    tokenizer,
    group_size: int = 8,
    prefix_len: int = 200,
    suffix_len: int = 16,
    max_new_tokens: int = 32,
    groups: int = 2,
    repeats: int = 3,
    seed: int = 0,
    print_fn=print,
) -> dict:
    """Time :func:`hf_generate_ids` and :func:`shared_prefix_generate_ids` side by side on synthetic groups.

    ``groups`` groups of ``group_size`` rows; each group shares a ``prefix_len``-token prefix and each row has its
    own suffix of up to ``suffix_len`` tokens (retries after reflections). ``prefill`` runs each with
    ``max_new_tokens=1`` (prefill-dominated); ``total`` with ``max_new_tokens``. Ratios are shared / hf (below 1 is a
    saving), medians over ``repeats``. A measurement, not a test.
    """
    import statistics

    import torch

    from rrr.generation.hf import hf_generate_ids

    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    special = set(eos_ids_of(tokenizer, model)) | {tokenizer.pad_token_id}

    def ids(n: int) -> list[int]:
        out = [t for t in torch.randint(0, vocab, (2 * n + 8,), generator=gen).tolist() if t not in special]
        return out[:n]

    prompts = []
    for _ in range(groups):
        prefix = ids(prefix_len)
        prompts += [prefix + ids(max(1, suffix_len - g % 3)) for g in range(group_size)]

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
        return shared_prefix_generate_ids(model, tokenizer, prompts, p)

    result = {"groups": groups, "group_size": group_size, "prefix_len": prefix_len, "suffix_len": suffix_len}
    for name, n_new in (("prefill", 1), ("total", max_new_tokens)):
        t_hf, t_sh = timed(hf, n_new), timed(shared, n_new)
        result[name] = {"hf_s": t_hf, "shared_s": t_sh, "ratio": t_sh / t_hf, "max_new_tokens": n_new}
    print_fn(
        f"shared-prefix vs hf_generate_ids ({groups} groups x G={group_size}, prefix {prefix_len}, suffix <= "
        f"{suffix_len} tokens)\n| phase | new tokens | hf_generate_ids s | shared prefix s | ratio |\n"
        "|---|---|---|---|---|\n"
        + "\n".join(
            f"| {k} | {result[k]['max_new_tokens']} | {result[k]['hf_s']:.4f} | {result[k]['shared_s']:.4f} "
            f"| {result[k]['ratio']:.2f}x |"
            for k in ("prefill", "total")
        )
    )
    return result


if __name__ == "__main__":  # python -m rrr.generation.prefix [model_dir]
    import sys

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if len(sys.argv) > 1:
        tok = AutoTokenizer.from_pretrained(sys.argv[1])
        mdl = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
    else:
        from rrr.models import build_tiny_model, build_tiny_tokenizer

        tok = build_tiny_tokenizer()
        mdl = build_tiny_model(tok).eval()
    benchmark_shared_prefix(mdl, tok)
