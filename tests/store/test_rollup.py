"""Rollups before pruning keep daily totals; VACUUM only when it frees enough."""

from __future__ import annotations

import math

from revops.store.rollup import DAILY_FIELDS
from tests.store.gen import DAY_S, NOW_S, forwards


def _assert_history_equal(got: list[dict], want: list[dict]) -> None:
    assert [(d["day"], d["scid"]) for d in got] == [(d["day"], d["scid"]) for d in want]
    for g, w in zip(got, want):
        for f in DAILY_FIELDS:
            if isinstance(w[f], float) or isinstance(g[f], float):
                assert math.isclose(g[f], w[f], rel_tol=1e-9, abs_tol=1e-9), (g, w)
            else:
                assert g[f] == w[f], (f, g, w)


def test_rollup_and_prune_keep_daily_totals(store):
    fs = forwards(2000, seed=21, n_chans=6, max_age_s=80 * DAY_S)
    store.ingest_forwards(fs)
    before = store.daily_history()
    total = store.forward_count()
    r = store.rollup_and_prune(NOW_S, keep_days=45)
    old = [f for f in fs if (f.get("resolved_time") or f.get("received_time")) < NOW_S - 45 * DAY_S]
    assert r["pruned"] == len(old) and r["pruned"] > 0
    assert r["rolled"] == sum(f["status"] != "offered" for f in old)
    assert store.forward_count() == total - r["pruned"]
    _assert_history_equal(store.daily_history(), before)
    # a later prune adds to partly rolled days instead of overwriting them
    r2 = store.rollup_and_prune(NOW_S + 10.3 * DAY_S, keep_days=45)
    assert r2["pruned"] > 0
    _assert_history_equal(store.daily_history(), before)


def test_daily_history_of_one_channel(store):
    fs = forwards(400, seed=22, n_chans=4)
    store.ingest_forwards(fs)
    scid = fs[0]["in_channel"]
    mine = store.daily_history(scid)
    assert mine and {d["scid"] for d in mine} == {scid}
    assert mine == [d for d in store.daily_history() if d["scid"] == scid]
    # the channel's settled fees out, summed over days, match the raw forwards
    fees = sum(f.get("fee_msat") or 0 for f in fs
               if f["status"] == "settled" and f.get("out_channel") == scid)
    sourced = sum(f.get("fee_msat") or 0 for f in fs
                  if f["status"] == "settled" and f["in_channel"] == scid)
    assert sum(d["fees_msat"] for d in mine) == fees
    assert sum(d["sourced_fees_msat"] for d in mine) == sourced


def test_keep_days_is_at_least_the_longest_window(store):
    store.ingest_forwards(forwards(300, seed=23, max_age_s=40 * DAY_S))
    r = store.rollup_and_prune(NOW_S, keep_days=1)
    assert r["cutoff_s"] == NOW_S - 30 * DAY_S


def test_pruned_forwards_are_not_ingested_again(store):
    fs = forwards(600, seed=24, max_age_s=80 * DAY_S)
    store.ingest_forwards(fs)
    store.rollup_and_prune(NOW_S, keep_days=45)
    history = store.daily_history()
    count = store.forward_count()
    assert store.ingest_forwards(fs) == 0  # a replayed backfill from index 0
    assert store.forward_count() == count
    assert store.daily_history() == history


def test_stale_offered_forwards_are_pruned_not_rolled(store):
    store.ingest_forwards([{"created_index": 1, "in_htlc_id": 1, "in_channel": "1x1x1",
                            "out_channel": "2x2x2", "in_msat": 10, "status": "offered",
                            "received_time": NOW_S - 60 * DAY_S}])
    assert store.daily_history() == []
    assert store.rollup_and_prune(NOW_S, 45) | {"cutoff_s": 0} == {"rolled": 0, "pruned": 1,
                                                                   "cutoff_s": 0}
    assert store.forward_count() == 0 and store.daily_history() == []


def test_vacuum_only_when_worth_it(store):
    conn = store._conn()
    assert not store.vacuum_if_worth()  # empty file: nothing free
    # old forwards first, as a real node writes them, so pruning empties whole pages
    store.ingest_forwards(forwards(6000, seed=25, now_s=NOW_S - 100 * DAY_S))
    store.ingest_forwards([{**f, "created_index": f["created_index"] + 10_000,
                            "in_htlc_id": f["in_htlc_id"] + 10_000}
                           for f in forwards(600, seed=26, max_age_s=20 * DAY_S)])
    store.rollup_and_prune(NOW_S, keep_days=30)
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert free / pages > 0.2
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    assert not store.vacuum_if_worth(min_free_bytes=free * page_size)  # below the bytes floor
    assert not store.vacuum_if_worth(min_free_ratio=0.99, min_free_bytes=0)  # below the ratio
    assert store.vacuum_if_worth(min_free_ratio=0.2, min_free_bytes=0)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert conn.execute("PRAGMA page_count").fetchone()[0] < pages
    assert not store.vacuum_if_worth(min_free_ratio=0.2, min_free_bytes=0)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_chunked_prune_interrupted_between_chunks_loses_and_doubles_nothing(store, monkeypatch):
    from revops.store import rollup
    fs = forwards(1500, seed=27, n_chans=5, max_age_s=90 * DAY_S)
    store.ingest_forwards(fs)
    before = store.daily_history()
    monkeypatch.setattr(rollup, "CHUNK_ROWS", 100)
    real = rollup.rollup_chunk
    calls = [0]

    def crash_on_third(conn, cutoff_s, limit=100):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt  # the plugin is stopped mid-prune
        return real(conn, cutoff_s, limit)

    monkeypatch.setattr(rollup, "rollup_chunk", crash_on_third)
    try:
        store.rollup_and_prune(NOW_S, keep_days=30)
    except KeyboardInterrupt:
        pass
    _assert_history_equal(store.daily_history(), before)  # two chunks in, nothing lost
    assert store.ingest_forwards(fs) == 0  # a replay meanwhile stores nothing twice
    _assert_history_equal(store.daily_history(), before)
    monkeypatch.setattr(rollup, "rollup_chunk", real)
    r = store.rollup_and_prune(NOW_S, keep_days=30)  # the next run finishes the job
    assert r["pruned"] > 100
    assert all((f.get("resolved_time") or f.get("received_time")) >= r["cutoff_s"]
               for f in [dict(x) for x in store._conn().execute("SELECT * FROM forwards")])
    _assert_history_equal(store.daily_history(), before)
