r"""``rrr curriculum`` / ``scripts/run_curriculum.py``: parse -> ``rrr.curriculum.pipeline`` -> a summary.

Teacher -> curriculum -> student for one task, measured side by side (the Linguistic RL pipeline, reproducible).

    # offline, CPU: the oracle teacher and the tiny local model (make tiny-model)
    python scripts/run_curriculum.py --task scheduling --teacher oracle --student runs/tiny-model \
        --output-dir runs/curriculum-scheduling
    # a hosted or served teacher; stages 1-2 only, then fine-tune on a GPU with scripts/train_sft.py
    python scripts/run_curriculum.py --task scheduling --task-kwargs '{"strict": true}' \
        --teacher anthropic:claude-3-5-haiku-20241022 --student Qwen/Qwen2.5-1.5B-Instruct \
        --output-dir runs/curriculum-scheduling --skip-sft
    python scripts/run_curriculum.py --task my_pkg.tasks:MyTask --teacher openai:my-model@http://localhost:8000/v1 ...

Teacher specs: oracle | openai:<model>@<base_url> (key from OPENAI_API_KEY) | anthropic:<model> (ANTHROPIC_API_KEY)
| hf:<model name or path>. Prints student baseline, teacher baseline, teacher after self-improvement and student
after SFT on a held-out, answer-balanced test split with 95% CIs and the majority-class baseline; writes
<output-dir>/summary.json and summary.md. Teacher calls are cached: a re-run makes none. Every setting is a field of
``rrr.curriculum.pipeline.CurriculumRunConfig`` (its ``curriculum`` and ``sft`` sections are ``CurriculumConfig`` and
``SFTOptions``; a flag's help is the field's documentation): a recipe states them
(``--config recipes/smoke/curriculum/scheduling.yaml``), ``--set key=value`` (``--set sft.max_steps=2``) and the
flags override them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rrr.utils.config import add_config_argument, add_field_argument, add_set_argument, json_object, load_driver_config

#: ``(flag, field, argparse options)`` of every option that sets a ``CurriculumRunConfig`` field, by help group.
FLAGS = {
    "what to run": [
        ("--task", "task", {}),
        ("--task-kwargs", "task_kwargs", {"convert": json_object("--task-kwargs")}),
        ("--teacher", "teacher", {}),
        ("--student", "student", {}),
        ("--output-dir", "output_dir", {}),
    ],
    "data": [
        ("--num-train", "num_train", {}),
        ("--num-curriculum", "num_curriculum", {}),
        ("--num-test", "num_test", {}),
        ("--source", "source", {}),
        ("--test-source", "test_source", {}),
        ("--seed", "seed", {}),
    ],
    "teacher self-improvement and curriculum": [
        ("--batch-size", "batch_size", {}),
        ("--distill-every", "distill_every", {}),
        ("--teacher-max-tokens", "teacher_max_tokens", {}),
        ("--teacher-temperature", "teacher_temperature", {}),
        ("--concurrency", "concurrency", {}),
        ("--strategy-in-prompt", "curriculum.strategy_in_prompt", {"const": True}),
        ("--no-balance", "curriculum.balance", {"const": False}),
        ("--no-reflections", "curriculum.reflections", {"const": False}),
        ("--synthetic-failures", "curriculum.synthetic_failures", {}),
        ("--cache-dir", "cache_dir", {}),
    ],
    "student SFT": [
        ("--skip-sft", "sft.enabled", {"const": False}),
        ("--full-finetune", "sft.use_lora", {"const": False}),
        ("--lora-r", "sft.lora_r", {}),
        ("--lora-alpha", "sft.lora_alpha", {}),
        ("--learning-rate", "sft.learning_rate", {}),
        ("--epochs", "sft.num_train_epochs", {}),
        ("--max-steps", "sft.max_steps", {}),
        ("--sft-batch-size", "sft.per_device_train_batch_size", {}),
        ("--grad-accum", "sft.gradient_accumulation_steps", {}),
        ("--max-length", "sft.max_length", {}),
        ("--merge", "sft.merge", {"const": True}),
    ],
    "evaluation": [
        ("--no-teacher-eval", "evaluate_teacher", {"const": False}),
        ("--no-student-eval", "evaluate_student", {"const": False}),
        ("--eval-max-new-tokens", "eval_max_new_tokens", {}),
        ("--quiet", "progress", {"const": False}),
    ],
}


def build_parser() -> argparse.ArgumentParser:
    from rrr.curriculum.pipeline import CurriculumRunConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p)
    add_set_argument(p)
    for title, flags in FLAGS.items():
        group = p.add_argument_group(title)
        for flag, key, kwargs in flags:
            add_field_argument(group, flag, CurriculumRunConfig, key, **kwargs)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    from rrr.curriculum.dataset import CurriculumError
    from rrr.curriculum.pipeline import CurriculumRunConfig, summary_markdown
    from rrr.curriculum.teachers import TeacherError, make_teacher
    from rrr.models.loading import ModelLoadError
    from rrr.tasks import TaskDataError, get_task
    from rrr.utils.http import EndpointError

    try:
        config = load_driver_config(CurriculumRunConfig, parser, ns)  # a bad recipe, --set or flag: one line
        task = get_task(config.task, **config.task_kwargs)
        teacher = make_teacher(config.teacher, task=task, **config.teacher_options())
        summary = config.run(teacher)
    except (ValueError, TeacherError, CurriculumError, TaskDataError, EndpointError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(summary_markdown(summary))
    print(f"summary: {summary['output_dir']}/summary.json")
    return 0
