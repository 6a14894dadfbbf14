"""Spend Guard: defence in depth for the vault wallets.

Investors never see a vault wallet's keys; the only way out is this extension's withdraw and
payout code. Should a key leak anyway, this guard refuses any payment from a vault wallet that
the extension did not start itself. LNbits has no pre-payment hook, so it wraps the private
`_check_wallet_for_payment`, which every `pay_invoice` calls (API, LNURL, other extensions).
That name is private: the version is pinned and a test asserts the symbol exists.
"""

from __future__ import annotations

from contextvars import ContextVar

import lnbits.core.services.payments as core_payments
from lnbits.core.crud import get_wallet
from lnbits.exceptions import PaymentError

from .crud import is_vault_wallet

# The vault wallet the extension is spending from right now, in this task only.
allowed_spend: ContextVar[str | None] = ContextVar("vault_allowed_spend", default=None)
_original = None


async def _guarded(wallet_id: str, tag: str, amount_msat: int, conn=None):
    ids = {wallet_id}
    wallet = await get_wallet(wallet_id, conn=conn)
    if wallet is not None:
        ids.add(wallet.source_wallet_id)  # a wallet shared from a vault wallet spends the vault
    for wid in ids:
        if await is_vault_wallet(wid) and allowed_spend.get() != wid:
            raise PaymentError(f"Vault spend guard: wallet {wid} holds locked investor funds; "
                               "only the vault's withdraw can spend from it", status="failed")
    return await _original(wallet_id, tag, amount_msat, conn)


def install() -> None:
    global _original
    if _original is None:
        _original = core_payments._check_wallet_for_payment
        core_payments._check_wallet_for_payment = _guarded


def uninstall() -> None:
    global _original
    if _original is not None:
        core_payments._check_wallet_for_payment = _original
        _original = None
