"""What a training is told: SGD and the losses (``Optimisation``), the proxy's budget
(``ProxyBudget``), the learning-rate schedules, the device and the teacher's two forms.

Settings are read where no training runs (the command line's option table, a study file, ``nasface
count``): torch and numpy are imported only by the methods that use them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from nasface.core.errors import NasfaceError
from nasface.core.options import DEVICES

if typing.TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

# The losses' names (``nasface.training.losses`` builds them by these names).
MARGIN_KINDS = ("arcface", "cosface", "sphereface")
DISTILLER_KINDS = ("none", "angular", "margin")

@dataclass(frozen=True, kw_only=True)
class Optimisation:
    """SGD and the losses, declared once for every training: the proxy (``ProxyBudget``), full
    training's plan and its recipe (``nasface.training.fulltrain.TrainingPlan``, ``nasface.training.recipe.Recipe``)."""

    lr: float = 0.1              # SGD, momentum 0.9, weight decay 5e-4, as all five papers
    momentum: float = 0.9
    weight_decay: float = 5e-4
    margin: str = "arcface"
    scale: float = 64.0          # ArcFace s = 64, m = 0.5 (full training; the proxy uses less)
    distill: str = "angular"
    alpha: float = 7.0

    def check_optimisation(self, where: str) -> None:
        """Raise ``NasfaceError`` naming the first field (as ``where.field``) that cannot train."""
        if not self.lr > 0 or not 0 <= self.momentum < 1 or not self.weight_decay >= 0:
            raise NasfaceError(f"{where}: needs lr > 0, 0 <= momentum < 1 and weight_decay >= 0, got "
                               f"{self.lr}, {self.momentum} and {self.weight_decay}")
        if self.margin not in MARGIN_KINDS:
            raise NasfaceError(f"{where}.margin: unknown margin loss {self.margin!r} "
                               f"(choose from {', '.join(MARGIN_KINDS)})")
        if not self.scale > 0 or not self.alpha >= 0:
            raise NasfaceError(f"{where}: needs scale > 0 and alpha >= 0, got {self.scale} and {self.alpha}")
        if self.distill not in DISTILLER_KINDS:
            raise NasfaceError(f"{where}.distill: unknown distillation {self.distill!r} "
                               f"(choose from {', '.join(DISTILLER_KINDS)})")

    def optimisation(self) -> dict:
        """This object's ``Optimisation`` fields, to hand on to another settings class."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Optimisation)}


@dataclass(frozen=True, kw_only=True)
class LoopSettings(Optimisation):
    """What ``make_loop_state`` and ``train_loop`` read: ``ProxyBudget``, or full training's
    ``nasface.training.fulltrain.TrainingPlan``.  Each also has a ``schedule`` (``WarmupStableDecay`` /
    ``StepDecaySchedule``): a property of the proxy's budget, a field of full training's plan, so
    it is not declared here (a property here would become the field's default)."""

    steps: int
    batch_size: int
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ProxyBudget(LoopSettings):
    """How briefly a candidate trains, and with what (the papers' recipe, shortened)."""

    steps: int = 150             # 0: score the untrained network (the yardstick for "it learnt")
    batch_size: int = 32
    resolution: int = 64         # the network sees faces resized to this: 64 fits a CPU, 112 is full size
    # Warm-up-stable-decay: linear warm-up over ``warmup_steps`` (default a tenth of the steps),
    # the base rate held, then a linear decay to zero over the last ``cooldown_fraction`` of the
    # steps.  Unlike cosine, the rate before the cool-down does not depend on the total, so one
    # run serves every longer budget: a shorter budget is a branch off its stable phase
    # (``nasface.fidelity``), bit for bit the run that budget would train on its own.
    warmup_steps: int | None = None
    cooldown_fraction: float = 0.2
    # s = 64 (the papers' full-training value) barely moves in 150 steps.  MobileFaceNet, 150
    # steps: synthetic s=64 54%, s=32 57%, s=16 75%, s=8 76%; ORL s=32 91%, s=16 91%, s=8 95%
    # (untrained: 53% and 91%).  BENCHMARKS.md.
    scale: float = 8.0
    device: str = "auto"

    def check(self) -> None:
        if self.steps < 0 or self.batch_size < 2:
            raise NasfaceError(f"proxy budget needs steps >= 0 and batch size >= 2, got {self.steps} and "
                               f"{self.batch_size}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps - self.cooldown_steps:
            raise NasfaceError(f"proxy warm-up of {self.warmup_steps} steps does not fit before the cool-down of a "
                               f"{self.steps}-step budget ({self.cooldown_steps} steps)")
        if not 0.0 < self.cooldown_fraction <= 1.0:
            raise NasfaceError(f"proxy cool-down fraction must be in (0, 1], got {self.cooldown_fraction}")
        if not 16 <= self.resolution <= 112:
            raise NasfaceError(f"proxy resolution must be between 16 and 112 pixels, got {self.resolution}")
        self.check_optimisation("proxy")
        check_device(self.device)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @property
    def cooldown_steps(self) -> int:
        return int(round(self.steps * self.cooldown_fraction))

    @property
    def schedule(self) -> WarmupStableDecay:
        warmup = default_warmup(self.steps) if self.warmup_steps is None else self.warmup_steps
        return WarmupStableDecay(self.steps, warmup, self.cooldown_steps)

    @classmethod
    def from_options(cls, values: Mapping[str, object]) -> ProxyBudget:
        """The proxy the options name (``PROXY_OPTIONS``: the command line's and a study file's names
        for its fields); an option that is absent or None keeps the field's default."""
        given = {field: values.get(option) for option, field in PROXY_OPTIONS.items()}
        return cls(**{field: value for field, value in given.items() if value is not None})


# The options (``nasface.search.config.SEARCH_OPTIONS``, ``nasface score``) that set a proxy's fields.
PROXY_OPTIONS = {"proxy_steps": "steps", "proxy_batch": "batch_size", "proxy_warmup": "warmup_steps",
                 "resolution": "resolution", "distill": "distill", "margin": "margin", "seed": "seed",
                 "device": "device"}


def default_warmup(steps: int) -> int:
    """The proxy's warm-up where none is set: a tenth of its ``steps`` (of the lowest rung's, under
    successive halving, so that every rung shares it), at least one step."""
    return max(1, int(round(steps * 0.1)))


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise NasfaceError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise NasfaceError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class WarmupStableDecay:
    """The proxy's schedule: linear warm-up to the base rate over ``warmup_steps``, the base rate
    held, then a linear decay to zero over the last ``cooldown_steps`` of ``steps``."""

    steps: int
    warmup_steps: int
    cooldown_steps: int

    @property
    def decay_start(self) -> int:
        """The first step of the cool-down; before it the rate does not depend on ``steps``."""
        return self.steps - self.cooldown_steps

    def learning_rate(self, step: int, base: float) -> float:
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        if step < self.decay_start:
            return base
        return base * (self.steps - step) / (self.cooldown_steps + 1)


@dataclass(frozen=True)
class StepDecaySchedule:
    """Full training's schedule (insightface, all five papers): lr x ``factor`` at each of
    ``decay_steps``, after an optional linear warm-up over ``warmup_steps``."""

    decay_steps: tuple[int, ...]
    warmup_steps: int = 0
    factor: float = 0.1

    def learning_rate(self, step: int, base: float) -> float:
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        return base * self.factor ** sum(1 for boundary in self.decay_steps if step >= boundary)


@dataclass(frozen=True)
class TeacherTargets:
    """A teacher's view of the proxy training images, computed once and cached with the study.

    ``embeddings[i]`` / ``flipped[i]`` are the teacher's embeddings of training image i and of its
    mirror image; ``centres`` are its class centres (one row per training identity); ``held_out``,
    where cached, its flip-summed embeddings of the distinct verification faces
    (``nasface.training.evaluate.distinct_faces`` order), for the teacher-agreement signal.
    """

    embeddings: np.ndarray
    flipped: np.ndarray
    centres: np.ndarray
    folder: str | None = None   # the cache folder, which workers read the arrays from
    held_out: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def batch_targets(self, index: np.ndarray, mirror: np.ndarray, images: torch.Tensor) -> torch.Tensor:
        """The cached embeddings of the batch's images (of their mirror images where mirrored)."""
        import numpy as np
        import torch

        rows = np.where(mirror[:, None], self.flipped[index], self.embeddings[index])
        return torch.as_tensor(rows, dtype=torch.float32, device=images.device)


class TeacherNetwork:
    """A teacher run on every batch: full training sees too many images to cache its view.

    ``centres`` (one row per training identity) are needed by margin distillation only.
    """

    def __init__(self, model: nn.Module, dim: int, centres: np.ndarray | None = None):
        self.model = model.eval().requires_grad_(False)
        self.dim = dim
        self.centres = centres

    def to(self, device: torch.device) -> "TeacherNetwork":
        import torch

        self.model.to(device)
        if device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        return self

    def batch_targets(self, index: np.ndarray, mirror: np.ndarray, images: torch.Tensor) -> torch.Tensor:
        """The teacher's embeddings of the batch as the student sees it (already mirrored)."""
        import torch

        with torch.no_grad(), torch.autocast(images.device.type, dtype=torch.bfloat16,
                                             enabled=images.device.type == "cuda"):
            return self.model(images).float()


Teacher = TeacherTargets | TeacherNetwork
