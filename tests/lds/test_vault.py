"""The vault extension in a real LNbits: lock-up, withdrawals, solvency queue, spend guard, bad input."""

from __future__ import annotations

import time

import pytest

from tests.lds.lnbits_server import HttpError

RICH_MSAT = 10**12  # a solvency report with far more physical liquidity than liabilities


def test_deposit_locks_early_withdrawal_refused_then_paid_after_expiry(vault):
    alice = vault.investor("alice", 50_000)
    lot = vault.deposit(alice, 20_000, "short")
    assert lot["status"] == "active" and lot["tier"] == "short"
    assert vault.balance_msat(alice) == 30_000_000
    position = vault.book()["investors"][alice["id"]]
    assert position["principal_msat"] == 20_000_000 and position["lots"][0]["locked"] is True
    vault.solvency(RICH_MSAT)
    with pytest.raises(HttpError) as refused:
        vault.withdraw(alice, 5_000)
    assert refused.value.status == 403 and "locked: 0 sat can be withdrawn now" in refused.value.detail
    assert vault.balance_msat(alice) == 30_000_000
    time.sleep(max(0.0, lot["locked_until"] - time.time()) + 1.1)
    paid = vault.withdraw(alice, 5_000)
    assert paid["status"] == "paid"
    assert vault.balance_msat(alice) == 35_000_000
    position = vault.book()["investors"][alice["id"]]
    assert position["principal_msat"] == 15_000_000 and position["withdrawable_msat"] == 15_000_000
    with pytest.raises(HttpError) as too_much:
        vault.withdraw(alice, 15_001)
    assert too_much.value.status == 400 and "exceeds your principal of 15000 sat" in too_much.value.detail


def test_spend_guard_blocks_an_outgoing_payment_from_a_locked_vault_wallet(vault, lnbits):
    bob = vault.investor("bob", 10_000)
    vault.deposit(bob, 8_000, "90d")
    leaked = vault.vault_wallet(bob)  # its keys were never handed out: pretend one leaked
    assert vault.balance_msat(leaked) == 8_000_000
    thief = lnbits.account("thief")
    invoice = lnbits.request("POST", "/api/v1/payments", {"out": False, "amount": 8_000, "memo": "steal"},
                             key=thief["inkey"])
    with pytest.raises(HttpError) as blocked:
        lnbits.request("POST", "/api/v1/payments", {"out": True, "bolt11": invoice["bolt11"]},
                       key=leaked["adminkey"])
    assert "Vault spend guard" in blocked.value.detail
    assert vault.balance_msat(leaked) == 8_000_000 and vault.balance_msat(thief) == 0
    # and the lock-up still holds through the vault's own door
    with pytest.raises(HttpError) as locked:
        vault.withdraw(bob, 1_000)
    assert locked.value.status == 403 and "unlocks at" in locked.value.detail


def test_above_the_liability_limit_withdrawals_queue_and_drain_first_come_first_served(vault):
    carol, dave = vault.investor("carol", 10_000), vault.investor("dave", 10_000)
    vault.deposit(carol, 6_000, "flex")
    vault.deposit(dave, 6_000, "flex")
    liabilities = vault.book()["liabilities_msat"]
    vault.solvency(int(liabilities / 0.9))  # liabilities are 90 % of physical: halted
    first = vault.withdraw(carol, 4_000)
    assert first["status"] == "queued" and first["queue_position"] == 1 and "solvency" in first["reason"]
    second = vault.withdraw(dave, 5_000)
    assert second["status"] == "queued" and second["queue_position"] == 2
    assert vault.balance_msat(carol) == 4_000_000 and vault.balance_msat(dave) == 4_000_000
    with pytest.raises(HttpError) as halted:
        vault.server.request("POST", "/vault/api/v1/payouts",
                             {"period_key": "lds:2031-01-01", "lines": [{"wallet_id": carol["id"],
                                                                         "amount_msat": 1000}]},
                             key=vault.operator["adminkey"])
    assert halted.value.status == 409 and "payouts are halted" in halted.value.detail
    # still above the limit, but the liquidity covers the first request: it is paid, in order
    reply = vault.solvency(4_500_000)
    assert [w["investor_wallet"] for w in reply["paid_withdrawals"]] == [carol["id"]]
    assert [w["investor_wallet"] for w in reply["queue"]] == [dave["id"]]
    assert vault.balance_msat(carol) == 8_000_000 and vault.balance_msat(dave) == 4_000_000
    reply = vault.solvency(RICH_MSAT)
    assert [w["investor_wallet"] for w in reply["paid_withdrawals"]] == [dave["id"]] and reply["queue"] == []
    assert vault.balance_msat(dave) == 9_000_000


