"""``make demo``: the whole RRR idea, offline on a CPU, from nothing, in minutes.

Stages (each under ``<output_dir>/<stage>/``, each through the project's own library code):

1. ``base`` — a byte-level BPE tokenizer trained on the task's own text (``rrr.models.task_tokenizer``) and a
   random-init ~1M-parameter Qwen2 (``rrr.models.build_tiny_model``);
2. ``curriculum`` — the oracle teacher's curriculum (``rrr.curriculum.build_curriculum``): direct answers to
   training problems, witness reflections on plausible wrong attempts, and the retries that follow them;
3. ``sft`` — warm start on it (``rrr.curriculum.train_sft``: TRL ``SFTTrainer``, loss on completions only);
4. ``eval-sft`` — first try and after-reflection accuracy on held-out problems (``rrr.evaluation.evaluate``);
5. ``failures`` — the student's failures on fresh training problems (``rrr.evaluation.mine_failures``);
6. ``rrr`` — RRR GRPO on them (``rrr.training.train``; by default the current student's own first attempts on the
   mined problems): reflections are the only trained tokens, rewarded when the greedy retry passes the verifier;
7. ``eval-rrr`` — the same evaluation of the RRR student;
8. ``paired`` — the headline: both students reflect on the *same* frozen failed attempts (the SFT student's failures
   on the held-out set) — greedy, and ``reflection_samples`` reflections at T=1 — with paired 95% intervals;
9. optionally ``control`` / ``eval-control`` — RRR with rewards shuffled within each group (no credit signal),
   evaluated like the RRR student and in ``paired`` too.

Re-running skips finished stages. A stage is finished when its ``stage.json`` (written last, atomically) exists; it
records the settings the stage was built with, and a finished stage built with other settings is an error rather
than a silent mix of two configurations. A stage without ``stage.json`` is removed and run again.

The task is the min-rooms variant (``rrr.tasks.scheduling_demo`` explains why YES/NO, even strict, lets RRR learn to flip). Two
references keep the headline honest: the majority baseline (always the most common number of rooms), and the best
*shift rule* on the frozen failures ("answer the failed number + s", with s chosen on the test failures themselves):
what the failure signal alone is worth without looking at the meetings.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, ClassVar

from rrr.curriculum.dataset import REFLECTION_DIRNAME
from rrr.demo.config import DEMO_TASK, DemoConfig
from rrr.demo.report import format_tables
from rrr.evaluation.stats import mean_interval
from rrr.utils.io import atomic_write_json, atomic_write_text, read_jsonl
from rrr.utils.outputs import claim_output_dir, output_lock

logger = logging.getLogger("rrr.demo")

TASK_KWARGS: dict[str, Any] = {}
#: The ownership kind of a demo's output directory (``rrr.utils.outputs``).
OUTPUT_KIND = "demo"
STAGE_FILE = "stage.json"
#: Stages that only measure existing models: cheap, so they are recomputed (not refused) when their settings change,
#: e.g. when the control is switched on after a finished run, or the evaluation settings change.
DERIVED_STAGES = ("eval-sft", "eval-rrr", "eval-control", "paired")
STAGES = ("base", "curriculum", "sft", "eval-sft", "failures", "rrr", "eval-rrr", "control", "eval-control", "paired")


class DemoError(RuntimeError):
    """The demo cannot continue (a stage built with other settings, a stage that produced nothing usable)."""


def _seed(config: DemoConfig, purpose: str) -> int:
    """A per-purpose seed derived from the run seed (stable across processes: no ``hash()``)."""
    import zlib

    return (config.seed * 1_000_003 + zlib.crc32(purpose.encode())) % (2**31)


@contextmanager
def _quiet():
    """Keep the demo's output to its own progress lines: no tqdm bars, library warnings or per-step logging."""
    import datasets
    import transformers

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


