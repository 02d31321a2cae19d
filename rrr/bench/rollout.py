"""Benchmark what RRR's three-phase rollout costs next to plain GRPO generation, on the tiny offline model.

An RRR step samples three phases per task: the first attempt, G reflections on the failed attempt, and one greedy
retry per reflection. The phases cannot share one ``generate`` call: a reflection is only requested once the
attempt's verdict is known (and conditions on the attempt's text), and a retry conditions on its reflection. So a
step makes three batched calls over growing contexts where plain GRPO makes one. This script measures what that
split costs, on the Countdown task with generated data:

1. **Rollout throughput** — generated tokens per second of one RRR rollout (``run_episodes`` with ``HFGenerator``:
   ``tasks`` first attempts at T=1, G reflections per failed attempt at T=1, one greedy retry per reflection; every
   token of all three phases counted) versus one plain batched ``hf_generate_ids`` call over the GRPO batch
   (``tasks x G`` rows: each attempt prompt G times, T=1) with ``max_new_tokens`` = RRR tokens / rows. Same model,
   same generation batch size (``--gen-batch-size``). By default both sides ignore end-of-turn (every row runs to
   its budget), so both generate exactly the same number of tokens and the ratio isolates the structure: three
   calls instead of one, a first phase with only ``tasks`` rows, and longer contexts in phases 2 and 3 (the failed
   attempt, then also the reflection, sit in the prompt). ``--respect-eos`` lets RRR stop at end-of-turn as in
   training (the plain call still generates as many tokens as RRR did, rounded up to whole rows). One untimed
   warm-up pair comes first; the rate is total tokens / total seconds over ``--repeats`` timed pairs.
2. **Training step** — wall time of one ``RRRGRPOTrainer`` step (``build_trainer``, online first attempts) versus
   one plain ``trl.GRPOTrainer`` step (the Countdown verifier as its reward) with the same model size, batch size
   (``tasks x G``), ``num_generations`` (G) and optimizer settings. RRR runs first, exactly as in training (phases
   stop at end-of-turn); its generated tokens per step are counted, and the plain step is then made to generate the
   same number (``max_completion_length`` = ``min_new_tokens`` = RRR tokens per step / rows). Both run ``--steps``
   steps on the CPU (``use_cpu``, fp32, no gradient checkpointing); the first is warm-up and skipped, the others are
   timed between consecutive ``on_step_end`` callbacks (generation, reward, loss, backward, optimizer step). The
   ratio ``RRR / plain`` of mean s/step is the per-step cost of three dependent phases at an equal token count,
   including RRR's longer training sequences (its GRPO prompt holds the task, the failed attempt and the reflection
   request); the median is reported too because a shared machine produces outliers.

A random tiny model fails every Countdown attempt, so every RRR task is reflected upon (G reflections + G retries
per task, nothing skipped): the heavy case, and the realistic one early in training. A policy that solves some
tasks at the first attempt skips their reflections and retries and costs less. With ``--respect-eos`` (and in the
training step) rows of a batch that stop early keep the batch's decode loop running until its longest row ends,
which costs time without adding tokens; the plain side never stops early, so the RRR / plain ratio there is a
conservative (plain-favouring) figure.

Threads: ``--threads`` (default 1) sets torch's intra-op threads for the run. Tiny models gain nothing from more,
and on cores shared with other jobs multi-threaded kernels oversubscribe them and run several times slower and far
noisier; pass ``--threads 0`` for torch's default (one per core) on a dedicated machine.

Tokens are counted where they are produced: the rollout comparison sums ``Episode.phase_tokens``, the RRR training
step reads the ``rrr/generated_tokens`` metric the trainer logs every step (the same sum over the step's episodes),
and plain GRPO's come from TRL's logged ``completions/mean_length``. Nothing is patched.

    rrr bench rollout                                        # hidden 128, 4 layers, 5 steps: ~40 s on 2 CPUs
    rrr bench rollout --model runs/tiny --json runs/bench_rollout.json
    python scripts/bench_rollout.py ...                      # the same
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from rrr.tasks import DEFAULT_TASK
from rrr.utils.cli import ConfigError

#: The benchmark runs on the default task with generated data: a random tiny model fails every attempt there.
TASK = DEFAULT_TASK


@dataclass(frozen=True)
class RolloutBench:
    """The benchmark's settings (each is a flag of ``rrr bench rollout``; see the module docstring)."""

    #: local model directory (default: a tiny model built in memory)
    model: str | None = None
    #: tiny model hidden size
    hidden_size: int = 128
    #: tiny model layers
    num_layers: int = 4
    #: tasks (GRPO groups) per batch
    tasks: int = 2
    #: G: reflections per failed task = num_generations
    group: int = 4
    #: first-attempt token budget
    attempt_tokens: int = 32
    #: reflection token budget
    reflection_tokens: int = 32
    #: retry token budget
    retry_tokens: int = 32
    #: rollout comparison: let RRR's phases stop at end-of-turn
    respect_eos: bool = False
    #: rows per generate chunk (both sides)
    gen_batch_size: int = 64
    #: timed rollouts after one warm-up rollout
    repeats: int = 2
    #: training steps per trainer (the first is warm-up)
    steps: int = 5
    #: torch intra-op threads during the run (0: torch's default, one per core); restored afterwards
    threads: int = 1
    #: seed of the tiny model, the problems and sampling
    seed: int = 0

    def __post_init__(self):
        positive = (
            "tasks",
            "group",
            "attempt_tokens",
            "reflection_tokens",
            "retry_tokens",
            "gen_batch_size",
            "repeats",
        )
        if any(getattr(self, name) < 1 for name in positive) or self.steps < 2:
            raise ConfigError("sizes, budgets and --repeats must be >= 1, and --steps >= 2 (the first step is warm-up)")
        if self.model and not os.path.isdir(self.model):
            raise ConfigError(f"--model {self.model!r} is not a local directory")
        if self.threads < 0:
            raise ConfigError("--threads must be >= 0")


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------
def load_model(args):
    """``(model, tokenizer)``: a fresh tiny model (``--hidden-size``/``--num-layers``) or ``--model`` from disk."""
    from rrr.models import build_tiny_model, build_tiny_tokenizer, load_tokenizer

    if args.model:
        import torch
        from transformers import AutoModelForCausalLM

        tokenizer = load_tokenizer(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    else:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.num_layers, seed=args.seed)
    return model, tokenizer


