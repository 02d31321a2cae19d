"""Start-up checks on the data of a run: what would otherwise fail hours in, or "succeed" doing nothing.

Each check reads the loaded dataset once, before a model is built or anything is written, and raises a
``UsageError`` (one line and exit 2 in scripts, see ``rrr.utils.cli``) that names the row, the field and the fix:

* **first attempts in column mode** — a null ``failed_attempt`` would silently be sampled online and an empty one
  reflected upon, so neither is the offline failure set the user asked for;
* **prompt lengths** — the retry prompt holds the task, the failed attempt and the reflection, so its worst case is
  the first-attempt prompt plus every phase's budget; a prompt past the model's context fails deep inside generation
  (a 1 MB prompt asked HF ``generate`` for a 1 TB attention mask) instead of naming the row;
* **dataset size** — TRL's sampler drops an incomplete generation batch, so a dataset smaller than one batch of
  tasks trains zero steps, exits 0 and saves the untouched model as if trained.

Rows that fail the first two checks are dropped with a counted warning instead when the task's ``on_bad_row`` is
``"skip"`` (``task_kwargs: {"on_bad_row": "skip"}``), like rows the task itself cannot read (``Task.check_rows``).
"""

from __future__ import annotations

import json
import os

from rrr.episode.episode import check_context_lengths, context_limit, drop_or_raise
from rrr.tasks.base import Task, TaskDataError
from rrr.training.rollout import episode_config_from_args
from rrr.utils.cli import ConfigError
from rrr.utils.config import check_field_types

#: Rows quoted in an error or warning (the count covers the rest).
_QUOTED = 3


# ------------------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------------------
def preflight_training(args, model_args, task: Task, dataset, model=None, tokenizer=None):
    """Check a training run's config and data before the model is built; returns ``(dataset, tokenizer)``.

    ``dataset`` comes back without the rows dropped under ``on_bad_row="skip"``; ``tokenizer`` is the one passed in
    or loaded from ``model_name_or_path`` (the length check needs it, and the trainer then reuses it).
    """
    check_field_types(model_args)
    if (model is None or tokenizer is None) and not model_args.model_name_or_path:
        raise ConfigError(
            "model_name_or_path is required: a hub id or a local model directory (`make tiny-model` builds one)"
        )
    if args.first_attempt_source == "column":
        dataset = check_first_attempts(dataset, args.first_attempt_column, task.on_bad_row)
    if tokenizer is None:
        from rrr.models.loading import load_tokenizer

        tokenizer = load_tokenizer(model_args.model_name_or_path, revision=model_args.model_revision)
    limit, where = training_context_limit(args, model_args, model, tokenizer)
    if limit is not None:
        dataset = check_context_lengths(
            task,
            tokenizer,
            dataset,
            episode_config_from_args(args, args.num_generations),
            limit,
            where,
            stored_attempts=args.first_attempt_column if args.first_attempt_source == "column" else None,
            chat_template_kwargs=args.chat_template_kwargs or {},
        )
    check_dataset_size(args, len(dataset))
    return dataset, tokenizer


def check_dataset_size(args, rows: int) -> None:
    """At least one generation batch of tasks, counted the way TRL's ``RepeatSampler`` counts them.

    The sampler yields ``generation_batch_size / num_generations`` distinct tasks per batch and drops a batch it
    cannot fill, and ``generation_batch_size`` defaults to ``per_device_train_batch_size x processes x
    steps_per_generation`` (``steps_per_generation`` defaults to ``gradient_accumulation_steps``).
    """
    needed = args.generation_batch_size // args.num_generations
    if rows >= needed:
        return
    how = (
        f"per_device_train_batch_size {args.per_device_train_batch_size} x {args.world_size} process(es) x "
        f"steps_per_generation {args.steps_per_generation} = {args.generation_batch_size} reflections"
    )
    if args.generation_batch_size != args.per_device_train_batch_size * args.world_size * args.steps_per_generation:
        how = f"generation_batch_size {args.generation_batch_size} reflections"
    raise TaskDataError(
        f"the training dataset has {rows} usable row(s) but one step needs {needed} tasks ({how}, in groups of "
        f"num_generations {args.num_generations}); with fewer, TRL trains 0 steps and saves an untrained model. Use "
        "more rows (dataset_size, or a larger dataset_source) or lower per_device_train_batch_size (a multiple of "
        "num_generations)"
    )


def check_first_attempts(dataset, column: str, on_bad_row: str = "error"):
    """Every row of a column-mode dataset holds a stored failed attempt: non-empty text.

    ``run_episodes`` samples a first attempt online for a ``None`` entry (right for evaluation, wrong for a run
    that asked for the offline failure set) and would reflect on an empty one.
    """
    if column not in dataset.column_names:
        raise TaskDataError(
            f"first_attempt_source='column' needs a {column!r} column, but the dataset has {dataset.column_names}. "
            "Mine failures first (scripts/mine_failures.py) or use first_attempt_source: online"
        )
    bad = []
    for i, value in enumerate(dataset[column]):
        if value is None:
            bad.append((i, "null"))
        elif not isinstance(value, str):
            bad.append((i, f"{type(value).__name__}, not text"))
        elif not value.strip():
            bad.append((i, "empty"))
    if not bad:
        return dataset
    quoted = ", ".join(f"row {i} ({why})" for i, why in bad[:_QUOTED]) + (" and more" if len(bad) > _QUOTED else "")
    summary = f"{len(bad)} of {len(dataset)} rows have no stored first attempt in column {column!r}: {quoted}"
    return drop_or_raise(
        dataset,
        [i for i, _ in bad],
        summary,
        on_bad_row,
        "first_attempt_source='column' reflects on the stored failed attempt of every row (a null one would be "
        "sampled online, an empty one reflected upon). Remove those rows or re-mine them (scripts/mine_failures.py), "
        "or use first_attempt_source: online",
    )


def training_context_limit(args, model_args, model=None, tokenizer=None) -> tuple[int | None, str]:
    """``(tokens, where the number comes from)`` for a training run, or ``(None, "")`` when nothing records one.

    vLLM enforces ``vllm_max_model_length`` when set; otherwise the model config's position limit; the tokenizer's
    ``model_max_length`` only when the model config has none (tokenizers often record a smaller, advisory value).
    """
    if getattr(args, "use_vllm", False) and getattr(args, "vllm_max_model_length", None):
        return int(args.vllm_max_model_length), "vllm_max_model_length"
    config = getattr(model, "config", None) if model is not None else _model_config(model_args)
    return context_limit(config, tokenizer, model_args.model_name_or_path if model_args else "the model")


def _model_config(model_args):
    """The model's ``PretrainedConfig`` without loading weights (an adapter directory: its base's), or None when it
    cannot be read here — the model loader then reports the problem itself."""
    from transformers import AutoConfig

    path = model_args.model_name_or_path
    try:
        adapter = os.path.join(path, "adapter_config.json")
        if os.path.exists(adapter):
            with open(adapter) as f:
                path = json.load(f).get("base_model_name_or_path") or path
        return AutoConfig.from_pretrained(path, revision=model_args.model_revision)
    except Exception:  # missing, gated, GGUF, ...: not this check's to report
        return None
