"""Daily per-channel rollups, pruning of old forwards, and VACUUM when it pays.

A forward's day is the UTC date of its time t (resolved_time, else received_time). Each day
and channel gets WindowFlow's counters, both directions: what left through the channel
(out_*, fees, out failures, hold times) and what entered it (in_*, sourced fees,
in_failed), with the same counting rules as revops/facts/flow.py. `offered` forwards count
for nothing; stale ones (older than the retention) are deleted without being rolled.
"""

from __future__ import annotations

import sqlite3

from revops.facts.registry import WINDOWS_S

#: Rollup counters, in forward_daily's column order (WindowFlow's field names).
DAILY_FIELDS = ("out_count", "out_msat", "fees_msat", "in_count", "in_msat",
                "sourced_fees_msat", "out_failed_liquidity", "out_failed_policy",
                "out_failed_remote", "in_failed", "hold_count", "hold_sum_s", "hold_sumsq_s2")

#: Forwards younger than this are never pruned: channel_flows needs them for its windows.
MIN_KEEP_S = max(WINDOWS_S.values())

_SUMS = ", ".join(f"sum({f}) AS {f}" for f in DAILY_FIELDS)


def _per_row(out_filter: str, in_filter: str) -> str:
    """Returns SQL giving one (day, scid, counters...) row per forward side matching the filters."""
    return f"""
    SELECT date(t, 'unixepoch') AS day, out_channel AS scid,
           kind = 1 AS out_count,
           CASE WHEN kind = 1 THEN coalesce(out_msat, 0) ELSE 0 END AS out_msat,
           CASE WHEN kind = 1 THEN coalesce(fee_msat, 0) ELSE 0 END AS fees_msat,
           0 AS in_count, 0 AS in_msat, 0 AS sourced_fees_msat,
           kind = 3 AS out_failed_liquidity, kind = 4 AS out_failed_policy,
           kind = 2 AS out_failed_remote, 0 AS in_failed,
           hold_s IS NOT NULL AS hold_count, coalesce(hold_s, 0.0) AS hold_sum_s,
           coalesce(hold_s * hold_s, 0.0) AS hold_sumsq_s2
    FROM forwards WHERE kind != 0 AND out_channel IS NOT NULL AND {out_filter}
    UNION ALL
    SELECT date(t, 'unixepoch'), in_channel, 0, 0, 0,
           kind = 1, CASE WHEN kind = 1 THEN coalesce(in_msat, 0) ELSE 0 END,
           CASE WHEN kind = 1 THEN coalesce(fee_msat, 0) ELSE 0 END,
           0, 0, 0, kind != 1, 0, 0.0, 0.0
    FROM forwards WHERE kind != 0 AND {in_filter}"""


_COLS = ", ".join(DAILY_FIELDS)
_ROLLUP = f"""
INSERT INTO forward_daily (day, scid, {_COLS})
SELECT day, scid, {_SUMS}
FROM ({_per_row("t < :cutoff", "t < :cutoff")})
WHERE true
GROUP BY day, scid
ON CONFLICT (day, scid) DO UPDATE SET
""" + ",\n".join(f"{f} = {f} + excluded.{f}" for f in DAILY_FIELDS)


def rollup_and_prune(conn: sqlite3.Connection, now_s: float, keep_days: float) -> dict:
    """Rolls forwards older than keep_days into forward_daily and deletes them, in the caller's
    transaction; returns {"rolled": resolved forwards rolled, "pruned": rows deleted,
    "cutoff_s": the time before which forwards went}.

    keep_days is raised to the longest flow window (30 d) if smaller, so channel_flows stays
    exact. The cutoff becomes the prune horizon: a forward older than it that shows up again
    (a replayed backfill) is not stored a second time.
    """
    cutoff = now_s - max(keep_days * 86_400.0, MIN_KEEP_S)
    rolled = conn.execute("SELECT count(*) FROM forwards WHERE t < ? AND kind != 0",
                          (cutoff,)).fetchone()[0]
    if rolled:
        conn.execute(_ROLLUP, {"cutoff": cutoff})
    pruned = conn.execute("DELETE FROM forwards WHERE t < ?", (cutoff,)).rowcount
    conn.execute("UPDATE forward_cursor SET horizon_s = max(horizon_s, ?) WHERE id = 1",
                 (cutoff,))
    return {"rolled": rolled, "pruned": pruned, "cutoff_s": cutoff}


def daily_history(conn: sqlite3.Connection, scid: str | None = None) -> list[dict]:
    """Returns one dict per (day, scid): {"day": "YYYY-MM-DD", "scid", DAILY_FIELDS...},
    ordered by day then scid, summing rollups and the not-yet-rolled forwards of that day."""
    if scid is None:
        rolled_where, out_f, in_f = "", "1", "1"
    else:
        rolled_where, out_f, in_f = "WHERE scid = :scid", "out_channel = :scid", "in_channel = :scid"
    sql = f"""
    SELECT day, scid, {_SUMS} FROM (
        SELECT day, scid, {_COLS} FROM forward_daily {rolled_where}
        UNION ALL {_per_row(out_f, in_f)}
    ) GROUP BY day, scid ORDER BY day, scid"""
    return [dict(row) for row in conn.execute(sql, {"scid": scid})]


def vacuum_if_worth(conn: sqlite3.Connection, min_free_ratio: float, min_free_bytes: int) -> bool:
    """VACUUMs when free pages exceed both min_free_ratio of the file and min_free_bytes;
    returns whether it did.

    The original VACUUMed after every hourly prune: a full-file rewrite for a few freed pages.
    Free pages are reused by later inserts anyway, so only a large surplus is worth a rewrite.
    Must run outside any transaction.
    """
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not pages or free / pages <= min_free_ratio or free * page_size <= min_free_bytes:
        return False
    conn.execute("VACUUM")
    # In WAL mode VACUUM writes the whole new file into the WAL; truncate it so the disk
    # space actually comes back.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return True
