"""The store's schema as an ordered list of migrations, applied at open in one transaction.

`PRAGMA user_version` holds the number of the last migration applied; `schema_migrations`
logs when each ran. A migration is a tuple of SQL statements (or a function of the
connection, for data moves); never edit a released one — append a new one. Opening a
database written by a newer revops (user_version above the last known) raises rather than
guessing at a schema it does not know.

docs/store.md describes every table.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Callable, Sequence, Union

from revops.store.db import transaction
from revops.store.intents import SCHEMA as _FEE_INTENTS_SCHEMA
from revops.store.price import SCHEMA as _PRICE_SCHEMA
from revops.store.rebalance import SCHEMA as _REBALANCE_SCHEMA

Step = Union[Sequence[str], Callable[[sqlite3.Connection], None]]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer revops than this one."""


_V1_FORWARDS = (
    # One row per forward (incoming HTLC). status: 0 offered, 1 settled, 2 failed,
    # 3 local_failed. t, hold_s and kind are derived at write time with flow.py's rules so
    # the SQL aggregates need no per-row logic: t = resolved_time or received_time;
    # hold_s = resolved_time - received_time for settled/failed with both times, else NULL;
    # kind: 0 offered, 1 settled, 2 failed downstream, 3 local_failed for liquidity (or any
    # other cause), 4 local_failed for policy (failcodes 4107-4110).
    """CREATE TABLE forwards (
        id INTEGER PRIMARY KEY,
        created_index INTEGER,
        updated_index INTEGER,
        in_channel TEXT NOT NULL,
        in_htlc_id INTEGER,
        out_channel TEXT,
        out_htlc_id INTEGER,
        in_msat INTEGER,
        out_msat INTEGER,
        fee_msat INTEGER,
        status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),
        failcode INTEGER,
        received_time REAL,
        resolved_time REAL,
        t REAL NOT NULL,
        hold_s REAL,
        kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 4)
    )""",
    # The three identity keys (see forwards.py).
    "CREATE UNIQUE INDEX forwards_htlc ON forwards(in_channel, in_htlc_id)",
    "CREATE INDEX forwards_created ON forwards(created_index)",
    "CREATE INDEX forwards_received ON forwards(in_channel, received_time)",
    # Covering indexes for channel_flows, one per direction: each scan reads only the index,
    # already in GROUP BY order, so no table lookups and no sort (4 s -> 0.6 s at 1M rows).
    """CREATE INDEX forwards_out ON forwards(out_channel, kind, t, out_msat, fee_msat, hold_s)
        WHERE kind != 0 AND out_channel IS NOT NULL""",
    """CREATE INDEX forwards_in ON forwards(in_channel, kind, t, in_msat, fee_msat)
        WHERE kind != 0""",
    # Latest settled forward per channel and direction, kept across pruning (has_forwarded).
    """CREATE TABLE channel_last (
        scid TEXT PRIMARY KEY,
        last_out_s REAL,
        last_in_s REAL
    ) WITHOUT ROWID""",
    # Backfill cursor (highest listforwards indexes ingested) and the prune horizon:
    # forwards older than horizon_s were rolled into forward_daily and are not re-ingested.
    """CREATE TABLE forward_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        created_index INTEGER NOT NULL DEFAULT 0,
        updated_index INTEGER NOT NULL DEFAULT 0,
        horizon_s REAL NOT NULL DEFAULT 0
    )""",
    "INSERT INTO forward_cursor (id) VALUES (1)",
    # Daily per-channel rollups of pruned forwards, both directions (with the outgoing side
    # only, the fees a channel sourced would vanish after pruning). Columns mirror WindowFlow.
    """CREATE TABLE forward_daily (
        day TEXT NOT NULL,
        scid TEXT NOT NULL,
        out_count INTEGER NOT NULL DEFAULT 0,
        out_msat INTEGER NOT NULL DEFAULT 0,
        fees_msat INTEGER NOT NULL DEFAULT 0,
        in_count INTEGER NOT NULL DEFAULT 0,
        in_msat INTEGER NOT NULL DEFAULT 0,
        sourced_fees_msat INTEGER NOT NULL DEFAULT 0,
        out_failed_liquidity INTEGER NOT NULL DEFAULT 0,
        out_failed_policy INTEGER NOT NULL DEFAULT 0,
        out_failed_remote INTEGER NOT NULL DEFAULT 0,
        in_failed INTEGER NOT NULL DEFAULT 0,
        hold_count INTEGER NOT NULL DEFAULT 0,
        hold_sum_s REAL NOT NULL DEFAULT 0,
        hold_sumsq_s2 REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (day, scid)
    ) WITHOUT ROWID""",
    "CREATE INDEX forward_daily_scid ON forward_daily(scid, day)",
)

