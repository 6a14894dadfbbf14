"""Two LNbits processes on one database, as several workers would run: concurrent withdrawals,
solvency reports and book reads never pass the lock-up twice and never pay a withdrawal twice
(issue 12 item 13). The guards are in the database, not in either process."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.lds.lnbits_server import HttpError

RICH_MSAT = 10**12


@pytest.fixture(scope="module")
def worker_b(lnbits):
    worker = lnbits.another_worker()
    try:
        yield worker
    finally:
        worker.stop()


def at_once(calls: list) -> list:
    """Runs every call in its own thread, released together; returns each result or HttpError."""
    gate = threading.Barrier(len(calls))

    def run(call):
        gate.wait()
        try:
            return call()
        except HttpError as err:
            return err

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def withdrawal_payments(lnbits, wallet: dict) -> list[str]:
    """Payment hashes of the vault withdrawals LNbits settled into this wallet (its own records)."""
    with sqlite3.connect(lnbits.tmp / "data" / "database.sqlite3") as core:
        rows = core.execute("SELECT payment_hash FROM apipayments WHERE wallet_id = ? AND amount > 0 "
                            "AND status = 'success' AND memo = 'vault withdrawal'", (wallet["id"],)).fetchall()
    return [r[0] for r in rows]


def test_concurrent_withdrawals_on_two_workers_pass_the_lock_up_once(vault, lnbits, worker_b):
    gus = vault.investor("gus", 20_000)
    vault.deposit(gus, 10_000, "flex")  # withdrawable now
    vault.deposit(gus, 10_000, "90d")   # locked: must stay in the vault
    vault.solvency(RICH_MSAT)
    servers = [lnbits, worker_b] * 6
    replies = at_once([lambda s=s: s.request("POST", "/vault/api/v1/withdrawals", {"amount_sat": 5_000},
                                             key=gus["adminkey"]) for s in servers])
    accepted = [r for r in replies if isinstance(r, dict)]
    refused = [r for r in replies if isinstance(r, HttpError)]
    assert len(accepted) == 2, replies
    assert all(r.status in (403, 409) for r in refused), [(r.status, r.detail) for r in refused]
    vault.solvency(RICH_MSAT)  # pays whatever was queued
    assert vault.balance_msat(gus) == 10_000_000  # 20,000 - 20,000 deposited + 2 × 5,000 withdrawn
    assert vault.balance_msat(vault.vault_wallet(gus)) == 10_000_000  # the locked lot is untouched
    position = vault.book()["investors"][gus["id"]]
    assert position["principal_msat"] == 10_000_000 and position["withdrawable_msat"] == 0
    assert len(withdrawal_payments(lnbits, gus)) == 2


def test_queued_withdrawals_are_paid_once_under_concurrent_reports_and_book_reads(vault, lnbits, worker_b):
    investors = [vault.investor(f"queue-{i}", 10_000) for i in range(4)]
    for wallet in investors:
        vault.deposit(wallet, 10_000, "flex")
    vault.solvency(1_000_000)  # far below the liabilities: halted, so every withdrawal queues
    for wallet in investors:
        assert vault.withdraw(wallet, 3_000)["status"] == "queued"
    op = vault.operator["adminkey"]
    report = {"physical_msat": RICH_MSAT, "liabilities_msat": 0, "max_ratio": 0.85}
    calls = []
    for server in (lnbits, worker_b):
        calls += [lambda s=server: s.request("POST", "/vault/api/v1/solvency", report, key=op)] * 3
        calls += [lambda s=server: s.request("GET", "/vault/api/v1/book", key=op)] * 5
    replies = at_once(calls)
    assert not [r for r in replies if isinstance(r, HttpError)], replies
    paid_ids = [w["id"] for r in replies if "paid_withdrawals" in r for w in r["paid_withdrawals"]]
    assert len(paid_ids) == len(set(paid_ids)) == 4  # each paid by exactly one report
    book = vault.book()
    assert book["queue"] == []
    for wallet in investors:
        assert vault.balance_msat(wallet) == 3_000_000  # 10,000 - 10,000 deposited + 3,000 once
        assert len(withdrawal_payments(lnbits, wallet)) == 1
        assert book["investors"][wallet["id"]]["principal_msat"] == 7_000_000
