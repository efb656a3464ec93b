"""``nasface latency``: measure networks (``nasface latency SPEC ...``) and build a table (``... table``).

A thin layer over ``nasface.latency``; imports nothing heavy until a command runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from typer.core import TyperGroup

from nasface.cli.base import on_interrupt
from nasface.latency.target import DEFAULT_TARGET, FIT_NETWORKS, LatencyTarget, default_table, describe_key


class _MeasureByDefault(TyperGroup):
    """``nasface latency SPEC`` is ``nasface latency measure SPEC``; ``table`` is the other command."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["measure", *args]
        return super().parse_args(ctx, args)


latency_app = typer.Typer(cls=_MeasureByDefault, no_args_is_help=True, add_completion=False,
                          help="Measure networks on a real runtime, or build the per-part latency table that "
                               "predicts them.")
_default = LatencyTarget.parse(DEFAULT_TARGET)
RUNTIME = typer.Option(_default.runtime, help="onnxruntime or openvino.")
PRECISION = typer.Option(_default.precision, help="fp32, or int8 (static quantisation, calibrated on --data).")
THREADS = typer.Option(_default.threads, help="Threads the runtime may use.")
RUNS = typer.Option(50, help="Timed runs per network, after the warm-up; the figure is their minimum.")
WARMUP = typer.Option(10, help="Untimed runs first.")
DATA = typer.Option("synthetic", help="The faces networks run on and int8 is calibrated on (a data source, as "
                                        "--data of search).")


def _target(runtime: str, precision: str, threads: int) -> LatencyTarget:
    return LatencyTarget.parse(f"{runtime}:{precision}:{threads}", option="--runtime/--precision/--threads")


@latency_app.command("measure")
def measure_command(
    specs: list[str] = typer.Argument(..., help="Presets or spec files, measured eight at a time in turn; fewer "
                                                "run beside seven fixed networks, not reported."),
    runtime: str = RUNTIME, precision: str = PRECISION, threads: int = THREADS, runs: int = RUNS,
    warmup: int = WARMUP, data: str = DATA,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per network, with its key."),
) -> None:
    """Measure networks: exported deployed (BatchNorm folded), batch 1, min and median of --runs."""
    from nasface.latency.measure import measure
    from nasface.arch.spec import load_spec

    target = _target(runtime, precision, threads)
    target.key()  # a runtime that is not installed: one line before any export
    _check_runs(runs, warmup)
    with on_interrupt("nothing was measured or written"):
        figures = measure([load_spec(spec) for spec in specs], target, runs, warmup, data)
    for figure in figures:
        if as_json:
            print(json.dumps(figure.to_dict()))
        else:
            print(f"{figure.name}: {figure.ms:.3f} ms (min of {figure.runs}; median {figure.median_ms:.3f} ms) "
                  f"on {describe_key(figure.key)}, {figure.key['input_size']}x{figure.key['input_size']} input")


@latency_app.command("table")
def table_command(
    space: str = typer.Option("lfr", help="A search space YAML, or a bundled one by name: lfr (the default) "
                                          "or lfr-wide."),
    runtime: str = RUNTIME, precision: str = PRECISION, threads: int = THREADS,
    networks: int = typer.Option(40, help="Random networks of the space whose parts are measured."),
    fit: int | None = typer.Option(None, help=f"How many of them are measured whole to fit the correction (default "
                                       f"{FIT_NETWORKS}, or --networks where fewer: fitted on 20, held-out "
                                       f"networks were 5-8 points more often within +-10 % than on 10; "
                                       f"BENCHMARKS.md)."),
    sittings: int = typer.Option(1, help="Time each part, and each network measured whole, in this many "
                                         "sittings, each after the first in another order (beside other "
                                         "company); each counts at the median of its figures (its figure in "
                                         "typical company). "
                                         "Raising it later times each once more."),
    seed: int = typer.Option(0, help="Which random networks."),
    table: Path = typer.Option(None, help="The table file (default: studies/latency-tables/<runtime, precision, "
                                          "threads, CPU>.jsonl, which searches in studies/ use)."),
    runs: int = RUNS, warmup: int = WARMUP, data: str = DATA,
) -> None:
    """Measure the parts random networks of the space need (resumable), and some whole networks."""
    from rich.console import Console

    from nasface.core.errors import NasfaceError
    from nasface.latency.build import build_table
    from nasface.latency.table import Correction, LatencyTable
    from nasface.core.stages import format_duration
    from nasface.ui.progress import StageDisplay
    from nasface.arch.space import load_space

    target = _target(runtime, precision, threads)
    key = target.key()
    _check_runs(runs, warmup)
    if fit is None:
        fit = min(FIT_NETWORKS, networks)
    if networks < 1 or not 0 <= fit <= networks:
        raise NasfaceError(f"--networks {networks} --fit {fit}: measure at least one network, and fit on at "
                           f"most that many")
    if sittings < 1:
        raise NasfaceError(f"--sittings {sittings}: time each part and network in at least one sitting")
    loaded = load_space(space)
    path = table or default_table(target)
    opened = LatencyTable.open(path, key)
    started = time.perf_counter()
    with on_interrupt(f"{path} keeps every part measured so far; the same command continues it"):
        build_table(opened, loaded, target, networks, fit, seed, runs, warmup,
                    StageDisplay("rich", Console(stderr=True)), data, sittings)
    line = Correction.fit(opened.networks)
    # the PReLU term only where the runtime's PReLU runs by its input's signs (and enough networks to fit it)
    prelus = f"{line.per_prelu_million:+.3f} ms x million PReLU elements " if line.per_prelu_million else ""
    print(f"{path}: {len(opened.entries)} parts, {len(opened.networks)} whole networks "
          f"(measured ~ {line.slope:.3f} x sum of parts {line.per_node:+.4f} ms x operators "
          f"{prelus}{line.intercept:+.3f} ms) "
          f"on {describe_key(key)}; "
          f"{format_duration(time.perf_counter() - started)}")


def _check_runs(runs: int, warmup: int) -> None:
    from nasface.core.errors import NasfaceError

    if runs < 1 or warmup < 0:
        raise NasfaceError(f"--runs {runs} --warmup {warmup}: time at least one run, after zero or more warm-ups")
