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

A chunk whose rows share little (first attempts of different tasks: only the chat template's header) is generated
exactly as :func:`hf_generate_ids` does (``min_saving``), so nothing changes where there is nothing to gain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rrr.generation.base import SamplingParams
from rrr.generation.hf import clean_generation_config, eos_ids_of, sampling_generation_config

#: Use the prefix cache for a chunk only when it saves at least this fraction of the chunk's prompt tokens: below it
#: the extra forward call costs about what it saves.
MIN_SAVING = 0.25


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


def _common_length(a: list[int], b: list[int], limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit`` (linear, stops at the first mismatch)."""
    n = min(len(a), len(b), limit)
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


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
    return sum((len(g.rows) - 1) * g.length for g in groups)


def _prefill_groups(model, prompts, groups, pad_id, device):
    """One forward over the groups' prefixes (left-padded); returns ``(cache, width)`` with one cache row per group."""
    import torch
    from transformers import DynamicCache

    width = max(g.length for g in groups)
    ids = torch.full((len(groups), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(groups), width), dtype=torch.long)
    for k, g in enumerate(groups):
        if g.length:
            ids[k, width - g.length :] = torch.tensor(prompts[g.rows[0]][: g.length], dtype=torch.long)
            mask[k, width - g.length :] = 1
    # what generate derives from a left-padded mask: real tokens count 0, 1, ...; padding gets a harmless 1
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,  # only the cache is wanted; skip the LM head on the prefixes
        )
    return cache, width


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


def shared_prefix_generate_ids(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    params: SamplingParams,
    batch_size: int = 64,
    eos_ids=None,
    min_saving: float = MIN_SAVING,
    stats: dict | None = None,
) -> list[tuple[list[int], bool]]:
    """Drop-in for :func:`hf_generate_ids` that prefills shared prefixes once; ``(token_ids, truncated)`` per row.

    Same contract and same outputs (see the module docstring). ``stats``, when given, accumulates
    ``prompt_tokens`` (what :func:`hf_generate_ids` would prefill) and ``prompt_tokens_saved``.
    """
    import torch

    if not prompt_ids:
        return []
    eos_ids = eos_ids or eos_ids_of(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids))
    gen_config = sampling_generation_config(params, eos_ids, pad_id)
    device = next(model.parameters()).device
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))  # hf_generate_ids' order and chunks
    by_index: dict[int, tuple[list[int], bool]] = {}
    with torch.no_grad(), clean_generation_config(model):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            prompts = [prompt_ids[i] for i in idx]
            total = sum(len(p) for p in prompts)
            groups = plan_prefix_groups(prompts)
            saved = prompt_tokens_saved(prompts, groups)
            use_cache = saved > 0 and saved >= min_saving * total
            if stats is not None:
                stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + total
                stats["prompt_tokens_saved"] = stats.get("prompt_tokens_saved", 0) + (saved if use_cache else 0)
            if use_cache:
                out, offset = _generate_from_groups(model, prompts, groups, pad_id, device, gen_config)
            else:  # exactly hf_generate_ids' chunk
                out, offset = _generate_plain(model, prompts, pad_id, device, gen_config)
            for row, i in enumerate(idx):
                seq = out[row, offset:].tolist()
                cut = next((k + 1 for k, t in enumerate(seq) if t in eos_ids), None)
                by_index[i] = (seq[:cut], False) if cut is not None else (seq, True)
    return [by_index[i] for i in range(len(prompt_ids))]


def _generate_plain(model, prompts, pad_id, device, gen_config):
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    out = model.generate(
        input_ids=input_ids.to(device), attention_mask=attention.to(device), generation_config=gen_config
    )
    return out, width


def _generate_from_groups(model, prompts, groups, pad_id, device, gen_config):
    """Rows laid out as ``[pad, cached prefix, pad, own tokens]``: the cached part is the group's prefix (the same
    ids the prefill saw), the rest is fed by ``generate``."""
    import torch

    cache, cached = _prefill_groups(model, prompts, groups, pad_id, device)
    group_of = [0] * len(prompts)
    length_of = [0] * len(prompts)
    for k, g in enumerate(groups):
        for r in g.rows:
            group_of[r], length_of[r] = k, g.length
    cache.reorder_cache(torch.tensor(group_of, dtype=torch.long, device=device))  # one cache row per chunk row
    rest = [p[length_of[r] :] for r, p in enumerate(prompts)]
    width = max(len(t) for t in rest)
    n = len(prompts)
    input_ids = torch.full((n, cached + width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, cached + width), dtype=torch.long)
    for r, p in enumerate(prompts):
        length = length_of[r]
        if length:
            input_ids[r, cached - length : cached] = torch.tensor(p[:length], dtype=torch.long)
            attention[r, cached - length : cached] = 1
        input_ids[r, cached + width - len(rest[r]) :] = torch.tensor(rest[r], dtype=torch.long)
        attention[r, cached + width - len(rest[r]) :] = 1
    out = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        past_key_values=cache,
        generation_config=gen_config,
    )
    return out, cached + width


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
