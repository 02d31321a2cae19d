"""Shared-prefix generation (``rrr.generation.prefix``) samples exactly what ``hf_generate_ids`` samples.

Greedy: token for token, on the tiny model (with a leaky checkpoint generation_config) and on SmolLM2 when its
directory exists. Sampled: the same draws for the same seed under every SamplingParams filter, and the first-token
distribution over hundreds of rows matches the model's softmax (total-variation bound).
"""

from __future__ import annotations

import math
import typing
from pathlib import Path

import pytest
import torch

from rrr.generation.base import SamplingParams
from rrr.generation.hf import eos_ids_of, hf_generate_ids
from rrr.generation.prefix import (
    plan_prefix_groups,
    prompt_tokens_saved,
    shared_prefix_generate_ids,
)
from rrr.models import build_tiny_model, build_tiny_tokenizer

SMOLLM2 = Path(__file__).resolve().parents[1] / "runs" / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tiny():
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, seed=3).eval()
    # a checkpoint config that would change every output if it leaked (see tests/test_sampling.py)
    model.generation_config.top_k = 1
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.do_sample = True
    model.generation_config.temperature = 0.1
    return model, tok


def random_ids(n: int, tok, gen: torch.Generator) -> list[int]:
    special = {tok.pad_token_id, tok.eos_token_id}
    ids = torch.randint(3, len(tok), (n * 2,), generator=gen).tolist()
    return [t for t in ids if t not in special][:n]


def group(tok, prefix_len: int, suffix_lens: list[int], seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return random_ids(prefix_len, tok, gen), [random_ids(k, tok, gen) for k in suffix_lens]


@pytest.mark.parametrize(
    "prefix_len,suffix_lens,batch_size",
    [
        (30, [0, 0, 0, 0], 64),  # G reflections of one prompt
        (25, [0, 3, 7, 1, 5, 0], 64),  # G retries: suffixes of different lengths, empty included
        (25, [4, 0, 6, 2, 9], 2),  # several chunks: the prefix cache is copied per chunk
        (1, [3, 0, 2], 64),  # nothing to share: exactly hf_generate_ids' chunk
    ],
)
def test_greedy_is_token_for_token_hf_generate_ids(tiny, prefix_len, suffix_lens, batch_size):
    model, tok = tiny
    prefix, suffixes = group(tok, prefix_len, suffix_lens, seed=prefix_len + len(suffix_lens))
    params = SamplingParams(16, temperature=0.0)
    want = hf_generate_ids(model, tok, [prefix + s for s in suffixes], params, batch_size=batch_size)
    stats = {}
    got = shared_prefix_generate_ids(
        model, tok, [prefix + s for s in suffixes], params, batch_size=batch_size, stats=stats
    )
    assert got == want
    assert (stats["prompt_tokens_saved"] > 0) == (prefix_len > 1)
    assert len({tuple(ids) for ids, _ in want}) > 1 or len(set(map(tuple, suffixes))) == 1
    # and plain argmax (nothing of the checkpoint's top_k/penalty leaked): first token by teacher forcing
    with torch.no_grad():
        for s, (ids, _) in zip(suffixes, got):
            logits = model(torch.tensor([prefix + s])).logits[0, -1]
            assert ids[0] == int(logits.argmax())


def test_several_groups_in_one_chunk_greedy(tiny):
    """An RRR phase: several tasks' groups in one call, interleaved, prefixes of different lengths (left-padded in
    the prefill) and a row that shares nothing."""
    model, tok = tiny
    a, sa = group(tok, 20, [2, 5, 0, 3], seed=7)
    b, sb = group(tok, 33, [0, 0, 0], seed=8)
    lone, _ = group(tok, 12, [], seed=9)
    prompts = [a + sa[0], b + sb[0], a + sa[1], lone, b + sb[1], a + sa[2], b + sb[2], a + sa[3]]
    params = SamplingParams(10, temperature=0.0)
    stats = {}
    want = hf_generate_ids(model, tok, prompts, params)
    assert shared_prefix_generate_ids(model, tok, prompts, params, stats=stats) == want
    # a row must feed one token of its own: group a holds a bare `a` (19 cached), group b three identical rows (32)
    assert stats["prompt_tokens_saved"] == 3 * 19 + 2 * 32
    assert shared_prefix_generate_ids(model, tok, [], params) == []


def test_plan_prefix_groups():
    head = [9, 9]  # a template header every prompt shares
    t1, t2 = head + list(range(10, 40)), head + list(range(50, 80))
    prompts = [[*t1, 1], t2, [*t1, 2, 3], [*t1, 1], [*head, 7]]
    groups = plan_prefix_groups(prompts)
    assert [(g.rows, g.length) for g in groups] == [([0, 2, 3], len(t1)), ([1], len(t2) - 1), ([4], 2)]
    assert prompt_tokens_saved(prompts, groups) == 2 * len(t1)
    # identical rows: the prefix stops one token short, so every row feeds at least one token itself
    assert [(g.rows, g.length) for g in plan_prefix_groups([[1, 2, 3]] * 3)] == [([0, 1, 2], 2)]
    # a header alone is not worth splitting a long shared prefix for
    assert len(plan_prefix_groups([[*t1, 1], [*t1, 2], head + [5] * 30])) == 2


def test_plan_is_linear_on_pathological_rows():
    """100 kB of one repeated token in every row: the plan compares each row with each group once, stopping at the
    first mismatch, so it stays fast however long the rows are."""
    import time

    rows = [[5] * 100_000 + [k] for k in range(64)]
    start = time.perf_counter()
    groups = plan_prefix_groups(rows)
    assert time.perf_counter() - start < 5
    assert len(groups) == 1 and groups[0].length == 100_000


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(12, temperature=1.0),
        SamplingParams(12, temperature=0.7, top_p=0.9, top_k=20, min_p=0.02, repetition_penalty=1.3),
    ],
)
def test_sampling_same_seed_same_draws(tiny, params):
    """The prefix prefill draws no random numbers and the rows keep hf_generate_ids' order, so one seed gives the
    same samples: every SamplingParams field acts exactly as in hf_generate_ids."""
    model, tok = tiny
    prefix, suffixes = group(tok, 24, [0, 0, 3, 6, 0, 2, 1, 0], seed=11)
    prompts = [prefix + s for s in suffixes]
    torch.manual_seed(5)
    want = hf_generate_ids(model, tok, prompts, params)
    torch.manual_seed(5)
    got = shared_prefix_generate_ids(model, tok, prompts, params)
    assert got == want
    assert len({tuple(ids) for ids, _ in got}) > 4, "samples collapsed: the checkpoint's top_k leaked"


