"""ingest_forward_events (one transaction per batch) equals ingest_forward_event on each event
in order; the one-statement identity lookup equals the three-key lookup it replaces."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.store import Store
from revops.store import forwards as fw
from tests.store.gen import events_for, forwards


def reference_find(conn: sqlite3.Connection, r: tuple):
    """The three-query lookup (keys 1, 2, 3 in turn) that fw.find must equal."""
    htlc, created = r[fw._IN_HTLC], r[fw._CREATED]
    if htlc is not None:
        row = conn.execute(fw._BY_HTLC, (r[fw._IN_CH], htlc)).fetchone()
        if row is not None:
            return row
    if created is not None:
        row = conn.execute(fw._BY_CREATED, (created, r[fw._IN_CH], htlc)).fetchone()
        if row is not None:
            return row
    if r[fw._RECEIVED] is not None:
        return conn.execute(fw._BY_RECEIVED, (r[fw._IN_CH], r[fw._RECEIVED], htlc, created,
                                              created)).fetchone()
    return None


def stream(seed: int, n: int) -> list:
    """Returns a random forward_event stream: shuffled offered/resolution pairs, duplicates,
    some without in_htlc_id or created_index (keys 2 and 3), wrapped notification params,
    clashing keys and malformed entries."""
    rng = random.Random(seed)
    evs: list = []
    for f in forwards(n, seed=seed, n_chans=3):
        for e in events_for(f):
            e = dict(e)
            if rng.random() < 0.2:
                e.pop("in_htlc_id", None)
            if rng.random() < 0.1:
                e.pop("created_index", None)
            if rng.random() < 0.05:  # a reused index on another HTLC of the channel
                e["created_index"] = rng.randrange(1, n + 1)
            evs.append(e)
    evs += rng.sample(evs, len(evs) // 3)
    rng.shuffle(evs)
    evs = [{"forward_event": e} if rng.random() < 0.3 else e for e in evs]
    for _ in range(max(1, n // 20)):
        evs.insert(rng.randrange(len(evs) + 1),
                   rng.choice(({"status": "bogus"}, {"in_channel": 3}, "not a dict", None)))
    return evs


def contents(store: Store) -> tuple:
    """Returns everything ingestion writes: forwards, channel_last, the cursor."""
    c = store._conn()
    return (c.execute("SELECT * FROM forwards ORDER BY id").fetchall(),
            c.execute("SELECT * FROM channel_last ORDER BY scid").fetchall(),
            c.execute("SELECT * FROM forward_cursor").fetchall())


def as_tuples(rows) -> list:
    return [tuple(r) for r in rows]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), chunk=st.integers(1, 200))
def test_batches_equal_single_events(seed, n, chunk):
    evs = stream(seed, n)
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "a.sqlite3") as one, Store(Path(tmp) / "b.sqlite3") as batch:
            singles = [one.ingest_forward_event(e) for e in evs]
            counts = [batch.ingest_forward_events(evs[i:i + chunk])
                      for i in range(0, len(evs), chunk)]
            assert sum(counts) == sum(singles)
            for i, c in enumerate(counts):
                assert c == sum(singles[i * chunk:(i + 1) * chunk])
            a, b = contents(one), contents(batch)
            assert [as_tuples(x) for x in a] == [as_tuples(x) for x in b]
            # A replay (clashing keys may still merge differently) is the same both ways too.
            assert batch.ingest_forward_events(evs) == sum(one.ingest_forward_event(e) for e in evs)
            assert [as_tuples(x) for x in contents(one)] == [as_tuples(x) for x in contents(batch)]


def test_empty_batch(store):
    assert store.ingest_forward_events([]) == 0
    assert store.forward_count() == 0


def test_find_equals_three_key_lookup(store):
    rng = random.Random(3)
    for e in stream(4, 300):
        store.ingest_forward_event(e)
    conn = store._conn()
    probes = 0
    for e in stream(4, 300) + stream(5, 300):  # the same forwards, then others
        e = e.get("forward_event", e) if isinstance(e, dict) else e
        try:
            r = fw.normalize(e)
        except (fw.BadForward, AttributeError):
            continue
        if rng.random() < 0.3:  # keys 2 and 3 with and without the record's other keys
            i = rng.choice((fw._IN_HTLC, fw._CREATED))
            r = r[:i] + (None,) + r[i + 1:]
        got, want = fw.find(conn, r), reference_find(conn, r)
        assert (got and tuple(got)) == (want and tuple(want)), r
        probes += 1
    assert probes > 600
