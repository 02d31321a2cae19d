"""Cascade (shared-prefix) attention: the G rows of a group keep ONE copy of their group's prefix KV.

:func:`rrr.generation.prefix.shared_prefix_generate_ids` prefills each group's prefix once, but then copies the
group's KV to every row, and every decode step re-reads and re-concatenates the whole ``[prefix | suffix]`` cache of
every row: at 64 rows x ~660 tokens, SDPA over the copies and ``DynamicLayer.update``'s ``torch.cat`` are nearly all
of the decode time although the 8 rows of a group share ~500 of those tokens. Here the cache holds per layer the
group prefixes once, ``(n_groups, kv_heads, P, head_dim)``, plus a per-row suffix that ``update`` appends to, and the
attention function splits each row's attention into

* prefix attention, one batched matmul per group with the queries of all the group's rows stacked (each prefix key
  is read once per group, not once per row), and
* suffix attention, per row over its own tokens,

merged exactly with the log-sum-exp rule (softmax over a concatenation = the two partial softmaxes reweighted by
their partial normalisers). Same tokens, same positions, same mask as the copied cache, so outputs equal the
copied path's up to floating-point summation order.

Used only inside :func:`cascade_attention` (a context manager that sets the model's attention implementation to
``"rrr_cascade"`` and restores it, also on errors) with a :class:`CascadeCache` passed to ``generate``.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

#: The attention/mask implementation name this module registers.
NAME = "rrr_cascade"

#: The cache the current forward passes attend over (set by :func:`cascade_attention`).
_ACTIVE: contextvars.ContextVar[CascadeCache | None] = contextvars.ContextVar("rrr_cascade_cache", default=None)


class CascadeLayer(DynamicLayer):
    """One layer: the groups' prefix K/V once (``prefix_keys``), each row's own tokens in ``keys``/``values``.

    ``get_seq_length`` / ``get_mask_sizes`` count the prefix too, so ``generate``'s cache positions, its input slicing
    and the 4D mask span the full ``[prefix | suffix]`` width a copied cache would have; ``update`` appends to the
    suffix only (no per-step copy of the prefix) and returns it."""

    def __init__(self, prefix_keys: torch.Tensor, prefix_values: torch.Tensor, group_of: torch.Tensor):
        super().__init__()
        self.prefix_keys, self.prefix_values, self.group_of = prefix_keys, prefix_values, group_of
        self.prefix_length = int(prefix_keys.shape[2])

    def get_seq_length(self) -> int:
        suffix = self.keys.shape[-2] if self.is_initialized and self.keys.numel() else 0
        return self.prefix_length + suffix

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def row_keys_values(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row ``row``'s full ``(kv_heads, width, head_dim)`` keys and values: its group's prefix, then its suffix."""
        g = int(self.group_of[row])
        if self.get_seq_length() == self.prefix_length:
            return self.prefix_keys[g], self.prefix_values[g]
        return (
            torch.cat([self.prefix_keys[g], self.keys[row]], dim=-2),
            torch.cat([self.prefix_values[g], self.values[row]], dim=-2),
        )

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("a cascade cache cannot be reordered (beam search is not supported)")

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("a cascade cache cannot be expanded (num_return_sequences is not supported)")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("a cascade cache cannot drop rows")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a cascade cache cannot be cropped (assisted decoding is not supported)")


