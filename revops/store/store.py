"""`Store`: the plugin's SQLite database behind one object, safe to call from any thread.

Each public method runs on the calling thread's own connection (db.Connections) and, when it
writes more than one row, inside one transaction: a crash or an exception mid-call leaves
the database as it was before the call. The modules next to this one hold the SQL; this file
only opens the database and picks connection and transaction for each call.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from revops.facts.flow import ChannelFlow
from revops.facts.history import History
from revops.store import forwards as fw
from revops.store import intents as fi
from revops.store import journal as jr
from revops.store import history as hist
from revops.store import kv, peers, rollup
from revops.store.db import Connections, transaction
from revops.store.flowcache import FlowCache
from revops.store.migrations import migrate
from revops.store.price import PriceStore
from revops.store.rebalance import RebalanceStore


class Store(RebalanceStore, PriceStore):
    """The plugin's persistent state: forwards and their rollups, per-channel policy state,
    param overrides, the decision journal, peer connection history, feerate samples and small
    meta values."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conns = Connections(self.path)
        self._flows = FlowCache()
        try:
            conn = self._conns.get()
            # WAL is a property of the file (it persists); readers then never block the writer.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: cannot use WAL (journal_mode={mode})")
            migrate(conn)
        except BaseException:
            self._conns.close_all()
            raise

    def _conn(self) -> sqlite3.Connection:
        return self._conns.get()

    def close(self) -> None:
        """Closes every thread's connection; the store is unusable afterwards."""
        self._conns.close_all()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- forwards

    def ingest_forward_event(self, event: dict) -> bool:
        """Stores one forward_event notification payload; returns True if stored data changed.

        Accepts the payload itself or the notification params ({"forward_event": {...}}).
        A malformed payload is logged and ignored (returns False).
        """
        return self.ingest_forward_events([event]) > 0

    def ingest_forward_events(self, events: list[dict]) -> int:
        """Stores forward_event payloads in one transaction, in order; returns how many
        changed stored data.

        The same as ingest_forward_event on each in turn (payloads or notification params,
        malformed ones logged and skipped), but one commit for all: several times faster.
        """
        return self._ingest([_payload(e) for e in events], advance_cursor=False)

    def ingest_forwards(self, forwards: list[dict], cursor_floor: dict | None = None) -> int:
        """Upserts listforwards entries (a backfill page) in one transaction and advances the
        backfill cursor (at least to `cursor_floor`'s created_index / updated_index, the
        page's rows that were dropped before they got here); returns how many rows changed."""
        return self._ingest(forwards, advance_cursor=True, cursor_floor=cursor_floor)

    def _ingest(self, forwards: list[dict], advance_cursor: bool, cursor_floor: dict | None = None) -> int:
        """Upserts forward dicts in one transaction whose commit also updates the flow cache;
        returns how many rows changed."""
        conn = self._conn()
        changes: list = []
        with transaction(conn, commit=lambda: self._flows.commit(conn, changes)):
            return fw.ingest(conn, forwards, advance_cursor, changes, cursor_floor)

    def forward_index(self) -> tuple[int, int]:
        """Returns (created_index, updated_index): the highest listforwards indexes ingested
        by ingest_forwards, 0 when none. Live events do not move it (see forwards.ingest)."""
        return fw.cursor(self._conn())

    def channel_flows(self, now_s: float) -> dict[str, ChannelFlow]:
        """Returns scid -> ChannelFlow as of now_s, equal to flows_from_forwards over the
        stored forwards (plus last times of pruned ones).

        Incremental: the previous call's result moved forward to now_s, with the writes
        since applied (flowcache.py); a full scan when that is not possible.
        """
        return self._flows.flows(self._conn(), now_s)

    def invalidate_flows(self) -> None:
        """Makes the next channel_flows call a full computation (benchmarks; a database
        written by another process)."""
        self._flows.invalidate()

    def forward_count(self) -> int:
        """Returns how many forwards are stored (any status, rolled-up ones excluded)."""
        return self._conn().execute("SELECT count(*) FROM forwards").fetchone()[0]

    def rollup_and_prune(self, now_s: float, keep_days: float) -> dict:
        """Rolls forwards older than keep_days (at least 30) into daily rollups and deletes
        them; returns {"rolled": resolved forwards rolled, "pruned": rows deleted,
        "cutoff_s": t}.

        Works in chunks of rollup.CHUNK_ROWS, one transaction each: every chunk's rollup and
        delete commit together, so a crash between chunks loses nothing and counts nothing
        twice, and the next call finishes the job.
        """
        cutoff = rollup.prune_cutoff(now_s, keep_days)
        rolled = pruned = 0
        conn = self._conn()
        while True:
            r = p = 0
            # Deleted forwards may still count in the cached flows: the commit drops the
            # cache with them (the lambda reads p when it runs, after the chunk).
            with transaction(conn, commit=lambda: self._flows.commit(conn, [], p > 0)):
                r, p = rollup.rollup_chunk(conn, cutoff)
            rolled, pruned = rolled + r, pruned + p
            if p < rollup.CHUNK_ROWS:
                return {"rolled": rolled, "pruned": pruned, "cutoff_s": cutoff}

    def daily_history(self, scid: str | None = None) -> list[dict]:
        """Returns per (day, scid) totals, rollups plus not-yet-rolled forwards, by day."""
        return rollup.daily_history(self._conn(), scid)

    def vacuum_if_worth(self, min_free_ratio: float = 0.2, min_free_bytes: int = 8 << 20) -> bool:
        """VACUUMs if free pages are over both thresholds; returns whether it did."""
        return rollup.vacuum_if_worth(self._conn(), min_free_ratio, min_free_bytes)

    # --- per-channel state

    def load_states(self) -> dict[str, dict]:
        """Returns scid -> {name: value} of the policy's stored state variables."""
        return kv.load_states(self._conn())

    def save_state_updates(self, updates: dict[str, dict], at_s: float) -> None:
        """Merges {scid: {name: value}} into the stored state in one transaction (None deletes)."""
        with transaction(self._conn()) as conn:
            kv.save_state_updates(conn, updates, at_s)

    # --- param overrides

    def get_overrides(self) -> dict[str, object]:
        """Returns name -> value of the runtime param overrides."""
        return kv.get_overrides(self._conn())

    def set_override(self, name: str, value: object, at_s: float) -> object:
        """Stores an override (bool, int, finite float or str); returns the value read back."""
        with transaction(self._conn()) as conn:
            return kv.set_override(conn, name, value, at_s)

    def reset_override(self, name: str | None = None) -> list[str]:
        """Removes one override, or all with None; returns the names removed."""
        with transaction(self._conn()) as conn:
            return kv.reset_override(conn, name)

    # --- decision journal

    def journal(self, records: list[dict], at_s: float, policy_name: str, policy_version: str,
                policy_digest: str, cycle_id: str, dry_run: bool) -> None:
        """Appends a cycle's decision records with the policy identity, and drops the cycle's
        fee intents (they are journaled now), in one transaction."""
        with transaction(self._conn()) as conn:
            jr.journal(conn, records, at_s, policy_name, policy_version, policy_digest,
                       cycle_id, dry_run)
            fi.drop_cycle(conn, cycle_id)

    # --- fee intents (journal before act; intents.py)

    def add_fee_intents(self, cycle_id: str, at_s: float, batch: dict,
                        items: list[tuple[dict, int | None, dict | None]]) -> list[int]:
        """Stores pending intents (record, chain fee, state updates) in one transaction synced
        to disk before it returns, so that they survive a crash or power loss right after;
        returns their ids."""
        if not items:
            return []
        conn = self._conn()
        # synchronous=FULL for this commit only: in WAL mode NORMAL may lose the last commits
        # on power loss, and these rows must exist before setchannel is called.
        conn.execute("PRAGMA synchronous = FULL")
        try:
            with transaction(conn):
                return fi.add(conn, cycle_id, at_s, batch, items)
        finally:
            conn.execute("PRAGMA synchronous = NORMAL")

    def finish_fee_intent(self, intent_id: int, applied: bool, error: str | None) -> None:
        """Marks an intent applied or failed once its setchannel answered."""
        fi.finish(self._conn(), intent_id, applied, error)

    def open_fee_intents(self) -> list[dict]:
        """Returns the intents no journal batch holds yet (left by a crash), oldest first."""
        return fi.open_intents(self._conn())

    def journal_fee_intents(self, batches: list[dict]) -> None:
        """Journals settled intents and deletes them, in one transaction. Each batch:
        {"records", "at_s", "cycle_id", "policy_name", "policy_version", "policy_digest",
        "dry_run", "intent_ids"}."""
        with transaction(self._conn()) as conn:
            for b in batches:
                jr.journal(conn, b["records"], b["at_s"], b["policy_name"], b["policy_version"],
                           b["policy_digest"], b["cycle_id"], b["dry_run"])
                fi.drop(conn, b["intent_ids"])

    def decisions(self, scid: str | None = None, limit: int = 50) -> list[dict]:
        """Returns up to limit decisions, newest first, each with at_s, cycle_id, policy
        name/version/digest and dry_run."""
        return jr.decisions(self._conn(), scid, limit)

    def prune_journal(self, now_s: float, keep_days: float) -> int:
        """Deletes decisions older than keep_days; returns how many."""
        with transaction(self._conn()) as conn:
            return jr.prune_journal(conn, now_s, keep_days)

    # --- peers

    def record_connection(self, peer_id: str, connected: bool, at_s: float) -> None:
        """Records a connect (True) or disconnect (False) of a peer at at_s."""
        peers.record_connection(self._conn(), peer_id, connected, at_s)

    def peer_uptime(self, now_s: float, window_s: float) -> dict[str, dict]:
        """Returns peer_id -> {"uptime_ratio", "disconnects", "connected", "known_s"} over the
        window; time before a peer's first event is unknown and left out (see peers.py)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return peers.peer_uptime(conn, now_s, window_s)
        finally:
            conn.execute("COMMIT")

    def prune_peer_events(self, now_s: float, keep_days: float) -> int:
        """Deletes peer events older than keep_days but each peer's last one; returns how many."""
        with transaction(self._conn()) as conn:
            return peers.prune_peer_events(conn, now_s, keep_days)

    # --- history (revops.facts.history)

    def record_feerate(self, at_s: float, opening_perkw: int) -> None:
        """Stores the opening feerate a fee cycle saw and drops samples older than 14 days,
        in one transaction."""
        with transaction(self._conn()) as conn:
            hist.record_feerate(conn, at_s, opening_perkw)

    def history(self, now_s: float, forward_sums: tuple | None = None) -> History:
        """Returns the History as of now_s (peer uptime over 7 d, applied fee changes, feerate
        samples of 7 d), read in one read transaction so its parts agree; `forward_sums`
        reuses the forward sums of a History read earlier in the same cycle (store/history.py)."""
        conn = self._conn()
        # the forward sums as of now_s come with the flows of now_s (flowcache.py), when read
        forward_sums = forward_sums or self._flows.pair_sums_at(now_s)
        conn.execute("BEGIN")
        try:
            return hist.history(conn, now_s, forward_sums)
        finally:
            conn.execute("COMMIT")

    def mark_watching(self, now_s: float) -> None:
        """Remembers when revops started watching this node's forwards (the first call wins):
        the flow windows cover no more than that (History.forwards_since_s)."""
        conn = self._conn()
        if kv.get_meta(conn, hist.WATCHING_SINCE_KEY) is None:
            kv.set_meta(conn, hist.WATCHING_SINCE_KEY, float(now_s))

    # --- meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """Returns the JSON value stored under key, default when absent."""
        return kv.get_meta(self._conn(), key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Stores a JSON value under key."""
        kv.set_meta(self._conn(), key, value)


def _payload(event: Any) -> Any:
    """Returns the forward_event payload of notification params, else event itself."""
    if isinstance(event, dict) and isinstance(event.get("forward_event"), dict):
        return event["forward_event"]
    return event
