"""Vault money movements. Every one is recorded before it is paid and checked against LNbits'
own payment records on a retry, so a crash or a repeated request never pays twice."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timezone

from lnbits.core.crud import create_wallet, get_standalone_payment
from lnbits.core.services import create_invoice, pay_invoice
from lnbits.core.services.users import create_user_account_no_ckeck
from lnbits.exceptions import PaymentError

from . import crud
from .guard import allowed_spend

STALE_SOLVENCY_S = 1800  # a solvency report older than this cannot release money
PERIOD_KEY = re.compile(r"^lds:\d{4}-\d{2}-\d{2}$")
TIER_NAME = re.compile(r"^[a-z0-9_-]{1,20}$")
MAX_LOCK_S = 5 * 365 * 86400
money_lock = asyncio.Lock()  # one money movement at a time in this process


class VaultError(Exception):
    """A refused request: HTTP status and a one-line reason. No money has moved."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def whole_sats(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise VaultError(400, f"{name} must be a positive whole number of sats, got {value!r}")
    return value


def check_tiers(tiers) -> dict:
    if not isinstance(tiers, dict) or not tiers:
        raise VaultError(400, "tiers must be an object of tier name -> lock-up seconds")
    for name, lock_s in tiers.items():
        if not TIER_NAME.match(str(name)):
            raise VaultError(400, f"tier name {name!r} must be 1-20 of a-z, 0-9, _ or -")
        if isinstance(lock_s, bool) or not isinstance(lock_s, int) or not 0 <= lock_s <= MAX_LOCK_S:
            raise VaultError(400, f"tier {name}: lock-up must be whole seconds from 0 to {MAX_LOCK_S}")
    return dict(tiers)


