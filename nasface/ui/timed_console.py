"""A rich console that knows when it last printed: what a watch for silent stretches reads."""

from __future__ import annotations

import time

from rich.console import Console
from rich.control import Control


class TimedConsole(Console):
    """``last_line`` is the ``time.monotonic()`` of the last line printed.  A live bar's redraws are
    not lines (a bar that does not move says nothing): on a terminal rich redraws it by printing a
    bare ``Control`` several times a second, which is not counted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_line = time.monotonic()

    def print(self, *args, **kwargs) -> None:
        super().print(*args, **kwargs)
        if not args or not all(isinstance(arg, Control) for arg in args):
            self.last_line = time.monotonic()