class DemoPipeline:
    """Runs the stages of one demo configuration (see the module docstring)."""

    def __init__(self, config: DemoConfig, progress: Callable[[str], None] | None = None):
        from rrr.tasks import get_task

        self.config = config
        self.out = config.output_dir
        self.task = get_task(DEMO_TASK, **TASK_KWARGS)
        self.start = time.time()
        self.timing: dict[str, float] = {}
        stdout = sys.stdout  # the trainers' stages swap sys.stdout out (``_library_logging_off``); not ours
        self._print = progress or (lambda line: print(line, file=stdout, flush=True))

    # ------------------------------------------------------------------------------------------------------------
    # Stage bookkeeping
    # ------------------------------------------------------------------------------------------------------------
    def path(self, stage: str, *parts: str) -> str:
        return os.path.join(self.out, stage, *parts)

    def log(self, message: str) -> None:
        self._print(f"[demo {time.time() - self.start:6.1f}s] {message}")

    def generator_fingerprint(self) -> str:
        """A hash of a fixed sample of the task's generated problems: cached stages (their example ids, their mined
        failures) are only valid for the generator that made them, and a code change to it is not a setting."""
        if not hasattr(self, "_generator_fingerprint"):
            sample = self.task.generate(16, seed=20261201, split="test")
            blob = json.dumps(sample, sort_keys=True, default=str).encode()
            self._generator_fingerprint = hashlib.sha256(blob).hexdigest()[:16]
        return self._generator_fingerprint

    def spec(self, stage: str) -> dict[str, Any]:
        """The settings a stage depends on (its own and every upstream stage's), compared on re-runs."""
        c = self.config.to_dict()
        base = {"seed": c["seed"], "model": c["model"]}
        curriculum = {
            "seed": c["seed"],
            "data": {k: c["data"][k] for k in ("sft_problems", "reflection_problems")},
            "generator": self.generator_fingerprint(),
        }
        sft = {**base, **curriculum, "sft": c["sft"], "sft_include_reflections": c["sft_include_reflections"]}
        test = {
            "test_problems": c["data"]["test_problems"],
            "test_seed": c["data"]["test_seed"],
            "eval": c["eval"],
            "paired": c["paired"],
            "generator": self.generator_fingerprint(),
        }
        failures = {**sft, "mining": c["mining"], "mining_problems": c["data"]["mining_problems"]}
        rrr = {**failures, "rrr": c["rrr"], "freeze_embeddings": c["freeze_embeddings"]}
        specs = {
            "base": base,
            "curriculum": curriculum,
            "sft": sft,
            "eval-sft": {**sft, **test},
            "failures": failures,
            "rrr": rrr,
            "eval-rrr": {**rrr, **test},
            "control": {**rrr, "control": "shuffled rewards"},
            "eval-control": {**rrr, **test, "control": "shuffled rewards"},
            "paired": {**rrr, **test, "control": c["control"]["enabled"]},
        }
        return specs[stage]

    def stage(self, name: str, fn: Callable[[str], dict]) -> dict:
        """Run ``fn(stage_dir)`` unless the stage is finished with the same settings; returns its result dict."""
        directory = self.path(name)
        marker = os.path.join(directory, STAGE_FILE)
        spec = json.loads(json.dumps(self.spec(name)))
        if os.path.exists(marker):
            with open(marker) as f:
                saved = json.load(f)
            if saved.get("spec") != spec and name in DERIVED_STAGES:
                self.log(f"{name}: settings changed, recomputing")
                os.remove(marker)
            elif saved.get("spec") != spec:
                raise DemoError(
                    f"{directory} was built with other settings than this run's; delete it (and the stages after "
                    f"it) or use another --output-dir"
                )
            else:
                self.timing[name] = saved.get("seconds", 0.0)
                self.log(f"{name}: done before, skipped ({_summary_line(name, saved['result'])})")
                return saved["result"]
        if os.path.exists(directory):
            shutil.rmtree(directory)  # an unfinished stage: start it over
        os.makedirs(directory)
        self.log(f"{name}: running ...")
        t0 = time.time()
        result = fn(directory)
        seconds = round(time.time() - t0, 1)
        atomic_write_json(marker, {"spec": spec, "result": result, "seconds": seconds})
        self.timing[name] = seconds
        self.log(f"{name}: done in {seconds:.0f}s ({_summary_line(name, result)})")
        return result

    # ------------------------------------------------------------------------------------------------------------
    # The run
    # ------------------------------------------------------------------------------------------------------------
    def run(self, until: str | None = None) -> dict:
        """Run every stage (finished ones are skipped) and return the results; ``until="sft"`` stops after the SFT
        student is built (the ablation's tiny base model) and returns ``{"model_dir": ...}``."""
        if until is not None and until not in ("base", "sft"):
            raise DemoError(f"until must be 'base' or 'sft' (the stages that produce a model), got {until!r}")
        with output_lock(self.out), _quiet():
            return self._run(until)

    def _run(self, until: str | None = None) -> dict:
        # the demo deletes unfinished stage directories: only inside a directory that is its own
        claim_output_dir(self.out, OUTPUT_KIND, legacy=(os.path.join("base", STAGE_FILE),))
        atomic_write_json(os.path.join(self.out, "config.json"), self.config.to_dict())
        self.log(f"output in {self.out} (seed {self.config.seed})")
        self.stage("base", self.build_base)
        if until == "base":
            return {"model_dir": self.path("base")}
        self.stage("curriculum", self.build_curriculum)
        self.stage("sft", self.train_sft)
        if until == "sft":
            return {"model_dir": self.path("sft")}
        eval_sft = self.stage("eval-sft", lambda d: self.evaluate(self.path("sft"), d, "sft"))
        self.stage("failures", self.mine)
        self.stage("rrr", lambda d: self.train_rrr(d, shuffle_rewards=False))
        eval_rrr = self.stage("eval-rrr", lambda d: self.evaluate(self.path("rrr"), d, "rrr"))
        evaluations = {"sft (before RRR)": eval_sft, "rrr (after RRR)": eval_rrr}
        if self.config.control.enabled:
            self.stage("control", lambda d: self.train_rrr(d, shuffle_rewards=True))
            evaluations["control (shuffled rewards)"] = self.stage(
                "eval-control", lambda d: self.evaluate(self.path("control"), d, "control")
            )
        paired = self.stage("paired", self.paired)
        results = self.results(evaluations, paired)
        self.log(f"finished in {time.time() - self.start:.0f}s; results in {os.path.join(self.out, 'results.md')}")
        return results

    # ------------------------------------------------------------------------------------------------------------
    # 1. base model
    # ------------------------------------------------------------------------------------------------------------
    def build_base(self, directory: str) -> dict:
        from rrr.models import build_tiny_model
        from rrr.models.task_tokenizer import save_task_tokenizer, task_corpus, train_task_tokenizer

        m = self.config.model
        examples = self.task.generate(m.tokenizer_problems, seed=_seed(self.config, "tokenizer"), split="train")
        witnesses = [self.task.witness_reflection(ex) or "" for ex in examples]
        tokenizer = train_task_tokenizer(task_corpus(self.task, examples, witnesses), vocab_size=m.vocab_size)
        model = build_tiny_model(
            tokenizer,
            hidden_size=m.hidden_size,
            num_layers=m.num_layers,
            num_heads=m.num_heads,
            seed=_seed(self.config, "model"),
        )
        model.save_pretrained(directory)
        save_task_tokenizer(tokenizer, directory, info={"trained_on": f"{len(examples)} {self.task.name} problems"})
        return {"parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tokenizer)}

    # ------------------------------------------------------------------------------------------------------------
    # 2. curriculum
    # ------------------------------------------------------------------------------------------------------------
    def build_curriculum(self, directory: str) -> dict:
        from rrr.curriculum import CurriculumConfig, OracleTeacher, SolveResult, build_curriculum

        d = self.config.data
        task = self.task
        sft_examples = task.generate(d.sft_problems, seed=_seed(self.config, "sft-data"), split="train")
        rng = random.Random(_seed(self.config, "mistakes"))
        failures = []
        for ex in task.generate(d.reflection_problems, seed=_seed(self.config, "reflection-data"), split="train"):
            attempt = task.synthesize_failure(ex, rng)
            if attempt is not None:
                failures.append(SolveResult(ex, attempt, task.verify(ex, attempt)))
        # The oracle reflects with the task's witness (``witness_reflection`` hook) and retries with the answer.
        result = build_curriculum(
            task,
            OracleTeacher(task),
            sft_examples,
            strategy="",
            output_dir=directory,
            config=CurriculumConfig(
                # the generator already fixes the label mix; balancing min-rooms answers would cut the data to the
                # rarest peak (5 meetings at once) and make every peak equally likely, unlike the test set
                balance=False,
                # the retry that follows each witness is trained too: a student from scratch must learn to *use* one
                retry_rows=True,
                synthetic_failures=0,
                seed=self.config.seed,
                progress=False,
            ),
            failures=failures,
        )
        if result.reflection_path is None:
            raise DemoError("the oracle curriculum produced no reflection rows")
        return dict(result.stats)

    # ------------------------------------------------------------------------------------------------------------
    # 3. SFT
    # ------------------------------------------------------------------------------------------------------------
    #: Save the SFT student merged (a LoRA student must be, before RRR trains it in full or with a new adapter).
    sft_merge: ClassVar[bool] = False

    def sft_model_args(self):
        """The SFT student: the base model in full (a subclass with a pretrained base may return a LoRA config)."""
        from trl import ModelConfig

        return ModelConfig(model_name_or_path=self.path("base"), dtype="float32")

    def train_sft(self, directory: str) -> dict:
        from rrr.curriculum import CurriculumSFTConfig, train_sft

        recipe = self.config.sft  # CurriculumSFTConfig fields over the demo's defaults (DemoConfig)
        reflections = self.path("curriculum", REFLECTION_DIRNAME) if self.config.sft_include_reflections else None
        args = CurriculumSFTConfig(
            **{
                **recipe,
                "output_dir": directory,
                "dataset_path": self.path("curriculum", "sft"),
                "reflection_dataset_path": reflections,
                "task": DEMO_TASK,
                "task_kwargs": TASK_KWARGS,
                "merge": self.sft_merge,
                "logging_steps": max(1, recipe.get("max_steps", 1) // 10),  # the progress lines
                "disable_tqdm": True,
                "log_level": "error",
                "seed": _seed(self.config, "sft"),
                "data_seed": _seed(self.config, "sft"),
            }
        )
        model_args = self.sft_model_args()
        with _library_logging_off():
            progress = _progress_callback(self.log, "sft", {"loss": "loss", "mean_token_accuracy": "token accuracy"})
            summary = train_sft(args, model_args, callbacks=[progress])
        losses = summary.get("losses") or []
        return {
            "steps": summary["global_step"],
            "rows": summary["train_rows"],
            "train_seconds": summary["train_seconds"],
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
        }

    # ------------------------------------------------------------------------------------------------------------
    # 4 / 7. evaluation
    # ------------------------------------------------------------------------------------------------------------
    def generator(self, model_dir: str):
        from rrr.generation import HFGenerator
        from rrr.models import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(model_dir, dtype="float32", device="cpu")
        return HFGenerator(model, tokenizer, batch_size=self.config.eval.batch_size)

    def test_examples(self) -> list[dict]:
        d = self.config.data
        return [dict(ex) for ex in self.task.load(split="test", n=d.test_problems, seed=d.test_seed)]

    def evaluate(self, model_dir: str, directory: str, name: str) -> dict:
        from rrr.evaluation import evaluate

        config = self.config.eval  # task, split, n and seed: the demo's held-out set (DemoConfig)
        results = evaluate(self.generator(model_dir), config, output_dir=directory, model_name=name, progress=False)
        m = results["metrics"]
        return {
            "n": m["n"],
            "first_try": m["first_try"],
            "second_try": m["second_try"],
            "fix_rate": m["fix_rate"],
            "leak_rate": m["leak_rate"],
            "majority_baseline": m["majority_baseline"],
            "per_difficulty": m.get("per_difficulty"),
        }

    # ------------------------------------------------------------------------------------------------------------
    # 5. failure mining
    # ------------------------------------------------------------------------------------------------------------
    def mine(self, directory: str) -> dict:
        import datasets

        from rrr.evaluation import MiningConfig, mine_failures
        from rrr.utils.io import atomic_directory

        mc, d = self.config.mining, self.config.data
        examples = self.task.generate(d.mining_problems, seed=_seed(self.config, "mining-data"), split="train")
        generator = self.generator(self.path("sft"))
        kept: dict[str, dict] = {}
        reports = {}
        passes = []
        if mc.greedy:
            passes.append(("greedy", MiningConfig(k=1, temperature=0.0, max_tokens=mc.max_tokens)))
        if mc.sampled_k:
            passes.append(
                (
                    "sampled",
                    MiningConfig(
                        k=mc.sampled_k,
                        temperature=mc.temperature,
                        max_tokens=mc.max_tokens,
                        seed=_seed(self.config, "mining"),
                    ),
                )
            )
        for label, mining_config in passes:
            mining_config.batch_size = self.config.eval.batch_size
            rows, report = mine_failures(self.task, generator, examples, mining_config, progress=False)
            reports[label] = {k: report[k] for k in ("n", "kept", "failure_rate", "per_difficulty")}
            for row in rows:  # the greedy failure of a problem is kept when both passes failed it
                kept.setdefault(row["id"], {**row, "mined_by": label})
        if not kept:
            raise DemoError("the SFT student failed no mining problem: nothing to train RRR on (train SFT less?)")
        rows = [kept[ex["id"]] for ex in examples if ex["id"] in kept]
        with atomic_directory(os.path.join(directory, "dataset"), "demo_failures") as tmp:
            datasets.Dataset.from_list(rows).save_to_disk(tmp)
        return {"problems": len(examples), "failures": len(rows), "passes": reports}

    # ------------------------------------------------------------------------------------------------------------
    # 6. RRR
    # ------------------------------------------------------------------------------------------------------------
    def rrr_args(self, directory: str):
        """The RRR stage's ``(RRRConfig, ModelConfig)``: the ``rrr`` recipe plus what the pipeline sets (where it
        reads and writes, the seeds, quiet progress output)."""
        from trl import ModelConfig

        from rrr.training import RRRConfig

        model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
        recipe = self.config.rrr
        args = RRRConfig(
            **{
                **{k: v for k, v in recipe.items() if k not in model_fields},
                "output_dir": directory,
                "task": DEMO_TASK,
                "task_kwargs": dict(TASK_KWARGS),
                "dataset_source": self.path("failures", "dataset"),
                "dataset_split": "train",
                "logging_steps": max(1, recipe.get("max_steps", 1) // 10),  # the progress lines
                "log_level": "error",
                "seed": _seed(self.config, "rrr"),
                "data_seed": _seed(self.config, "rrr"),
            }
        )
        model_args = ModelConfig(
            **{
                "dtype": "float32",
                "lora_dropout": 0.0,
                "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                **{k: v for k, v in recipe.items() if k in model_fields},
                "model_name_or_path": os.path.abspath(self.path("sft")),
            }
        )
        return args, model_args

    def train_rrr(self, directory: str, shuffle_rewards: bool) -> dict:
        from rrr.models.task_tokenizer import TOKENIZER_INFO
        from rrr.models.tiny import MARKER
        from rrr.training import train

        args, model_args = self.rrr_args(directory)
        model = tokenizer = None
        if self.config.freeze_embeddings:
            from transformers import AutoModelForCausalLM

            from rrr.models import load_tokenizer

            model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, dtype="float32")
            model.get_input_embeddings().weight.requires_grad_(False)
            tokenizer = load_tokenizer(model_args.model_name_or_path)
        rollout_factory = None
        if shuffle_rewards:  # the control: the same run with each group's rewards permuted (its own seeded RNG)
            from rrr.training.rollout import ShuffledRewardRollout

            rollout_factory = functools.partial(ShuffledRewardRollout, seed=_seed(self.config, "control"))
        with _library_logging_off():
            progress = _progress_callback(
                self.log,
                "control" if shuffle_rewards else "rrr",
                {"rrr/retry_success": "retry success (reward)", "rrr/first_attempt_acc": "1st try (T=1)"},
            )
            summary = train(
                args,
                model_args,
                model=model,
                tokenizer=tokenizer,
                callbacks=[progress],
                rollout_factory=rollout_factory,
            )
        for name in (MARKER, TOKENIZER_INFO):  # so rrr.models.load_tokenizer recognises the saved tokenizer
            if os.path.exists(self.path("base", name)):
                shutil.copyfile(self.path("base", name), os.path.join(directory, name))
        return {
            "steps": summary["global_step"],
            "train_seconds": summary["train_seconds"],
            "generated_tokens": summary.get("generated_tokens"),
            "shuffled_rewards": shuffle_rewards,
            **_reward_curve(os.path.join(directory, "episodes.jsonl")),
        }

    # ------------------------------------------------------------------------------------------------------------
    # 8. paired comparison on frozen held-out failures
    # ------------------------------------------------------------------------------------------------------------
    def paired(self, directory: str) -> dict:
        """Both students reflect on the SFT student's frozen held-out failures (``rrr.evaluation.frozen``)."""
        from rrr.evaluation.frozen import load_frozen_failures, paired_gains, score_on_frozen
        from rrr.utils.io import append_jsonl

        examples, attempts = load_frozen_failures(
            self.path("eval-sft", "samples.jsonl"), self.test_examples(), self.task
        )
        if not examples:
            raise DemoError("the SFT student made no mistake on the test set: nothing to reflect on")
        students = {"sft": self.path("sft"), "rrr": self.path("rrr")}
        if self.config.control.enabled:
            students["control"] = self.path("control")
        frozen = dataclasses.replace(self.config.paired, seed=_seed(self.config, "paired"))  # budgets: eval's
        out: dict[str, Any] = {
            "n": len(examples),
            "reflection_samples": frozen.samples,
            "temperature": frozen.temperature,
            "shift_rule": shift_rule_baseline(self.task, examples, attempts),
            "students": {},
        }
        scores = {}
        for name, model_dir in students.items():
            scores[name] = score_on_frozen(self.task, self.generator(model_dir), examples, attempts, frozen)
            kinds = [
                self.task.describe_reflection(ep.example, o.text)
                for ep in scores[name].sampled_episodes
                for o in ep.reflections
            ]
            out["students"][name] = {
                **scores[name].summary(),
                "faithful_witness": mean_interval([float(k == "peak") for k in kinds]),
                "witness_kinds": {k: kinds.count(k) / len(kinds) for k in sorted(set(kinds))},
            }
            append_jsonl(os.path.join(directory, "samples.jsonl"), scores[name].sample_rows(name))
        out["gains"] = paired_gains(scores, reference="sft")
        return out

    # ------------------------------------------------------------------------------------------------------------
    # Results
    # ------------------------------------------------------------------------------------------------------------
    def results(self, evaluations: dict[str, dict], paired: dict) -> dict:
        gain = paired["gains"]["rrr"]["sampled"]
        lo, hi = gain["ci"]
        verdict = (
            f"RRR gain on frozen held-out failures (T={paired['temperature']:g}, {paired['reflection_samples']} "
            f"reflections each): {100 * gain['diff']:+.1f} pp, 95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}] — "
            + ("larger than its confidence interval (CI excludes 0)." if lo > 0 else "NOT larger than its CI.")
        )
        if "control" in paired["gains"]:
            control = paired["gains"]["control"]["sampled"]
            verdict += f" Shuffled-reward control: {100 * control['diff']:+.1f} pp."
        results = {
            "config": self.config.to_dict(),
            "evaluations": evaluations,
            "paired": paired,
            "gain_exceeds_ci": lo > 0,
            "verdict": verdict,
            "timing": dict(self.timing),
            "total_seconds": round(sum(self.timing.values()), 1),
        }
        table = format_tables(results)
        atomic_write_json(os.path.join(self.out, "results.json"), results)
        atomic_write_text(os.path.join(self.out, "results.md"), table)
        self._print("\n" + table)
        return results


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------
def _progress_callback(log: Callable[[str], None], stage: str, metrics: dict[str, str]):
    """A ``TrainerCallback`` that writes one line per logging step: the step, the stage's own metrics, time left.

    The demo silences the libraries' per-step output; without this a 5-minute stage would print nothing.
    """
    from transformers import TrainerCallback

    class StageProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.time()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "train_runtime" in logs or not state.global_step:
                return
            step, total = state.global_step, state.max_steps
            parts = [f"{stage}: step {step}/{total}"]
            parts += [f"{label} {float(logs[key]):.3f}" for key, label in metrics.items() if key in logs]
            left = (time.time() - self.start) / step * (total - step)
            log(" · ".join(parts) + f" · ~{left:.0f}s left")

    return StageProgress()


def shift_rule_baseline(task, examples: list[dict], attempts: list[str]) -> dict:
    """The best "answer the failed number + s" rule on these failures (s in -2..2, chosen on them: an upper bound).

    What the failure signal alone is worth: a retry that never looks at the meetings, only at the number it got
    wrong. A reflection-and-retry that beats it is using the problem, not just the verdict.
    """
    from rrr.tasks.parsing import last_answer

    best: dict = {"shift": 0, "acc": 0.0, "ci": [0.0, 0.0], "n": len(examples)}
    for shift in (-2, -1, 1, 2):
        hits = []
        for example, attempt in zip(examples, attempts):
            answer = (last_answer(attempt) or "").strip()
            guess = f"<answer>{int(answer) + shift}</answer>" if answer.isdigit() and len(answer) < 4 else ""
            hits.append(float(task.verify(example, guess).passed))
        m = mean_interval(hits)
        if m["acc"] > best["acc"]:
            best = {"shift": shift, **m}
    return best


def _reward_curve(path: str, window: int = 50) -> dict:
    """Mean RRR reward over the first and last ``window`` steps (from ``episodes.jsonl``)."""
    if not os.path.exists(path):
        return {}
    by_step: dict[int, list[float]] = {}
    for row in read_jsonl(path):
        by_step.setdefault(row["step"], []).append(row["reward"])
    steps = sorted(by_step)
    if not steps:
        return {}

    def mean(chunk):
        values = [v for s in chunk for v in by_step[s]]
        return round(sum(values) / len(values), 4) if values else None

    return {"reward_first_steps": mean(steps[:window]), "reward_last_steps": mean(steps[-window:])}


def _summary_line(stage: str, result: dict) -> str:
    """One short human line per finished stage."""

    def p(m):
        return f"{100 * m['acc']:.1f}%"

    if stage == "base":
        return f"{result['parameters'] / 1e6:.2f}M parameters, {result['vocab']}-token BPE tokenizer"
    if stage == "curriculum":
        return f"{result.get('sft_rows')} answer rows, {result.get('reflection_rows')} reflection+retry rows"
    if stage == "sft":
        return f"{result['steps']} steps, loss {result['loss_first']:.3f} -> {result['loss_last']:.3f}"
    if stage.startswith("eval"):
        return f"1st try {p(result['first_try'])}, after reflection {p(result['second_try'])}, failures fixed {p(result['fix_rate'])}"
    if stage == "failures":
        return f"{result['failures']} failed attempts on {result['problems']} training problems"
    if stage in ("rrr", "control"):
        return (
            f"{result['steps']} steps, reward {result.get('reward_first_steps')} -> {result.get('reward_last_steps')}"
        )
    if stage == "paired":
        return ", ".join(
            f"{name} {100 * g['sampled']['diff']:+.1f} pp [{100 * g['sampled']['ci'][0]:+.1f}, "
            f"{100 * g['sampled']['ci'][1]:+.1f}]"
            for name, g in result["gains"].items()
        )
    return ""


@contextmanager
def _library_logging_off():
    """Trainers reconfigure logging (and print a line per logging step); keep the demo's output readable."""
    import io

    root = logging.getLogger()
    saved_level = root.level
    stdout = sys.stdout
    sys.stdout = io.StringIO() if os.environ.get("RRR_DEMO_VERBOSE") != "1" else stdout
    try:
        yield
    finally:
        sys.stdout = stdout
        root.setLevel(saved_level)
