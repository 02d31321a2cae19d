"""Measure SmolLM2-135M-Instruct (``make real-model``) on a CPU: what a real instruct model does with RRR here.

Three parts, each writing under ``--output-dir`` (default ``runs/real-model-report``) and skipped when finished:

* ``baseline`` — first try and after one reflection + retry (``rrr.evaluation.evaluate``, HF generate, greedy) on
  countdown, scheduling and apigen (generated problems, ``--n`` each), with 95% intervals;
* ``phases`` — seconds per RRR step on HF generate split by phase (attempt / reflection / retry / train): a few RRR
  steps (LoRA) on countdown, run with a rollout whose engine times each generate call (:class:`PhaseTimingRollout`,
  passed to the trainer as its rollout) and a callback timing the step;
* ``best`` — the best RRR run this project can make on a CPU in about 30 minutes: the demo pipeline
  (``rrr.demo.pipeline``: oracle curriculum -> SFT -> eval -> mined failures -> RRR -> eval -> paired frozen-failure
  scoring with 95% CIs, optional shuffled-reward control) with SmolLM2 as the student instead of the tiny random
  model, LoRA for SFT (merged) and for RRR, at CPU-sized counts.

``make real-model-report`` (``python scripts/real_model_report.py``) runs all three (``REAL_REPORT_ARGS="--parts best
--control"`` to choose); each part prints its table and writes ``<part>/report.md`` and ``<part>/report.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from typing import ClassVar

from rrr.training.rollout import RRRRollout
from rrr.utils.io import atomic_write_json, atomic_write_text

TASKS = ("countdown", "scheduling", "apigen")
#: Sensible budgets for a 135M instruct model: its answers are short, its reasoning rarely useful past ~200 tokens.
BUDGETS = {"attempt": 256, "reflection": 128, "retry": 256}


def pct(m: dict | None) -> str:
    if not m or not m.get("n"):
        return "–"
    lo, hi = m["ci"]
    return f"{100 * m['acc']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _done(directory: str) -> dict | None:
    path = os.path.join(directory, "report.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return None


def _finish(directory: str, report: dict, table: str) -> dict:
    atomic_write_text(os.path.join(directory, "report.md"), table)
    atomic_write_json(os.path.join(directory, "report.json"), {**report, "table": table})
    print(table, flush=True)
    return report


# ----------------------------------------------------------------------------------------------------------------
# baseline
# ----------------------------------------------------------------------------------------------------------------
def baseline(model_dir: str, out: str, n: int, seed: int) -> dict:
    from rrr.evaluation import EvalConfig, evaluate
    from rrr.generation import HFGenerator
    from rrr.models import load_model_and_tokenizer

    directory = os.path.join(out, "baseline")
    if (done := _done(directory)) is not None:
        print(done["table"])
        return done
    model, tokenizer = load_model_and_tokenizer(model_dir, dtype="float32", device="cpu")
    generator = HFGenerator(model, tokenizer, batch_size=n)
    rows = {}
    for task in TASKS:
        config = EvalConfig(
            task=task,
            split="test",
            n=n,
            seed=seed,
            source="generated",
            attempt_max_tokens=BUDGETS["attempt"],
            reflection_max_tokens=BUDGETS["reflection"],
            retry_max_tokens=BUDGETS["retry"],
            batch_size=n,
        )
        result = evaluate(generator, config, output_dir=os.path.join(directory, task), model_name=model_dir)
        rows[task] = {**result["metrics"], "seconds": result["timing"]["seconds"]}
    lines = [
        f"SmolLM2-135M-Instruct, HF generate, greedy, n={n} generated test problems per task (seed {seed}), budgets "
        f"attempt/reflection/retry {BUDGETS['attempt']}/{BUDGETS['reflection']}/{BUDGETS['retry']} tokens; "
        "accuracy % [95% CI].",
        "",
        "| task | n | 1st try | after reflection | fixed / failed | leak rate | majority baseline | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, m in rows.items():
        base = f"{100 * m['majority_baseline']:.1f}" if "majority_baseline" in m else "–"
        lines.append(
            f"| {task} | {m['n']} | {pct(m['first_try'])} | {pct(m['second_try'])} | {pct(m['fix_rate'])} | "
            f"{pct(m['leak_rate'])} | {base} | {m['seconds']:.0f} |"
        )
    return _finish(directory, {"n": n, "seed": seed, "budgets": BUDGETS, "tasks": rows}, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# phases
# ----------------------------------------------------------------------------------------------------------------
class _PhaseClock:
    """The trainer's engine, timing each ``generate`` call and naming its phase by the conversation's last turn."""

    def __init__(self, inner, task, record):
        self.inner, self.task, self.record = inner, task, record

    def __getattr__(self, name):  # render, any_rank, ...: the engine's own
        return getattr(self.inner, name)

    def generate(self, conversations, params):
        last = conversations[0][-1]["content"] if conversations else ""
        phase = {self.task.reflection_instruction: "reflection", self.task.retry_instruction: "retry"}.get(
            last, "attempt"
        )
        t0 = time.perf_counter()
        gens = self.inner.generate(conversations, params)
        self.record(phase, time.perf_counter() - t0, sum(g.num_tokens for g in gens))
        return gens


class PhaseTimingRollout(RRRRollout):
    """The RRR rollout with :class:`_PhaseClock` around its engine: ``record(phase, seconds, tokens)`` per call.

    Passed to the trainer as its rollout (``train(..., rollout_factory=...)``), so nothing in the trainer is patched.
    """

    def __init__(self, task, args, record):
        super().__init__(task, args)
        self.record = record

    def make_generator(self, trainer):
        return _PhaseClock(super().make_generator(trainer), self.task, self.record)


def phases(model_dir: str, out: str, steps: int, tasks_per_step: int, group: int) -> dict:
    """A few RRR steps with the trainer's generator wrapped: seconds per phase per step, and the rest (train)."""
    from transformers import TrainerCallback
    from trl import ModelConfig

    from rrr.training import RRRConfig, train
    from rrr.training.config import QUIET_CPU_RUN

    directory = os.path.join(out, "phases")
    if (done := _done(directory)) is not None:
        print(done["table"])
        return done
    timings: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tokens: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    state = {"step": 0}
    logged: list[tuple[int, dict]] = []

    def record(phase: str, seconds: float, n_tokens: int) -> None:
        timings[state["step"]][phase] += seconds
        tokens[state["step"]][phase] += n_tokens

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, st, control, **kwargs):
            state["step"] = st.global_step + 1
            state["t0"] = time.perf_counter()

        def on_step_end(self, args, st, control, **kwargs):
            timings[state["step"]]["step"] = time.perf_counter() - state["t0"]

        def on_log(self, args, st, control, logs=None, **kwargs):
            logged.append((st.global_step, dict(logs or {})))

    run_dir = os.path.join(directory, "run")
    shutil.rmtree(run_dir, ignore_errors=True)  # ours (a previous unfinished part): a timing run must start fresh
    args = RRRConfig(
        output_dir=run_dir,
        task="countdown",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="online",
        attempt_max_tokens=128,
        attempt_temperature=1.0,
        max_completion_length=64,
        retry_max_tokens=128,
        num_generations=group,
        per_device_train_batch_size=tasks_per_step * group,
        learning_rate=1e-5,
        max_steps=steps,
        beta=0.0,
        **QUIET_CPU_RUN,
        seed=0,
    )
    model_args = ModelConfig(
        model_name_or_path=model_dir,
        dtype="float32",
        use_peft=True,
        lora_r=16,
        lora_alpha=32,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    start = time.time()
    summary = train(
        args, model_args, callbacks=[StepClock()], rollout_factory=functools.partial(PhaseTimingRollout, record=record)
    )
    wall = time.time() - start
    rollout = {step: logs["rrr/rollout_seconds"] for step, logs in logged if "rrr/rollout_seconds" in logs}
    rows = []
    for step in sorted(timings):
        t = timings[step]
        gen = sum(t[p] for p in ("attempt", "reflection", "retry"))
        rows.append(
            {
                "step": step,
                **{p: round(t[p], 1) for p in ("attempt", "reflection", "retry")},
                "rollout_logged": rollout.get(step),
                "train_and_rest": round(t["step"] - gen, 1),
                "total": round(t["step"], 1),
                "tokens": dict(tokens[step]),
            }
        )
    lines = [
        f"RRR on countdown with SmolLM2-135M-Instruct + LoRA r=16 (all linear layers), HF generate, 1 thread; "
        f"{tasks_per_step} tasks x {group} reflections per step; budgets attempt 128 (T=1), reflection 64 (T=1), "
        "retry 128 (greedy). Seconds; tokens generated in brackets. `rollout_seconds` is what the trainer logs; "
        "train = step - generation (loss, backward, optimizer, TRL bookkeeping).",
        "",
        "| step | attempt | reflection | retry | train | step total | rrr/rollout_seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tk = r["tokens"]
        lines.append(
            f"| {r['step']} | {r['attempt']} ({tk.get('attempt', 0)}) | {r['reflection']} ({tk.get('reflection', 0)}) "
            f"| {r['retry']} ({tk.get('retry', 0)}) | {r['train_and_rest']} | {r['total']} | "
            f"{r['rollout_logged'] if r['rollout_logged'] is None else round(r['rollout_logged'], 1)} |"
        )
    import resource

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lines += ["", f"Peak resident memory of the process: {peak_gib:.1f} GiB."]
    report = {
        "steps": rows,
        "wall_seconds": round(wall, 1),
        "global_step": summary["global_step"],
        "peak_rss_gib": round(peak_gib, 2),
    }
    return _finish(directory, report, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# best: the demo pipeline with SmolLM2 as the student
# ----------------------------------------------------------------------------------------------------------------
def best_config(out: str, control: bool, rrr_steps: int = 30):
    """The demo's stages at CPU-sized counts for a 135M model (see docs/real-model.md for the reasoning)."""
    from rrr.demo.config import DemoConfig

    config = DemoConfig.from_yaml("recipes/demo/config.yaml")
    d = config.to_dict()
    d["output_dir"] = os.path.join(out, "best")
    d["data"].update(sft_problems=1500, reflection_problems=600, mining_problems=400, test_problems=200)
    d["sft"].update(max_steps=60, per_device_train_batch_size=8, learning_rate=5e-4, warmup_steps=5)
    d["mining"].update(max_tokens=8)
    d["rrr"].update(  # RRRConfig + ModelConfig fields (the demo's rrr recipe)
        max_steps=rrr_steps,
        per_device_train_batch_size=16,  # 4 tasks x 4 reflections
        num_generations=4,
        first_attempt_tries=2,
        learning_rate=1e-4,
        warmup_steps=3,
        use_peft=True,
        lora_r=16,
        lora_alpha=32,
    )
    d["eval"].update(batch_size=64)
    d["paired"].update(samples=4)
    d["control"]["enabled"] = control
    return DemoConfig.from_dict(d)


def best(model_dir: str, out: str, control: bool, rrr_steps: int = 30) -> dict:
    from rrr.demo.pipeline import DemoPipeline

    class RealStudentPipeline(DemoPipeline):
        """The demo with a real instruct model: ``base`` is SmolLM2 itself; SFT is LoRA (r=16, merged)."""

        sft_lora: ClassVar[dict] = {"r": 16, "alpha": 32, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}

        def spec(self, stage):
            return {**super().spec(stage), "student": os.path.abspath(model_dir), "sft_lora": self.sft_lora}

        def build_base(self, directory):
            for name in os.listdir(model_dir):
                src = os.path.join(model_dir, name)
                try:
                    os.link(src, os.path.join(directory, name))
                except OSError:
                    shutil.copy2(src, os.path.join(directory, name))
            from rrr.models import load_tokenizer

            with open(os.path.join(model_dir, "rrr_real_model.json")) as f:
                info = json.load(f)
            # the keys the demo's progress line reads
            return {**info, "vocab": len(load_tokenizer(directory))}

        sft_merge: ClassVar[bool] = True

        def sft_model_args(self):
            from trl import ModelConfig

            return ModelConfig(
                model_name_or_path=self.path("base"),
                dtype="float32",
                use_peft=True,
                lora_r=self.sft_lora["r"],
                lora_alpha=self.sft_lora["alpha"],
                lora_dropout=0.0,
                lora_target_modules=self.sft_lora["targets"],
            )

    config = best_config(out, control, rrr_steps)
    return RealStudentPipeline(config).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/smollm2-135m-instruct")
    p.add_argument("--output-dir", default="runs/real-model-report")
    p.add_argument("--parts", nargs="+", choices=("baseline", "phases", "best"), default=["baseline", "phases", "best"])
    p.add_argument("--n", type=int, default=32, help="baseline: generated test problems per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase-steps", type=int, default=3)
    p.add_argument("--phase-tasks", type=int, default=2, help="phases: failed tasks per step (x 4 reflections)")
    p.add_argument("--control", action="store_true", help="best: also the shuffled-reward control (~+12 min)")
    p.add_argument("--rrr-steps", type=int, default=30, help="best: RRR steps (4 tasks x 4 reflections each)")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if not os.path.isfile(os.path.join(a.model, "rrr_real_model.json")):
        print(f"error: {a.model} is not an installed real model; run `make real-model`", file=sys.stderr)
        return 2
    for part in a.parts:
        t0 = time.time()
        print(f"== {part} ==", flush=True)
        if part == "baseline":
            baseline(a.model, a.output_dir, a.n, a.seed)
        elif part == "phases":
            phases(a.model, a.output_dir, a.phase_steps, tasks_per_step=a.phase_tasks, group=4)
        else:
            best(a.model, a.output_dir, a.control, a.rrr_steps)
        print(f"== {part}: {time.time() - t0:.0f}s ==", flush=True)
    return 0


if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
