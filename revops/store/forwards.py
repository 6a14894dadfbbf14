"""Forward ingestion: normalise CLN forward dicts, find the stored row, merge, upsert.

Identity. CLN's own `forwards` table is keyed by (in_channel, in_htlc_id): an incoming HTLC
is forwarded at most once and HTLC ids are never reused on a channel. So a record is matched
to a stored row by the first of these keys that finds one:

1. (in_channel, in_htlc_id), when the record has in_htlc_id (offered and resolution events
   normally do; listforwards entries do except for very old forwards);
2. created_index, when the record has it (listforwards entries always; the offered event and
   the single local_failed event) — only against a row of the same in_channel whose
   in_htlc_id is unknown on one side, so a reused index (a node whose DB was reset) never
   merges two different HTLCs;
3. (in_channel, received_time), the last resort for a record with neither (a resolution
   event without in_htlc_id carries only updated_index, which names an update, not a
   forward) — again only where the other keys do not contradict.

A record that matches nothing is inserted. This covers: duplicated or replayed events (key 1
or 2 finds the row, nothing changes), a resolution before its offered event (the resolution
inserts; the late offered merges into it and cannot downgrade it), backfill overlapping live
events (same keys), and a local_failed forward's single event.

Merge. The stored row keeps its outcome unless the record is a later one: a resolved record
(settled/failed/local_failed) wins over an offered row, and over a resolved row only with a
higher updated_index. So a row never goes back from settled to offered. Other fields fill in
what the row lacks (created_index, in_htlc_id, out_htlc_id, amounts).

Pruned history: a record older than the prune horizon that matches no row is skipped; it was
rolled into `forward_daily` already, and inserting it again would count it twice.
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
from typing import Any, Iterable, Mapping

from revops.facts.flow import K_OFFERED, forward_kind, forward_times

log = logging.getLogger(__name__)

STATUS_CODES = {"offered": 0, "settled": 1, "failed": 2, "local_failed": 3}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
OFFERED, SETTLED, FAILED, LOCAL_FAILED = 0, 1, 2, 3

#: Stored columns of a forward, in the order of the tuples this module passes around.
COLUMNS = ("created_index", "updated_index", "in_channel", "in_htlc_id", "out_channel",
           "out_htlc_id", "in_msat", "out_msat", "fee_msat", "status", "failcode",
           "received_time", "resolved_time", "t", "hold_s", "kind")
(_CREATED, _UPDATED, _IN_CH, _IN_HTLC, _OUT_CH, _OUT_HTLC, _IN_MSAT, _OUT_MSAT, _FEE,
 _STATUS, _FAILCODE, _RECEIVED, _RESOLVED, _T, _HOLD, _KIND) = range(len(COLUMNS))
_OUTCOME = (_STATUS, _FAILCODE, _RESOLVED)

_COLS_SQL = ", ".join(COLUMNS)
_SELECT = f"SELECT id, {_COLS_SQL} FROM forwards"
_BY_HTLC = f"{_SELECT} WHERE in_channel = ? AND in_htlc_id = ?"
# Keys 1-3 at once for a record with an htlc id (the usual case): its own row, then the
# rows of its channel without one that keys 2 and 3 could match (one statement, not three).
_BY_HTLC_OR_KEYLESS = (f"{_BY_HTLC} UNION ALL SELECT * FROM ({_SELECT} WHERE in_channel = ? "
                       "AND in_htlc_id IS NULL AND (created_index = ? OR received_time = ?) "
                       "ORDER BY id)")
_BY_CREATED = (f"{_SELECT} WHERE created_index = ? AND in_channel = ? "
               "AND (in_htlc_id IS NULL OR ? IS NULL) ORDER BY id LIMIT 1")
_BY_RECEIVED = (f"{_SELECT} WHERE in_channel = ? AND received_time = ? "
                "AND (in_htlc_id IS NULL OR ? IS NULL) "
                "AND (created_index IS NULL OR ? IS NULL OR created_index = ?) "
                "ORDER BY id LIMIT 1")
_INSERT = f"INSERT INTO forwards ({_COLS_SQL}) VALUES ({', '.join('?' * len(COLUMNS))})"
_LAST_OUT = ("INSERT INTO channel_last (scid, last_out_s) VALUES (?, ?) ON CONFLICT (scid) "
             "DO UPDATE SET last_out_s = max(coalesce(last_out_s, excluded.last_out_s), "
             "excluded.last_out_s)")
_LAST_IN = ("INSERT INTO channel_last (scid, last_in_s) VALUES (?, ?) ON CONFLICT (scid) "
            "DO UPDATE SET last_in_s = max(coalesce(last_in_s, excluded.last_in_s), "
            "excluded.last_in_s)")


class BadForward(ValueError):
    """A forward dict that cannot be stored (missing in_channel or status, mistyped field)."""


_INT64_MAX = 2**63 - 1


def _int(v: Any, name: str) -> int | None:
    """Returns v as an int (None stays None); accepts "123" and "123msat" strings.

    Values SQLite cannot store (beyond 64 bits) are refused here, so one bad entry is
    skipped instead of failing the bind and with it the whole page.
    """
    if v is None or (type(v) is int and -_INT64_MAX <= v <= _INT64_MAX):
        return v  # the usual case, first: ingestion runs this ~8 times per event
    if isinstance(v, bool):
        raise BadForward(f"{name}: bool")
    n: int | None = None
    if isinstance(v, int):
        n = v
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    elif isinstance(v, str):
        s = v[:-4] if v.endswith("msat") else v
        if s.isdigit():
            n = int(s)
    if n is None or not -_INT64_MAX <= n <= _INT64_MAX:
        raise BadForward(f"{name}: {v!r} is not a 64-bit integer")
    return n


def _time(v: Any, name: str) -> float | None:
    """Returns v as a finite float of seconds (None stays None)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadForward(f"{name}: {v!r} is not a time")
    return float(v)


