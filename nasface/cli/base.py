"""What every command shares: the typer app, the consoles, the library's messages, Ctrl-C, and printing
facts and tables.

Every user mistake surfaces as ``NasfaceError`` and is printed as one line (``error: ...``) with
exit status 2 by ``nasface.cli.app.main``; Ctrl-C in a command ends it through ``on_interrupt``
(one line saying what was kept, exit status 130).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import NoReturn

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Neural-architecture search and design-space explorer for lightweight face recognition.")


console = Console(soft_wrap=True)


# Progress while a command's stdout carries its data (JSON, facts): on stderr, so a pipe gets only the data.
progress_console = Console(stderr=True, soft_wrap=True)


class Messages(logging.Handler):
    """The library's messages (``logging``, the loggers under ``nasface``), each given as one line to
    ``show``: by default plain on stderr, so that stdout keeps a command's data (``score --json``); a
    command with a display of its own points it there while it runs (``shown_by``)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.show: Callable[[str], None] = lambda message: progress_console.print(message, markup=False,
                                                                                  highlight=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.show(record.getMessage())
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)

    @contextmanager
    def shown_by(self, show: Callable[[str], None]) -> Iterator[None]:
        previous, self.show = self.show, show
        try:
            yield
        finally:
            self.show = previous

    def install(self) -> None:
        """The one handler of the ``nasface`` loggers at the command line (INFO and above)."""
        library = logging.getLogger("nasface")
        library.addHandler(self)  # once: logging adds a handler only if it is not there yet
        library.setLevel(logging.INFO)


messages = Messages()


def print_table(table: Table) -> None:
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


class Output(str, Enum):
    rich = "rich"
    quiet = "quiet"
    jsonl = "jsonl"


def interrupted(what_next: str) -> NoReturn:
    """Ctrl-C: one line on stderr, exit status 130 (128 + SIGINT, as a shell reports it), no traceback."""
    print(f"interrupted: {what_next}", file=sys.stderr, flush=True)
    sys.exit(130)


@contextmanager
def on_interrupt(what_next: str) -> Iterator[None]:
    """Ctrl-C inside the block ends the command: ``interrupted(what_next)``."""
    try:
        yield
    except KeyboardInterrupt:
        interrupted(what_next)


# What Ctrl-C leaves before a search's candidates (or a score's training): every cache is whole or absent.
NOTHING_HALF_WRITTEN = ("no cache is left half-written; the same command starts the unfinished stage again and "
                        "reuses the finished ones")


def print_facts(facts: dict, as_json: bool, lines=None) -> None:
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
