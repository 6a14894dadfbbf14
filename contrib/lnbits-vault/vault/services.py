"""Vault money movements. Every one is recorded before it is paid and checked against LNbits'
own payment records on a retry, so a crash or a repeated request never pays twice.

Safe with several LNbits workers on one database (issue 12 item 13): no in-process lock guards
money. A withdrawal gets its one invoice when it is requested, and only the worker whose
conditional UPDATE moved it from `queued` to `paying` pays it; a claim older than LEASE_S is a
crashed payer and is released, so a payment in flight is never written back as queued. The
lock-up check is made safe by UNIQUE(investor_wallet, n): of two requests checked against the
same position, only the first is written; the other is checked again against the new one."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone

from lnbits.core.crud import create_wallet, get_standalone_payment, get_wallet
from lnbits.core.services import create_invoice, pay_invoice
from lnbits.core.services.users import create_user_account_no_ckeck
from lnbits.exceptions import PaymentError

from . import crud
from .guard import allowed_spend

STALE_SOLVENCY_S = 1800  # a solvency report older than this cannot release money
PERIOD_KEY = re.compile(r"^lds:\d{4}-\d{2}-\d{2}$")
TIER_NAME = re.compile(r"^[a-z0-9_-]{1,20}$")
MAX_LOCK_S = 5 * 365 * 86400
LEASE_S = 120  # a claim older than this is a crashed payer (an internal payment takes < 1 s)
WITHDRAWAL_INVOICE_EXPIRY_S = 400 * 86400  # one invoice for the life of a queued withdrawal
WITHDRAW_ATTEMPTS = 5  # re-checks when other requests of the same investor keep winning the race


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


async def _operator_candidate(wallet_id) -> str:
    if not isinstance(wallet_id, str) or await get_wallet(wallet_id) is None:
        raise VaultError(404, f"no LNbits wallet {wallet_id!r}")
    if await crud.is_vault_wallet(wallet_id) or await crud.get_account(wallet_id) is not None:
        raise VaultError(400, "an investor's wallet or vault wallet cannot be the operator")
    return wallet_id


async def setup(admin_user: str, body: dict) -> dict:
    """The LNbits admin binds the vault to the operator wallet they chose; once."""
    tiers = check_tiers(body.get("tiers"))
    operator = await _operator_candidate(body.get("operator_wallet"))
    if await crud.get_settings() is None:
        service = await create_user_account_no_ckeck(wallet_name="vault service", default_exts=["vault"])
        if await crud.create_settings(operator, service.id, tiers, f"setup by LNbits admin {admin_user}"):
            return {"operator_wallet": operator, "tiers": tiers}
    current = await crud.get_settings()
    raise VaultError(409, f"the vault is already set up with operator wallet {current['operator_wallet']}; "
                          "the operator can transfer the role (POST /vault/api/v1/operator/transfer)")


async def update_tiers(tiers) -> dict:
    tiers = check_tiers(tiers)
    await crud.set_tiers(tiers)
    return {"tiers": tiers}


async def propose_operator(operator_wallet: str, body: dict) -> dict:
    """Step 1 of a transfer: the operator names the wallet that may take the role."""
    to_wallet = await _operator_candidate(body.get("to_wallet"))
    if to_wallet == operator_wallet:
        raise VaultError(400, "that wallet is already the operator")
    if not await crud.set_pending_operator(operator_wallet, to_wallet):
        raise VaultError(409, "the operator changed meanwhile; nothing proposed")
    return {"operator_wallet": operator_wallet, "pending_operator": to_wallet,
            "next": "the new wallet accepts with its admin key: POST /vault/api/v1/operator/accept"}


async def accept_operator(wallet_id: str) -> dict:
    """Step 2: the proposed wallet proves it holds its admin key by calling this with it."""
    settings = await settings_or_fail()
    if settings.get("pending_operator") != wallet_id:
        raise VaultError(403, "no operator transfer to this wallet is pending")
    if not await crud.move_operator(settings["operator_wallet"], wallet_id, "transfer accepted",
                                    pending=wallet_id):
        raise VaultError(409, "the operator changed meanwhile; the transfer was not made")
    return {"operator_wallet": wallet_id, "previous": settings["operator_wallet"]}


async def reassign_operator(admin_user: str, body: dict) -> dict:
    """Recovery when the operator key is lost: the LNbits admin names the new operator wallet."""
    settings = await settings_or_fail()
    to_wallet = await _operator_candidate(body.get("operator_wallet"))
    if not await crud.move_operator(settings["operator_wallet"], to_wallet, f"reassigned by LNbits admin {admin_user}"):
        raise VaultError(409, "the operator changed meanwhile; try again")
    return {"operator_wallet": to_wallet, "previous": settings["operator_wallet"]}


async def settings_or_fail() -> dict:
    settings = await crud.get_settings()
    if settings is None:
        raise VaultError(409, "the vault is not set up yet (operator: POST /vault/api/v1/setup)")
    return settings


async def _invoice(to_wallet: str, amount_msat: int, memo: str, expiry_s: int | None = None) -> tuple[str, str]:
    payment = await create_invoice(wallet_id=to_wallet, amount=amount_msat // 1000, memo=memo, internal=True,
                                   extra={"tag": "vault"}, expiry=expiry_s)
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
            "solvency": await solvency_state(liabilities), "tiers": (await settings_or_fail())["tiers"],
            "operator_log": await crud.operator_log()}


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
        await crud.create_account(investor_wallet, vault.id)  # a racing worker's account wins; this wallet stays empty
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
        await crud.set_lot_status(lot["id"], "failed", expected=("pending",))
        raise VaultError(400, f"deposit not made: {err.message}") from None
    # paid: active whatever a reconcile elsewhere concluded meanwhile
    await crud.set_lot_status(lot["id"], "active", expected=("pending", "failed"))
    return {**lot, "status": "active", "locked_until_iso": iso(lot["locked_until"])}


# -- withdrawals -------------------------------------------------------------------------------

async def withdraw(investor_wallet: str, body: dict) -> tuple[int, dict]:
    await settings_or_fail()
    amount_msat = whole_sats(body.get("amount_sat"), "amount_sat") * 1000
    account = await crud.get_account(investor_wallet)
    for _attempt in range(WITHDRAW_ATTEMPTS):
        wd = await _record_withdrawal(investor_wallet, account, amount_msat)
        if wd is not None:
            break
    else:
        raise VaultError(409, "other withdrawals from this wallet were being made at the same time; "
                              "nothing was withdrawn, try again")
    queue = await crud.withdrawals(status="queued")
    state = await solvency_state(await liabilities())
    ahead = [w for w in queue if w["seq"] < wd["seq"]]
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
        if await _pay_withdrawal(wd, account):
            return 200, {**_public(wd), "status": "paid"}
        why = "another request is paying it now"
    return 202, {**_public(wd), "queue_position": len(ahead) + 1, "reason": why}


def _public(wd: dict) -> dict:
    return {k: wd[k] for k in ("id", "investor_wallet", "amount_msat", "status", "requested_at")}


async def _record_withdrawal(investor_wallet: str, account: dict | None, amount_msat: int) -> dict | None:
    """Checks the lock-up and principal against the investor's current position and writes the
    withdrawal as their next one (with its invoice); None if another request wrote first."""
    now = crud.now_s()
    lots = await crud.lots(investor_wallet)
    if account is None or not lots:
        raise VaultError(404, "this wallet has no vault deposits")
    mine = await crud.withdrawals(investor_wallet)
    pos = _position(lots, mine, now)
    if amount_msat > pos["principal_msat"] - pos["pending_withdrawals_msat"]:
        raise VaultError(400, f"withdrawal of {amount_msat // 1000} sat exceeds your principal of "
                              f"{(pos['principal_msat'] - pos['pending_withdrawals_msat']) // 1000} sat")
    if amount_msat > pos["withdrawable_msat"]:
        unlock = min((lot["locked_until"] for lot in pos["lots"] if lot["locked"]), default=now)
        raise VaultError(403, f"locked: {pos['withdrawable_msat'] // 1000} sat can be withdrawn now; "
                              f"the next lot unlocks at {iso(unlock)}")
    bolt11, payment_hash = await _invoice(investor_wallet, amount_msat, "vault withdrawal",
                                          WITHDRAWAL_INVOICE_EXPIRY_S)
    wd = {"id": uuid.uuid4().hex, "n": max((w["n"] or 0 for w in mine), default=0) + 1,
          "investor_wallet": investor_wallet, "amount_msat": amount_msat, "status": "queued",
          "bolt11": bolt11, "payment_hash": payment_hash, "requested_at": now}
    if not await crud.insert_withdrawal(wd):
        return None  # its invoice is never paid: nothing refers to it
    return await crud.get_withdrawal(wd["id"])


async def _pay_withdrawal(wd: dict, account: dict) -> bool:
    """Pays a queued withdrawal if this call wins its claim; False if another payer holds it."""
    if not wd.get("bolt11"):  # queued before m002: give it its one invoice now
        bolt11, payment_hash = await _invoice(wd["investor_wallet"], wd["amount_msat"], "vault withdrawal",
                                              WITHDRAWAL_INVOICE_EXPIRY_S)
        await crud.set_withdrawal_invoice(wd["id"], bolt11, payment_hash)
        wd = await crud.get_withdrawal(wd["id"])
    claim = uuid.uuid4().hex
    if not await crud.claim_withdrawal(wd["id"], claim):
        return False
    try:
        await _pay(account["vault_wallet"], wd["bolt11"], vault_wallet=True)
    except PaymentError as err:
        if await _paid(wd["payment_hash"]):  # an earlier payer that outlived its lease paid it
            await crud.mark_withdrawal_paid(wd["id"])
            return True
        await crud.release_withdrawal(wd["id"], claim)
        raise VaultError(502, f"withdrawal queued, the payment failed: {err.message}") from None
    await crud.mark_withdrawal_paid(wd["id"])
    return True


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
            won = await _pay_withdrawal(wd, await crud.get_account(wd["investor_wallet"]))
        except VaultError as err:  # it stays first in the queue; the report itself still counts
            paid.append({**wd, "status": "queued", "error": err.message})
            break
        physical_msat -= wd["amount_msat"]  # paid here or by the worker that holds its claim
        if won:
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
    await reconcile()
    await crud.set_solvency(physical, owed, float(max_ratio))
    paid = await drain_queue(physical) if physical > 0 else []
    owed_now = await liabilities()
    failed = [w for w in paid if w["status"] != "paid"]
    return {"paid_withdrawals": [w for w in paid if w["status"] == "paid"], "withdrawal_errors": failed,
            "queue": await crud.withdrawals(status="queued"),
            "solvency": await solvency_state(owed_now)}


async def reconcile() -> None:
    """After a crash: settle what LNbits says was paid, undo what was not.

    Another worker may be paying right now, so only what LNbits records as paid is settled at
    once; an unpaid deposit or claim is undone only after LEASE_S (its payer is gone). Undoing a
    claim keeps the withdrawal's invoice, so the retry pays that same invoice, which LNbits pays
    at most once."""
    now = crud.now_s()
    for lot in await crud.lots(status="pending"):
        if await _paid(lot["payment_hash"]):
            await crud.set_lot_status(lot["id"], "active", expected=("pending",))
        elif now - lot["created_at"] > LEASE_S:
            await crud.set_lot_status(lot["id"], "failed", expected=("pending",))
    for wd in await crud.withdrawals():
        if wd["status"] not in ("queued", "paying") or not wd["payment_hash"]:
            continue
        if await _paid(wd["payment_hash"]):
            await crud.mark_withdrawal_paid(wd["id"])
        elif wd["status"] == "paying" and now - (wd["claimed_at"] or 0) > LEASE_S:
            await crud.release_withdrawal(wd["id"], wd["claim"])


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
    state = await solvency_state(await liabilities())
    if state["halted"]:
        raise VaultError(409, f"payouts are halted: {state['reason']}")
    results = []
    for line in lines:
        results.append(await _pay_line(operator_wallet, period_key, line["wallet_id"], line["amount_msat"]))
    return {"period_key": period_key, "lines": results}


async def _pay_line(operator_wallet: str, period_key: str, wallet: str, amount_msat: int) -> dict:
    row = await crud.get_payout(period_key, wallet)
    if row is None:
        bolt11, payment_hash = await _invoice(wallet, amount_msat, f"vault dividend {period_key}")
        await crud.insert_payout({"period_key": period_key, "investor_wallet": wallet,
                                             "amount_msat": amount_msat, "bolt11": bolt11,
                                             "payment_hash": payment_hash, "created_at": int(time.time())})
        row = await crud.get_payout(period_key, wallet)  # ours, or the line another worker recorded first
    if row["amount_msat"] != amount_msat:
        raise VaultError(409, f"{period_key} already records {row['amount_msat']} msat for {wallet}, "
                              f"not {amount_msat}")
    line = {"wallet_id": wallet, "amount_msat": amount_msat, "payment_hash": row["payment_hash"]}
    if row["status"] == "paid" or await _paid(row["payment_hash"]):
        await crud.mark_payout_paid(period_key, wallet)
        return {**line, "status": "already_paid"}
    claim = uuid.uuid4().hex
    if not await crud.claim_payout(period_key, wallet, claim, crud.now_s() - LEASE_S):
        return {**line, "status": "in_progress"}  # another worker is paying it; a later call sees it paid
    try:
        await _pay(operator_wallet, row["bolt11"], vault_wallet=False)
    except PaymentError as err:
        if not await _paid(row["payment_hash"]):
            await crud.release_payout(period_key, wallet, claim)
            raise VaultError(502, f"dividend {period_key} to {wallet} recorded but not paid: {err.message}") from None
    await crud.mark_payout_paid(period_key, wallet)
    return {**line, "status": "paid"}
