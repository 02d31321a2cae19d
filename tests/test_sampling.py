"""Every phase samples exactly what it states, whatever the checkpoint's ``generation_config`` says; RRR's metrics
count what they claim.

The tiny model below ships ``top_k=1`` and ``repetition_penalty=3.0`` in its generation_config (Qwen2.5-Instruct
ships top-k 20 and a 1.05 penalty; this random model is so confident that 1.5 never moves its argmax, 3.0 does). transformers fills every sampling field a call leaves unset from there, so a
leak shows as G identical reflections per group (no GRPO signal) and as penalised "greedy" retries.
"""

from __future__ import annotations

import math

import pytest
import torch
from synthetic import KeyTask
from trl import ModelConfig

from rrr.episode import Attempt, Episode, ReflectionOutcome
from rrr.generation import HFGenerator, SamplingParams
from rrr.generation.base import Generation
from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.tasks.base import Verdict
from rrr.training import RRRConfig, build_trainer
from rrr.training.config import QUIET_CPU_RUN


def leaky_model(tok):
    model = build_tiny_model(tok)
    model.generation_config.top_k = 1
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.do_sample = True
    model.generation_config.temperature = 0.1
    return model


def manual_greedy(model, prompt: list[int], steps: int, eos_ids: set[int]) -> list[int]:
    """Argmax decoding by hand: no logits processor of any kind."""
    ids = list(prompt)
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1]
            nxt = int(logits.argmax())
            out.append(nxt)
            ids.append(nxt)
            if nxt in eos_ids:
                break
    return out


def test_sampled_phase_ignores_the_checkpoints_top_k():
    tok = build_tiny_tokenizer()
    gen = HFGenerator(leaky_model(tok), tok)
    conversation = KeyTask().reflection_messages({"key": 1}, "?")
    torch.manual_seed(0)
    outs = gen.generate([conversation] * 16, SamplingParams(6, temperature=1.0))
    assert len({tuple(g.token_ids) for g in outs}) > 8, "16 samples at T=1 collapsed: the checkpoint's top_k leaked"


def test_greedy_phase_is_unpenalised_argmax():
    tok = build_tiny_tokenizer()
    model = leaky_model(tok).eval()
    gen = HFGenerator(model, tok)
    task = KeyTask()
    conversations = [task.retry_messages({"key": k}, "?", "w") for k in range(4)]
    outs = gen.generate(conversations, SamplingParams(24, temperature=0.0))
    for conv, g in zip(conversations, outs):
        assert g.token_ids == manual_greedy(model, g.prompt_ids, 24, gen.eos_ids), conv[-1]
    # the test can fail: with the checkpoint's penalty applied, greedy decoding differs on these prompts
    model.generation_config.do_sample = False
    penalised = [
        model.generate(torch.tensor([g.prompt_ids]), max_new_tokens=24)[0, len(g.prompt_ids) :].tolist() for g in outs
    ]
    assert any(p[: len(g.token_ids)] != g.token_ids for p, g in zip(penalised, outs))


def key_args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="column",
        max_completion_length=4,
        retry_max_tokens=3,
        num_generations=8,
        per_device_train_batch_size=32,
        max_steps=1,
        **QUIET_CPU_RUN,
        no_signal_groups="keep",
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


def test_trainer_reflections_in_a_group_differ_despite_the_checkpoints_top_k(tmp_path):
    tok = build_tiny_tokenizer()
    trainer, _ = build_trainer(key_args(tmp_path), ModelConfig(), model=leaky_model(tok), tokenizer=tok)
    trainer.model.train()
    ds = trainer.train_dataset
    rows = [dict(ds[i]) for i in range(4) for _ in range(8)]
    torch.manual_seed(0)
    trainer._generate_and_score_completions(rows)
    records = trainer._rrr_last_records_for_tests
    groups = [records[g * 8 : (g + 1) * 8] for g in range(4)]
    distinct = [len({r["reflection"] for r in group}) for group in groups]
    assert min(distinct) >= 3, f"distinct reflections per group of 8: {distinct} (the checkpoint's top_k leaked)"


