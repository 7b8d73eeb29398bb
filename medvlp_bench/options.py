"""Declared options of methods and protocols: one resolution and validation for both.

A plugin declares its options as :class:`~medvlp_bench.specs.OptionSpec` s (name, default, type, help). The values
of a run are resolved in layers, later layers winning: the declared defaults, then (for a protocol) the task's
overrides, then the command line. Every name of every layer must be declared, else :class:`OptionError` names it,
the layer it came from and the closest declared names, before any work is done. Each value must have the declared
type (``OptionSpec.type``, else the default's type): ``bool`` accepts only ``True``/``False``; ``int`` rejects
booleans; ``float`` accepts ints (stored as floats); ``list``/``tuple`` accept either (stored as lists, JSON's
form); a tuple of types accepts any of them; a default of ``None`` without a type accepts anything. ``choices``
limits the values.

For protocols declared by plain names (the older form, no defaults) the names are checked and nothing else;
``None`` declares nothing and accepts anything.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping, Optional, Sequence, Union

from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import OptionSpec

#: a layer of values: a mapping, or (label naming where the values come from, mapping)
Layer = Union[Mapping[str, Any], tuple[str, Mapping[str, Any]]]
Declared = Optional[Sequence[Union[OptionSpec, str]]]


class OptionError(MedvlpError):
    """An option name that is not declared, or a value of the wrong type or outside the choices."""


def declared_names(declared: Declared) -> list[str]:
    """The declared option names (``OptionSpec`` s or plain names), in declaration order."""
    return [item.name if isinstance(item, OptionSpec) else item for item in declared or ()]


def option_defaults(declared: Declared) -> dict[str, Any]:
    """name -> default of the declared ``OptionSpec`` s (plain names have no default)."""
    return {item.name: item.default for item in declared or () if isinstance(item, OptionSpec)}


def resolve_options(declared: Declared, *layers: Layer, owner: str) -> dict[str, Any]:
    """The declared defaults updated by each layer in turn, validated (see the module docstring).

    ``owner`` names whose options these are in errors (e.g. ``"method 'mymethod'"``); a layer given as
    ``(label, values)`` is named by ``label`` (e.g. ``"--method-option"``, ``"task 'mytask' sets"``).
    Returns a new dict of JSON-normal values (tuples become lists).
    """
    resolved = option_defaults(declared)
    specs = {item.name: item for item in declared or () if isinstance(item, OptionSpec)}
    for layer in layers:
        label, values = layer if isinstance(layer, tuple) else (None, layer)
        for name, value in values.items():
            if declared is not None:
                check_name(declared, name, owner=owner, label=label)
            resolved[name] = _checked(specs[name], value, owner, label) if name in specs else value
    return resolved


def check_name(declared: Declared, name: str, *, owner: str, label: Optional[str] = None) -> None:
    """Raise :class:`OptionError` when ``name`` is not declared, naming the closest declared names."""
    names = declared_names(declared)
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    where = f"{label} {name}" if label else name
    known = ", ".join(sorted(names)) if names else "none"
    raise OptionError(f"{where}: unknown option of {owner}{hint}; its options: {known}")


def _checked(spec: OptionSpec, value: Any, owner: str, label: Optional[str]) -> Any:
    """``value`` in its stored form when it fits ``spec``, else :class:`OptionError`."""
    expected = spec.type if spec.type is not None else (type(spec.default) if spec.default is not None else None)
    normal = _normalised(value)
    if expected is not None and not _fits(normal, expected):
        raise OptionError(f"{_where(spec, label)}: {owner} option {spec.name} must be {_describe(expected)}, "
                          f"not {value!r}")
    if spec.choices is not None and normal not in [_normalised(choice) for choice in spec.choices]:
        raise OptionError(f"{_where(spec, label)}: {owner} option {spec.name} must be one of "
                          f"{', '.join(map(repr, spec.choices))}, not {value!r}")
    return float(normal) if _wants_float(expected) and not isinstance(normal, float) and _is_int(normal) else normal


def _where(spec: OptionSpec, label: Optional[str]) -> str:
    return f"{label} {spec.name}" if label else spec.name


def _normalised(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normalised(item) for item in value]
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value


def _types(expected) -> tuple:
    return expected if isinstance(expected, tuple) else (expected,)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _wants_float(expected) -> bool:
    return expected is not None and float in _types(expected) and int not in _types(expected)


def _fits(value: Any, expected) -> bool:
    for kind in _types(expected):
        if kind is bool and isinstance(value, bool):
            return True
        if kind is int and _is_int(value):
            return True
        if kind is float and (isinstance(value, float) or _is_int(value)):
            return True
        if kind in (list, tuple) and isinstance(value, list):
            return True
        if kind not in (bool, int, float, list, tuple) and isinstance(value, kind):
            return True
    return False


def _describe(expected) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", list: "a list", tuple: "a list",
             str: "a string"}
    return " or ".join(names.get(kind, f"a {kind.__name__}") for kind in _types(expected))
