"""``rrr eval`` / ``scripts/evaluate.py``: parse -> ``rrr.evaluation.evaluate`` -> a table.

Evaluate students: first-try accuracy, accuracy after one reflection + retry, the gain, with 95% CIs.

    python scripts/evaluate.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 500 --output-dir runs/eval/base
    python scripts/evaluate.py --model runs/base-model runs/rrr-run --task countdown --n 200 --output-dir runs/eval
    python scripts/evaluate.py --model Qwen/Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --task apigen
    python scripts/evaluate.py --config recipes/smoke/eval/countdown.yaml --set n=16    # a recipe (EvalRunConfig)
    python scripts/evaluate.py --compare runs/eval/base runs/eval/rrr-run        # one side-by-side table

Several --model values are evaluated one after the other into <output-dir>/<name>, then shown side by side.
Re-running the same command resumes: finished samples are skipped. Every setting is a field of
``rrr.evaluation.evaluate.EvalRunConfig`` (documented there; a flag's help is that text): a recipe states them,
``--set key=value`` and the flags override them.
"""

from __future__ import annotations

import argparse
import os
import sys

from rrr.evaluation import EvaluationError, evaluate, format_results_table, load_results, make_generator
from rrr.evaluation.backends import BACKENDS
from rrr.evaluation.evaluate import OUTPUT_KIND, EvalRunConfig
from rrr.models.loading import ModelLoadError, weights_fingerprint
from rrr.tasks import TaskDataError, VerifierErrorRate, get_task
from rrr.utils.cli import ConfigError
from rrr.utils.config import (
    add_config_argument,
    add_field_argument,
    add_set_argument,
    json_object,
    load_driver_config,
)
from rrr.utils.http import EndpointError
from rrr.utils.outputs import check_output_dir

#: ``(flag, field)`` of every option that sets an ``EvalRunConfig`` field, by help group.
FLAGS = {
    "what to evaluate": [("--model", "model", {"nargs": "+"}), ("--adapter", "adapter", {})],
    "task": [("--task", "task", {}), ("--task-kwargs", "task_kwargs", {"convert": json_object("--task-kwargs")})],
    "data": [("--split", "split", {}), ("--n", "n", {}), ("--seed", "seed", {}), ("--source", "source", {})],
    "generation": [
        ("--backend", "backend", {"choices": BACKENDS}),
        ("--base-url", "base_url", {}),
        ("--api-key-env", "api_key_env", {}),
        ("--batch-size", "batch_size", {}),
        ("--attempt-max-tokens", "attempt_max_tokens", {}),
        ("--reflection-max-tokens", "reflection_max_tokens", {}),
        ("--retry-max-tokens", "retry_max_tokens", {}),
        ("--temperature", "temperature", {}),
        ("--reflection-temperature", "reflection_temperature", {}),
        ("--top-p", "top_p", {}),
        ("--num-samples", "num_samples", {}),
        ("--sample-temperature", "sample_temperature", {}),
        ("--max-verifier-error-rate", "max_verifier_error_rate", {}),
    ],
    "output": [("--output-dir", "output_dir", {}), ("--no-progress", "progress", {"const": False})],
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p)
    add_set_argument(p)
    p.add_argument("--compare", nargs="+", metavar="RESULT_DIR", help="only print a table of finished evaluations")
    for title, flags in FLAGS.items():
        group = p.add_argument_group(title)
        for flag, key, kwargs in flags:
            add_field_argument(group, flag, EvalRunConfig, key, **kwargs)
    return p


def _name(model: str) -> str:
    return model.rstrip("/").replace("/", "__") if not os.path.isdir(model) else os.path.basename(model.rstrip("/"))


def main(argv=None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        if ns.compare:
            print(format_results_table([load_results(d) for d in ns.compare]))
            return 0
        run = load_driver_config(EvalRunConfig, parser, ns)  # a bad recipe, --set or flag: one ConfigError line
        if not run.model:
            raise ConfigError("give --model (or `model:` in the recipe) to evaluate, or --compare to tabulate")
        config = run.eval_config()
        # every argument is checked before anything is written or loaded: the task, and each output directory
        get_task(config.task, **config.task_kwargs)
        out_dirs = [run.output_dir] * len(run.model)
        if run.output_dir and len(run.model) > 1:
            out_dirs = [os.path.join(run.output_dir, _name(model)) for model in run.model]
        for out_dir in filter(None, out_dirs):
            check_output_dir(out_dir, OUTPUT_KIND, legacy=("eval_config.json",))
        phases = config.episode_config()
        for phase in ("attempt", "reflection", "retry"):  # exactly what is sampled: nothing from a generation_config
            print(f"sampling {phase:<10} {getattr(phases, phase).effective()}", file=sys.stderr)
        results = []
        for model, out_dir in zip(run.model, out_dirs):
            generator, backend = make_generator(
                model, run.backend, run.adapter, run.base_url, run.batch_size, run.api_key_env
            )
            print(f"evaluating {model} on {config.task} with the {backend} backend", file=sys.stderr)
            name = model if not run.adapter else f"{model}+{run.adapter}"
            results.append(
                evaluate(
                    generator,
                    config,
                    out_dir,
                    name,
                    progress=run.progress,
                    meta={"backend": backend, "weights": weights_fingerprint(model, run.adapter)},
                )
            )
        print(format_results_table(results))
        return 0
    except (ModelLoadError, TaskDataError, EndpointError, EvaluationError, VerifierErrorRate, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
