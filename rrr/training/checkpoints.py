"""Which checkpoint a re-run resumes from, and whether there is anything left to train.

Why this exists: ``transformers.Trainer`` writes ``checkpoint-N/`` in place, file by file (weights, then optimizer,
scheduler, scaler and RNG state, then ``trainer_state.json``; see ``Trainer._save_checkpoint`` in transformers 5.x),
and ``get_last_checkpoint`` picks the highest ``N`` whatever its contents. A save cut short (kill -9, a full disk)
therefore leaves a directory that every later run picks and fails on (``Can't find a valid checkpoint`` or
``FileNotFoundError: trainer_state.json``) until someone deletes it by hand.

**Complete** here means: ``trainer_state.json`` parses and names the step in the directory's name; model weights
are present (full model, sharded index with every shard, LoRA adapter, or an FSDP / DeepSpeed layout); unless the
run saves only the model, the optimizer state (``optimizer.pt``; FSDP's ``optimizer.bin`` / ``optimizer_N/``; under
DeepSpeed its ``global_step*`` folder), ``scheduler.pt`` and at least one ``rng_state*.pth`` are present; and no file
is truncated: a ``.safetensors`` file's size must equal what its header promises, a ``torch.save`` zip must have
its central directory (written last). These checks read headers only, so they cost milliseconds even for large
checkpoints.

Incomplete checkpoints are **moved aside**, not deleted: into ``<output_dir>/incomplete-checkpoints/`` (a name
outside ``checkpoint-*``, so neither ``get_last_checkpoint`` nor ``save_total_limit`` rotation sees them again),
where the user can inspect and delete them. Nothing the run wrote is destroyed by this module.

Writes are not made atomic (that would mean re-implementing ``_save_checkpoint`` across every sharding backend);
the resume rule above is what makes an interrupted save harmless.

**Finished runs.** Trainer's loop only checks ``global_step >= max_steps`` *after* an optimizer step, so resuming a
checkpoint that already reached ``max_steps`` trains one more step (2 -> 3 -> 4 on identical commands), and under
``save_total_limit`` that new checkpoint rotates the real final one out. :func:`plan_resume` compares the checkpoint
(or the finished run's summary) with the target step count *before* training: at or past it, nothing is trained.
A larger ``--max_steps`` (or ``--num_train_epochs``) is how a user asks to train further.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zipfile
from dataclasses import dataclass, field

from rrr.utils.cli import ConfigError

logger = logging.getLogger("rrr.train")

INCOMPLETE_DIR = "incomplete-checkpoints"
#: values of ``resume_from_checkpoint`` that mean "the newest complete one in output_dir, if any"
_AUTO_RESUME = (None, False, True, "", "True", "true")
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "pytorch_model_fsdp.bin",
)
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class CheckpointError(ConfigError):
    """An explicitly requested checkpoint (``--resume_from_checkpoint``) that cannot be resumed from: the user's
    input, so scripts print it as one ``error:`` line (exit 2), not a traceback."""


# ----------------------------------------------------------------------------------------------------------------
# Completeness
# ----------------------------------------------------------------------------------------------------------------
def checkpoint_step(path: str) -> int | None:
    """The step in a ``checkpoint-N`` directory's name (``None`` for any other name)."""
    m = _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    return int(m.group(1)) if m else None


def checkpoint_problem(path: str, with_optimizer: bool = True) -> str | None:
    """Why ``path`` is not a complete checkpoint (one short sentence), or ``None`` when it is complete.

    ``with_optimizer=False`` (a run with ``save_only_model``) skips the optimizer/scheduler/RNG files.
    """
    if not os.path.isdir(path):
        return "not a directory"
    state_path = os.path.join(path, "trainer_state.json")
    if not os.path.exists(state_path):
        return "trainer_state.json is missing (the save was interrupted before its last file)"
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return "trainer_state.json is truncated or unreadable"
    named = checkpoint_step(path)
    if named is not None and step != named:
        return f"trainer_state.json names step {step}, not {named}"
    names = set(os.listdir(path))
    deepspeed = sorted(n for n in names if n.startswith("global_step") and os.path.isdir(os.path.join(path, n)))
    fsdp_dirs = sorted(n for n in names if n.startswith("pytorch_model_fsdp") and os.path.isdir(os.path.join(path, n)))
    weights = [n for n in _WEIGHT_FILES if n in names]
    for index in (n for n in _WEIGHT_INDEXES if n in names):
        problem = _index_problem(path, index)
        if problem:
            return problem
        weights.append(index)
    if not weights and not deepspeed and not fsdp_dirs:
        return "no model weights (model.safetensors, an adapter, or a sharded index)"
    for name in weights:
        problem = _file_problem(os.path.join(path, name))
        if problem:
            return problem
    for name in deepspeed + fsdp_dirs:
        for inner in sorted(os.listdir(os.path.join(path, name))):
            problem = _file_problem(os.path.join(path, name, inner))
            if problem:
                return problem
    if with_optimizer:
        # plain: optimizer.pt; FSDP: optimizer.bin (full state dict) or optimizer_N/ (sharded); XLA FSDP:
        # rankR-of-W-optimizer.pt; DeepSpeed keeps optimizer (and its own scheduler) in its global_step* folder
        optimizer = sorted(
            n for n in names if re.fullmatch(r"optimizer(\.pt|\.bin|_\d+)|rank\d+-of-\d+-optimizer\.pt", n)
        )
        if not optimizer and not deepspeed:
            return "optimizer.pt is missing"
        if "scheduler.pt" not in names and not deepspeed:
            return "scheduler.pt is missing"
        rng = sorted(n for n in names if re.fullmatch(r"rng_state(_\d+)?\.pth", n))
        if not rng:
            return "rng_state.pth is missing"
        for name in optimizer + [n for n in ("scheduler.pt", "scaler.pt") if n in names] + rng:
            problem = _file_problem(os.path.join(path, name))
            if problem:
                return problem
    return None


