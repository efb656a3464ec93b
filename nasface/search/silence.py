"""No silent stretch in a search: a line whenever ``interval`` seconds (10) have passed since the last one.

Trials in training, stages and trial results print lines of their own; what falls between them
(checking the inputs, opening the study, a stage whose units are slow, sampling the next candidate,
measuring the front) is covered by ``SilenceWatch``, which names what the driver is doing
(``Progress.doing``) and the search's time left.
"""

from __future__ import annotations

import time

from nasface.core.stages import format_duration
from nasface.search.periodic import Periodic

CHECK_SECONDS = 0.5
SLACK_SECONDS = 1.0  # after the interval, so that the lines that come every interval anyway come first


class SilenceWatch(Periodic):
    """A thread that logs "still working: ..." through ``reporter`` when its console has printed
    nothing for ``reporter.interval`` (+ ``SLACK_SECONDS``) seconds."""

    seconds, name = CHECK_SECONDS, "nasface-silence-watch"

    def __init__(self, reporter, progress):
        self.reporter, self.progress = reporter, progress
        super().__init__()

    def tick(self) -> None:
        console = self.reporter.console
        if time.monotonic() - console.last_line < self.reporter.interval + SLACK_SECONDS:
            return
        eta = self.progress.eta_seconds()
        left = f"; search ~{format_duration(eta)} left" if eta is not None else ""
        self.reporter.log(f"  still working: {self.progress.doing}, "
                          f"{format_duration(time.time() - self.progress.started)} elapsed{left}")
        console.last_line = time.monotonic()  # in quiet or jsonl mode too: one line per interval at most
