"""``nasface export``: a chosen trial's spec and a full-training recipe (``nasface.training.recipe``),
ready for ``nasface train``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

import optuna

from nasface.arch.model import count
from nasface.arch.spec import save_spec, spec_from_dict
from nasface.core.errors import NasfaceError
from nasface.search.latency import measured_latency
from nasface.search.record import read
from nasface.search.results import best_trial, largest_within_noise, study_settings, within_noise_margin
from nasface.training.recipe import Recipe, save_recipe


LARGEST_WITHIN_NOISE = "largest-within-noise"


def export_trial(study: optuna.Study, trial: str | int, output: str | os.PathLike,
                 seed_noise: float | None = None) -> tuple[Path, Path]:
    """Write ``<study>-trial<N>.yaml`` (the spec) and ``recipe.yaml`` into ``output``.

    ``trial``: a number, ``best`` (the most accurate), or ``largest-within-noise`` (the largest the proxy
    cannot tell from the most accurate, given its ``seed_noise`` in points: ``results.largest_within_noise``)."""
    chosen_by = None
    if trial == "best":
        chosen = best_trial(study)
    elif trial == LARGEST_WITHIN_NOISE:
        if seed_noise is None:
            raise NasfaceError(f"--trial {LARGEST_WITHIN_NOISE} needs the proxy's seed noise: run nasface validate "
                               f"with the study's settings (its validate.json is then found), or give --seed-noise "
                               f"POINTS (a network's accuracy's sd over seeds)")
        chosen = largest_within_noise(study, seed_noise)
        chosen_by = {"rule": LARGEST_WITHIN_NOISE, "seed_noise_points": seed_noise,
                     "margin_points": 100 * within_noise_margin(seed_noise), "most_accurate_trial": best_trial(study).number}
    else:
        try:
            chosen = study.trials[int(trial)]
        except (ValueError, IndexError):
            raise NasfaceError(f"--trial {trial!r}: the study has trials 0..{len(study.trials) - 1}, "
                               f"or use --trial best or --trial {LARGEST_WITHIN_NOISE}") from None
    facts = read(chosen)
    if not facts.trained and facts.kind != "duplicate":  # a duplicate's architecture was trained, as another trial
        what = {"rejected": "was rejected and never trained", "invalid": "is not a valid network",
                "failed": "failed in training", "interrupted": "was interrupted (its retry is another trial)"}
        raise NasfaceError(f"trial {chosen.number} {what.get(facts.kind, 'has not been trained')}"
                           f"{f' ({facts.reason})' if facts.reason else ''}; export a trained one: --trial best, or a "
                           f"number from nasface report {shlex.quote(study.study_name)} --json")
    spec = spec_from_dict(facts.spec)
    settings = study_settings(study)
    name = f"{study.study_name}-trial{chosen.number}"
    output = Path(output)
    spec_path = save_spec(dataclasses.replace(spec, name=name), output / f"{name}.yaml")
    metrics = facts.metrics or {}
    costs = {k: v for k, v in count(spec, settings.get("budgets", {}).get("convention", "lfr")).items()
             if k != "stages"}
    measured = measured_latency(study).get(chosen.number)
    if measured:  # a front member of a search with a latency target: its measured figure, with its key
        costs["latency"] = measured
    distill = settings.get("proxy", {}).get("distill", "angular")
    # Generations distil one from another: without distillation there is one.
    generations = 1 if distill == "none" else Recipe.generations
    proxy = {"trial": chosen.number, "accuracy": metrics.get("accuracy"), "tar_at_far": metrics.get("tar_at_far"),
             "settings": settings.get("proxy"), **({"chosen_by": chosen_by} if chosen_by else {})}
    recipe = Recipe(spec=spec_path.name, distill=distill, generations=generations, costs=costs, proxy=proxy)
    return spec_path, save_recipe(recipe, output / "recipe.yaml")
