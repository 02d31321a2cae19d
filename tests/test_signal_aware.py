"""Signal-aware batches (``signal_oversample``) and cheap rows for masked no-signal groups.

The rollouts run inside a real ``RRRGRPOTrainer`` (tiny model) on a scripted engine whose outcome per task is fixed
by the task's id: a third of the tasks are solved at the first attempt, a third fail and every reflection's retry
fails too (a group without signal), a third fail and the first half of the group's reflections lead to a passing
retry (a group with signal). So which groups have signal is known from the ids alone, independently of the rollout.
"""

from __future__ import annotations

import hashlib
import math
import random
import subprocess
import types
from pathlib import Path

import pytest
import torch
from trl import ModelConfig

from rrr.generation.base import Generation
from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.training import RRRConfig, build_trainer, train
from rrr.training.config import QUIET_CPU_RUN
from rrr.training.rollout import RRRRollout
from rrr.training.trl_adapter import TrainerGenerator
from rrr.utils.cli import ConfigError

G, TASKS = 4, 6  # reflections per group, groups per batch
ATTEMPT, REFLECTION, RETRY = 5, 6, 7  # token budgets: the scripted engine tells the phases apart by them
SOLVED, SILENT, SIGNAL = "solved", "silent", "signal"
#: The last commit before signal-aware batches: the reference for "signal_oversample=0 changes nothing".
BEFORE = "8777fe6"


def kind(task_id: str) -> str:
    """The scripted outcome of a task: a stable function of its id only."""
    return (SOLVED, SILENT, SIGNAL)[int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % 3]


def question(conversation) -> str:
    return next(m["content"] for m in conversation if m["role"] == "user")


class ScriptedEngine:
    """Deterministic stand-in for the policy (see the module docstring); counts its calls."""

    def __init__(self, trainer, task):
        self.inner = TrainerGenerator(trainer)  # for render(): the real chat template
        ds = trainer.train_dataset
        self.rows = {question(row["prompt"]): dict(row) for row in (ds[i] for i in range(len(ds)))}
        self.task = task
        self.calls: list[tuple[int, int]] = []  # (max_new_tokens, rows) per generate call

    def render(self, conversation):
        return self.inner.render(conversation)

    def any_rank(self, flag):
        return flag

    def generate(self, conversations, params):
        self.calls.append((params.max_new_tokens, len(conversations)))
        outs = []
        for r, conv in enumerate(conversations):
            row = self.rows[question(conv)]
            outcome = kind(self.task.example_id(row))
            right = f"<answer>{row['solution']}</answer>"
            if params.max_new_tokens == ATTEMPT:  # silent groups have the longest prompts and reflections, so their
                # dummies narrow the batch: the other rows' padding (and positions) change, their loss must not
                text = right if outcome == SOLVED else "<answer>0</answer>" + " let me see" * (outcome == SILENT)
            elif params.max_new_tokens == REFLECTION:  # lengths differ within a group: a non-zero dapo loss
                text = f"reflection {r % G}" + " more" * (r % G) + " again" * (outcome == SILENT)
            else:
                assert params.max_new_tokens == RETRY
                text = right if outcome == SIGNAL and r % G < G // 2 else "<answer>0</answer>"
            ids = self.inner.tokenizer(text, add_special_tokens=False)["input_ids"]
            outs.append(Generation(text=text, token_ids=ids, prompt_ids=self.render(conv)))
        return outs


def scripted(cls=RRRRollout, **attributes):
    class Scripted(cls):
        def make_generator(self, trainer):
            self.engine = ScriptedEngine(trainer, self.task)
            return self.engine

    for name, value in attributes.items():
        setattr(Scripted, name, value)
    return Scripted


def make_args(tmp_path, **overrides) -> RRRConfig:
    base = dict(
        output_dir=str(tmp_path / "run"),
        task="countdown",
        dataset_source="generated",
        dataset_size=96,
        first_attempt_source="online",
        attempt_max_tokens=ATTEMPT,
        max_completion_length=REFLECTION,
        retry_max_tokens=RETRY,
        num_generations=G,
        per_device_train_batch_size=TASKS * G,
        max_steps=1,
        log_episodes=False,
        **QUIET_CPU_RUN,
        seed=0,
    )
    base.update(overrides)
    return RRRConfig(**base)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    args = make_args(tmp_path_factory.mktemp("signal"))
    tok = build_tiny_tokenizer()
    trainer, task = build_trainer(args, ModelConfig(), model=build_tiny_model(tok, hidden_size=32), tokenizer=tok)
    trainer.model.train()
    return trainer, task, args


