"""The store's side of `revops.facts.history.History`: fee-change counts, last changes, the
opening-feerate series, and `history(conn, now_s)` putting them together with peer uptime.

Costs (docs/store.md, measured at 5,000 channels and a 1M-row journal): the 24 h counts read
only the applied decisions of the last day's batches (partial index `decisions_applied`), the
last changes one small row per channel (`channel_fee_last`), the series at most 14 days of
one-per-cycle samples, the in-channel sums only the forwards of their window (forwards_t).
"""

from __future__ import annotations

import sqlite3
from types import MappingProxyType
from typing import Mapping

from revops.facts.history import (FEE_UPDATES_WINDOW_S, FEERATE_KEEP_S, FEERATE_WINDOWS_S,
                                  UPTIME_WINDOW_S, ChannelFeeHistory, FeerateSample, History,
                                  PeerUptime)
from revops.store import kv, peers

#: meta key: when revops first watched this node's forwards (Store.mark_watching)
WATCHING_SINCE_KEY = "forwards_watched_since_s"

# Batches by time (journal_batches_at), then only their applied decisions (partial index);
# CROSS JOIN and INDEXED BY pin that plan: with a condition on scid or without statistics
# the planner would walk decisions_scid, every decision ever journaled.
_UPDATES = """
SELECT d.scid, count(*), max(b.at_s) FROM journal_batches b
CROSS JOIN decisions d INDEXED BY decisions_applied ON d.batch_id = b.id AND d.applied = 1
WHERE b.at_s > ? AND b.at_s <= ?
GROUP BY d.scid"""


# Settled forwards of a window summed per (out, in) channel pair. The partial time index
# (kind != 0) reads only the window: without it SQLite scanned every forward ever stored
# (137 ms at 1M forwards, twice a cycle; 7 ms for 1 day and 45 ms for 7 days with it).
_IN_SUMS = """
SELECT out_channel, in_channel, COUNT(*), CAST(COALESCE(SUM({column}), 0) AS INTEGER)
FROM forwards INDEXED BY forwards_t
WHERE kind != 0 AND t > ? AND t <= ? AND kind = 1 AND out_channel IS NOT NULL
GROUP BY out_channel, in_channel"""


#: History's forward sums, (window, column): in_fees_1d and in_volume_7d (store/flowcache.py
#: keeps the same sums between cycles).
FORWARD_SUMS = ((FEE_UPDATES_WINDOW_S, "fee_msat"), (7 * 86_400, "out_msat"))


def note_applied(conn: sqlite3.Connection, records: list, at_s: float) -> None:
    """Moves channel_fee_last forward for the applied records of a journal batch (in the
    caller's transaction); a later time never goes back."""
    rows = [(r["scid"], float(at_s)) for r in records
            if r.get("applied") and isinstance(r.get("scid"), str)]
    if rows:
        conn.executemany(
            "INSERT INTO channel_fee_last (scid, last_change_s) VALUES (?, ?) "
            "ON CONFLICT(scid) DO UPDATE SET last_change_s = "
            "max(last_change_s, excluded.last_change_s)", rows)


def fee_updates(conn: sqlite3.Connection, now_s: float, window_s: float = FEE_UPDATES_WINDOW_S
                ) -> dict[str, tuple[int, float]]:
    """Returns scid -> (applied fee changes, time of the latest) over now - window < batch
    at_s <= now."""
    return {scid: (n, t) for scid, n, t in conn.execute(_UPDATES, (now_s - window_s, now_s))
            if isinstance(scid, str)}


def last_fee_changes(conn: sqlite3.Connection, now_s: float) -> dict[str, float]:
    """Returns scid -> time of the latest applied fee change at or before now_s."""
    return dict(conn.execute(
        "SELECT scid, last_change_s FROM channel_fee_last WHERE last_change_s <= ?", (now_s,)))


def record_feerate(conn: sqlite3.Connection, at_s: float, opening_perkw: int) -> None:
    """Stores one opening-feerate sample (a second one at the same time replaces it) and
    deletes samples older than FEERATE_KEEP_S, in the caller's transaction."""
    conn.execute("INSERT OR REPLACE INTO feerate_samples (at_s, opening_perkw) VALUES (?, ?)",
                 (float(at_s), int(opening_perkw)))
    conn.execute("DELETE FROM feerate_samples WHERE at_s < ?", (float(at_s) - FEERATE_KEEP_S,))


