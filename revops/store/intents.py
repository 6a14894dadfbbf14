"""Fee intents: the journal-before-act log of the fee changes a cycle is about to send.

A fee cycle writes one `fee_intents` row per setchannel it is about to call, all in one
transaction synced to disk, before the first call; marks each row applied or failed after
its call; and deletes the cycle's rows in the transaction that journals the cycle
(journal.py). Rows left behind mean the plugin died in between: the next start settles them
against the node's real fees (act/journal.py) and journals them then, so an applied change is
never missing from the decision journal or from the gossip budget that counts it.

Each row keeps the decision record as it will be journaled, the batch it belongs to (policy
identity, dry-run) and the policy state updates that go with the change.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

SCHEMA = (
    """CREATE TABLE fee_intents (
        id INTEGER PRIMARY KEY,
        cycle_id TEXT NOT NULL,
        at_s REAL NOT NULL,
        scid TEXT NOT NULL,
        fee_ppm INTEGER NOT NULL,
        old_fee_ppm INTEGER,
        status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'failed')),
        error TEXT,
        batch_json TEXT NOT NULL,
        record_json TEXT NOT NULL,
        state_json TEXT
    )""",
    "CREATE INDEX fee_intents_cycle ON fee_intents(cycle_id)",
)


def _dumps(value: Any) -> str:
    # default=str: an odd value in a record's debug field must not stop the fee change's intent
    return json.dumps(value, sort_keys=True, default=str)


def add(conn: sqlite3.Connection, cycle_id: str, at_s: float, batch: Mapping[str, Any],
        items: Iterable[tuple[Mapping[str, Any], int | None, Mapping[str, Any] | None]]) -> list[int]:
    """Inserts one pending intent per (record, chain fee, state updates), in the caller's
    transaction; returns their ids in order."""
    batch_json = _dumps(dict(batch))
    ids = []
    for record, chain_fee_ppm, state_updates in items:
        ids.append(conn.execute(
            "INSERT INTO fee_intents (cycle_id, at_s, scid, fee_ppm, old_fee_ppm, status, batch_json, "
            "record_json, state_json) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (cycle_id, float(at_s), record["scid"], int(record["fee_ppm"]), chain_fee_ppm, batch_json,
             _dumps(dict(record)), _dumps(dict(state_updates)) if state_updates else None)).lastrowid)
    return ids


def finish(conn: sqlite3.Connection, intent_id: int, applied: bool, error: str | None) -> None:
    """Marks one intent applied or failed (with its error)."""
    conn.execute("UPDATE fee_intents SET status = ?, error = ? WHERE id = ?",
                 ("applied" if applied else "failed", error, intent_id))


def open_intents(conn: sqlite3.Connection) -> list[dict]:
    """Returns every intent not yet journaled, oldest first: id, cycle_id, at_s, scid, fee_ppm,
    old_fee_ppm, status, error, batch, record and state_updates (decoded)."""
    out = []
    for row in conn.execute("SELECT * FROM fee_intents ORDER BY id"):
        d = dict(row)
        d["batch"] = json.loads(d.pop("batch_json"))
        d["record"] = json.loads(d.pop("record_json"))
        state = d.pop("state_json")
        d["state_updates"] = json.loads(state) if state else None
        out.append(d)
    return out


def drop_cycle(conn: sqlite3.Connection, cycle_id: str) -> None:
    """Deletes a cycle's intents (its journal batch is being written in this transaction)."""
    conn.execute("DELETE FROM fee_intents WHERE cycle_id = ?", (cycle_id,))


def drop(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    conn.executemany("DELETE FROM fee_intents WHERE id = ?", [(i,) for i in ids])