def test_bad_input_gets_a_clear_error_and_moves_no_money(vault, lnbits):
    erin = vault.investor("erin", 10_000)
    vault.solvency(RICH_MSAT)
    op = vault.operator["adminkey"]
    cases = [
        ("POST", "/vault/api/v1/deposits", {"amount_sat": -5, "tier": "flex"}, erin["adminkey"], 400,
         "positive whole number"),
        ("POST", "/vault/api/v1/deposits", {"amount_sat": "100", "tier": "flex"}, erin["adminkey"], 400,
         "positive whole number"),
        ("POST", "/vault/api/v1/deposits", {"amount_sat": 100, "tier": "7d"}, erin["adminkey"], 400,
         "unknown tier"),
        ("POST", "/vault/api/v1/deposits", {"amount_sat": 20_000, "tier": "flex"}, erin["adminkey"], 400,
         "Insufficient balance"),
        ("POST", "/vault/api/v1/deposits", {"amount_sat": 100, "tier": "flex"}, erin["inkey"], 403,
         "Invalid adminkey"),
        ("POST", "/vault/api/v1/deposits", {"amount_sat": 100, "tier": "flex"}, "not-a-key", 404,
         "Wallet not found"),
        ("POST", "/vault/api/v1/withdrawals", {"amount_sat": 100}, erin["adminkey"], 404, "no vault deposits"),
        ("POST", "/vault/api/v1/withdrawals", {"amount_sat": 0}, erin["adminkey"], 400, "positive whole number"),
        ("POST", "/vault/api/v1/payouts", {"period_key": "2031-01-02", "lines": [
            {"wallet_id": erin["id"], "amount_msat": 1000}]}, op, 400, "lds:YYYY-MM-DD"),
        ("POST", "/vault/api/v1/payouts", {"period_key": "lds:2031-01-02", "lines": [
            {"wallet_id": "f" * 32, "amount_msat": 1000}]}, op, 404, "unknown investor wallet"),
        ("POST", "/vault/api/v1/payouts", {"period_key": "lds:2031-01-02", "lines": [
            {"wallet_id": erin["id"], "amount_msat": -1000}]}, op, 400, "positive multiple of 1000"),
        ("POST", "/vault/api/v1/payouts", {"period_key": "lds:2031-01-02", "lines": []}, erin["adminkey"], 403,
         "only the operator"),
        ("POST", "/vault/api/v1/solvency", {"physical_msat": 1, "liabilities_msat": -1, "max_ratio": 0.85}, op,
         400, "cannot be negative"),
        ("PUT", "/vault/api/v1/tiers", {"tiers": {"flex": 0}}, erin["adminkey"], 403, "only the operator"),
        ("POST", "/vault/api/v1/operator/transfer", {"to_wallet": erin["id"]}, erin["adminkey"], 403,
         "only the operator"),
        ("POST", "/vault/api/v1/operator/accept", None, erin["adminkey"], 403, "no operator transfer"),
    ]
    for method, path, body, key, status, fragment in cases:
        with pytest.raises(HttpError) as err:
            lnbits.request(method, path, body, key=key)
        assert err.value.status == status and fragment in err.value.detail, (body, err.value)
    assert vault.balance_msat(erin) == 10_000_000
    assert erin["id"] not in vault.book()["investors"]  # the failed deposit left no lot


