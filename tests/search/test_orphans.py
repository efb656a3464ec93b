"""A driver killed with SIGKILL leaves Ray agents running; the next driver of the study stops them."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nasface.core.atomic import process_id
from nasface.search.orphans import note_path, note_ray_session, session_processes, stop_orphans
from tests.killing import REPO

# A driver as the search makes one: its own local Ray, noted in the study folder, a task running.
DRIVER = """
import sys, time
from nasface.search.executor import RayExecutor
from nasface.search.orphans import note_ray_session
executor = RayExecutor(workers=1, cpus_per_trial=1)
note_ray_session(sys.argv[1], executor.session_dir)
executor.submit(0, time.sleep, 600)
print(executor.session_dir, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds a session's processes through /proc (Linux)")
def test_the_ray_processes_of_a_killed_driver_are_stopped_by_the_next_one(tmp_path, caplog):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        session_dir = driver.stdout.readline().strip()
        assert session_dir, "the driver did not start Ray"
        driver.send_signal(signal.SIGKILL)  # the driver alone, as the OOM killer or kill -9 <pid> does
        driver.wait()
        left = session_processes(session_dir)
        assert left, "nothing of the session left to stop: the test shows nothing"
        caplog.set_level(logging.INFO, logger="nasface")
        assert stop_orphans(tmp_path) >= 1  # some may end on their own meanwhile
        assert session_processes(session_dir) == []
        assert caplog.messages and "died" in caplog.messages[0]
        assert list((tmp_path / "ray").iterdir()) == []  # the note goes with them
    finally:
        if driver.poll() is None:
            driver.kill()


def test_a_live_drivers_session_is_left_alone_and_a_damaged_note_is_dropped(tmp_path):
    note = note_ray_session(tmp_path, str(tmp_path / "session"))
    assert note == note_path(tmp_path) and json.loads(note.read_text())["driver"] == process_id()
    (tmp_path / "ray" / "other.json").write_text("{not json")
    assert stop_orphans(tmp_path) == 0
    assert [p.name for p in (tmp_path / "ray").iterdir()] == [note.name]  # this process is alive