def iso(at_s: int) -> str:
    return datetime.fromtimestamp(at_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def setup(operator_wallet: str, tiers) -> dict:
    tiers = check_tiers(tiers)
    current = await crud.get_settings()
    if current is None:
        service = await create_user_account_no_ckeck(wallet_name="vault service", default_exts=["vault"])
        await crud.create_settings(operator_wallet, service.id, tiers)
    elif current["operator_wallet"] != operator_wallet:
        raise VaultError(403, "the vault is already set up by another operator wallet")
    else:
        await crud.set_tiers(tiers)
    return {"operator_wallet": operator_wallet, "tiers": tiers}


async def settings_or_fail() -> dict:
    settings = await crud.get_settings()
    if settings is None:
        raise VaultError(409, "the vault is not set up yet (operator: POST /vault/api/v1/setup)")
    return settings


async def _invoice(to_wallet: str, amount_msat: int, memo: str) -> tuple[str, str]:
    payment = await create_invoice(wallet_id=to_wallet, amount=amount_msat // 1000, memo=memo, internal=True,
                                   extra={"tag": "vault"})
    return payment.bolt11, payment.payment_hash


async def _paid(payment_hash: str) -> bool:
    payment = await get_standalone_payment(payment_hash, incoming=True)
    return bool(payment and payment.success)


async def _pay(from_wallet: str, bolt11: str, vault_wallet: bool) -> None:
    token = allowed_spend.set(from_wallet if vault_wallet else None)
    try:
        await pay_invoice(wallet_id=from_wallet, payment_request=bolt11, tag="vault")
    finally:
        allowed_spend.reset(token)


# -- ledger views ------------------------------------------------------------------------------

def _position(lots: list[dict], withdrawals: list[dict], now: int) -> dict:
    """What is left of each lot: withdrawals come out of expired lots, earliest expiry first."""
    paid = sum(w["amount_msat"] for w in withdrawals if w["status"] == "paid")
    pending = sum(w["amount_msat"] for w in withdrawals if w["status"] in ("queued", "paying"))
    out, left = [], paid
    for lot in sorted(lots, key=lambda lot: (lot["locked_until"], lot["created_at"], lot["id"])):
        take = min(left, lot["amount_msat"])
        left -= take
        out.append({**lot, "remaining_msat": lot["amount_msat"] - take, "locked": lot["locked_until"] > now})
    expired = sum(lot["amount_msat"] for lot in lots if lot["locked_until"] <= now)
    principal = sum(lot["amount_msat"] for lot in lots) - paid
    return {"lots": out, "principal_msat": principal, "pending_withdrawals_msat": pending,
            "withdrawable_msat": max(0, expired - paid - pending)}


async def position(investor_wallet: str) -> dict:
    now = crud.now_s()
    pos = _position(await crud.lots(investor_wallet), await crud.withdrawals(investor_wallet), now)
    pos["withdrawals"] = await crud.withdrawals(investor_wallet)
    pos["account"] = await crud.get_account(investor_wallet) is not None
    return pos


async def book() -> dict:
    """Every investor's lots and what is left of them, the queue and the solvency state."""
    await reconcile()
    now = crud.now_s()
    lots, wds = await crud.lots(), await crud.withdrawals()
    investors = sorted({lot["investor_wallet"] for lot in lots})
    positions = {}
    for wallet in investors:
        pos = _position([x for x in lots if x["investor_wallet"] == wallet],
                        [w for w in wds if w["investor_wallet"] == wallet], now)
        positions[wallet] = pos
    liabilities = sum(p["principal_msat"] for p in positions.values())
    return {"at": now, "liabilities_msat": liabilities, "investors": positions,
            "queue": [w for w in wds if w["status"] in ("queued", "paying")],
            "solvency": await solvency_state(liabilities), "tiers": (await settings_or_fail())["tiers"]}


async def liabilities() -> int:
    now = crud.now_s()
    lots, wds = await crud.lots(), await crud.withdrawals()
    total = 0
    for wallet in {lot["investor_wallet"] for lot in lots}:
        total += _position([x for x in lots if x["investor_wallet"] == wallet],
                           [w for w in wds if w["investor_wallet"] == wallet], now)["principal_msat"]
    return total


async def solvency_state(liabilities_msat: int) -> dict:
    report = await crud.get_solvency()
    if report is None:
        return {"known": False, "halted": True, "reason": "no solvency report yet"}
    age_s = crud.now_s() - report["reported_at"]
    physical = report["physical_msat"]
    ratio = liabilities_msat / physical if physical > 0 else None
    if age_s > STALE_SOLVENCY_S:
        halted, reason = True, f"the last solvency report is {age_s} s old"
    elif ratio is None:
        halted, reason = liabilities_msat > 0, "no physical liquidity"
    else:
        halted = ratio > report["max_ratio"]
        reason = f"liabilities are {ratio:.1%} of physical liquidity (limit {report['max_ratio']:.0%})"
    return {"known": True, "halted": halted, "reason": reason, "ratio": ratio, "age_s": age_s, **report}


# -- deposits ----------------------------------------------------------------------------------

async def _ensure_account(investor_wallet: str, settings: dict) -> dict:
    account = await crud.get_account(investor_wallet)
    if account is None:
        vault = await create_wallet(user_id=settings["service_user"], wallet_name=f"vault {investor_wallet[:8]}")
        await crud.create_account(investor_wallet, vault.id)
        account = await crud.get_account(investor_wallet)
    return account


async def deposit(investor_wallet: str, body: dict) -> dict:
    settings = await settings_or_fail()
    amount_sat = whole_sats(body.get("amount_sat"), "amount_sat")
    tier = body.get("tier")
    if tier not in settings["tiers"]:
        raise VaultError(400, f"unknown tier {tier!r}; tiers: {', '.join(sorted(settings['tiers']))}")
    if investor_wallet == settings["operator_wallet"]:
        raise VaultError(400, "the operator wallet cannot deposit into the vault")
    async with money_lock:
        account = await _ensure_account(investor_wallet, settings)
        bolt11, payment_hash = await _invoice(account["vault_wallet"], amount_sat * 1000, f"vault deposit ({tier})")
        now = crud.now_s()
        lot = {"id": uuid.uuid4().hex, "investor_wallet": investor_wallet, "tier": tier,
               "amount_msat": amount_sat * 1000, "locked_until": now + settings["tiers"][tier],
               "status": "pending", "payment_hash": payment_hash, "created_at": now}
        await crud.insert_lot(lot)
        try:
            await _pay(investor_wallet, bolt11, vault_wallet=False)
        except PaymentError as err:
            await crud.set_lot_status(lot["id"], "failed")
            raise VaultError(400, f"deposit not made: {err.message}") from None
        await crud.set_lot_status(lot["id"], "active")
    return {**lot, "status": "active", "locked_until_iso": iso(lot["locked_until"])}


# -- withdrawals -------------------------------------------------------------------------------

async def withdraw(investor_wallet: str, body: dict) -> tuple[int, dict]:
    await settings_or_fail()
    amount_msat = whole_sats(body.get("amount_sat"), "amount_sat") * 1000
    async with money_lock:
        account = await crud.get_account(investor_wallet)
        now = crud.now_s()
        lots = await crud.lots(investor_wallet)
        if account is None or not lots:
            raise VaultError(404, "this wallet has no vault deposits")
        pos = _position(lots, await crud.withdrawals(investor_wallet), now)
        if amount_msat > pos["principal_msat"] - pos["pending_withdrawals_msat"]:
            raise VaultError(400, f"withdrawal of {amount_msat // 1000} sat exceeds your principal of "
                                  f"{(pos['principal_msat'] - pos['pending_withdrawals_msat']) // 1000} sat")
        if amount_msat > pos["withdrawable_msat"]:
            unlock = min(lot["locked_until"] for lot in pos["lots"] if lot["locked"])
            raise VaultError(403, f"locked: {pos['withdrawable_msat'] // 1000} sat can be withdrawn now; "
                                  f"the next lot unlocks at {iso(unlock)}")
        wd = {"id": uuid.uuid4().hex, "investor_wallet": investor_wallet, "amount_msat": amount_msat,
              "status": "queued", "requested_at": now}
        await crud.insert_withdrawal(wd)
        queue = await crud.withdrawals(status="queued")
        state = await solvency_state(await liabilities())
        ahead = [w for w in queue if w["id"] != wd["id"]]
        why = None
        if ahead:
            why = f"{len(ahead)} earlier withdrawal(s) are queued"
        elif state["halted"]:
            why = f"solvency: {state['reason']}"
        else:
            physical, owed = state["physical_msat"], await liabilities()
            if physical - amount_msat <= 0 or owed - amount_msat > state["max_ratio"] * (physical - amount_msat):
                why = "paying it now would take liabilities above the solvency limit"
        if why is None:
            await _pay_withdrawal(wd, account)
            return 200, {**wd, "status": "paid"}
        return 202, {**wd, "queue_position": len(ahead) + 1, "reason": why}


async def _pay_withdrawal(wd: dict, account: dict) -> None:
    bolt11, payment_hash = await _invoice(wd["investor_wallet"], wd["amount_msat"], "vault withdrawal")
    await crud.update_withdrawal(wd["id"], status="paying", bolt11=bolt11, payment_hash=payment_hash)
    try:
        await _pay(account["vault_wallet"], bolt11, vault_wallet=True)
    except PaymentError as err:
        await crud.update_withdrawal(wd["id"], status="queued", bolt11=None, payment_hash=None)
        raise VaultError(502, f"withdrawal queued, the payment failed: {err.message}") from None
    await crud.update_withdrawal(wd["id"], status="paid", paid_at=crud.now_s())


async def drain_queue(physical_msat: int) -> list[dict]:
    """Pays queued withdrawals first come, first served, while physical liquidity covers them.

    This is the answer to the bank-run deadlock: the ratio limit stops dividends and new
    instant withdrawals, but the queue keeps being paid out of what the node really holds.
    """
    paid = []
    for wd in await crud.withdrawals(status="queued"):
        if wd["amount_msat"] > physical_msat:
            break  # strictly in order: nobody overtakes an earlier request
        try:
            await _pay_withdrawal(wd, await crud.get_account(wd["investor_wallet"]))
        except VaultError as err:  # it stays first in the queue; the report itself still counts
            paid.append({**wd, "status": "queued", "error": err.message})
            break
        physical_msat -= wd["amount_msat"]
        paid.append({**wd, "status": "paid"})
    return paid


async def report_solvency(body: dict) -> dict:
    physical, owed, max_ratio = body.get("physical_msat"), body.get("liabilities_msat"), body.get("max_ratio")
    for name, value in (("physical_msat", physical), ("liabilities_msat", owed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise VaultError(400, f"{name} must be a whole number of msat, got {value!r}")
    if owed < 0:
        raise VaultError(400, f"liabilities_msat cannot be negative, got {owed}")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not 0 < max_ratio <= 1:
        raise VaultError(400, f"max_ratio must be a number in (0, 1], got {max_ratio!r}")
    async with money_lock:
        await reconcile()
        await crud.set_solvency(physical, owed, float(max_ratio))
        paid = await drain_queue(physical) if physical > 0 else []
        owed_now = await liabilities()
        failed = [w for w in paid if w["status"] != "paid"]
        return {"paid_withdrawals": [w for w in paid if w["status"] == "paid"], "withdrawal_errors": failed,
                "queue": await crud.withdrawals(status="queued"),
                "solvency": await solvency_state(owed_now)}


async def reconcile() -> None:
    """After a crash: settle what LNbits says was paid, undo what was not."""
    for lot in await crud.lots(status="pending"):
        await crud.set_lot_status(lot["id"], "active" if await _paid(lot["payment_hash"]) else "failed")
    for wd in await crud.withdrawals(status="paying"):
        if await _paid(wd["payment_hash"]):
            await crud.update_withdrawal(wd["id"], status="paid", paid_at=crud.now_s())
        else:
            await crud.update_withdrawal(wd["id"], status="queued", bolt11=None, payment_hash=None)


# -- dividends ---------------------------------------------------------------------------------

async def payout(operator_wallet: str, body: dict) -> dict:
    period_key, lines = body.get("period_key"), body.get("lines")
    if not isinstance(period_key, str) or not PERIOD_KEY.match(period_key):
        raise VaultError(400, f"period_key must look like lds:YYYY-MM-DD, got {period_key!r}")
    if not isinstance(lines, list) or not lines:
        raise VaultError(400, "lines must be a non-empty list of {wallet_id, amount_msat}")
    seen = set()
    for line in lines:
        wallet, amount = (line or {}).get("wallet_id"), (line or {}).get("amount_msat")
        if not isinstance(wallet, str) or await crud.get_account(wallet) is None:
            raise VaultError(404, f"unknown investor wallet {wallet!r}")
        if wallet in seen:
            raise VaultError(400, f"wallet {wallet} appears twice in one payout")
        seen.add(wallet)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount % 1000:
            raise VaultError(400, f"amount_msat must be a positive multiple of 1000, got {amount!r}")
    async with money_lock:
        state = await solvency_state(await liabilities())
        if state["halted"]:
            raise VaultError(409, f"payouts are halted: {state['reason']}")
        results = []
        for line in lines:
            results.append(await _pay_line(operator_wallet, period_key, line["wallet_id"], line["amount_msat"]))
        return {"period_key": period_key, "lines": results}


async def _pay_line(operator_wallet: str, period_key: str, wallet: str, amount_msat: int) -> dict:
    row = await crud.get_payout(period_key, wallet)
    if row is not None:
        if row["amount_msat"] != amount_msat:
            raise VaultError(409, f"{period_key} already records {row['amount_msat']} msat for {wallet}, "
                                  f"not {amount_msat}")
        if row["status"] == "paid" or await _paid(row["payment_hash"]):
            await crud.mark_payout_paid(period_key, wallet)
            return {"wallet_id": wallet, "amount_msat": amount_msat, "status": "already_paid",
                    "payment_hash": row["payment_hash"]}
        bolt11, payment_hash = row["bolt11"], row["payment_hash"]
    else:
        bolt11, payment_hash = await _invoice(wallet, amount_msat, f"vault dividend {period_key}")
        await crud.insert_payout({"period_key": period_key, "investor_wallet": wallet, "amount_msat": amount_msat,
                                  "bolt11": bolt11, "payment_hash": payment_hash, "created_at": int(time.time())})
    try:
        await _pay(operator_wallet, bolt11, vault_wallet=False)
    except PaymentError as err:
        raise VaultError(502, f"dividend {period_key} to {wallet} recorded but not paid: {err.message}") from None
    await crud.mark_payout_paid(period_key, wallet)
    return {"wallet_id": wallet, "amount_msat": amount_msat, "status": "paid", "payment_hash": payment_hash}