def derived(status: int, failcode: int | None, received: float | None,
            resolved: float | None, out_msat: int | None) -> tuple[float, float | None, int]:
    """Returns the (t, hold_s, kind) columns of a stored forward, by the counting rules of
    facts/flow.py (forward_kind, forward_times)."""
    kind = forward_kind(STATUS_NAMES[status], failcode)
    return (*forward_times(kind, received, resolved, out_msat), kind)


def normalize(f: Mapping[str, Any]) -> tuple:
    """Returns the stored-column tuple (COLUMNS order) for a forward dict; raises BadForward."""
    try:
        status = STATUS_CODES[f["status"]]
    except (KeyError, TypeError):
        raise BadForward(f"status: {f.get('status')!r}") from None
    in_channel = f.get("in_channel")
    if not isinstance(in_channel, str) or not in_channel:
        raise BadForward(f"in_channel: {in_channel!r}")
    out_channel = f.get("out_channel")
    if out_channel is not None and not isinstance(out_channel, str):
        raise BadForward(f"out_channel: {out_channel!r}")
    received = _time(f.get("received_time"), "received_time")
    resolved = _time(f.get("resolved_time"), "resolved_time")
    failcode = _int(f.get("failcode"), "failcode")
    out_msat = _int(f.get("out_msat"), "out_msat")
    return (_int(f.get("created_index"), "created_index"),
            _int(f.get("updated_index"), "updated_index"),
            in_channel, _int(f.get("in_htlc_id"), "in_htlc_id"),
            out_channel, _int(f.get("out_htlc_id"), "out_htlc_id"),
            _int(f.get("in_msat"), "in_msat"), out_msat,
            _int(f.get("fee_msat"), "fee_msat"), status, failcode,
            received, resolved, *derived(status, failcode, received, resolved, out_msat))


