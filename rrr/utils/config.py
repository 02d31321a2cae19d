"""The one config system: how every rrr config is read, overridden, type-checked and documented.

* **Reading**: :func:`load_yaml` reads a recipe (``include: other.yaml`` merges another file under it, e.g. the demo
  and the tiny ablation share ``recipes/demo/rrr.yaml``); :func:`build` / :func:`load` turn a mapping into a typed
  dataclass, nested sections into the library's own configs under their real names (the demo's ``eval`` is an
  ``EvalConfig``), unknown keys and wrong types into one :class:`ConfigError` line.
* **Overriding**: ``--set key=value`` on every driver (:func:`add_set_argument`, :func:`parse_set`,
  :func:`apply_overrides`): YAML-typed values, dotted keys for nested sections. The TRL drivers (train, SFT) keep
  TRL's own ``--field value`` flags: :func:`parse_trl_args` merges ``--set`` into the recipe, which TRL's parser then
  takes as its defaults, as it takes a ``--config`` file.
* **Checking**: :func:`check_field_types` checks every field of a TRL-based config against its annotation before
  TRL's ``__post_init__`` sees it; :func:`check_fields` checks a mapping of such fields (a recipe section) without
  constructing anything.
* **Documenting**: each field once, in its class docstring (TRL's format); :func:`documented` makes ``--help`` print
  that text (``tests/test_config.py`` checks every field of every config has it).
"""

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


# ------------------------------------------------------------------------------------------------------------------
# The one config loader: YAML (with `include:`) -> `--set key=value` overrides -> typed dataclasses
# ------------------------------------------------------------------------------------------------------------------
#: A mapping key whose value (a path, or a list of paths, relative to the file it is written in) is loaded first and
#: overridden by the mapping's other keys: how the demo and the tiny ablation share one RRR recipe.
INCLUDE_KEY = "include"


def _read_yaml(path: str):
    import yaml

    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None


def merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, mapping by mapping (a nested section is merged key by key, any other value replaced)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_includes(data, base_dir: str, seen: tuple[str, ...] = ()):
    """Expand every ``include:`` in ``data`` (at any depth), paths relative to ``base_dir``; cycles are an error."""
    import os

    if not isinstance(data, dict):
        return data
    data = {key: resolve_includes(value, base_dir, seen) for key, value in data.items()}
    if INCLUDE_KEY not in data:
        return data
    paths = data.pop(INCLUDE_KEY)
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"`{INCLUDE_KEY}:` must be a path or a list of paths, got {paths!r}")
    base: dict = {}
    for rel in paths:
        path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(rel)))
        if path in seen:
            raise ConfigError(f"`{INCLUDE_KEY}: {rel}` includes itself ({' -> '.join((*seen, path))})")
        included = _read_yaml(path)
        if not isinstance(included, dict):
            raise ConfigError(f"{path} (included) must be a YAML mapping, got {type(included).__name__}")
        base = merge(base, resolve_includes(included, os.path.dirname(path), (*seen, path)))
    return merge(base, data)


def load_yaml(path: str) -> dict:
    """A recipe as a mapping, its ``include:`` files expanded; a missing file, bad YAML or a non-mapping is one
    :class:`ConfigError` line naming the file."""
    import os

    data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a YAML mapping of keys to values, got {type(data).__name__}")
    return resolve_includes(data, os.path.dirname(os.path.abspath(path)), (os.path.abspath(path),))


def parse_set(items: list[str] | None) -> dict[str, object]:
    """``["rrr.max_steps=100", "control.enabled=true"]`` -> ``{"rrr.max_steps": 100, "control.enabled": True}``.

    Values are YAML (``true``, ``1e-4``, ``[a, b]``, ``{strict: true}``), so a value is typed as it would be in the
    recipe. The same ``--set KEY=VALUE`` option exists on every driver (:func:`add_set_argument`).
    """
    import yaml

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. --set rrr.max_steps=100), got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item}: the value is not valid YAML: {' '.join(str(exc).split())}") from None
    return out


