"""What a person (or a script) sees while ``nasface train`` runs: ``TrainingReporter``.

The training (``nasface.training.fulltrain``) calls the hooks of ``nasface.training.events.TrainingEvents``,
which also keeps the run's ``log.jsonl``; this display draws them: a live bar on a terminal, a line
every ``interval`` seconds in a log, or one JSON object per event.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from nasface.core.errors import NasfaceError
from nasface.training.events import TrainingEvents
from nasface.ui.progress import StageDisplay

REPORT_MODES = ("rich", "quiet", "jsonl")


class TrainingReporter(TrainingEvents):
    """Progress of a run: ``rich`` (a live bar on a terminal, a line every ``interval`` seconds
    otherwise), ``quiet``, or ``jsonl`` (one JSON object per event on stdout).

    Events (steps, verification, checkpoints, finished stages) also go to the run's ``log.jsonl``.
    """

    def __init__(self, mode: str = "rich", interval: float = 10.0):
        if mode not in REPORT_MODES:
            raise NasfaceError(f"unknown progress display {mode!r} (choose from {', '.join(REPORT_MODES)})")
        super().__init__(interval)
        self.mode = mode
        self.console = Console(highlight=False, soft_wrap=True)
        self.bar: Progress | None = None
        self.task = None
        self.stages = StageDisplay(mode, self.console, self._event, interval)

    def show(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text)

    def show_record(self, record: str) -> None:
        if self.mode == "jsonl":
            print(record, flush=True)

    @property
    def live(self) -> bool:
        return self.bar is not None

    def show_step(self, stage: str, step: int, steps: int, status: str) -> None:
        if self.bar is not None:  # a live bar follows every step; the log gets a line now and then
            self.bar.update(self.task, completed=step, status=status)
        else:
            super().show_step(stage, step, steps, status)

    def stage_started(self, stage: str, step: int, steps: int) -> None:
        super().stage_started(stage, step, steps)
        if self.mode == "rich" and self.console.is_terminal:
            if self.bar is None:
                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[status]}"), console=self.console)
                self.bar.start()
            self.task = self.bar.add_task(stage, total=steps, completed=step, status="")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
