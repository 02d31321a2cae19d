"""The one recipe checker: every YAML under ``recipes/`` is checked as what it is, without training anything.

    python scripts/check_recipes.py                      # every YAML under recipes/ (make check-recipes)
    python scripts/check_recipes.py recipes/smoke/rrr/config_countdown.yaml   # just these files

``tests/test_recipes.py`` runs the same checks, over the same files (:func:`all_recipe_paths`). What a file is comes
from where it lives (:func:`kind_of`); a YAML under ``recipes/`` that is none of these kinds is itself a failure, so
no recipe goes unchecked:

* ``rrr`` — a training recipe (``<model>/rrr/config_*.yaml``, the shared ``demo/rrr.yaml``, the ablation's
  ``rrr.yaml`` and ``outcome.yaml`` arms): the checks below;
* ``sft`` — a curriculum-SFT recipe (``<model>/sft/config_*.yaml``, the ablation's ``sft.yaml`` and
  ``reflection_sft.yaml`` arms): it parses into ``(CurriculumSFTConfig, ModelConfig)``;
* ``dpo`` — the ablation's ``reflection_dpo.yaml``: it parses into ``(DPOConfig, ModelConfig)``;
* ``demo`` — ``demo/config.yaml`` and ``ablation/tiny_student.yaml``: ``DemoConfig`` loads, and its RRR stage's
  ``RRRConfig``/``ModelConfig`` build as the pipeline builds them;
* ``ablation`` — ``ablation/*.yaml`` (but the student): ``AblationConfig`` loads and every arm recipe it names exists;
* ``eval``, ``mine``, ``curriculum`` — a driver recipe under ``eval/``, ``mine/`` or ``curriculum/`` (e.g.
  ``smoke/eval/countdown.yaml``): it loads into the driver's config (``EvalRunConfig``, ``MiningRunConfig``,
  ``CurriculumRunConfig``) exactly as ``rrr eval|mine|curriculum --config`` loads it, and its task constructs;
* ``accelerate`` — ``accelerate_configs/*.yaml``: below.

Every recipe is read by ``rrr.utils.config.load_yaml`` (``include:`` expanded), as the drivers read it.

For each training recipe:

1. the YAML is a mapping whose every top-level key is a field of ``RRRConfig`` (so of TRL's ``GRPOConfig``) or of
   TRL's ``ModelConfig``, or ``env``; an unknown key is named, with the closest field and the TRL 1.16 renames;
2. ``TrlParser((RRRConfig, ModelConfig)).parse_args_and_config`` builds both configs exactly as
   ``scripts/train_grpo.py`` does, so every type conversion and every ``__post_init__`` validation runs;
3. the task and its ``task_kwargs`` construct (``get_task``), and the vLLM settings are consistent (below).

Only the overrides this machine needs are passed, so on a GPU machine with vllm a GPU recipe is checked unchanged:

* ``--bf16 false`` when the recipe asks for bf16 and there is no bf16 GPU (``RRRConfig`` raises otherwise);
* ``--use_vllm false`` when the recipe asks for vLLM and vllm is not installed (``RRRConfig`` raises otherwise). That
  also skips ``RRRConfig``'s sleep-mode rule, so step 3 checks the recipe's vLLM keys itself.

No ``--output_dir`` override is needed: building the configs writes nothing (the trainer creates ``output_dir``).
The recipe's ``env:`` map, which ``TrlParser`` exports to ``os.environ``, is undone after each check.

Each accelerate config must be a YAML mapping with a valid ``distributed_type`` that accelerate itself can load.
Prints one line per file and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import io
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
ACCELERATE_CONFIGS = RECIPES / "accelerate_configs"

#: Keys of older open-r1 / TRL recipes that TRL 1.16 no longer accepts, with what to write instead.
RENAMED_KEYS = {
    "torch_dtype": "use `dtype`",
    "warmup_ratio": "use `warmup_steps` (a float < 1 is a ratio)",
    "max_prompt_length": "removed from GRPOConfig in TRL 1.16 (prompts are not truncated)",
    "overwrite_output_dir": "removed in transformers 5",
}


class RecipeError(ValueError):
    """A recipe or accelerate config that would not start a run; the message names the file and the problem."""


def recipe_paths(root: Path = RECIPES) -> list[Path]:
    """Every RRR recipe (``<model>/rrr/config_*.yaml``) under ``root``, sorted."""
    return sorted(root.glob("**/rrr/config_*.yaml"))


def sft_recipe_paths(root: Path = RECIPES) -> list[Path]:
    """Every curriculum-SFT recipe (``<model>/sft/config_*.yaml``) under ``root``, sorted."""
    return sorted(root.glob("**/sft/config_*.yaml"))


def check_sft(path: Path) -> None:
    """An SFT recipe parses into the configs ``train_sft.py`` builds (``rrr.curriculum.sft.check_sft_recipe``)."""
    from rrr.curriculum.sft import check_sft_recipe

    try:
        check_sft_recipe(str(path))
    except ValueError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def accelerate_config_paths(root: Path = ACCELERATE_CONFIGS) -> list[Path]:
    return sorted(root.glob("*.yaml"))


def _load_mapping(path: Path) -> dict:
    from rrr.utils.cli import ConfigError
    from rrr.utils.config import load_yaml

    try:
        return load_yaml(str(path))
    except ConfigError as exc:
        raise RecipeError(f"{path}: {exc}") from None


def allowed_keys() -> set[str]:
    """Top-level keys a recipe may use: the fields of RRRConfig and ModelConfig, plus ``env``."""
    from trl import ModelConfig

    from rrr.training.config import RRRConfig

    return {f.name for f in dataclasses.fields(RRRConfig)} | {f.name for f in dataclasses.fields(ModelConfig)} | {"env"}


def _check_keys(path: Path, data: dict) -> None:
    allowed = allowed_keys()
    unknown = [key for key in data if key not in allowed]
    if not unknown:
        return
    hints = []
    for key in unknown:
        if key in RENAMED_KEYS:
            hints.append(f"{key!r}: {RENAMED_KEYS[key]}")
        else:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise RecipeError(
        f"{path}: unknown key(s) {', '.join(hints)}; a recipe key must be a field of RRRConfig (GRPOConfig) or "
        "ModelConfig, or `env`"
    )


def needed_overrides(data: dict) -> list[str]:
    """CLI overrides that neutralise hardware-only settings this machine cannot honour (see the module docstring)."""
    from rrr.generation.vllm import vllm_available

    overrides = []
    if data.get("bf16") and not data.get("use_cpu") and not _bf16_gpu():
        overrides += ["--bf16", "false"]
    if data.get("use_vllm") and not vllm_available():
        overrides += ["--use_vllm", "false"]
    return overrides


def _bf16_gpu() -> bool:
    """The test RRRConfig applies to ``bf16: true``: a CUDA GPU with bf16 support."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@contextlib.contextmanager
