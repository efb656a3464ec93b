"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Every writer in nasface goes through ``atomic_path``: write a temporary file beside the target, flush
it to disk, then rename it over the target (a rename within one directory is atomic on POSIX). The
temporary name carries the process id so that two drivers writing the same file cannot collide.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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
