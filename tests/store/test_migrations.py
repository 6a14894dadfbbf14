"""Opening the store: migrations from empty and on re-open, WAL, schema guards."""

from __future__ import annotations

import sqlite3

import pytest

from revops.store import Store
from revops.store.migrations import LATEST, MIGRATIONS, SchemaTooNew, migrate


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_fresh_database_is_migrated_to_latest_in_wal(tmp_path):
    path = tmp_path / "deep" / "dir" / "revops.sqlite3"  # parent dirs are created
    s = Store(path)
    conn = s._conn()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    logged = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert logged == [v for v, _, _ in MIGRATIONS]
    s.close()
    assert {"forwards", "forward_daily", "channel_last", "forward_cursor", "channel_state",
            "param_overrides", "meta", "journal_batches", "decisions", "peer_events",
            "schema_migrations"} <= _tables(path)


def test_reopen_keeps_data_and_applies_nothing(tmp_path):
    path = tmp_path / "revops.sqlite3"
    s = Store(path)
    s.set_meta("k", {"a": 1})
    s.close()
    s = Store(path)
    assert s.get_meta("k") == {"a": 1}
    assert migrate(s._conn()) == []
    assert s._conn().execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == LATEST
    s.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "revops.sqlite3"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(SchemaTooNew):
        Store(path)


def test_failing_migration_rolls_back_every_step(tmp_path):
    s = Store(tmp_path / "revops.sqlite3")
    conn = s._conn()

    def boom(c):
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    extra = MIGRATIONS + ((LATEST + 1, "adds a table", ("CREATE TABLE fine (x)",)),
                          (LATEST + 2, "breaks", boom))
    with pytest.raises(RuntimeError):
        migrate(conn, extra)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "fine" not in names and "half_done" not in names
    assert migrate(conn, extra[:-1]) == [LATEST + 1]  # the good one applies on its own later
    s.close()


def test_migrations_are_numbered_without_gaps():
    assert [v for v, _, _ in MIGRATIONS] == list(range(1, LATEST + 1))
