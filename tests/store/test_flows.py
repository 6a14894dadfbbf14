"""channel_flows (SQL aggregates) equals flows_from_forwards over the same forwards."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.facts.flow import flows_from_forwards
from revops.store import Store
from tests.store.flowcmp import assert_flows_equal
from tests.store.gen import DAY_S, NOW_S, events_for, forwards

CHANS = ["1x1x0", "2x2x0", "3x3x0"]
EDGES = [0.0, 1.0, DAY_S, 7 * DAY_S, 30 * DAY_S, 31 * DAY_S, -3.0]


@st.composite
def _forward(draw, i: int):
    """A listforwards-like entry with the identity i; times hit window edges often."""
    status = draw(st.sampled_from(["settled", "failed", "local_failed", "offered"]))
    age = draw(st.one_of(st.sampled_from(EDGES),
                         st.floats(-10.0, 35 * DAY_S, allow_nan=False),
                         st.sampled_from(EDGES).map(lambda e: e + 1e-6)))
    f = {"created_index": i, "in_htlc_id": i, "in_channel": draw(st.sampled_from(CHANS)),
         "in_msat": draw(st.integers(0, 10**12)), "status": status}
    received = NOW_S - age
    if draw(st.booleans()) or status == "offered":
        f["received_time"] = received
    if status in ("settled", "failed"):
        f["resolved_time"] = draw(st.sampled_from([received, received + 0.5, NOW_S - age]))
        if draw(st.integers(0, 9)) == 0:
            f["resolved_time"] = 0.0  # a zero time counts as absent in flow.py
    if draw(st.booleans()):
        f["out_channel"] = draw(st.sampled_from(CHANS))
        if draw(st.booleans()):
            f["out_msat"] = draw(st.integers(0, 10**12))
            f["fee_msat"] = draw(st.integers(0, 10**6))
    if status in ("failed", "local_failed") and draw(st.booleans()):
        f["failcode"] = draw(st.sampled_from([4103, 4107, 4108, 4109, 4110, 4116, 16394]))
    return f


@st.composite
def _forward_lists(draw):
    n = draw(st.integers(0, 25))
    return [draw(_forward(i)) for i in range(1, n + 1)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fs=_forward_lists(), shift=st.sampled_from([0.0, 0.25, -DAY_S]))
def test_flows_equal_flows_from_forwards_hypothesis(fs, shift):
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite3")
        try:
            store.ingest_forwards(fs)
            now = NOW_S + shift
            assert_flows_equal(store.channel_flows(now), flows_from_forwards(fs, now))
        finally:
            store.close()


def test_flows_equal_on_random_backfill(store):
    fs = forwards(3000, seed=11, n_chans=12)
    store.ingest_forwards(fs)
    for now in (NOW_S, NOW_S + 0.5, NOW_S + 3 * DAY_S, NOW_S + 40 * DAY_S):
        assert_flows_equal(store.channel_flows(now), flows_from_forwards(fs, now))


def test_flows_equal_when_built_from_shuffled_events(store):
    fs = forwards(1500, seed=12, n_chans=8)
    evs = [e for f in fs for e in events_for(f)]
    random.Random(13).shuffle(evs)
    for e in evs:
        store.ingest_forward_event(e)
    assert_flows_equal(store.channel_flows(NOW_S), flows_from_forwards(fs, NOW_S))


def test_empty_store_has_no_flows(store):
    assert store.channel_flows(NOW_S) == {}


def test_last_times_survive_pruning(store):
    fs = forwards(500, seed=14, n_chans=5, max_age_s=90 * DAY_S)
    store.ingest_forwards(fs)
    want = flows_from_forwards(fs, NOW_S)
    store.rollup_and_prune(NOW_S, keep_days=30)
    got = store.channel_flows(NOW_S)
    # windows only look 30 days back, so pruning older forwards changes none of them,
    # and channel_last keeps the last settled times of what was pruned
    assert_flows_equal(got, want)
