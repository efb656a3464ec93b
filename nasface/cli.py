"""``nasface`` command line: a thin layer over the Python API.

Every user mistake surfaces as ``NasfaceError`` and is printed as one line (``error: ...``) with
exit status 2; nothing is written before the input has been checked.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import NoReturn

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

from nasface.errors import NasfaceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Neural-architecture search and design-space explorer for lightweight face recognition.")
console = Console(soft_wrap=True)
# Progress while a command's stdout carries its data (JSON, facts): on stderr, so a pipe gets only the data.
progress_console = Console(stderr=True, soft_wrap=True)


def _print_table(table: Table) -> None:
    """A table whole: where the console is narrower than its content (a pipe reads as 80 columns), it is
    printed at the width it needs rather than with names and numbers cut short."""
    needed = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    (console if needed <= console.width else Console(width=needed, soft_wrap=True)).print(table)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        print(f"nasface {version('nasface')}")
        raise typer.Exit()


@app.callback()
def _options(_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                    help="Print nasface's version and exit.")) -> None:
    pass  # the options that precede any command


class Convention(str, Enum):
    lfr = "lfr"
    macs = "macs"


def _interrupted(what_next: str) -> NoReturn:
    """Ctrl-C: one line on stderr, exit status 130 (128 + SIGINT, as a shell reports it), no traceback."""
    print(f"interrupted: {what_next}", file=sys.stderr, flush=True)
    sys.exit(130)


# What Ctrl-C leaves before a search's candidates (or a score's training): every cache is whole or absent.
NOTHING_HALF_WRITTEN = ("no cache is left half-written; the same command starts the unfinished stage again and "
                        "reuses the finished ones")


def _human(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


@app.command()
def presets(as_json: bool = typer.Option(False, "--json", help="Print one JSON object per preset.")) -> None:
    """List the seed networks (presets) with their exact costs."""
    from nasface.model import count
    from nasface.spec import load_spec, preset_names

    rows = []
    for name in preset_names():
        spec = load_spec(name)
        rows.append({"name": name, "embedding": spec.embedding.size, **count(spec)})
    if as_json:
        for row in rows:
            row.pop("stages")
            print(json.dumps(row))
        return
    # compact (no vertical rules, no padding beside the one-space rules): it fits 80 columns
    table = Table(title="nasface presets (LFR2019 light track: FLOPs < 1G in the lfr convention, fp32 weights < 20 MB)",
                  box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for column in ("preset", "LFR FLOPs", "MACs", "params", "weights", "peak act.", "emb."):
        table.add_column(column, justify="left" if column == "preset" else "right", no_wrap=True)
    for row in rows:
        table.add_row(row["name"], f"{row['lfr_flops']:,}", _human(row["macs"]), _human(row["params"]),
                      f"{row['weight_bytes'] / 1e6:.2f} MB", f"{row['activation_bytes'] / 1e6:.2f} MB",
                      str(row["embedding"]))
    _print_table(table)


@app.command("count")
def count_command(
    spec: str = typer.Argument(..., help="A preset name or the path of a spec YAML / JSON file."),
    flops_convention: Convention = typer.Option(Convention.lfr, "--flops-convention",
                                                help="lfr: insightface's LFR2019 counter; macs: multiply-accumulates."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Exact FLOPs, MACs, parameters, weight size and peak activation memory of a spec."""
    from nasface.model import count
    from nasface.spec import load_spec

    arch = load_spec(spec)
    figures = count(arch, flops_convention.value)
    if as_json:
        print(json.dumps({"spec": spec, **figures}))
        return
    size = arch.input_size
    table = Table(title=f"{spec}: cost at batch 1, {size}x{size} input ({figures['convention']} FLOPs)")
    for column in ("stage", "FLOPs", "MACs", "params"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in figures["stages"]:
        table.add_row(stage["name"], f"{stage['flops']:,}", f"{stage['macs']:,}", f"{stage['params']:,}")
    table.add_row("total", f"{figures['flops']:,}", f"{figures['macs']:,}", f"{figures['params']:,}",
                  style="bold")
    _print_table(table)
    console.print(f"weights: {figures['weight_bytes']:,} bytes fp32 ({figures['weight_bytes'] / 1e6:.2f} MB, "
                  f"{figures['weight_bytes'] / 2**20:.2f} MiB); peak activations: "
                  f"{figures['activation_bytes']:,} bytes")


@app.command("spec")
def spec_command(
    spec: str = typer.Argument(..., help="A preset name or the path of a spec file."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the spec here (.yaml, .yml or .json: the "
                                                             "extension chooses the format) in an existing folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Validate a spec and print it in full (every default spelled out), or write it to a file."""
    from nasface.spec import dump_spec, load_spec, save_spec

    loaded = load_spec(spec)
    if output is not None:
        save_spec(loaded, output, make_folders=False)
        console.print(f"wrote {output}")
    else:
        print(dump_spec(loaded, "json" if as_json else "yaml"), end="")


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Distill(str, Enum):
    angular = "angular"
    margin = "margin"
    none = "none"


class Margin(str, Enum):
    arcface = "arcface"
    cosface = "cosface"
    sphereface = "sphereface"


class Output(str, Enum):
    rich = "rich"
    quiet = "quiet"
    jsonl = "jsonl"


def _proxy_budget(steps: int | None, batch: int | None, resolution: int | None, seed: int, device: Device,
                  distill: Distill, margin: Margin = Margin.arcface):
    """The search's proxy (``ProxyBudget``'s defaults) with what the command line gave."""
    from nasface.train import ProxyBudget

    given = {"steps": steps, "batch_size": batch, "resolution": resolution}
    budget = ProxyBudget(seed=seed, device=device.value, distill=distill.value, margin=margin.value,
                         **{name: value for name, value in given.items() if value is not None})
    budget.check()
    return budget


def _print_facts(facts: dict, as_json: bool, lines=None) -> None:
    """One JSON object for scripts, or aligned ``label: text`` lines for a person (``lines(facts)``:
    ``nasface.ui.facts.fact_lines`` by default)."""
    from nasface.ui.facts import fact_lines

    if as_json:
        print(json.dumps(facts))
        return
    rows = (lines or fact_lines)(facts)
    width = max((len(label) for label, _ in rows), default=0)
    for label, text in rows:
        console.print(f"{label:>{width}}: {text}", highlight=False, markup=False)


@app.command("data")
def data_command(
    source: str = typer.Argument(..., help="synthetic, orl, orl-aligned, an image folder (aligned:FOLDER aligns "
                                           "its photos), a RecordIO folder / prefix, or a .bin"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a face data source: format, images, identities or pairs, that a sample decodes, and for an
    aligned source how many photos were aligned and which were not."""
    from nasface.data import describe
    from nasface.progress import StageDisplay

    # aligning a folder of photos the first time takes a while: shown on stderr, stdout stays the facts
    _print_facts(describe(source, StageDisplay("rich", progress_console)), as_json)


@app.command("score")
def score_command(
    spec: str = typer.Argument(..., help="A preset name or a spec file."),
    data: str = typer.Option("synthetic", help="synthetic, orl, an image folder or a RecordIO folder."),
    val_bin: str = typer.Option(None, help="Verify on this insightface .bin instead of held-out identities."),
    teacher: str = typer.Option("none", help="none, auto (train one, cached), dlib-resnet (pretrained; "
                                             "nasface[dlib]), or a checkpoint path."),
    teacher_spec: str = typer.Option(None, help="The teacher's preset or spec (auto: what to train)."),
    distill: Distill = typer.Option(Distill.angular, help="Distillation from the teacher."),
    margin: Margin = typer.Option(Margin.arcface, help="Margin softmax."),
    proxy_steps: int = typer.Option(None, help="SGD steps (0 scores the untrained network; default: the "
                                               "search's proxy)."),
    proxy_batch: int = typer.Option(None, help="Batch size (default: the search's proxy)."),
    resolution: int = typer.Option(None, help="Train at this input size (112: full size; less: cheaper; "
                                              "default: the search's proxy)."),
    seed: int = typer.Option(0),
    device: Device = typer.Option(Device.auto),
    cache_dir: Path = typer.Option(Path("studies") / ".cache", help="Where decoded data and teachers are cached."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Train one architecture briefly (the search's proxy) and score it on unseen identities."""
    from nasface.progress import StageDisplay
    from nasface.search import DataSettings, load_proxy_data
    from nasface.spec import load_spec
    from nasface.teacher import check_teacher, teacher_targets
    from nasface.train import score
    from nasface.ui.facts import score_lines

    arch = load_spec(spec)
    budget = _proxy_budget(proxy_steps, proxy_batch, resolution, seed, device, distill, margin)
    check_teacher(teacher, teacher_spec)
    # the stages (decoding, a teacher's training) on stderr: stdout is the metrics alone
    stages = StageDisplay("rich", progress_console)
    try:
        proxy = load_proxy_data(DataSettings.for_source(data, val_bin=val_bin), seed, cache_dir, stages)
        targets = teacher_targets(teacher, proxy, cache_dir, budget, teacher_spec=teacher_spec,
                                  log=lambda m: progress_console.print(f"[dim]{m}[/dim]"), progress=stages)
        facts = score(arch, proxy.train, proxy.pairs, budget, targets)
    except KeyboardInterrupt:
        _interrupted(NOTHING_HALF_WRITTEN)
    _print_facts({"spec": spec, **facts} if as_json else facts, as_json, score_lines)


@app.command("space")
def space_command(
    file: str = typer.Argument(None, help="A search space YAML, or a bundled one by name: lfr (the default) or lfr-wide."),
    budget_flops: str = typer.Option(None, help="e.g. 1G"),
    budget_mem: str = typer.Option(None, help="fp32 weight bytes, e.g. 20MB"),
    budget_params: str = typer.Option(None),
    budget_act_mem: str = typer.Option(None),
    flops_convention: Convention = typer.Option(Convention.lfr, "--flops-convention"),
    sample: int = typer.Option(0, help="Write this many random feasible specs."),
    seed: int = typer.Option(0),
    output: Path = typer.Option(None, "-o", help="Folder for --sample's YAML files."),
    estimate: int = typer.Option(2000, help="Random points drawn to estimate the feasible fraction."),
) -> None:
    """Print a search space's knobs, its size and the feasible fraction under budgets."""
    from nasface.budget import Budgets
    from nasface.space import feasible_sample, load_space
    from nasface.spec import save_spec

    budgets = Budgets.parse(budget_flops, budget_mem, budget_params, budget_act_mem, flops_convention.value)
    space = load_space(file)
    if sample and output is None:
        raise NasfaceError("--sample needs -o DIR, the folder to write the specs into")
    table = Table(title=f"search space {space.name} ({space.path})")
    table.add_column("knob")
    table.add_column("choices")
    for name, choices in space.knobs():
        table.add_row(name, ", ".join(str(c) for c in choices))
    console.print(table)
    console.print(f"size: {space.size():,} settings ({space.size():.2e})")
    stats = feasible_sample(space, budgets, estimate, seed)
    console.print(f"of {estimate:,} random points: {stats['valid']:.1%} valid architectures, "
                  f"{stats['feasible']:.1%} within budget ({'; '.join(budgets.describe())})")
    if sample:
        specs = feasible_sample(space, budgets, sample, seed, keep=sample)["specs"]
        if len(specs) < sample:
            raise NasfaceError(f"found only {len(specs)} feasible specs in {sample * 200} draws; loosen the budgets")
        for index, spec in enumerate(specs):
            save_spec(spec, output / f"{space.name}-{seed}-{index:03d}.yaml")
        console.print(f"wrote {len(specs)} specs to {output}")


def search_command(config: Path = typer.Option(None, help="A study definition YAML (studies/*.yaml) with the "
                                                     "same options (underscores or dashes)."),
                   progress: Output = typer.Option(None, help="What is shown while it runs: rich, quiet or jsonl "
                                                              "(one JSON object per event; default rich)."),
                   output: Output = typer.Option(None, hidden=True, help="The former name of --progress."),
                   **options) -> None:
    """Search the space under hard budgets; every completed trial is within budget."""
    from nasface.progress import Reporter
    from nasface.search import SearchInterrupted, config_from_options, run_search

    # --output, unlisted, keeps the scripts written before it was renamed working, silently (they may
    # read stderr as one line); given beside --progress it must agree
    if output is not None and progress is not None and progress != output:
        raise NasfaceError(f"--output {output.value} and --progress {progress.value}: --output is the former "
                           f"name of --progress; give --progress alone")
    search_config = config_from_options(options, config)
    try:
        run_search(search_config, Reporter((progress or output or Output.rich).value))
    except SearchInterrupted:  # during the candidates: the search stopped in order
        _interrupted("finished trials are kept and the unfinished ones enqueued again; the same command resumes "
                     "the study")
    except KeyboardInterrupt:  # before the candidates
        _interrupted(NOTHING_HALF_WRITTEN)


# The search options that say what a fidelity study measures: its data, space, budgets, proxy and teacher.
FIDELITY_SEARCH_OPTIONS = ("data", "val_bin", "train_identities", "val_identities", "pairs", "space", "budget_flops",
                           "budget_mem", "teacher", "teacher_spec", "teacher_steps", "distill", "proxy_steps",
                           "proxy_warmup", "proxy_batch", "resolution", "seed", "device")


def fidelity_command(
    config: Path = typer.Option(None, help="A study definition YAML: its data, space, budgets, proxy and teacher "
                                           "are what is measured (e.g. studies/lfr-light.yaml)."),
    archs: int = typer.Option(40, help="Architectures drawn from the space (stratified over FLOPs)."),
    presets: bool = typer.Option(True, "--presets/--no-presets", help="Add the seed presets that fit."),
    factors: str = typer.Option("0.25,0.5,1,2,4,8", help="Budgets as multiples of the proxy's steps; the "
                                                        "largest is the reference."),
    second_seeds: int = typer.Option(12, help="Architectures trained again with a second seed (noise ceiling)."),
    signals: str = typer.Option(None, help="Comma-separated signals to analyse (default: all)."),
    bootstrap: int = typer.Option(2000, help="Bootstrap resamples for the intervals."),
    yardstick: str = typer.Option(None, help="A second teacher the students do not learn from (dlib-resnet, auto or "
                                             "a checkpoint): their agreement with it is the yardstick_cka signal; "
                                             "runs logged without it are replayed to the proxy's budget to fill it in."),
    threads: int = typer.Option(None, help="torch CPU threads (default: torch's)."),
    out: Path = typer.Option(None, help="Output folder (default studies/fidelity-<data>)."),
    analyse: bool = typer.Option(False, "--analyse", help="Only analyse what the log holds; train nothing."),
    timeout: str = typer.Option(None, help="Start only the runs expected to end within this long (e.g. 2h30m), "
                                           "then analyse; the same command continues with the rest."),
    **options,
) -> None:
    """Measure how well the proxy (and every other ranking signal) ranks architectures as longer training does."""
    import torch

    from nasface.fidelity import FidelitySettings, run_fidelity
    from nasface.progress import StageDisplay
    from nasface.search import config_from_options
    from nasface.search.config import parse_duration
    from nasface.signals import SIGNALS

    if config is None and options["budget_flops"] is None and options["budget_mem"] is None:
        options.update(budget_flops="1G", budget_mem="20MB")  # the LFR light track's
    search_config = config_from_options(options, config)
    search_config.proxy.check()
    seconds = None if timeout is None else parse_duration(timeout)
    try:
        factor_values = tuple(float(f) for f in factors.split(","))
    except ValueError:
        raise NasfaceError(f"--factors {factors!r}: write multiples of the proxy's steps, e.g. 0.25,0.5,1,2,4,8") from None
    settings = FidelitySettings(search=search_config, architectures=archs, presets=presets, factors=factor_values,
                                second_seeds=second_seeds, bootstrap=bootstrap, yardstick=yardstick,
                                signals=tuple(s.strip() for s in signals.split(",")) if signals else tuple(SIGNALS))
    if threads:
        torch.set_num_threads(threads)
    folder = out or Path("studies") / f"fidelity-{Path(search_config.data.source).name}"
    try:
        report = run_fidelity(settings, folder, log=lambda m: console.print(m, highlight=False), analyse_only=analyse,
                              progress=StageDisplay("rich", console), timeout=seconds)
    except KeyboardInterrupt:
        _interrupted("every finished architecture is in the log, and a run in progress kept its state "
                     "(at most ten minutes old); the same command continues")
    print_fidelity(report)
    console.print(f"wrote {folder / 'fidelity.json'} and {folder / 'fidelity.html'}")


def print_fidelity(report: dict) -> None:
    """The analysis as a table: each signal's agreement with the reference."""
    from nasface.fidelity import (TRADEOFF_COLUMNS, TRIVIAL, by_size_text, modelled_text, regret_note, regret_text,
                                  shortest_trusted_text, tradeoff_cells, versus_text)

    console.print(f"{report['measured']} of {report['architectures']} architectures measured "
                  f"(proxy {report['proxy_steps']} steps, reference {report['reference_steps']})")
    if report.get("note"):
        console.print(report["note"])
        return
    table = Table(Column("signal", no_wrap=True), "Kendall tau [95 % CI]", "rho", "tau in FLOPs strata",
                  "top-5 in top-10", "tau - FLOPs [95 % CI]", "tau - params [95 % CI]",
                  "regret under FLOPs budgets", "top pick's regret")
    rows = [(f"{n} ({r['measured']} architectures)" if r.get("partial") else n, r)
            for n, r in report["signals"].items() if r.get("available")]
    rows += [(f"accuracy at {steps} steps", r) for steps, r in report["budgets"].items()]
    if report.get("combined"):
        rows.append(("combined (leave-one-out)", report["combined"]))
    for name, row in rows:
        ci = row.get("tau_ci") or [float("nan")] * 2
        table.add_row(name, f"{row['tau']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]", f"{row['rho']:+.2f}",
                      "n/a" if row["strata"]["mean_tau"] is None else f"{row['strata']['mean_tau']:+.2f}",
                      f"{row['top5_in_top10']:.1f}", *(versus_text(row, base) for base in TRIVIAL), *regret_text(row))
    # a log or a pipe gets the tables unwrapped; a terminal gets them at its width
    wide = console if console.is_terminal else Console(width=max(console.width, 200))
    wide.print(table)
    console.print("tau - FLOPs / params: the paired bootstrap difference to FLOPs alone / parameters alone; "
                  "a score must beat both")
    note = regret_note(report)
    if note:
        console.print(note)
    tradeoff = Table(*TRADEOFF_COLUMNS, title="the proxy's length: what each budget costs and how it ranks")
    for cells in tradeoff_cells(report):
        tradeoff.add_row(*cells)
    wide.print(tradeoff)
    shortest = shortest_trusted_text(report)
    if shortest:
        console.print(shortest)
    for name, row in report["signals"].items():
        paired = row.get("paired")
        if paired:
            ci = paired["tau_minus_other_ci"] or [float("nan")] * 2
            console.print(f"{name} against {paired['with']} on the same {row['measured']} architectures: tau "
                          f"{row['tau']:+.2f} vs {paired['tau_other']:+.2f}, difference {paired['tau_minus_other']:+.2f} "
                          f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
    ceiling = report.get("noise_ceiling") or {}
    if "reference" in ceiling:
        console.print(f"noise ceiling (reference, seed vs seed, {ceiling['pairs']} architectures): "
                      f"tau {ceiling['reference']['tau']:+.2f}")
    if "modelled" in ceiling:
        console.print(modelled_text(ceiling["modelled"]))
    if "modelled_by_size" in ceiling:
        console.print(by_size_text(ceiling["modelled_by_size"]))
    if report.get("best"):
        best = report["best"]
        beside = "" if best["baseline"] is None else f"; {best['baseline']} alone: {best['baseline_tau']:+.2f}"
        console.print(f"best: {best['signal']} (tau {best['tau']:+.2f}{beside})")
        versus = best.get("versus_score")
        if versus and versus["ci"]:
            console.print(f"best against the study's score {versus['score']} (tau {versus['tau_score']:+.2f}): "
                          f"difference {versus['tau_minus']:+.2f} [{versus['ci'][0]:+.2f}, {versus['ci'][1]:+.2f}], "
                          f"above it in {versus['above_fraction']:.0%} of resamples")


# What a validation measures: a fidelity study's settings less the space and budgets (it trains the published networks).
VALIDATE_SEARCH_OPTIONS = tuple(o for o in FIDELITY_SEARCH_OPTIONS if o not in ("space", "budget_flops", "budget_mem"))


def validate_command(
    config: Path = typer.Option(None, help="A study definition YAML: its data, proxy and teacher are what is "
                                           "validated (e.g. studies/lfr-light.yaml)."),
    seeds: int = typer.Option(3, help="Seeds each published network is trained with (seed noise)."),
    published: Path = typer.Option(None, help="A published-results YAML of your own (default: nasface's, "
                                              "nasface/resources/published/full_training.yaml)."),
    threads: int = typer.Option(None, help="torch CPU threads (default: torch's)."),
    out: Path = typer.Option(None, help="Output folder (default studies/validate-<data>)."),
    analyse: bool = typer.Option(False, "--analyse", help="Only analyse what the log holds; train nothing."),
    score: str = typer.Option("accuracy", help="What ranks the proxy's networks: accuracy or tar_at_far."),
    **options,
) -> None:
    """Measure whether the proxy ranks the published networks as their published full training does."""
    import torch

    from nasface.progress import StageDisplay
    from nasface.search import config_from_options
    from nasface.validity.validate import ValidateSettings, run_validate

    search_config = config_from_options(options, config)
    search_config.proxy.check()
    settings = ValidateSettings(search=search_config, seeds=seeds, published=None if published is None else str(published),
                                score=score)
    if threads:
        torch.set_num_threads(threads)
    folder = out or Path("studies") / f"validate-{Path(search_config.data.source).name}"
    try:
        report = run_validate(settings, folder, log=lambda m: console.print(m, highlight=False), analyse_only=analyse,
                              progress=StageDisplay("rich", console))
    except KeyboardInterrupt:
        _interrupted("every finished run is in the log, and a run in progress kept its state (at most ten minutes "
                     "old); the same command continues")
    print_validate(report)
    page = folder / "validate.html"
    console.print(f"wrote {folder / 'validate.json'}" + (f" and {page}" if page.is_file() else ""))


def print_validate(report: dict) -> None:
    """The analysis as a table: each group's published pairs, as the proxy, FLOPs and parameters order them."""
    from nasface.validity.page import GROUP_COLUMNS, group_rows, summary_line

    table = Table(*GROUP_COLUMNS, title="published pairs ordered as published (ties under 0.3 points not counted)")
    for row in group_rows(report):
        table.add_row(*row)
    (console if console.is_terminal else Console(width=max(console.width, 200))).print(table)
    console.print(summary_line(report))


def _search_options_as_parameters() -> None:
    """Give ``search`` one parameter per search option (nasface.search.config.SEARCH_OPTIONS), and
    ``fidelity`` and ``validate`` one per option that says what they measure."""
    from nasface.options import typer_parameters
    from nasface.search.config import SEARCH_OPTIONS

    for name, command, options in (
            ("search", search_command, SEARCH_OPTIONS),
            ("fidelity", fidelity_command, tuple(o for o in SEARCH_OPTIONS if o.name in FIDELITY_SEARCH_OPTIONS)),
            ("validate", validate_command, tuple(o for o in SEARCH_OPTIONS if o.name in VALIDATE_SEARCH_OPTIONS))):
        fixed = list(inspect.signature(command).parameters.values())[:-1]  # all but **options
        command.__signature__ = inspect.Signature([*fixed, *typer_parameters(options)])
        app.command(name)(command)


_search_options_as_parameters()


@app.command("report")
def report_command(
    study: str = typer.Argument(..., help="The study's name."),
    studies_dir: Path = typer.Option(Path("studies"), help="Where studies live."),
    storage: str = typer.Option(None, help="The study's Optuna storage URL, if not the default SQLite file."),
    output: Path = typer.Option(None, "-o", help="Where to write the HTML (default studies/<name>/report.html)."),
    as_json: bool = typer.Option(False, "--json", help="Print the Pareto-optimal trials as JSON instead."),
    csv: Path = typer.Option(None, "--csv", help="Also write every trial as one CSV row here."),
    fidelity_dir: list[Path] = typer.Option(None, "--fidelity-dir",
                                            help="Folders whose */fidelity.json may measure this study's proxy "
                                                 "(default: the studies folder and benchmarks/results, where "
                                                 "the repository keeps its measurement of the README study's)."),
) -> None:
    """Write the study's Pareto report (self-contained HTML), or print its Pareto trials as JSON."""
    from nasface.progress import format_duration
    from nasface.report import open_study, pareto_front, study_frame, write_report
    from nasface.search.record import read

    started = time.perf_counter()
    loaded = open_study(study, studies_dir, storage)
    if csv is not None:
        from nasface.atomic import write_atomic

        write_atomic(csv, study_frame(loaded).to_csv(index=False))
    if as_json:
        print(json.dumps([{"number": facts.number, "baseline": facts.baseline, "spec": facts.spec, "cost": facts.cost,
                           "metrics": facts.metrics} for facts in map(read, pareto_front(loaded))]))
        return
    fidelity_dirs = fidelity_dir or [studies_dir, Path("benchmarks") / "results"]
    path = write_report(loaded, output or Path(studies_dir) / study / "report.html", fidelity_dirs=fidelity_dirs)
    console.print(f"wrote {path} in {format_duration(time.perf_counter() - started)}")


@app.command("export")
def export_command(
    study: str = typer.Argument(..., help="The study's name."),
    trial: str = typer.Option(..., help="A trial number, or best (most accurate within the budgets)."),
    output: Path = typer.Option(None, "-o", help="Folder to write into (default studies/<name>/export)."),
    studies_dir: Path = typer.Option(Path("studies"), help="Where studies live."),
    storage: str = typer.Option(None, help="The study's Optuna storage URL, if not the default SQLite file."),
) -> None:
    """Write a trial's spec and a full-training recipe (the papers' schedule, exact costs)."""
    from nasface.export import export_trial
    from nasface.report import open_study

    loaded = open_study(study, studies_dir, storage)
    spec_path, recipe_path = export_trial(loaded, trial, output or Path(studies_dir) / study / "export")
    console.print(f"wrote {spec_path} and {recipe_path}; next: nasface train {recipe_path}")


@app.command("train")
def train_command(
    recipe: Path = typer.Argument(..., help="The recipe.yaml that `nasface export` wrote."),
    data: str = typer.Option(None, help="Training faces: a RecordIO folder, an image folder, orl or synthetic."),
    teacher: str = typer.Option(None, help="A teacher checkpoint (.safetensors / .pt), auto (train one first) "
                                           "or none."),
    teacher_spec: str = typer.Option(None, help="The teacher's preset or spec (auto: what to train; a .pt: its "
                                                "architecture)."),
    val_bin: list[str] = typer.Option(None, "--val-bin", help="Verify on this insightface .bin during training "
                                                              "(repeatable; replaces the recipe's val_bins)."),
    steps: int = typer.Option(None, help="SGD steps per generation, instead of the recipe's epochs."),
    batch: int = typer.Option(None, help="Batch size."),
    generations: int = typer.Option(None, help="Recursive distillation generations."),
    checkpoint_every: int = typer.Option(None, help="Steps between checkpoints."),
    eval_every: int = typer.Option(None, help="Steps between verifications on the .bin files."),
    seed: int = typer.Option(None),
    device: Device = typer.Option(None, help="auto, cpu or cuda (default: the recipe's)."),
    output: Path = typer.Option(None, "-o", "--output", help="Run folder (default: run/ beside the recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output folder from its last "
                                                        "checkpoint."),
    cache_dir: Path = typer.Option(None, help="Where decoded training faces are cached (default: .cache/ "
                                              "beside the output folder)."),
    progress: Output = typer.Option(Output.rich, help="What is shown while it runs: rich, quiet or jsonl (one "
                                                      "JSON object per event)."),
) -> None:
    """Train an exported spec fully (the recipe's schedule and distillation), resumable after a kill."""
    from nasface.fulltrain import prepare_training, run_training
    from nasface.fulltrain_progress import TrainingReporter

    reporter = TrainingReporter(progress.value)
    run = prepare_training(recipe, output=output, resume=resume, data=data, cache_dir=cache_dir, teacher=teacher,
                           teacher_spec=teacher_spec, val_bins=val_bin or None, steps=steps, batch_size=batch,
                           generations=generations, checkpoint_every=checkpoint_every, eval_every=eval_every,
                           seed=seed, device=device.value if device else None, progress=reporter.stages)
    try:
        run_training(run, reporter)
    except KeyboardInterrupt:
        print(f"interrupted; continue from the last checkpoint with: nasface train {recipe} -o {run.output} "
              f"--resume", file=sys.stderr)
        sys.exit(130)


@app.command("onnx")
def onnx_command(
    source: str = typer.Argument(..., help="Weights (.safetensors / .pt, or a `nasface train` output folder), or "
                                           "a spec (preset name or YAML: exported with random weights)."),
    output: Path = typer.Option(..., "-o", "--output", help="The .onnx file to write."),
    spec: str = typer.Option(None, help="The architecture of a .pt state dict that holds no spec."),
) -> None:
    """Export the embedding network to ONNX (FLGC deployed, BatchNorm folded, 112x112, any batch)."""
    from nasface.onnx_export import export_onnx

    exported = export_onnx(source, output, spec=spec)
    weights = "trained weights" if exported.trained else \
        "RANDOMLY INITIALISED weights (a spec holds no weights; give a checkpoint for a trained model)"
    console.print(f"wrote {exported.path}: {exported.spec.name} with {weights}; {exported.folded_batchnorms} "
                  f"BatchNorms folded; onnxruntime matches torch (cosine >= {exported.min_cosine:.6f})")


def _latency_commands() -> None:
    from nasface.latency.commands import latency_app

    app.add_typer(latency_app, name="latency")


_latency_commands()


def main() -> None:
    try:
        app()  # standalone: usage errors print click's message and exit 2
    except NasfaceError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
