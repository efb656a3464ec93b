"""What a fidelity study measures (``FidelitySettings``), checked, and the keys it logs its runs under.

``row_key`` names everything that decides an architecture's scores; it keys the log, so it must not
change for settings a log was written with (a study in progress continues under the same keys).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasface.core.errors import NasfaceError
from nasface.training.signals import SIGNALS
from nasface.arch.spec import spec_to_dict
from nasface.training.settings import ProxyBudget

if TYPE_CHECKING:
    from nasface.search import SearchConfig

DEFAULT_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MIN_ARCHITECTURES = 8      # below this a bootstrap interval of tau says nothing
LOG, REPORT, PAGE = "log.jsonl", "fidelity.json", "fidelity.html"
PROGRESS = "progress"  # under the cache: each run in progress keeps its state here (nasface.training.proxy.BudgetRun)


@dataclass(frozen=True)
class FidelitySettings:
    """What a fidelity study measures; everything in it decides the scores (the log's key)."""

    search: SearchConfig          # data, space, budgets, proxy and teacher, as a search (or study file) gives them
    architectures: int = 40
    presets: bool = True
    factors: tuple[float, ...] = DEFAULT_FACTORS
    second_seeds: int = 12
    signals: tuple[str, ...] = tuple(SIGNALS)
    bootstrap: int = 2000
    yardstick: str | None = None  # a second teacher, only measured against (the yardstick_cka signal)

    @property
    def proxy(self) -> ProxyBudget:
        """The proxy under test, its warm-up pinned so that every budget shares it."""
        base = self.search.proxy
        return dataclasses.replace(base, warmup_steps=base.schedule.warmup_steps)

    def steps(self) -> list[int]:
        return [max(1, int(round(f * self.proxy.steps))) for f in self.factors]

    @property
    def proxy_steps(self) -> int:
        return self.proxy.steps

    @property
    def reference_steps(self) -> int:
        return max(self.steps())


def check_settings(settings: FidelitySettings) -> None:
    """One clear line for settings that cannot give an answer."""
    if settings.architectures + (3 if settings.presets else 0) < MIN_ARCHITECTURES or settings.architectures < 1:
        raise NasfaceError(f"--archs {settings.architectures}: a rank interval needs at least {MIN_ARCHITECTURES} "
                           f"architectures (40 give an interval of about +/-0.2)")
    if not settings.factors or any(not math.isfinite(f) or f <= 0 for f in settings.factors):
        raise NasfaceError(f"--factors {','.join(map(str, settings.factors))}: budgets are positive multiples of "
                           f"the proxy's steps, e.g. 0.25,0.5,1,2,4,8")
    if 1.0 not in settings.factors:
        raise NasfaceError("--factors must include 1 (the proxy itself)")
    if max(settings.factors) <= 1.0:
        raise NasfaceError(f"the reference budget ({max(settings.factors)}x the proxy) must be larger than the proxy: "
                           f"add a factor above 1, e.g. 8")
    if settings.second_seeds < 0:
        raise NasfaceError(f"--second-seeds must be 0 or more, got {settings.second_seeds}")
    unknown = [s for s in settings.signals if s not in SIGNALS]
    if unknown:
        raise NasfaceError(f"unknown signal {unknown[0]!r} (signals: {', '.join(SIGNALS)})")
    if settings.proxy.steps < 1:
        raise NasfaceError("the proxy must train at least one step to be measured")
    if settings.yardstick is not None:
        from nasface.training.teacher import check_teacher

        if settings.yardstick in ("none", settings.search.teacher):
            raise NasfaceError(f"--yardstick {settings.yardstick}: name a teacher other than the study's own "
                               f"(--teacher {settings.search.teacher}), e.g. dlib-resnet")
        check_teacher(settings.yardstick, flag="--yardstick")
    proxy = settings.proxy
    shortest = dataclasses.replace(proxy, steps=min(settings.steps()))
    if proxy.schedule.warmup_steps > shortest.schedule.decay_start:
        raise NasfaceError(f"the shortest budget ({shortest.steps} steps) ends its warm-up-stable phase before the "
                           f"proxy's warm-up of {proxy.schedule.warmup_steps} steps does: drop factors below "
                           f"{proxy.schedule.warmup_steps / max(1, proxy.steps) / (1 - proxy.cooldown_fraction):.2f}")

RECIPE_FIELDS = ("steps", "batch_size", "resolution", "lr", "momentum", "weight_decay", "warmup_steps",
                 "cooldown_fraction", "margin", "scale", "distill", "alpha")


def row_key(settings: FidelitySettings, data_key: str, spec, seed: int, teacher: dict | None) -> str:
    """Everything that decides an architecture's scores, named field by field so that a setting
    added later with a neutral default leaves the log's keys (and a study in progress) alone."""
    proxy = settings.proxy
    recipe = {"data": data_key, "spec": spec_to_dict(spec), "seed": seed, "steps": settings.steps(),
              "proxy": {name: getattr(proxy, name) for name in RECIPE_FIELDS}, "teacher": teacher}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]


def teacher_identity(config: SearchConfig) -> dict | None:
    """What the teacher is (its spec and steps, or its checkpoint), not where its cache lies."""
    from nasface.training.teacher import auto_teacher

    if config.teacher == "none":
        return None
    if config.teacher == "auto":
        spec, steps = auto_teacher(config.proxy, config.teacher_spec, config.teacher_steps)
        return {"teacher": "auto", "spec": spec, "steps": steps}
    return {"teacher": str(config.teacher)}

def describe(settings: FidelitySettings) -> dict:
    config = settings.search
    return {"data": dataclasses.asdict(config.data), "space": config.space or "lfr",
            "budgets": config.budgets.stored(),
            "proxy": {k: v for k, v in dataclasses.asdict(settings.proxy).items() if k != "device"},
            "teacher": config.teacher, "teacher_spec": config.teacher_spec, "teacher_steps": config.teacher_steps,
            "architectures": settings.architectures, "presets": settings.presets,
            "factors": list(settings.factors), "steps": settings.steps(), "second_seeds": settings.second_seeds,
            "seed": config.seed, "yardstick": settings.yardstick}
