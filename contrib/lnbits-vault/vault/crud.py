"""SQL for the vault tables (schema `vault`, file ext_vault.sqlite3).

LNbits may run several workers on one database, so every change of a money row's state is one
conditional statement (`... WHERE status = 'queued'`) whose row count says whether this worker won,
or an INSERT that a unique key refuses to a second writer. Nothing relies on an in-process lock."""

from __future__ import annotations

import json
import time

from lnbits.db import Database
from sqlalchemy.exc import IntegrityError

db = Database("ext_vault")


def now_s() -> int:
    return int(time.time())


async def get_settings() -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.settings WHERE id = 1")
    if not row:
        return None
    out = dict(row)
    out["tiers"] = json.loads(out["tiers"])
    return out


async def create_settings(operator_wallet: str, service_user: str, tiers: dict, how: str) -> bool:
    """Binds the vault to its operator wallet; False when another worker set it up first."""
    try:
        await db.execute("INSERT INTO vault.settings (id, operator_wallet, service_user, tiers, created_at) "
                         "VALUES (1, :op, :su, :tiers, :at)",
                         {"op": operator_wallet, "su": service_user, "tiers": json.dumps(tiers), "at": now_s()})
    except IntegrityError:
        return False
    await log_operator(None, operator_wallet, how)
    return True


async def set_tiers(tiers: dict) -> None:
    await db.execute("UPDATE vault.settings SET tiers = :tiers WHERE id = 1", {"tiers": json.dumps(tiers)})


async def set_pending_operator(operator_wallet: str, to_wallet: str | None) -> bool:
    result = await db.execute("UPDATE vault.settings SET pending_operator = :to WHERE id = 1 AND operator_wallet = :op",
                              {"to": to_wallet, "op": operator_wallet})
    return result.rowcount == 1


async def move_operator(from_wallet: str, to_wallet: str, how: str, pending: str | None = None) -> bool:
    """Makes to_wallet the operator if from_wallet still is (and, for an accepted transfer, it is
    still the one proposed); one conditional UPDATE, so two racing transfers cannot both win."""
    where = "id = 1 AND operator_wallet = :from"
    if pending is not None:
        where += " AND pending_operator = :pending"
    result = await db.execute(f"UPDATE vault.settings SET operator_wallet = :to, pending_operator = NULL "
                              f"WHERE {where}", {"to": to_wallet, "from": from_wallet, "pending": pending})
    if result.rowcount != 1:
        return False
    await log_operator(from_wallet, to_wallet, how)
    return True