def with_oversample(args, value: float, **more):
    """A copy of ``args`` with other RRR settings (the rollout reads them; the trainer is shared)."""
    return types.SimpleNamespace(**{**vars(args), "signal_oversample": value, **more})


def batch_rows(trainer, batch: int) -> list[dict]:
    ds = trainer.train_dataset
    return [dict(ds[batch * TASKS + g]) for g in range(TASKS) for _ in range(G)]


def rollout_once(rollout, trainer, batch: int) -> tuple[dict, list]:
    rows = batch_rows(trainer, batch)
    trainer._rrr_batch_inputs = rows  # what RRRGRPOTrainer._generate_and_score_completions exposes to the rollout
    trainer._metrics["train"].clear()
    try:
        out = rollout([row["prompt"] for row in rows], trainer)
    finally:
        trainer._rrr_batch_inputs = None
    return out, trainer._rrr_records


def own_ids(trainer, task, batch: int) -> list[str]:
    return [task.example_id(row) for row in batch_rows(trainer, batch)[::G]]


def groups(values: list) -> list[list]:
    return [values[i : i + G] for i in range(0, len(values), G)]


def metric(trainer, name: str) -> float:
    return trainer._metrics["train"][name][-1]


# ------------------------------------------------------------------------------------------------------------------
# Substitution
# ------------------------------------------------------------------------------------------------------------------
def test_extras_replace_only_groups_without_signal_and_only_with_signal(built):
    trainer, task, args = built
    rollout = scripted()(task, with_oversample(args, 1.0))
    replaced_total = 0
    for batch in range(4):
        out, records = rollout_once(rollout, trainer, batch)
        assert len(out["prompt_ids"]) == TASKS * G  # TRL's contract: exactly the batch's rows
        assert metric(trainer, "rrr/oversampled_tasks") == TASKS  # ceil(6 * 1.0) extras, every step
        assert rollout.engine.calls[0] == (ATTEMPT, 2 * TASKS)  # the extras ran in the same attempt call
        mine = own_ids(trainer, task, batch)
        trained = [g[0] for g in groups(out["rrr_task_id"])]
        assert all(len(set(g)) == 1 for g in groups(out["rrr_task_id"]))
        for position, (own, used) in enumerate(zip(mine, trained)):
            if kind(own) == SIGNAL:
                assert used == own  # a group with signal always stays where it is
            elif used != own:
                replaced_total += 1
                assert kind(used) == SIGNAL and used not in mine  # only an extra with signal replaces it
                group_records = records[position * G : (position + 1) * G]
                assert {r["substitutes_for"] for r in group_records} == {own}
                assert {r["task_id"] for r in group_records} == {used}
                assert sorted(out["rrr_reward"][position * G : (position + 1) * G]) == [0.0, 0.0, 1.0, 1.0]
        # greedy in order: a group without signal stays only when no extra with signal was left for it
        n_without = sum(kind(i) != SIGNAL for i in mine)
        n_replaced = sum(u != o for u, o in zip(trained, mine))
        assert n_replaced <= n_without
        assert metric(trainer, "rrr/signal_group_frac") == pytest.approx(
            sum(kind(u) == SIGNAL for u in trained) / TASKS
        )
    assert replaced_total > 0  # the pattern leaves about 2/3 of groups without signal: substitutions did happen


