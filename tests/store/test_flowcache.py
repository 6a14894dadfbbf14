"""Incremental channel_flows (flowcache.py) equals a full computation after any history of
ingests (in order, out of order, in the past, in the future), merges, prunes and calls."""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.facts.flow import flows_from_forwards
from revops.store import Store
from revops.store import flowcache
from revops.store.flows import channel_flows
from revops.store.forwards import STATUS_NAMES
from tests.store.flowcmp import assert_flows_equal
from tests.store.gen import DAY_S, NOW_S, events_for, forward

CHANS = [f"9{c}x1x0" for c in range(5)]
#: Steps of `now` between calls: none, small, window bounds exactly and off by one, > 24 h,
#: backwards.
STEPS = [0.0, 1.0, 1800.0, 3600.0, DAY_S - 1, DAY_S, DAY_S + 1, 7 * DAY_S, 2 * DAY_S, -60.0]


def full_flows(store: Store, now_s: float) -> dict:
    """Returns the full computation (one scan) over the store's current rows."""
    conn = store._conn()
    conn.execute("BEGIN")
    try:
        return channel_flows(conn, now_s)
    finally:
        conn.execute("COMMIT")


def full_pair_sums(store: Store, now_s: float) -> tuple:
    """Returns (in_fees_1d, in_volume_7d) summed afresh in SQL over the store's current rows."""
    conn = store._conn()
    conn.execute("BEGIN")
    try:
        return tuple(flowcache.nested(p) for p in flowcache.pair_sums(conn, now_s))
    finally:
        conn.execute("COMMIT")


def stored_forwards(store: Store) -> list[dict]:
    """Returns the stored rows as listforwards-like dicts (for flows_from_forwards)."""
    rows = store._conn().execute("SELECT * FROM forwards").fetchall()
    out = []
    for r in rows:
        d = {k: r[k] for k in r.keys() if r[k] is not None}
        d["status"] = STATUS_NAMES[r["status"]]
        out.append(d)
    return out


class History:
    """Plays random operations on a Store and checks every channel_flows call."""

    def __init__(self, store: Store, rng: random.Random):
        self.store, self.rng = store, rng
        self.now = NOW_S
        self.next_id = 1
        self.made: list[dict] = []
        self.pruned = False  # last times may differ from the rows' (see flows())
        self.full_calls = self.calls = 0

    def new_forwards(self, n: int) -> list[dict]:
        """Returns n new listforwards entries timed around now: recent, old, on a future
        call's window edge, or in the future."""
        rng = self.rng
        out = []
        for _ in range(n):
            base = self.now + rng.choice((0.0, 0.0, 1800.0, DAY_S, -DAY_S, 3 * DAY_S))
            max_age = rng.choice((3600.0, 2 * DAY_S, 40 * DAY_S))
            f = forward(self.next_id, rng, CHANS, now_s=base, max_age_s=max_age)
            self.next_id += 1
            out.append(f)
        self.made += out
        return out

    def op(self) -> None:
        rng, store = self.rng, self.store
        kind = rng.choice(("page", "events", "events", "batch", "late", "flows", "flows",
                           "flows", "flows", "flows", "flows", "prune"))
        if kind == "page":
            store.ingest_forwards(self.new_forwards(rng.randrange(1, 30)))
        elif kind in ("events", "batch"):
            evs = [e for f in self.new_forwards(rng.randrange(1, 20)) for e in events_for(f)]
            evs += rng.sample(evs, len(evs) // 4)  # duplicates
            rng.shuffle(evs)
            if kind == "batch":
                store.ingest_forward_events(evs)
            else:
                for e in evs:
                    store.ingest_forward_event({"forward_event": e})
        elif kind == "late" and self.made:
            # A later outcome for stored forwards: kind, amounts and time change in the past.
            for f in rng.sample(self.made, min(5, len(self.made))):
                g = {**f, "status": rng.choice(("settled", "failed", "local_failed")),
                     "updated_index": (f.get("updated_index") or 0) + 10_000 + self.next_id,
                     "resolved_time": f["received_time"] + rng.choice((0.5, DAY_S, 8 * DAY_S)),
                     "out_msat": rng.randrange(1, 10**6)}
                self.next_id += 1
                store.ingest_forward_event(g)
            self.pruned = True  # channel_last keeps the replaced outcome's last time
        elif kind == "prune":
            store.rollup_and_prune(self.now, 30)
            self.pruned = True
        else:
            self.flows(rng.choice(STEPS) if rng.random() < 0.8 else rng.random() * 2 * DAY_S)

    def flows(self, step: float) -> None:
        self.now += step
        got = self.store.channel_flows(self.now)
        self.calls += 1
        self.full_calls += self.store._flows.last_step["full"]
        assert_flows_equal(got, full_flows(self.store, self.now))
        # the per-pair sums History reads (in_fees_1d, in_volume_7d) move with the flows
        expected = full_pair_sums(self.store, self.now)
        assert self.store._flows.pair_sums_at(self.now) == expected
        # the bound that spares a large node the pair query never falls below the pairs
        assert flowcache.pair_bound(self.store._flows._state.acc) >= sum(map(len, expected))
        # channel_last keeps the last times of pruned forwards and of replaced outcomes
        if not self.pruned:
            assert_flows_equal(got, flows_from_forwards(stored_forwards(self.store), self.now))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(1, 30), daily_full=st.booleans())
