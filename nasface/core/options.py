"""Options declared once: a name, a type, a default and a help line.

A table of ``Option`` gives both readers their options: a study file (``read_options``, which
coerces each value to the option's type with the same one-line errors as specs) and the command
line (``nasface.cli.options.typer_parameters``, the parameters of a typer command, so no option is
written twice).  A study file's key is the option's name (dashes or underscores); the options a
study file may set are those of ``nasface.search.config.SEARCH_OPTIONS``.  ``nasface score`` and
``nasface train`` take their options from the same declarations (``nasface.cli.options``), a
command giving one of them its own default with ``Option.defaulting``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from nasface.core.errors import NasfaceError
from nasface.core.plaindata import coerce_field, read_yaml, shown


def _text(value, where: str) -> str:
    """A quantity or a duration: YAML reads ``1G`` as a string but ``1000000000`` as a number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise NasfaceError(f"{where}: expected a string or a number, got {shown(value)}")
    return str(value)


def _names(value, where: str) -> tuple[str, ...]:
    """A list of names, or one comma-separated string (as the command line gives it)."""
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(","))
    if not isinstance(value, (list, tuple)):
        raise NasfaceError(f"{where}: expected a list of names, got {shown(value)}")
    return tuple(coerce_field(item, str, f"{where}[{index}]") for index, item in enumerate(value))


def _counts(value, where: str) -> tuple[int, ...]:
    """A list of whole numbers, or one comma-separated string of them (``40,120,360``)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise NasfaceError(f"{where}: expected a list of whole numbers such as 40,120,360, got {shown(value)}")
    counts = []
    for index, item in enumerate(items):
        text = item.strip() if isinstance(item, str) else item
        if isinstance(text, str) and text.lstrip("-").isdigit():
            text = int(text)
        counts.append(coerce_field(text, int, f"{where}[{index}]"))
    return tuple(counts)


# Where a network trains: the proxy (ProxyBudget), a recipe and the command lines choose from these.
DEVICES = ("auto", "cpu", "cuda")

TEXT = "text"    # a string, or a number written as one (budgets, durations)
NAMES = "names"  # a list of names, or a comma-separated string
COUNTS = "counts"  # a list of whole numbers, or a comma-separated string of them


@dataclass(frozen=True)
class Option:
    """One option: ``hint`` is the type a file's value must have (``int | None``: may be null).

    ``default`` is what an option that is given nowhere takes (``shown_default`` is how help
    names a default that is not a value, e.g. "the recipe's"); ``choices`` are checked in a file
    and offered by the command line; ``flags`` replace typer's ``--name-with-dashes`` (``--x/--no-x``,
    or ``-o --output``).  A ``tuple[X, ...]`` option is repeatable on the command line.
    """

    name: str
    hint: object
    default: object
    help: str
    choices: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    shown_default: str | None = None

    def defaulting(self, default, shown: str | None = None) -> "Option":
        """This option with a command's own default (``shown``: how help names it, where it is no value)."""
        return dataclasses.replace(self, default=default, shown_default=shown)

    def coerce(self, value, where: str):
        if isinstance(value, Enum):  # a choice from the command line
            value = value.value
        if value is None and self.nullable:
            return None
        if self.hint in (Path, Path | None):
            if not isinstance(value, (str, Path)):
                raise NasfaceError(f"{where}: expected a path, got {shown(value)}")
            value = Path(value)
        elif self.hint == TEXT:
            value = _text(value, where)
        elif self.hint == NAMES:
            value = _names(value, where)
        elif self.hint == COUNTS:
            value = _counts(value, where)
        else:
            value = coerce_field(value, self.hint, where)
        if self.choices and value not in self.choices:
            raise NasfaceError(f"{where}: {shown(value)} is not one of {', '.join(self.choices)}")
        return value

    @property
    def flag(self) -> str:
        """The long flag the command line knows it by (``--baselines`` of ``--baselines/--no-baselines``)."""
        long = [flag.split("/")[0] for flag in self.flags if flag.startswith("--")]
        return long[0] if long else flag_name(self.name)

    @property
    def nullable(self) -> bool:
        return self.hint in (TEXT, NAMES, COUNTS) or type(None) in getattr(self.hint, "__args__", ())


def read_options(path: str | Path, options: tuple[Option, ...], what: str) -> dict:
    """The options a YAML file sets, each coerced to its type; one-line ``NasfaceError`` otherwise."""
    data = read_yaml(Path(path), what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NasfaceError(f"{path}: expected a mapping of options, got {shown(data)}")
    by_name = {option.name: option for option in options}
    values = {}
    for key, value in data.items():
        option = by_name.get(str(key).replace("-", "_"))
        if option is None:
            raise NasfaceError(f"{path}: unknown option {shown(key)} (options: {', '.join(by_name)})")
        values[option.name] = option.coerce(value, f"{path}: {option.name}")
    return values


def flag_name(option: str) -> str:
    """The command line's flag of ``option`` (``cpus_per_trial`` -> ``--cpus-per-trial``)."""
    return "--" + option.replace("_", "-")


def given(flags: dict, options: tuple[Option, ...]) -> dict:
    """The options a command line (or a caller) gave, coerced; None (or a repeatable option given
    no time) means not given."""
    by_name = {option.name: option for option in options}
    return {name: by_name[name].coerce(value, by_name[name].flag)
            for name, value in flags.items() if value is not None and value != [] and value != ()}


def resolved(flags: dict, options: tuple[Option, ...]) -> dict:
    """Every option's value: the one given (coerced), else its default."""
    return {**{option.name: option.default for option in options}, **given(flags, options)}


def picked(options: tuple[Option, ...], *names: str) -> tuple[Option, ...]:
    """The options of ``options`` named ``names``, in that order."""
    by_name = {option.name: option for option in options}
    return tuple(by_name[name] for name in names)