def apply_overrides(data: dict, overrides: dict[str, object]) -> dict:
    """``data`` with each dotted ``key`` set (``rrr.max_steps`` sets ``data["rrr"]["max_steps"]``); a copy."""
    out = merge({}, data)
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is {child!r}, not a section with fields")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def add_set_argument(parser) -> None:
    """The ``--set KEY=VALUE`` option every driver has (repeatable; dotted keys for nested sections)."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set rrr.max_steps=100 (repeatable; dotted keys for sections; YAML "
        "values)",
    )


def _unknown(where: str, keys, valid) -> ConfigError:
    import difflib

    hints = []
    for key in keys:
        close = difflib.get_close_matches(str(key), list(valid), n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    shown = f"; valid keys: {', '.join(sorted(valid))}" if len(valid) <= 40 else " (not a field of this config)"
    return ConfigError(f"{where}: unknown key(s) {', '.join(hints)}{shown}")


def _coerce(value, tp):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string: a number-typed field takes it as the number it spells."""
    wants_float = tp is float or (_is_union(tp) and float in typing.get_args(tp))
    if wants_float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_value(where: str, value, tp, default=dataclasses.MISSING):
    """``value`` (coerced as :func:`_coerce` says) if it has type ``tp``; else a :class:`ConfigError` naming ``where``."""
    value = _coerce(value, tp)
    if _same(value, default) or _matches(value, tp):
        return value
    shown = json.dumps(value, default=str) if isinstance(value, list | dict | bool | None) else repr(value)
    raise ConfigError(f"{where} must be {_describe(tp)}, got {shown:.80} ({type(value).__name__})")


def check_fields(data: dict, classes, where: str) -> dict:
    """A mapping of fields of ``classes`` (e.g. ``(RRRConfig, ModelConfig)``: a training recipe), each name known
    and each value of its field's type; returns it with numbers coerced. Nothing is constructed: a section that is
    handed to a trainer later is checked when it is read, not when the trainer starts."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of field names to values, got {type(data).__name__}")
    types_: dict[str, tuple[object, object]] = {}
    for cls in classes:
        for name, tp, default in _field_types(cls):
            types_.setdefault(name, (tp, default))
    unknown = [key for key in data if key not in types_]
    if unknown:
        raise _unknown(where, unknown, types_)
    return {key: check_value(f"{where}.{key}", value, *types_[key]) for key, value in data.items()}


def build(cls, data: dict | None, where: str | None = None, base=None):
    """A ``cls`` instance from a mapping: the one way every rrr config is read from YAML.

    Keys are checked against the fields (an unknown one is named, with the closest field); values against their
    annotations (:func:`check_value`); a field whose type is a dataclass is built from its sub-mapping the same way,
    starting from that field's default instance, so a recipe states only what it changes. ``base`` (an instance)
    supplies the values of keys ``data`` does not set. A ``ValueError`` from the class's own ``__post_init__`` (an
    impossible combination) becomes a :class:`ConfigError` naming the section.
    """
    where = where or cls.__name__
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of field names to values, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise _unknown(where, unknown, fields)
    hints = typing.get_type_hints(cls)
    kwargs = {name: getattr(base, name) for name in fields} if base is not None else {}
    for name, value in data.items():
        tp, f = hints[name], fields[name]
        current = kwargs.get(name)
        if current is None and f.default_factory is not dataclasses.MISSING:
            current = f.default_factory()
        sub = tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None
        if sub is not None:
            kwargs[name] = build(sub, value, f"{where}.{name}", base=current)
        else:
            default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
            kwargs[name] = check_value(f"{where}.{name}", value, tp, default)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load(cls, path: str | None = None, overrides: dict[str, object] | None = None, data: dict | None = None):
    """``cls`` from a YAML recipe (``path``, includes expanded) or a mapping (``data``), with dotted ``overrides``."""
    if path is not None:
        data = merge(load_yaml(path), data or {})
    return build(cls, apply_overrides(data or {}, overrides or {}), where=path or cls.__name__)


def to_dict(config) -> dict:
    """A config as JSON-ready nested mappings (what a run writes as its resolved ``config.json``)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


