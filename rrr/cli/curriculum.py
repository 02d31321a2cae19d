"""``rrr curriculum`` / ``scripts/run_curriculum.py``: parse -> ``rrr.curriculum.pipeline`` -> a summary.

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
<output-dir>/summary.json and summary.md. Teacher calls are cached: a re-run makes none.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to run")
    what.add_argument("--task", required=True, help="task name or package.module:ClassName (a user's own Task)")
    what.add_argument("--task-kwargs", default="{}", help="JSON options for the task, e.g. '{\"strict\": true}'")
    what.add_argument(
        "--teacher", default="oracle", help="oracle | openai:<model>@<base_url> | anthropic:<model> | hf:<path>"
    )
    what.add_argument("--student", default=None, help="student model (hub id or local dir); omit for stages 1-2 only")
    what.add_argument("--output-dir", required=True)
    data = p.add_argument_group("data")
    data.add_argument("--num-train", type=int, default=100, help="stage-1 training problems")
    data.add_argument("--num-curriculum", type=int, default=None, help="curriculum problems (default: --num-train)")
    data.add_argument("--num-test", type=int, default=150, help="held-out test problems (before answer balancing)")
    data.add_argument("--source", default=None, help="data source for task.load (default: the task's own)")
    data.add_argument("--test-source", default=None, help="test data source (default: --source)")
    data.add_argument("--seed", type=int, default=0)
    loop = p.add_argument_group("teacher self-improvement and curriculum")
    loop.add_argument("--batch-size", type=int, default=10, help="problems per journal entry")
    loop.add_argument("--distill-every", type=int, default=5, help="distill a new strategy every N batches")
    loop.add_argument("--teacher-max-tokens", type=int, default=1024)
    loop.add_argument("--teacher-temperature", type=float, default=0.0)
    loop.add_argument("--concurrency", type=int, default=4, help="parallel requests to an HTTP teacher")
    loop.add_argument("--strategy-in-prompt", action="store_true", help="put the learned strategy in SFT prompts")
    loop.add_argument("--no-balance", action="store_true", help="do not balance curriculum solutions by answer")
    loop.add_argument("--no-reflections", action="store_true", help="skip the reflection-SFT dataset")
    loop.add_argument(
        "--synthetic-failures", type=int, default=None, help="synthetic failed attempts (default: one per problem)"
    )
    loop.add_argument("--cache-dir", default=None, help="teacher cache (default: <output-dir>/teacher_cache)")
    sft = p.add_argument_group("student SFT")
    sft.add_argument("--skip-sft", action="store_true", help="stop after the curriculum (fine-tune with train_sft.py)")
    sft.add_argument("--full-finetune", action="store_true", help="full fine-tune instead of LoRA")
    sft.add_argument("--lora-r", type=int, default=16)
    sft.add_argument("--lora-alpha", type=int, default=32)
    sft.add_argument("--learning-rate", type=float, default=2e-4)
    sft.add_argument("--epochs", type=float, default=3.0)
    sft.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when > 0")
    sft.add_argument("--sft-batch-size", type=int, default=4)
    sft.add_argument("--grad-accum", type=int, default=2)
    sft.add_argument("--max-length", type=int, default=2048)
    sft.add_argument("--merge", action="store_true", help="save the merged model instead of the LoRA adapter")
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--no-teacher-eval", action="store_true", help="do not measure the teacher on the test split")
    ev.add_argument("--no-student-eval", action="store_true", help="do not measure the student")
    ev.add_argument("--eval-max-new-tokens", type=int, default=512)
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv=None) -> int:
    ns = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    from rrr.curriculum.dataset import CurriculumConfig, CurriculumError
    from rrr.curriculum.pipeline import SFTOptions, run_knowledge_transfer, summary_markdown
    from rrr.curriculum.teachers import TeacherError, make_teacher
    from rrr.models.loading import ModelLoadError
    from rrr.tasks import TaskDataError, get_task
    from rrr.utils.http import EndpointError

    try:
        task_kwargs = json.loads(ns.task_kwargs) if ns.task_kwargs.strip() else {}
        if not isinstance(task_kwargs, dict):
            raise ValueError("--task-kwargs must be a JSON object")
        task = get_task(ns.task, **task_kwargs)
        options = {}
        if ns.teacher.strip() != "oracle":
            options = {"max_tokens": ns.teacher_max_tokens, "temperature": ns.teacher_temperature}
            if not ns.teacher.startswith("hf:"):
                options["concurrency"] = ns.concurrency
        teacher = make_teacher(ns.teacher, task=task, **options)
        summary = run_knowledge_transfer(
            ns.task,
            teacher,
            ns.student,
            ns.output_dir,
            task_kwargs=task_kwargs,
            num_train=ns.num_train,
            num_test=ns.num_test,
            num_curriculum=ns.num_curriculum,
            batch_size=ns.batch_size,
            distill_every=ns.distill_every,
            source=ns.source,
            test_source=ns.test_source,
            seed=ns.seed,
            curriculum=CurriculumConfig(
                strategy_in_prompt=ns.strategy_in_prompt,
                balance=not ns.no_balance,
                reflections=not ns.no_reflections,
                synthetic_failures=ns.synthetic_failures,
                seed=ns.seed,
                progress=not ns.quiet,
            ),
            sft=SFTOptions(
                enabled=not ns.skip_sft,
                use_lora=not ns.full_finetune,
                lora_r=ns.lora_r,
                lora_alpha=ns.lora_alpha,
                learning_rate=ns.learning_rate,
                num_train_epochs=ns.epochs,
                max_steps=ns.max_steps,
                per_device_train_batch_size=ns.sft_batch_size,
                gradient_accumulation_steps=ns.grad_accum,
                max_length=ns.max_length,
                merge=ns.merge,
            ),
            evaluate_teacher=not ns.no_teacher_eval,
            evaluate_student=not ns.no_student_eval,
            eval_max_new_tokens=ns.eval_max_new_tokens,
            cache_dir=ns.cache_dir,
            progress=not ns.quiet,
        )
    except (ValueError, TeacherError, CurriculumError, TaskDataError, EndpointError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(summary_markdown(summary))
    print(f"summary: {summary['output_dir']}/summary.json")
    return 0
