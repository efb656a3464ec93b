"""``nasface export``: a chosen trial's spec and a full-training recipe, ready for ``nasface train``.

The recipe carries the papers' schedule (SGD 0.1, momentum 0.9, weight decay 5e-4, step decay;
ArcFace s = 64, m = 0.5), the distillation (kind, alpha, teacher), recursive-distillation
generations (VarGFaceNet section 2.5), the exact costs, and data paths to fill in.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
import yaml

from nasface.errors import NasfaceError
from nasface.model import count
from nasface.report import best_trial, study_settings
from nasface.spec import read_yaml, save_spec, spec_from_dict, write_atomic


@dataclass(frozen=True)
class Recipe:
    """Full training of one spec; every field has the papers' value unless the user changes it."""

    spec: str
    data: str = "FILL IN: path/to/faces_emore (train.rec + train.idx), an image folder, orl or synthetic"
    val_bins: tuple[str, ...] = ()
    epochs: float = 16.0                     # SeesawFaceNets / insightface schedule: 16 epochs,
    lr_steps: tuple[float, ...] = (9.0, 13.0, 15.0)  # lr / 10 at epochs 9, 13, 15
    steps: int | None = None                 # instead of epochs, a fixed number of SGD steps
    batch_size: int = 512
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    margin: str = "arcface"
    scale: float = 64.0
    distill: str = "angular"
    alpha: float = 7.0
    teacher: str = "FILL IN: path/to/teacher checkpoint (.safetensors / .pt), auto, or none"
    teacher_spec: str | None = None
    generations: int = 2                     # recursive knowledge distillation (VarGFaceNet 2.5)
    checkpoint_every: int = 2000
    eval_every: int = 2000
    seed: int = 0
    device: str = "auto"
    costs: dict = field(default_factory=dict)
    proxy: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.epochs <= 0 and not self.steps:
            raise NasfaceError("recipe: set epochs > 0 or steps")
        if self.generations < 1:
            raise NasfaceError(f"recipe.generations: must be at least 1, got {self.generations}")
        if self.batch_size < 2:
            raise NasfaceError(f"recipe.batch_size: must be at least 2, got {self.batch_size}")


def load_recipe(path: str | os.PathLike) -> Recipe:
    path = Path(path)
    data = read_yaml(path, "recipe")
    if not isinstance(data, dict):
        raise NasfaceError(f"{path}: expected a mapping of recipe fields")
    known = set(Recipe.__dataclass_fields__)
    unknown = [key for key in data if key not in known]
    if unknown:
        raise NasfaceError(f"{path}: unknown recipe field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
    if "spec" not in data:
        raise NasfaceError(f"{path}: the recipe names no spec")
    for key in ("val_bins", "lr_steps"):
        if key in data:
            data[key] = tuple(data[key] or ())
    spec_path = Path(data["spec"])
    if not spec_path.is_absolute() and not spec_path.exists() and (path.parent / spec_path).exists():
        data["spec"] = str(path.parent / spec_path)
    recipe = Recipe(**data)
    recipe.check()
    return recipe


def export_trial(study: optuna.Study, trial: str | int, output: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<study>-trial<N>.yaml`` (the spec) and ``recipe.yaml`` into ``output``."""
    if trial == "best":
        chosen = best_trial(study)
    else:
        try:
            chosen = study.trials[int(trial)]
        except (ValueError, IndexError):
            raise NasfaceError(f"--trial {trial!r}: the study has trials 0..{len(study.trials) - 1}, "
                               f"or use --trial best") from None
    if "spec" not in chosen.user_attrs:
        raise NasfaceError(f"trial {chosen.number} has no architecture ({chosen.user_attrs.get('fail_reason')})")
    spec = spec_from_dict(chosen.user_attrs["spec"])
    settings = study_settings(study)
    name = f"{study.study_name}-trial{chosen.number}"
    output = Path(output)
    spec_path = save_spec(dataclasses.replace(spec, name=name), output / f"{name}.yaml")
    metrics = chosen.user_attrs.get("metrics") or {}
    costs = {k: v for k, v in count(spec, settings.get("budgets", {}).get("convention", "lfr")).items()
             if k != "stages"}
    recipe = Recipe(spec=spec_path.name, distill=settings.get("proxy", {}).get("distill", "angular"),
                    costs=costs, proxy={"trial": chosen.number, "accuracy": metrics.get("accuracy"),
                                        "tar_at_far": metrics.get("tar_at_far"), "settings": settings.get("proxy")})
    data = asdict(recipe)
    for key in ("val_bins", "lr_steps"):
        data[key] = list(data[key])
    recipe_path = output / "recipe.yaml"
    write_atomic(recipe_path, "# nasface full-training recipe: fill in the data and teacher, then\n"
                              f"#   nasface train {recipe_path}\n" + yaml.safe_dump(data, sort_keys=False))
    return spec_path, recipe_path
