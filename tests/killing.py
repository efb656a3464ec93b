"""Kill-and-continue, as a user's machine does it: a real command killed with SIGKILL, then run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def killed_then_finished(args: list[str], cwd: Path, log: Path, lines: int = 2,
                         timeout: float = 600) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run ``python -m nasface ARGS``, kill its process group once ``log`` holds ``lines`` lines, then
    run the same command to its end: the log's lines at the kill, and the second run."""
    command = [sys.executable, "-m", "nasface", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < lines):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = log.read_text().splitlines()
    finished = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1.5 * timeout)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return before, finished