def tv_bound(p: torch.Tensor, n: int, slack: float) -> float:
    """E[TV(empirical, p)] <= 0.5 * sum sqrt(p(1-p)/n); TV moves by <= 1/n per sample, so (McDiarmid)
    P(TV > E + slack) <= exp(-2 n slack^2) (7e-4 at n=1000, slack 0.06)."""
    return float(0.5 * torch.sqrt(p * (1 - p) / n).sum()) + slack


def test_first_token_distribution_matches_the_softmax(tiny):
    """1000 rows of one prefix at T=0.2: the empirical first-token distribution is within a TV bound of
    softmax(logits / 0.2) by teacher forcing, and the same counts are far from the T=0.3 softmax (the test has power)."""
    model, tok = tiny
    prefix, _ = group(tok, 24, [], seed=13)
    n, temperature = 1000, 0.2
    torch.manual_seed(0)
    outs = shared_prefix_generate_ids(model, tok, [prefix] * n, SamplingParams(1, temperature=temperature), 1000)
    counts = torch.bincount(torch.tensor([ids[0] for ids, _ in outs]), minlength=len(tok)).double()
    with torch.no_grad():
        logits = model(torch.tensor([prefix])).logits[0, -1].double()
    probs = torch.softmax(logits / temperature, -1)
    tv = 0.5 * float((counts / n - probs).abs().sum())
    bound = tv_bound(probs, n, slack=0.06)
    assert tv < bound, (tv, bound)
    assert int((counts > 0).sum()) > 5, "a degenerate distribution tests nothing"
    wrong = torch.softmax(logits / 0.3, -1)
    assert 0.5 * float((counts / n - wrong).abs().sum()) > bound, "the bound is too loose to detect a wrong T"


