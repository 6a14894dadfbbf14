"""SQL for the vault tables (schema `vault`, file ext_vault.sqlite3)."""

from __future__ import annotations

import json
import time

from lnbits.db import Database

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


async def create_settings(operator_wallet: str, service_user: str, tiers: dict) -> None:
    await db.execute("INSERT INTO vault.settings (id, operator_wallet, service_user, tiers, created_at) "
                     "VALUES (1, :op, :su, :tiers, :at)",
                     {"op": operator_wallet, "su": service_user, "tiers": json.dumps(tiers), "at": now_s()})


async def set_tiers(tiers: dict) -> None:
    await db.execute("UPDATE vault.settings SET tiers = :tiers WHERE id = 1", {"tiers": json.dumps(tiers)})


async def get_account(investor_wallet: str) -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.accounts WHERE investor_wallet = :w", {"w": investor_wallet})
    return dict(row) if row else None


async def create_account(investor_wallet: str, vault_wallet: str) -> None:
    await db.execute("INSERT INTO vault.accounts (investor_wallet, vault_wallet, created_at) VALUES (:i, :v, :at)",
                     {"i": investor_wallet, "v": vault_wallet, "at": now_s()})


async def is_vault_wallet(wallet_id: str) -> bool:
    row = await db.fetchone("SELECT 1 AS x FROM vault.accounts WHERE vault_wallet = :w", {"w": wallet_id})
    return bool(row)


async def insert_lot(lot: dict) -> None:
    await db.execute("INSERT INTO vault.lots (id, investor_wallet, tier, amount_msat, locked_until, "
                     "status, payment_hash, created_at) VALUES (:id, :investor_wallet, :tier, :amount_msat, "
                     ":locked_until, :status, :payment_hash, :created_at)", lot)


async def set_lot_status(lot_id: str, status: str) -> None:
    await db.execute("UPDATE vault.lots SET status = :s WHERE id = :id", {"s": status, "id": lot_id})


async def lots(investor_wallet: str | None = None, status: str = "active") -> list[dict]:
    where, values = "status = :s", {"s": status}
    if investor_wallet is not None:
        where += " AND investor_wallet = :w"
        values["w"] = investor_wallet
    rows = await db.fetchall(f"SELECT * FROM vault.lots WHERE {where} ORDER BY created_at, id", values)
    return [dict(r) for r in rows]


async def insert_withdrawal(w: dict) -> None:
    await db.execute("INSERT INTO vault.withdrawals (id, seq, investor_wallet, amount_msat, status, requested_at) "
                     "VALUES (:id, :seq, :investor_wallet, :amount_msat, :status, :requested_at)",
                     {**w, "seq": time.time_ns() // 1000})


async def update_withdrawal(wid: str, **fields) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    await db.execute(f"UPDATE vault.withdrawals SET {sets} WHERE id = :id", {**fields, "id": wid})


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
    await db.execute("DELETE FROM vault.solvency WHERE id = 1")
    await db.execute("INSERT INTO vault.solvency (id, physical_msat, liabilities_msat, max_ratio, reported_at) "
                     "VALUES (1, :p, :l, :r, :at)", {"p": physical_msat, "l": liabilities, "r": max_ratio,
                                                      "at": now_s()})


async def get_payout(period_key: str, investor_wallet: str) -> dict | None:
    row = await db.fetchone("SELECT * FROM vault.payouts WHERE period_key = :k AND investor_wallet = :w",
                            {"k": period_key, "w": investor_wallet})
    return dict(row) if row else None


async def insert_payout(p: dict) -> None:
    await db.execute("INSERT INTO vault.payouts (period_key, investor_wallet, amount_msat, status, bolt11, "
                     "payment_hash, created_at) VALUES (:period_key, :investor_wallet, :amount_msat, 'pending', "
                     ":bolt11, :payment_hash, :created_at)", p)


async def mark_payout_paid(period_key: str, investor_wallet: str) -> None:
    await db.execute("UPDATE vault.payouts SET status = 'paid', paid_at = :at "
                     "WHERE period_key = :k AND investor_wallet = :w",
                     {"at": now_s(), "k": period_key, "w": investor_wallet})
