"""What the user sees while a search runs: a live rich display, quiet, or JSON lines for scripts."""

from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.table import Table

from nasface.search.record import as_row, read


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Reporter:
    """``mode``: ``rich`` (a line per trial and a status line), ``quiet`` or ``jsonl``."""

    def __init__(self, mode: str = "rich"):
        self.mode = mode
        self.console = Console(highlight=False, soft_wrap=True)
        self.started = time.time()

    def _emit(self, event: str, **fields) -> None:
        if self.mode == "jsonl":
            print(json.dumps({"event": event, "time": round(time.time() - self.started, 3), **fields}),
                  flush=True)

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

    def trial(self, facts, progress, pareto=None) -> None:
        """One trial's outcome (its ``record.TrialRecord``) and the search's tallies."""
        row = as_row(facts)
        number = facts.number
        status = (f"{progress.trained}/{progress.planned or '-'} trained, {progress.baselines} baselines, "
                  f"{progress.running} running, "
                  f"{progress.rejected} rejected, {progress.failed} failed, "
                  f"Pareto {len(pareto) if pareto is not None else '-'}, "
                  f"elapsed {format_duration(time.time() - progress.started)}, left ~{format_duration(progress.eta_seconds())}")
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
        self._emit("trial", **row, status=status)

    def finish(self, study, pareto, config) -> None:
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
            else:
                self.console.print("no trial within budget has finished yet")
            self.console.print(f"study: {config.storage_url} (study name {config.study})")
            self.console.print(f"report: nasface report {config.study} -> {config.study_dir / 'report.html'}")
        self._emit("finish", pareto=rows, storage=config.storage_url, study=config.study)
        sys.stdout.flush()


def reference_lines(budgets) -> list[str]:
    """Where each seed network stands against the budgets."""
    from nasface.model import count
    from nasface.spec import preset_names

    lines = []
    for name in preset_names():
        figures = count(name, budgets.convention)
        violations = budgets.violations(figures)
        verdict = "within budget" if not violations else "over: " + "; ".join(violations)
        lines.append(f"reference {name}: {figures['flops']:,} FLOPs, {figures['weight_bytes']:,} bytes - {verdict}")
    return lines
