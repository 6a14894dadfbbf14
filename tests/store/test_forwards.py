"""Forward ingestion: every identity path, idempotency, out-of-order and overlapping sources."""

from __future__ import annotations

import json
import random
from pathlib import Path

from revops.facts.flow import flows_from_forwards
from tests.store.gen import NOW_S, events_for, forwards

FIXTURES = Path("/work/shared/reference/fixtures")
REF = Path(__file__).resolve().parents[1] / "data"


def _fixture(name: str):
    for d in (FIXTURES, REF):
        if (d / name).exists():
            return json.loads((d / name).read_text())
    raise FileNotFoundError(name)


def _events() -> list[dict]:
    return [n["params"]["forward_event"] for n in _fixture("forward_event.json")]


def _listforwards() -> list[dict]:
    return _fixture("listforwards.json")["forwards"]


def _rows(store) -> list[dict]:
    return [dict(r) for r in store._conn().execute("SELECT * FROM forwards ORDER BY id")]


def _one(store, **where) -> dict:
    rows = [r for r in _rows(store) if all(r[k] == v for k, v in where.items())]
    assert len(rows) == 1, rows
    return rows[0]


SETTLED = {"created_index": 7, "in_channel": "1x1x1", "in_htlc_id": 5, "out_channel": "2x2x2",
           "in_msat": 1010, "out_msat": 1000, "fee_msat": 10, "status": "settled",
           "received_time": 100.5, "resolved_time": 101.5, "updated_index": 3}


def _offered(f: dict) -> dict:
    o = {k: v for k, v in f.items() if k not in ("resolved_time", "updated_index", "failcode")}
    o["status"] = "offered"
    return o


def test_fixture_lifecycle_then_overlapping_backfill(store):
    evs = _events()
    assert [store.ingest_forward_event(e) for e in evs] == [True] * 4
    assert store.forward_count() == 3  # offered+settled merged; failed; local_failed
    assert _one(store, in_htlc_id=401)["status"] == 1  # settled
    # listforwards overlaps all three and adds three more; data matches its own flows
    assert store.ingest_forwards(_listforwards()) == 5  # 2 gain fields (out_htlc_id...), 3 new
    assert store.forward_count() == 6
    assert store.ingest_forwards(_listforwards()) == 0
    now = 1767230000.0
    assert store.channel_flows(now) == flows_from_forwards(_listforwards(), now)
    settled = _one(store, in_htlc_id=401)
    assert (settled["created_index"], settled["updated_index"], settled["out_htlc_id"]) == (101, 88, 17)


def test_duplicate_and_replayed_events_change_nothing(store):
    evs = _events()
    for e in evs:
        store.ingest_forward_event(e)
    before = _rows(store)
    assert [store.ingest_forward_event(e) for e in evs + evs[::-1]] == [False] * 8
    assert _rows(store) == before


def test_notification_params_wrapper_is_accepted(store):
    assert store.ingest_forward_event({"forward_event": _events()[0]})
    assert store.forward_count() == 1


def test_resolution_before_offered_is_never_downgraded(store):
    assert store.ingest_forward_event({k: v for k, v in SETTLED.items() if k != "created_index"})
    # the late offered event only adds its created_index
    assert store.ingest_forward_event(_offered(SETTLED))
    row = _one(store, in_htlc_id=5)
    assert (row["status"], row["created_index"], row["resolved_time"]) == (1, 7, 101.5)
    assert not store.ingest_forward_event(_offered(SETTLED))
    assert store.forward_count() == 1


def test_resolution_upgrades_offered(store):
    settled = {**SETTLED, "in_msat": 1_000_010, "out_msat": 1_000_000}   # 1,000 sat: above dust
    store.ingest_forward_event(_offered(settled))
    assert _one(store, in_htlc_id=5)["status"] == 0
    assert store.ingest_forward_event(settled)
    row = _one(store, in_htlc_id=5)
    assert (row["status"], row["t"], row["hold_s"]) == (1, 101.5, 1.0)
    assert store.channel_flows(200.0)["2x2x2"].window("1d").out_count == 1


def test_a_dust_forward_has_no_hold_time(store):
    """SETTLED moves 1 sat, under the 546 sat dust limit: it counts as a forward, but its hold
    says nothing about the capital a channel locks (a jamming flood holds dust for minutes)."""
    store.ingest_forward_event(_offered(SETTLED))
    assert store.ingest_forward_event(SETTLED)
    row = _one(store, in_htlc_id=5)
    assert (row["status"], row["t"], row["hold_s"]) == (1, 101.5, None)
    w = store.channel_flows(200.0)["2x2x2"].window("1d")
    assert (w.out_count, w.hold_count) == (1, 0)


