"""``atomic_dir``: the one way nasface puts a cache folder in place (proxy data, teacher, decoded faces)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from nasface.core.atomic import STAGING, atomic_dir, process_id, remove_stale_staging
from nasface.core.errors import NasfaceError


def staging_name(pid: int, host: str | None = None, target: str = "cache") -> str:
    return "~".join((STAGING, str(pid), host or socket.gethostname(), target, "0123abcd"))


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    with atomic_dir(tmp_path / "cache", "done", "the test cache") as staging:
        (staging / "data").write_text("x")
        (staging / "done").write_text("")
        assert not (tmp_path / "cache").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["data", "done"]
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "other", "done", "the test cache") as staging:
        (staging / "data").write_text("half")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no staging folder left behind


def test_the_loser_of_a_race_keeps_the_winner_s_folder(tmp_path):
    with atomic_dir(tmp_path / "cache", "done", "the test cache") as staging:
        (staging / "done").write_text("second")
        (tmp_path / "cache").mkdir()  # another process renamed its copy into place meanwhile
        (tmp_path / "cache" / "done").write_text("first")
    assert (tmp_path / "cache" / "done").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_staging_folders_of_dead_processes_are_removed(tmp_path):
    dead, alive, elsewhere = staging_name(dead_pid()), staging_name(os.getppid()), staging_name(1, "other-host")
    for name in (dead, alive, elsewhere, ".tmp-older-layout"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "half.npy").write_bytes(b"half")
    remove_stale_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive, elsewhere, ".tmp-older-layout"])
    with atomic_dir(tmp_path / "cache", "done", "the test cache") as staging:  # every write cleans up first
        (staging / "done").write_text("")
    assert (tmp_path / "cache" / "done").is_file() and not (tmp_path / dead).exists()
    assert process_id() == f"{socket.gethostname()}:{os.getpid()}"


def test_a_folder_that_cannot_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(NasfaceError, match="cannot create the test cache here"):
        with atomic_dir(tmp_path / "a-file" / "cache", "done", "the test cache"):
            pass
