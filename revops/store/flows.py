"""`ChannelFlow` aggregates computed in SQL, equal to `flows_from_forwards` over stored rows.

Two grouped scans over the forwards of the last 30 days (the `forwards_t` index bounds the
range): one by out_channel, one by in_channel, each bucketed into the disjoint age ranges
<1d, 1d..7d, 7d..30d that flows_from_forwards uses, then cumulated into nested windows here.

Exactness: t and hold_s are stored precomputed with flow.py's rules, and the bucket test is
written as `(:now - t) < bound`, the same floating-point expression as `age < b0` there, so a
forward falls in the same window in both. Integer sums are exact; float sums (hold times)
may differ from Python's in the last bits because rows are added in another order.

Last times come from `channel_last` (kept at write time, never pruned), so a channel whose
only settled forwards were pruned still reports `last_out_s`/`last_in_s` and gets an entry,
as an old settled forward does in flows_from_forwards.
"""

from __future__ import annotations

import sqlite3
from types import MappingProxyType

from revops.facts.flow import POLICY_FAILCODES, ChannelFlow, WindowFlow
from revops.facts.registry import WINDOWS_S

_BOUNDS = tuple(sorted(WINDOWS_S.values()))
_LABELS = tuple(sorted(WINDOWS_S, key=WINDOWS_S.__getitem__))
_NFIELDS = 13  # WindowFlow's fields
_POLICY = ", ".join(str(c) for c in sorted(POLICY_FAILCODES))

# :lo is a little below now - 30d so the index range never drops a row the exact test keeps.
_BUCKET = ("CASE WHEN (:now - t) < :b0 THEN 0 WHEN (:now - t) < :b1 THEN 1 ELSE 2 END")
_RANGE = "t >= :lo AND (:now - t) < :b2 AND status != 0"

_OUT_SQL = f"""
SELECT out_channel, {_BUCKET} AS b,
       sum(status = 1),
       coalesce(sum(CASE WHEN status = 1 THEN out_msat END), 0),
       coalesce(sum(CASE WHEN status = 1 THEN fee_msat END), 0),
       sum(status = 3 AND coalesce(failcode NOT IN ({_POLICY}), 1)),
       sum(status = 3 AND coalesce(failcode IN ({_POLICY}), 0)),
       sum(status = 2),
       count(hold_s), coalesce(sum(hold_s), 0.0), coalesce(sum(hold_s * hold_s), 0.0)
FROM forwards INDEXED BY forwards_t
WHERE {_RANGE} AND out_channel IS NOT NULL
GROUP BY out_channel, b
"""

_IN_SQL = f"""
SELECT in_channel, {_BUCKET} AS b,
       sum(status = 1),
       coalesce(sum(CASE WHEN status = 1 THEN in_msat END), 0),
       coalesce(sum(CASE WHEN status = 1 THEN fee_msat END), 0),
       sum(status != 1)
FROM forwards INDEXED BY forwards_t
WHERE {_RANGE}
GROUP BY in_channel, b
"""

# Offsets in WindowFlow's field order (see flow.py).
_OUT_COUNT, _OUT_MSAT, _FEES, _IN_COUNT, _IN_MSAT, _SOURCED = 0, 1, 2, 3, 4, 5
_LIQ, _POL, _REMOTE, _IN_FAILED, _HOLD_N, _HOLD_SUM, _HOLD_SQ = 6, 7, 8, 9, 10, 11, 12


def channel_flows(conn: sqlite3.Connection, now_s: float) -> dict[str, ChannelFlow]:
    """Returns scid -> ChannelFlow as of `now_s`, from stored forwards and channel_last."""
    b0, b1, b2 = _BOUNDS
    params = {"now": float(now_s), "b0": b0, "b1": b1, "b2": b2, "lo": now_s - b2 - 1.0}
    acc: dict[str, list] = {}

    def buckets(scid: str) -> list:
        a = acc.get(scid)
        if a is None:
            a = acc[scid] = [[0] * _NFIELDS for _ in _BOUNDS]
        return a

    for scid, b, n, out_msat, fees, liq, pol, remote, hn, hsum, hsq in conn.execute(
            _OUT_SQL, params):
        v = buckets(scid)[b]
        v[_OUT_COUNT] += n
        v[_OUT_MSAT] += out_msat
        v[_FEES] += fees
        v[_LIQ] += liq
        v[_POL] += pol
        v[_REMOTE] += remote
        v[_HOLD_N] += hn
        v[_HOLD_SUM] += hsum
        v[_HOLD_SQ] += hsq
    for scid, b, n, in_msat, sourced, failed in conn.execute(_IN_SQL, params):
        v = buckets(scid)[b]
        v[_IN_COUNT] += n
        v[_IN_MSAT] += in_msat
        v[_SOURCED] += sourced
        v[_IN_FAILED] += failed
    last = {scid: (lo, li) for scid, lo, li in
            conn.execute("SELECT scid, last_out_s, last_in_s FROM channel_last")}
    for scid in last:
        buckets(scid)

    result: dict[str, ChannelFlow] = {}
    for scid, bs in acc.items():
        windows = {}
        run = [0] * _NFIELDS
        for label, v in zip(_LABELS, bs):
            run = [x + y for x, y in zip(run, v)]
            windows[label] = WindowFlow(*run)
        lo, li = last.get(scid, (None, None))
        result[scid] = ChannelFlow(scid, MappingProxyType(windows), lo, li)
    return result