def _restored_environ():
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_configs(path: Path, overrides: list[str] | None = None, classes=None):
    """``(RRRConfig, ModelConfig)`` (or ``classes``) from a recipe, exactly as ``train_grpo.py`` parses it."""
    from trl import ModelConfig

    from rrr.training.config import RRRConfig
    from rrr.utils.config import parse_trl_args

    stderr = io.StringIO()
    with _restored_environ(), contextlib.redirect_stderr(stderr):
        try:
            return parse_trl_args(classes or (RRRConfig, ModelConfig), ["--config", str(path), *(overrides or [])])
        except SystemExit:  # argparse reports bad values on stderr and exits
            lines = stderr.getvalue().strip().splitlines()
            message = lines[-1].split(" error: ", 1)[-1] if lines else "argument parsing failed"
            raise RecipeError(f"{path}: {message}") from None
        except Exception as exc:
            raise RecipeError(f"{path}: {type(exc).__name__}: {exc}") from exc


def _check_vllm(path: Path, data: dict, args) -> None:
    if not data.get("use_vllm"):
        return
    # RRRConfig enforces this only when use_vllm stays on; repeated here for machines where it was overridden.
    if data.get("vllm_enable_sleep_mode"):
        raise RecipeError(f"{path}: vllm_enable_sleep_mode must be false with RRR (three generations per step)")
    budgets = args.attempt_max_tokens + args.max_completion_length + args.retry_max_tokens
    length = data.get("vllm_max_model_length")
    if length is not None and length <= budgets:
        raise RecipeError(
            f"{path}: vllm_max_model_length={length} cannot hold a retry prompt: attempt_max_tokens + "
            f"max_completion_length + retry_max_tokens = {budgets} before the task and instructions"
        )