def feerate_samples(conn: sqlite3.Connection, now_s: float,
                    window_s: float = max(FEERATE_WINDOWS_S.values())) -> list[FeerateSample]:
    """Returns the samples with now - window < at_s <= now, oldest first."""
    return [FeerateSample(t, r) for t, r in conn.execute(
        "SELECT at_s, opening_perkw FROM feerate_samples WHERE at_s > ? AND at_s <= ? "
        "ORDER BY at_s", (now_s - window_s, now_s))]


def pair_rows(conn: sqlite3.Connection, now_s: float, window_s: float, column: str) -> sqlite3.Cursor:
    """(out_scid, in_scid, rows, SUM(column)) of settled forwards with now - window < t <= now
    (store/flowcache.py keeps the same sums as forwards come and age)."""
    assert column in ("fee_msat", "out_msat")
    return conn.execute(_IN_SUMS.format(column=column), (now_s - window_s, now_s))


def in_fees(conn: sqlite3.Connection, now_s: float, window_s: float = FEE_UPDATES_WINDOW_S,
            column: str = "fee_msat") -> dict[str, dict[str, int]]:
    """Returns out_scid -> {in_scid: SUM(column)} of settled forwards with now - window < t <= now."""
    pairs: dict[str, dict[str, int]] = {}
    for out, inc, _, total in pair_rows(conn, now_s, window_s, column):
        ins = pairs.get(out)
        if ins is None:
            ins = pairs[out] = {}
        ins[inc] = total
    return pairs


def _uptime(u: dict) -> PeerUptime:
    """Returns peers.peer_uptime's stats of one peer as a PeerUptime, clamped to their ranges
    (float sums of spans may overshoot the window by a rounding error)."""
    ratio = u["uptime_ratio"]
    return PeerUptime(1.0 if ratio is None else min(1.0, max(0.0, ratio)), u["disconnects"],
                      min(float(UPTIME_WINDOW_S), max(0.0, u["known_s"])))


def history(conn: sqlite3.Connection, now_s: float, forward_sums: tuple | None = None) -> History:
    """Returns the History as of now_s (call inside one read transaction for one snapshot).
    `forward_sums`: (in_fees_1d, in_volume_7d) of a History read moments earlier in the same
    cycle, taken as they are (the fee half of a cycle changes fees, not forwards)."""
    uptime = peers.peer_uptime(conn, now_s, UPTIME_WINDOW_S)
    fees_1d, volume_7d = forward_sums or _forward_sums(conn, now_s)
    counts = fee_updates(conn, now_s)
    chans = {scid: ChannelFeeHistory(0, t) for scid, t in last_fee_changes(conn, now_s).items()}
    for scid, (n, t) in counts.items():
        # channel_fee_last may hold a change after now_s (a history of the past): the
        # window's own latest change then stands in for it.
        prev = chans.get(scid)
        chans[scid] = ChannelFeeHistory(n, max(t, prev.last_change_s) if prev else t)
    return History(
        as_of_s=float(now_s),
        peers=MappingProxyType({pid: _uptime(u) for pid, u in uptime.items()}),
        channels=MappingProxyType(chans),
        node_fee_updates_24h=sum(n for n, _ in counts.values()),
        feerates=tuple(feerate_samples(conn, now_s)),
        in_fees_1d=fees_1d,
        in_volume_7d=volume_7d,
        forwards_since_s=forwards_since(conn),
    )


def forwards_since(conn: sqlite3.Connection) -> float | None:
    """Returns when the record of forwards begins: the earlier of the oldest resolved forward
    stored (the partial time index: one step) and when revops started watching; None when
    neither is known."""
    oldest = conn.execute("SELECT min(t) FROM forwards INDEXED BY forwards_t WHERE kind != 0").fetchone()[0]
    watched = kv.get_meta(conn, WATCHING_SINCE_KEY)
    known = [float(t) for t in (oldest, watched) if isinstance(t, (int, float))]
    return min(known) if known else None


def _forward_sums(conn: sqlite3.Connection, now_s: float) -> tuple:
    """Returns (in_fees_1d, in_volume_7d): per out channel, settled fees over 1 d and volume
    over 7 d by in channel (FORWARD_SUMS)."""
    return tuple(frozen_sums(in_fees(conn, now_s, window, column)) for window, column in FORWARD_SUMS)


def frozen_sums(sums: dict[str, dict[str, int]]) -> Mapping[str, Mapping[str, int]]:
    """out -> {in: sum}, read-only: the shape History holds its forward sums in."""
    return MappingProxyType({out: MappingProxyType(ins) for out, ins in sums.items()})
