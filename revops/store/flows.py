"""`ChannelFlow` aggregates computed in SQL, equal to `flows_from_forwards` over stored rows.

Two grouped scans, one per direction, each over a covering index ordered like its GROUP BY
(forwards_out: out_channel, kind, t, ...; forwards_in: in_channel, kind, t, ...), so SQLite
streams the groups without a sort or a table lookup. Each group sums the 30-day window, and
FILTERed sums give the nested 7-day and 1-day windows.

Exactness: t, hold_s and kind are stored precomputed with flow.py's rules, and the window
test is `(:now - t) < bound`, the same floating-point expression as `age < b0` there, so a
forward falls in the same windows in both. Integer sums are exact; float sums (hold times)
may differ from Python's in the last bits because rows are added in another order.

Last times come from `channel_last` (kept at write time, never pruned), so a channel whose
only settled forwards were pruned still reports `last_out_s`/`last_in_s` and gets an entry,
as an old settled forward does in flows_from_forwards.

The incremental cache (flowcache.py) counts one forward at a time with facts/flow.py's
`apply_row`, the function flows_from_forwards counts with, into the same Windows this module
fills. Its hold-time float sums carry an error bound, and `needs_refresh` says when cancellation (a huge hold time leaving a window of
small ones) could have left more than rounding, so that channel is summed again in SQL.
"""

from __future__ import annotations

import sqlite3
from types import MappingProxyType

from revops.facts.flow import (FAIL_FIELD, FIELD_INDEX, K_SETTLED, MAG_SQ, MAG_SUM,
                               WINDOW_BOUNDS as _BOUNDS, WINDOW_LABELS as _LABELS, ChannelFlow,
                               WindowFlow, Windows, fresh_windows)

__all__ = ["channel_flows", "channel_last", "has_forwards", "make_flow", "needs_refresh",
           "window_sums"]

(_OUT_COUNT, _OUT_MSAT, _FEES, _IN_COUNT, _IN_MSAT, _SOURCED, _LIQ, _POL, _REMOTE,
 _IN_FAILED, _HOLD_N, _HOLD_SUM, _HOLD_SQ) = (FIELD_INDEX[n] for n in (
    "out_count", "out_msat", "fees_msat", "in_count", "in_msat", "sourced_fees_msat",
    "out_failed_liquidity", "out_failed_policy", "out_failed_remote", "in_failed",
    "hold_count", "hold_sum_s", "hold_sumsq_s2"))
_NFIELDS = len(FIELD_INDEX)


def _window_sums(cols: tuple[str, ...]) -> str:
    """Returns the aggregate list: for each window, shortest first, count(*) and sum(col)s."""
    parts = []
    for i in range(len(_BOUNDS)):
        f = f" FILTER (WHERE (:now - t) < :b{i})" if i < len(_BOUNDS) - 1 else ""
        parts += [f"count(*){f}"] + [f"sum({c}){f}" for c in cols]
    return ", ".join(parts)


_OUT_COLS = ("out_msat", "fee_msat", "hold_s", "hold_s * hold_s")
_IN_COLS = ("in_msat", "fee_msat")
_WHERE = f"(:now - t) < :b{len(_BOUNDS) - 1}"

# count(hold_s) is count(*) for kinds 1 and 2 (hold_s is set on every settled/failed row
# with both times) except rows lacking a time and dust forwards, so it is counted on its own.
_OUT_SQL = f"""
SELECT out_channel, kind, {_window_sums(_OUT_COLS)},
       {", ".join(f"count(hold_s) FILTER (WHERE (:now - t) < :b{i})" for i in range(len(_BOUNDS)))}
FROM forwards INDEXED BY forwards_out
WHERE kind != 0 AND out_channel IS NOT NULL AND {_WHERE} {{one}}
GROUP BY out_channel, kind
"""

_IN_SQL = f"""
SELECT in_channel, kind, {_window_sums(_IN_COLS)}
FROM forwards INDEXED BY forwards_in
WHERE kind != 0 AND {_WHERE} {{one}}
GROUP BY in_channel, kind
"""
# All channels, or one (a refresh: the index range of that channel only).
_ALL = (_OUT_SQL.format(one=""), _IN_SQL.format(one=""))
_ONE = (_OUT_SQL.format(one="AND out_channel = :scid"),
        _IN_SQL.format(one="AND in_channel = :scid"))

