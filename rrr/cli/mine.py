r"""``rrr mine`` / ``scripts/mine_failures.py``: parse -> ``rrr.evaluation.mine_failures`` -> a dataset dir.

Mine the student's failures (the paper's offline failure set) for `train_grpo.py --first_attempt_source column`.

    python scripts/mine_failures.py --model Qwen/Qwen2.5-1.5B-Instruct --task countdown --n 20000 --k 64 \
        --output-dir data/countdown-failures [--push-to-hub me/countdown-failures]

Samples k first attempts per task, keeps the tasks failed under --rule (any: failed at least once; majority;
all), and saves them with the failed attempts. Prints the failure rate per difficulty.

Re-running the same command resumes an interrupted run (finished tasks are not sampled again) or rebuilds a
finished one; a --output-dir that holds anything else is refused (--overwrite replaces it). Every setting is a field
of ``rrr.evaluation.mining.MiningRunConfig`` (documented there; a flag's help is that text): a recipe states them
(``--config recipes/smoke/mine/scheduling.yaml``), ``--set key=value`` and the flags override them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from rrr.evaluation import make_generator, mine_failures
from rrr.evaluation.backends import BACKENDS
from rrr.evaluation.mining import RULES, MiningRunConfig
from rrr.generation import SamplingParams
from rrr.models.loading import ModelLoadError, weights_fingerprint
from rrr.tasks import TaskDataError, get_task
from rrr.utils.config import add_config_argument, add_field_argument, add_set_argument, json_object, load_driver_config
from rrr.utils.http import EndpointError
from rrr.utils.io import atomic_directory, atomic_write_json
from rrr.utils.outputs import check_output_dir, clean_stale_temps, output_lock, read_marker, write_marker

OUTPUT_KIND = "mine_failures"
#: The samples log (hidden, so an unfinished output directory is never loaded as a dataset of it).
SAMPLES = ".mining_samples.jsonl"


#: ``(flag, field)`` of every option that sets a ``MiningRunConfig`` field.
FLAGS = [
    ("--model", "model", {}),
    ("--adapter", "adapter", {}),
    ("--task", "task", {}),
    ("--task-kwargs", "task_kwargs", {"convert": json_object("--task-kwargs")}),
    ("--split", "split", {}),
    ("--n", "n", {}),
    ("--seed", "seed", {}),
    ("--source", "source", {}),
    ("--k", "k", {}),
    ("--rule", "rule", {"choices": RULES}),
    ("--temperature", "temperature", {}),
    ("--top-p", "top_p", {}),
    ("--max-tokens", "max_tokens", {}),
    ("--batch-size", "batch_size", {}),
    ("--max-verifier-error-rate", "max_verifier_error_rate", {}),
    ("--backend", "backend", {"choices": BACKENDS}),
    ("--base-url", "base_url", {}),
    ("--output-dir", "output_dir", {}),
    ("--overwrite", "overwrite", {"const": True}),
    ("--push-to-hub", "push_to_hub", {"metavar": "REPO_ID"}),
    ("--no-progress", "progress", {"const": False}),
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p)
    add_set_argument(p)
    for flag, key, kwargs in FLAGS:
        add_field_argument(p, flag, MiningRunConfig, key, **kwargs)
    return p


#: What a resumed run must share with the run that wrote the samples (``--rule`` is applied at the end, and
#: ``--batch-size`` only changes how attempts are batched, so both may change between runs).
SPEC_KEYS = ("task", "task_kwargs", "split", "n", "seed", "source", "k", "temperature", "max_tokens")


def main(argv=None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        # every argument is checked before anything is written or loaded: a bad recipe, --set or flag is one line
        args = load_driver_config(MiningRunConfig, parser, ns)
        task_kwargs = args.task_kwargs
        task = get_task(args.task, **task_kwargs)
        config = args.mining_config()
        sampling = SamplingParams(config.max_tokens, config.temperature, config.top_p, seed=config.seed)
        options = {"legacy": ("mining_report.json",), "overwrite": args.overwrite, "overwrite_flag": "--overwrite"}
        check_output_dir(args.output_dir, OUTPUT_KIND, **options)
        with output_lock(args.output_dir):
            report = _mine(args, task, task_kwargs, config, sampling, options)
        if report is None:
            print("error: the student failed no task under this rule; nothing to train on", file=sys.stderr)
            return 1
        if args.push_to_hub:
            import datasets

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


def _mine(args, task, task_kwargs, config, sampling, options) -> dict | None:
    """Mine into ``args.output_dir`` holding its lock: resume from its samples, then swap the dataset in.

    While mining, the directory holds only the marker (with the settings) and the samples log, both hidden, so an
    unfinished mining is never loaded as a dataset; the finished one is built beside it and swapped in whole.
    """
    import datasets

    out = os.path.abspath(args.output_dir)
    state = check_output_dir(out, OUTPUT_KIND, **options)  # again, now that no one else can write it
    clean_stale_temps(out)
    weights = weights_fingerprint(args.model, args.adapter) if not args.base_url else None
    spec = {"model": args.model, "adapter": args.adapter, "weights": weights}
    spec |= {key: getattr(args, key) for key in SPEC_KEYS}
    spec = json.loads(json.dumps(spec))
    samples = os.path.join(out, SAMPLES)
    previous = (read_marker(out) or {}).get("spec") if state == "ours" else None
    if args.overwrite and state in ("ours", "overwrite"):
        shutil.rmtree(out)  # asked for: start over (whatever it held passed check_output_dir's guards)
    elif previous is not None and previous != spec and os.path.exists(samples):
        changed = sorted(k for k in spec if previous.get(k) != spec[k])
        raise ValueError(
            f"{out} holds a mining run with other settings ({', '.join(changed)} differ), which this one would "
            "mix with; use another --output-dir, or pass --overwrite to start over"
        )
    os.makedirs(out, exist_ok=True)
    write_marker(out, OUTPUT_KIND, spec=spec, complete=False)
    if os.path.exists(samples):
        print(f"resuming from {samples}", file=sys.stderr)

    print(f"sampling attempts {sampling.effective()}", file=sys.stderr)
    examples = [dict(ex) for ex in task.load(split=args.split, n=args.n, seed=args.seed, source=args.source)]
    generator, backend = make_generator(args.model, args.backend, args.adapter, args.base_url, args.batch_size)
    kept, report = mine_failures(task, generator, examples, config, progress=args.progress, samples_path=samples)
    if not kept:
        return None
    with atomic_directory(out, OUTPUT_KIND, info={"spec": spec, "complete": True}, **options) as tmp:
        datasets.Dataset.from_list(kept).save_to_disk(tmp)
        atomic_write_json(os.path.join(tmp, "mining_report.json"), {**report, "model": args.model, "backend": backend})
        shutil.copyfile(samples, os.path.join(tmp, SAMPLES))  # a re-run of the same command rebuilds from it
    return report
