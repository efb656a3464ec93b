"""The command line's side of the option table (``nasface.core.options``): typer parameters."""

from __future__ import annotations

import inspect
from enum import Enum

import typer

from nasface.core.options import COUNTS, NAMES, TEXT, Option


def typer_parameters(options: tuple[Option, ...]) -> list[inspect.Parameter]:
    """Keyword parameters for a typer command, one per option, each defaulting to None (not given)."""
    parameters = []
    for option in options:
        annotation = {TEXT: str, NAMES: str, COUNTS: str}.get(option.hint, option.hint)
        if option.choices:  # typer offers and checks the choices of an Enum
            annotation = Enum(option.name.title().replace("_", ""), {c: c for c in option.choices}, type=str)
        elif type(None) in getattr(annotation, "__args__", ()):
            (annotation,) = [a for a in annotation.__args__ if a is not type(None)]
        declarations = (option.flag,) if option.flag else ()
        shown_default = option.default if not isinstance(option.default, tuple) else ",".join(option.default)
        help_text = option.help if option.default is None else f"{option.help} [default: {shown_default}]"
        parameters.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=typer.Option(None, *declarations, help=help_text)))
    return parameters
