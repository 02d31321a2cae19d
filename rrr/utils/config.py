"""Start-up checks shared by every rrr config that extends a TRL config (RRR GRPO, curriculum SFT)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing

from rrr.utils.cli import ConfigError


# ------------------------------------------------------------------------------------------------------------------
# Field types
# ------------------------------------------------------------------------------------------------------------------
@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, object, object], ...]:
    """``(name, annotation, default)`` of every init field of a dataclass, resolved once per class."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: check nothing rather than refuse a valid config
        return ()
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in hints:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append((f.name, hints[f.name], default))
    return tuple(out)


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _matches(value, tp) -> bool:
    """Whether ``value`` has type ``tp`` as far as the annotation says (unknown classes are not judged)."""
    if tp is typing.Any or tp is object:
        return True
    if tp is None or tp is type(None):
        return value is None
    if _is_union(tp):
        return any(_matches(value, arm) for arm in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return any(value == v and type(value) is type(v) for v in typing.get_args(tp))
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(tp)
        if origin is tuple and len(args) > 1 and Ellipsis not in args:  # a fixed-length tuple[int, str]
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(tp)
        return not args or all(_matches(v, args[1]) for v in value.values())
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return isinstance(value, tp) or any(value == m.value for m in tp)
    return True  # a class the recipe cannot spell (ParallelismConfig, ...): its own __post_init__ judges it


def _describe(tp) -> str:
    """A type in the words of a recipe: ``an integer``, ``true or false``, ``a list of strings``, ``null``."""
    if tp is None or tp is type(None):
        return "null"
    if _is_union(tp):
        return " or ".join(dict.fromkeys(_describe(arm) for arm in typing.get_args(tp)))
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_plural(args[0])}" if len(args) == 1 else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _plural(tp) -> str:
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}.get(tp, _describe(tp))


def _same(value, default) -> bool:
    try:
        return value is default or bool(value == default)
    except Exception:
        return False


def check_field_types(config) -> None:
    """Reject a config field whose value does not have its annotated type, naming the field and what it needs.

    ``HfArgumentParser`` converts command-line strings, but recipe values arrive as YAML objects and become argparse
    *defaults*, which are never type-checked: ``max_steps: [6]`` reached the trainer and failed there with
    ``TypeError: '>' not supported``. This reads every field's annotation (so it covers each inherited TRL and
    ``transformers`` field, and any field added later) and runs before the library's ``__post_init__`` sees the
    values. A value equal to the field's default is not judged: the library chose it. An integral float is accepted
    where an integer is meant only if it is written as one (``6``), so ``6.5`` steps never silently becomes 6.
    """
    for name, tp, default in _field_types(type(config)):
        value = getattr(config, name, None)
        if _same(value, default) or _matches(value, tp):
            continue
        if value is None and isinstance(default, str | list | tuple) and not default:
            continue  # argparse leaves an unset list-valued option (``debug``) at None: "empty" to the library too
        shown = json.dumps(value, default=str) if isinstance(value, list | dict | bool | None) else repr(value)
        raise ConfigError(
            f"{name} must be {_describe(tp)}, got {shown:.80} ({type(value).__name__}); fix `{name}:` in the recipe "
            f"or pass --{name} on the command line"
        )


def bf16_supported() -> bool:
    """A CUDA GPU with bf16 (Ampere or newer) is present."""
    try:
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    except Exception:
        return False


# ------------------------------------------------------------------------------------------------------------------
# bf16 and task options
# ------------------------------------------------------------------------------------------------------------------
def resolve_bf16(config) -> None:
    """bf16 defaults to "on if this machine can" (TRL's default, True, crashes every CPU run at start-up);
    an explicit ``bf16: true`` without a bf16 GPU is rejected with the fix.

    It is the first start-up check of every rrr config that extends a TRL config, so it first checks every field's
    type (:func:`check_field_types`): a check on ``bf16``, ``fp16`` or ``use_cpu`` (or TRL's own ``__post_init__``)
    must not misread a value of the wrong type.
    """
    check_field_types(config)
    if config.bf16 is None and not config.fp16:
        config.bf16 = bf16_supported() and not config.use_cpu
    elif config.bf16 and (config.use_cpu or not bf16_supported()):
        raise ConfigError(
            "bf16=True needs a GPU with bf16 support (Ampere or newer), and this run has none "
            f"({'use_cpu is set' if config.use_cpu else 'no such GPU found'}). "
            "For a CPU run set `bf16: false` in the recipe (or pass --bf16 false)."
        )


def parse_task_kwargs(value) -> dict | None:
    """``task_kwargs`` from YAML (a mapping) or the CLI (a JSON string)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"task_kwargs must be a JSON object, got {value!r}: {exc}") from None
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"task_kwargs must be a mapping, got {type(value).__name__}")
    return value
