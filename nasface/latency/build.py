"""Filling a latency table: the parts networks need, and whole networks for the correction.

The default space makes far too many distinct parts to measure them all (each block setting on every
width in and out, every stride and map size: hundreds of thousands), so a table holds what the networks
it is asked about need: ``nasface latency table`` draws random networks of the space and measures their
parts, and a search measures the parts of each sampled candidate the table lacks when it first meets
them.  Parts are measured in small groups, run in turn, and each is appended to the table as soon as
its group is done.
"""

from __future__ import annotations

from nasface.arch.budget import Budgets
from nasface.latency.measure import TIMED_RUNS, WARMUP_RUNS, measure, measure_parts
from nasface.latency.parts import part_keys
from nasface.latency.table import LatencyTable
from nasface.latency.target import FIT_NETWORKS, LatencyTarget
from nasface.core.stages import SILENT, Stages
from nasface.arch.space import SearchSpace, feasible_sample
from nasface.arch.spec import ArchSpec

GROUP = 8  # parts timed in turn at once


def ensure_parts(table: LatencyTable, specs: list[ArchSpec], target: LatencyTarget, runs: int = TIMED_RUNS,
                 warmup: int = WARMUP_RUNS, stages: Stages = SILENT, source: str = "synthetic",
                 sittings: int = 1) -> int:
    """Time every part of ``specs`` until the table holds ``sittings`` sittings of it (each sitting a pass
    over the parts that lack one, on maps drawn from faces of ``source``; a part counts at its least
    figure); return how many part timings were taken."""
    taken = 0
    for sitting in range(1, sittings + 1):
        missing = table.missing(specs, sitting)
        if not missing:
            continue
        label = "latency of parts" + (f", sitting {sitting} of {sittings}" if sittings > 1 else "")
        with stages.stage(label, len(missing), "parts") as stage:
            for first in range(0, len(missing), GROUP):
                group = missing[first:first + GROUP]
                for part, timing in zip(group, measure_parts(group, target, runs, warmup, source)):
                    table.add_part(part, timing.ms, timing.median_ms, timing.runs, timing.nodes, timing.lead_ms,
                                   timing.copies)
                stage.update(first + len(group))
        taken += len(missing)
    return taken


def ensure_networks(table: LatencyTable, specs: list[ArchSpec], target: LatencyTarget, runs: int = TIMED_RUNS,
                    warmup: int = WARMUP_RUNS, stages: Stages = SILENT, source: str = "synthetic") -> None:
    """Measure the networks of ``specs`` the table has not measured whole (their parts first), on faces
    of ``source``."""
    from nasface.latency.table import LatencyPredictor

    ensure_parts(table, specs, target, runs, warmup, stages, source)
    measured = {row["name"] for row in table.networks}
    wanted = [spec for spec in specs if spec.name not in measured]
    if not wanted:
        return
    summed = LatencyPredictor(table)
    with stages.stage("latency of whole networks", len(wanted), "networks") as stage:
        for first in range(0, len(wanted), GROUP):
            group = wanted[first:first + GROUP]
            for spec, figure in zip(group, measure(group, target, runs, warmup, source)):
                parts_ms, nodes = summed.summed(spec)
                table.add_network(spec.name, parts_ms, figure.ms, figure.median_ms, figure.runs, nodes, part_keys(spec))
            stage.update(first + len(group))


def sample_networks(space: SearchSpace, count: int, seed: int, budgets: Budgets = Budgets()) -> list[ArchSpec]:
    """``count`` valid random networks of ``space`` within ``budgets`` (the same ones for the same seed)."""
    return feasible_sample(space, budgets, 0, seed, keep=count)["specs"]


def build_table(table: LatencyTable, space: SearchSpace, target: LatencyTarget, networks: int = 40, fit: int = FIT_NETWORKS,
                seed: int = 0, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS, stages: Stages = SILENT,
                source: str = "synthetic", sittings: int = 1) -> LatencyTable:
    """Measure the parts of ``networks`` random networks of ``space`` (in ``sittings`` sittings, each part
    at its least figure), and the first ``fit`` of them whole (the correction is fitted on them)."""
    specs = sample_networks(space, networks, seed)
    ensure_parts(table, specs, target, runs, warmup, stages, source, sittings)
    ensure_networks(table, specs[:fit], target, runs, warmup, stages, source)
    return table
