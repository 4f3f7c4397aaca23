"""YAML run configs into nested, validated dataclasses: the one config system of every training recipe.

A config class is a dataclass whose annotations say what each key takes; :func:`load_config` reads a YAML file
into it, applies ``a.b=c`` overrides and checks every value against the annotations, the nested sections
included::

    @dataclass
    class Peft:
        r: int = 16
        method: Literal["lora", "dora"] = "lora"

    @dataclass
    class Run(ConfigBase):
        KIND = "SFT"
        train_manifest: Path            # a path: a relative one may be relative to the config file
        output_dir: Path
        peft: Peft = field(default_factory=Peft)
        training: dict = field(default_factory=dict)   # free-form: passed on as it is

    cfg = Run.from_yaml("configs/sft/x.yaml", ["peft.r=8", "training.learning_rate=1e-4"])

What is checked, each error a :class:`ConfigError` that names the dotted key:

- unknown keys (with the closest valid key when one is close); keys a class lists in ``RENAMED`` are refused with
  their new name;
- missing keys (fields without a default);
- types, from the annotations: ``int``, ``float`` (an integer is taken), ``bool``, ``str``, ``Path``, ``X | None``,
  unions, ``Literal[...]`` (the allowed values are listed), ``list[X]``, ``tuple[X, ...]``, ``dict`` /
  ``dict[str, X]`` and nested dataclasses;
- whatever a class's ``__post_init__`` checks (it raises :class:`ConfigError` naming its key; another
  ``ValueError`` is reported under the section it came from).

A field annotated ``Path`` is a path. A relative one is kept as written (relative to the working directory) when
it exists there or exists nowhere, and is taken relative to the config file's folder when it exists there only:
the shipped configs name paths from the repository root (``configs/deepspeed/zero2.json``, ``runs/...``), and a
config beside its own data can name that data by file name.

Values in YAML files and overrides are read as YAML 1.2 reads numbers: ``1e-4`` is a float (YAML 1.1, PyYAML's
default, reads it as a string).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

__all__ = ["ConfigBase", "ConfigError", "config_from_dict", "config_to_dict", "load_config", "parse_override"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that cannot be used. ``key`` is the dotted key at fault (``None`` for the file as a whole),
    ``source`` the config file when there is one."""

    def __init__(self, key: str | None, message: str, source: str | PathLike | None = None):
        self.key, self.message, self.source = key, message, source
        where = "".join(f"{part}: " for part in (source, key) if part)
        super().__init__(f"{where}{message}")

    def within(self, prefix: str) -> ConfigError:
        """The same error for a key of the section ``prefix`` (``"peft."``)."""
        key = prefix + self.key if self.key else prefix.rstrip(".") or None
        return ConfigError(key, self.message, self.source)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: ``1e-4`` and ``5E3`` are numbers, not strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_override(item: str) -> tuple[str, Any]:
    """``"training.learning_rate=1e-4"`` -> ``("training.learning_rate", 0.0001)``: the value is read as YAML (a
    scalar, ``[a, b]`` or ``{k: v}``); an empty value is null."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(None, f"an override is KEY=VALUE (KEY may be dotted: training.max_steps=2), not {item!r}")
    try:
        parsed = yaml.load(value, Loader=_Loader) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"cannot read the override value {value!r} as YAML: {exc}") from exc
    return key, parsed


def load_config(cls: type[T], path: str | PathLike, overrides: Sequence[str] | Mapping[str, Any] = ()) -> T:
    """Read the YAML mapping at ``path`` into the dataclass ``cls``, after applying ``overrides``.

    ``overrides``: ``"a.b=c"`` strings (:func:`parse_override`, e.g. the command line's ``--set``), or a mapping
    of dotted keys to values already parsed (``{"output_dir": "/tmp/x", "training.max_steps": 2}``).

    Raises:
        OSError: the file cannot be read.
        ConfigError: the file is not YAML, or a key or value is wrong (the message names the file and the key).
    """
    if not isinstance(overrides, Mapping):  # a bad override is the command line's fault, not the file's
        overrides = dict(map(parse_override, overrides))
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(None, f"not valid YAML: {exc}", source=path) from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(None, f"a config is a YAML mapping of keys to values, not {type(data).__name__}",
                          source=path)
    try:
        return config_from_dict(cls, data, overrides, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.message, source=path) from exc


def config_from_dict(cls: type[T], data: Mapping | T, overrides: Sequence[str] | Mapping[str, Any] = (),
                     base_dir: str | PathLike | None = None) -> T:
    """``data`` (a mapping as YAML gives it) checked and built into ``cls``; ``overrides`` as for
    :func:`load_config`; relative paths that exist only under ``base_dir`` are taken from there. An instance of
    ``cls`` without overrides is returned as it is."""
    if isinstance(data, cls) and not overrides:
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(None, f"a {_kind(cls)} config is a mapping of keys to values, not {type(data).__name__}")
    data = copy.deepcopy(dict(data)) if overrides else data
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for key, value in items:
        _set_dotted(data, key, value)
    context = _Context(_kind(cls), Path(base_dir) if base_dir is not None else None)
    return _build(cls, data, "", context)


def config_to_dict(cfg) -> dict:
    """A config as JSON-ready data (paths and other objects as strings, tuples as lists): what a run records
    of the config it ran with."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


class ConfigBase:
    """Mixin of a config dataclass: ``from_yaml``, ``from_dict`` and ``to_dict``. ``KIND`` names the recipe in
    messages; ``RENAMED`` maps old key names to new ones, refused with a message that gives the new name."""

    KIND: typing.ClassVar[str] = ""
    RENAMED: typing.ClassVar[dict[str, str]] = {}

    @classmethod
    def from_yaml(cls, path: str | PathLike, overrides: Sequence[str] | Mapping[str, Any] = ()):
        """:func:`load_config` for this class."""
        return load_config(cls, path, overrides)

    @classmethod
    def from_dict(cls, data: Mapping, overrides: Sequence[str] | Mapping[str, Any] = (),
                  base_dir: str | PathLike | None = None):
        """:func:`config_from_dict` for this class."""
        return config_from_dict(cls, data, overrides, base_dir)

    def to_dict(self) -> dict:
        return config_to_dict(self)


# ------------------------------------------------------------------------------------------------ internals
def _kind(cls) -> str:
    return getattr(cls, "KIND", "") or cls.__name__


def _set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, Mapping):
            child = node[part] = dict(child)
        else:
            raise ConfigError(".".join(parts[:depth + 1]), f"holds {child!r}, not a mapping: cannot set {key}")
        node = child
    node[parts[-1]] = value