async def log_operator(from_wallet: str | None, to_wallet: str, how: str) -> None:
    await db.execute("INSERT INTO vault.operator_log (seq, from_wallet, to_wallet, how, at) "
                     "VALUES (:seq, :f, :t, :how, :at)",
                     {"seq": time.time_ns() // 1000, "f": from_wallet, "t": to_wallet, "how": how, "at": now_s()})


async def operator_log() -> list[dict]:
    rows = await db.fetchall("SELECT from_wallet, to_wallet, how, at FROM vault.operator_log ORDER BY seq")
    return [dict(r) for r in rows]


async def get_account(investor_wallet: str) -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.accounts WHERE investor_wallet = :w", {"w": investor_wallet})
    return dict(row) if row else None


async def create_account(investor_wallet: str, vault_wallet: str) -> bool:
    """False when another worker created this investor's account first (the primary key refuses)."""
    try:
        await db.execute("INSERT INTO vault.accounts (investor_wallet, vault_wallet, created_at) "
                         "VALUES (:i, :v, :at)", {"i": investor_wallet, "v": vault_wallet, "at": now_s()})
    except IntegrityError:
        return False
    return True


async def is_vault_wallet(wallet_id: str) -> bool:
    row = await db.fetchone("SELECT 1 AS x FROM vault.accounts WHERE vault_wallet = :w", {"w": wallet_id})
    return bool(row)


async def insert_lot(lot: dict) -> None:
    await db.execute("INSERT INTO vault.lots (id, investor_wallet, tier, amount_msat, locked_until, "
                     "status, payment_hash, created_at) VALUES (:id, :investor_wallet, :tier, :amount_msat, "
                     ":locked_until, :status, :payment_hash, :created_at)", lot)


async def set_lot_status(lot_id: str, status: str, expected: tuple[str, ...]) -> bool:
    """Moves a lot to `status` only from one of the `expected` states; True if this call did it."""
    marks = ", ".join(f":e{i}" for i in range(len(expected)))
    result = await db.execute(f"UPDATE vault.lots SET status = :s WHERE id = :id AND status IN ({marks})",
                              {"s": status, "id": lot_id, **{f"e{i}": e for i, e in enumerate(expected)}})
    return result.rowcount == 1


async def lots(investor_wallet: str | None = None, status: str = "active") -> list[dict]:
    where, values = "status = :s", {"s": status}
    if investor_wallet is not None:
        where += " AND investor_wallet = :w"
        values["w"] = investor_wallet
    rows = await db.fetchall(f"SELECT * FROM vault.lots WHERE {where} ORDER BY created_at, id", values)
    return [dict(r) for r in rows]


async def insert_withdrawal(w: dict) -> bool:
    """Writes a withdrawal as the investor's n-th; False when another request took number n first
    (UNIQUE(investor_wallet, n)), i.e. this one was checked against a stale position."""
    try:
        await db.execute("INSERT INTO vault.withdrawals (id, seq, n, investor_wallet, amount_msat, status, bolt11, "
                         "payment_hash, requested_at) VALUES (:id, :seq, :n, :investor_wallet, :amount_msat, "
                         ":status, :bolt11, :payment_hash, :requested_at)", {**w, "seq": time.time_ns() // 1000})
    except IntegrityError:
        return False
    return True


async def set_withdrawal_invoice(wid: str, bolt11: str, payment_hash: str) -> None:
    """Gives an invoice to a withdrawal that has none (rows from before m002); the first one stays."""
    await db.execute("UPDATE vault.withdrawals SET bolt11 = :b, payment_hash = :h WHERE id = :id AND bolt11 IS NULL",
                     {"b": bolt11, "h": payment_hash, "id": wid})


async def get_withdrawal(wid: str) -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.withdrawals WHERE id = :id", {"id": wid})
    return dict(row) if row else None


async def claim_withdrawal(wid: str, claim: str) -> bool:
    """queued -> paying for this payer only: of two workers that read the row as queued, one wins."""
    result = await db.execute("UPDATE vault.withdrawals SET status = 'paying', claim = :c, claimed_at = :at "
                              "WHERE id = :id AND status = 'queued'", {"c": claim, "at": now_s(), "id": wid})
    return result.rowcount == 1


async def release_withdrawal(wid: str, claim: str) -> bool:
    """paying -> queued, only by the claim that holds it (its payer, or reconcile after the lease)."""
    result = await db.execute("UPDATE vault.withdrawals SET status = 'queued', claim = NULL, claimed_at = NULL "
                              "WHERE id = :id AND status = 'paying' AND claim = :c", {"c": claim, "id": wid})
    return result.rowcount == 1


async def mark_withdrawal_paid(wid: str) -> None:
    """Its invoice is paid: that is the truth whoever holds the claim."""
    await db.execute("UPDATE vault.withdrawals SET status = 'paid', paid_at = :at "
                     "WHERE id = :id AND status IN ('queued', 'paying')", {"at": now_s(), "id": wid})


async def withdrawals(investor_wallet: str | None = None, status: str | None = None) -> list[dict]:
    clauses, values = [], {}
    if investor_wallet is not None:
        clauses.append("investor_wallet = :w")
        values["w"] = investor_wallet
    if status is not None:
        clauses.append("status = :s")
        values["s"] = status
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = await db.fetchall(f"SELECT * FROM vault.withdrawals {where} ORDER BY seq", values)
    return [dict(r) for r in rows]


async def get_solvency() -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.solvency WHERE id = 1")
    return dict(row) if row else None


async def set_solvency(physical_msat: int, liabilities: int, max_ratio: float) -> None:
    # one statement: a delete-then-insert lets two workers' reports collide on the key
    await db.execute("INSERT INTO vault.solvency (id, physical_msat, liabilities_msat, max_ratio, reported_at) "
                     "VALUES (1, :p, :l, :r, :at) ON CONFLICT (id) DO UPDATE SET physical_msat = :p, "
                     "liabilities_msat = :l, max_ratio = :r, reported_at = :at",
                     {"p": physical_msat, "l": liabilities, "r": max_ratio, "at": now_s()})


async def get_payout(period_key: str, investor_wallet: str) -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.payouts WHERE period_key = :k AND investor_wallet = :w",
                            {"k": period_key, "w": investor_wallet})
    return dict(row) if row else None


async def insert_payout(p: dict) -> bool:
    """False when another worker recorded this (period, wallet) line first (primary key)."""
    try:
        await db.execute("INSERT INTO vault.payouts (period_key, investor_wallet, amount_msat, status, bolt11, "
                         "payment_hash, created_at) VALUES (:period_key, :investor_wallet, :amount_msat, "
                         "'pending', :bolt11, :payment_hash, :created_at)", p)
    except IntegrityError:
        return False
    return True


async def claim_payout(period_key: str, investor_wallet: str, claim: str, stale_before: int) -> bool:
    """pending (or a paying claim older than the lease) -> paying, for one payer only."""
    result = await db.execute(
        "UPDATE vault.payouts SET status = 'paying', claim = :c, claimed_at = :at "
        "WHERE period_key = :k AND investor_wallet = :w "
        "AND (status = 'pending' OR (status = 'paying' AND claimed_at < :stale))",
        {"c": claim, "at": now_s(), "k": period_key, "w": investor_wallet, "stale": stale_before})
    return result.rowcount == 1


async def release_payout(period_key: str, investor_wallet: str, claim: str) -> None:
    await db.execute("UPDATE vault.payouts SET status = 'pending', claim = NULL, claimed_at = NULL "
                     "WHERE period_key = :k AND investor_wallet = :w AND status = 'paying' AND claim = :c",
                     {"k": period_key, "w": investor_wallet, "c": claim})


async def mark_payout_paid(period_key: str, investor_wallet: str) -> None:
    await db.execute("UPDATE vault.payouts SET status = 'paid', paid_at = :at "
                     "WHERE period_key = :k AND investor_wallet = :w",
                     {"at": now_s(), "k": period_key, "w": investor_wallet})
