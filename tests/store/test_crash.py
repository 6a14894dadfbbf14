"""Crash safety: an exception or a kill mid-write leaves no half-written change."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revops.store import Store
from revops.store import forwards as fw
from tests.store.gen import forwards

ROOT = Path(__file__).resolve().parents[2]


def test_exception_mid_batch_rolls_back_the_batch(store, monkeypatch):
    store.ingest_forwards(forwards(10, seed=41))
    before = (store.forward_count(), store.forward_index(), store.channel_flows(2e9))
    real = fw._write
    calls = [0]

    def flaky(conn, r, horizon_s):
        calls[0] += 1
        if calls[0] == 30:
            raise OSError("disk on fire")
        return real(conn, r, horizon_s)

    monkeypatch.setattr(fw, "_write", flaky)
    more = [{**f, "created_index": f["created_index"] + 100, "in_htlc_id": f["in_htlc_id"] + 100}
            for f in forwards(50, seed=42)]
    with pytest.raises(OSError):
        store.ingest_forwards(more)
    assert (store.forward_count(), store.forward_index(), store.channel_flows(2e9)) == before
    monkeypatch.setattr(fw, "_write", real)
    assert store.ingest_forwards(more) == 50  # and the store is usable afterwards


def test_exception_mid_journal_leaves_no_batch(store):
    bad = {"scid": "1x1x1", "applied": True, "fee_ppm": object()}  # not bindable
    with pytest.raises(sqlite3.Error):
        store.journal([{"scid": "1x1x1", "applied": True}, bad], 1.0, "p", "1", "d", "c", False)
    assert store.decisions() == []
    assert store._conn().execute("SELECT count(*) FROM journal_batches").fetchone()[0] == 0


def test_exception_mid_rollup_keeps_forwards(store, monkeypatch):
    from revops.store import rollup
    fs = forwards(300, seed=43, max_age_s=90 * 86400)
    store.ingest_forwards(fs)
    before = (store.forward_count(), store.daily_history())
    real_execute_sql = rollup._ROLLUP
    monkeypatch.setattr(rollup, "_ROLLUP", real_execute_sql.replace("forward_daily (", "nope ("))
    with pytest.raises(sqlite3.OperationalError):
        store.rollup_and_prune(1_767_225_600.0, 30)
    assert (store.forward_count(), store.daily_history()) == before


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from revops.store import Store
from tests.store.gen import forwards
s = Store({path!r})
fs = forwards(200_000, seed=44, n_chans=50)
print("ready", flush=True)
for i in range(0, len(fs), 500):
    s.ingest_forwards(fs[i:i + 500])
    s.journal([{{"scid": "1x1x1", "applied": True}}] * 50, float(i), "p", "1", "d", str(i), False)
"""


def test_killed_mid_ingest_leaves_whole_pages(tmp_path):
    path = tmp_path / "crash.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT), path=str(path))],
                             stdout=subprocess.PIPE, cwd=ROOT)
    assert child.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 10
    s = Store(path)
    try:
        while s.forward_count() < 3000 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        s.close()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    s = Store(path)
    conn = s._conn()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = s.forward_count()
    assert 3000 <= n < 200_000 and n % 500 == 0  # killed mid-run; only whole pages
    assert s.forward_index()[0] == n  # the cursor moved with exactly those pages
    assert len(s.decisions(limit=10**6)) % 50 == 0
    # and the store carries on where it stopped
    fs = forwards(n + 500, seed=44, n_chans=50)
    assert s.ingest_forwards(fs[n:n + 500]) == 500
    s.close()
