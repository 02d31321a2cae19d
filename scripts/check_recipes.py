"""Check every training recipe and accelerate config under ``recipes/`` without training anything.

    python scripts/check_recipes.py                      # every recipes/**/config_*.yaml + recipes/accelerate_configs
    python scripts/check_recipes.py recipes/smoke/rrr/config_countdown.yaml   # just these files

For each recipe (``config_*.yaml``):

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
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a YAML mapping of keys to values, got {type(data).__name__}")
    return data


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


def build_configs(path: Path, overrides: list[str] | None = None):
    """``(RRRConfig, ModelConfig)`` from a recipe, exactly as ``train_grpo.py`` parses it, plus ``overrides``."""
    from trl import ModelConfig, TrlParser

    from rrr.training.config import RRRConfig

    parser = TrlParser((RRRConfig, ModelConfig))
    stderr = io.StringIO()
    with _restored_environ(), contextlib.redirect_stderr(stderr):
        try:
            return parser.parse_args_and_config(args=["--config", str(path), *(overrides or [])])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files to check (default: everything under recipes/)")
    ns = parser.parse_args(argv)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if ns.paths:
        kinds = {"accelerate_configs": check_accelerate_config, "sft": check_sft}
        checks = [(p, kinds.get(p.parent.name, check_recipe)) for p in ns.paths]
    else:
        checks = [(p, check_recipe) for p in recipe_paths()]
        checks += [(p, check_sft) for p in sft_recipe_paths()]
        checks += [(p, check_accelerate_config) for p in accelerate_config_paths()]
    if not checks:
        print(f"no recipes found under {RECIPES}")
        return 1
    failed = 0
    for path, check in checks:
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        try:
            check(path)
        except RecipeError as exc:
            failed += 1
            print(f"FAIL {shown}: {str(exc).removeprefix(f'{path}: ')}")
        else:
            print(f"ok   {shown}")
    print(f"{len(checks) - failed}/{len(checks)} ok")
    return 1 if failed else 0


if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