def test_a_period_key_pays_each_wallet_once_whatever_is_asked_later(vault, lnbits):
    fay = vault.investor("fay", 5_000)
    vault.deposit(fay, 1_000, "flex")
    vault.solvency(RICH_MSAT)
    body = {"period_key": "lds:2031-02-01", "lines": [{"wallet_id": fay["id"], "amount_msat": 7_000}]}
    op = vault.operator["adminkey"]
    first = lnbits.request("POST", "/vault/api/v1/payouts", body, key=op)
    assert first["lines"][0]["status"] == "paid" and vault.balance_msat(fay) == 4_007_000
    again = lnbits.request("POST", "/vault/api/v1/payouts", body, key=op)
    assert again["lines"][0]["status"] == "already_paid" and vault.balance_msat(fay) == 4_007_000
    # a recomputed period (say, from a restored database) cannot pay a different amount either
    with pytest.raises(HttpError) as conflict:
        lnbits.request("POST", "/vault/api/v1/payouts",
                       {**body, "lines": [{"wallet_id": fay["id"], "amount_msat": 9_000}]}, key=op)
    assert conflict.value.status == 409 and "already records 7000 msat" in conflict.value.detail
    assert vault.balance_msat(fay) == 4_007_000


def test_the_operator_is_the_wallet_the_admin_bound_and_moves_only_by_an_authenticated_transfer(vault, lnbits):
    op = vault.operator
    heir, stranger = lnbits.account("heir"), lnbits.account("stranger")
    # setup is the LNbits admin's, and only once: a wallet key cannot claim the vault, nor can a second setup
    with pytest.raises(HttpError) as claim:
        lnbits.request("POST", "/vault/api/v1/setup", {"operator_wallet": stranger["id"], "tiers": {"flex": 0}},
                       key=stranger["adminkey"])
    assert claim.value.status == 401
    with pytest.raises(HttpError) as again:
        lnbits.request("POST", "/vault/api/v1/setup", {"operator_wallet": stranger["id"], "tiers": {"flex": 0}},
                       bearer=lnbits.token)
    assert again.value.status == 409 and f"operator wallet {op['id']}" in again.value.detail
    try:
        # a transfer needs both keys: the operator proposes, the named wallet accepts
        with pytest.raises(HttpError) as early:
            lnbits.request("POST", "/vault/api/v1/operator/accept", key=heir["adminkey"])
        assert early.value.status == 403
        lnbits.request("POST", "/vault/api/v1/operator/transfer", {"to_wallet": heir["id"]}, key=op["adminkey"])
        with pytest.raises(HttpError) as wrong:
            lnbits.request("POST", "/vault/api/v1/operator/accept", key=stranger["adminkey"])
        assert wrong.value.status == 403
        with pytest.raises(HttpError) as inkey:
            lnbits.request("POST", "/vault/api/v1/operator/accept", key=heir["inkey"])
        assert inkey.value.status in (401, 403)
        moved = lnbits.request("POST", "/vault/api/v1/operator/accept", key=heir["adminkey"])
        assert moved == {"operator_wallet": heir["id"], "previous": op["id"]}
        with pytest.raises(HttpError) as old:
            vault.book()
        assert old.value.status == 403 and "only the operator" in old.value.detail
        book = lnbits.request("GET", "/vault/api/v1/book", key=heir["adminkey"])
        assert [(x["from_wallet"], x["to_wallet"], x["how"]) for x in book["operator_log"]][-1] == \
            (op["id"], heir["id"], "transfer accepted")
        # the admin can move the role back when an operator key is lost; a wallet key cannot
        with pytest.raises(HttpError) as not_admin:
            lnbits.request("PUT", "/vault/api/v1/operator", {"operator_wallet": stranger["id"]},
                           key=heir["adminkey"])
        assert not_admin.value.status == 401
    finally:
        lnbits.request("PUT", "/vault/api/v1/operator", {"operator_wallet": op["id"]}, bearer=lnbits.token)
    assert vault.book()["operator_log"][-1]["how"].startswith("reassigned by LNbits admin")
