"""The command line's side of the option table (``nasface.core.options``): which options each command
takes, and the typer parameters built from them.

``search``, ``fidelity`` and ``validate`` take the search's options
(``nasface.search.config.SEARCH_OPTIONS``, which study files share); ``score`` and ``train`` take
the same declarations where they set the same thing, and declare here only what no study file
sets.  Where a command's default differs from the search's it says so (``Option.defaulting``):
``score`` trains no teacher unless asked, and ``train`` takes what its recipe says.
"""

from __future__ import annotations

import inspect
import typing
from enum import Enum
from pathlib import Path

import typer

from nasface.core.options import COUNTS, NAMES, TEXT, Option, picked
from nasface.search.config import SEARCH_OPTIONS
from nasface.training.settings import MARGIN_KINDS
from nasface.training.settings import ProxyBudget

CACHE_DIR = Option("cache_dir", Path | None, Path("studies") / ".cache", "Where decoded faces and teachers are cached.")

# `nasface score`: one architecture under the search's proxy, on the search's data and teacher.
SCORE_OPTIONS = (
    *picked(SEARCH_OPTIONS, "data", "val_bin"),
    # scoring one network is quick; training a teacher first is not (the search's default is auto)
    *(option.defaulting("none") for option in picked(SEARCH_OPTIONS, "teacher")),
    *picked(SEARCH_OPTIONS, "teacher_spec", "distill"),
    Option("margin", str, ProxyBudget().margin, "Margin softmax.", choices=MARGIN_KINDS),
    *picked(SEARCH_OPTIONS, "proxy_steps", "proxy_batch", "resolution", "seed", "device"),
    CACHE_DIR,
)

RECIPE_S = "the recipe's"
# `nasface train`: every setting of the recipe it may replace is None (the recipe's) unless given.
TRAIN_OPTIONS = (
    *(option.defaulting(None, RECIPE_S) for option in picked(SEARCH_OPTIONS, "data", "teacher", "teacher_spec")),
    Option("val_bins", tuple[str, ...], None, "Verify on this insightface .bin during training (repeatable; "
           "replaces the recipe's val_bins).", flags=("--val-bin",), shown_default=RECIPE_S),
    Option("steps", int | None, None, "SGD steps per generation, instead of the recipe's epochs.",
           shown_default=RECIPE_S),
    Option("batch_size", int | None, None, "Batch size.", flags=("--batch",), shown_default=RECIPE_S),
    Option("generations", int | None, None, "Recursive distillation generations.", shown_default=RECIPE_S),
    Option("checkpoint_every", int | None, None, "Steps between checkpoints.", shown_default=RECIPE_S),
    Option("eval_every", int | None, None, "Steps between verifications on the .bin files.", shown_default=RECIPE_S),
    *(option.defaulting(None, RECIPE_S) for option in picked(SEARCH_OPTIONS, "seed", "device")),
    Option("output", Path | None, None, "Run folder.", flags=("-o", "--output"), shown_default="run/ beside the recipe"),
    Option("resume", bool, False, "Continue the run in the output folder from its last checkpoint.",
           flags=("--resume",)),
    CACHE_DIR.defaulting(None, ".cache/ beside the output folder"),
)


def typer_parameters(options: tuple[Option, ...]) -> list[inspect.Parameter]:
    """Keyword parameters for a typer command, one per option, each defaulting to None (not given)."""
    parameters = []
    for option in options:
        annotation = {TEXT: str, NAMES: str, COUNTS: str}.get(option.hint, option.hint)
        if option.choices:  # typer offers and checks the choices of an Enum
            annotation = Enum(option.name.title().replace("_", ""), {c: c for c in option.choices}, type=str)
        elif type(None) in typing.get_args(annotation):
            (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is tuple:  # repeatable
            annotation = list[typing.get_args(annotation)[0]]
        shown_default = option.shown_default or (option.default if not isinstance(option.default, tuple)
                                                 else ",".join(option.default))
        if option.hint is bool and option.flags and not any("/" in flag for flag in option.flags):
            shown_default = None  # a flag alone (--resume) is off unless given
        help_text = option.help if shown_default is None else f"{option.help} [default: {shown_default}]"
        parameters.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=typer.Option(None, *option.flags, help=help_text)))
    return parameters


def with_options(command, options: tuple[Option, ...]):
    """Give ``command`` (whose last parameter is ``**options``) one typer parameter per option, after its own."""
    own = [p for p in inspect.signature(command).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = inspect.Signature([*own, *typer_parameters(options)])
    return command
