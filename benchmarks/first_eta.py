"""The search's first ETA against the time it took, and the longest stretch without a line.

    python benchmarks/first_eta.py [--log STAMPED_LOG | --save STAMPED_LOG] [-- SEARCH ARGS...]

Runs ``nasface search`` (default: the README study shortened, 40 steps at 32 px, 2 candidates, no
teacher, into a fresh studies folder under /tmp) with its output piped, as ``make search > log``
sees it, and stamps each line as it arrives.  Reports the first ETA the search printed ("search ~X
left" or "left ~X"), the time from that line to the end, their ratio, the longest gap between two
lines, and the load average at the start and the end.  ``--log`` analyses a log already stamped
"EPOCH_SECONDS LINE" instead (what a shell loop around ``date +%s.%N`` writes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHORT_STUDY = ["--config", "studies/lfr-light.yaml", "--proxy-steps", "40", "--resolution", "32", "--trials", "2",
               "--teacher", "none"]
ETA = re.compile(r"(?:search ~|left ~)(?:(\d+)h(\d+)m|(\d+)m(\d+)s)")


def seconds_of(match: re.Match) -> float:
    hours, minutes, mins, secs = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 if hours is not None else int(mins) * 60 + int(secs)


def analyse(stamped: list[tuple[float, str]]) -> dict:
    """First ETA (seconds), when it was printed, the time left then, and the longest gap between lines."""
    first = next(((when, seconds_of(m)) for when, line in stamped for m in [ETA.search(line)] if m), None)
    times = [when for when, _ in stamped]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    out = {"lines": len(stamped), "total_seconds": times[-1] - times[0], "worst_gap_seconds": max(gaps, default=0.0)}
    if first is not None:
        out.update(first_eta_seconds=first[1], printed_after_seconds=first[0] - times[0],
                   actual_left_seconds=times[-1] - first[0], ratio_actual_to_eta=(times[-1] - first[0]) / first[1])
    return out


def run_search(args: list[str]) -> list[tuple[float, str]]:
    with tempfile.TemporaryDirectory() as studies:
        command = [sys.executable, "-m", "nasface", "search", *args, "--studies-dir", studies]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        stamped = [(time.time(), line.rstrip("\n")) for line in process.stdout]
        if process.wait() != 0:
            raise SystemExit(f"the search failed (exit {process.returncode}): {stamped[-1][1] if stamped else ''}")
        return stamped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="a stamped log to analyse instead of running a search")
    parser.add_argument("--save", type=Path, help="also write the stamped log of the search run here")
    parser.add_argument("search_args", nargs="*", help="nasface search arguments (default: the short study)")
    options = parser.parse_args()
    load_before = os.getloadavg()
    if options.log:
        stamped = [(float(when), line) for when, _, line in
                   (row.partition(" ") for row in options.log.read_text().splitlines())]
    else:
        stamped = run_search(options.search_args or SHORT_STUDY)
        if options.save:
            options.save.write_text("".join(f"{when:.3f} {line}\n" for when, line in stamped))
    for key, value in analyse(stamped).items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    if not options.log:
        print(f"load average (1, 5, 15 min): {load_before} at the start, {os.getloadavg()} at the end")


if __name__ == "__main__":
    main()
