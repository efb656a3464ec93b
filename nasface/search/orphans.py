"""The Ray processes a killed driver leaves behind, found and stopped by the next driver of the study.

A driver that starts its own local Ray and is then killed (kill -9, a crash) cannot shut Ray down.
Seen with Ray 2.60 on Linux: the GCS server, the raylet, the monitors and the workers end with the
driver, but the dashboard agent and the runtime-env agent (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``, their parent now init) live on for a minute or more.  So each driver notes
its Ray session folder in ``<study>/ray/<host>-<pid>.json`` and removes the note when it shuts Ray
down; a later driver of the study takes the notes of drivers that are dead (``process_alive``) and
stops every process of this machine that holds a file open in that session folder (read from
Linux's ``/proc``; elsewhere only the note goes).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

from nasface.core.atomic import process_alive, process_id, write_atomic

logger = logging.getLogger(__name__)

GRACE_SECONDS = 3.0  # between asking a process to stop (SIGTERM) and killing it


def note_path(study_dir: Path) -> Path:
    return Path(study_dir) / "ray" / f"{process_id().replace(':', '-')}.json"


def note_ray_session(study_dir: Path, session_dir: str) -> Path:
    """Note that this driver's local Ray lives in ``session_dir``; return the note."""
    return write_atomic(note_path(study_dir), json.dumps({"driver": process_id(), "session_dir": session_dir}))


def session_processes(session_dir: str) -> list[int]:
    """This machine's processes (other than this one) with a file open under ``session_dir``."""
    inside = str(Path(session_dir)) + os.sep
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(inside) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile, or another user's
            continue
    return found


def stop_processes(pids: list[int], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM each, then SIGKILL those still there after ``grace`` seconds, and wait (as long again)
    until they are gone."""
    left = list(pids)
    for kind in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, kind)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if Path(f"/proc/{pid}").exists() and not _zombie(pid)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def stop_orphans(study_dir: Path) -> int:
    """Stop the Ray processes of the study's dead drivers (told to this module's logger); return how many."""
    stopped = 0
    for note in sorted((Path(study_dir) / "ray").glob("*.json")):
        try:
            found = json.loads(note.read_text())
            driver, session_dir = found["driver"], found["session_dir"]
        except (OSError, ValueError, KeyError, TypeError):
            note.unlink(missing_ok=True)  # unreadable: written by no driver that could still need it
            continue
        if process_alive(driver):
            continue
        pids: set[int] = set()
        for _ in range(3):  # again for any the session started while it was being stopped
            found = session_processes(session_dir) if Path("/proc").is_dir() else []
            if not found:
                break
            stop_processes(found)
            pids.update(found)
        if pids:
            logger.info(f"stopped {len(pids)} Ray processes left running by driver {driver}, which died")
        stopped += len(pids)
        note.unlink(missing_ok=True)
    return stopped