@dataclasses.dataclass
class _Context:
    kind: str
    base_dir: Path | None

    def path(self, value: Path) -> Path:
        value = value.expanduser()
        if self.base_dir is None or value.is_absolute() or value.exists():
            return value
        beside = self.base_dir / value
        return beside if beside.exists() else value


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls, data, prefix: str, context: _Context):
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(prefix.rstrip(".") or None, f"expected a mapping of {cls.__name__} keys, got {_show(data)}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    renamed = getattr(cls, "RENAMED", {})
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            if key in renamed:
                raise ConfigError(dotted, f"this key was renamed to {prefix}{renamed[key]}")
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"valid keys: {', '.join(sorted(names))}"
            raise ConfigError(dotted, f"unknown {context.kind} config key; {hint}")
        kwargs[key] = _convert(hints[key], value, dotted, context)
    for f in dataclasses.fields(cls):
        if f.init and f.name not in kwargs and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{f.name}", f"missing: the {context.kind} config needs it")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise exc.within(prefix) from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(prefix.rstrip(".") or None, str(exc)) from exc


_NONE = type(None)


def _convert(tp, value, key: str, context: _Context):
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Annotated:
        return _convert(args[0], value, key, context)
    if origin is Union or origin is types.UnionType:
        if value is None and _NONE in args:
            return None
        choices = [a for a in args if a is not _NONE]
        if len(choices) == 1:
            return _convert(choices[0], value, key, context)
        for choice in choices:
            try:
                return _convert(choice, value, key, context)
            except ConfigError:
                continue
        raise ConfigError(key, f"expected {_describe(tp)}, got {_show(value)}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(key, f"{_show(value)} is not one of: {', '.join(_show(a) for a in args)}")
    if tp is _NONE:
        if value is None:
            return None
    elif dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.", context)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and issubclass(tp, PathLike):
        if isinstance(value, (str, PathLike)) and str(value):
            return context.path(Path(value))
    elif tp is list or origin is list:
        if isinstance(value, (list, tuple)):
            item = args[0] if args else Any
            return [_convert(item, v, f"{key}[{i}]", context) for i, v in enumerate(value)]
    elif tp is tuple or origin is tuple:
        if isinstance(value, (list, tuple)):
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                item = args[0] if args else Any
                return tuple(_convert(item, v, f"{key}[{i}]", context) for i, v in enumerate(value))
            if len(value) == len(args):
                pairs = enumerate(zip(args, value, strict=True))
                return tuple(_convert(a, v, f"{key}[{i}]", context) for i, (a, v) in pairs)
    elif tp is dict or origin in (dict, Mapping):
        if isinstance(value, Mapping):
            item = args[1] if args else Any
            return {k: _convert(item, v, f"{key}.{k}", context) for k, v in value.items()}
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"{key}: the config system cannot check values of type {tp!r}")
    raise ConfigError(key, f"expected {_describe(tp)}, got {_show(value)}")


def _describe(tp) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(_show(a) for a in args)
    if origin is typing.Annotated:
        return _describe(args[0])
    if tp is _NONE:
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} keys"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type) and issubclass(tp, PathLike):
        return "a path"
    if tp is list or origin is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    if tp is tuple or origin is tuple:
        if args and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_plural(args[0])}" if args else "a list"
    if tp is dict or origin in (dict, Mapping):
        return f"a mapping to {_plural(args[1])}" if args and args[1] is not Any else "a mapping"
    return getattr(tp, "__name__", str(tp))


def _plural(tp) -> str:
    text = _describe(tp)
    return re.sub(r"^an? ", "", text) + ("s" if tp in (int, float, str) or isinstance(tp, type) and
                                         issubclass(tp, PathLike) else "")


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(map(_show, value))}]" if len(value) <= 4 else f"a list of {len(value)} values"
    return repr(value)
