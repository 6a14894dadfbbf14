"""One connection per thread; concurrent writers; close() closes them all."""

from __future__ import annotations

import threading

import pytest

from revops.store.db import StoreClosed
from tests.store.gen import events_for, forwards


def test_two_threads_write_concurrently_on_their_own_connections(store):
    fs = forwards(400, seed=31)
    halves = [fs[:200], fs[200:]]
    conns: dict[str, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(name: str, part: list[dict]) -> None:
        try:
            start.wait()
            conns[name] = id(store._conn())
            for f in part:
                for e in events_for(f):
                    store.ingest_forward_event(e)
            store.set_meta(name, len(part))
            conns[name + "_again"] = id(store._conn())
        except BaseException as e:  # surfaced below; a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"t{i}", p)) for i, p in enumerate(halves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert conns["t0"] == conns["t0_again"] and conns["t1"] == conns["t1_again"]
    assert len({conns["t0"], conns["t1"], id(store._conn())}) == 3
    assert store._conns.count() == 3
    assert store.forward_count() == 400
    assert (store.get_meta("t0"), store.get_meta("t1")) == (200, 200)


def test_reader_sees_a_consistent_snapshot_while_a_writer_writes(store):
    fs = forwards(2000, seed=32)
    stop = threading.Event()
    counts: list[int] = []

    def read() -> None:
        while not stop.is_set():
            counts.append(store.forward_count())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(0, 2000, 250):
        store.ingest_forwards(fs[i:i + 250])
    stop.set()
    reader.join()
    # each page is one transaction: a reader only ever sees whole pages
    assert all(c % 250 == 0 for c in counts)


def test_close_closes_every_threads_connection(store):
    t = threading.Thread(target=lambda: store.get_meta("x"))
    t.start()
    t.join()
    assert store._conns.count() == 2
    store.close()
    assert store._conns.count() == 0
    with pytest.raises(StoreClosed):
        store.get_meta("x")