def test_incremental_equals_full_hypothesis(seed, n_ops, daily_full):
    # Without the daily full recompute, steps of days (beyond window bounds) are steps too.
    every = flowcache.FULL_EVERY_S if daily_full else float("inf")
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(flowcache, "FULL_EVERY_S", every):
        store = Store(Path(tmp) / "s.sqlite3")
        try:
            h = History(store, random.Random(seed))
            for _ in range(n_ops):
                h.op()
            h.flows(0.0)
        finally:
            store.close()


def test_incremental_equals_full_over_a_long_history(store, monkeypatch):
    monkeypatch.setattr(flowcache, "FULL_EVERY_S", float("inf"))
    h = History(store, random.Random(5))
    for _ in range(400):
        h.op()
    h.flows(1.0)
    assert 0 < h.full_calls < h.calls / 2  # most calls were steps, not rescans


def test_steps_are_incremental_and_equal_full(store):
    h = History(store, random.Random(6))
    store.ingest_forwards(h.new_forwards(300))
    h.flows(0.0)
    assert store._flows.last_step["full"]
    for _ in range(47):  # a day of 30-minute cycles, with events in between
        store.ingest_forward_events([e for f in h.new_forwards(5) for e in events_for(f)])
        h.flows(1800.0)
        assert not store._flows.last_step["full"]
    h.flows(1800.0)  # 24 h of progress since the last full computation
    assert store._flows.last_step["full"]


def test_now_going_backwards_recomputes(store):
    h = History(store, random.Random(7))
    store.ingest_forwards(h.new_forwards(100))
    h.flows(0.0)
    h.flows(-10.0)
    assert store._flows.last_step["full"]


def test_prune_invalidates_and_stays_exact(store):
    h = History(store, random.Random(8))
    store.ingest_forwards([forward(i, h.rng, CHANS, now_s=NOW_S, max_age_s=90 * DAY_S)
                           for i in range(1, 400)])
    h.flows(0.0)
    h.flows(20 * DAY_S)  # forwards around 30 days old at the cached now, pruned below
    store.rollup_and_prune(h.now, 30)
    h.pruned = True
    h.flows(1800.0)
    assert store._flows.last_step["full"]


def test_float_operations_bound_forces_a_full_recompute(store, monkeypatch):
    monkeypatch.setattr(flowcache, "FULL_AFTER_FLOAT_OPS", 10)
    h = History(store, random.Random(9))
    store.ingest_forwards(h.new_forwards(50))
    h.flows(0.0)
    store.ingest_forwards(h.new_forwards(50))  # settled ones bring hold times: > 10 ops
    h.flows(1.0)
    assert store._flows.last_step["full"]


def test_too_many_changes_invalidate(store, monkeypatch):
    monkeypatch.setattr(flowcache, "MAX_APPLIED_CHANGES", 20)
    h = History(store, random.Random(10))
    h.flows(0.0)
    store.ingest_forwards(h.new_forwards(100))
    h.flows(1.0)
    assert store._flows.last_step["full"]


def test_hold_sums_reset_when_a_window_empties(store):
    f = {"created_index": 1, "in_htlc_id": 1, "in_channel": "1x1x0", "out_channel": "2x2x0",
         "status": "settled", "received_time": NOW_S - 0.3, "resolved_time": NOW_S,
         "in_msat": 1_000_100, "out_msat": 1_000_000, "fee_msat": 100, "updated_index": 1}
    g = {**f, "created_index": 2, "in_htlc_id": 2, "resolved_time": NOW_S - DAY_S + 5,
         "received_time": NOW_S - DAY_S + 4.9}
    store.ingest_forwards([f, g])
    store.channel_flows(NOW_S)
    got = store.channel_flows(NOW_S + DAY_S)  # both left the 1-day window
    w = got["2x2x0"].window("1d")
    assert (w.hold_count, w.hold_sum_s, w.hold_sumsq_s2) == (0, 0.0, 0.0)
    assert got["2x2x0"].window("7d").hold_count == 2