def test_terminal_outcome_changes_only_with_a_later_updated_index(store):
    store.ingest_forward_event(SETTLED)
    failed = {**SETTLED, "status": "failed", "failcode": 4103}
    failed.pop("updated_index")
    assert not store.ingest_forward_event(failed)  # no index: cannot be later, keep settled
    assert not store.ingest_forward_event({**failed, "updated_index": 2})
    assert _one(store, in_htlc_id=5)["status"] == 1
    assert store.ingest_forward_event({**failed, "updated_index": 9})
    row = _one(store, in_htlc_id=5)
    assert (row["status"], row["failcode"], row["updated_index"]) == (2, 4103, 9)


def test_outcome_fields_do_not_leak_between_outcomes(store):
    lf = {**_offered(SETTLED), "status": "local_failed", "failcode": 4103}
    store.ingest_forward_event(lf)
    store.ingest_forward_event(SETTLED)  # has updated_index; beats an index-less local_failed
    row = _one(store, in_htlc_id=5)
    assert (row["status"], row["failcode"]) == (1, None)


def test_local_failed_single_event(store):
    ev = _events()[3]
    assert ev["status"] == "local_failed" and "updated_index" not in ev
    assert store.ingest_forward_event(ev)
    flows = store.channel_flows(ev["received_time"] + 10)
    assert flows["850123x77x1"].window("1d").out_failed_liquidity == 1
    assert flows["880001x1234x0"].window("1d").in_failed == 1
    # listforwards later reports the same forward without resolved_time: still one row
    lf = [f for f in _listforwards() if f["created_index"] == 103]
    assert store.ingest_forwards(lf) == 0
    assert store.forward_count() == 1


def test_identity_by_created_index_without_htlc_id(store):
    no_htlc = {k: v for k, v in _offered(SETTLED).items() if k != "in_htlc_id"}
    store.ingest_forward_event(no_htlc)
    assert store.ingest_forwards([SETTLED]) == 1  # has both keys: found by created_index
    row = _one(store, created_index=7)
    assert (row["status"], row["in_htlc_id"]) == (1, 5)


def test_identity_by_received_time_as_last_resort(store):
    offered = {k: v for k, v in _offered(SETTLED).items() if k != "in_htlc_id"}
    store.ingest_forward_event(offered)
    resolution = {k: v for k, v in SETTLED.items() if k not in ("in_htlc_id", "created_index")}
    assert store.ingest_forward_event(resolution)
    row = _one(store, in_channel="1x1x1")
    assert (row["status"], row["created_index"], row["updated_index"]) == (1, 7, 3)
    # a different forward received at another time on the same channel stays separate
    store.ingest_forward_event({**resolution, "received_time": 100.75})
    assert store.forward_count() == 2


def test_contradicting_keys_never_merge(store):
    store.ingest_forwards([SETTLED])
    # same created_index (a node whose DB was reset) but another HTLC: a new forward
    store.ingest_forwards([{**SETTLED, "in_htlc_id": 6}])
    # same received_time on the same channel, other HTLC: a new forward
    store.ingest_forwards([{**SETTLED, "in_htlc_id": 8, "created_index": 99}])
    assert store.forward_count() == 3


def test_malformed_entries_are_skipped(store):
    bad = [{"status": "settled"}, {"in_channel": "1x1x1"}, {**SETTLED, "status": "weird"},
           {**SETTLED, "in_msat": "lots"}, {**SETTLED, "received_time": float("nan")},
           {**SETTLED, "in_htlc_id": True}, {**SETTLED, "in_msat": 2**64}, "not a dict", None]
    assert store.ingest_forwards(bad + [SETTLED]) == 1
    assert not store.ingest_forward_event({"status": "settled"})
    assert store.forward_count() == 1
    assert store.forward_index() == (7, 3)


def test_msat_strings_are_read(store):
    store.ingest_forwards([{**SETTLED, "in_msat": "1010msat", "out_msat": "1000msat",
                            "fee_msat": "10"}])
    row = _one(store, in_htlc_id=5)
    assert (row["in_msat"], row["out_msat"], row["fee_msat"]) == (1010, 1000, 10)


def test_forward_index_moves_with_pages_only(store):
    assert store.forward_index() == (0, 0)
    for e in _events():
        store.ingest_forward_event(e)
    assert store.forward_index() == (0, 0)  # a live event must not skip the backfill gap
    store.ingest_forwards(_listforwards())
    assert store.forward_index() == (106, 89)
    store.ingest_forwards(_listforwards()[:2])  # an older page never moves it back
    assert store.forward_index() == (106, 89)


def test_events_in_any_order_equal_backfill(store, tmp_path):
    fs = forwards(300, seed=3)
    evs = [e for f in fs for e in events_for(f)]
    rng = random.Random(4)
    rng.shuffle(evs)
    for e in evs + evs[:50]:  # out of order, with duplicates
        store.ingest_forward_event(e)
    assert store.forward_count() == 300
    assert store.ingest_forwards(fs) <= 300  # backfill adds only what events lack
    assert store.ingest_forwards(fs) == 0
    assert store.forward_count() == 300
    got = {scid: f for scid, f in store.channel_flows(NOW_S).items()}
    assert got.keys() == flows_from_forwards(fs, NOW_S).keys()
