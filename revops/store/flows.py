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
"""

from __future__ import annotations

import sqlite3
from types import MappingProxyType

from revops.facts.flow import ChannelFlow, WindowFlow
from revops.facts.registry import WINDOWS_S
from revops.store.forwards import K_LIQUIDITY, K_POLICY, K_REMOTE, K_SETTLED

_BOUNDS = tuple(sorted(WINDOWS_S.values()))
_LABELS = tuple(sorted(WINDOWS_S, key=WINDOWS_S.__getitem__))  # ("1d", "7d", "30d")
_NFIELDS = 13  # WindowFlow's fields


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
# with both times) except rows lacking a time, so it is counted on its own.
_OUT_SQL = f"""
SELECT out_channel, kind, {_window_sums(_OUT_COLS)},
       {", ".join(f"count(hold_s) FILTER (WHERE (:now - t) < :b{i})" for i in range(len(_BOUNDS)))}
FROM forwards INDEXED BY forwards_out
WHERE kind != 0 AND out_channel IS NOT NULL AND {_WHERE}
GROUP BY out_channel, kind
"""

_IN_SQL = f"""
SELECT in_channel, kind, {_window_sums(_IN_COLS)}
FROM forwards INDEXED BY forwards_in
WHERE kind != 0 AND {_WHERE}
GROUP BY in_channel, kind
"""

# WindowFlow field offsets (see flow.py).
(_OUT_COUNT, _OUT_MSAT, _FEES, _IN_COUNT, _IN_MSAT, _SOURCED, _LIQ, _POL, _REMOTE,
 _IN_FAILED, _HOLD_N, _HOLD_SUM, _HOLD_SQ) = range(_NFIELDS)
_FAIL_FIELD = {K_REMOTE: _REMOTE, K_LIQUIDITY: _LIQ, K_POLICY: _POL}


def channel_flows(conn: sqlite3.Connection, now_s: float) -> dict[str, ChannelFlow]:
    """Returns scid -> ChannelFlow as of `now_s`, from stored forwards and channel_last."""
    params = {"now": float(now_s), **{f"b{i}": b for i, b in enumerate(_BOUNDS)}}
    nb = len(_BOUNDS)
    acc: dict[str, list[list]] = {}

    def windows_of(scid: str) -> list[list]:
        w = acc.get(scid)
        if w is None:
            w = acc[scid] = [[0] * _NFIELDS for _ in _BOUNDS]
        return w

    width = 1 + len(_OUT_COLS)
    for row in conn.execute(_OUT_SQL, params):
        scid, kind = row[0], row[1]
        ws = windows_of(scid)
        for i in range(nb):
            n, out_msat, fees, hsum, hsq = row[2 + i * width: 2 + (i + 1) * width]
            v = ws[i]
            if kind == K_SETTLED:
                v[_OUT_COUNT] += n
                v[_OUT_MSAT] += out_msat or 0
                v[_FEES] += fees or 0
            else:
                v[_FAIL_FIELD[kind]] += n
            v[_HOLD_N] += row[2 + nb * width + i]
            v[_HOLD_SUM] += hsum or 0
            v[_HOLD_SQ] += hsq or 0
    width = 1 + len(_IN_COLS)
    for row in conn.execute(_IN_SQL, params):
        scid, kind = row[0], row[1]
        ws = windows_of(scid)
        for i in range(nb):
            n, in_msat, sourced = row[2 + i * width: 2 + (i + 1) * width]
            v = ws[i]
            if kind == K_SETTLED:
                v[_IN_COUNT] += n
                v[_IN_MSAT] += in_msat or 0
                v[_SOURCED] += sourced or 0
            else:
                v[_IN_FAILED] += n
    last = {scid: (lo, li) for scid, lo, li in
            conn.execute("SELECT scid, last_out_s, last_in_s FROM channel_last")}
    for scid in last:
        windows_of(scid)

    # Windows come out of SQL already nested (shortest first); order them by label.
    result: dict[str, ChannelFlow] = {}
    for scid, ws in acc.items():
        windows = {label: WindowFlow(*v) for label, v in zip(_LABELS, ws)}
        lo, li = last.get(scid, (None, None))
        result[scid] = ChannelFlow(scid, MappingProxyType(windows), lo, li)
    return result