def find(conn: sqlite3.Connection, r: tuple) -> sqlite3.Row | None:
    """Returns the stored row (id first, then COLUMNS) that `r` identifies, None when new."""
    htlc, created, received = r[_IN_HTLC], r[_CREATED], r[_RECEIVED]
    if htlc is not None:
        rows = conn.execute(_BY_HTLC_OR_KEYLESS, (r[_IN_CH], htlc, r[_IN_CH], created, received)
                            ).fetchall()
        if not rows or rows[0][1 + _IN_HTLC] is not None:
            return rows[0] if rows else None  # key 1 (its row comes first), or nothing
        # Keys 2 then 3 among the keyless rows (by id, as their single queries below).
        if created is not None:
            for row in rows:
                if row[1 + _CREATED] == created:
                    return row
        if received is not None:
            for row in rows:
                if row[1 + _RECEIVED] == received and (
                        created is None or row[1 + _CREATED] in (None, created)):
                    return row
        return None
    if created is not None:
        row = conn.execute(_BY_CREATED, (created, r[_IN_CH], htlc)).fetchone()
        if row is not None:
            return row
    if r[_RECEIVED] is not None:
        return conn.execute(_BY_RECEIVED, (r[_IN_CH], r[_RECEIVED], htlc, created, created)
                            ).fetchone()
    return None


def merge(old: tuple, new: tuple) -> tuple:
    """Returns the merged column tuple of a stored forward `old` and a record `new`."""
    newer = new[_UPDATED] is not None and (old[_UPDATED] is None or new[_UPDATED] > old[_UPDATED])
    new_wins = new[_STATUS] != OFFERED and (old[_STATUS] == OFFERED or newer)
    win, lose = (new, old) if new_wins else (old, new)
    merged = [w if w is not None else x for w, x in zip(win, lose)]
    if win[_STATUS] != lose[_STATUS]:
        for i in _OUTCOME:  # a failcode or resolved_time belongs to its own outcome only
            merged[i] = win[i]
    merged[_CREATED] = old[_CREATED] if old[_CREATED] is not None else new[_CREATED]
    if old[_UPDATED] is not None and new[_UPDATED] is not None:
        merged[_UPDATED] = max(old[_UPDATED], new[_UPDATED])
    merged[_T], merged[_HOLD], merged[_KIND] = derived(
        merged[_STATUS], merged[_FAILCODE], merged[_RECEIVED], merged[_RESOLVED], merged[_OUT_MSAT])
    return tuple(merged)


def _write(conn: sqlite3.Connection, r: tuple, horizon_s: float) -> tuple | None:
    """Upserts one normalised record; returns (old, new) column tuples if stored data
    changed (old None for an insert), else None."""
    row = find(conn, r)
    old = None
    if row is None:
        if r[_T] < horizon_s:
            return None  # already rolled up and pruned: inserting would count it twice
        conn.execute(_INSERT, r)
        final = r
    else:
        old = tuple(row)[1:]
        final = merge(old, r)
        if final == old:
            return None
        cols = [i for i, (a, b) in enumerate(zip(old, final)) if a != b or type(a) is not type(b)]
        conn.execute(_update_sql(tuple(cols)), (*(final[i] for i in cols), row[0]))
    return old, final


@functools.lru_cache(maxsize=256)
def _update_sql(changed: tuple[int, ...]) -> str:
    """Returns an UPDATE of the COLUMNS at indexes `changed` only.

    SQLite rewrites every index holding an assigned column, changed or not: assigning all
    columns rewrote the identity indexes' entries too, dirtying three more random pages
    per resolution for nothing (the commit writes every dirty page to the WAL).
    """
    return f"UPDATE forwards SET {', '.join(COLUMNS[i] + ' = ?' for i in changed)} WHERE id = ?"


def _write_last(conn: sqlite3.Connection, settled: Iterable[tuple]) -> None:
    """Raises channel_last to the times of settled forwards (column tuples): one upsert
    per channel and direction, with the latest time among them."""
    last_out: dict[str, float] = {}
    last_in: dict[str, float] = {}
    for f in settled:
        if f[_OUT_CH] is not None and f[_T] > last_out.get(f[_OUT_CH], -math.inf):
            last_out[f[_OUT_CH]] = f[_T]
        if f[_T] > last_in.get(f[_IN_CH], -math.inf):
            last_in[f[_IN_CH]] = f[_T]
    conn.executemany(_LAST_OUT, last_out.items())
    conn.executemany(_LAST_IN, last_in.items())


