"""``rrr eval`` / ``scripts/evaluate.py``: parse -> ``rrr.evaluation.evaluate`` -> a table.

Evaluate students: first-try accuracy, accuracy after one reflection + retry, the gain, with 95% CIs.

    python scripts/evaluate.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 500 --output-dir runs/eval/base
    python scripts/evaluate.py --model runs/base-model runs/rrr-run --task countdown --n 200 --output-dir runs/eval
    python scripts/evaluate.py --model Qwen/Qwen2.5-7B-Instruct --base-url http://localhost:8000/v1 --task apigen
    python scripts/evaluate.py --compare runs/eval/base runs/eval/rrr-run        # one side-by-side table

Several --model values are evaluated one after the other into <output-dir>/<name>, then shown side by side.
Re-running the same command resumes: finished samples are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rrr.evaluation import EvalConfig, EvaluationError, evaluate, format_results_table, load_results, make_generator
from rrr.evaluation.backends import BACKENDS
from rrr.evaluation.evaluate import OUTPUT_KIND
from rrr.models.loading import ModelLoadError, weights_fingerprint
from rrr.tasks import TaskDataError, VerifierErrorRate, get_task
from rrr.utils.http import EndpointError
from rrr.utils.outputs import check_output_dir


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--model", nargs="+", help="hub id(s), local dir(s) (a LoRA adapter dir works), or served names")
    what.add_argument("--adapter", help="LoRA adapter to put on a single --model")
    what.add_argument("--compare", nargs="+", metavar="RESULT_DIR", help="only print a table of finished evaluations")
    what.add_argument("--task", default="countdown", help="task name or package.module:Class")
    what.add_argument("--task-kwargs", default="{}", help="JSON options for the task, e.g. '{\"strict\": true}'")
    data = p.add_argument_group("data")
    data.add_argument("--split", default="test")
    data.add_argument("--n", type=int, default=None, help="number of examples (default: the whole split)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--source", default=None, help="hub id, local file, or 'generated' (default: the task's)")
    gen = p.add_argument_group("generation")
    gen.add_argument("--backend", choices=BACKENDS, default="auto")
    gen.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vllm serve)")
    gen.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    gen.add_argument("--batch-size", type=int, default=64)
    gen.add_argument("--attempt-max-tokens", type=int, default=512)
    gen.add_argument("--reflection-max-tokens", type=int, default=256)
    gen.add_argument("--retry-max-tokens", type=int, default=512)
    gen.add_argument("--temperature", type=float, default=0.0, help="attempts and retries (0 = greedy)")
    gen.add_argument("--reflection-temperature", type=float, default=0.0)
    gen.add_argument("--num-samples", type=int, default=0, help="extra sampled first attempts per example (pass@k)")
    gen.add_argument("--sample-temperature", type=float, default=0.7)
    gen.add_argument(
        "--max-verifier-error-rate",
        type=float,
        default=0.05,
        help="stop once more than this fraction of verifications hit a verifier error (1.0 = never stop)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--output-dir", default=None, help="where results.json, samples.jsonl, results.md go")
    out.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.model and not args.compare:
        p.error("give --model (to evaluate) or --compare (to tabulate finished evaluations)")
    if args.adapter and args.model and len(args.model) > 1:
        p.error("--adapter goes with a single --model")
    return args


def _name(model: str) -> str:
    return model.rstrip("/").replace("/", "__") if not os.path.isdir(model) else os.path.basename(model.rstrip("/"))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            print(format_results_table([load_results(d) for d in args.compare]))
            return 0
        try:
            task_kwargs = json.loads(args.task_kwargs)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"--task-kwargs is not JSON ({exc.msg}): give an object, e.g. '{{\"strict\": true}}'"
            ) from None
        config = EvalConfig(
            task=args.task,
            task_kwargs=task_kwargs,
            split=args.split,
            n=args.n,
            seed=args.seed,
            source=args.source,
            attempt_max_tokens=args.attempt_max_tokens,
            reflection_max_tokens=args.reflection_max_tokens,
            retry_max_tokens=args.retry_max_tokens,
            temperature=args.temperature,
            reflection_temperature=args.reflection_temperature,
            num_samples=args.num_samples,
            sample_temperature=args.sample_temperature,
            batch_size=args.batch_size,
            max_verifier_error_rate=args.max_verifier_error_rate,
        )
        # every argument is checked before anything is written or loaded: the task, and each output directory
        get_task(config.task, **config.task_kwargs)
        out_dirs = [args.output_dir] * len(args.model)
        if args.output_dir and len(args.model) > 1:
            out_dirs = [os.path.join(args.output_dir, _name(model)) for model in args.model]
        for out_dir in filter(None, out_dirs):
            check_output_dir(out_dir, OUTPUT_KIND, legacy=("eval_config.json",))
        phases = config.episode_config()
        for phase in ("attempt", "reflection", "retry"):  # exactly what is sampled: nothing from a generation_config
            print(f"sampling {phase:<10} {getattr(phases, phase).effective()}", file=sys.stderr)
        results = []
        for model, out_dir in zip(args.model, out_dirs):
            generator, backend = make_generator(
                model, args.backend, args.adapter, args.base_url, args.batch_size, args.api_key_env
            )
            print(f"evaluating {model} on {args.task} with the {backend} backend", file=sys.stderr)
            name = model if not args.adapter else f"{model}+{args.adapter}"
            results.append(
                evaluate(
                    generator,
                    config,
                    out_dir,
                    name,
                    progress=not args.no_progress,
                    meta={"backend": backend, "weights": weights_fingerprint(model, args.adapter)},
                )
            )
        print(format_results_table(results))
        return 0
    except (ModelLoadError, TaskDataError, EndpointError, EvaluationError, VerifierErrorRate, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