def model_description(args, model) -> str:
    params = sum(p.numel() for p in model.parameters())
    where = args.model or f"tiny (hidden {args.hidden_size}, {args.num_layers} layers)"
    return f"{where}, {params / 1e6:.2f}M parameters"


# ----------------------------------------------------------------------------------------------------------------
# 1. Rollout throughput
# ----------------------------------------------------------------------------------------------------------------
def episode_config(args):
    from rrr.episode import EpisodeConfig
    from rrr.generation import SamplingParams

    return EpisodeConfig(
        attempt=SamplingParams(args.attempt_tokens, temperature=1.0),
        reflection=SamplingParams(args.reflection_tokens, temperature=1.0),
        retry=SamplingParams(args.retry_tokens, temperature=0.0),
        reflections_per_failure=args.group,
    )


def _never_stop(model) -> set[int]:
    """An end-of-turn id that no model output can be (the vocabulary size): rows run to their token budget."""
    return {int(model.get_output_embeddings().weight.shape[0])}


def _rrr_rollout(task, generator, examples, config) -> dict[str, Any]:
    from rrr.episode import run_episodes

    start = time.perf_counter()
    episodes = run_episodes(task, generator, examples, config)
    seconds = time.perf_counter() - start
    phase_tokens = {p: sum(ep.phase_tokens[p] for ep in episodes) for p in ("attempt", "reflection", "retry")}
    return {
        "seconds": seconds,
        "tokens": sum(phase_tokens.values()),
        "phase_tokens": phase_tokens,
        "reflected_tasks": sum(not ep.solved_without_reflection for ep in episodes),
    }


def _plain_generate(model, tokenizer, prompts, max_new_tokens: int, batch_size: int) -> dict[str, Any]:
    from rrr.generation import SamplingParams
    from rrr.generation.hf import hf_generate_ids

    params = SamplingParams(max_new_tokens, temperature=1.0)
    start = time.perf_counter()
    outputs = hf_generate_ids(model, tokenizer, prompts, params, batch_size, eos_ids=_never_stop(model))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": sum(len(ids) for ids, _ in outputs)}


