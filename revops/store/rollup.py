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
_CHUNK_IDS = "prune_ids"  # temp table: the ids of the rows one chunk rolls and deletes
_ROLLUP = f"""
INSERT INTO forward_daily (day, scid, {_COLS})
SELECT day, scid, {_SUMS}
FROM ({_per_row(f"id IN temp.{_CHUNK_IDS}", f"id IN temp.{_CHUNK_IDS}")})
WHERE true
GROUP BY day, scid
ON CONFLICT (day, scid) DO UPDATE SET
""" + ",\n".join(f"{f} = {f} + excluded.{f}" for f in DAILY_FIELDS)

#: Rows rolled and deleted per transaction: bounds how long a prune holds the write lock
#: (under a second on this machine at 1M stored rows), so live event ingestion never waits
#: near busy_timeout, even when the first prune after a backfill of years of history
#: deletes millions of rows.
CHUNK_ROWS = 20_000


def prune_cutoff(now_s: float, keep_days: float) -> float:
    """Returns the time before which forwards are rolled up and deleted.

    keep_days is raised to the longest flow window (30 d) if smaller, so channel_flows
    stays exact.
    """
    return now_s - max(keep_days * 86_400.0, MIN_KEEP_S)


def rollup_chunk(conn: sqlite3.Connection, cutoff_s: float, limit: int = CHUNK_ROWS
                 ) -> tuple[int, int]:
    """Rolls up to `limit` forwards older than cutoff_s into forward_daily and deletes them,
    in the caller's transaction; returns (resolved forwards rolled, rows deleted).

    Fewer than `limit` deleted means none older than cutoff_s is left. The first chunk also
    moves the prune horizon to cutoff_s, so from then on a forward older than it that
    matches no row is not stored again (it was rolled already, or is about to be).
    """
    conn.execute("UPDATE forward_cursor SET horizon_s = max(horizon_s, ?) WHERE id = 1",
                 (cutoff_s,))
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_CHUNK_IDS} (id INTEGER PRIMARY KEY)")
    conn.execute(f"DELETE FROM temp.{_CHUNK_IDS}")
    # Rowid order finds old rows first (forwards are mostly written in time order), so a
    # chunk rarely scans far without an index on t.
    n = conn.execute(f"INSERT INTO temp.{_CHUNK_IDS} SELECT id FROM forwards WHERE t < ? LIMIT ?",
                     (cutoff_s, limit)).rowcount
    if not n:
        return 0, 0
    rolled = conn.execute(f"SELECT count(*) FROM forwards WHERE id IN temp.{_CHUNK_IDS} "
                          "AND kind != 0").fetchone()[0]
    if rolled:
        conn.execute(_ROLLUP)
    pruned = conn.execute(f"DELETE FROM forwards WHERE id IN temp.{_CHUNK_IDS}").rowcount
    conn.execute(f"DELETE FROM temp.{_CHUNK_IDS}")
    return rolled, pruned


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
