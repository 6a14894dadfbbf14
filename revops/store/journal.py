"""The decision journal: what every cycle decided per channel, under which policy.

One `journal_batches` row per journal() call holds the time, cycle id, policy name, version
and digest and the dry-run flag; `decisions` holds one row per record. Applied records also
move `channel_fee_last` (history.py) in the same transaction. Record keys beyond
the known columns are kept as JSON in `extra_json` and returned as they were given.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from revops.store.history import note_applied

#: Record keys stored in their own columns (the rest go to extra_json).
RECORD_FIELDS = ("scid", "peer_id", "action", "fee_ppm", "old_fee_ppm", "stage", "rule",
                 "broadcast", "suppressed_by", "applied", "error", "why")
_BOOLS = ("broadcast", "applied")
_BATCH_FIELDS = ("at_s", "cycle_id", "policy_name", "policy_version", "policy_digest", "dry_run")


def _row(batch_id: int, rec: Mapping[str, Any]) -> tuple:
    """Returns the decisions row for one record."""
    values = [rec.get(f) for f in RECORD_FIELDS]
    for f in _BOOLS:
        i = RECORD_FIELDS.index(f)
        values[i] = None if values[i] is None else int(bool(values[i]))
    values[RECORD_FIELDS.index("applied")] = int(bool(rec.get("applied")))
    extra = {k: v for k, v in rec.items() if k not in RECORD_FIELDS}
    # default=str: an odd value in a debug field must not lose the whole cycle's journal.
    extra_json = json.dumps(extra, sort_keys=True, default=str) if extra else None
    return (batch_id, *values, extra_json)


_INSERT = (f"INSERT INTO decisions (batch_id, {', '.join(RECORD_FIELDS)}, extra_json) "
           f"VALUES ({', '.join('?' * (len(RECORD_FIELDS) + 2))})")


def journal(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]], at_s: float,
            policy_name: str, policy_version: str, policy_digest: str, cycle_id: str,
            dry_run: bool) -> int:
    """Appends one batch of decision records in the caller's transaction; returns how many.

    An empty batch writes nothing.
    """
    records = list(records)
    if not records:
        return 0
    batch_id = conn.execute(
        "INSERT INTO journal_batches (at_s, cycle_id, policy_name, policy_version, "
        "policy_digest, dry_run) VALUES (?, ?, ?, ?, ?, ?)",
        (at_s, cycle_id, policy_name, policy_version, policy_digest, int(bool(dry_run)))
    ).lastrowid
    conn.executemany(_INSERT, [_row(batch_id, r) for r in records])
    note_applied(conn, records, at_s)
    return len(records)


def decisions(conn: sqlite3.Connection, scid: str | None, limit: int) -> list[dict]:
    """Returns up to `limit` decisions, most recently journaled first (optionally one scid's):
    each record's fields plus id, at_s, cycle_id, policy_name, policy_version,
    policy_digest and dry_run."""
    cols = ", ".join([f"d.{f}" for f in RECORD_FIELDS] + [f"b.{f}" for f in _BATCH_FIELDS])
    where = "WHERE d.scid = ?" if scid is not None else ""
    limit = max(0, int(limit))  # SQLite reads a negative LIMIT as "no limit"
    params: tuple = (scid, limit) if scid is not None else (limit,)
    rows = conn.execute(
        f"SELECT d.id, {cols}, d.extra_json FROM decisions d "
        f"JOIN journal_batches b ON b.id = d.batch_id {where} ORDER BY d.id DESC LIMIT ?",
        params)
    out = []
    for row in rows:
        d = dict(row)
        extra = d.pop("extra_json")
        for f in _BOOLS:
            if d[f] is not None:
                d[f] = bool(d[f])
        d["dry_run"] = bool(d["dry_run"])
        if extra:
            d.update({k: v for k, v in json.loads(extra).items() if k not in d})
        out.append(d)
    return out


def prune_journal(conn: sqlite3.Connection, now_s: float, keep_days: float) -> int:
    """Deletes batches older than keep_days with their decisions, in the caller's
    transaction; returns how many decisions were removed."""
    cutoff = now_s - keep_days * 86_400.0
    n = conn.execute("SELECT count(*) FROM decisions WHERE batch_id IN "
                     "(SELECT id FROM journal_batches WHERE at_s < ?)", (cutoff,)).fetchone()[0]
    conn.execute("DELETE FROM decisions WHERE batch_id IN "
                 "(SELECT id FROM journal_batches WHERE at_s < ?)", (cutoff,))
    conn.execute("DELETE FROM journal_batches WHERE at_s < ?", (cutoff,))
    return n
