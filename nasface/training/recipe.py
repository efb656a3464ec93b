"""A full-training recipe: the papers' schedule for one spec, as ``nasface export`` writes it and
``nasface train`` reads it.

The recipe carries the papers' schedule (SGD 0.1, momentum 0.9, weight decay 5e-4, step decay;
ArcFace s = 64, m = 0.5), the distillation (kind, alpha, teacher), recursive-distillation
generations (VarGFaceNet section 2.5), the exact costs, and data paths to fill in.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from nasface.core.atomic import write_atomic
from nasface.core.errors import NasfaceError
from nasface.core.options import DEVICES
from nasface.core.plaindata import coerce_field, read_yaml
from nasface.training.settings import Optimisation


# What ``nasface export`` leaves for the user to fill in (``nasface train`` refuses to start on them).
DATA_PLACEHOLDER = "FILL IN: path/to/faces_emore (train.rec + train.idx), an image folder, orl or synthetic"
TEACHER_PLACEHOLDER = "FILL IN: path/to/teacher checkpoint (.safetensors / .pt), auto, or none"


@dataclass(frozen=True, kw_only=True)
class Recipe(Optimisation):
    """Full training of one spec; every field has the papers' value unless the user changes it.

    ``lr_steps`` and ``warmup_epochs`` are in epochs of ``epochs``; when ``steps`` is set they
    keep their place in the run (lr / 10 at 9/16, 13/16 and 15/16 of the steps by default).
    """

    spec: str
    data: str = DATA_PLACEHOLDER
    val_bins: tuple[str, ...] = ()
    epochs: float = 16.0                     # SeesawFaceNets / insightface schedule: 16 epochs,
    lr_steps: tuple[float, ...] = (9.0, 13.0, 15.0)  # lr / 10 at epochs 9, 13, 15
    steps: int | None = None                 # instead of epochs, a fixed number of SGD steps
    batch_size: int = 512
    warmup_epochs: float = 0.0
    teacher: str = TEACHER_PLACEHOLDER
    teacher_spec: str | None = None
    generations: int = 2                     # recursive knowledge distillation (VarGFaceNet 2.5)
    checkpoint_every: int = 2000
    eval_every: int = 2000
    seed: int = 0
    device: str = "auto"
    costs: dict = field(default_factory=dict)
    proxy: dict = field(default_factory=dict)

    def check(self) -> None:
        """Raise ``NasfaceError`` naming the first field that cannot train."""
        if not self.epochs > 0:
            raise NasfaceError(f"recipe.epochs: must be above 0 (lr_steps and warmup_epochs count in it; steps, "
                               f"when set, gives the run's length), got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise NasfaceError(f"recipe.steps: must be at least 1 (or null to count epochs), got {self.steps}")
        if self.generations < 1:
            raise NasfaceError(f"recipe.generations: must be at least 1, got {self.generations}")
        if self.batch_size < 2:
            raise NasfaceError(f"recipe.batch_size: must be at least 2, got {self.batch_size}")
        for epoch in self.lr_steps:
            if not 0 < epoch < self.epochs:
                raise NasfaceError(f"recipe.lr_steps: {epoch} is not inside the {self.epochs} epochs of the run")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise NasfaceError(f"recipe.warmup_epochs: must be 0 or more and below epochs ({self.epochs}), "
                               f"got {self.warmup_epochs}")
        self.check_optimisation("recipe")
        if self.distill == "none" and self.generations > 1:
            raise NasfaceError(f"recipe.generations: {self.generations} generations distil one from another, "
                               f"which distill: none does not; set generations: 1 or a distillation")
        if self.checkpoint_every < 1 or self.eval_every < 1:
            raise NasfaceError(f"recipe: checkpoint_every and eval_every must be at least 1 step, got "
                               f"{self.checkpoint_every} and {self.eval_every}")
        if self.device not in DEVICES:
            raise NasfaceError(f"recipe.device: unknown device {self.device!r} (choose from {', '.join(DEVICES)})")


def _beside(folder: Path, value: str) -> str:
    """A relative path the recipe names, read from the recipe's folder unless it exists from here."""
    path = Path(value)
    if not path.is_absolute() and not path.exists() and (folder / path).exists():
        return str(folder / path)
    return value


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and check ``recipe.yaml``; relative paths in it are read from its folder."""
    path = Path(path)
    data = read_yaml(path, "recipe")
    if not isinstance(data, dict):
        raise NasfaceError(f"{path}: expected a mapping of recipe fields")
    hints = typing.get_type_hints(Recipe)
    unknown = [key for key in data if key not in hints]
    if unknown:
        raise NasfaceError(f"{path}: unknown recipe field {unknown[0]!r} (fields: {', '.join(sorted(hints))})")
    if "spec" not in data:
        raise NasfaceError(f"{path}: the recipe names no spec")
    fields = {key: coerce_field(value, hints[key], f"{path}: recipe.{key}") for key, value in data.items()}
    for key in ("spec", "data", "teacher", "teacher_spec"):
        if fields.get(key) is not None:
            fields[key] = _beside(path.parent, fields[key])
    if "val_bins" in fields:
        fields["val_bins"] = tuple(_beside(path.parent, entry) for entry in fields["val_bins"])
    recipe = Recipe(**fields)
    try:
        recipe.check()
    except NasfaceError as err:
        raise NasfaceError(f"{path}: {err}") from None
    return recipe


def save_recipe(recipe: Recipe, path: str | os.PathLike) -> Path:
    """Write ``recipe`` as YAML (atomically), with a comment saying how to run it."""
    path = Path(path)
    data = asdict(recipe)
    # Read top to bottom: what trains on which data for how long, then the optimiser and the losses
    # (the inherited Optimisation fields, which dataclasses would put first), then the rest.
    shared = list(recipe.optimisation())
    own = [key for key in data if key not in shared]
    at = own.index("warmup_epochs") + 1
    data = {key: data[key] for key in (*own[:at], *shared, *own[at:])}
    for key in ("val_bins", "lr_steps"):
        data[key] = list(data[key])
    write_atomic(path, "# nasface full-training recipe: fill in the data and teacher, then\n"
                       f"#   nasface train {path}\n" + yaml.safe_dump(data, sort_keys=False))
    return path