# ------------------------------------------------------------------------------------------------------------------
# Documentation: each field documented once
# ------------------------------------------------------------------------------------------------------------------
def docstring_fields(doc: str | None) -> dict[str, str]:
    """The field entries of a TRL-style docstring: ``name (`type`, ...):`` followed by indented text."""
    import inspect

    out: dict[str, str] = {}
    name, lines = None, []
    for raw in inspect.cleandoc(doc or "").splitlines():
        stripped = raw.strip()
        indented = raw[:1].isspace()
        head = raw.partition(" (`")[0] if not indented and " (`" in raw else ""
        if head.isidentifier():
            if name:
                out[name] = " ".join(lines).strip()
            name, lines = head, []
        elif name and indented and stripped:
            lines.append(stripped)
        elif name and not indented and stripped:
            out[name], name, lines = " ".join(lines).strip(), None, []
    if name:
        out[name] = " ".join(lines).strip()
    return out


def documented(cls):
    """Class decorator: each field's ``help`` (what ``--help`` prints) is the field's entry in the class docstring.

    One text per field, written where a reader of the code looks (the docstring, TRL's format); argparse's help is
    derived from it, so the two can never disagree. A field the docstring does not list keeps the help it has (an
    inherited TRL field). ``tests/test_config.py`` checks that every field of every rrr config is documented.
    """
    docs = docstring_fields(cls.__doc__)
    for name, f in cls.__dataclass_fields__.items():
        if docs.get(name):
            f.metadata = types.MappingProxyType({**f.metadata, "help": docs[name]})
    return cls


def field_docs(cls) -> dict[str, str]:
    """``{field: its documentation}`` of a config class (missing or empty when undocumented)."""
    return {f.name: (f.metadata or {}).get("help", "") for f in dataclasses.fields(cls)}


# ------------------------------------------------------------------------------------------------------------------
# TRL drivers (train, SFT): TrlParser underneath, the same loader and --set on top
# ------------------------------------------------------------------------------------------------------------------
def _pop_option(argv: list[str], name: str, many: bool = False):
    """Remove ``--name VALUE`` / ``--name=VALUE`` occurrences from ``argv``; their values (the last, or all)."""
    values, out, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == name:
            if i + 1 >= len(argv):
                raise ConfigError(f"{name} needs a value")
            values.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(name + "="):
            values.append(arg[len(name) + 1 :])
        else:
            out.append(arg)
        i += 1
    argv[:] = out
    return values if many else (values[-1] if values else None)


def parse_trl_args(classes, argv: list[str] | None = None, **parser_kwargs):
    """``(RRRConfig, ModelConfig)``-style dataclasses from ``--config recipe.yaml``, ``--set key=value`` and TRL's
    own ``--field value`` flags, in that order of precedence (a flag wins).

    TRL's ``TrlParser`` stays the parser, so every inherited flag and ``--help`` work as in TRL; only the recipe is
    read by :func:`load_yaml` (its ``include:`` expanded, one-line errors) and ``--set`` is merged into it before it
    becomes the parser's defaults — which is exactly what ``TrlParser`` does with a ``--config`` file. The recipe's
    ``env:`` mapping is exported to ``os.environ``, as TRL does.
    """
    import os
    import sys

    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    path = _pop_option(argv, "--config")
    overrides = parse_set(_pop_option(argv, "--set", many=True))
    data = apply_overrides(load_yaml(path) if path else {}, overrides)
    parser = TrlParser(classes, **parser_kwargs)
    env = data.pop("env", None) or {}
    if not isinstance(env, dict):
        raise ConfigError(f"{path}: `env` must be a mapping of variable names to values")
    for key, value in env.items():
        os.environ[str(key)] = str(value)
    known = {f.name for cls in parser.dataclass_types for f in dataclasses.fields(cls)}
    unknown = [key for key in data if key not in known]
    if unknown:
        raise _unknown(path or "--set", unknown, known)
    parser.set_defaults_with_config(**data)
    try:
        return parser.parse_args_into_dataclasses(args=argv)
    except ConfigError:
        raise
    except ValueError as exc:
        # a value TRL's or transformers' own __post_init__ rejects: the recipe's or the command line's, as the
        # parser only ever saw those (rrr.utils.cli explains why a parser's ValueError is a usage error)
        raise ConfigError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------------------------
