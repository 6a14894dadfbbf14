"""Store history: applied fee-change counts and last changes, feerate samples, Store.history."""

from __future__ import annotations

import random
import sqlite3

from revops.facts.history import FeerateSample, PeerUptime
from revops.store import Store
from revops.store import history as hist
from revops.store.migrations import MIGRATIONS, migrate

from .gen import NOW_S, forward

DAY = 86_400.0
T0 = 1_767_225_600.0


def rec(scid: str, applied: bool, **kw) -> dict:
    return {"scid": scid, "peer_id": "02aa", "action": "set_fee", "fee_ppm": 100,
            "applied": applied, **kw}


def journal(store: Store, at_s: float, records: list[dict], dry_run: bool = False) -> None:
    store.journal(records, at_s, "default", "1", "sha256:x", f"c{at_s}", dry_run)


def test_fee_updates_count_applied_changes_in_24h(store):
    journal(store, T0 - DAY - 1, [rec("1x1x1", True)])            # too old
    journal(store, T0 - DAY, [rec("1x1x1", True)])                # bound excluded
    journal(store, T0 - 3600, [rec("1x1x1", True), rec("2x2x2", False), rec("3x3x3", True)])
    journal(store, T0, [rec("1x1x1", True), rec("2x2x2", False, action="hold")])
    journal(store, T0 + 10, [rec("1x1x1", True)])                 # after now
    h = store.history(T0)
    assert {s: c.updates_24h for s, c in h.channels.items()} == {"1x1x1": 2, "3x3x3": 1}
    assert h.node_fee_updates_24h == 3
    assert h.channels["1x1x1"].last_change_s == T0                # the later one is after now
    assert h.channels["3x3x3"].last_change_s == T0 - 3600
    assert "2x2x2" not in h.channels                              # never applied
    assert h.as_of_s == T0


def test_last_change_survives_journal_pruning(store):
    journal(store, T0 - 100 * DAY, [rec("1x1x1", True)])
    journal(store, T0 - 95 * DAY, [rec("1x1x1", False)])
    assert store.prune_journal(T0, 90) == 2
    h = store.history(T0)
    assert h.channels["1x1x1"].last_change_s == T0 - 100 * DAY
    assert h.channels["1x1x1"].updates_24h == 0 and h.node_fee_updates_24h == 0


def test_last_change_never_goes_back(store):
    journal(store, T0, [rec("1x1x1", True)])
    journal(store, T0 - 50, [rec("1x1x1", True)])  # a batch journaled late with an older time
    assert store.history(T0).channels["1x1x1"].last_change_s == T0


def test_migration_fills_last_changes_from_the_journal(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:4])
    conn.execute("INSERT INTO journal_batches (id, at_s, cycle_id, policy_name, policy_version, "
                 "policy_digest, dry_run) VALUES (1, ?, 'a', 'p', 'v', 'd', 0), "
                 "(2, ?, 'b', 'p', 'v', 'd', 0)", (T0 - 7200, T0 - 3600))
    conn.execute("INSERT INTO decisions (batch_id, scid, applied) VALUES (1, '1x1x1', 1), "
                 "(2, '1x1x1', 1), (2, '2x2x2', 0), (1, '3x3x3', 1)")
    conn.close()
    with Store(path) as s:
        h = s.history(T0)
        assert {k: (c.updates_24h, c.last_change_s) for k, c in h.channels.items()} == {
            "1x1x1": (2, T0 - 3600), "3x3x3": (1, T0 - 7200)}


def test_feerate_samples_are_recorded_replaced_and_pruned(store):
    store.record_feerate(T0 - 15 * DAY, 100)
    store.record_feerate(T0 - 8 * DAY, 200)
    store.record_feerate(T0 - DAY, 300)
    store.record_feerate(T0 - DAY, 350)          # same time: replaces
    store.record_feerate(T0, 400)                # prunes samples older than 14 d
    rows = store._conn().execute("SELECT at_s, opening_perkw FROM feerate_samples "
                                 "ORDER BY at_s").fetchall()
    assert [tuple(r) for r in rows] == [(T0 - 8 * DAY, 200), (T0 - DAY, 350), (T0, 400)]
    assert store.history(T0).feerates == (FeerateSample(T0 - DAY, 350), FeerateSample(T0, 400))
    assert store.history(T0 - 1).feerates == (FeerateSample(T0 - DAY, 350),)


