"""Run the ablation arms with shared splits and one evaluation, skipping arms that already finished.

Layout of ``output_dir``::

    data/            shared splits (train / test examples) and the teacher curriculum
    <arm>/model/     the trained model (absent for base)
    <arm>/eval/      results.json, samples.jsonl, results.md (the shared evaluation)
    <arm>/config.json  the arm's resolved configs (recipe + the runner's overrides, every field)
    <arm>/arm.json   cost: steps, generated tokens, wall time, and the evaluation's metrics — written last
    ablation.md / ablation.json / ablation.png
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rrr.evaluation.evaluate import EvalConfig
from rrr.evaluation.frozen import FrozenConfig
from rrr.utils.config import apply_overrides, build, documented, load_yaml, parse_trl_args
from rrr.utils.io import atomic_write_json
from rrr.utils.outputs import claim_output_dir, output_lock

logger = logging.getLogger("rrr.ablation")

#: The ownership kind of an ablation's output directory (``rrr.utils.outputs``).
OUTPUT_KIND = "ablation"
ARMS = ("base", "sft", "rrr", "sft_rrr", "outcome", "reflection_sft", "reflection_dpo")
#: The arm whose trained model each arm starts from.
STARTS_FROM = {"sft_rrr": "sft"}


@documented
@dataclass
class AblationConfig:
    r"""One ablation: a base model, a task, shared data, the arms, and where their recipes live.

    task (`str`):
        Task name or `package.module:ClassName`, the same for every arm (required: the arm recipes in `recipes` are
        written for one task, so the recipe names it; `recipes/ablation/tiny.yaml` names the demo's).
    task_kwargs (`dict`):
        Options of the task's constructor, e.g. `{strict: true}`.
    model (`str`, *optional*):
        Base model: hub id or local directory. Leave unset when `student` builds it.
    student (`str`, *optional*):
        A demo recipe (`rrr.demo`, e.g. `recipes/ablation/tiny_student.yaml`) whose SFT student is the base model,
        built once under `<output_dir>/student`. The tiny default's stand-in for a pretrained model: one that can
        attempt the task but was never taught to reflect. Mutually exclusive with `model`.
    output_dir (`str`, defaults to `"runs/ablation"`):
        Where the shared data, every arm and the report go.
    arms (`list[str]`):
        Arms to run (a subset of `ARMS`, run in that order; `sft_rrr` adds `sft`).
    recipes (`str`, defaults to `"recipes/ablation/tiny"`):
        Directory with one recipe per trained arm: rrr.yaml, sft.yaml, outcome.yaml, reflection_sft.yaml,
        reflection_dpo.yaml (sft_rrr uses rrr.yaml).
    source (`str`, *optional*, defaults to `"generated"`):
        Data source of the shared splits (`task.load(source=...)`).
    n_train (`int`, defaults to `256`):
        Shared training problems (the SFT curriculum's and the RL arms').
    n_test (`int`, defaults to `64`):
        Held-out problems every arm is evaluated on.
    seed (`int`, defaults to `0`):
        Seed of the splits, of every arm's training and of the evaluation.
    teacher (`str`, defaults to `"oracle"`):
        Teacher of the SFT arm's curriculum (`oracle` runs offline; see `rrr.curriculum.make_teacher`).
    curriculum (`dict`):
        `rrr.curriculum.CurriculumConfig` fields for the SFT arm's curriculum, e.g. `{balance: false, retry_rows:
        true}`. Its reflection rows (when any survive) are trained with the solutions.
    self_reflection_group (`int`, defaults to `4`):
        Reflections per failure when collecting the base model's own reflections (reflection SFT / DPO arms).
    eval (`EvalConfig`):
        The evaluation of every arm (`rrr.evaluation.EvalConfig`; its `task`, `split`, `n`, `seed` and `source` are
        the ablation's). Its token budgets are the ablation's one stated budget: the evaluation, the base model's own
        reflections (reflection SFT/DPO data) and the frozen comparison all use them.
    frozen (`FrozenConfig`):
        The paired comparison on the base model's frozen held-out failures (`rrr.evaluation.frozen.FrozenConfig`;
        its token budgets are `eval`'s, its seed the ablation's). `{samples: 0}`: greedy only.
    """

    task: str | None = None
    task_kwargs: dict = field(default_factory=dict)
    model: str | None = None
    student: str | None = None
    output_dir: str = "runs/ablation"
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    recipes: str = "recipes/ablation/tiny"
    source: str | None = "generated"
    n_train: int = 256
    n_test: int = 64
    seed: int = 0
    teacher: str = "oracle"
    curriculum: dict = field(default_factory=dict)
    self_reflection_group: int = 4
    eval: EvalConfig = field(default_factory=EvalConfig)
    frozen: FrozenConfig = field(default_factory=FrozenConfig)

    def __post_init__(self):
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
        if "sft_rrr" in self.arms and "sft" not in self.arms:
            self.arms = ["sft", *self.arms]  # sft_rrr starts from the SFT model
        self.arms = [a for a in ARMS if a in self.arms]
        if bool(self.model) == bool(self.student):
            raise ValueError(
                "set exactly one of `model` (a hub id or local directory) and `student` (a demo recipe that builds "
                f"the base model); got model={self.model!r}, student={self.student!r}"
            )
        from rrr.curriculum import CurriculumConfig

        unknown = set(self.curriculum) - set(CurriculumConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"curriculum: unknown CurriculumConfig field(s) {sorted(unknown)}")
        if not self.task:  # no default: the arm recipes are written for one task, which the recipe names
            raise ValueError("set `task` (a task name or package.module:ClassName): the task the arm recipes are for")
        if isinstance(self.eval, dict):  # built in Python with a mapping, as before the typed sections
            self.eval = build(EvalConfig, self.eval, "eval")
        if isinstance(self.frozen, dict):
            self.frozen = build(FrozenConfig, self.frozen, "frozen")

    def eval_config(self) -> EvalConfig:
        """The evaluation every arm gets: ``eval`` on the ablation's task, test split, ``n_test``, seed and source."""
        return dataclasses.replace(
            self.eval,
            task=self.task,
            task_kwargs=dict(self.task_kwargs),
            split="test",
            n=self.n_test,
            seed=self.seed,
            source=self.source,
        )

    def frozen_config(self) -> FrozenConfig:
        """The frozen comparison: ``frozen``'s samples and temperature with ``eval``'s budgets and the seed."""
        return dataclasses.replace(
            self.frozen,
            reflection_max_tokens=self.eval.reflection_max_tokens,
            retry_max_tokens=self.eval.retry_max_tokens,
            seed=self.seed,
        )

    @classmethod
    def from_yaml(cls, path: str, sets: dict[str, Any] | None = None, **overrides) -> AblationConfig:
        """The recipe at ``path``, then the dotted ``sets`` (``--set``), then the named ``overrides`` that are not
        None (``--task``, ``--model``, ...)."""
        data = apply_overrides(load_yaml(path), sets or {})
        if overrides.get("model"):
            data.pop("student", None)  # --model replaces the recipe's built student
        data.update({k: v for k, v in overrides.items() if v is not None})
        return build(cls, data, path)


def _recipe(config: AblationConfig, name: str) -> str:
    path = os.path.join(config.recipes, f"{name}.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(f"arm recipe {path} is missing (recipes dir: {config.recipes})")
    return path


def _parse(classes, recipe: str, overrides: dict[str, Any]):
    """Parse an arm's recipe plus the runner's overrides; save the resolved configs as ``<arm>/config.json``."""
    argv = ["--config", recipe]
    for key, value in overrides.items():
        if value is None:
            continue
        argv += [f"--{key}", json.dumps(value) if isinstance(value, dict) else str(value)]
    parsed = parse_trl_args(classes, argv)  # the recipe's include: (the shared RRR run) is expanded
    resolved = {
        "recipe": recipe,
        "overrides": {k: v for k, v in overrides.items() if v is not None},
        **{type(obj).__name__: obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj) for obj in parsed[:2]},
    }
    arm_dir = os.path.dirname(os.path.normpath(overrides["output_dir"]))
    atomic_write_json(os.path.join(arm_dir, "config.json"), json.loads(json.dumps(resolved, default=str)))
    return parsed


# ----------------------------------------------------------------------------------------------------------------------
def run_ablation(config: AblationConfig, progress: bool = True) -> dict:
    """Train and evaluate every arm (finished arms are skipped); write the table, JSON and plot.

    ``output_dir`` is locked for the run and must be new, empty or an earlier ablation (``rrr.utils.outputs``).
    """
    with output_lock(config.output_dir):
        # an earlier ablation, or one prepared by hand with the documented hand-over file of the reflection arms
        legacy = ("ablation_config.json", os.path.join("data", "self_reflections.json"))
        claim_output_dir(config.output_dir, OUTPUT_KIND, legacy=legacy)
        return _run_ablation(config, progress)


def _run_ablation(config: AblationConfig, progress: bool) -> dict:
    from rrr.ablation.report import write_report
    from rrr.tasks import get_task

    atomic_write_json(os.path.join(config.output_dir, "ablation_config.json"), asdict(config))
    task = get_task(config.task, **config.task_kwargs)
    if config.student:
        config.model = _build_student(config)
    train_path = _shared_split(config, task, "train", config.n_train)
    results = {}
    for arm in config.arms:
        arm_dir = os.path.join(config.output_dir, arm)
        done = os.path.join(arm_dir, "arm.json")
        if os.path.exists(done):
            logger.info("arm %s already finished: skipped", arm)
            with open(done) as f:
                results[arm] = json.load(f)
            continue
        logger.info("arm %s: training", arm)
        start = time.time()
        cost = _train_arm(arm, config, task, train_path, arm_dir, results)
        model_dir = cost.pop("model_dir")
        evaluation = _evaluate(config, model_dir, os.path.join(arm_dir, "eval"), progress) if model_dir else None
        record = {"arm": arm, "model_dir": model_dir, "wall_seconds": round(time.time() - start, 1), **cost}
        record["eval"] = evaluation["metrics"] if evaluation else None
        atomic_write_json(done, record)
        results[arm] = record
    frozen = _frozen_comparison(config, task, results)
    return write_report(config, results, frozen)


def _build_student(config: AblationConfig) -> str:
    """The base model of a ``student:`` ablation: the demo recipe's SFT student (built once, then reused)."""
    from rrr.demo import DemoConfig, DemoPipeline

    demo = DemoConfig.from_yaml(config.student, {"output_dir": os.path.join(config.output_dir, "student")})
    logger.info("base model: building the SFT student of %s in %s", config.student, demo.output_dir)
    return DemoPipeline(demo, progress=lambda line: logger.info("%s", line)).run(until="sft")["model_dir"]


def _shared_split(config: AblationConfig, task, split: str, n: int) -> str:
    """Materialise a split once (jsonl), so every arm trains on exactly the same examples."""
    path = os.path.join(config.output_dir, "data", f"{split}.jsonl")
    if not os.path.exists(path):
        from rrr.utils.io import atomic_write_text

        rows = [dict(ex) for ex in task.load(split=split, n=n, seed=config.seed, source=config.source)]
        atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))
    return path


def _evaluate(config: AblationConfig, model_dir: str, out: str, progress: bool) -> dict:
    from rrr.evaluation import evaluate_model

    fields = {k: v for k, v in asdict(config.eval_config()).items() if k not in ("task", "task_kwargs")}
    return evaluate_model(
        model_dir,
        config.task,
        backend="hf",
        output_dir=out,
        progress=progress,
        task_kwargs=config.task_kwargs,
        **fields,
    )


def _frozen_comparison(config: AblationConfig, task, results: dict) -> dict | None:
    """Every arm reflects on the base model's failed first attempts on the test set; paired differences from base.

    The 2nd-try column mixes "fails different problems" with "recovers better"; this holds the failures fixed
    (``rrr.evaluation.frozen``). Each arm's per-failure scores are cached in ``<arm>/frozen.json`` (recomputed when
    the settings or the base failures change). None when the base arm was not evaluated.
    """
    from rrr.evaluation import make_generator
    from rrr.evaluation.frozen import FrozenScores, load_frozen_failures, paired_gains, score_on_frozen
    from rrr.utils.io import atomic_write_text

    base = results.get("base")
    if not base or not base.get("eval"):
        return None
    settings = config.frozen_config()  # eval's budgets, the ablation's seed
    test = [dict(ex) for ex in task.load(split="test", n=config.n_test, seed=config.seed, source=config.source)]
    examples, attempts = load_frozen_failures(
        os.path.join(config.output_dir, "base", "eval", "samples.jsonl"), test, task
    )
    if not examples:
        return None
    spec = {"settings": asdict(settings), "failures": [task.example_id(ex) for ex in examples]}
    scores: dict[str, FrozenScores] = {}
    for arm, record in results.items():
        if not record.get("model_dir") or not record.get("eval"):
            continue
        path = os.path.join(config.output_dir, arm, "frozen.json")
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("spec") == spec:
                scores[arm] = FrozenScores(**saved["scores"])
                continue
        logger.info("arm %s: reflecting on the base model's %d frozen failures", arm, len(examples))
        generator, _ = make_generator(record["model_dir"], "hf", batch_size=config.eval.batch_size)
        scores[arm] = score_on_frozen(task, generator, examples, attempts, settings)
        rows = scores[arm].sample_rows(arm)
        atomic_write_text(
            os.path.join(config.output_dir, arm, "frozen_samples.jsonl"),
            "".join(json.dumps(r) + "\n" for r in rows),
        )
        atomic_write_json(path, {"spec": spec, "scores": scores[arm].scores()})
    gains = paired_gains(scores, reference="base")
    arms = {arm: {**s.summary(), "gain_vs_base": gains.get(arm)} for arm, s in scores.items()}
    for arm, start in STARTS_FROM.items():  # e.g. SFT -> RRR against the SFT model it started from
        if arm in scores and start in scores:
            arms[arm]["gain_vs_start"] = {"start": start, **paired_gains(scores, reference=start)[arm]}
    return {"n": len(examples), "settings": asdict(settings), "arms": arms}


def _train_arm(arm: str, config: AblationConfig, task, train_path: str, arm_dir: str, done: dict) -> dict:
    model_dir = os.path.join(arm_dir, "model")
    if arm == "base":
        return {"model_dir": config.model, "steps": 0, "generated_tokens": 0}
    if arm in ("rrr", "sft_rrr"):
        start_model = done["sft"]["model_dir"] if arm == "sft_rrr" else config.model
        return _train_rrr(config, train_path, start_model, model_dir)
    if arm == "outcome":
        budget = done.get("rrr", {}).get("generated_tokens")
        return _train_outcome(config, train_path, model_dir, budget)
    if arm == "sft":
        data, reflections = _teacher_curriculum(config, task, train_path)
        return _train_sft(config, "sft", data, model_dir, reflections)
    # the student's own reflections
    sft_rows, dpo_rows, stats = _self_reflections(config, task, train_path)
    if arm == "reflection_sft":
        if not sft_rows:
            return {"model_dir": None, "skipped": "no reflection of the base model led to a passing retry", **stats}
        from rrr.curriculum.dataset import save_rows

        path = os.path.join(arm_dir, "data")
        save_rows(sft_rows, path)
        cost = _train_sft(config, "reflection_sft", path, model_dir)
        cost["generated_tokens"] = stats["generated_tokens"]
        return cost
    if not dpo_rows:
        return {"model_dir": None, "skipped": "no failure had both a passing and a failing reflection", **stats}
    return _train_dpo(config, dpo_rows, model_dir, stats)


def _train_rrr(config, train_path, start_model, model_dir) -> dict:
    from rrr.training import RRRConfig, train

    args, model_args = _parse(
        (RRRConfig, __import__("trl").ModelConfig),
        _recipe(config, "rrr"),
        {
            "model_name_or_path": start_model,
            "output_dir": model_dir,
            "task": config.task,
            "task_kwargs": config.task_kwargs or None,
            "dataset_source": train_path,
            "seed": config.seed,
        },
    )
    summary = train(args, model_args)
    return {
        "model_dir": model_dir,
        "steps": summary["global_step"],
        "generated_tokens": summary["generated_tokens"],
        "train_seconds": summary["train_seconds"],
    }


def _train_outcome(config, train_path, model_dir, budget) -> dict:
    from trl import ModelConfig

    from rrr.training import RRRConfig
    from rrr.training.outcome import train_outcome

    args, model_args = _parse(
        (RRRConfig, ModelConfig),
        _recipe(config, "outcome"),
        {
            "model_name_or_path": config.model,
            "output_dir": model_dir,
            "task": config.task,
            "task_kwargs": config.task_kwargs or None,
            "dataset_source": train_path,
            "seed": config.seed,
        },
    )
    summary = train_outcome(args, model_args, token_budget=budget)
    return {
        "model_dir": model_dir,
        "steps": summary["global_step"],
        "generated_tokens": summary["generated_tokens"],
        "train_seconds": summary["train_seconds"],
        "token_budget": budget,
    }


def _teacher_curriculum(config, task, train_path) -> tuple[str, str | None]:
    """The teacher's curriculum on the shared training problems: (solutions path, reflection rows path or None)."""
    from rrr.curriculum import CurriculumConfig, build_curriculum, make_teacher
    from rrr.curriculum.dataset import REFLECTION_DIRNAME, SFT_DIRNAME
    from rrr.curriculum.prompts import initial_strategy
    from rrr.utils.io import read_jsonl

    out = os.path.join(config.output_dir, "data", "curriculum")
    sft_path, reflection_path = os.path.join(out, SFT_DIRNAME), os.path.join(out, REFLECTION_DIRNAME)
    if not os.path.exists(sft_path):
        teacher = make_teacher(config.teacher, task=task, cache_dir=os.path.join(config.output_dir, "data", "cache"))
        curriculum = CurriculumConfig(**{"seed": config.seed, **config.curriculum})
        build_curriculum(task, teacher, read_jsonl(train_path), initial_strategy(task), out, curriculum)
    return sft_path, reflection_path if os.path.exists(reflection_path) else None


def _train_sft(config, recipe_name, data_path, model_dir, reflection_path: str | None = None) -> dict:
    from trl import ModelConfig

    from rrr.curriculum import CurriculumSFTConfig, train_sft

    args, model_args = _parse(
        (CurriculumSFTConfig, ModelConfig),
        _recipe(config, recipe_name),
        {
            "model_name_or_path": config.model,
            "output_dir": model_dir,
            "dataset_path": data_path,
            "reflection_dataset_path": reflection_path,
            "seed": config.seed,
        },
    )
    if getattr(model_args, "use_peft", False):
        args.merge = True  # downstream arms (sft_rrr) and the evaluation take a plain model directory
    summary = train_sft(args, model_args)
    return {
        "model_dir": model_dir,
        "steps": summary.get("global_step"),
        "generated_tokens": 0,
        "train_seconds": summary.get("train_seconds"),
    }


def _self_reflections(config, task, train_path):
    """The base student's reflections on its own training failures (collected once, shared by both arms)."""
    from rrr.ablation.reflection_data import collect_self_reflections
    from rrr.evaluation import make_generator
    from rrr.utils.io import read_jsonl

    cache = os.path.join(config.output_dir, "data", "self_reflections.json")
    if os.path.exists(cache):
        with open(cache) as f:
            data = json.load(f)
        return data["sft"], data["dpo"], data["stats"]
    generator, _ = make_generator(config.model, "hf")
    sft, dpo, stats = collect_self_reflections(  # the evaluation's budgets: the one stated budget
        task,
        generator,
        read_jsonl(train_path),
        group=config.self_reflection_group,
        attempt_tokens=config.eval.attempt_max_tokens,
        reflection_tokens=config.eval.reflection_max_tokens,
        retry_tokens=config.eval.retry_max_tokens,
    )
    atomic_write_json(cache, {"sft": sft, "dpo": dpo, "stats": stats})
    return sft, dpo, stats


def _train_dpo(config, pairs, model_dir, stats) -> dict:
    from trl import DPOConfig, ModelConfig

    from rrr.ablation.dpo import train_reflection_dpo

    args, model_args = _parse(
        (DPOConfig, ModelConfig),
        _recipe(config, "reflection_dpo"),
        {"model_name_or_path": config.model, "output_dir": model_dir, "seed": config.seed},
    )
    summary = train_reflection_dpo(args, model_args, pairs)
    return {
        "model_dir": model_dir,
        "steps": summary["global_step"],
        "generated_tokens": stats["generated_tokens"],
        "train_seconds": summary["train_seconds"],
    }
