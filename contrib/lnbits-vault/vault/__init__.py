"""LNbits "Vault" extension: locked investor deposits, withdrawals behind the lock-up and a
solvency check, idempotent dividend payouts, and a spend guard. See docs/lds.md in revops."""

from fastapi import APIRouter

from .crud import db
from .views_api import vault_api_router

vault_ext: APIRouter = APIRouter(prefix="/vault", tags=["vault"])
vault_ext.include_router(vault_api_router)


def vault_start():
    from . import guard
    guard.install()


def vault_stop():
    from . import guard
    guard.uninstall()


__all__ = ["db", "vault_ext", "vault_start", "vault_stop"]