def test_concurrent_writer_loses_nothing(store, tmp_path, monkeypatch):
    """A writer thread ingests while channel_flows steps: every result equals the full
    computation over some prefix of the writer's batches (a snapshot between two of its
    calls, never a mix), and once it stopped the result equals the full one exactly."""
    monkeypatch.setattr(flowcache, "FULL_EVERY_S", float("inf"))
    real_last = flowcache.fl.channel_last

    def slow_last(conn):  # widen the window between snapshot and install
        time.sleep(0.002)
        return real_last(conn)

    monkeypatch.setattr(flowcache.fl, "channel_last", slow_last)
    rng = random.Random(11)
    h = History(store, rng)
    initial = h.new_forwards(200)
    store.ingest_forwards(initial)
    batches = []
    for _ in range(80):  # recent, late (past) and future forwards, shuffled events
        evs = [e for f in h.new_forwards(4) for e in events_for(f)]
        rng.shuffle(evs)
        # one transaction per batch, or per event
        batches += [evs] if rng.random() < 0.5 else [[e] for e in evs]
        h.now += 60.0
    done = [0]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for evs in batches:
                if len(evs) > 1:
                    store.ingest_forward_events(evs)
                else:
                    store.ingest_forward_event(evs[0])
                done[0] += 1
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            stop.set()

    calls = []
    now = NOW_S
    store.channel_flows(now)
    writer = threading.Thread(target=write)
    writer.start()
    while not stop.is_set():
        now += 60.0
        before = done[0]
        got = store.channel_flows(now)
        calls.append((now, before, done[0], got))
    writer.join()
    assert errors == []
    assert_flows_equal(store.channel_flows(now + 1.0), full_flows(store, now + 1.0))
    assert len(calls) > 5

    # Replay the batches into a second store; each call must match one prefix in its range.
    matched = [False] * len(calls)
    with Store(tmp_path / "ref.sqlite3") as ref:
        ref.ingest_forwards(initial)
        for k in range(len(batches) + 1):
            for j, (t, lo, hi, got) in enumerate(calls):
                if not matched[j] and lo <= k <= hi:
                    matched[j] = _equal(got, full_flows(ref, t))
            if k < len(batches):
                ref.ingest_forward_events(batches[k])
    assert all(matched)


def _equal(got: dict, want: dict) -> bool:
    try:
        assert_flows_equal(got, want)
    except AssertionError:
        return False
    return True


def test_pair_sums_are_the_history_sums_and_follow_the_flows(store):
    # For forwards of the past (the live case), the cached pair sums are what store/history.py
    # sums in SQL over the same windows; History takes them instead of grouping again.
    from revops.store import history as hist
    h = History(store, random.Random(9))
    # forwards of the past, on window edges and from the future (clock skew): the pair sums,
    # unlike the flow windows, count one from the future only once `now` reaches it
    store.ingest_forwards([forward(i, h.rng, CHANS, now_s=NOW_S, max_age_s=9 * DAY_S) for i in range(1, 600)])
    for step in (0.0, 1800.0, 1800.0, DAY_S, 3 * 3600.0):
        h.flows(step)
        conn = store._conn()
        sql = (hist.in_fees(conn, h.now), hist.in_fees(conn, h.now, 7 * DAY_S, "out_msat"))
        cached = store._flows.pair_sums_at(h.now)
        assert cached == sql and cached[1]
        assert store.history(h.now).in_volume_7d == sql[1]
        if step == 0.0:
            assert cached[0]  # forwards within the day too
    assert store._flows.pair_sums_at(h.now + 1.0) is None  # only as of the flows' own now
    late = forward(10_000, h.rng, CHANS, now_s=h.now, max_age_s=3600.0)
    store.ingest_forwards([{**late, "status": "settled", "resolved_time": h.now - 60.0, "out_msat": 5_000,
                            "fee_msat": 7, "out_channel": CHANS[0], "in_channel": CHANS[1]}])
    assert store._flows.pair_sums_at(h.now) is None  # written since: History sums in SQL
    assert store.history(h.now).in_volume_7d[CHANS[0]][CHANS[1]] == \
        hist.in_fees(store._conn(), h.now, 7 * DAY_S, "out_msat")[CHANS[0]][CHANS[1]]
    h.flows(0.0)
    store.rollup_and_prune(h.now, 30)
    assert store._flows.pair_sums_at(h.now) is None  # dropped with the cache


def test_pair_sums_are_not_kept_beyond_max_pairs(store, monkeypatch):
    # Too many (out, in) pairs to keep in memory: History groups them in SQL, as before.
    from revops.store import history as hist
    monkeypatch.setattr(flowcache, "MAX_PAIRS", 3)
    h = History(store, random.Random(10))
    store.ingest_forwards([forward(i, h.rng, CHANS, now_s=NOW_S, max_age_s=2 * DAY_S) for i in range(1, 200)])
    queried = []
    monkeypatch.setattr(hist, "pair_rows", lambda *a: queried.append(a) or [])
    assert_flows_equal(store.channel_flows(h.now), full_flows(store, h.now))
    assert queried == []  # the flow windows already bound the pairs above MAX_PAIRS
    assert store._flows.pair_sums_at(h.now) is None
    monkeypatch.undo()
    monkeypatch.setattr(flowcache, "MAX_PAIRS", 3)
    assert store.history(h.now).in_fees_1d == hist.in_fees(store._conn(), h.now)
