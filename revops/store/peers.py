"""Peer connection history (connect/disconnect notifications) and uptime over a window.

Uptime rule: a peer's state at a time is that of its latest event at or before it. Before a
peer's first event its state is *unknown*, and unknown time counts neither as up nor as
down: uptime_ratio = connected time / known time within [now - window, now]. So a peer first
seen 1 h ago and connected since has ratio 1.0 over a 24 h window, with known_s = 3600.
uptime_ratio is None when nothing of the window is known (known_s == 0).

`disconnects` counts disconnect events in the window that changed the state: a repeated
"disconnected" is not a second disconnect, while one after an unknown state counts
(lightningd only reports a disconnect of a connected peer). `connected` is the state at now.
"""

from __future__ import annotations

import sqlite3

_STATE_BEFORE = """
SELECT peer_id, connected FROM (
    SELECT peer_id, connected,
           row_number() OVER (PARTITION BY peer_id ORDER BY at_s DESC, id DESC) AS rn
    FROM peer_events WHERE at_s < ?
) WHERE rn = 1"""


def record_connection(conn: sqlite3.Connection, peer_id: str, connected: bool, at_s: float) -> None:
    """Appends one connect (True) or disconnect (False) event (one statement, atomic)."""
    conn.execute("INSERT INTO peer_events (peer_id, at_s, connected) VALUES (?, ?, ?)",
                 (peer_id, float(at_s), int(bool(connected))))


def peer_uptime(conn: sqlite3.Connection, now_s: float, window_s: float) -> dict[str, dict]:
    """Returns peer_id -> {"uptime_ratio": float|None, "disconnects": int, "connected": bool,
    "known_s": float} over [now_s - window_s, now_s], for peers with an event before now_s."""
    start = now_s - window_s
    state = {p: bool(c) for p, c in conn.execute(_STATE_BEFORE, (start,))}
    up = {p: 0.0 for p in state}
    known = {p: 0.0 for p in state}
    drops = {p: 0 for p in state}
    since = {p: start for p in state}  # time of the current (known) state's start

    for peer, at, c in conn.execute(
            "SELECT peer_id, at_s, connected FROM peer_events WHERE at_s >= ? AND at_s <= ? "
            "ORDER BY peer_id, at_s, id", (start, now_s)):
        c = bool(c)
        prev = state.get(peer)
        if prev is not None:
            span = at - since[peer]
            known[peer] += span
            if prev:
                up[peer] += span
        else:
            up.setdefault(peer, 0.0)
            known.setdefault(peer, 0.0)
            drops.setdefault(peer, 0)
        if not c and prev is not False:
            drops[peer] += 1
        state[peer] = c
        since[peer] = at

    result = {}
    for peer, c in state.items():
        span = now_s - since[peer]
        known[peer] += span
        if c:
            up[peer] += span
        k = known[peer]
        result[peer] = {"uptime_ratio": up[peer] / k if k > 0 else None,
                        "disconnects": drops[peer], "connected": c, "known_s": k}
    return result


def prune_peer_events(conn: sqlite3.Connection, now_s: float, keep_days: float) -> int:
    """Deletes peer events older than keep_days, except each peer's latest one before the
    cutoff (it is the state at the start of the kept history); returns rows deleted."""
    cutoff = now_s - keep_days * 86_400.0
    return conn.execute(
        "DELETE FROM peer_events WHERE at_s < ? AND id NOT IN ("
        " SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY peer_id "
        "  ORDER BY at_s DESC, id DESC) AS rn FROM peer_events WHERE at_s < ?) WHERE rn = 1)",
        (cutoff, cutoff)).rowcount
