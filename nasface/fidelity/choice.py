"""Which architectures a fidelity study trains, and in what order.

Every order here is chosen so that a study cut short is still usable: each prefix of the
architectures, of the second seeds and of the runs spans the FLOPs range.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nasface.arch.budget import Budgets
from nasface.core.errors import NasfaceError
from nasface.fidelity.settings import FidelitySettings
from nasface.arch.model import count
from nasface.arch.space import feasible_sample, load_space
from nasface.arch.spec import load_spec, preset_names
from nasface.training.student import proxy_spec

def draw_architectures(settings: FidelitySettings) -> list:
    """N feasible architectures spread evenly over log FLOPs, then the presets that fit.

    A pool of 12N feasible random points is drawn (seeded); the k-th of N picks the unused point
    nearest to the k-th of N equally spaced log-FLOPs targets between the pool's extremes.  The
    list is then put in an order whose every prefix spans the range (bisection order), so a study
    cut short still covers cheap and costly architectures alike.
    """
    config = settings.search
    space = load_space(config.space)
    limits: Budgets = config.budgets
    resolution = settings.proxy.resolution

    def runs(spec) -> bool:
        try:
            proxy_spec(spec, resolution)
        except NasfaceError:
            return False
        return True

    pool = [s for s in feasible_sample(space, limits, 0, config.seed, keep=12 * settings.architectures)["specs"]
            if runs(s)]
    if len(pool) < settings.architectures:
        raise NasfaceError(f"only {len(pool)} feasible architectures of the space run at {resolution} px under "
                           f"these budgets; loosen them or ask for fewer --archs")
    logs = np.log10([count(s, limits.convention)["flops"] for s in pool])
    low, high = float(logs.min()), float(logs.max())
    chosen: list[int] = []
    for k in range(settings.architectures):
        target = low + (high - low) * (k + 0.5) / settings.architectures
        free = [i for i in np.argsort(np.abs(logs - target), kind="stable") if i not in chosen]
        chosen.append(int(free[0]))
    specs = [dataclasses.replace(pool[i], name=f"arch-{n:02d}") for n, i in enumerate(chosen)]
    ordered = [specs[i] for i in _spread_order(len(specs))]
    if settings.presets:
        for name in preset_names():
            spec = load_spec(name)
            try:
                space.params_of(spec)
            except NasfaceError:
                continue  # not a point of the space (a teacher)
            if limits.fits(count(spec, limits.convention)) and runs(spec):
                ordered.append(spec)
    return ordered


def _spread_order(n: int) -> list[int]:
    """0..n-1 in bit-reversed order, whose every prefix is spread over the range (n=8: 0 4 2 6 1 5 3 7)."""
    bits = max(1, (n - 1).bit_length())
    reversed_ = (int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits))
    return [i for i in reversed_ if i < n]


def second_seed_subset(specs: list, count_wanted: int) -> list:
    """Every k-th architecture in FLOPs order, so the repeated ones span the range, listed (and so
    run) in bisection order: every prefix spans it too, so the seed noise that a study cut short
    has measured is that of small and large networks alike, not of the smallest only."""
    if count_wanted <= 0:
        return []
    by_cost = sorted(specs, key=lambda s: count(s)["flops"])
    picks = np.unique(np.linspace(0, len(by_cost) - 1, min(count_wanted, len(by_cost))).round().astype(int))
    return [by_cost[picks[i]] for i in _spread_order(len(picks))]

def interleave(first: list, second: list) -> list:
    """``first`` in order, with ``second``'s items spread evenly among them (noise ceiling early)."""
    if not second:
        return list(first)
    every = max(1, math.ceil(len(first) / len(second)))
    merged, pending = [], list(second)
    for index, item in enumerate(first, 1):
        merged.append(item)
        if index % every == 0 and pending:
            merged.append(pending.pop(0))
    return merged + pending


def run_plan(specs: list, repeated: list, seed: int) -> list[tuple]:
    """The order the runs are taken in: the first seeds in ``specs``'s order with the second seeds
    (of ``repeated``) spread evenly among them, each second seed after its first seed, which is
    brought forward where it would come later: every second seed trained completes a pair of the
    noise ceiling at once, instead of waiting hours for its first."""
    plan, placed = [], set()
    for spec, run_seed in interleave([(spec, seed) for spec in specs], [(spec, seed + 1) for spec in repeated]):
        if spec.name in placed and run_seed == seed:
            continue  # brought forward already
        if spec.name not in placed:
            plan.append((spec, seed))
            placed.add(spec.name)
        if run_seed != seed:
            plan.append((spec, run_seed))
    return plan
