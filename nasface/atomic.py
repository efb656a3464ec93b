"""Atomic writes: a reader (or a crash) never sees a half-written file or folder.

Every writer in nasface goes through ``atomic_path``: write a temporary file beside the target, flush
it to disk, then rename it over the target (a rename within one directory is atomic on POSIX). The
temporary name carries the process id so that two drivers writing the same file cannot collide.
Caches that are whole folders (proxy data, teacher targets, full training's decoded faces) go
through ``atomic_dir`` the same way, and a folder left half-written by a killed process is removed
by the next one that writes beside it.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nasface.errors import NasfaceError

# errno values that mean "cannot write here", as opposed to a bug.
WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EDQUOT}
# A staging folder is named .staging~<pid>~<host>~<target>~<random>: whoever finds it knows whose it is.
STAGING = ".staging"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())  # the rename must never point at data still in flight
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    return Path(path)


def process_id() -> str:
    """This process as ``host:pid``: how drivers and staging folders name their owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(owner: str | None) -> bool:
    """False only when ``owner`` (``host:pid``) was a process of this machine that no longer exists."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: nothing here can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, run by another user
        return True
    return True


def remove_stale_staging(parent: Path) -> None:
    """Remove the staging folders in ``parent`` whose process died before renaming them into place."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        parts = entry.name.split("~")
        if len(parts) == 5 and parts[0] == STAGING and not process_alive(f"{parts[2]}:{parts[1]}"):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def atomic_dir(final: str | os.PathLike, complete: str, what: str) -> Iterator[Path]:
    """Yield a private folder to fill; when the block ends, it is renamed to ``final`` in one step.

    ``final / complete`` is the file a finished folder holds: if another process put its copy in
    place first (the same cache, built from the same inputs), this one is discarded.  On any error
    the staging folder is removed; a disk or folder that refuses the writes is one ``NasfaceError``
    naming ``what`` (e.g. "the proxy-data cache").
    """
    final = Path(final)
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(parent)
        host = socket.gethostname().replace("~", "-")
        staging = parent / "~".join((STAGING, str(os.getpid()), host, final.name, secrets.token_hex(4)))
        staging.mkdir()
    except OSError as err:
        raise NasfaceError(f"{parent}: cannot create {what} here ({err.strerror or err}); choose a writable "
                           f"folder") from None
    try:
        yield staging
        try:
            os.rename(staging, final)
        except OSError as err:
            if not (final / complete).is_file():
                raise NasfaceError(f"{final}: cannot put {what} in place ({err.strerror or err})") from None
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        raise NasfaceError(f"cannot write {what} in {parent}: {err.strerror}; free disk space or make it "
                           f"writable, then run the same command again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class RowLog:
    """One JSON line per finished unit of work, keyed, so a run cut short resumes where it stopped.

    A line is appended and flushed as soon as its work is done; a torn last line (the process was
    killed mid-write) is cut off on reading and its work is simply done again.
    """

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            text = path.read_text()
            whole, _, torn = text.rpartition("\n")
            if torn:  # cut it off, or the next line would be appended to it
                path.write_text(whole + "\n" if whole else "")
            for row in map(json.loads, whole.splitlines()):
                self.rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def add(self, key: str, row: dict) -> dict:
        row = {"key": key, **row}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.rows[key] = row
        return row
