"""Rebalance jobs, budget reservations and measured spend (table `rebalance_jobs`).

One row per sling job revops started. While the job runs, its row holds a *reservation*: the
most the job can spend (moved amount x maxppm). A reservation is taken in one write
transaction that first checks the rolling-24 h budget, so two cycles (or two processes) can
never both take the last of it. When the job ends, the row is settled with the fee sling and
lightningd measured (never maxppm x amount) and what it moved.

Why that bounds spend in every rolling 24 h window W: take the job settled in W that reserved
last (at r). Every other job with spend in W reserved before r and was then either running
(counted at its reservation, which bounds its spend) or settled after r - 24 h (counted at its
measured spend). So the check at r covered all of them: spend in W <= budget.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from revops.facts.flow import K_SETTLED
from revops.facts.payback import ChannelForward, Payback, Rebalance, account
from revops.facts.rebalance import COST_WINDOW_S, RebalanceHistory
from revops.store.db import transaction

DAY_S = 86_400
#: Outcomes of jobs revops ended for its own reasons: they say nothing about the channel.
ADMIN_OUTCOMES = ("startup", "shutdown", "wallet below reserve", "expired")

SCHEMA = (
    """CREATE TABLE rebalance_jobs (
        id INTEGER PRIMARY KEY,
        scid TEXT NOT NULL,
        peer_id TEXT NOT NULL,
        created_s REAL NOT NULL,
        ended_s REAL,
        state TEXT NOT NULL CHECK (state IN ('running', 'done')),
        amount_sat INTEGER NOT NULL,
        chunk_sat INTEGER NOT NULL,
        max_ppm INTEGER NOT NULL,
        reserved_msat INTEGER NOT NULL,
        spent_msat INTEGER,
        moved_msat INTEGER,
        outcome TEXT,
        candidates_json TEXT NOT NULL,
        baseline_json TEXT NOT NULL,
        plan_json TEXT NOT NULL
    )""",
    "CREATE INDEX rebalance_jobs_state ON rebalance_jobs (state)",
    "CREATE INDEX rebalance_jobs_ended ON rebalance_jobs (ended_s)",
)

_COLS = ("id", "scid", "peer_id", "created_s", "ended_s", "state", "amount_sat", "chunk_sat", "max_ppm",
         "reserved_msat", "spent_msat", "moved_msat", "outcome", "candidates_json", "baseline_json", "plan_json")


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(_COLS, r))
    d["candidates"] = json.loads(d.pop("candidates_json"))
    d["baseline"] = json.loads(d.pop("baseline_json"))
    d["plan"] = json.loads(d.pop("plan_json"))
    return d


def _used_msat(conn: sqlite3.Connection, now_s: float) -> tuple[int, int]:
    """(settled spend in (now - 24 h, now], outstanding reservations)."""
    spent = conn.execute("SELECT COALESCE(SUM(spent_msat), 0) FROM rebalance_jobs "
                         "WHERE state = 'done' AND ended_s > ?", (now_s - DAY_S,)).fetchone()[0]
    reserved = conn.execute("SELECT COALESCE(SUM(reserved_msat), 0) FROM rebalance_jobs "
                            "WHERE state = 'running'").fetchone()[0]
    return int(spent), int(reserved)


class RebalanceStore:
    """The rebalance part of `Store` (mixed in; uses its per-thread connection)."""

    def _conn(self) -> sqlite3.Connection:  # provided by Store
        raise NotImplementedError

    def rebalance_budget_used(self, now_s: float) -> tuple[int, int]:
        """(measured spend settled in the last 24 h, reserved by running jobs), msat."""
        return _used_msat(self._conn(), now_s)

    def reserve_rebalance(self, *, scid: str, peer_id: str, now_s: float, budget_msat: int, amount_sat: int,
                          chunk_sat: int, max_ppm: int, reserved_msat: int, candidates: list[str],
                          baseline: dict, plan: dict) -> int | None:
        """Records a job and its reservation if the budget allows, atomically; returns its id or None."""
        with transaction(self._conn()) as conn:
            if conn.execute("SELECT 1 FROM rebalance_jobs WHERE state = 'running' AND scid = ?",
                            (scid,)).fetchone():
                return None
            spent, reserved = _used_msat(conn, now_s)
            if reserved_msat <= 0 or spent + reserved + reserved_msat > budget_msat:
                return None
            cur = conn.execute(
                "INSERT INTO rebalance_jobs (scid, peer_id, created_s, state, amount_sat, chunk_sat, max_ppm, "
                "reserved_msat, candidates_json, baseline_json, plan_json) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (scid, peer_id, now_s, amount_sat, chunk_sat, max_ppm, reserved_msat, json.dumps(candidates),
                 json.dumps(baseline, sort_keys=True), json.dumps(plan, sort_keys=True, default=str)))
            return int(cur.lastrowid)

    def cancel_rebalance(self, job_id: int) -> None:
        """Drops the row of a job sling never accepted (nothing was spent)."""
        with transaction(self._conn()) as conn:
            conn.execute("DELETE FROM rebalance_jobs WHERE id = ? AND state = 'running'", (job_id,))

    def settle_rebalance(self, job_id: int, *, now_s: float, spent_msat: int, moved_msat: int,
                         outcome: str) -> bool:
        """Ends a running job with its measured spend; returns False if it was not running."""
        with transaction(self._conn()) as conn:
            cur = conn.execute("UPDATE rebalance_jobs SET state = 'done', ended_s = ?, spent_msat = ?, "
                               "moved_msat = ?, outcome = ? WHERE id = ? AND state = 'running'",
                               (now_s, max(0, int(spent_msat)), max(0, int(moved_msat)), outcome, job_id))
            return cur.rowcount == 1

    def running_rebalances(self) -> list[dict[str, Any]]:
        """Jobs revops started that are not settled yet, oldest first."""
        rows = self._conn().execute(f"SELECT {', '.join(_COLS)} FROM rebalance_jobs WHERE state = 'running' "
                                    "ORDER BY id").fetchall()
        return [_row(r) for r in rows]

    def rebalance_jobs(self, since_s: float, scid: str | None = None) -> list[dict[str, Any]]:
        """Jobs created since `since_s` (running or done), newest first."""
        sql = f"SELECT {', '.join(_COLS)} FROM rebalance_jobs WHERE created_s >= ?"
        args: list[Any] = [since_s]
        if scid is not None:
            sql += " AND scid = ?"
            args.append(scid)
        return [_row(r) for r in self._conn().execute(sql + " ORDER BY id DESC", args).fetchall()]

    def rebalance_spend_msat(self, since_s: float, until_s: float, scid: str | None = None) -> int:
        """Measured, settled rebalance fees in (since_s, until_s], for one target scid or all."""
        sql = ("SELECT COALESCE(SUM(spent_msat), 0) FROM rebalance_jobs "
               "WHERE state = 'done' AND ended_s > ? AND ended_s <= ?")
        args: list[Any] = [since_s, until_s]
        if scid is not None:
            sql += " AND scid = ?"
            args.append(scid)
        return int(self._conn().execute(sql, args).fetchone()[0])

    def rebalance_costs(self, since_s: float, until_s: float) -> dict[str, dict[str, Any]]:
        """Per target channel, the measured cost of rebalances that moved liquidity in (since, until]:
        {scid: {peer_id, jobs, moved_msat, fee_msat, fee_ppm}}."""
        rows = self._conn().execute(
            "SELECT scid, peer_id, COUNT(*), SUM(moved_msat), SUM(spent_msat) FROM rebalance_jobs "
            "WHERE state = 'done' AND moved_msat > 0 AND ended_s > ? AND ended_s <= ? GROUP BY scid, peer_id",
            (since_s, until_s)).fetchall()
        return {scid: {"peer_id": pid, "jobs": n, "moved_msat": int(moved), "fee_msat": int(fee),
                       "fee_ppm": fee * 1_000_000 / moved}
                for scid, pid, n, moved, fee in rows}

    def rebalance_account(self, now_s: float, since_s: float, scid: str | None = None) -> list[Payback]:
        """What each settled rebalance that moved liquidity (started since `since_s`) earned back,
        by facts/payback.py's account of its target channel's settled forwards; oldest first."""
        conn = self._conn()
        sql = ("SELECT id, scid, created_s, moved_msat, spent_msat, plan_json FROM rebalance_jobs "
               "WHERE state = 'done' AND moved_msat > 0 AND created_s >= ?")
        args: list[Any] = [since_s]
        if scid is not None:
            sql += " AND scid = ?"
            args.append(scid)
        by_scid: dict[str, list[Rebalance]] = {}
        for job_id, target, start, moved, spent, plan in conn.execute(sql, args).fetchall():
            local = json.loads(plan).get("local_msat")  # absent in jobs from before the account
            by_scid.setdefault(target, []).append(
                Rebalance(job_id, target, start, int(moved), int(spent), local if isinstance(local, int) else None))
        books: list[Payback] = []
        for target, jobs in by_scid.items():
            first = min(j.start_s for j in jobs)
            out = conn.execute("SELECT t, out_msat, fee_msat FROM forwards WHERE out_channel = ? AND kind = ? "
                               "AND t >= ?", (target, K_SETTLED, first)).fetchall()
            into = conn.execute("SELECT t, in_msat FROM forwards WHERE in_channel = ? AND kind = ? AND t >= ?",
                                (target, K_SETTLED, first)).fetchall()
            forwards = ([ChannelForward(t, False, a or 0, fee or 0) for t, a, fee in out]
                        + [ChannelForward(t, True, a or 0, 0) for t, a in into])
            books.extend(account(jobs, forwards, now_s))
        return sorted(books, key=lambda b: (b.start_s, b.job_id))

    def rebalance_history(self, now_s: float, budget_msat: int, backoff_base_s: float = 3600.0,
                          backoff_max_s: float = 7 * DAY_S, chunk_msat: int = 0) -> RebalanceHistory:
        """What the facts need: running jobs, failure streaks and backoff, learned costs, budget use."""
        conn = self._conn()
        spent, reserved = _used_msat(conn, now_s)
        active = frozenset(r[0] for r in conn.execute("SELECT scid FROM rebalance_jobs WHERE state = 'running'"))
        failures: dict[str, int] = {}
        backoff: dict[str, float] = {}
        cost: dict[str, int] = {}
        moved: dict[str, int] = {}
        peer_cost: dict[str, tuple[int, int]] = {}
        sources: dict[str, tuple[int, int]] = {}
        streak_done: set[str] = set()
        rows = conn.execute("SELECT scid, peer_id, ended_s, spent_msat, moved_msat, candidates_json, outcome "
                            "FROM rebalance_jobs WHERE state = 'done' ORDER BY ended_s DESC, id DESC").fetchall()
        for scid, pid, ended, spent_msat, moved_msat, cands, outcome in rows:
            recent = ended > now_s - COST_WINDOW_S
            if moved_msat == 0 and outcome.startswith(ADMIN_OUTCOMES):
                continue  # ended by us (restart, reserve), not a failure of the route or sources
            if scid not in streak_done and recent:  # newest first: failures since the last success
                if moved_msat > 0:
                    streak_done.add(scid)
                else:
                    n = failures[scid] = failures.get(scid, 0) + 1
                    if n == 1:
                        backoff[scid] = ended
            if recent:
                if moved_msat > 0:
                    cost[scid] = cost.get(scid, 0) + spent_msat
                    moved[scid] = moved.get(scid, 0) + moved_msat
                    f, a = peer_cost.get(pid, (0, 0))
                    peer_cost[pid] = (f + spent_msat, a + moved_msat)
                for c in json.loads(cands):
                    ok, bad = sources.get(c, (0, 0))
                    sources[c] = (ok + 1, bad) if moved_msat > 0 else (ok, bad + 1)
        payback: dict[str, tuple[int, int, int, int]] = {}
        for book in self.rebalance_account(now_s, now_s - COST_WINDOW_S):
            if book.accounted:
                n, e, m, p = payback.get(book.scid, (0, 0, 0, 0))
                payback[book.scid] = (n + 1, e + round(book.earned_msat), m + book.moved_msat, p + book.spent_msat)
        # Exponential backoff after the latest failure: base x 2^(failures - 1), capped.
        until = {scid: last + min(backoff_max_s, backoff_base_s * 2 ** (failures[scid] - 1))
                 for scid, last in backoff.items()}
        return RebalanceHistory(active_scids=active, failures=failures, backoff_until_s=until,
                                cost_30d_msat=cost, moved_30d_msat=moved, peer_cost=peer_cost,
                                source_outcomes=sources, budget_msat=int(budget_msat),
                                spent_24h_msat=spent, reserved_msat=reserved, chunk_msat=int(chunk_msat),
                                payback=payback)
