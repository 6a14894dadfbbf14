"""REST API of the vault. Investors use their own wallet's keys; the operator uses the admin key
of the wallet the LNbits admin bound at setup (or that later accepted a transfer). Refusals are
4xx with a one-line `detail`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from lnbits.core.models import Account, WalletTypeInfo
from lnbits.decorators import check_admin, require_admin_key, require_invoice_key

from . import services
from .services import VaultError

vault_api_router = APIRouter()


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return body


async def _run(coro):
    try:
        return await coro
    except VaultError as err:
        raise HTTPException(err.status, err.message) from None


async def _operator(key: WalletTypeInfo) -> str:
    settings = await _run(services.settings_or_fail())
    if key.wallet.id != settings["operator_wallet"]:
        raise HTTPException(403, "only the operator wallet's admin key may do this")
    return key.wallet.id


@vault_api_router.post("/api/v1/setup")
async def api_setup(request: Request, admin: Account = Depends(check_admin)):
    """The LNbits admin (bearer token) binds the vault to the operator wallet they choose; once."""
    return await _run(services.setup(admin.id, await _body(request)))


@vault_api_router.put("/api/v1/tiers")
async def api_set_tiers(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    await _operator(key)
    return await _run(services.update_tiers((await _body(request)).get("tiers")))


@vault_api_router.post("/api/v1/operator/transfer")
async def api_operator_transfer(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    """The operator proposes a new operator wallet; that wallet must accept with its own admin key."""
    operator = await _operator(key)
    return await _run(services.propose_operator(operator, await _body(request)))


@vault_api_router.post("/api/v1/operator/accept")
async def api_operator_accept(key: WalletTypeInfo = Depends(require_admin_key)):
    return await _run(services.accept_operator(key.wallet.id))


@vault_api_router.put("/api/v1/operator")
async def api_operator_reassign(request: Request, admin: Account = Depends(check_admin)):
    """Recovery: the LNbits admin moves the role when the operator's key is lost."""
    return await _run(services.reassign_operator(admin.id, await _body(request)))


@vault_api_router.get("/api/v1/tiers")
async def api_tiers(key: WalletTypeInfo = Depends(require_invoice_key)):
    return (await _run(services.settings_or_fail()))["tiers"]


@vault_api_router.post("/api/v1/deposits", status_code=201)
async def api_deposit(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    return await _run(services.deposit(key.wallet.id, await _body(request)))


@vault_api_router.get("/api/v1/position")
async def api_position(key: WalletTypeInfo = Depends(require_invoice_key)):
    return await _run(services.position(key.wallet.id))


@vault_api_router.post("/api/v1/withdrawals")
async def api_withdraw(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    status, body = await _run(services.withdraw(key.wallet.id, await _body(request)))
    return JSONResponse(body, status_code=status)


@vault_api_router.get("/api/v1/book")
async def api_book(key: WalletTypeInfo = Depends(require_admin_key)):
    await _operator(key)
    return await _run(services.book())


@vault_api_router.post("/api/v1/solvency")
async def api_solvency(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    await _operator(key)
    return await _run(services.report_solvency(await _body(request)))


@vault_api_router.post("/api/v1/payouts")
async def api_payouts(request: Request, key: WalletTypeInfo = Depends(require_admin_key)):
    operator = await _operator(key)
    return await _run(services.payout(operator, await _body(request)))
