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
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from nasface.core.errors import NasfaceError

# errno values that mean "cannot write here", as opposed to a bug.
WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EDQUOT}
# A staging folder is named .staging~<pid>~<host>~<target>~<random>: whoever finds it knows whose it is.
STAGING = ".staging"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (another thread may be
    creating files meanwhile); elsewhere by setting it and putting it back at once."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
            # some writers (safetensors) create their file 0600: give it the mode any new file gets here
            # (where the file system keeps no modes, as FAT does not, it keeps the one it has)
            with suppress(PermissionError, NotImplementedError):
                os.fchmod(handle.fileno(), 0o666 & ~current_umask())
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
    killed mid-write) is cut off on reading and its work is simply done again.  Several processes
    may share one log: appends and the torn-line repair hold an exclusive ``flock`` on the file, and
    ``claim`` hands each unit of work to one live process (a dead owner's claim is taken over).
    """

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        self.refresh()

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield handle
        finally:
            os.close(handle)  # closing releases the lock

    def refresh(self) -> None:
        """Read the rows other processes have appended since."""
        if not self.path.exists():
            return
        with self._locked() as handle:
            text = self.path.read_text()
            whole, _, torn = text.rpartition("\n")
            if torn:  # cut it off, or the next line would be appended to it
                os.ftruncate(handle, len((whole + "\n").encode()) if whole else 0)
        for row in map(json.loads, whole.splitlines()):
            self.rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def add(self, key: str, row: dict) -> dict:
        row = {"key": key, **row}
        with self._locked() as handle:
            os.write(handle, (json.dumps(row) + "\n").encode())
            os.fsync(handle)
        self.rows[key] = row
        self.release(key)
        return row

    def _claim_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.path.with_name(self.path.name + ".claims") / digest

    def claim(self, key: str) -> bool:
        """True when this process may do ``key``'s work: nobody logged it and no live process holds it."""
        self.refresh()
        if key in self.rows:
            return False
        path = self._claim_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    owner = path.read_text()
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                if owner == process_id():
                    return True
                if process_alive(owner):
                    return False
                path.unlink(missing_ok=True)  # its process died mid-work: take it over
                continue
            with os.fdopen(handle, "w") as claim_file:
                claim_file.write(process_id())
            return True
        return False

    def release(self, key: str) -> None:
        path = self._claim_path(key)
        try:
            if path.read_text() == process_id():
                path.unlink()
        except FileNotFoundError:
            pass
