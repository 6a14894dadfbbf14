"""Peer connection history and uptime (unknown time before a peer's first event)."""

from __future__ import annotations

import pytest

H = 3600.0
NOW = 100 * H
W = 24 * H  # window [NOW - 24h, NOW]


def test_always_connected_since_before_window(store):
    store.record_connection("A", True, NOW - 48 * H)
    u = store.peer_uptime(NOW, W)["A"]
    assert u == {"uptime_ratio": 1.0, "disconnects": 0, "connected": True, "known_s": W}


def test_time_before_first_event_is_unknown(store):
    store.record_connection("B", True, NOW - 6 * H)
    store.record_connection("B", False, NOW - 3 * H)
    u = store.peer_uptime(NOW, W)["B"]
    assert u["known_s"] == pytest.approx(6 * H)
    assert u["uptime_ratio"] == pytest.approx(0.5)
    assert (u["disconnects"], u["connected"]) == (1, False)


def test_flapping_peer(store):
    store.record_connection("C", True, NOW - 30 * H)
    for k in range(4):  # down for 1h at 20h, 15h, 10h, 5h before now
        store.record_connection("C", False, NOW - (20 - 5 * k) * H)
        store.record_connection("C", True, NOW - (19 - 5 * k) * H)
    store.record_connection("C", False, NOW - 1 * H)
    store.record_connection("C", False, NOW - 0.5 * H)  # a duplicate disconnect
    u = store.peer_uptime(NOW, W)["C"]
    assert u["uptime_ratio"] == pytest.approx((24 - 4 - 1) / 24)
    assert (u["disconnects"], u["connected"]) == (5, False)


def test_state_before_the_window_counts(store):
    store.record_connection("D", False, NOW - 40 * H)
    store.record_connection("D", True, NOW - 12 * H)
    u = store.peer_uptime(NOW, W)["D"]
    assert u["uptime_ratio"] == pytest.approx(0.5)
    assert u["disconnects"] == 0


def test_nothing_known_and_future_events(store):
    store.record_connection("E", True, NOW)  # first event at now: no known time
    store.record_connection("F", True, NOW + H)  # after now: ignored
    u = store.peer_uptime(NOW, W)
    assert u["E"]["uptime_ratio"] is None and u["E"]["connected"] is True
    assert "F" not in u


def test_prune_keeps_the_state_at_the_cutoff(store):
    store.record_connection("G", True, NOW - 50 * H)
    store.record_connection("G", False, NOW - 40 * H)
    store.record_connection("G", True, NOW - 30 * H)
    store.record_connection("G", False, NOW - 2 * H)
    before = store.peer_uptime(NOW, W)
    assert store.prune_peer_events(NOW, keep_days=1) == 2  # keeps the NOW-30h connect
    assert store.peer_uptime(NOW, W) == before
