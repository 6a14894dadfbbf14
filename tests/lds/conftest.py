"""One real LNbits server for all LDS tests (started once, always stopped), with the vault
set up by an operator wallet. Without LNbits installed the tests skip locally and FAIL in CI."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tests.lds.lnbits_server import VENV, LnbitsServer, lnbits_package

TIERS = {"flex": 0, "short": 2, "30d": 30 * 86400, "90d": 90 * 86400}


class Vault:
    def __init__(self, server: LnbitsServer):
        self.server = server
        self.operator = server.account("operator")
        server.credit(self.operator["id"], 5_000_000)
        # the LNbits admin enables the extension for their account, then binds the vault to the
        # operator wallet they chose
        server.request("PUT", "/api/v1/extension/vault/enable", bearer=server.token)
        server.request("POST", "/vault/api/v1/setup", {"operator_wallet": self.operator["id"], "tiers": TIERS},
                       bearer=server.token)

    def investor(self, name: str, sats: int) -> dict:
        wallet = self.server.account(name)
        self.server.credit(wallet["id"], sats)
        return wallet

    def deposit(self, wallet: dict, sats: int, tier: str) -> dict:
        return self.server.request("POST", "/vault/api/v1/deposits", {"amount_sat": sats, "tier": tier},
                                   key=wallet["adminkey"])

    def withdraw(self, wallet: dict, sats):
        return self.server.request("POST", "/vault/api/v1/withdrawals", {"amount_sat": sats},
                                   key=wallet["adminkey"])

    def solvency(self, physical_msat: int, max_ratio: float = 0.85) -> dict:
        return self.server.request("POST", "/vault/api/v1/solvency",
                                   {"physical_msat": physical_msat, "liabilities_msat": 0, "max_ratio": max_ratio},
                                   key=self.operator["adminkey"])

    def book(self) -> dict:
        return self.server.request("GET", "/vault/api/v1/book", key=self.operator["adminkey"])

    def vault_wallet(self, investor: dict) -> dict:
        """The investor's vault wallet row, keys included, read from LNbits' database: a leaked key."""
        data = self.server.tmp / "data"
        with sqlite3.connect(data / "ext_vault.sqlite3") as ext:
            vault_id = ext.execute("SELECT vault_wallet FROM accounts WHERE investor_wallet = ?",
                                   (investor["id"],)).fetchone()[0]
        with sqlite3.connect(data / "database.sqlite3") as core:
            row = core.execute("SELECT id, adminkey, inkey FROM wallets WHERE id = ?", (vault_id,)).fetchone()
        return {"id": row[0], "adminkey": row[1], "inkey": row[2]}

    def balance_msat(self, wallet: dict) -> int:
        return self.server.balance_msat(wallet)


@pytest.fixture(scope="session")
def lnbits():
    if lnbits_package() is None:
        message = f"LNbits is not installed in {VENV} (run `make lnbits`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = LnbitsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vault(lnbits):
    return Vault(lnbits)