def measure_rollout(args) -> dict[str, Any]:
    """RRR rollout vs. one plain batched generation of about the same number of tokens (warm-up, then repeats)."""
    import torch

    from rrr.generation import HFGenerator
    from rrr.generation.hf import render_chat
    from rrr.tasks import get_task

    task = get_task(TASK)
    model, tokenizer = load_model(args)
    model.eval()
    examples = task.generate(args.tasks * (args.repeats + 1), seed=args.seed, split="train")
    generator = HFGenerator(model, tokenizer, batch_size=args.gen_batch_size)
    if not args.respect_eos:
        generator.eos_ids = _never_stop(model)
    config = episode_config(args)
    rows = args.tasks * args.group

    def batch(i: int) -> list[dict]:
        return examples[i * args.tasks : (i + 1) * args.tasks]

    def plain_prompts(i: int) -> list[list[int]]:
        return [render_chat(tokenizer, task.attempt_messages(ex)) for ex in batch(i) for _ in range(args.group)]

    torch.manual_seed(args.seed)
    warm = _rrr_rollout(task, generator, batch(0), config)  # warm-up: first calls allocate and dispatch slowly
    _plain_generate(model, tokenizer, plain_prompts(0), max(1, warm["tokens"] // rows), args.gen_batch_size)
    rrr_runs, plain_runs = [], []
    for i in range(1, args.repeats + 1):
        torch.manual_seed(args.seed + i)
        rrr = _rrr_rollout(task, generator, batch(i), config)
        budget = max(1, math.ceil(rrr["tokens"] / rows))
        torch.manual_seed(args.seed + i)
        plain = _plain_generate(model, tokenizer, plain_prompts(i), budget, args.gen_batch_size)
        plain["max_new_tokens"] = budget
        rrr_runs.append(rrr)
        plain_runs.append(plain)

    def rate(runs):
        return sum(r["tokens"] for r in runs) / sum(r["seconds"] for r in runs)

    rrr_rate, plain_rate = rate(rrr_runs), rate(plain_runs)
    return {
        "model": model_description(args, model),
        "rows_plain": rows,
        "rows_rrr": {"attempt": args.tasks, "reflection": rows, "retry": rows},
        "repeats": args.repeats,
        "respect_eos": args.respect_eos,
        "rrr": {
            "tokens_per_s": rrr_rate,
            "tokens_per_rollout": statistics.mean(r["tokens"] for r in rrr_runs),
            "seconds_per_rollout": statistics.mean(r["seconds"] for r in rrr_runs),
            "phase_tokens_per_rollout": {
                phase: statistics.mean(r["phase_tokens"][phase] for r in rrr_runs)
                for phase in ("attempt", "reflection", "retry")
            },
            "reflected_tasks_frac": sum(r["reflected_tasks"] for r in rrr_runs) / (args.tasks * args.repeats),
            "generate_calls": 3,
        },
        "plain": {
            "tokens_per_s": plain_rate,
            "tokens_per_rollout": statistics.mean(r["tokens"] for r in plain_runs),
            "seconds_per_rollout": statistics.mean(r["seconds"] for r in plain_runs),
            "max_new_tokens": [r["max_new_tokens"] for r in plain_runs],
            "generate_calls": 1,
        },
        "ratio_tokens_per_s": rrr_rate / plain_rate,
    }


# ----------------------------------------------------------------------------------------------------------------
# 2. Training step
# ----------------------------------------------------------------------------------------------------------------
def _common_args(args, output_dir: str) -> dict[str, Any]:
    from rrr.training.config import QUIET_CPU_RUN

    return dict(
        output_dir=output_dir,
        num_generations=args.group,
        per_device_train_batch_size=args.tasks * args.group,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        temperature=1.0,
        **QUIET_CPU_RUN,
        seed=args.seed,
    )


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall-clock time at every optimizer step's end (and at train begin)."""

        def __init__(self) -> None:
            self.marks: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = [time.perf_counter()]

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

    return StepTimer()


def _run_timed(trainer) -> dict[str, Any]:
    """Train quietly (no per-step log printing) and time every step; the first is warm-up."""
    from transformers.trainer_callback import PrinterCallback

    timer = _step_timer()
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(timer)
    trainer.train()
    steps = [b - a for a, b in zip(timer.marks, timer.marks[1:])]
    timed = steps[1:]
    return {
        "step_seconds": steps,
        "s_per_step": statistics.mean(timed) if timed else float("nan"),
        "s_per_step_median": statistics.median(timed) if timed else float("nan"),
        "timed_steps": len(timed),
    }


def _logged(trainer, metric: str) -> list[float]:
    """Per-step values of a logged metric, warm-up step dropped."""
    values = [h[metric] for h in trainer.state.log_history if metric in h]
    return values[1:] or values


def measure_rrr_step(args, workdir: str) -> dict[str, Any]:
    from trl import ModelConfig

    from rrr.training import RRRConfig, build_trainer

    config = RRRConfig(
        **_common_args(args, os.path.join(workdir, "rrr")),
        task=TASK,
        dataset_source="generated",
        dataset_size=max(64, args.tasks * args.steps),
        dataset_seed=args.seed,
        first_attempt_source="online",
        attempt_max_tokens=args.attempt_tokens,
        attempt_temperature=1.0,
        max_completion_length=args.reflection_tokens,
        retry_max_tokens=args.retry_tokens,
        retry_temperature=0.0,
        # the random model fails every retry: "keep" trains on every reflection instead of masking all groups out
        no_signal_groups="keep",
        log_episodes=False,
    )
    model, tokenizer = load_model(args)
    trainer, _ = build_trainer(config, ModelConfig(), model=model, tokenizer=tokenizer)
    stats = _run_timed(trainer)
    per_step = [h["rrr/generated_tokens"] for h in trainer.state.log_history if "rrr/generated_tokens" in h]
    if len(per_step) != args.steps:  # one rollout per step, logged every step (logging_steps=1)
        raise RuntimeError(f"expected {args.steps} logged rrr/generated_tokens values, got {len(per_step)}")
    stats["tokens_per_step"] = statistics.mean(per_step[1:])
    stats["rollout_s_per_step"] = statistics.mean(_logged(trainer, "rrr/rollout_seconds"))
    stats["generate_calls_per_step"] = 3
    return stats


def measure_plain_step(args, workdir: str, max_completion_length: int) -> dict[str, Any]:
    from trl import GRPOConfig, GRPOTrainer

    from rrr.tasks import get_task

    task = get_task(TASK)
    dataset = task.load(split="train", n=max(64, args.tasks * args.steps), seed=args.seed, source="generated")
    dataset = dataset.map(lambda ex: {"prompt": task.attempt_messages(dict(ex))})

    def verifier_reward(completions, **columns) -> list[float]:
        """The task's own verifier as plain GRPO's reward (TRL passes every dataset column as a list)."""
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        rows = [{name: columns[name][i] for name in task.required_columns} for i in range(len(texts))]
        return [float(task.verify(row, text).passed) for row, text in zip(rows, texts)]

    config = GRPOConfig(
        **_common_args(args, os.path.join(workdir, "plain")),
        max_completion_length=max_completion_length,
        generation_kwargs={"min_new_tokens": max_completion_length},  # every row generates exactly the budget
    )
    model, tokenizer = load_model(args)
    trainer = GRPOTrainer(
        model=model, reward_funcs=[verifier_reward], args=config, train_dataset=dataset, processing_class=tokenizer
    )
    stats = _run_timed(trainer)
    stats["tokens_per_step"] = args.tasks * args.group * statistics.mean(_logged(trainer, "completions/mean_length"))
    stats["max_completion_length"] = max_completion_length
    stats["generate_calls_per_step"] = 1
    return stats


def measure_training(args) -> dict[str, Any]:
    """One RRR step vs. one plain GRPO step generating about as many tokens (first step of each skipped)."""
    import datasets

    datasets.disable_progress_bars()
    rows = args.tasks * args.group
    with tempfile.TemporaryDirectory(prefix="bench_rollout.") as workdir:
        rrr = measure_rrr_step(args, workdir)
        # what RRR actually generated per step (its T=1 phases may stop early), spread over the plain step's rows
        plain = measure_plain_step(args, workdir, max(1, round(rrr["tokens_per_step"] / rows)))
    return {
        "rrr": rrr,
        "plain": plain,
        "ratio_s_per_step": rrr["s_per_step"] / plain["s_per_step"],
        "ratio_s_per_step_median": rrr["s_per_step_median"] / plain["s_per_step_median"],
    }


# ----------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import torch

    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def format_table(rollout: dict[str, Any], training: dict[str, Any], host: dict[str, Any]) -> str:
    """The two comparisons side by side, then the machine."""
    r, t = rollout, training
    eos = "RRR stops at end-of-turn" if r["respect_eos"] else "end-of-turn ignored"
    rows = [
        (
            f"rollout throughput, generated tokens/s ({eos})",
            f"{r['rrr']['tokens_per_s']:,.0f}",
            f"{r['plain']['tokens_per_s']:,.0f}",
            f"{r['ratio_tokens_per_s']:.2f}",
        ),
        (
            "tokens per rollout",
            f"{r['rrr']['tokens_per_rollout']:,.0f}",
            f"{r['plain']['tokens_per_rollout']:,.0f}",
            f"{r['rrr']['tokens_per_rollout'] / r['plain']['tokens_per_rollout']:.2f}",
        ),
        (
            f"training step, s/step (mean of {t['rrr']['timed_steps']})",
            f"{t['rrr']['s_per_step']:.3f}",
            f"{t['plain']['s_per_step']:.3f}",
            f"{t['ratio_s_per_step']:.2f}",
        ),
        (
            "training step, s/step (median)",
            f"{t['rrr']['s_per_step_median']:.3f}",
            f"{t['plain']['s_per_step_median']:.3f}",
            f"{t['ratio_s_per_step_median']:.2f}",
        ),
        (
            "of which the RRR rollout, s/step (mean)",
            f"{t['rrr']['rollout_s_per_step']:.3f}",
            "",
            "",
        ),
        (
            "tokens generated per training step",
            f"{t['rrr']['tokens_per_step']:,.0f}",
            f"{t['plain']['tokens_per_step']:,.0f}",
            f"{t['rrr']['tokens_per_step'] / t['plain']['tokens_per_step']:.2f}",
        ),
        ("generate calls per rollout / step", "3", "1", ""),
    ]
    lines = ["| measurement | RRR (3 phases) | plain GRPO (1 call) | RRR / plain |", "|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines += [
        "",
        "| machine | |",
        "|---|---|",
        f"| processor | {host['processor']} |",
        f"| os.cpu_count() | {host['cpu_count']} |",
        f"| torch | {host['torch']} ({host['torch_threads']} threads) |",
        f"| model | {r['model']} |",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[RolloutBench, str | None]:
    """``(settings, json_path)`` from the command line; every setting is a flag named after its field."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    docs = _field_docs()
    for f in dataclasses.fields(RolloutBench):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=docs.get(f.name))
        elif f.name == "model":
            parser.add_argument(flag, metavar="PATH", help=docs.get(f.name))
        else:
            parser.add_argument(flag, type=int, default=f.default, help=docs.get(f.name))
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file (atomically)")
    ns = vars(parser.parse_args(argv))
    path = ns.pop("json")
    return RolloutBench(**ns), path


def _field_docs() -> dict[str, str]:
    """Each field's ``#:`` comment in :class:`RolloutBench`: the flag's help, written once."""
    import inspect

    docs, pending = {}, []
    for line in inspect.getsource(RolloutBench).splitlines():
        line = line.strip()
        if line.startswith("#:"):
            pending.append(line[2:].strip())
        elif ":" in line and pending:
            docs[line.split(":", 1)[0].strip()] = " ".join(pending)
            pending = []
    return docs


def main(argv: list[str] | None = None) -> int:
    """``rrr bench rollout``: parse, measure both comparisons, print the table (and ``--json``)."""
    settings, json_path = parse_args(argv)
    import torch

    saved_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return report(settings, json_path)
    finally:
        torch.set_num_threads(saved_threads)


def report(args: RolloutBench, json_path: str | None = None) -> int:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    host = machine()
    print(
        f"rollout benchmark on {TASK} (generated data): {args.tasks} tasks x G={args.group} per batch, budgets "
        f"attempt {args.attempt_tokens} / reflection {args.reflection_tokens} / retry {args.retry_tokens} tokens, "
        f"{args.steps} training steps per trainer (first = warm-up)",
        flush=True,
    )
    start = time.perf_counter()
    rollout = measure_rollout(args)
    print(f"rollouts done ({time.perf_counter() - start:.1f} s); training steps...", flush=True)
    training = measure_training(args)
    print(f"\n{format_table(rollout, training, host)}\n")
    print(
        f"RRR reflected on {rollout['rrr']['reflected_tasks_frac']:.0%} of its tasks (a random model fails every "
        f"{TASK} attempt, so each task costs 1 attempt + G reflections + G retries: the heavy case). Plain rollout: "
        f"{rollout['rows_plain']} rows, max_new_tokens {rollout['plain']['max_new_tokens']}; plain step: "
        f"max_completion_length = min_new_tokens = {training['plain']['max_completion_length']}. "
        "tokens/s ratio < 1 and s/step ratio > 1 are the cost of three dependent generate calls.",
    )
    print(f"total {time.perf_counter() - start:.1f} s", flush=True)
    if json_path:
        from rrr.utils.io import atomic_write_json

        atomic_write_json(
            json_path,
            {
                "task": TASK,
                "settings": dataclasses.asdict(args),
                "machine": host,
                "rollout": rollout,
                "training_step": training,
            },
        )
        print(f"wrote {json_path}")
    return 0