def _index_problem(path: str, index: str) -> str | None:
    try:
        with open(os.path.join(path, index), encoding="utf-8") as f:
            shards = set(json.load(f)["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{index} is truncated or unreadable"
    for shard in sorted(shards):
        if not os.path.exists(os.path.join(path, shard)):
            return f"{shard} (listed in {index}) is missing"
        problem = _file_problem(os.path.join(path, shard))
        if problem:
            return problem
    return None


def _file_problem(path: str) -> str | None:
    """Whether one saved file is whole, from its header / trailer only."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        return None  # a sub-directory of a sharded layout: its files are checked on their own
    size = os.path.getsize(path)
    if size == 0:
        return f"{name} is empty"
    if name.endswith(".safetensors"):
        return _safetensors_problem(path, size)
    if name.endswith((".pt", ".pth", ".bin")):
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic != b"PK":  # not torch's zip format (a legacy pickle): nothing cheap to check
            return None
        try:
            with zipfile.ZipFile(path) as z:
                if not z.namelist():
                    return f"{name} is truncated"
        except (zipfile.BadZipFile, OSError):
            return f"{name} is truncated"
    return None


def _safetensors_problem(path: str, size: int) -> str | None:
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{name} is truncated"
            n = int.from_bytes(head, "little")
            if n > size - 8:
                return f"{name} is truncated"
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return f"{name} has an unreadable header"
    if size != 8 + n + end:
        return f"{name} is truncated ({size} of {8 + n + end} bytes)"
    return None


# ----------------------------------------------------------------------------------------------------------------
# Choosing where to resume
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ResumePlan:
    """Where a run starts: ``checkpoint`` (``None`` = from scratch) at ``step``, and what was passed over."""

    checkpoint: str | None = None
    step: int = 0
    #: ``(path, why)`` of every incomplete ``checkpoint-*`` directory found in the output directory
    incomplete: list[tuple[str, str]] = field(default_factory=list)


def find_resume_checkpoint(output_dir: str, with_optimizer: bool = True) -> ResumePlan:
    """The newest complete ``checkpoint-N`` in ``output_dir`` plus every incomplete one (read-only).

    Every process may call this at once: it only reads, and a concurrent :func:`set_aside` of an incomplete
    checkpoint cannot change the answer (an incomplete one is never chosen, moved or not).
    """
    plan = ResumePlan()
    if not os.path.isdir(output_dir):
        return plan
    found = []
    for name in os.listdir(output_dir):
        step = checkpoint_step(name)
        if step is not None and os.path.isdir(os.path.join(output_dir, name)):
            found.append((step, os.path.join(output_dir, name)))
    for step, path in sorted(found, reverse=True):
        problem = checkpoint_problem(path, with_optimizer=with_optimizer)
        if problem is not None:
            plan.incomplete.append((path, problem))
        elif plan.checkpoint is None:
            plan.checkpoint, plan.step = path, step
    return plan


def explicit_checkpoint(path: str, with_optimizer: bool = True) -> ResumePlan:
    """A checkpoint the user named: resumed from as is, or refused with the reason (no silent substitute)."""
    problem = checkpoint_problem(path, with_optimizer=with_optimizer)
    if problem is not None:
        raise CheckpointError(
            f"resume_from_checkpoint={path!r} is not a complete checkpoint: {problem}. Name another checkpoint, or "
            "leave resume_from_checkpoint unset to resume from the newest complete one in output_dir"
        )
    with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as f:
        step = int(json.load(f)["global_step"])
    return ResumePlan(checkpoint=path, step=step)


def check_explicit_resume(args) -> None:
    """Refuse a named ``resume_from_checkpoint`` that is incomplete *before* the output directory is claimed, so a
    mistyped path writes nothing (read-only; :func:`plan_resume` checks it again under the lock)."""
    value = getattr(args, "resume_from_checkpoint", None)
    if value not in _AUTO_RESUME:
        explicit_checkpoint(str(value), with_optimizer=not getattr(args, "save_only_model", False))


def plan_resume(output_dir: str, resume_from_checkpoint=None, with_optimizer: bool = True) -> ResumePlan:
    """``resume_from_checkpoint`` when given (checked), else the newest complete checkpoint of ``output_dir``.

    Logs each incomplete checkpoint passed over and why (every process finds the same ones; only the caller's
    main process should :func:`set_aside` them).
    """
    if resume_from_checkpoint not in _AUTO_RESUME:
        return explicit_checkpoint(str(resume_from_checkpoint), with_optimizer=with_optimizer)
    plan = find_resume_checkpoint(output_dir, with_optimizer=with_optimizer)
    for path, why in plan.incomplete:
        logger.warning(
            "skipping %s: %s; resuming from %s instead", path, why, plan.checkpoint or "scratch (no complete one)"
        )
    if plan.checkpoint:
        logger.info("resuming from the newest complete checkpoint %s (step %d)", plan.checkpoint, plan.step)
    return plan


def set_aside(output_dir: str, incomplete: list[tuple[str, str]]) -> list[str]:
    """Move incomplete checkpoints into ``<output_dir>/incomplete-checkpoints/`` (kept for inspection).

    A name outside ``checkpoint-*`` is what keeps them out of ``get_last_checkpoint`` and of ``save_total_limit``
    rotation (whose glob would otherwise count, and possibly keep, a broken one instead of a good one). The new
    name carries the time it was moved, so a second interrupted save of the same step does not collide.
    """
    moved = []
    if not incomplete:
        return moved
    target_dir = os.path.join(output_dir, INCOMPLETE_DIR)
    os.makedirs(target_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for path, why in incomplete:
        if not os.path.isdir(path):
            continue  # another process moved it already
        base = os.path.join(target_dir, f"{os.path.basename(os.path.normpath(path))}.{stamp}")
        target, i = base, 1
        while os.path.exists(target):
            target, i = f"{base}.{i}", i + 1
        try:
            os.replace(path, target)
        except FileNotFoundError:
            continue
        with open(os.path.join(target, "WHY_INCOMPLETE.txt"), "w", encoding="utf-8") as f:
            f.write(f"{why}\nmoved here from {path} by rrr at {stamp}; safe to delete\n")
        logger.warning("moved the incomplete %s to %s (%s)", path, target, why)
        moved.append(target)
    return moved


def finished_summary(summary_path: str, target_steps: int, plan: ResumePlan) -> dict | None:
    """The stored summary of a run that already reached ``target_steps`` with nothing newer to save, else ``None``.

    The summary file is written last (after the final model), so its presence with ``global_step >= target`` means
    the final model in the output directory is that run's, and a checkpoint newer than it does not exist.
    """
    if target_steps <= 0 or not os.path.exists(summary_path):
        return None
    try:
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        done = int(summary["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if done >= target_steps and plan.step <= done:
        return summary
    return None


def already_done_message(step: int, target_steps: int, how: str) -> str:
    return (
        f"this run already reached step {step} ({how} asks for {target_steps}): nothing to train. Pass a larger "
        "--max_steps (or --num_train_epochs) to train further, or another --output_dir to start over"
    )


def restore_final_state(trainer, checkpoint: str) -> None:
    """Load ``checkpoint``'s weights and trainer state into a built, untrained ``trainer`` (to save them as final).

    Uses ``Trainer._load_from_checkpoint`` (weights only, before ``accelerator.prepare``), which cannot load
    DeepSpeed or FSDP shards: those runs are told where their final weights are instead.
    """
    from transformers.trainer_callback import TrainerState

    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        raise CheckpointError(
            f"the run already reached its last step, but its final model was not saved; with DeepSpeed/FSDP rrr "
            f"cannot save it from {checkpoint} without training: convert that checkpoint, or pass a larger --max_steps"
        )
    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))


def finished_run(summary_path: str, target: int, plan, how: str) -> dict | None:
    """The stored summary of a run that already reached ``target`` steps (logged), else ``None``.

    Why before training: ``Trainer`` checks ``global_step >= max_steps`` only after an optimizer step, so resuming
    a finished run would train one more step (and rotate the real final checkpoint out under ``save_total_limit``).
    """
    done = finished_summary(summary_path, target, plan)
    if done is None:
        return None
    logger.warning(already_done_message(int(done["global_step"]), target, how))
    return {**done, "already_finished": True}


def target_steps(trainer) -> int:
    """The global step this run's configuration ends at: ``max_steps``, or the epochs' steps as Trainer counts them."""
    if trainer.args.max_steps > 0:
        return int(trainer.args.max_steps)
    return int(trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())[-1])
