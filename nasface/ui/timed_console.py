"""A rich console that knows when it last printed: what a watch for silent stretches reads."""

from __future__ import annotations

import time

from rich.console import Console


class TimedConsole(Console):
    """``last_line`` is the ``time.monotonic()`` of the last line printed (a live bar's redraws are
    not lines: a bar that does not move says nothing)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_line = time.monotonic()

    def print(self, *args, **kwargs) -> None:
        super().print(*args, **kwargs)
        self.last_line = time.monotonic()
