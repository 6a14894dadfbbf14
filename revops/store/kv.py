"""Per-channel policy state, runtime param overrides and small meta values, stored as JSON.

Values are JSON text so they read back with their JSON type (int stays int, true stays
true); NaN and infinities are refused, since they are not JSON and a policy could not
compare against them sanely.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any


def dumps(value: Any) -> str:
    """Returns value as compact JSON text; raises ValueError for NaN/inf or non-JSON values."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not storable as JSON: {value!r} ({e})") from None


def loads(text: str) -> Any:
    """Returns the value of stored JSON text."""
    return json.loads(text)


# --- per-channel state (policy `state.*`)

def load_states(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Returns scid -> {name: value} for every stored state variable."""
    states: dict[str, dict[str, Any]] = {}
    for scid, name, text in conn.execute("SELECT scid, name, value_json FROM channel_state"):
        states.setdefault(scid, {})[name] = loads(text)
    return states


def save_state_updates(conn: sqlite3.Connection, updates: dict[str, dict[str, Any]],
                       at_s: float) -> None:
    """Merges {scid: {name: value}} into stored state in the caller's transaction; a None
    value deletes that variable. Raises ValueError (before any write) for non-JSON values."""
    upserts, deletes = [], []
    for scid, names in updates.items():
        for name, value in names.items():
            if value is None:
                deletes.append((scid, name))
            else:
                upserts.append((scid, name, dumps(value), at_s))
    conn.executemany(
        "INSERT INTO channel_state (scid, name, value_json, updated_s) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (scid, name) DO UPDATE SET value_json = excluded.value_json, "
        "updated_s = excluded.updated_s", upserts)
    conn.executemany("DELETE FROM channel_state WHERE scid = ? AND name = ?", deletes)


# --- runtime param overrides (revenue-config)

def check_override(name: Any, value: Any) -> None:
    """Raises ValueError unless name is a non-empty str and value a JSON scalar
    (bool, int, finite float or str)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"override name must be a non-empty string, not {name!r}")
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"override {name}: {value!r} is not a bool, number or string")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"override {name}: {value!r} is not finite")


def get_overrides(conn: sqlite3.Connection) -> dict[str, Any]:
    """Returns name -> value of every stored override."""
    return {name: loads(text) for name, text in
            conn.execute("SELECT name, value_json FROM param_overrides ORDER BY name")}


def set_override(conn: sqlite3.Connection, name: str, value: Any, at_s: float) -> Any:
    """Upserts one override in the caller's transaction; returns the value read back."""
    check_override(name, value)
    conn.execute(
        "INSERT INTO param_overrides (name, value_json, updated_s) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value_json = excluded.value_json, "
        "updated_s = excluded.updated_s", (name, dumps(value), at_s))
    # Read back rather than echo the argument: the caller reports what is really stored
    # (a value that did not stick is seen at once, here, for every caller).
    row = conn.execute("SELECT value_json FROM param_overrides WHERE name = ?", (name,)).fetchone()
    return loads(row[0])


def reset_override(conn: sqlite3.Connection, name: str | None) -> list[str]:
    """Deletes one override (or all with None) in the caller's transaction; returns the
    names removed, sorted."""
    if name is None:
        rows = conn.execute("DELETE FROM param_overrides RETURNING name").fetchall()
    else:
        rows = conn.execute("DELETE FROM param_overrides WHERE name = ? RETURNING name",
                            (name,)).fetchall()
    return sorted(r[0] for r in rows)


# --- meta

def get_meta(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    """Returns the stored value of key, or default when absent."""
    row = conn.execute("SELECT value_json FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else loads(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Stores a JSON value under key (one statement, atomic by itself)."""
    conn.execute("INSERT INTO meta (key, value_json) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json",
                 (key, dumps(value)))
