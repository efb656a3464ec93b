"""Plain data (YAML / JSON) read into typed values, with one-line errors that name the field.

Every reader of user files builds on these: specs (``nasface.arch.spec``), search spaces, study
files and command-line options (``nasface.core.options``), recipes (``nasface.training.recipe``)
and published tables (``nasface.validity.published``).  ``read_yaml`` reads with ``yaml.safe_load``
only (no arbitrary objects); ``coerce_field`` checks one value against a dataclass field's type.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path

import yaml

from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; only the annotations need it
    from importlib.resources.abc import Traversable


def shown(value, limit: int = 60) -> str:
    """``value`` as an error message quotes it: its repr, on one line, cut short when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def key_name(key) -> str:
    """A mapping key as part of a field path (``stages[0].colour``); odd keys are quoted."""
    return key if isinstance(key, str) and key.isidentifier() else shown(key)


def coerce_field(value, hint, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return coerce_field(value, inner, where)
    if origin is tuple and typing.get_args(hint)[-1] is Ellipsis:  # tuple[str, ...]: a list, or none given
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise NasfaceError(f"{where}: expected a list, got {shown(value)}")
        item = typing.get_args(hint)[0]
        return tuple(coerce_field(entry, item, f"{where}[{i}]") for i, entry in enumerate(value))
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise NasfaceError(f"{where}: expected a list of {len(items)} numbers such as [1, 3], got {shown(value)}")
        return tuple(coerce_field(item, kind, f"{where}[{i}]") for i, (item, kind) in enumerate(zip(value, items)))
    if hint is dict:
        if not isinstance(value, dict):
            raise NasfaceError(f"{where}: expected a mapping, got {shown(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise NasfaceError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise NasfaceError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NasfaceError(f"{where}: expected a number, got {shown(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise NasfaceError(f"{where}: expected a string, got {shown(value)}")
        return value
    raise TypeError(f"unsupported field type {hint}")  # a programming error, not user input


def read_yaml(path: Path | Traversable, what: str):
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NasfaceError(f"{path}: no such {what} file") from None
    except UnicodeDecodeError:
        raise NasfaceError(f"{path}: not a text file (binary data); give a {what} file in YAML or JSON") from None
    except OSError as err:
        raise NasfaceError(f"{path}: cannot read the {what} file ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise NasfaceError(f"{path}: malformed YAML{at}: {problem}") from None
