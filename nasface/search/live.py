"""Trials in training, seen from the driver: how far each is, so that a line shows every few seconds.

A candidate trains in a Ray worker (or, inline, in the driver's own thread), so the driver cannot
ask it.  The job keeps a small JSON file of where it is (``LiveFile``: phase, step, loss, steps per
second), rewritten atomically at most every ``WRITE_SECONDS`` under the study folder, which its
workers already share for the proxy-data cache.  The driver's ``TrainingWatch`` thread reads the
files of its running trials every ``POLL_SECONDS``, keeps ``Progress.live`` up to date (the search's
time left counts the steps they have left) and hands the reporter one line per trial every
``interval`` seconds, also while a trial is still starting (zero-cost scores) or being evaluated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from nasface.core.atomic import write_atomic
from nasface.search.periodic import Periodic

WRITE_SECONDS = 0.25
POLL_SECONDS = 0.25


def live_path(study_dir: Path, number: int) -> Path:
    return Path(study_dir) / "live" / f"trial-{number}.json"


class LiveFile:
    """The job's side: ``step`` is the training loop's ``on_step``; ``phase`` marks the rest."""

    def __init__(self, path: str | Path, steps: int):
        self.path, self.steps = Path(path), steps
        self._written = 0.0
        self._first: tuple[int, float] | None = None  # (step, time) of the first step seen
        self.phase("starting")

    def phase(self, name: str, step: int = 0, loss: float | None = None, rate: float | None = None) -> None:
        write_atomic(self.path, json.dumps({"phase": name, "step": step, "steps": self.steps, "loss": loss,
                                            "steps_per_second": rate}))
        self._written = time.perf_counter()

    def step(self, state) -> None:
        now = time.perf_counter()
        if self._first is None:
            self._first = (state.step, now)
        if now - self._written < WRITE_SECONDS and state.step < self.steps:
            return
        first_step, first_time = self._first
        rate = (state.step - first_step) / (now - first_time) if state.step > first_step else None
        self.phase("training" if state.step < self.steps else "evaluating", state.step,
                   state.losses[-1] if state.losses else None, rate)


def read_live(path: Path) -> dict | None:
    """What a job last wrote, or None (not started yet, or written by no job)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class LiveTrial:
    """A trial this driver is training: what it is, and how far its job says it has come."""

    number: int
    label: str          # "baseline mobilefacenet" or "trial 7"
    flops: int
    steps: int
    baseline: bool
    started: float
    phase: str = "starting"
    done: int = 0
    loss: float | None = None
    steps_per_second: float | None = None

    def eta_seconds(self) -> float | None:
        return None if not self.steps_per_second else (self.steps - self.done) / self.steps_per_second

    def seconds_per_flop_step(self) -> float | None:
        """The measured rate of its steps, per FLOP: what the search's time left extrapolates."""
        return None if not self.steps_per_second or not self.flops else 1.0 / (self.steps_per_second * self.flops)


class TrainingWatch(Periodic):
    """A thread that reads the running trials' live files and shows each every ``interval`` seconds."""

    seconds, name = POLL_SECONDS, "nasface-training-watch"

    def __init__(self, study_dir: Path, progress, reporter, interval: float):
        self.study_dir, self.progress, self.reporter, self.interval = study_dir, progress, reporter, interval
        self._shown: dict[int, float] = {}
        super().__init__()

    def tick(self) -> None:
        now = time.time()
        for number, trial in list(self.progress.live.items()):  # a snapshot: the driver adds and removes
            found = read_live(live_path(self.study_dir, number))
            if found is not None:
                trial.phase, trial.done, trial.loss = found["phase"], found["step"], found["loss"]
                trial.steps_per_second = found["steps_per_second"] or trial.steps_per_second
            if now - self._shown.get(number, trial.started) >= self.interval:
                self._shown[number] = now
                self.reporter.training(trial, self.progress.eta_seconds())