class CascadeCache(DynamicCache):
    """A ``DynamicCache`` whose rows share their group's prefix (see :class:`CascadeLayer`).

    Built from a cache with one row per group (the prefilled prefixes) and ``group_of[row]``; the rows' own tokens
    are then fed by ``generate`` as usual. ``rows_of`` (groups x largest group, padded with row 0) and ``slot_of``
    (each row's index in that flattened table) batch the queries of a group together."""

    def __init__(self, group_cache: Cache, group_of: list[int]):
        group_index = torch.tensor(group_of, dtype=torch.long)
        layers = []
        for layer in group_cache.layers:
            device = layer.keys.device
            layers.append(CascadeLayer(layer.keys, layer.values, group_index.to(device)))
        Cache.__init__(self, layers=layers)
        n_groups = int(group_cache.layers[0].keys.shape[0])
        members: list[list[int]] = [[] for _ in range(n_groups)]
        for row, g in enumerate(group_of):
            members[g].append(row)
        width = max(len(m) for m in members)
        rows_of = torch.zeros((n_groups, width), dtype=torch.long)
        slot_of = torch.zeros(len(group_of), dtype=torch.long)
        for g, rows in enumerate(members):
            for j, row in enumerate(rows):
                rows_of[g, j] = row
                slot_of[row] = g * width + j
        device = group_cache.layers[0].keys.device
        self.rows_of, self.slot_of = rows_of.to(device), slot_of.to(device)
        self.first_row = rows_of[:, 0].to(device)  # one row per group: where its prefix mask is read


#: PyTorch's CPU flash-attention kernel, which also returns each query's log-sum-exp (None where unavailable).
_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _partial(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float):
    """``(out, lse)``: softmax attention of ``q`` (N, h, L, d) over ``k``/``v`` (N, h, S, d) under the boolean ``mask``
    (broadcastable to (N, 1, L, S)) and each query's log-sum-exp of scores, ``-inf`` where the mask hides every key
    (then ``out`` is 0). On the CPU this is the flash kernel SDPA dispatches to; elsewhere plain matmuls."""
    visible = mask.any(-1, keepdim=True)  # (N, 1, L, 1) or broadcastable
    if _CPU_FLASH is not None and q.device.type == "cpu" and k.shape[2] > 0:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
        out, lse = _CPU_FLASH(q, k, v, 0.0, False, attn_mask=bias, scale=scale)
        lse = lse.unsqueeze(-1).to(q.dtype)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        scores = scores.masked_fill(~mask, float("-inf"))
        lse = torch.logsumexp(scores, -1, keepdim=True)
        weights = torch.exp(scores - torch.where(visible, lse, torch.zeros_like(lse)))
        out = torch.matmul(weights, v)
    lse = torch.where(visible, lse, torch.full_like(lse, float("-inf")))
    return torch.where(visible, out, torch.zeros_like(out)), lse


def _merge(parts):
    """Attention over the union of disjoint key sets from each set's ``(out, lse)``: weights ``exp(lse - max)``."""
    top = torch.maximum(parts[0][1], parts[1][1])
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # every key hidden (a padding query): 0
    num, den = 0, 0
    for out, lse in parts:
        w = torch.exp(lse - top)
        num, den = num + out * w, den + w
    return num / torch.where(den == 0, torch.ones_like(den), den)