def check_recipe(path) -> None:
    """Raise ``RecipeError`` (naming the file and the problem) unless the recipe would start a run."""
    path = Path(path)
    data = _load_mapping(path)
    _check_keys(path, data)
    if "env" in data and not isinstance(data["env"], dict):
        raise RecipeError(f"{path}: `env` must be a mapping of variable names to values")
    args, _model_args = build_configs(path, needed_overrides(data))
    from rrr.tasks import get_task

    try:
        get_task(args.task, **(args.task_kwargs or {}))
    except Exception as exc:
        raise RecipeError(f"{path}: task {args.task!r} with task_kwargs {args.task_kwargs}: {exc}") from exc
    _check_vllm(path, data, args)


def check_accelerate_config(path) -> None:
    """Raise ``RecipeError`` unless ``path`` is an accelerate config that accelerate can load."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    path = Path(path)
    data = _load_mapping(path)
    valid = [d.value for d in DistributedType]
    if data.get("distributed_type") not in valid:
        raise RecipeError(f"{path}: distributed_type must be one of {valid}, got {data.get('distributed_type')!r}")
    try:
        load_config_from_file(str(path))
    except Exception as exc:
        raise RecipeError(f"{path}: accelerate cannot load it: {type(exc).__name__}: {exc}") from exc


def check_trl_arm(path, classes, overrides: list[str]) -> None:
    """An ablation arm recipe (SFT or DPO) parses into ``classes`` with the runner's overrides."""
    path = Path(path)
    data = _load_mapping(path)
    overrides = list(overrides) + (["--bf16", "false"] if data.get("bf16") and not _bf16_gpu() else [])
    build_configs(path, overrides, classes)


def check_demo(path) -> None:
    """A demo recipe loads into ``DemoConfig`` and its RRR stage's configs build as the pipeline builds them."""
    import tempfile

    from rrr.demo.config import DemoConfig
    from rrr.demo.pipeline import DemoPipeline
    from rrr.utils.cli import UsageError

    path = Path(path)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = DemoConfig.from_yaml(str(path), {"output_dir": tmp})
            if config.rrr:
                DemoPipeline(config, progress=lambda line: None).rrr_args(os.path.join(tmp, "rrr"))
    except (UsageError, ValueError) as exc:
        raise RecipeError(f"{path}: {exc}") from None


def check_ablation(path) -> None:
    """An ablation recipe loads into ``AblationConfig``; its arm recipes and its student recipe exist."""
    from rrr.ablation.runner import AblationConfig

    path = Path(path)
    try:
        config = AblationConfig.from_yaml(str(path))
    except (ValueError, OSError) as exc:
        raise RecipeError(f"{path}: {exc}") from None
    names = {"rrr" if arm == "sft_rrr" else arm for arm in config.arms if arm != "base"}  # sft_rrr uses rrr.yaml
    for name in sorted(names):
        if not (ROOT / config.recipes / f"{name}.yaml").exists():
            raise RecipeError(f"{path}: arm recipe {config.recipes}/{name}.yaml is missing")
    if config.student and not (ROOT / config.student).exists():
        raise RecipeError(f"{path}: student recipe {config.student} is missing")


def _driver_config_class(kind: str):
    if kind == "eval":
        from rrr.evaluation.evaluate import EvalRunConfig

        return EvalRunConfig
    if kind == "mine":
        from rrr.evaluation.mining import MiningRunConfig

        return MiningRunConfig
    from rrr.curriculum.pipeline import CurriculumRunConfig

    return CurriculumRunConfig