def test_peer_uptime_in_history(store):
    store.record_connection("02aa", True, T0 - 4 * 3600)
    store.record_connection("02aa", False, T0 - 3600)
    store.record_connection("02bb", False, T0)       # known for 0 s: ratio unknown -> 1.0
    h = store.history(T0)
    assert h.peers["02aa"] == PeerUptime(0.75, 1, 4 * 3600.0)
    assert h.peers["02bb"] == PeerUptime(1.0, 1, 0.0)


def test_empty_store_history(store):
    h = store.history(T0)
    assert (dict(h.peers), dict(h.channels), h.node_fee_updates_24h, h.feerates) == ({}, {}, 0, ())


def test_forwards_since_is_the_earlier_of_the_oldest_forward_and_when_watching_began(store):
    assert store.history(T0).forwards_since_s is None                 # nothing known: full windows
    store.mark_watching(T0 - 2 * DAY)
    store.mark_watching(T0 - DAY)                                     # the first call wins
    assert store.history(T0).forwards_since_s == T0 - 2 * DAY
    settled = {"created_index": 1, "in_channel": "1x1x0", "in_htlc_id": 1, "out_channel": "1x2x0",
               "in_msat": 1_000_000, "out_msat": 999_000, "fee_msat": 1_000, "status": "settled",
               "received_time": T0 - 5 * DAY, "resolved_time": T0 - 5 * DAY + 2, "style": "tlv"}
    store.ingest_forwards([settled])                                  # backfilled: older history
    assert store.history(T0).forwards_since_s == T0 - 5 * DAY + 2


def test_in_channel_sums_read_only_their_window_and_count_settled_forwards(store):
    rng = random.Random(7)
    chans = [f"1x{i}x0" for i in range(6)]
    forwards = [forward(i, rng, chans) for i in range(3000)]
    store.ingest_forwards(forwards)
    for window, column, field in ((DAY, "fee_msat", "fee_msat"), (7 * DAY, "out_msat", "out_msat")):
        want: dict = {}
        for f in forwards:
            t = f.get("resolved_time") or f.get("received_time")
            if f["status"] == "settled" and f.get("out_channel") and NOW_S - window < t <= NOW_S:
                pair = want.setdefault(f["out_channel"], {})
                pair[f["in_channel"]] = pair.get(f["in_channel"], 0) + f.get(field, 0)
        assert hist.in_fees(store._conn(), NOW_S, window, column) == want


def test_queries_use_their_indexes(store):
    conn = store._conn()
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + hist._IN_SUMS.format(column="fee_msat"),
                                               (0, 1)))
    assert "forwards_t" in plan and "SCAN" not in plan, plan
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + hist._UPDATES, (0, 1)))
    assert "journal_batches_at" in plan and "decisions_applied" in plan, plan
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT at_s, opening_perkw FROM feerate_samples WHERE at_s > ? "
        "AND at_s <= ? ORDER BY at_s", (0, 1)))
    assert "SEARCH" in plan and "TEMP B-TREE" not in plan, plan


def test_history_reuses_the_forward_sums_it_is_given(store):
    """The rebalance half of a cycle passes the fee half's forward sums (runtime.observe):
    taken as they are, everything else read afresh."""
    rng = random.Random(3)
    store.ingest_forwards([forward(i, rng, ["1x1x0", "1x2x0"]) for i in range(200)])
    first = store.history(NOW_S)
    assert first.in_fees_1d and first.in_volume_7d
    journal(store, NOW_S, [rec("1x1x0", True)])        # the fee half's change
    sums = ({"9x9x9": {"1x1x0": 5}}, {})
    again = store.history(NOW_S, sums)
    assert (again.in_fees_1d, again.in_volume_7d) == sums
    assert again.channels["1x1x0"].last_change_s == NOW_S
    fresh = store.history(NOW_S, (first.in_fees_1d, first.in_volume_7d))
    assert fresh == store.history(NOW_S)