@pytest.mark.skipif(not (SMOLLM2 / "config.json").exists(), reason="runs/smollm2-135m-instruct not downloaded")
def test_greedy_identical_on_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rrr.generation.hf import render_chat

    tok = AutoTokenizer.from_pretrained(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(SMOLLM2).eval()
    prompt = render_chat(tok, [{"role": "user", "content": "Name three colours of the sea."}])
    suffixes = [[], tok.encode(" Blue"), tok.encode(" The sea can be")]
    params = SamplingParams(8, temperature=0.0)
    want = hf_generate_ids(model, tok, [prompt + s for s in suffixes], params, eos_ids=eos_ids_of(tok, model))
    got = shared_prefix_generate_ids(model, tok, [prompt + s for s in suffixes], params)
    assert got == want
    assert any(ids for ids, _ in got)


# ------------------------------------------------------------------------------------------------------------------
# Carrying a call's cache into the next call (the next RRR phase extends the previous one's rows)
# ------------------------------------------------------------------------------------------------------------------
def test_carry_reuses_the_previous_calls_cache(tiny):
    """Call 2's prompts extend call 1's rows (prompt + completion + a request): greedy outputs equal
    hf_generate_ids', and the prompt + completion of each call-1 row is found in the carried cache, not fed again."""
    from rrr.generation.prefix import KVCarry

    model, tok = tiny
    gen = torch.Generator().manual_seed(21)
    firsts = [random_ids(n, tok, gen) for n in (18, 25, 9, 30)]
    request = random_ids(7, tok, gen)
    params = SamplingParams(6, temperature=0.0)
    carry, stats = KVCarry(), {}
    out1 = shared_prefix_generate_ids(model, tok, firsts, params, carry=carry, min_saving=0.0, stats=stats)
    assert out1 == hf_generate_ids(model, tok, firsts, params)
    assert stats.get("prompt_tokens_carried", 0) == 0  # nothing to carry from yet
    seconds = [p + ids + request for p, (ids, _) in zip(firsts, out1)] + [firsts[0] + request]  # and a G-th row
    stats = {}
    out2 = shared_prefix_generate_ids(model, tok, seconds, params, carry=carry, stats=stats)
    assert out2 == hf_generate_ids(model, tok, seconds, params)
    # every row but the extra one holds its prompt + all but the last sampled token of call 1
    assert stats["prompt_tokens_carried"] >= sum(len(p) + len(ids) - 1 for p, (ids, _) in zip(firsts, out1))
    assert stats["prompt_tokens_saved"] >= stats["prompt_tokens_carried"]
    # and a third call on unrelated prompts ignores the carried rows (exactly the plain path)
    others = [random_ids(12, tok, gen) for _ in range(3)]
    assert shared_prefix_generate_ids(model, tok, others, params, carry=carry) == hf_generate_ids(
        model, tok, others, params
    )


def _episode_tokens(episodes):
    return [
        (
            [a.generation.token_ids for a in ep.attempts if a.generation is not None],
            [
                (o.reflection.token_ids, o.reflection.prompt_ids, [g.token_ids for g in o.retries])
                for o in ep.reflections
            ],
        )
        for ep in episodes
    ]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rrr_episodes_identical_with_shared_prefixes(tiny, temperature):
    """The whole episode (attempts, G reflections, retries) on HFGenerator with shared prefixes and the carried cache
    equals plain generation token for token: greedy, and sampled under one seed."""
    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.generation import HFGenerator
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
    runs = {}
    for shared in (False, True):
        generator = HFGenerator(model, tok, shared_prefix=shared)
        torch.manual_seed(9)
        runs[shared] = (_episode_tokens(run_episodes(task, generator, examples, config)), generator.prefix_stats)
    assert runs[True][0] == runs[False][0]
    assert runs[True][1]["prompt_tokens_saved"] > 0.5 * runs[True][1]["prompt_tokens"]
    assert sum(len(o[0]) for ep in runs[True][0] for o in ep[1]) > 0


@pytest.mark.skipif(not (SMOLLM2 / "config.json").exists(), reason="runs/smollm2-135m-instruct not downloaded")
def test_rrr_episodes_identical_on_smollm2():
    """A real checkpoint (its chat template, EOS and generation_config): episodes equal plain generation at T=0, and
    with natural-language reflections the retries find their reflection's row in the carried cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rrr.episode import EpisodeConfig, run_episodes
    from rrr.generation import HFGenerator
    from rrr.tasks import get_task

    tok = AutoTokenizer.from_pretrained(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(SMOLLM2).eval()
    task = get_task("countdown")
    examples = task.generate(2, seed=1, split="train")
    config = EpisodeConfig(
        attempt=SamplingParams(24, 0.0),
        reflection=SamplingParams(16, 0.0),
        retry=SamplingParams(8, 0.0),
        reflections_per_failure=2,
    )
    runs = {}
    for mode in ("plain", "within calls", "carried"):
        generator = HFGenerator(model, tok, shared_prefix=mode != "plain")
        if mode == "within calls":
            generator.kv_carry = None
        runs[mode] = (_episode_tokens(run_episodes(task, generator, examples, config)), generator.prefix_stats)
    assert runs["within calls"][0] == runs["plain"][0]
    assert runs["carried"][0] == runs["plain"][0]
    within, carried = runs["within calls"][1], runs["carried"][1]
    assert within["prompt_tokens"] == carried["prompt_tokens"]
    # reflections extend the attempts' rows, retries the reflections' rows: fewer tokens left to feed
    assert carried["prompt_tokens_carried"] > 0
    fed_within = within["prompt_tokens"] - within["prompt_tokens_saved"]
    fed_carried = carried["prompt_tokens"] - carried["prompt_tokens_saved"]
    assert fed_carried < 0.8 * fed_within, (fed_carried, fed_within)


def test_training_is_unchanged_by_shared_prefixes(tmp_path, monkeypatch):
    """Two RRR steps on the trainer's HF path with `shared_prefix_generation` off, on, and on with cascade attention:
    the same episodes (every attempt, reflection and retry) and the same losses, since generation draws the same
    tokens."""
    from trl import ModelConfig

    from rrr.training import RRRConfig, build_trainer
    from rrr.training.config import QUIET_CPU_RUN
    from rrr.training.rollout import RRRRollout
    from rrr.utils.io import read_jsonl

    class KeepGenerators(RRRRollout):
        made: typing.ClassVar[list] = []

        def make_generator(self, trainer):
            self.made.append(super().make_generator(trainer))
            return self.made[-1]

    import rrr.generation.cascade as cascade_module

    used = []  # calls that ran under cascade attention (a spy: the path must really be taken)
    real = cascade_module.cascade_attention
    monkeypatch.setattr(cascade_module, "cascade_attention", lambda *a: (used.append(1), real(*a))[1])
    results = {}
    for shared, cascade in ((False, False), (True, False), (True, True)):
        KeepGenerators.made = []
        used.clear()
        args = RRRConfig(
            output_dir=str(tmp_path / f"run-{shared}-{cascade}"),
            task="countdown",
            dataset_source="generated",
            dataset_size=32,
            attempt_max_tokens=8,
            max_completion_length=8,
            retry_max_tokens=8,
            num_generations=4,
            per_device_train_batch_size=8,
            max_steps=2,
            learning_rate=1e-3,
            no_signal_groups="keep",
            shared_prefix_generation=shared,
            cascade_attention=cascade,
            **QUIET_CPU_RUN,
            seed=0,
        )
        tok = build_tiny_tokenizer()
        model = build_tiny_model(tok, seed=5)
        trainer, _ = build_trainer(args, ModelConfig(), model=model, tokenizer=tok, rollout_factory=KeepGenerators)
        trainer.train()
        saved = sum(g.prefix_stats.get("prompt_tokens_saved", 0) for g in KeepGenerators.made)
        assert len(KeepGenerators.made) == 2 and (saved > 0) == shared
        episodes = read_jsonl(str(tmp_path / f"run-{shared}-{cascade}" / "episodes.jsonl"))
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        saved = [h["rrr/prompt_tokens_saved_frac"] for h in trainer.state.log_history if "loss" in h]
        assert all(s > 0.5 for s in saved) if shared else all(s is None or math.isnan(s) for s in saved), saved
        # a random model fails every retry: every generated token went to groups without signal
        assert [h["rrr/no_signal_token_frac"] for h in trainer.state.log_history if "loss" in h] == [1.0, 1.0]
        results[shared, cascade] = (episodes, losses)
        assert bool(used) == cascade
    plain = results[False, False]
    assert len(plain[0]) == 2 * 8
    for key in ((True, False), (True, True)):
        assert [e["reflection"] for e in results[key][0]] == [e["reflection"] for e in plain[0]], key
        assert results[key][0] == plain[0], key
        assert results[key][1] == pytest.approx(plain[1], rel=1e-5, abs=1e-7), key
