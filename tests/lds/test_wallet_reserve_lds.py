"""LDS payouts stop below the wallet reserve (revops/reserve.py), through the plugin and the real
LNbits vault: the due payout is deferred with the reason, nothing is recorded or paid, and it is
paid in full once the wallet is back above the reserve.

Last of the LDS files on purpose: its deposit stays in the one LNbits vault the LDS tests share,
and the payout tests before it size their node against the vault's liabilities."""

from __future__ import annotations

from tests.lds.test_plugin_lds import H, lds_options
from tests.plugin.conftest import Node, workdir  # noqa: F401 (fixture)


def test_a_due_payout_waits_below_the_wallet_reserve_and_is_paid_after(workdir, vault):  # noqa: F811
    investor = vault.investor("reserve-investor", 6_000_000)
    vault.deposit(investor, 5_000_000, "90d")
    node = Node(workdir, options=lds_options(vault))
    node.start()
    try:
        for _ in range(4):  # 2026-01-01 00:00 .. 24:00 UTC
            assert "error" not in node.cycle("all")["lds"]
            node.advance(6 * H)
        before = vault.balance_msat(investor)
        # the wallet's funds are below the reserve the operator set (no confirmed on-chain left)
        with node.lock:
            kept = list(node.sim.outputs)
            node.sim.outputs = [o for o in kept if o[5] != "confirmed"]
        node.call("revenue-config", {"key": "wallet_reserve_sat", "value": 10**12})
        out = node.cycle("all")["lds"]
        (deferred,) = out["payouts"]
        assert deferred["status"] == "deferred" and deferred["period_key"] == "lds:2026-01-01"
        assert deferred["reason"].startswith("wallet ") and "below reserve 1,000,000,000,000 sat" in deferred["reason"]
        assert node.call("revenue-lds-payout")["payouts"][0]["status"] == "deferred"  # the RPC too
        assert vault.balance_msat(investor) == before
        lds = node.call("revenue-lds-status")
        assert lds["periods"] == [] and lds["payouts_deferred"] == deferred["reason"]
        assert node.call("revenue-status")["lds"]["payouts_deferred"] == deferred["reason"]
        dry = node.call("revenue-lds-payout", {"dry_run": True})
        assert dry["deferred"] == deferred["reason"] and dry["period_key"] == "lds:2026-01-01"
        # back above the reserve: the same period is paid, once
        with node.lock:
            node.sim.outputs = kept
        node.call("revenue-config", {"key": "reset", "value": "wallet_reserve_sat"})
        node.advance(H)
        paid = node.cycle("all")["lds"]["payouts"]
        assert paid[0]["period_key"] == "lds:2026-01-01" and paid[0]["status"] == "paid", paid
        assert vault.balance_msat(investor) > before
        assert node.call("revenue-status")["lds"]["payouts_deferred"] is None
    finally:
        node.stop()
