"""Mine the student's failures (the paper's offline failure set) for `train_grpo.py --first_attempt_source column`.

    python scripts/mine_failures.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 20000 --k 64 \
        --output-dir data/countdown-failures [--push-to-hub me/countdown-failures]

Samples k first attempts per task, keeps the tasks failed under --rule (any: failed at least once; majority;
all), and saves them with the failed attempts. Prints the failure rate per difficulty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rrr.evaluation import MiningConfig, make_generator, mine_failures
from rrr.evaluation.backends import BACKENDS
from rrr.evaluation.mining import RULES
from rrr.generation import SamplingParams
from rrr.models.loading import ModelLoadError
from rrr.tasks import TaskDataError, get_task
from rrr.utils.http import EndpointError
from rrr.utils.io import atomic_directory, atomic_write_json


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--adapter")
    p.add_argument("--task", default="countdown")
    p.add_argument("--task-kwargs", default="{}")
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", default=None)
    p.add_argument("--k", type=int, default=8, help="attempts per task (the paper: up to 64)")
    p.add_argument("--rule", choices=RULES, default="any")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--base-url")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the dataset to the hub")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import datasets

        task = get_task(args.task, **json.loads(args.task_kwargs))
        config = MiningConfig(args.k, args.rule, args.temperature, 1.0, args.max_tokens, args.batch_size, args.seed)
        sampling = SamplingParams(config.max_tokens, config.temperature, config.top_p, seed=config.seed)
        print(f"sampling attempts {sampling.effective()}", file=sys.stderr)
        examples = [dict(ex) for ex in task.load(split=args.split, n=args.n, seed=args.seed, source=args.source)]
        generator, backend = make_generator(args.model, args.backend, args.adapter, args.base_url, args.batch_size)
        kept, report = mine_failures(task, generator, examples, config, progress=not args.no_progress)
        if not kept:
            print("error: the student failed no task under this rule; nothing to train on", file=sys.stderr)
            return 1
        with atomic_directory(args.output_dir, "mine_failures", legacy=("mining_report.json",)) as tmp:
            datasets.Dataset.from_list(kept).save_to_disk(tmp)
            atomic_write_json(
                os.path.join(tmp, "mining_report.json"), {**report, "model": args.model, "backend": backend}
            )
        if args.push_to_hub:
            datasets.load_from_disk(args.output_dir).push_to_hub(args.push_to_hub)
    except (ModelLoadError, TaskDataError, EndpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"kept {report['kept']} / {report['n']} tasks (failure rate {report['failure_rate']:.1%}) -> {args.output_dir}"
    )
    for level, s in report["per_difficulty"].items():
        print(f"  {level:>8}: {s['kept']:>6} / {s['n']:<6} failure rate {s['failure_rate']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