def check_driver_recipe(path, kind: str) -> None:
    """An eval/mine/curriculum recipe loads into its driver's config as ``--config`` loads it; its task constructs.

    Nothing is loaded or written: the model and the output directory are the run's to check when it starts."""
    from rrr.tasks import get_task
    from rrr.utils.cli import ConfigError
    from rrr.utils.config import load

    path = Path(path)
    try:
        config = load(_driver_config_class(kind), str(path))
    except ConfigError as exc:
        raise RecipeError(f"{path}: {str(exc).removeprefix(f'{path}: ')}") from None
    try:
        get_task(config.task, **config.task_kwargs)
    except Exception as exc:
        raise RecipeError(f"{path}: task {config.task!r} with task_kwargs {config.task_kwargs}: {exc}") from exc


def _sft_classes():
    from trl import ModelConfig

    from rrr.curriculum.sft import CurriculumSFTConfig

    return (CurriculumSFTConfig, ModelConfig)


def _dpo_classes():
    from trl import DPOConfig, ModelConfig

    return (DPOConfig, ModelConfig)


#: Driver recipes, by the directory they live in (``recipes/<anything>/<kind>/*.yaml``).
DRIVER_KINDS = ("eval", "mine", "curriculum")

#: What each kind of file is checked with (see the module docstring).
CHECKS = {
    "rrr": check_recipe,
    "sft": check_sft,
    "sft-arm": lambda p: check_trl_arm(p, _sft_classes(), ["--dataset_path", "unused"]),
    "dpo": lambda p: check_trl_arm(p, _dpo_classes(), []),
    "demo": check_demo,
    "ablation": check_ablation,
    **{kind: functools.partial(check_driver_recipe, kind=kind) for kind in DRIVER_KINDS},
    "accelerate": check_accelerate_config,
}


def kind_of(path) -> str | None:
    """Which kind of recipe ``path`` is, from where it lives (None: not a kind this checker knows)."""
    path = Path(path)
    parts = path.resolve().parts
    if path.parent.name == "accelerate_configs":
        return "accelerate"
    if path.parent.name in DRIVER_KINDS and "ablation" not in parts:
        return path.parent.name
    if path.parent.name == "rrr" and path.name.startswith("config_"):
        return "rrr"
    if path.parent.name == "sft" and path.name.startswith("config_"):
        return "sft"
    if "ablation" in parts and path.parent.name != "ablation":  # an arm recipe
        return {"rrr": "rrr", "outcome": "rrr", "sft": "sft-arm", "reflection_sft": "sft-arm"}.get(
            path.stem, "dpo" if path.stem == "reflection_dpo" else None
        )
    if path.parent.name == "ablation":
        return "demo" if path.stem.endswith("_student") else "ablation"
    if path.parent.name == "demo":
        return {"config": "demo", "rrr": "rrr"}.get(path.stem)
    return None


def all_recipe_paths(root: Path = RECIPES) -> list[Path]:
    """Every YAML file under ``root``, sorted: the checker's and the test suite's list."""
    return sorted([*root.glob("**/*.yaml"), *root.glob("**/*.yml")])


def check_file(path) -> None:
    """Check ``path`` as the kind of recipe it is; a YAML under ``recipes/`` of no known kind is a
    :class:`RecipeError` (one outside it is checked as a training recipe)."""
    kind = kind_of(path)
    if kind is None and not Path(path).resolve().is_relative_to(RECIPES.resolve()):
        kind = "rrr"  # a file named on the command line, outside recipes/: a training recipe, as train_grpo reads it
    if kind is None:
        raise RecipeError(
            f"{path}: not a kind of recipe the checker knows (rrr/sft/demo/ablation/eval/mine/curriculum/accelerate, "
            "by location): add it to rrr.utils.recipes.kind_of so it is checked"
        )
    CHECKS[kind](path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files to check (default: every YAML under recipes/)")
    ns = parser.parse_args(argv)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    paths = ns.paths or all_recipe_paths()
    if not paths:
        print(f"no recipes found under {RECIPES}")
        return 1
    failed = 0
    for path in paths:
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        try:
            check_file(path)
        except RecipeError as exc:
            failed += 1
            print(f"FAIL {shown}: {str(exc).removeprefix(f'{path}: ')}")
        else:
            print(f"ok   {shown} ({kind_of(path)})")
    print(f"{len(paths) - failed}/{len(paths)} ok")
    return 1 if failed else 0
