"""Store upkeep through the real plugin (the units are in tests/store/): peer reputation decays
with the simulated clock, the daily maintenance of a fee cycle (runtime `_maintain`) rolls old
forwards into daily totals before it prunes them and VACUUMs the freed pages, and the plugin's
threads each use their own SQLite connection."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from revops.facts.classes import REPUTATION_HALF_LIFE_DAYS, laplace
from revops.store import Store
from tests.store.gen import events_for, forwards

from .conftest import Node

DAY_S = 86400


def reputation(node: Node, scid: str) -> float:
    return node.call("revenue-explain", {"scid": scid})["channels"][0]["facts"]["peer.reputation"]


def test_peer_reputation_decays_with_the_simulated_clock(workdir):
    node = Node(workdir, scenario="hub", seed=7)
    node.start()
    try:
        spammer, other = node.sim.channels[0], node.sim.channels[1]
        assert not node.backend("listforwards", {})["forwards"]  # nothing else moves the score
        t0 = node.sim.now_s
        for i in range(20):  # 20 incoming HTLCs from one peer that failed, a minute ago
            assert node.ld.notify("forward_event", {
                "in_channel": spammer.scid, "in_htlc_id": 90_000 + i, "in_msat": 1_000_000,
                "out_channel": other.scid, "out_msat": 999_000, "fee_msat": 1000, "status": "failed",
                "received_time": t0 - 60, "resolved_time": t0 - 59, "style": "tlv"})
        seen = {}
        for days in (0, 2, 10, 31):
            node.ld.call("revenue-cycle", {"what": "fees", "now": t0 + days * DAY_S})
            seen[days] = reputation(node, spammer.scid)
        # each age band weighs its failures by 0.5^(mid-age / 7-day half-life): 0.5 d, 4 d, 18.5 d
        for days, mid_age in ((0, 0.5), (2, 4.0), (10, 18.5)):
            weight = 0.5 ** (mid_age / REPUTATION_HALF_LIFE_DAYS)
            assert seen[days] == pytest.approx(laplace(0, 20 * weight), rel=1e-9), (days, seen)
        assert seen[0] < 0.05 < seen[2] < seen[10] < seen[31] == 0.5  # forgiven after 30 days
        assert reputation(node, other.scid) == 0.5  # the other peer sent nothing: neutral throughout
    finally:
        node.stop()


def _stripped(event: dict) -> dict:
    """A live event without listforwards indexes (those belong to the node's own forwards)."""
    return {k: v for k, v in event.items() if k not in ("created_index", "updated_index")}


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def test_daily_maintenance_rolls_up_then_prunes_and_vacuums_through_the_plugin(workdir):
    node = Node(workdir, scenario="hub", seed=7)
    db = Path(node.options["revenue-ops-db"])
    # 60,000 forwards of channels long gone, 50 to 90 days before the node's clock
    old = forwards(60_000, seed=5, n_chans=4, now_s=node.sim.now_s - 50 * DAY_S, max_age_s=40 * DAY_S)
    with Store(db) as store:
        store.ingest_forward_events([_stripped(e) for f in old for e in events_for(f)])
        stored = store.forward_count()
        before = {(r["day"], r["scid"]): r for r in store.daily_history()}
    size_before = _db_bytes(db)
    assert stored == 60_000 and size_before > 10 << 20  # more than the 8 MiB of free pages VACUUM waits for
    node.start()
    try:
        t0 = node.sim.now_s
        assert node.cycle("fees")["fees"]["ok"]  # the first cycle of the day maintains the store
        assert node.call("revenue-status")["store"]["forwards"] == 0  # every old forward rolled up
        # A day later it runs again; sooner it does not (the meta row tells when it last ran).
        node.ld.call("revenue-cycle", {"what": "fees", "now": t0 + 3600})
    finally:
        node.stop()
    with Store(db) as store:
        assert store.get_meta("last_maintenance_s") == t0
        after = {(r["day"], r["scid"]): r for r in store.daily_history()}
        free = store._conn().execute("PRAGMA freelist_count").fetchone()[0]
    # rolled up before pruning: every day's totals survive the raw rows
    assert after.keys() >= before.keys()
    for key, row in before.items():
        numbers = {k: v for k, v in row.items() if k not in ("day", "scid")}
        assert {k: after[key][k] for k in numbers} == pytest.approx(numbers, rel=1e-12), key  # float sums
    # VACUUMed: the freed pages went back to the file system
    assert free == 0 and _db_bytes(db) < size_before / 4


def _db_fds(pid: int, db: Path) -> int:
    """How many file descriptors of the process are open on the database file itself."""
    fd_dir = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += os.readlink(fd) == str(db)
        except OSError:
            pass  # closed while we looked
    return count


def test_the_timer_thread_and_the_rpc_thread_use_their_own_connections(workdir):
    node = Node(workdir, scenario="hub", seed=7,
                options={"revenue-ops-sim-clock": "0", "revenue-ops-fee-interval": "10"})
    db = Path(node.options["revenue-ops-db"]).resolve()
    ld = node.start()
    try:
        assert _db_fds(ld.pid, db) == 1  # init and RPC: the main thread's connection only
        channel = node.sim.channels[0]
        now = time.time()
        deadline = time.monotonic() + 40
        sent = 0
        # The fee timer (10 s) runs its cycle on its own thread while the main thread stores
        # forward events and answers RPCs: both write the same database at once.
        while not (node.call("revenue-status")["last_cycle"] or {}).get("ok"):
            assert time.monotonic() < deadline, "the fee timer never ran a cycle"
            for _ in range(20):
                node.ld.notify("forward_event", {
                    "in_channel": channel.scid, "in_htlc_id": 50_000 + sent, "in_msat": 2_000_000,
                    "status": "local_failed", "received_time": now, "style": "tlv"})
                sent += 1
            time.sleep(0.2)
        assert _db_fds(ld.pid, db) >= 2  # the timer thread opened its own connection
        status = node.call("revenue-status")
        assert status["store"]["forwards"] == sent
        assert not [msg for _, msg in ld.logs if "thread" in msg.lower() and "sqlite" in msg.lower()]
    finally:
        node.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
