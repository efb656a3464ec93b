"""No silent stretch: ``SilenceWatch`` prints a line once ``interval`` seconds pass without one."""

from __future__ import annotations

import io
import re
import time

from nasface.ui.progress import Reporter
from nasface.search.eta import Progress
from nasface.search.silence import SilenceWatch
from nasface.ui.timed_console import TimedConsole


def reporter_into(buffer: io.StringIO, interval: float) -> Reporter:
    reporter = Reporter("rich", interval=interval)
    reporter.console = TimedConsole(file=buffer, highlight=False, soft_wrap=True, no_color=True)
    return reporter


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_silent_stretch_gets_a_line_naming_what_the_driver_does():
    buffer = io.StringIO()
    reporter = reporter_into(buffer, interval=0.5)
    progress = Progress(planned=None, doing="decoding the proxy data")
    watch = SilenceWatch(reporter, progress)
    watch.start()
    try:
        wait_for(lambda: buffer.getvalue().count("still working") >= 2)
    finally:
        watch.stop()
    lines = buffer.getvalue().splitlines()
    assert len(lines) >= 2
    assert all(re.fullmatch(r"  still working: decoding the proxy data, \dm\d\ds elapsed", line) for line in lines)


def test_no_extra_line_while_other_lines_keep_coming():
    buffer = io.StringIO()
    reporter = reporter_into(buffer, interval=2.0)
    watch = SilenceWatch(reporter, Progress(planned=None))
    watch.start()
    try:
        for step in range(20):  # a line every 0.1 s for 2 s: never 3 s (2 + the slack) of silence
            reporter.log(f"step {step}")
            time.sleep(0.1)
    finally:
        watch.stop()
    assert "still working" not in buffer.getvalue()
    assert buffer.getvalue().count("step") == 20


def test_every_printed_line_and_every_jsonl_event_counts_as_a_line(capsys):
    reporter = Reporter("jsonl")
    before = reporter.console.last_line
    time.sleep(0.01)
    reporter.log("x")
    assert reporter.console.last_line > before
    console = TimedConsole(file=io.StringIO())
    before = console.last_line
    time.sleep(0.01)
    console.print("y")
    assert console.last_line > before


def test_a_live_bar_redrawing_on_a_terminal_is_not_a_line_so_a_stalled_stage_still_gets_one():
    """On a terminal rich's live bar redraws itself ten times a second by printing a ``Control``:
    counted as lines, they kept the watch quiet for 20 s of the README study's 'timing a trial'
    stage, whose bar does not move between its two units."""
    from rich.progress import Progress as Bar

    buffer = io.StringIO()
    reporter = Reporter("rich", interval=0.5)
    reporter.console = TimedConsole(file=buffer, force_terminal=True, width=100, no_color=True)
    watch = SilenceWatch(reporter, Progress(planned=None, doing="timing a trial"))
    with Bar(console=reporter.console, refresh_per_second=20) as bar:
        bar.add_task("timing a trial", total=2)
        watch.start()
        try:
            wait_for(lambda: "still working: timing a trial" in buffer.getvalue(), seconds=10)
        finally:
            watch.stop()
    assert "still working: timing a trial" in buffer.getvalue()
