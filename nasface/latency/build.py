"""Filling a latency table: the parts networks need, and whole networks for the correction.

The default space makes far too many distinct parts to measure them all (each block setting on every
width in and out, every stride and map size: hundreds of thousands), so a table holds what the networks
it is asked about need: ``nasface latency table`` draws random networks of the space and measures their
parts, and a search measures the parts of each sampled candidate the table lacks when it first meets
them.  Parts are measured in small groups, run in turn, and each is appended to the table as soon as
its group is done.

A part's or a network's figure depends on the company it is timed in turn with (what the others evict
from the caches between its runs): on the int8 and OpenVINO targets a group of eight networks timed
together read up to 8 % high or low as one.  So a sitting after the first times its parts and networks in
another order, each beside other company, and each counts at the median of its sittings' figures (its
figure in typical company): three sittings so shuffled, at their median, put 2.5-3.8 points more networks
within +-10 % of their prediction than three in the same order at their least on onnxruntime int8, 5.4-7.5
on OpenVINO fp32 and 2.4-12.2 on OpenVINO int8, in one window each (``benchmarks/latency_company.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from nasface.arch.budget import Budgets
from nasface.latency.measure import GROUP, TIMED_RUNS, WARMUP_RUNS, measure, measure_parts
from nasface.latency.parts import Part, part_keys
from nasface.latency.table import LatencyTable
from nasface.latency.target import FIT_NETWORKS, LatencyTarget
from nasface.core.stages import SILENT, Stages
from nasface.arch.space import SearchSpace, feasible_sample
from nasface.arch.spec import ArchSpec

Timed = TypeVar("Timed")


def sitting_order(items: list[Timed], sitting: int) -> list[Timed]:
    """The order sitting ``sitting`` (from 1) times ``items`` in: as met in the first, shuffled (the same way
    for the same sitting) in later ones, so that each meets other company in its group."""
    if sitting <= 1:
        return list(items)
    return [items[index] for index in np.random.default_rng(sitting).permutation(len(items))]


def in_sittings(lacking: Callable[[int], list[Timed]], sittings: int, label: str, unit: str, stages: Stages,
                time_group: Callable[[list[Timed]], None]) -> int:
    """Sitting by sitting, ``time_group`` on groups of ``GROUP`` of what ``lacking(sitting)`` names (what
    lacks that sitting), in ``sitting_order``; return how many were timed."""
    taken = 0
    for sitting in range(1, sittings + 1):
        wanted = sitting_order(lacking(sitting), sitting)
        if not wanted:
            continue
        with stages.stage(label + (f", sitting {sitting} of {sittings}" if sittings > 1 else ""), len(wanted),
                          unit) as stage:
            for first in range(0, len(wanted), GROUP):
                time_group(wanted[first:first + GROUP])
                stage.update(min(first + GROUP, len(wanted)))
        taken += len(wanted)
    return taken


def ensure_parts(table: LatencyTable, specs: list[ArchSpec], target: LatencyTarget, runs: int = TIMED_RUNS,
                 warmup: int = WARMUP_RUNS, stages: Stages = SILENT, source: str = "synthetic",
                 sittings: int = 1) -> int:
    """Time every part of ``specs`` until the table holds ``sittings`` sittings of it (``in_sittings``, on
    maps drawn from faces of ``source``; a part counts at the median of its sittings' figures); return how
    many part timings were taken."""
    def time_group(group: list[Part]) -> None:
        for part, timing in zip(group, measure_parts(group, target, runs, warmup, source)):
            table.add_part(part, timing.ms, timing.median_ms, timing.runs, timing.nodes, timing.lead_ms, timing.copies)

    return in_sittings(lambda sitting: table.missing(specs, sitting), sittings, "latency of parts", "parts", stages,
                       time_group)


def ensure_networks(table: LatencyTable, specs: list[ArchSpec], target: LatencyTarget, runs: int = TIMED_RUNS,
                    warmup: int = WARMUP_RUNS, stages: Stages = SILENT, source: str = "synthetic",
                    sittings: int = 1) -> None:
    """Measure the networks of ``specs`` whole (their parts first) until the table holds ``sittings``
    sittings of each (``in_sittings``), on faces of ``source``; a network counts at the median of its
    sittings' figures."""
    from nasface.latency.table import LatencyPredictor

    ensure_parts(table, specs, target, runs, warmup, stages, source)
    summed = LatencyPredictor(table)

    def time_group(group: list[ArchSpec]) -> None:
        for spec, figure in zip(group, measure(group, target, runs, warmup, source)):
            parts_ms, nodes, _ = summed.summed(spec)
            table.add_network(spec.name, parts_ms, figure.ms, figure.median_ms, figure.runs, nodes, part_keys(spec))

    in_sittings(lambda sitting: [spec for spec in specs if len(table.network_figures.get(spec.name, ())) < sitting],
                sittings, "latency of whole networks", "networks", stages, time_group)


def sample_networks(space: SearchSpace, count: int, seed: int, budgets: Budgets = Budgets()) -> list[ArchSpec]:
    """``count`` valid random networks of ``space`` within ``budgets`` (the same ones for the same seed)."""
    return feasible_sample(space, budgets, 0, seed, keep=count)["specs"]


def build_table(table: LatencyTable, space: SearchSpace, target: LatencyTarget, networks: int = 40, fit: int = FIT_NETWORKS,
                seed: int = 0, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS, stages: Stages = SILENT,
                source: str = "synthetic", sittings: int = 1) -> LatencyTable:
    """Measure the parts of ``networks`` random networks of ``space``, and the first ``fit`` of them whole
    (the correction is fitted on them), in ``sittings`` sittings, each at the median of its figures."""
    specs = sample_networks(space, networks, seed)
    ensure_parts(table, specs, target, runs, warmup, stages, source, sittings)
    ensure_networks(table, specs[:fit], target, runs, warmup, stages, source, sittings)
    return table
