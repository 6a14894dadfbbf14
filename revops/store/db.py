"""SQLite connections for the store: one per thread, WAL, and explicit transactions.

Every thread that touches the store gets its own `sqlite3.Connection` (sqlite3 objects must
not be shared across threads while in use), kept in a `threading.local`. The store also keeps
a list of every connection it opened so `close_all` can close them all, not only the calling
thread's (the others would leak).

Connections run in autocommit mode (`isolation_level=None`); writes go through `transaction`,
which opens `BEGIN IMMEDIATE` (take the write lock up front, so two writers wait on
busy_timeout instead of failing with SQLITE_BUSY on a read-to-write upgrade) and commits or
rolls back as a unit.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

#: How long a writer waits for another thread's (or process's) write lock, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class StoreClosed(RuntimeError):
    """Raised when a closed Store is used."""


def _connect(path: Path) -> sqlite3.Connection:
    """Returns a new connection with the store's per-connection PRAGMAs set."""
    # check_same_thread=False only so close_all() may close other threads' connections at
    # shutdown; during normal use each connection is reached through its own thread's local.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # In WAL mode NORMAL never corrupts the database; a power loss may lose the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # 8 MiB page cache per connection (default 2 MiB): index pages of a large forwards table
    # stay warmer during a backfill. The plugin holds a connection per thread (two or three),
    # so the cache counts several times against its memory budget (150 MB at 1M forwards).
    conn.execute("PRAGMA cache_size = -8192")
    # Checkpoint every 16384 WAL pages (64 MiB) instead of 1000: a batch of 1,000 forward
    # events dirties ~2,700 pages scattered over the channel-ordered indexes, so with the
    # default every commit ran a checkpoint (copy + fsync). At 1M forwards: 1000 -> 8192
    # pages measured +40 % events/s, 8192 -> 16384 another +10 % (pages rewritten between
    # two checkpoints are copied once). After a checkpoint the WAL is cut back to 64 MiB.
    conn.execute("PRAGMA wal_autocheckpoint = 16384")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


class Connections:
    """Hands each thread its own connection to one database file; closes them all at once."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """Returns the calling thread's connection, opening it on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise StoreClosed(f"store {self.path} is closed")
            conn = _connect(self.path)
            self._all.append(conn)
        self._local.conn = conn
        return conn

    def count(self) -> int:
        """Returns how many connections are open (one per thread that used the store)."""
        with self._lock:
            return len(self._all)

    def close_all(self) -> None:
        """Closes every thread's connection. Call it after the threads stopped using the store."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass  # closing is best effort at shutdown
        self._local = threading.local()


@contextmanager
def transaction(conn: sqlite3.Connection, commit: Callable[[], None] | None = None
                ) -> Iterator[sqlite3.Connection]:
    """Runs the block in one write transaction: all of it is committed, or none of it.

    `commit`, when given, is called instead of a plain COMMIT and must run COMMIT itself:
    the flow cache commits under its lock, so that its bookkeeping and the commit are one
    step for a concurrent reader (see flowcache.py).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite itself rolls back after some errors (e.g. SQLITE_FULL)
            conn.execute("ROLLBACK")
        raise
    if commit is None:
        conn.execute("COMMIT")
    else:
        commit()