# Plain-argparse drivers (eval, mine, curriculum): --config recipe.yaml, --set, and each flag a field override
# ------------------------------------------------------------------------------------------------------------------
def _field_at(cls, key: str):
    """``(dataclasses.Field, resolved annotation)`` of a dotted ``key`` (``sft.lora_r``) of ``cls``."""
    owner, parts = cls, key.split(".")
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(owner)}
        if part not in fields:
            raise KeyError(f"{key}: {owner.__name__} has no field {part!r}")
        tp = typing.get_type_hints(owner)[part]
        if i == len(parts) - 1:
            return fields[part], tp
        owner = tp


def _flag_type(tp):
    """What argparse converts a flag's string with: ``int`` for ``int | None``, ``str`` for ``list[str]``, ..."""
    arms = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    arm = arms[0] if len(arms) == 1 else str
    if typing.get_origin(arm) in (list, tuple) or arm in (list, tuple):
        args = typing.get_args(arm)
        arm = args[0] if args else str
    return arm if arm in (int, float, str) else str


def add_config_argument(parser, default: str | None = None) -> None:
    """``--config recipe.yaml``: the driver's settings as a YAML recipe (read by :func:`load_yaml`)."""
    parser.add_argument(
        "--config",
        default=default,
        metavar="RECIPE.yaml",
        help="YAML recipe of this driver's config (every field below; flags and --set override it)",
    )


def add_field_argument(parser, flag: str, cls, key: str, *, const=dataclasses.MISSING, convert=None, **kwargs):
    """A flag that overrides the field ``key`` (dotted for a nested section) of config ``cls``, documented once.

    Its help is the field's docstring entry (:func:`documented`), its type the field's annotation, and an absent
    flag is no override at all (``argparse.SUPPRESS``), so the recipe's value stands. ``const`` makes a flag that
    takes no value (``--no-balance`` sets ``curriculum.balance`` to false). ``convert`` turns the flag's string into
    the field's value when :func:`flag_overrides` collects it, inside the driver's error handling (a bad
    ``--task-kwargs`` JSON is then one error line, not an argparse exit).
    """
    import argparse

    f, tp = _field_at(cls, key)
    doc = (f.metadata or {}).get("help") or ""
    if const is not dataclasses.MISSING:
        kwargs.update(action="store_const", const=const)
        doc = f"sets {key}={json.dumps(const)}. {doc}"
    else:
        kwargs.setdefault("type", str if convert else _flag_type(tp))
        kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        default = f.default if f.default is not dataclasses.MISSING else None
        if default is not None and default != "" and "nargs" not in kwargs:
            doc = f"{doc} (default: {default})"
    action = parser.add_argument(flag, dest=key, default=argparse.SUPPRESS, help=doc.replace("%", "%%"), **kwargs)
    action.rrr_convert = convert
    action.rrr_field = key
    return action


def flag_overrides(parser, namespace) -> dict[str, object]:
    """The field overrides the flags of :func:`add_field_argument` that were given say (dotted keys)."""
    given = vars(namespace)
    out = {}
    for action in parser._actions:
        key = getattr(action, "rrr_field", None)
        if key is not None and key in given:
            out[key] = action.rrr_convert(given[key]) if action.rrr_convert else given[key]
    return out


def json_object(flag: str):
    """A ``convert`` for :func:`add_field_argument`: the flag's JSON text as a mapping, or one ConfigError line."""

    def convert(text: str) -> dict:
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{flag} is not JSON ({exc.msg}): give an object, e.g. '{{\"strict\": true}}'") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{flag} must be a JSON object, got {text}")
        return value

    return convert


def load_driver_config(cls, parser, namespace):
    """A driver's config: its ``--config`` recipe, then ``--set``, then its flags (a flag wins, as in TRL's)."""
    overrides = {**parse_set(getattr(namespace, "set", None)), **flag_overrides(parser, namespace)}
    return load(cls, getattr(namespace, "config", None), overrides)