def test_without_oversampling_the_rollout_is_todays(built, tmp_path):
    """``signal_oversample=0`` with ``no_signal_groups: keep``: the same rows, fields and records as the rollout
    before this change (loaded from git); with ``mask`` only the no-signal groups' rows differ, as dummies."""
    trainer, task, args = built
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE}:rrr/training/rollout.py"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the git history (commit {BEFORE})")
    old = types.ModuleType("rollout_before_signal_aware")
    exec(compile(source, "rollout_before_signal_aware.py", "exec"), old.__dict__)
    dummies = 0
    for policy in ("keep", "mask"):
        settings = with_oversample(args, 0.0, no_signal_groups=policy)
        new_rollout, old_rollout = scripted()(task, settings), scripted(old.RRRRollout)(task, settings)
        for batch in range(4):
            new, new_records = rollout_once(new_rollout, trainer, batch)
            before, before_records = rollout_once(old_rollout, trainer, batch)
            assert new_records == before_records  # episodes.jsonl keeps the real reflections either way
            assert new.keys() == before.keys()  # no task-id column without oversampling
            if policy == "keep":
                assert new == before
                continue
            silent = [kind(i) == SILENT for i in own_ids(trainer, task, batch) for _ in range(G)]
            dummies += sum(silent)
            for key in new:
                if new[key] is None:  # logprobs without vLLM
                    assert before[key] is None
                    continue
                for row, (a, b) in enumerate(zip(new[key], before[key])):
                    if not silent[row] or key.startswith("rrr_"):
                        assert a == b, (key, row)
            for row in (r for r, s in enumerate(silent) if s):
                assert new["completion_ids"][row] == [trainer.processing_class.eos_token_id]
                assert new["env_mask"][row] == [0] and len(new["prompt_ids"][row]) == 1
            for g in groups(list(zip(new["prompt_ids"], silent))):
                if g[0][1]:
                    assert len({tuple(p) for p, _ in g}) == 1  # one shared prompt per dummy group
    assert dummies > 0  # the batches compared hold no-signal groups


def test_every_step_makes_three_generate_calls_whatever_the_data(built):
    trainer, task, args = built
    for oversample in (0.0, 0.5, 2.0):
        rollout = scripted()(task, with_oversample(args, oversample))
        extra = math.ceil(TASKS * oversample)
        for batch in range(4):
            rollout_once(rollout, trainer, batch)
            assert [budget for budget, _ in rollout.engine.calls] == [ATTEMPT, REFLECTION, RETRY]
            assert rollout.engine.calls[0][1] == TASKS + extra
            assert metric(trainer, "rrr/oversampled_tasks") == extra


def test_signal_fraction_of_trained_groups_rises_with_oversampling(built):
    trainer, task, args = built
    fraction, tokens = {}, {}
    for oversample in (0.0, 0.5, 2.0):
        rollout = scripted()(task, with_oversample(args, oversample))
        fracs, per_group = [], []
        for batch in range(8):
            rollout_once(rollout, trainer, batch)
            fracs.append(metric(trainer, "rrr/signal_group_frac"))
            per_group.append(metric(trainer, "rrr/tokens_per_signal_group"))
            wasted = metric(trainer, "rrr/no_signal_token_frac")
            assert 0 <= wasted <= 1 and (wasted < 1) == (fracs[-1] > 0)
        fraction[oversample] = sum(fracs) / len(fracs)
        tokens[oversample] = [t for t in per_group if not math.isnan(t)]
    assert fraction[0.0] < fraction[0.5] < fraction[2.0]
    assert fraction[2.0] > 0.8  # 18 extras for 6 groups: nearly every group can be filled with signal
    assert all(t > 0 for ts in tokens.values() for t in ts)


def test_a_step_without_any_signal_logs_nan_tokens_per_signal_group(built):
    trainer, task, args = built
    rollout = scripted()(task, with_oversample(args, 0.0))
    for batch in range(len(trainer.train_dataset) // TASKS):
        if all(kind(i) != SIGNAL for i in own_ids(trainer, task, batch)):
            rollout_once(rollout, trainer, batch)
            assert metric(trainer, "rrr/signal_group_frac") == 0
            assert math.isnan(metric(trainer, "rrr/tokens_per_signal_group"))
            assert metric(trainer, "rrr/no_signal_token_frac") == 1.0  # every token went to groups that cannot teach
            return
    pytest.skip("no batch without signal in this dataset")


def test_drawing_extras_uses_its_own_rng_seeded_by_seed_and_rank(built):
    trainer, task, args = built
    py_state, torch_state = random.getstate(), torch.get_rng_state()
    rollout = scripted()(task, with_oversample(args, 1.0))
    for batch in range(2):
        rollout_once(rollout, trainer, batch)
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)

    def draws(seed: int, rank: int) -> list[str]:
        fake = types.SimpleNamespace(
            train_dataset=trainer.train_dataset, accelerator=types.SimpleNamespace(process_index=rank)
        )
        r = RRRRollout(task, with_oversample(args, 1.0, seed=seed))
        return [task.example_id(row) for _ in range(3) for row in r.draw_extra_tasks(fake, 5)]

    assert draws(0, 0) == draws(0, 0)  # a rerun draws the same tasks
    assert draws(0, 0) != draws(0, 1) and draws(0, 0) != draws(1, 0)  # ranks and seeds draw different ones
    assert all(len(set(d[i : i + 5])) == 5 for d in (draws(0, 0),) for i in (0, 5, 10))  # distinct within a step