def test_reflections_sample_with_the_trainers_own_filters(tmp_path):
    """The reflection phase carries the trainer's top_p/top_k/min_p/repetition_penalty (what TRL's own generation
    uses); attempts and retries are neutral."""
    from rrr.training.rollout import episode_config_from_args

    args = key_args(tmp_path, top_p=0.9, top_k=5, min_p=0.05, repetition_penalty=1.1, retry_temperature=0.0)
    config = episode_config_from_args(args, 8)
    r = config.reflection
    assert (r.top_p, r.top_k, r.min_p, r.repetition_penalty, r.temperature) == (0.9, 5, 0.05, 1.1, args.temperature)
    assert (config.attempt.top_k, config.attempt.repetition_penalty, config.attempt.top_p) == (0, 1.0, 1.0)
    assert config.retry.effective() == {"max_new_tokens": 3, "greedy": True}


def test_generation_kwargs_are_rejected_at_startup(tmp_path):
    with pytest.raises(ValueError, match="generation_kwargs"):
        key_args(tmp_path, generation_kwargs={"top_k": 20})


# ------------------------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------------------------
def _episode(passes: list[bool]) -> Episode:
    ep = Episode(example={"key": 0}, example_id="x")
    ep.attempts = [Attempt("a", Verdict(p, ""), Generation("a", token_ids=[1])) for p in passes]
    if not passes[-1]:
        refl = Generation("w", token_ids=[2])
        ep.reflections = [ReflectionOutcome(refl, [Generation("w", token_ids=[3])], [Verdict(False, "")], False)]
    return ep


def test_first_attempt_accuracy_counts_only_first_attempts(tmp_path):
    """Two tasks: the first passes once and then fails on a resample, the second fails at once: true first-try
    accuracy 1/2. Averaging over every sampled attempt (the old metric) reads 1/3."""
    from rrr.training.rollout import RRRRollout

    tok = build_tiny_tokenizer()
    args = key_args(tmp_path, first_attempt_source="online", first_attempt_tries=4)
    trainer, task = build_trainer(args, ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)
    trainer.model.train()
    RRRRollout(task, args)._log([_episode([True, False]), _episode([False])], trainer, 0.0)
    metrics = trainer._metrics["train"]
    assert metrics["rrr/first_attempt_acc"][-1] == pytest.approx(0.5)
    assert metrics["rrr/attempts_per_task"][-1] == pytest.approx(1.5)


def test_missing_vllm_logprobs_stay_missing():
    """TRL gives a ``None`` (NaN) sampling logprob a log-ratio of 0, i.e. no correction; 0.0 would claim the token
    had probability 1 and shrink the sequence's importance ratio."""
    from rrr.training.trl_adapter import flatten_logprobs

    assert flatten_logprobs([[-0.5], [None], [math.nan], [], [-1.0, -3.0]]) == [-0.5, None, None, None, -1.0]


def test_openai_backend_states_every_sampling_field():
    """A vLLM server fills fields a request omits from the checkpoint's generation_config: send them all, neutral
    ones included (except to OpenAI's own API, which rejects them)."""
    from http_fakes import FakeChatServer

    from rrr.generation.openai import OpenAIGenerator

    with FakeChatServer() as server:
        gen = OpenAIGenerator(server.base_url, "m")
        gen.generate([[{"role": "user", "content": "hi"}]], SamplingParams(4, temperature=0.7))
        gen.generate([[{"role": "user", "content": "hi"}]], SamplingParams(4, temperature=0.0, top_k=5))
        sampled, greedy = (r["json"] for r in server.requests)
    assert (sampled["top_k"], sampled["min_p"], sampled["repetition_penalty"], sampled["top_p"]) == (0, 0.0, 1.0, 1.0)
    assert (greedy["top_k"], greedy["repetition_penalty"], greedy["temperature"]) == (0, 1.0, 0.0)
    assert not OpenAIGenerator("https://api.openai.com/v1", "gpt").explicit_sampling