def cascade_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``AttentionInterface`` function: ``query`` (B, H, q, d) over the active cache's group prefix + ``key``/``value``
    (B, Hkv, S, d, the rows' suffixes). ``attention_mask``: sdpa-style boolean (B, 1, q, P + S), True = attend, or
    ``None`` (no padding: causal). Returns ``(B, q, H, d)`` like the other attention functions."""
    cache = _ACTIVE.get()
    if cache is None:
        raise RuntimeError("rrr_cascade attention runs only inside rrr.generation.cascade.cascade_attention()")
    if dropout and module.training:
        raise ValueError("cascade attention is an inference path: no attention dropout")
    layer = cache.layers[module.layer_idx]
    tables = (cache.rows_of, cache.slot_of, cache.first_row)
    return cascade_attend(query, key, value, attention_mask, layer.prefix_keys, layer.prefix_values, *tables, scaling)


def cascade_attend(query, key, value, mask, prefix_keys, prefix_values, rows_of, slot_of, first_row, scaling=None):
    """The computation of :func:`cascade_attention_forward`, on explicit tensors (see there; testable alone).

    ``prefix_keys``/``prefix_values``: (G, Hkv, P, d); ``rows_of`` (G, m): each group's rows (padded with any row);
    ``slot_of`` (B,): row ``b``'s index in ``rows_of.flatten()``; ``first_row`` (G,): a row of each group."""
    batch, heads, q_len, dim = query.shape
    kv_heads, suffix = key.shape[1], key.shape[2]
    n_groups, _, prefix, _ = prefix_keys.shape
    rep = heads // kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    work = torch.float32 if query.dtype in (torch.float16, torch.bfloat16) else query.dtype
    # GQA without repeat_kv: query head h reads kv head h // rep, so fold the rep heads into the query rows
    q = query.to(work).reshape(batch, kv_heads, rep * q_len, dim)
    rows = rep * q_len
    if mask is None:  # no padding anywhere: every prefix column, causal over the suffix (lower-right aligned)
        prefix_mask = torch.ones((n_groups, prefix), dtype=torch.bool, device=query.device)
        i = torch.arange(q_len, device=query.device)[:, None]
        j = torch.arange(suffix, device=query.device)[None, :]
        suffix_mask = (j <= i + (suffix - q_len)).expand(batch, 1, q_len, suffix)
    else:
        if mask.dtype != torch.bool:
            raise TypeError("cascade attention needs sdpa-style boolean masks")
        # prefix columns are the same for every query of a row (all queries come after the prefix) and for every
        # row of a group (their cache rows are the same row); a row's last query shows it
        prefix_mask = mask[first_row, 0, -1, :prefix]
        suffix_mask = mask[:, :, :, prefix:]
    m = rows_of.shape[1]
    qg = q[rows_of].permute(0, 2, 1, 3, 4).reshape(n_groups, kv_heads, m * rows, dim)
    pmask = prefix_mask[:, None, None, :]
    prefix_out, prefix_lse = _partial(qg, prefix_keys.to(work), prefix_values.to(work), pmask, scale)

    def per_row(t):  # (G, Hkv, m * rows, x) -> (B, Hkv, rows, x)
        x = t.shape[-1]
        t = t.reshape(n_groups, kv_heads, m, rows, x).permute(0, 2, 1, 3, 4).reshape(n_groups * m, kv_heads, rows, x)
        return t[slot_of]

    smask = suffix_mask[:, :, None].expand(batch, 1, rep, q_len, suffix).reshape(batch, 1, rows, suffix)
    suffix_part = _partial(q, key.to(work), value.to(work), smask, scale)
    out = _merge([(per_row(prefix_out), per_row(prefix_lse.expand(*prefix_out.shape[:3], 1))), suffix_part])
    out = out.reshape(batch, heads, q_len, dim).to(query.dtype)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, cascade_attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)


_register()


def supports_cascade(model) -> bool:
    """Full attention on every layer (``supports_shared_prefix``) computed by the standard eager or sdpa functions,
    with plain softmax scores (a logit soft-cap would change what the partial softmaxes merge), on a CPU.

    CPU only for now: there the partial attentions run on PyTorch's CPU flash kernel, which returns the log-sum-exp
    the merge needs, and that is what was measured and tested; on other devices the fallback materialises whole score
    matrices and has not been run, so they keep the copying path (exact too, just slower)."""
    from rrr.generation.prefix import supports_shared_prefix

    config = model.config
    if getattr(config, "attn_logit_softcapping", None):
        return False
    try:
        on_cpu = next(model.parameters()).device.type == "cpu"
    except StopIteration:
        return False
    return on_cpu and supports_shared_prefix(model) and config._attn_implementation in ("eager", "sdpa")


@contextlib.contextmanager
def cascade_attention(model, cache: CascadeCache):
    """Run ``model`` with cascade attention over ``cache`` inside the block; its attention implementation is restored
    afterwards, also when the block raises."""
    before = model.config._attn_implementation
    token = _ACTIVE.set(cache)
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
        _ACTIVE.reset(token)
