"""Cascade attention (``rrr.generation.cascade``) computes what SDPA over the copied cache computes.

The attention function alone against ``scaled_dot_product_attention`` on random tensors (GQA, padding, q_len > 1 and
1, no mask); shared-prefix generation with ``cascade=True`` token for token equal to ``hf_generate_ids`` (several
groups of different prefix lengths and sizes, a singleton, chunks split by ``batch_size``, a carried cache built by a
cascade call, SmolLM2's GQA), the same draws at T=1 for a seed, and the model's attention implementation restored
after ``generate``, also when it raises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rrr.generation import cascade as cascade_mod
from rrr.generation.base import SamplingParams
from rrr.generation.cascade import CascadeCache, cascade_attend, cascade_attention
from rrr.generation.hf import hf_generate_ids
from rrr.generation.prefix import KVCarry, shared_prefix_generate_ids
from rrr.models import build_tiny_model, build_tiny_tokenizer

SMOLLM2 = Path(__file__).resolve().parents[1] / "runs" / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tiny():
    tok = build_tiny_tokenizer()
    return build_tiny_model(tok, seed=3).eval(), tok


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of the cascade attention function, to show the cascade path ran."""
    calls = {"n": 0}
    real = cascade_mod.cascade_attend

    def spy(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(cascade_mod, "cascade_attend", spy)
    return calls


def _tables(group_of: list[int]):
    n_groups = max(group_of) + 1
    members = [[r for r, g in enumerate(group_of) if g == k] for k in range(n_groups)]
    width = max(len(m) for m in members)
    rows_of = torch.zeros((n_groups, width), dtype=torch.long)
    slot_of = torch.zeros(len(group_of), dtype=torch.long)
    for g, rows in enumerate(members):
        for j, r in enumerate(rows):
            rows_of[g, j], slot_of[r] = r, g * width + j
    return rows_of, slot_of, rows_of[:, 0]


@pytest.mark.parametrize("q_len", [1, 4])
@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (6, 2)])
@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("kernel", ["cpu_flash", "matmul"])
def test_attention_equals_sdpa_over_the_copied_cache(q_len, heads, kv_heads, padded, kernel, monkeypatch):
    """Including fully hidden query rows (padding queries: output 0 instead of NaN) and, with ``matmul``, the
    portable path used where PyTorch's CPU flash kernel is not."""
    if kernel == "matmul":
        monkeypatch.setattr(cascade_mod, "_CPU_FLASH", None)
    gen = torch.Generator().manual_seed(q_len * 10 + heads)
    group_of = [0, 0, 1, 2, 2, 2, 1, 3]  # group 3 is a singleton
    batch, n_groups, prefix, suffix, dim = len(group_of), 4, 13, 6, 8
    pk, pv = (
        torch.randn(n_groups, kv_heads, prefix, dim, generator=gen),
        torch.randn(n_groups, kv_heads, prefix, dim, generator=gen),
    )
    ks, vs = (
        torch.randn(batch, kv_heads, suffix, dim, generator=gen),
        torch.randn(batch, kv_heads, suffix, dim, generator=gen),
    )
    query = torch.randn(batch, heads, q_len, dim, generator=gen)
    full_k = torch.cat([pk[group_of], ks], 2).repeat_interleave(heads // kv_heads, 1)
    full_v = torch.cat([pv[group_of], vs], 2).repeat_interleave(heads // kv_heads, 1)
    width = prefix + suffix
    causal = torch.arange(width)[None] <= torch.arange(q_len)[:, None] + (width - q_len)
    rows_of, slot_of, first_row = _tables(group_of)
    if padded:
        prefix_cols = torch.rand(n_groups, prefix, generator=gen) > 0.3
        prefix_cols[:, -1] = True
        suffix_cols = torch.rand(batch, suffix, generator=gen) > 0.3
        prefix_cols[0], suffix_cols[:2] = False, True  # group 0 (rows 0, 1) sees only its own tokens
        prefix_cols[3], suffix_cols[7] = False, False  # row 7 (singleton group 3) sees nothing: a padding query
        cols = torch.cat([prefix_cols[group_of], suffix_cols], 1)
        mask = cols[:, None, None, :] & causal
        got, _ = cascade_attend(query, ks, vs, mask, pk, pv, rows_of, slot_of, first_row, 0.3)
        assert torch.equal(got[7], torch.zeros_like(got[7]))
        got, query, full_k, full_v, mask = got[:7], query[:7], full_k[:7], full_v[:7], mask[:7]
        want = torch.nn.functional.scaled_dot_product_attention(query, full_k, full_v, attn_mask=mask, scale=0.3)
    else:
        got, _ = cascade_attend(query, ks, vs, None, pk, pv, rows_of, slot_of, first_row)
        want = torch.nn.functional.scaled_dot_product_attention(query, full_k, full_v, attn_mask=causal)
    assert got.shape == (query.shape[0], q_len, heads, dim)
    torch.testing.assert_close(got, want.transpose(1, 2), atol=1e-5, rtol=1e-5)


def _random_ids(n, tok, gen):
    special = {tok.pad_token_id, tok.eos_token_id}
    return [t for t in torch.randint(3, len(tok), (2 * n,), generator=gen).tolist() if t not in special][:n]


def _grouped_prompts(tok, seed=0):
    gen = torch.Generator().manual_seed(seed)
    prompts = []
    for prefix_len, own in ((40, [3, 5, 7]), (25, [2, 9]), (60, [4, 4, 6, 1])):
        prefix = _random_ids(prefix_len, tok, gen)
        prompts += [prefix + _random_ids(k, tok, gen) for k in own]
    return [*prompts, _random_ids(17, tok, gen)]  # a singleton


@pytest.mark.parametrize("batch_size", [64, 5])
def test_greedy_is_token_for_token_hf_generate_ids(tiny, counted, batch_size):
    model, tok = tiny
    prompts = _grouped_prompts(tok)
    params = SamplingParams(12, temperature=0.0)
    got = shared_prefix_generate_ids(model, tok, prompts, params, batch_size=batch_size, cascade=True)
    assert got == hf_generate_ids(model, tok, prompts, params, batch_size=batch_size)
    assert counted["n"] > 0
    assert model.config._attn_implementation == "sdpa"


def test_sampling_same_seed_same_draws(tiny, counted):
    model, tok = tiny
    prompts = _grouped_prompts(tok, seed=1)
    params = SamplingParams(10, temperature=1.0, top_p=0.95)
    torch.manual_seed(7)
    got = shared_prefix_generate_ids(model, tok, prompts, params, cascade=True)
    torch.manual_seed(7)
    assert got == hf_generate_ids(model, tok, prompts, params)
    assert counted["n"] > 0


def test_carry_from_a_cascade_cache(tiny, counted):
    """Call 2 extends call 1's rows; call 1 left a cascade cache, whose rows are materialised (prefix + suffix)."""
    model, tok = tiny
    prompts = _grouped_prompts(tok, seed=2)
    params = SamplingParams(6, temperature=0.0)
    carry, stats = KVCarry(), {}
    out1 = shared_prefix_generate_ids(model, tok, prompts, params, carry=carry, cascade=True)
    assert out1 == hf_generate_ids(model, tok, prompts, params)
    assert any(isinstance(c.cache, CascadeCache) for c in carry.chunks)
    request = _random_ids(5, tok, torch.Generator().manual_seed(3))
    seconds = [p + ids + request for p, (ids, _) in zip(prompts, out1)]
    seconds += [seconds[0][:-2] + request]  # one more row sharing a carried row's start
    out2 = shared_prefix_generate_ids(model, tok, seconds, params, carry=carry, stats=stats, cascade=True)
    assert out2 == hf_generate_ids(model, tok, seconds, params)
    assert stats["prompt_tokens_carried"] > 0


def test_attn_implementation_restored_when_generate_raises(tiny):
    model, _ = tiny
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    shape = (1, model.config.num_key_value_heads, 3, model.config.hidden_size // model.config.num_attention_heads)
    for layer in range(model.config.num_hidden_layers):
        cache.update(torch.zeros(shape), torch.zeros(shape), layer)
    with pytest.raises(RuntimeError, match="boom"), cascade_attention(model, CascadeCache(cache, [0, 0])):
        assert model.config._attn_implementation == "rrr_cascade"
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"
    assert cascade_mod._ACTIVE.get() is None


@pytest.mark.skipif(not SMOLLM2.exists(), reason="runs/smollm2-135m-instruct not present")
def test_greedy_identical_on_smollm2(counted):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rrr.generation.hf import render_chat

    tok = AutoTokenizer.from_pretrained(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(SMOLLM2).eval()
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA
    prompt = render_chat(tok, [{"role": "user", "content": "Name three colours of the sea."}])
    other = render_chat(tok, [{"role": "user", "content": "Count to five, please."}])
    prompts = [prompt + s for s in ([], tok.encode(" Blue"), tok.encode(" The sea can be"))]
    prompts += [other + s for s in (tok.encode(" One"), tok.encode(" Sure"))]
    params = SamplingParams(8, temperature=0.0)
    got = shared_prefix_generate_ids(model, tok, prompts, params, cascade=True)
    assert got == hf_generate_ids(model, tok, prompts, params)
    assert counted["n"] > 0


def test_attn_implementation_restored_when_shared_prefix_generate_raises(tiny, monkeypatch):
    model, tok = tiny
    seen = []

    def failing_generate(*args, **kwargs):
        seen.append(model.config._attn_implementation)
        raise RuntimeError("generate failed")

    monkeypatch.setattr(model, "generate", failing_generate)
    with pytest.raises(RuntimeError, match="generate failed"):
        shared_prefix_generate_ids(model, tok, _grouped_prompts(tok), SamplingParams(4, temperature=0.0), cascade=True)
    assert seen == ["rrr_cascade"]
    assert model.config._attn_implementation == "sdpa"
    assert cascade_mod._ACTIVE.get() is None


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rrr_episodes_identical_with_cascade(tiny, counted, temperature, monkeypatch):
    """Whole RRR episodes (attempts, G reflections, retries; the carried cache between phases) with cascade attention
    equal plain generation's token for token, greedy and sampled under one seed. ``HFGenerator`` has no cascade
    switch, so the shared-prefix entry point it calls is wrapped with ``cascade=True``."""
    import functools

    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.generation import HFGenerator
    from rrr.generation import prefix as prefix_mod
    from rrr.tasks import get_task

    model, tok = tiny
    task = get_task("countdown")
    examples = task.generate(3, seed=4, split="train")
    config = EpisodeConfig(
        attempt=SamplingParams(12, temperature),
        reflection=SamplingParams(12, temperature),
        retry=SamplingParams(12, 0.0),
        reflections_per_failure=4,
    )

    def tokens(episodes):
        return [
            (
                [a.generation.token_ids for a in ep.attempts if a.generation is not None],
                [(o.reflection.token_ids, [g.token_ids for g in o.retries]) for o in ep.reflections],
            )
            for ep in episodes
        ]

    torch.manual_seed(9)
    want = tokens(run_episodes(task, HFGenerator(model, tok, shared_prefix=False), examples, config))
    monkeypatch.setattr(
        prefix_mod,
        "shared_prefix_generate_ids",
        functools.partial(prefix_mod.shared_prefix_generate_ids, cascade=True),
    )
    torch.manual_seed(9)
    got = tokens(run_episodes(task, HFGenerator(model, tok), examples, config))
    assert got == want
    assert counted["n"] > 0
    assert sum(len(r[0]) for ep in got for r in ep[1]) > 0
