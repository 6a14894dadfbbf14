"""Decision journal: round trip with policy identity, newest first, limit, scid, pruning."""

from __future__ import annotations

from tests.store.gen import DAY_S


def _rec(scid: str, fee: int, **kw) -> dict:
    r = {"scid": scid, "peer_id": "02" + "ab" * 32, "action": "set_fee", "fee_ppm": fee,
         "old_fee_ppm": fee - 5, "stage": "hill_climb", "rule": "climb-up", "broadcast": True,
         "suppressed_by": None, "applied": True, "error": None, "why": f"to {fee}"}
    r.update(kw)
    return r


def _write(store, at_s: float, cycle: str, recs: list[dict], dry_run: bool = False) -> None:
    store.journal(recs, at_s, "default", "1.2.0", "sha256:abc", cycle, dry_run)


def test_round_trip_with_policy_identity(store):
    rec = _rec("1x1x1", 100, suppressed_by="hysteresis", broadcast=False, applied=False,
               error="setchannel failed", trace_id=7)
    _write(store, 1000.0, "c1", [rec], dry_run=True)
    (got,) = store.decisions()
    expected = {**rec, "at_s": 1000.0, "cycle_id": "c1", "policy_name": "default",
                "policy_version": "1.2.0", "policy_digest": "sha256:abc", "dry_run": True}
    assert {k: got[k] for k in expected} == expected
    assert type(got["applied"]) is bool and type(got["broadcast"]) is bool
    assert isinstance(got["id"], int)


def test_newest_first_limit_and_scid(store):
    _write(store, 1.0, "c1", [_rec("1x1x1", 10), _rec("2x2x2", 20)])
    _write(store, 2.0, "c2", [_rec("1x1x1", 11), _rec("2x2x2", 21)])
    _write(store, 3.0, "c3", [_rec("1x1x1", 12)])
    assert [d["fee_ppm"] for d in store.decisions()] == [12, 21, 11, 20, 10]
    assert [d["fee_ppm"] for d in store.decisions(limit=2)] == [12, 21]
    assert [d["fee_ppm"] for d in store.decisions("2x2x2")] == [21, 20]
    assert [d["cycle_id"] for d in store.decisions("1x1x1", limit=2)] == ["c3", "c2"]
    assert store.decisions("9x9x9") == []
    assert store.decisions(limit=0) == [] and store.decisions(limit=-1) == []


def test_empty_batch_writes_nothing(store):
    _write(store, 1.0, "c1", [])
    assert store.decisions() == []
    assert store._conn().execute("SELECT count(*) FROM journal_batches").fetchone()[0] == 0


def test_prune_journal(store):
    _write(store, 0.0, "old", [_rec("1x1x1", 10), _rec("2x2x2", 20)])
    _write(store, 50 * DAY_S, "new", [_rec("1x1x1", 11)])
    assert store.prune_journal(now_s=60 * DAY_S, keep_days=30) == 2
    assert [d["cycle_id"] for d in store.decisions()] == ["new"]
    assert store._conn().execute("SELECT count(*) FROM journal_batches").fetchone()[0] == 1
    assert store.prune_journal(now_s=60 * DAY_S, keep_days=30) == 0
