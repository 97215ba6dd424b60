"""One way to turn a section of the params file into a validated, frozen config object.

A config is a frozen dataclass whose fields are declared with :func:`param`, so that what a key
means and what it may hold travel with it (as in tevatron's and sentence-transformers' argument
dataclasses)::

    @dataclass(frozen=True)
    class ShardsConfig:
        rows_per_shard: int = param(help="rows per Parquet shard file", low=1)
        include_title: bool = param(False, help="passage = '<title>. <answer sentence>'")

:func:`read_section` reads one section (``shards``, or a dotted ``a.b``) of the params for any
such class: presence (a field without a default is required), type (from the annotation, or
``kind``; a bool is not an int, an int is a float), range (``low``/``high``, inclusive; the
name of an earlier field for a bound that another key sets), choices and unknown keys. Choices
are a ``StrEnum`` annotation (the config holds the member, which compares, formats and
serialises to JSON as its plain string) or, for a list of e.g. language codes, ``choices=`` the
allowed values; such a list must be non-empty and must not repeat a value (:func:`distinct`).
A field's ``check`` says what a type and a range cannot (``> 0``, ``[min, max]``, an alias).

Every error is one :class:`PipelineError` line naming the params file actually read (the
stage's ``--params``) and the key, e.g. ``params.yaml: 'train.batch_size' is 0, expected a
value >= 2``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, Callable, Mapping, Sequence

from .errors import PipelineError

#: The key of a field's :class:`Param` in its ``dataclasses.field`` metadata.
PARAM = "param"
#: ``check(value, where) -> value``: ``where`` is the ``"<params file>: '<key>'"`` label.
Check = Callable[[Any, str], Any]


@dataclasses.dataclass(frozen=True)
class Param:
    """What :func:`param` records about one key (see there)."""

    help: str
    low: float | str | None = None
    high: float | str | None = None
    choices: type[Enum] | Sequence[Any] | None = None
    kind: type | tuple[type, ...] | None = None
    check: Check | None = None
    required: bool | None = None
    top_level: bool = False


def param(default: Any = dataclasses.MISSING, *, help: str,  # noqa: A002 - as in argparse
          low: float | str | None = None, high: float | str | None = None,
          choices: type[Enum] | Sequence[Any] | None = None,
          kind: type | tuple[type, ...] | None = None, check: Check | None = None,
          required: bool | None = None, top_level: bool = False) -> Any:
    """A dataclass field that :func:`read_section` reads from the params.

    ``default``: the value when the key is absent (no default: the key is required; ``required``
    overrides that, for a key the params must name although code may build the config without
    it). ``help``: what the key means. ``low``/``high``: inclusive bounds (a number, or the name
    of an earlier field). ``choices``: the allowed values of a list field (a scalar field takes
    its choices from a ``StrEnum`` annotation). ``kind``: the YAML type(s) to accept instead of
    the annotation's (``object``: any, for a ``check`` that words its own type error).
    ``check(value, where) -> value``: runs on the value as written, after the type check and
    before the range and choice checks; it may convert the value (an alias, a list to a pair of
    floats) and raises :class:`PipelineError` for anything else wrong.
    ``top_level``: the key sits at the top of the params, not in the section (``seed``).
    """
    spec = Param(help, low, high, choices, kind, check, required, top_level)
    return dataclasses.field(default=default, metadata={PARAM: spec})


def spec_of(field: dataclasses.Field) -> Param:
    """The :class:`Param` of a config field (a ``TypeError`` for a field not made by param)."""
    try:
        return field.metadata[PARAM]
    except KeyError:
        raise TypeError(f"field {field.name!r} is not declared with config.param()") from None


def where(params_path: str, name: str) -> str:
    """The label errors start with: ``params.yaml: 'train.steps'``."""
    return f"{params_path}: '{name}'"


def invalid(label: str, value: Any, expected: str) -> PipelineError:
    """``<label> is <value!r>, expected <expected>`` as a :class:`PipelineError`."""
    return PipelineError(f"{label} is {value!r}, expected {expected}")


def missing(params_path: str, name: str) -> PipelineError:
    """``<params file>: '<key>' is missing`` as a :class:`PipelineError` (also for a key that
    only some settings of another key need, e.g. ``encoder.path`` for ``source: folder``)."""
    return PipelineError(f"{where(params_path, name)} is missing")


def distinct(values: Sequence[Any], what: str) -> None:
    """Raise :class:`PipelineError` naming ``what`` (a :func:`where` label) when a value of
    ``values`` occurs more than once."""
    values = list(values)
    repeated: list[Any] = []
    for i, value in enumerate(values):
        if value in values[:i] and value not in repeated:
            repeated.append(value)
    if repeated:
        raise PipelineError(f"{what} is {values!r} (repeated {repeated!r}), expected distinct "
                            f"values")


def choice_values(choices: type[Enum] | Sequence[Any]) -> list[Any]:
    """The allowed values of ``choices`` (an enum's member values, or the sequence itself)."""
    if isinstance(choices, type) and issubclass(choices, Enum):
        return [member.value for member in choices]
    return list(choices)


def section_of(params: Mapping[str, Any], section: str, params_path: str) -> Mapping[str, Any]:
    """``params[section]`` (``a.b``: ``params['a']['b']``), which must be a mapping."""
    value: Any = params
    for part in section.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, Mapping):
        raise PipelineError(f"{params_path}: section '{section}' missing or not a mapping")
    return value


