"""The shuffled-reward control (``ShuffledRewardRollout``) permutes rewards within each GRPO group and changes
nothing else: the same prompts, completions, masks, episodes and group structure as the RRR rollout it extends.

Both rollouts run inside a real ``RRRGRPOTrainer`` (tiny model) on a scripted engine whose j-th reflection of a group
gets j of its 3 retries right, so every group's true rewards are the distinct 0, 1/3, 2/3, 1: a permutation that
moved nothing would be seen, and one that mixed groups or invented values would too.
"""

from __future__ import annotations

import functools
import random

import pytest
from trl import ModelConfig

from rrr.generation.base import Generation
from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.training import RRRConfig, build_trainer
from rrr.training.config import QUIET_CPU_RUN
from rrr.training.rollout import RRRRollout, ShuffledRewardRollout, shuffle_within_groups
from rrr.training.trl_adapter import TrainerGenerator

G, K, TASKS = 4, 3, 3  # reflections per group, retries per reflection, groups per batch
ATTEMPT, REFLECTION, RETRY = 5, 6, 7  # token budgets: the scripted engine tells the phases apart by them


class ScriptedEngine:
    """Deterministic stand-in for the policy: wrong first attempts, numbered reflections, retries that pass for
    the first ``p`` of the ``K`` retries of a group's ``p``-th reflection (so reward p/K, p = 0..G-1)."""

    def __init__(self, trainer, solutions: dict[str, str]):
        self.inner = TrainerGenerator(trainer)  # for render(): the real chat template
        self.solutions = solutions

    def render(self, conversation):
        return self.inner.render(conversation)

    def generate(self, conversations, params):
        outs = []
        for r, conv in enumerate(conversations):
            if params.max_new_tokens == ATTEMPT:
                text = "<answer>0</answer>"
            elif params.max_new_tokens == REFLECTION:
                text = f"reflection {r % G}"
            else:
                assert params.max_new_tokens == RETRY
                position, retry = (r // K) % G, r % K
                question = next(m["content"] for m in conv if m["role"] == "user")
                text = f"<answer>{self.solutions[question]}</answer>" if retry < position else "<answer>0</answer>"
            ids = self.inner.tokenizer(text, add_special_tokens=False)["input_ids"]
            outs.append(Generation(text=text, token_ids=ids, prompt_ids=self.render(conv)))
        return outs


def scripted(cls):
    class Scripted(cls):
        def make_generator(self, trainer):
            solutions = {
                next(m["content"] for m in row["prompt"] if m["role"] == "user"): row["solution"]
                for row in trainer._rrr_batch_inputs
            }
            return ScriptedEngine(trainer, solutions)

    return Scripted


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    args = RRRConfig(
        output_dir=str(tmp_path_factory.mktemp("control") / "run"),
        task="countdown",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="online",
        attempt_max_tokens=ATTEMPT,
        max_completion_length=REFLECTION,
        retry_max_tokens=RETRY,
        retries_per_reflection=K,
        retry_temperature=0.7,  # the engine is scripted; sampled retries are what K > 1 asks for
        num_generations=G,
        per_device_train_batch_size=TASKS * G,
        max_steps=1,
        **QUIET_CPU_RUN,
        seed=0,
    )
    tok = build_tiny_tokenizer()
    control = functools.partial(ShuffledRewardRollout, seed=0)
    model = build_tiny_model(tok, hidden_size=32)
    trainer, task = build_trainer(args, ModelConfig(), model=model, tokenizer=tok, rollout_factory=control)
    trainer.model.train()
    return trainer, task, args


def rollout_once(rollout, trainer, batch: int) -> tuple[dict, list]:
    ds = trainer.train_dataset
    rows = [dict(ds[batch * TASKS + g]) for g in range(TASKS) for _ in range(G)]
    trainer._rrr_batch_inputs = rows  # what RRRGRPOTrainer._generate_and_score_completions exposes to the rollout
    try:
        out = rollout([row["prompt"] for row in rows], trainer)
    finally:
        trainer._rrr_batch_inputs = None
    return out, trainer._rrr_records


def groups(values: list) -> list[list]:
    return [values[i : i + G] for i in range(0, len(values), G)]


def test_control_permutes_rewards_within_groups_and_leaves_everything_else_equal(trainer):
    trainer, task, args = trainer
    plain_rollout = scripted(RRRRollout)(task, args)
    control_rollout = scripted(ShuffledRewardRollout)(task, args, seed=7)
    moved = 0
    for batch in range(6):
        plain, plain_records = rollout_once(plain_rollout, trainer, batch)
        control, control_records = rollout_once(control_rollout, trainer, batch)
        assert control.keys() == plain.keys()
        for key in plain:
            if key != "rrr_reward":
                assert control[key] == plain[key], key  # prompts, completions, masks, retries, flags: all equal
        assert control_records == plain_records  # the logged episodes keep the true rewards
        assert len(control["rrr_reward"]) == len(plain["rrr_reward"]) == TASKS * G
        for true, shuffled in zip(groups(plain["rrr_reward"]), groups(control["rrr_reward"])):
            assert true == pytest.approx([p / K for p in range(G)])  # the engine's script: distinct rewards
            assert sorted(shuffled) == true  # a permutation of this very group: no value crosses groups
            moved += shuffled != true
    # 18 groups of 4 distinct rewards: all identity by chance has probability 24**-18
    assert moved > 0


def test_control_is_seeded_by_its_own_rng():
    rewards = [[0.0, 0.25, 0.5, 0.75] * 5 for _ in range(3)]
    state = random.getstate()
    for r, seed in zip(rewards, (1, 1, 2)):
        shuffle_within_groups(r, 4, random.Random(seed))
    assert random.getstate() == state  # never the global RNG
    assert rewards[0] == rewards[1] != rewards[2]


def test_groups_solved_at_the_first_attempt_are_left_alone():
    rewards = [None, None, 1.0, 0.0, 0.5, 0.25]
    shuffle_within_groups(rewards, 2, random.Random(0))
    assert rewards[:2] == [None, None]
    assert sorted(rewards[2:4]) == [0.0, 1.0] and sorted(rewards[4:]) == [0.25, 0.5]


def test_the_trainer_takes_its_rollout_as_a_parameter(trainer):
    trainer, _, _ = trainer
    assert type(trainer.rollout_func) is ShuffledRewardRollout  # built by the factory the fixture passed
