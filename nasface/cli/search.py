"""The commands about a search and what measures it: ``search``, ``fidelity``, ``validate``,
``report`` and ``export``.  ``search``, ``fidelity`` and ``validate`` take their options from the
search's option table (``nasface.search.config.SEARCH_OPTIONS``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from nasface.cli.base import NOTHING_HALF_WRITTEN, Output, console, interrupted, messages, on_interrupt
from nasface.cli.options import with_options
from nasface.search.config import SEARCH_OPTIONS
from nasface.core.errors import NasfaceError


def search_command(config: Path = typer.Option(None, help="A study definition YAML (studies/*.yaml) with the "
                                                     "same options (underscores or dashes)."),
                   progress: Output = typer.Option(None, help="What is shown while it runs: rich, quiet or jsonl "
                                                              "(one JSON object per event; default rich)."),
                   output: Output = typer.Option(None, hidden=True, help="The former name of --progress."),
                   **options) -> None:
    """Search the space under hard budgets; every completed trial is within budget."""
    from nasface.ui.progress import Reporter
    from nasface.search import SearchInterrupted, config_from_options, run_search

    # --output, unlisted, keeps the scripts written before it was renamed working, silently (they may
    # read stderr as one line); given beside --progress it must agree
    if output is not None and progress is not None and progress != output:
        raise NasfaceError(f"--output {output.value} and --progress {progress.value}: --output is the former "
                           f"name of --progress; give --progress alone")
    search_config = config_from_options(options, config)
    with on_interrupt(NOTHING_HALF_WRITTEN):  # before the candidates
        try:
            reporter = Reporter((progress or output or Output.rich).value)
            with messages.shown_by(reporter.log):
                run_search(search_config, reporter)
        except SearchInterrupted:  # during the candidates: the search stopped in order
            interrupted("finished trials are kept and the unfinished ones enqueued again; the same command resumes "
                        "the study")


def _measure(kind: str, search_config, out: Path | None, threads: int | None, unit: str, run) -> tuple[Path, dict]:
    """What ``fidelity`` and ``validate`` share: torch's threads, the output folder (default
    ``studies/<kind>-<data>``), their log lines and stages on the console, and Ctrl-C, which leaves
    every finished ``unit`` in the log.  ``run(folder, progress=)`` measures; its messages are shown on
    the console."""
    import torch

    from nasface.ui.progress import StageDisplay

    if threads:
        torch.set_num_threads(threads)
    folder = out or Path("studies") / f"{kind}-{Path(search_config.data.source).name}"
    with on_interrupt(f"every finished {unit} is in the log, and a run in progress kept its state (at most ten "
                      f"minutes old); the same command continues"):
        with messages.shown_by(lambda m: console.print(m, highlight=False)):
            report = run(folder, progress=StageDisplay("rich", console))
    return folder, report


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
    from nasface.fidelity import PAGE, REPORT, FidelitySettings, run_fidelity
    from nasface.ui.analysis_tables import print_fidelity
    from nasface.ui.fidelity_page import write_page
    from nasface.search import config_from_options
    from nasface.search.config import parse_duration
    from nasface.training.signals import SIGNALS

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

    def measure(folder: Path, **shown):
        report = run_fidelity(settings, folder, analyse_only=analyse, timeout=seconds, **shown)
        write_page(report, folder / PAGE)  # inside _measure's Ctrl-C handling, as the analysis is
        return report

    folder, report = _measure("fidelity", search_config, out, threads, "architecture", measure)
    print_fidelity(report, console)
    console.print(f"wrote {folder / REPORT} and {folder / PAGE}")


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
    score: str = typer.Option("accuracy", help="What ranks the proxy's networks: accuracy, tar_at_far or any "
                                               "signal a run records (zico, loss_sum, ...; with --analyse, no "
                                               "training)."),
    **options,
) -> None:
    """Measure whether the proxy ranks the published networks as their published full training does."""
    from nasface.search import config_from_options
    from nasface.ui.analysis_tables import print_validate
    from nasface.ui.validity_page import write_page
    from nasface.validity.validate import ValidateSettings, run_validate

    search_config = config_from_options(options, config)
    search_config.proxy.check()
    settings = ValidateSettings(search=search_config, seeds=seeds, published=None if published is None else str(published),
                                score=score)
    folder, report = _measure("validate", search_config, out, threads, "run",
                              lambda folder, **shown: run_validate(settings, folder, analyse_only=analyse,
                                                                   write_page=write_page, **shown))
    print_validate(report, console)
    page = folder / "validate.html"
    console.print(f"wrote {folder / 'validate.json'}" + (f" and {page}" if page.is_file() else ""))


with_options(search_command, SEARCH_OPTIONS)
with_options(fidelity_command, tuple(o for o in SEARCH_OPTIONS if o.name in FIDELITY_SEARCH_OPTIONS))
with_options(validate_command, tuple(o for o in SEARCH_OPTIONS if o.name in VALIDATE_SEARCH_OPTIONS))


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
    from nasface.core.stages import format_duration
    from nasface.search.results import open_study, pareto_front, study_frame
    from nasface.ui.study_page import write_report
    from nasface.search.record import read

    started = time.perf_counter()
    loaded = open_study(study, studies_dir, storage)
    if csv is not None:
        from nasface.core.atomic import write_atomic

        write_atomic(csv, study_frame(loaded).to_csv(index=False))
    if as_json:
        print(json.dumps([{"number": facts.number, "baseline": facts.baseline, "spec": facts.spec, "cost": facts.cost,
                           "metrics": facts.metrics} for facts in map(read, pareto_front(loaded))]))
        return
    fidelity_dirs = fidelity_dir or [studies_dir, Path("benchmarks") / "results"]
    path = write_report(loaded, output or Path(studies_dir) / study / "report.html", fidelity_dirs=fidelity_dirs)
    written = f"{path} and {csv}" if csv is not None else f"{path}"
    console.print(f"wrote {written} in {format_duration(time.perf_counter() - started)}")


def export_command(
    study: str = typer.Argument(..., help="The study's name."),
    trial: str = typer.Option(..., help="A trial number; best (most accurate within the budgets); or "
                                        "largest-within-noise (the largest whose accuracy the proxy cannot tell "
                                        "from the best's, given its seed noise)."),
    output: Path = typer.Option(None, "-o", help="Folder to write into (default studies/<name>/export)."),
    studies_dir: Path = typer.Option(Path("studies"), help="Where studies live."),
    storage: str = typer.Option(None, help="The study's Optuna storage URL, if not the default SQLite file."),
    seed_noise: float = typer.Option(None, "--seed-noise", metavar="POINTS",
                                     help="For largest-within-noise: a network's accuracy's sd over seeds, in points "
                                          "(default: measured by nasface validate with the study's settings)."),
    fidelity_dir: list[Path] = typer.Option(None, "--fidelity-dir",
                                            help="Folders whose */validate.json may measure the proxy's seed noise "
                                                 "(default: the studies folder and benchmarks/results)."),
) -> None:
    """Write a trial's spec and a full-training recipe (the papers' schedule, exact costs)."""
    from nasface.search.export import LARGEST_WITHIN_NOISE, export_trial
    from nasface.search.results import open_study, study_settings
    from nasface.validity.validate import measured_seed_noise

    loaded = open_study(study, studies_dir, storage)
    if trial == LARGEST_WITHIN_NOISE and seed_noise is None:
        measured = measured_seed_noise(study_settings(loaded), fidelity_dir or [studies_dir, Path("benchmarks") / "results"])
        if measured is not None:
            seed_noise = measured[0]
            console.print(f"seed noise {seed_noise:.2f} points (sd), as {measured[1]} measured it")
    spec_path, recipe_path = export_trial(loaded, trial, output or Path(studies_dir) / study / "export", seed_noise)
    console.print(f"wrote {spec_path} and {recipe_path}; next: nasface train {recipe_path}")
