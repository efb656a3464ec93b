"""What the user sees while nasface works: long stages, a search's trials, and where the time went.

Long stages report through ``nasface.core.stages.Stages``; ``StageDisplay`` shows them in the
command line's output modes, the same as the trials'.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from nasface.core.stages import StageProgress, Stages, format_duration
from nasface.ui.timed_console import TimedConsole


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


class StageDisplay(Stages):
    """Stages shown as the command line shows trials.

    ``rich``: a live bar on a terminal, else (a log file) a line every ``interval`` seconds; either
    way one line when the stage ends.  ``quiet``: nothing.  ``jsonl``: ``emit("progress", ...)`` at
    the start and at every update (``done``, ``total``, ``unit``, ``elapsed_seconds``,
    ``eta_seconds``, ``search_eta_seconds`` and the stage's own fields such as ``loss``), then
    ``emit("progress_end", ...)`` with the ``status`` and ``seconds``.

    ``search_eta``, where a search sets it, gives the whole search's time left while a stage runs.
    """

    def __init__(self, mode: str, console: Console, emit: Callable[..., None] | None = None,
                 interval: float = 10.0):
        self.mode, self.console, self.emit, self.interval = mode, console, emit, interval
        self.search_eta: Callable[[StageProgress], float | None] | None = None
        self._bar: Progress | None = None
        self._task = None
        self._last_line = 0.0

    def _event(self, kind: str, **fields) -> None:
        if self.mode == "jsonl" and self.emit is not None:
            self.emit(kind, **fields)

    def _progress_event(self, progress: StageProgress, search_eta: float | None) -> None:
        self._event("progress", stage=progress.name, done=progress.done, total=progress.total, unit=progress.unit,
                    elapsed_seconds=round(progress.elapsed(), 3), eta_seconds=_rounded(progress.eta_seconds()),
                    search_eta_seconds=_rounded(search_eta), **progress.info)

    def _status(self, progress: StageProgress, search_eta: float | None) -> str:
        shown = [f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                 for key, value in progress.info.items()]
        shown.append(f"{format_duration(progress.elapsed())} elapsed, ~{format_duration(progress.eta_seconds())} left")
        if search_eta is not None:
            shown.append(f"search ~{format_duration(search_eta)} left")
        return ", ".join(shown)

    def started(self, progress: StageProgress) -> None:
        self._last_line = time.perf_counter()  # in a log, the first line comes after one interval
        self._progress_event(progress, None)
        if self.mode == "rich" and self.console.is_terminal:
            self._bar = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(progress.name, total=progress.total, status="")

    def updated(self, progress: StageProgress) -> None:
        search_eta = self.search_eta(progress) if self.search_eta is not None else None
        self._progress_event(progress, search_eta)
        if self._bar is not None:
            self._bar.update(self._task, completed=progress.done, status=self._status(progress, search_eta))
        elif self.mode == "rich" and time.perf_counter() - self._last_line >= self.interval:
            self._last_line = time.perf_counter()
            share = progress.done / progress.total if progress.total else 1.0
            self.console.print(f"[dim]  {progress.name}: {progress.done:,}/{progress.total:,} {progress.unit} "
                               f"({share:.0%}), {self._status(progress, search_eta)}[/dim]")

    def ended(self, progress: StageProgress, status: str) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._event("progress_end", stage=progress.name, status=status, done=progress.done, total=progress.total,
                    unit=progress.unit, seconds=round(progress.elapsed(), 3))
        if self.mode != "rich":
            return
        if status == "done":
            self.console.print(f"[dim]  {progress.name}: {progress.total:,} {progress.unit} in "
                               f"{format_duration(progress.elapsed())}[/dim]")
        else:
            self.console.print(f"  {progress.name}: {status} at {progress.done:,}/{progress.total:,} {progress.unit}")


class Reporter:
    """``mode``: ``rich`` (a line per trial and a status line), ``quiet`` or ``jsonl``.

    ``stages`` shows the search's long stages (data, teacher) in the same mode; ``training`` shows a
    trial in training, every ``interval`` seconds (from a thread of the driver's: events are written
    whole, one at a time)."""

    def __init__(self, mode: str = "rich", interval: float = 10.0):
        self.mode, self.interval = mode, interval
        self.console = TimedConsole(highlight=False, soft_wrap=True)
        self.started = time.time()
        self.stages = StageDisplay(mode, self.console, self._emit, interval)
        self._writing = threading.Lock()

    def _emit(self, event: str, **fields) -> None:
        if self.mode == "jsonl":
            line = json.dumps({"event": event, "time": round(time.time() - self.started, 3), **fields})
            with self._writing:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            self.console.last_line = time.monotonic()

    def log(self, message: str) -> None:
        if self.mode == "rich":
            self.console.print(f"[dim]{message}[/dim]")
        self._emit("log", message=message)

    def start(self, config, space, study) -> None:
        budgets = config.budgets.describe()
        if self.mode == "rich":
            self.console.print(f"[bold]nasface search[/bold] study [cyan]{config.study}[/cyan] "
                               f"({config.storage_url}), space {space.name} ({space.size():.2e} settings)")
            for line in budgets:
                self.console.print(f"  budget: {line}")
            for line in reference_lines(config.budgets):
                self.console.print(f"  {line}")
        self._emit("start", study=config.study, storage=config.storage_url, budgets=budgets)

    def trial(self, facts, progress) -> None:
        """One trial's outcome (its ``record.TrialRecord``) and the search's tallies."""
        from nasface.search.record import as_row  # not at the top: the data and teacher stages use this module

        row = as_row(facts)
        number = facts.number
        eta = progress.eta_seconds()
        status = (f"study: {progress.trained}/{progress.planned or '-'} candidates trained, Pareto "
                  f"{'-' if progress.pareto is None else progress.pareto}; this run: {progress.baselines} baselines "
                  f"trained, {progress.running} running, {progress.rejected} rejected, {progress.failed} failed, "
                  f"elapsed {format_duration(time.time() - progress.started)}, left ~{format_duration(eta)}")
        if self.mode == "rich":
            label = f"baseline {row['baseline']}" if row["baseline"] else f"trial {number}"
            if row["rung"] is not None:
                label += f" (rung {row['rung']})"
            if row["kind"] == "duplicate":
                self.console.print(f"  [yellow]{label}: not retrained[/yellow] (same architecture as trial "
                                   f"{facts.duplicate_of})")
            elif row["kind"] == "rejected" or row["kind"] == "invalid":
                self.console.print(f"  [yellow]{label}: not trained[/yellow] ({row['reason']})")
            elif row["accuracy"] is None:
                self.console.print(f"  [red]{label}: failed[/red] ({row['reason']})")
            else:
                self.console.print(f"  [green]{label}[/green]: accuracy {row['accuracy']:.4f}, "
                                   f"{row['flops']:,} FLOPs, {row['weight_bytes'] / 1e6:.2f} MB, "
                                   f"{row['seconds']:.0f}s")
            self.console.print(f"[dim]  {status}[/dim]")
        self._emit("trial", **row, status=status, search_eta_seconds=_rounded(eta))

    def training(self, trial, search_eta: float | None) -> None:
        """How far a trial in training is (a ``nasface.search.live.LiveTrial``), and the search's time left."""
        elapsed, eta = time.time() - trial.started, trial.eta_seconds()
        if self.mode == "rich":
            if trial.phase == "training":
                rate = f"{trial.steps_per_second:.2f} steps/s" if trial.steps_per_second else "rate ?"
                loss = f"loss {trial.loss:.4g}, " if trial.loss is not None else ""
                where = f"step {trial.done:,}/{trial.steps:,}, {loss}{rate}, ~{format_duration(eta)} left"
            else:
                where = {"starting": "starting (zero-cost scores)",
                         "evaluating": "evaluating"}.get(trial.phase, trial.phase)
            search = f"; search ~{format_duration(search_eta)} left" if search_eta is not None else ""
            self.console.print(f"[dim]  {trial.label}: {where}, {format_duration(elapsed)} elapsed{search}[/dim]")
        self._emit("progress", stage=trial.label, trial=trial.number, phase=trial.phase, done=trial.done,
                   total=trial.steps, unit="steps", loss=trial.loss, steps_per_second=None if trial.steps_per_second is None else round(trial.steps_per_second, 3),
                   elapsed_seconds=round(elapsed, 3), eta_seconds=_rounded(eta), search_eta_seconds=_rounded(search_eta))

    def finish(self, study, pareto, config, seconds: dict | None = None) -> None:
        """The Pareto table, where to find the study, and ``seconds``: where the time went (a section's
        name -> seconds, and ``total``)."""
        from nasface.training.evaluate import FAR_TARGET
        from nasface.search.record import as_row, read
        from nasface.ui.facts import tar_text

        rows = [as_row(read(t)) for t in sorted(pareto, key=lambda t: t.number)]
        if self.mode == "rich":
            table = Table(title="Pareto-optimal trials (within budget)")
            for column in ("trial", "baseline", "accuracy", "TAR@FAR", "FLOPs", "weights"):
                table.add_column(column, justify="right")
            for row in rows:
                tar = "-" if row["tar_at_far"] is None else f"{row['tar_at_far']:.3f}"
                table.add_row(str(row["trial"]), row["baseline"] or "", f"{row['accuracy']:.4f}", tar,
                              f"{row['flops']:,}", f"{row['weight_bytes'] / 1e6:.2f} MB")
            if rows:
                self.console.print(table)
                if any(row["tar_at_far"] is None for row in rows):
                    self.console.print(f"TAR@FAR -: {tar_text(None, FAR_TARGET)}")
            else:
                self.console.print("no trial within budget has finished yet")
            self.console.print(f"study: {config.storage_url} (study name {config.study})")
            self.console.print(f"report: {report_command(config)} -> {config.study_dir / 'report.html'}")
            if seconds:
                self.console.print(time_line(seconds))
        self._emit("finish", pareto=rows, storage=config.storage_url, study=config.study,
                   seconds={name: round(value, 1) for name, value in (seconds or {}).items()})
        sys.stdout.flush()


def report_command(config) -> str:
    """The command that writes the search's report, as a shell takes it (its studies folder and storage
    when not the defaults, names quoted)."""
    import shlex

    from nasface.search.config import SearchConfig

    words = ["nasface", "report", config.study]
    if str(config.studies_dir) != SearchConfig.studies_dir:
        words += ["--studies-dir", str(config.studies_dir)]
    if config.storage is not None:
        words += ["--storage", config.storage]
    return shlex.join(words)


def time_line(seconds: dict) -> str:
    """"where the time went: data 0m12s, teacher 3m05s, ...; total 13m05s" from name -> seconds."""
    parts = [f"{name} {format_duration(value)}" for name, value in seconds.items() if name != "total"]
    return f"where the time went: {', '.join(parts)}; total {format_duration(seconds['total'])}"


def reference_lines(budgets) -> list[str]:
    """Where each seed network stands against the budgets."""
    from nasface.arch.model import count
    from nasface.arch.spec import preset_names

    lines = []
    for name in preset_names():
        figures = count(name, budgets.convention)
        violations = budgets.violations(figures)
        verdict = "within budget" if not violations else "over: " + "; ".join(violations)
        lines.append(f"reference {name}: {figures['flops']:,} FLOPs, {figures['weight_bytes']:,} bytes - {verdict}")
    return lines
