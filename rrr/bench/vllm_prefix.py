"""What vLLM's automatic prefix caching saves in RRR's reflection and retry phases (vLLM CPU, offline engine).

An RRR rollout makes one call per phase: the first attempts, then G reflections per failed task (G identical
prompts: task, failed attempt, reflection request), then one retry per reflection (its reflection prompt plus the
reflection and the retry request). With prefix caching a shared prefix is prefilled once per call and its KV blocks
are mapped into every row; the retry phase also reuses the blocks the reflection phase left. This measures it:

* two ``VLLMGenerator`` engines in one process on the same model, prefix caching on (rrr's default) and off;
* each timed round resets the cache (TRL does at every weight sync, so a training step starts cold) and runs
  ``run_episodes`` on the same Countdown tasks with the same seeds, timing each phase's ``generate`` call; the
  engines alternate which goes first; one untimed warm-up round each;
* the table gives mean seconds per phase on each engine, the ratio off / on (> 1: caching is faster) and the
  share of prompt tokens the cached engine served from its cache. ``same outputs`` says whether both engines
  produced the same texts in every phase (then they did the same work, and the times compare like for like).

A random model fails every Countdown task, so every task is reflected upon (the heavy case). Prefix caching saves
prefill; decode (identical on both engines) is the rest of a phase, so the gain grows with prompt length and model
size and shrinks with the token budgets. Threads: torch's intra-op threads are set to ``threads`` for the run.

    python -m rrr.bench.vllm_prefix                                   # tiny model (hidden 256, 4 layers), 16 x G=8
    python -m rrr.bench.vllm_prefix --model runs/smollm2-135m-instruct --tasks 8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from rrr.tasks import DEFAULT_TASK
from rrr.utils.cli import ConfigError

PHASES = ("attempt", "reflection", "retry")


@dataclass(frozen=True)
class VLLMPrefixBench:
    """The measurement's settings (each is a flag of ``python -m rrr.bench.vllm_prefix``).

    ``model``: a local model directory (default: a tiny Qwen2 built in a temp dir, ``hidden_size``/``num_layers``/
    ``num_heads``; vLLM CPU needs head_dim = hidden / heads >= 32). ``tasks``: Countdown tasks per round. ``group``:
    G, reflections per failed task. ``attempt_tokens``/``reflection_tokens``/``retry_tokens``: phase budgets (rows
    stop earlier at end-of-turn). ``repeats``: timed rounds after one warm-up round per engine. ``threads``: torch
    intra-op threads (0 leaves torch's default). ``seed``: tiny model, tasks and sampling.
    """

    model: str | None = None
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    tasks: int = 16
    group: int = 8
    attempt_tokens: int = 64
    reflection_tokens: int = 48
    retry_tokens: int = 64
    repeats: int = 2
    threads: int = 1
    seed: int = 0

    def __post_init__(self):
        sizes = ("tasks", "group", "attempt_tokens", "reflection_tokens", "retry_tokens", "repeats", "num_heads")
        if any(getattr(self, name) < 1 for name in sizes) or self.threads < 0:
            raise ConfigError("sizes, budgets and --repeats must be >= 1 and --threads >= 0")
        if self.model is None and self.hidden_size // self.num_heads < 32:
            raise ConfigError("vLLM CPU needs head_dim >= 32: raise --hidden-size or lower --num-heads")
        if self.model and not os.path.isdir(self.model):
            raise ConfigError(f"--model {self.model!r} is not a local directory")


class _PhaseTimer:
    """Wraps a ``VLLMGenerator``: times each ``generate`` call and keeps its prefix-cache counts and texts."""

    def __init__(self, generator):
        self.generator = generator
        self.calls: list[dict[str, Any]] = []

    def generate(self, conversations, params):
        start = time.perf_counter()
        gens = self.generator.generate(conversations, params)
        seconds = time.perf_counter() - start
        counts = self.generator.last_prefix_cache
        self.calls.append(
            {
                "seconds": seconds,
                "rows": len(gens),
                "prompt_tokens": sum(len(g.prompt_ids) for g in gens),
                "generated_tokens": sum(len(g.token_ids) for g in gens),
                "hit_tokens": counts.hit_tokens if counts is not None else None,
                "texts": [g.text for g in gens],
            }
        )
        return gens


def _round(task, generator, examples, config) -> dict[str, dict[str, Any]]:
    """One rollout from a cold cache (as after a weight sync): per phase, its call's numbers."""
    from rrr.episode import run_episodes

    generator.llm.reset_prefix_cache()
    timer = _PhaseTimer(generator)
    run_episodes(task, timer, examples, config)
    if len(timer.calls) != len(PHASES):
        raise RuntimeError(f"expected one call per phase, got {len(timer.calls)} (did a first attempt pass?)")
    return dict(zip(PHASES, timer.calls))


def _model_dir(bench: VLLMPrefixBench, tmp: str) -> str:
    if bench.model:
        return bench.model
    from rrr.models import save_tiny_model

    path = os.path.join(tmp, "tiny")
    save_tiny_model(path, hidden_size=bench.hidden_size, num_layers=bench.num_layers, num_heads=bench.num_heads)
    return path


def measure_vllm_prefix(bench: VLLMPrefixBench) -> dict[str, Any]:
    """Time each phase on a prefix-caching engine and on one without (see the module docstring); return the numbers."""
    import torch

    from rrr.episode import EpisodeConfig
    from rrr.generation import SamplingParams
    from rrr.generation.vllm import VLLMGenerator, kv_block_size
    from rrr.tasks import get_task

    threads = torch.get_num_threads()
    if bench.threads:
        torch.set_num_threads(bench.threads)
    try:
        task = get_task(DEFAULT_TASK)
        examples = task.generate(bench.tasks, seed=bench.seed, split="train")
        config = EpisodeConfig(
            attempt=SamplingParams(bench.attempt_tokens, temperature=1.0, seed=bench.seed),
            reflection=SamplingParams(bench.reflection_tokens, temperature=1.0, seed=bench.seed + 1),
            retry=SamplingParams(bench.retry_tokens, temperature=0.0),
            reflections_per_failure=bench.group,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = _model_dir(bench, tmp)
            start = time.perf_counter()
            engines = {
                "on": VLLMGenerator(path, seed=bench.seed),
                "off": VLLMGenerator(path, seed=bench.seed, enable_prefix_caching=False),
            }
            init_seconds = time.perf_counter() - start
            for generator in engines.values():  # warm-up
                _round(task, generator, examples, config)
            rounds: dict[str, list] = {"on": [], "off": []}
            for r in range(bench.repeats):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for name in order:
                    rounds[name].append(_round(task, engines[name], examples, config))
            block = kv_block_size(engines["on"].llm)
    finally:
        torch.set_num_threads(threads)

    same = all(a[p]["texts"] == b[p]["texts"] for a, b in zip(rounds["on"], rounds["off"], strict=True) for p in PHASES)
    phases = {}
    for p in PHASES:
        on = [r[p] for r in rounds["on"]]
        off = [r[p] for r in rounds["off"]]
        on_s, off_s = statistics.mean(c["seconds"] for c in on), statistics.mean(c["seconds"] for c in off)
        queried = sum(c["prompt_tokens"] for c in on)
        hits = sum(c["hit_tokens"] or 0 for c in on)
        phases[p] = {
            "rows": on[0]["rows"],
            "prompt_tokens": on[0]["prompt_tokens"],
            "generated_tokens": on[0]["generated_tokens"],
            "seconds_on": on_s,
            "seconds_off": off_s,
            "ratio_off_on": off_s / on_s if on_s else float("nan"),
            "hit_rate": hits / queried if queried else 0.0,
            "hit_rate_off": sum(c["hit_tokens"] or 0 for c in off) / max(1, sum(c["prompt_tokens"] for c in off)),
        }
    both_on = sum(phases[p]["seconds_on"] for p in ("reflection", "retry"))
    both_off = sum(phases[p]["seconds_off"] for p in ("reflection", "retry"))
    return {
        "settings": dataclasses.asdict(bench),
        "model": path if bench.model else f"tiny (hidden {bench.hidden_size}, {bench.num_layers} layers)",
        "kv_block_size": block,
        "engine_init_seconds": init_seconds,
        "same_outputs": same,
        "phases": phases,
        "reflection_and_retry": {"seconds_on": both_on, "seconds_off": both_off, "ratio_off_on": both_off / both_on},
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The measurement as a markdown table (one row per phase, then reflection + retry together)."""
    lines = [
        "| phase | rows | prompt tokens | generated | s, cache on | s, cache off | off / on | hit rate (on) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p, ph in result["phases"].items():
        lines.append(
            f"| {p} | {ph['rows']} | {ph['prompt_tokens']} | {ph['generated_tokens']} | {ph['seconds_on']:.2f} | "
            f"{ph['seconds_off']:.2f} | {ph['ratio_off_on']:.2f} | {ph['hit_rate']:.1%} |"
        )
    both = result["reflection_and_retry"]
    lines.append(
        f"| reflection + retry | | | | {both['seconds_on']:.2f} | {both['seconds_off']:.2f} | "
        f"{both['ratio_off_on']:.2f} | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(VLLMPrefixBench):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model":
            parser.add_argument(flag, metavar="PATH")
        else:
            parser.add_argument(flag, type=int, default=f.default)
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    args = vars(parser.parse_args(argv))
    out = args.pop("json")
    try:
        bench = VLLMPrefixBench(**args)
    except ConfigError as e:
        parser.error(str(e))
    result = measure_vllm_prefix(bench)
    print(f"model: {result['model']}; KV block {result['kv_block_size']} tokens; {bench.tasks} tasks x G={bench.group}")
    print(f"engines built in {result['engine_init_seconds']:.1f} s; same outputs on both: {result['same_outputs']}")
    print(markdown_table(result))
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