def _index_of(f: Mapping[str, Any], key: str) -> int:
    """Returns f[key] as an int, 0 when absent or unreadable (cursor bookkeeping only)."""
    if not isinstance(f, Mapping):
        return 0
    try:
        return _int(f.get(key), key) or 0
    except BadForward:
        return 0


def ingest(conn: sqlite3.Connection, forwards: Iterable[Mapping[str, Any]],
           advance_cursor: bool, changes: list | None = None, cursor_floor: Mapping[str, int] | None = None) -> int:
    """Upserts forward dicts inside the caller's transaction; returns how many rows changed.

    With `changes`, appends (old, new) flow rows (FLOW_COLUMNS order; old None for an
    insert) for every change that can move channel_flows: the incremental flow cache
    (flowcache.py) applies them once the transaction commits.

    Malformed dicts are logged and skipped. With `advance_cursor` (listforwards pages) the
    backfill cursor moves to the highest created/updated index seen, malformed entries
    included (and at least to `cursor_floor`, the indexes of entries dropped before they got
    here), so a bad entry is not fetched again on every start. Live events never move it:
    after a restart the first live event would otherwise jump the cursor over the forwards
    made while the plugin was down, and backfill would never fetch them.
    """
    horizon_s = conn.execute("SELECT horizon_s FROM forward_cursor WHERE id = 1").fetchone()[0]
    changed = 0
    settled = []
    max_created = _index_of(cursor_floor, "created_index") if cursor_floor else 0
    max_updated = _index_of(cursor_floor, "updated_index") if cursor_floor else 0
    for f in forwards:
        if advance_cursor:
            max_created = max(max_created, _index_of(f, "created_index"))
            max_updated = max(max_updated, _index_of(f, "updated_index"))
        try:
            r = normalize(f)
        except BadForward as e:
            log.warning("skipping malformed forward (%s): %.200r", e, f)
            continue
        except AttributeError:  # not a mapping at all
            log.warning("skipping malformed forward: %.200r", f)
            continue
        change = _write(conn, r, horizon_s)
        if change:
            changed += 1
            if change[1][_STATUS] == SETTLED:
                settled.append(change[1])
            if changes is not None:
                old, new = change
                new_f = flow_row(new)
                old_f = None if old is None else flow_row(old)
                # offered rows count for nothing; a merge that only fills an index neither
                if new_f != old_f and (new_f[0] != K_OFFERED or
                                       (old_f is not None and old_f[0] != K_OFFERED)):
                    changes.append((old_f, new_f))
    _write_last(conn, settled)
    if advance_cursor and (max_created or max_updated):
        conn.execute("UPDATE forward_cursor SET created_index = max(created_index, ?), "
                     "updated_index = max(updated_index, ?) WHERE id = 1",
                     (max_created, max_updated))
    return changed


#: Columns that decide a forward's contribution to channel_flows, in flow_row's order.
FLOW_COLUMNS = ("kind", "t", "out_channel", "in_channel", "out_msat", "in_msat", "fee_msat",
                "hold_s")
_FLOW_IDX = tuple(COLUMNS.index(c) for c in FLOW_COLUMNS)


def flow_row(r: tuple) -> tuple:
    """Returns the FLOW_COLUMNS values of a stored-column tuple (COLUMNS order)."""
    return tuple(r[i] for i in _FLOW_IDX)


def cursor(conn: sqlite3.Connection) -> tuple[int, int]:
    """Returns (created_index, updated_index) of the backfill cursor, 0 when nothing ingested."""
    row = conn.execute("SELECT created_index, updated_index FROM forward_cursor WHERE id = 1"
                       ).fetchone()
    return int(row[0]), int(row[1])