@pytest.mark.parametrize("value", [-0.1, 4.5])
def test_config_rejects_out_of_range_oversampling(tmp_path, value):
    with pytest.raises(ConfigError, match=r"signal_oversample must be in \[0, 4\].*use 0 to turn it off"):
        make_args(tmp_path, signal_oversample=value)
    make_args(tmp_path, signal_oversample=4)  # the bound itself is allowed


# ------------------------------------------------------------------------------------------------------------------
# Cheap masked rows: the same loss and gradients as today's masked rows
# ------------------------------------------------------------------------------------------------------------------
def _loss_and_grad(trainer, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])
    return loss.detach(), grad


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "bnpo", "dr_grpo"])
def test_dummy_rows_for_masked_groups_keep_loss_and_gradients(tmp_path, loss_type):
    args = make_args(tmp_path, loss_type=loss_type)
    tok = build_tiny_tokenizer()
    trainer, task = build_trainer(args, ModelConfig(), model=build_tiny_model(tok, hidden_size=32), tokenizer=tok)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = next(b for b in range(16) if {kind(i) for i in own_ids(trainer, task, b)} == {SOLVED, SILENT, SIGNAL})
    rows = batch_rows(trainer, batch)
    results = {}
    for cheap in (True, False):
        trainer.rollout_func = scripted(cheap_masked_rows=cheap)(task, args)
        inputs = trainer._generate_and_score_completions(rows)
        # a fixed off-policy reference (as after an earlier optimiser step): ratios != 1, some clipped, so the loss
        # itself is not zero under either normaliser
        inputs["old_per_token_logps"] = torch.full(inputs["completion_ids"].shape, -3.0)
        results[cheap] = (inputs, *_loss_and_grad(trainer, inputs))
    (cheap_in, cheap_loss, cheap_grad), (full_in, full_loss, full_grad) = results[True], results[False]
    assert torch.equal(cheap_in["advantages"], full_in["advantages"])  # the true rewards: the same advantages
    assert cheap_in["num_items_in_batch"] == full_in["num_items_in_batch"]
    assert full_grad.norm() > 0 and full_loss.abs() > 1e-3  # the signal groups learn
    assert cheap_in["prompt_ids"].shape[1] < full_in["prompt_ids"].shape[1]  # the other rows' left padding moved
    scored = {k: int(v["prompt_mask"].sum() + v["completion_mask"].sum()) for k, v in ((1, cheap_in), (0, full_in))}
    assert scored[1] < scored[0]  # fewer real tokens go through the forward pass
    torch.testing.assert_close(cheap_loss, full_loss, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(cheap_grad, full_grad, rtol=1e-5, atol=1e-8)  # measured: <= 4e-9 apart


# ------------------------------------------------------------------------------------------------------------------
# A real run
# ------------------------------------------------------------------------------------------------------------------
def test_two_step_training_run_with_oversampling_logs_the_metrics(tmp_path):
    tok = build_tiny_tokenizer()
    args = RRRConfig(
        output_dir=str(tmp_path / "run"),
        task="synthetic:KeyTask",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="column",
        max_completion_length=3,
        retry_max_tokens=3,
        num_generations=4,
        per_device_train_batch_size=16,
        max_steps=2,
        signal_oversample=0.5,
        **QUIET_CPU_RUN,
        seed=0,
    )
    summary = train(args, ModelConfig(), model=build_tiny_model(tok), tokenizer=tok)
    assert summary["global_step"] == 2
    log = summary["last_log"]
    assert log["rrr/oversampled_tasks"] == 2  # ceil(4 groups * 0.5)
    assert 0 <= log["rrr/signal_group_frac"] <= 1
    assert "rrr/tokens_per_signal_group" in log
