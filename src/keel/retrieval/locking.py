"""One writer per collection: ingests and rollbacks of the same collection run one at a time.

An ingest reads the collection's live documents, embeds what changed and writes a new index
version; two of them interleaved would plan against the same version and collide. Each
writer therefore holds the collection's lock from planning to commit, and a second one waits
for it (up to a timeout, then fails with ``collection_busy``) and plans against the version
the first one wrote.

* Postgres: a session-level advisory lock (``pg_advisory_lock``) on a connection held for
  the ingest, waited for with ``lock_timeout``. The server drops it if the process dies.
* SQLite: an exclusive ``flock`` on a file beside the database (``<db>.locks/<name>``),
  released by the kernel if the process dies. An in-memory database gets a lock that only
  covers the process, since nothing outside it can see that database.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from keel.core.errors import ConflictError

_POLL_SECONDS = 0.05


def busy(name: str, timeout: float) -> ConflictError:
    return ConflictError(
        f"another ingest or rollback of collection {name!r} is still running after "
        f"{timeout:g} s of waiting; retry when it finishes, or raise "
        "retrieval.ingest_lock_timeout",
        code="collection_busy",
        collection=name,
        waited_seconds=timeout,
    )


class Held(Protocol):
    def release(self) -> None: ...


class WriterLocks(Protocol):
    def acquire(self, name: str, timeout: float) -> Held:
        """Block until this process holds collection ``name``'s writer lock, or raise
        ``collection_busy`` after ``timeout`` seconds."""
        ...


class _FileHeld:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class FileLocks:
    """``flock`` on ``<folder>/<name>.lock``; two opens of the file exclude each other, so it
    works between threads of one process as well as between processes."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def acquire(self, name: str, timeout: float) -> Held:
        self._folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return _FileHeld(fd)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise busy(name, timeout) from None
                time.sleep(_POLL_SECONDS)


class _ThreadHeld:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock: threading.Lock | None = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class ProcessLocks:
    """For an in-memory SQLite database, which only this process can write."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def acquire(self, name: str, timeout: float) -> Held:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise busy(name, timeout)
        return _ThreadHeld(lock)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``, namespaced to retrieval."""
    digest = hashlib.blake2b(f"keel.retrieval:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _AdvisoryHeld:
    def __init__(self, conn: Connection, key: int) -> None:
        self._conn: Connection | None = conn
        self._key = key

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (self._key,))
            conn.commit()
        finally:
            conn.close()


class AdvisoryLocks:
    """Session-level Postgres advisory locks, one connection held per lock."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, timeout: float) -> Held:
        key = advisory_key(name)
        conn = self._engine.connect()
        try:
            milliseconds = max(1, int(timeout * 1000))
            conn.exec_driver_sql(f"SET lock_timeout = {milliseconds}")
            conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (key,))
            conn.exec_driver_sql("SET lock_timeout = 0")
            conn.commit()  # the session holds the lock; end the transaction around it
        except OperationalError as exc:
            conn.close()
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise busy(name, timeout) from exc
            raise
        except BaseException:
            conn.close()
            raise
        return _AdvisoryHeld(conn, key)
