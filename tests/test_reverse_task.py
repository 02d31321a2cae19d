"""The worked example task (``rrr/tasks/reverse.py``, ``docs/tasks.md``) runs end to end through every layer.

One module and one registry line are all it took: load -> episode -> evaluation -> the oracle curriculum -> a couple
of RRR training steps on the tiny model. If a layer needed to know about the task by name, this would fail.
"""

from __future__ import annotations

import json
import os
import random

import pytest
from trl import ModelConfig

from rrr.curriculum import run_knowledge_transfer
from rrr.curriculum.oracle import oracle_reflection, synthesize_failure
from rrr.curriculum.prompts import initial_strategy
from rrr.episode import EpisodeConfig, run_episodes
from rrr.evaluation import evaluate_model
from rrr.generation import HFGenerator, SamplingParams
from rrr.models import build_tiny_model, build_tiny_tokenizer, save_tiny_model
from rrr.tasks import get_task, registered_tasks
from rrr.tasks.reverse import ReverseTask
from rrr.training import RRRConfig, train
from rrr.training.config import QUIET_CPU_RUN
from rrr.utils.io import read_jsonl


@pytest.fixture(scope="module")
def task() -> ReverseTask:
    return get_task("reverse")


def test_registered_and_loaded_with_disjoint_splits(task):
    assert "reverse" in registered_tasks() and isinstance(task, ReverseTask)
    train_ds, test_ds = task.load(split="train", n=40, seed=1), task.load(split="test", n=40, seed=1)
    assert list(train_ds["word"]) == list(task.load(split="train", n=40, seed=1)["word"])  # seeded
    assert set(train_ds["word"]).isdisjoint(test_ds["word"])
    assert all(w != w[::-1] for w in train_ds["word"])  # no palindrome: a reflection may name the word


def test_verifier_and_leak_check(task):
    ex = {"word": "stone"}
    assert task.verify(ex, "<answer>enots</answer>").passed
    assert task.verify(ex, "<answer> ENOTS </answer>").passed
    assert task.verify(ex, "<answer>stone</answer>").reason == "the word was not reversed"
    assert not task.verify(ex, "enots").passed and not task.verify(ex, None).passed
    assert task.leaks_answer(ex, "I should have written enots.")
    assert not task.leaks_answer(ex, "I wrote stone unchanged; I must start from its last letter.")
    assert task.verify(ex, task.worked_solution(ex)).passed


def test_the_oracle_teacher_uses_the_tasks_own_knowledge(task):
    ex = task.generate(1, seed=3)[0]
    attempt = synthesize_failure(task, ex, random.Random(0))
    assert attempt in task.plausible_mistakes(ex) and not task.verify(ex, attempt).passed
    reflection = oracle_reflection(task, ex, attempt, task.verify(ex, attempt))
    assert reflection == task.oracle_reflections(ex, attempt, task.verify(ex, attempt))[0]
    assert not task.leaks_answer(ex, reflection)
    assert initial_strategy(task) == ReverseTask.initial_strategy


def test_end_to_end_episode_evaluation_curriculum_and_training(task, tmp_path):
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok)
    examples = task.generate(4, seed=5, split="test")
    cfg = EpisodeConfig(
        attempt=SamplingParams(8, temperature=1.0, seed=0),
        reflection=SamplingParams(8, temperature=1.0, seed=0),
        retry=SamplingParams(8, temperature=0.0),
    )
    episodes = run_episodes(task, HFGenerator(model, tok), examples, cfg)
    assert len(episodes) == 4 and all(ep.attempts for ep in episodes)

    model_dir = save_tiny_model(str(tmp_path / "tiny"))
    result = evaluate_model(
        model_dir,
        "reverse",
        n=4,
        output_dir=str(tmp_path / "eval"),
        progress=False,
        backend="hf",
        attempt_max_tokens=8,
        reflection_max_tokens=8,
        retry_max_tokens=8,
    )
    assert len(read_jsonl(os.path.join(tmp_path / "eval", "samples.jsonl"))) == 4
    assert json.dumps(result)  # a plain, serialisable summary

    summary = run_knowledge_transfer(
        "reverse", "oracle", None, str(tmp_path / "curriculum"), num_train=8, num_test=4, batch_size=4, progress=False
    )
    assert summary["curriculum"]["sft_rows"] > 0 and summary["curriculum"]["reflection_rows"] > 0
    assert summary["accuracy"]["teacher_after"]["acc"] == 1.0  # the oracle follows the task's procedure
    assert summary["self_improve"]["final_strategy"].startswith(ReverseTask.oracle_procedure)

    args = RRRConfig(
        output_dir=str(tmp_path / "rrr"),
        task="reverse",
        dataset_source="generated",
        dataset_size=16,
        max_completion_length=8,
        retry_max_tokens=8,
        num_generations=4,
        per_device_train_batch_size=8,
        max_steps=2,
        **QUIET_CPU_RUN,
        seed=0,
    )
    out = train(args, ModelConfig(model_name_or_path=model_dir))
    assert out["global_step"] == 2