def read_section(cls: type, params: Mapping[str, Any], section: str,
                 params_path: str = "params.yaml", *, unknown_keys: bool = True) -> Any:
    """Check ``params[section]`` against the :func:`param` fields of the dataclass ``cls`` and
    return the config. ``unknown_keys=False`` rejects keys of the section that are no field (for
    a section one class reads alone; sections that several configs share keep them)."""
    cfg = section_of(params, section, params_path)
    fields = dataclasses.fields(cls)
    if not unknown_keys:
        known = sorted(f.name for f in fields if not spec_of(f).top_level)
        unknown = sorted(set(cfg) - set(known), key=str)
        if unknown:
            named = [f"{section}.{key}" for key in unknown]
            raise PipelineError(f"{params_path}: unknown keys {named}, expected some of {known}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    bounds: dict[str, Any] = {}   # every earlier field's value, defaults included
    for field in fields:
        spec = spec_of(field)
        source, name = (params, field.name) if spec.top_level else (cfg, f"{section}.{field.name}")
        has_default = field.default is not dataclasses.MISSING \
            or field.default_factory is not dataclasses.MISSING
        if field.name not in source:
            if spec.required or spec.required is None and not has_default:
                raise missing(params_path, name)
            bounds[field.name] = field.default
            continue
        values[field.name] = bounds[field.name] = _read_value(
            source[field.name], hints[field.name], spec, where(params_path, name), bounds)
    return cls(**values)


# ---------------------------------------------------------------------------------------------
# One value
# ---------------------------------------------------------------------------------------------

def _yaml_kinds(annotation: Any) -> tuple[type, ...]:
    """The YAML types a field of this annotation accepts (a tuple is a YAML list)."""
    if len(_alternatives(annotation)) > 1:
        return tuple(k for arg in _alternatives(annotation) for k in _yaml_kinds(arg))
    if typing.get_origin(annotation) in (tuple, list) or annotation in (tuple, list):
        return (list,)
    if annotation is type(None) or annotation is None:
        return (type(None),)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return (str,)
    if annotation is float:
        return (int, float)
    return (annotation,)


def _kind_names(kinds: tuple[type, ...]) -> str:
    names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
    return f"{'an' if names[0] in 'aeiou' else 'a'} {names}"


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    """``X | Y`` -> ``(X, Y)``; any other annotation -> ``(annotation,)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _enum_of(annotation: Any) -> type[Enum] | None:
    return next((a for a in _alternatives(annotation)
                 if isinstance(a, type) and issubclass(a, Enum)), None)


def _bound(bound: float | str | None, values: Mapping[str, Any]) -> float | None:
    return values.get(bound) if isinstance(bound, str) else bound


def _read_value(raw: Any, annotation: Any, spec: Param, label: str,
                earlier: Mapping[str, Any]) -> Any:
    kinds = spec.kind if isinstance(spec.kind, tuple) else \
        (spec.kind,) if spec.kind is not None else _yaml_kinds(annotation)
    if object not in kinds and (isinstance(raw, bool) and bool not in kinds
                                or not isinstance(raw, kinds)):
        raise invalid(label, raw, _kind_names(kinds))
    value = raw if spec.check is None else spec.check(raw, label)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    low, high = _bound(spec.low, earlier), _bound(spec.high, earlier)
    if value is not None and (low is not None and not value >= low
                              or high is not None and not value <= high):
        expected = (f"in [{low}, {high}]" if low is not None and high is not None
                    else f">= {low}" if low is not None else f"<= {high}")
        raise invalid(label, raw, f"a value {expected}")
    enum = _enum_of(annotation)
    if enum is not None and value is not None:
        if value not in choice_values(enum):
            raise invalid(label, raw, f"one of {choice_values(enum)}")
        value = enum(value)
    if spec.choices is not None and value is not None:
        value = _choose_list(raw, value, spec.choices, label)
    if isinstance(value, list) and any(typing.get_origin(a) is tuple
                                       for a in _alternatives(annotation)):
        value = tuple(value)
    return value


def _choose_list(raw: Any, values: list[Any], choices: type[Enum] | Sequence[Any],
                 label: str) -> list[Any]:
    """A list field with choices: non-empty, every value allowed, none repeated."""
    allowed = choice_values(choices)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        problem = f"unknown {unknown}" if unknown else "empty"
        raise PipelineError(f"{label} is {raw!r} ({problem}), expected distinct values from "
                            f"{allowed}")
    distinct(values, label)
    if isinstance(choices, type) and issubclass(choices, Enum):
        return [choices(v) for v in values]
    return values
