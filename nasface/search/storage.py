"""Where a study lives: its Optuna storage, opened to tolerate several drivers, and their lock.

Several ``nasface search`` processes may drive one study at once (on one machine with SQLite, on
many with PostgreSQL).  Optuna makes each single write safe; what it cannot make safe are
nasface's read-then-write steps: "is this seed network enqueued yet? if not, enqueue it", "are
there N trained candidates yet? if not, ask for another", "is this architecture already being
trained?".  ``StudyLock`` serialises those steps across processes and machines:

- SQLite: ``flock`` on a file beside the database (SQLite itself only works on one machine);
- PostgreSQL: a session-level advisory lock, which the server drops if the driver dies.

Other databases get no lock: one driver per study there.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from nasface.core.atomic import WRITE_ERRNOS
from nasface.core.errors import NasfaceError

if TYPE_CHECKING:  # imported where used: checking a study's settings (and `nasface fidelity`) needs no Optuna
    import optuna

# Seconds a write waits for another driver's write to the SQLite file before failing.  SQLite's
# default (5 s) is short on a loaded machine, and a "database is locked" crash would stop a search.
SQLITE_BUSY_TIMEOUT = 120.0


def check_storage_url(url: str) -> str:
    """The database kind of a storage URL (sqlite, postgresql...); NasfaceError when it is none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        raise NasfaceError(f"--storage {url!r}: not a database URL (e.g. sqlite:///study.db or "
                           f"postgresql://user@host/db)") from None


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The Optuna storage at ``url`` (created if new); NasfaceError when it cannot be opened."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    # SQLite waits for a concurrent writer instead of failing at once.  No WAL journal: a study in
    # WAL mode cannot be read from a read-only folder, and concurrent writers work without it.
    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}} if check_storage_url(url) == "sqlite" else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError:
        raise NasfaceError(f"--storage {url}: the Python driver for this database is not installed "
                           f"(PostgreSQL: pip install 'psycopg[binary]')") from None
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
        raise NasfaceError(f"--storage {url}: cannot open the study storage ({database_error(err)})") from None


def database_error(err: BaseException) -> str:
    """The database's own one-line message inside an Optuna / SQLAlchemy exception."""
    cause = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    original = getattr(cause, "orig", None) or cause
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def write_failure(where: str, err: BaseException) -> NasfaceError:
    """A clear error for a write the disk or the folder refused (full, read-only, too large)."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else database_error(err)
    return NasfaceError(f"cannot write {where}: {reason}; free disk space or make it writable, then run the "
                        f"same command again to continue (what was written before is kept)")


def _key(text: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


class StudyLock:
    """An exclusive lock that every nasface driver of a storage takes around read-then-write steps.

    ``hold(name)`` locks ``name`` (a study, or the storage itself while it is created; with SQLite,
    the whole database file either way); it is not re-entrant.  It costs one short round trip and is
    held for milliseconds, never while a candidate trains.
    """

    def __init__(self, url: str):
        backend = check_storage_url(url)
        # flock and the advisory lock exclude other processes only: a thread of this driver (the
        # heartbeat) holding the same file or connection would pass straight through.
        self._threads = threading.Lock()
        self._file = None
        self._connection = None
        if backend == "sqlite":
            from sqlalchemy.engine import make_url

            database = make_url(url).database
            if database and database != ":memory:":
                path = Path(database).with_name(Path(database).name + ".lock")
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(path, "a")
                except OSError as err:
                    if err.errno in WRITE_ERRNOS:
                        raise write_failure(str(path.parent), err) from None
                    raise
        elif backend == "postgresql":
            from sqlalchemy import create_engine
            from sqlalchemy.exc import SQLAlchemyError
            from sqlalchemy.pool import NullPool

            try:
                self._connection = create_engine(url, poolclass=NullPool).connect()
            except ImportError:
                raise NasfaceError(f"--storage {url}: the PostgreSQL driver is not installed "
                                   f"(pip install 'psycopg[binary]')") from None
            except SQLAlchemyError as err:
                raise NasfaceError(f"--storage {url}: cannot connect ({database_error(err)})") from None

    @contextlib.contextmanager
    def hold(self, name: str):
        with self._threads, self._hold(name):
            yield

    @contextlib.contextmanager
    def _hold(self, name: str):
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        elif self._connection is not None:
            from sqlalchemy import text

            key = _key(f"nasface:{name}")
            self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            self._connection.commit()  # the lock outlives the transaction; no transaction stays open
            try:
                yield
            finally:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                self._connection.commit()
        else:
            yield

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

