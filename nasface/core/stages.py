"""Where long stages report how far they have come: the small protocol below every display.

A long stage (rendering or decoding faces, training or running a teacher, fidelity runs) reports
through ``Stages``::

    with stages.stage("teacher training", steps, "steps") as stage:
        ...
        stage.update(done, loss=loss)

The base class shows nothing: it is what the Python API gets unless it passes a display
(``nasface.ui.progress.StageDisplay`` shows stages in the command line's output modes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class StageProgress:
    """How far one long stage has come.  Its ETA is the time per unit so far times the units left;
    with ``weights`` (each unit's expected share of the work, units done in order) it is the time
    per weight so far times the weight left, for units as unequal as a fidelity study's runs."""

    def __init__(self, name: str, total: int, unit: str, stages: "Stages", weights: Sequence[float] | None = None):
        if weights is not None and len(weights) != total:
            raise ValueError(f"{len(weights)} weights for {total} units")
        self.name, self.total, self.unit = name, total, unit
        self.weights = None if weights is None else [float(w) for w in weights]
        self.done = 0
        self.info: dict = {}
        self.started = time.perf_counter()
        self._stages = stages

    def update(self, done: int, **info) -> None:
        """``done`` units of ``total`` are finished; ``info`` (e.g. ``loss=``) is shown beside them."""
        self.done, self.info = done, info
        self._stages.updated(self)

    def leave_out(self, unit: int) -> None:
        """Unit ``unit`` (from 0) will not be done by anyone: its work is no longer expected."""
        if self.weights is not None:
            self.weights[unit] = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def seconds_per_unit(self) -> float | None:
        return self.elapsed() / self.done if self.done > 0 else None

    def eta_seconds(self) -> float | None:
        if self.weights is not None:
            weight_done = sum(self.weights[:self.done])
            return None if weight_done <= 0 else self.elapsed() / weight_done * sum(self.weights[self.done:])
        per_unit = self.seconds_per_unit()
        return None if per_unit is None else per_unit * max(0, self.total - self.done)


class Stages:
    """Where long stages report their progress.  This base class shows nothing (the library's default);
    a display overrides ``started``, ``updated`` and ``ended``."""

    @contextmanager
    def stage(self, name: str, total: int, unit: str, weights: Sequence[float] | None = None) -> Iterator[StageProgress]:
        progress = StageProgress(name, total, unit, self, weights)
        self.started(progress)
        try:
            yield progress
        except KeyboardInterrupt:
            self.ended(progress, "interrupted")
            raise
        except BaseException:
            self.ended(progress, "failed")
            raise
        self.ended(progress, "done")

    def started(self, progress: StageProgress) -> None:
        """A stage begins (nothing done yet)."""

    def updated(self, progress: StageProgress) -> None:
        """``progress.update`` was called."""

    def ended(self, progress: StageProgress, status: str) -> None:
        """The stage ends: ``done``, ``interrupted`` (Ctrl-C) or ``failed`` (an exception)."""


SILENT = Stages()