_V1_STATE = (
    """CREATE TABLE channel_state (
        scid TEXT NOT NULL,
        name TEXT NOT NULL,
        value_json TEXT NOT NULL,
        updated_s REAL NOT NULL,
        PRIMARY KEY (scid, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE param_overrides (
        name TEXT PRIMARY KEY,
        value_json TEXT NOT NULL,
        updated_s REAL NOT NULL
    )""",
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
    )""",
)

_V1_JOURNAL = (
    # One batch per journal() call: the policy identity is stored once per cycle, not per row.
    """CREATE TABLE journal_batches (
        id INTEGER PRIMARY KEY,
        at_s REAL NOT NULL,
        cycle_id TEXT NOT NULL,
        policy_name TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_digest TEXT NOT NULL,
        dry_run INTEGER NOT NULL
    )""",
    "CREATE INDEX journal_batches_at ON journal_batches(at_s)",
    """CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES journal_batches(id) ON DELETE CASCADE,
        scid TEXT,
        peer_id TEXT,
        action TEXT,
        fee_ppm INTEGER,
        old_fee_ppm INTEGER,
        stage TEXT,
        rule TEXT,
        broadcast INTEGER,
        suppressed_by TEXT,
        applied INTEGER NOT NULL,
        error TEXT,
        why TEXT,
        extra_json TEXT
    )""",
    "CREATE INDEX decisions_scid ON decisions(scid, id)",
    "CREATE INDEX decisions_batch ON decisions(batch_id)",
    # connect/disconnect notifications (and startup snapshots), for uptime.
    """CREATE TABLE peer_events (
        id INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        at_s REAL NOT NULL,
        connected INTEGER NOT NULL
    )""",
    "CREATE INDEX peer_events_peer ON peer_events(peer_id, at_s)",
    "CREATE INDEX peer_events_at ON peer_events(at_s)",
)

_V4_FLOW_INDEX = (
    # Forwards by time, for the incremental channel_flows (flowcache.py): a step from a to b
    # reads only the rows whose age crosses a window bound in between (~1,400 of 1M rows for
    # 30 minutes) where the covering indexes, ordered by channel first, would be read whole.
    # Offered rows count for nothing there, so they are left out of the index.
    "CREATE INDEX forwards_t ON forwards(t) WHERE kind != 0",
)

_V5_HISTORY = (
    # Applied fee changes by batch, for the 24 h counts (store/history.py): the day's batches
    # come from journal_batches_at, then only their applied rows, never the day's holds.
    "CREATE INDEX decisions_applied ON decisions(batch_id, scid) WHERE applied = 1",
    # Latest applied fee change per channel, written with each journal batch and kept across
    # journal pruning (like channel_last for forwards), filled from the journal kept so far.
    """CREATE TABLE channel_fee_last (
        scid TEXT PRIMARY KEY,
        last_change_s REAL NOT NULL
    ) WITHOUT ROWID""",
    """INSERT INTO channel_fee_last (scid, last_change_s)
        SELECT d.scid, max(b.at_s) FROM decisions d JOIN journal_batches b ON b.id = d.batch_id
        WHERE d.applied = 1 AND d.scid IS NOT NULL GROUP BY d.scid""",
    # The opening feerate each fee cycle saw; rows older than 14 days are deleted on insert.
    """CREATE TABLE feerate_samples (
        at_s REAL PRIMARY KEY,
        opening_perkw INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

# Liquidity Dividend System (revops/lds/): hourly balance snapshots for TWAB, solvency checks,
# and payout periods whose lines are written before anything is paid.
_V6_LDS = (
    """CREATE TABLE lds_snapshots (
        key TEXT NOT NULL,
        at_s REAL NOT NULL,
        wallet_id TEXT,
        tier TEXT,
        balance_msat INTEGER NOT NULL,
        PRIMARY KEY (key, at_s)
    ) WITHOUT ROWID""",
    "CREATE INDEX lds_snapshots_at ON lds_snapshots(at_s)",
    """CREATE TABLE lds_solvency (
        at_s REAL PRIMARY KEY,
        liabilities_msat INTEGER NOT NULL,
        physical_msat INTEGER NOT NULL,
        ratio REAL,
        halted INTEGER NOT NULL,
        detail TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE lds_periods (
        period_key TEXT PRIMARY KEY,
        start_s REAL NOT NULL,
        end_s REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('recorded', 'paid')),
        net_msat INTEGER NOT NULL,
        deficit_in_msat INTEGER NOT NULL,
        deficit_out_msat INTEGER NOT NULL CHECK (deficit_out_msat >= 0),
        distributable_msat INTEGER NOT NULL,
        investors_msat INTEGER NOT NULL,
        detail TEXT NOT NULL,
        recorded_at_s REAL NOT NULL,
        paid_at_s REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE lds_payout_lines (
        period_key TEXT NOT NULL REFERENCES lds_periods(period_key),
        wallet_id TEXT NOT NULL,
        amount_msat INTEGER NOT NULL CHECK (amount_msat > 0),
        twab_msat INTEGER NOT NULL,
        share REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('recorded', 'paid')),
        payment_hash TEXT,
        PRIMARY KEY (period_key, wallet_id)
    ) WITHOUT ROWID""",
)

#: (version, name, step), in order. Versions are 1, 2, 3, ... without gaps.
# Issue #6: the rebalancer's jobs table (schema in store/rebalance.py, next to its SQL).
_V6_REBALANCE = _REBALANCE_SCHEMA

MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
    (1, "forwards, rollups and cursor", _V1_FORWARDS),
    (2, "channel state, overrides, meta", _V1_STATE),
    (3, "decision journal and peer events", _V1_JOURNAL),
    (4, "forwards by time for incremental channel_flows", _V4_FLOW_INDEX),
    (5, "fee-change and feerate history", _V5_HISTORY),
    (6, "liquidity dividend system", _V6_LDS),
    (7, "rebalance jobs, reservations and measured spend", _V6_REBALANCE),
    # Issue #12: journal before act (schema in store/intents.py, next to its SQL).
    (8, "fee intents journaled before setchannel", _FEE_INTENTS_SCHEMA),
    # Issue #14: the price learner's per-channel state (schema in store/price.py).
    (9, "price learner state", _PRICE_SCHEMA),
)

LATEST = MIGRATIONS[-1][0]

_LOG_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_s REAL NOT NULL
)"""


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str, Step]] = MIGRATIONS
            ) -> list[int]:
    """Applies the migrations the database lacks, all in one transaction; returns their versions.

    Raises SchemaTooNew if the database is ahead of `migrations`; any failing step rolls back
    every step of this call, leaving the previous schema intact.
    """
    applied: list[int] = []
    with transaction(conn):
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        latest = migrations[-1][0] if migrations else 0
        if current > latest:
            raise SchemaTooNew(f"database schema version {current} is newer than this revops "
                               f"({latest}); upgrade revops or use another database")
        conn.execute(_LOG_TABLE)
        for version, name, step in migrations:
            if version <= current:
                continue
            if callable(step):
                step(conn)
            else:
                for sql in step:
                    conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name, applied_s) VALUES (?, ?, ?)",
                         (version, name, time.time()))
            # PRAGMA arguments cannot be bound; version is an int from our own table.
            conn.execute(f"PRAGMA user_version = {int(version)}")
            applied.append(version)
    return applied