def window_sums(conn: sqlite3.Connection, now_s: float, scid: str | None = None
                ) -> dict[str, Windows]:
    """Returns scid -> Windows as of `now_s` for every channel (or only `scid`) with a
    resolved forward in the longest window; call it inside a read transaction."""
    params = {"now": float(now_s), "scid": scid, **{f"b{i}": b for i, b in enumerate(_BOUNDS)}}
    out_sql, in_sql = _ALL if scid is None else _ONE
    nb = len(_BOUNDS)
    acc: dict[str, Windows] = {}
    width = 1 + len(_OUT_COLS)
    for row in conn.execute(out_sql, params):
        scid, kind = row[0], row[1]
        ws = acc.get(scid) or acc.setdefault(scid, fresh_windows())
        for i in range(nb):
            n, out_msat, fees, hsum, hsq = row[2 + i * width: 2 + (i + 1) * width]
            v = ws[i]
            if kind == K_SETTLED:
                v[_OUT_COUNT] += n
                v[_OUT_MSAT] += out_msat or 0
                v[_FEES] += fees or 0
            else:
                v[FAIL_FIELD[kind]] += n
            v[_HOLD_N] += row[2 + nb * width + i]
            v[_HOLD_SUM] += hsum or 0
            v[_HOLD_SQ] += hsq or 0
    width = 1 + len(_IN_COLS)
    for row in conn.execute(in_sql, params):
        scid, kind = row[0], row[1]
        ws = acc.get(scid) or acc.setdefault(scid, fresh_windows())
        for i in range(nb):
            n, in_msat, sourced = row[2 + i * width: 2 + (i + 1) * width]
            v = ws[i]
            if kind == K_SETTLED:
                v[_IN_COUNT] += n
                v[_IN_MSAT] += in_msat or 0
                v[_SOURCED] += sourced or 0
            else:
                v[_IN_FAILED] += n
    for ws in acc.values():
        for v in ws:
            # Hold times are >= 0 (resolved after received): |sum| is the sum of |terms|.
            v[MAG_SUM], v[MAG_SQ] = abs(v[_HOLD_SUM]), abs(v[_HOLD_SQ])
    return acc


def channel_last(conn: sqlite3.Connection) -> dict[str, tuple]:
    """Returns scid -> (last_out_s, last_in_s) from channel_last."""
    return {scid: (lo, li) for scid, lo, li in
            conn.execute("SELECT scid, last_out_s, last_in_s FROM channel_last")}


def make_flow(scid: str, ws: Windows | None, last: tuple | None,
              prev: ChannelFlow | None = None, changed: int = -1) -> ChannelFlow:
    """Returns the ChannelFlow of one channel from its Windows (None: all empty) and last
    times (None: never), reusing prev's WindowFlow of every window whose bit in `changed`
    is clear (building them is most of an incremental step's time)."""
    lo, li = last or (None, None)
    if prev is not None and not changed:
        return ChannelFlow(scid, prev.windows, lo, li)
    ws = ws or fresh_windows()
    old = prev.windows if prev is not None else None
    windows = {label: WindowFlow(*ws[i][:_NFIELDS]) if old is None or changed >> i & 1 else old[label]
               for i, label in enumerate(_LABELS)}
    return ChannelFlow(scid, MappingProxyType(windows), lo, li)


def channel_flows(conn: sqlite3.Connection, now_s: float) -> dict[str, ChannelFlow]:
    """Returns scid -> ChannelFlow as of `now_s`, from stored forwards and channel_last
    (the full computation); call it inside a read transaction."""
    acc = window_sums(conn, now_s)
    last = channel_last(conn)
    return {scid: make_flow(scid, acc.get(scid), last.get(scid)) for scid in {*acc, *last}}


# --- for the incremental cache (flowcache.py), which counts with facts/flow.py's apply_row --

def settled_counts(ws: Windows, i: int) -> tuple[int, int]:
    """Returns (settled forwards out, settled forwards in) of window i."""
    return ws[i][_OUT_COUNT], ws[i][_IN_COUNT]


def has_forwards(ws: Windows) -> bool:
    """Returns whether Windows count any forward (window_sums gives the channel an entry)."""
    v = ws[-1]
    return bool(v[_OUT_COUNT] or v[_IN_COUNT] or v[_LIQ] or v[_POL] or v[_REMOTE] or v[_IN_FAILED])


#: Sum a channel again once this much more magnitude went through a hold sum than it holds.
REFRESH_RATIO = 64.0


def needs_refresh(ws: Windows) -> bool:
    """Returns whether a channel's hold-time sums may carry more than rounding: every
    addition errs by up to half an ulp of the magnitudes summed, which is rounding while
    the sum stays near them, but mostly error once a large term left again (cancellation:
    a stuck HTLC's days-long hold leaving a window of second-long ones). Incremental
    updates are error-free in the integer fields, so only the floats need this.
    """
    return any(v[_HOLD_N] and (v[MAG_SUM] > REFRESH_RATIO * abs(v[_HOLD_SUM]) or
                               v[MAG_SQ] > REFRESH_RATIO * abs(v[_HOLD_SQ])) for v in ws)
