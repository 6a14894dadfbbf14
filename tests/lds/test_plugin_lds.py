"""LDS end to end: the real plugin process on the simulated node, talking to the real LNbits vault."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from revops.sim.errors import RpcError
from tests.plugin.conftest import Node, workdir  # noqa: F401 (fixture)

H = 3600


def lds_options(vault, **extra) -> dict:
    return {"revenue-lds-lnbits-url": vault.server.url, "revenue-lds-operator-key": vault.operator["adminkey"],
            "revenue-lds-carry": "flex:0.30,short:0.30,30d:0.15,90d:0", **extra}  # every tier of the test vault


def test_snapshots_solvency_and_daily_payout_through_the_plugin(workdir, vault):  # noqa: F811
    investor = vault.investor("sim-investor", 6_000_000)
    vault.deposit(investor, 5_000_000, "90d")
    node = Node(workdir, options=lds_options(vault))
    node.start()
    try:
        assert {"revenue-lds-status", "revenue-lds-investors", "revenue-lds-payout"} <= set(node.ld.methods)
        before = vault.balance_msat(investor)
        for _ in range(3):  # 2026-01-01 00:00 .. 18:00 UTC, a cycle every 6 h
            out = node.cycle("all")["lds"]
            assert "error" not in out, out
            node.advance(6 * H)
        line = node.call("revenue-status")["lds"]
        assert line["enabled"] and line["payouts_halted"] is False and line["liability_ratio"] < 0.85
        status = node.call("revenue-lds-status")
        assert status["solvency"]["close_reserve_msat"] > 0 and status["periods"] == []
        # nothing is due before the UTC day ends: the dry run says so and pays nothing
        assert node.call("revenue-lds-payout", {"dry_run": True})["period_key"] is None
        node.advance(6 * H)
        node.cycle("fees")  # moves the simulated clock to midnight; only "all" runs the LDS schedule
        dry = node.call("revenue-lds-payout", {"dry_run": True})
        assert dry["period_key"] == "lds:2026-01-01" and dry["net_msat"] > 0 and dry["halted"] is False
        mine = [x for x in dry["lines"] if x["wallet_id"] == investor["id"]]
        assert len(mine) == 1 and mine[0]["amount_msat"] > 0
        profit = dry["detail"]["profit"]
        assert profit["routing_fees_msat"] > 0 and profit["opex_msat"] == profit["chain_costs_msat"] == 0
        assert dry["net_msat"] == profit["routing_fees_msat"] - profit["rebalance_spend_msat"]
        assert vault.balance_msat(investor) == before  # a dry run moves nothing
        paid = node.call("revenue-lds-payout")["payouts"]
        assert paid[0]["period_key"] == "lds:2026-01-01" and paid[0]["status"] == "paid"
        assert vault.balance_msat(investor) - before == mine[0]["amount_msat"]
        assert node.call("revenue-lds-payout")["payouts"] == []  # asked again: nothing paid twice
        assert vault.balance_msat(investor) - before == mine[0]["amount_msat"]
        investors = {i["wallet_id"]: i for i in node.call("revenue-lds-investors")["investors"]}
        me = investors[investor["id"]]
        assert me["principal_msat"] == 5_000_000_000 and me["dividends_paid_msat"] == mine[0]["amount_msat"]
        assert me["lots"][0]["tier"] == "90d" and 0 < me["twab_msat"] <= 5_000_000_000
        with pytest.raises(RpcError, match="dry_run must be true or false"):
            node.call("revenue-lds-payout", {"dry_run": "maybe"})
    finally:
        node.stop()


def test_halt_through_the_plugin_queues_a_withdrawal_and_the_next_check_pays_it(workdir, vault):  # noqa: F811
    investor = vault.investor("sim-runner", 20_000)
    vault.deposit(investor, 10_000, "flex")
    # a ratio limit no real node meets: the plugin reports the vault halted
    node = Node(workdir, options=lds_options(vault, **{"revenue-lds-max-liability-ratio": "0.00001",
                                                       "revenue-ops-metrics-listen": "127.0.0.1:0"}))
    node.start()
    try:
        node.cycle("all")
        status = node.call("revenue-status")
        line = status["lds"]
        assert line["payouts_halted"] is True and "above 0%" in line["solvency"]
        scraped = urllib.request.urlopen(f"http://{status['metrics']}/metrics", timeout=10).read().decode()
        assert "revops_lds_payouts_halted 1.0" in scraped and "revops_lds_close_reserve_msat" in scraped
        queued = vault.withdraw(investor, 4_000)
        assert queued["status"] == "queued" and "solvency" in queued["reason"]
        assert vault.balance_msat(investor) == 10_000_000
        # the halt stops dividends, not exits: the next solvency check pays the queue from liquidity
        node.advance(H)
        node.cycle("all")
        assert vault.balance_msat(investor) == 14_000_000
        assert node.call("revenue-lds-investors")["queue"] == []
    finally:
        node.stop()


def test_bad_lds_options_turn_lds_off_with_the_reason_and_the_plugin_runs_on(workdir, vault):  # noqa: F811
    node = Node(workdir, options=lds_options(vault, **{"revenue-lds-operator-key": "secret"}))
    node.start()
    try:
        status = node.call("revenue-lds-status")
        assert status["enabled"] is False and "32 hex characters" in status["reason"]
        assert node.call("revenue-status")["lds"]["enabled"] is False
        with pytest.raises(RpcError, match="LDS is off: revenue-lds-operator-key"):
            node.call("revenue-lds-payout")
        assert node.cycle("fees")["fees"]["ok"]
    finally:
        node.stop()


class LosingProxy:
    """Forwards to LNbits, but after forwarding a dividend payout it drops the reply: LNbits paid,
    the plugin never hears it (as if it crashed right after sending)."""

    def __init__(self, target: str):
        import http.server
        import threading

        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                req = urllib.request.Request(target + self.path, data=body, method=self.command,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() in ("x-api-key", "content-type")})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, raw = resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    status, raw = err.code, err.read()
                if self.path.endswith("/payouts"):
                    proxy.dropped += 1
                    self.close_connection = True
                    return  # no reply at all
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _forward

        self.dropped = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_payout_whose_reply_was_lost_is_resumed_after_a_restart_and_paid_once(workdir, vault):  # noqa: F811
    investor = vault.investor("sim-lost", 3_000_000)
    vault.deposit(investor, 2_000_000, "90d")
    proxy = LosingProxy(vault.server.url)
    node = Node(workdir, options=lds_options(vault, **{"revenue-lds-lnbits-url": proxy.url}))
    node.start()
    try:
        before = vault.balance_msat(investor)
        # start on 2026-01-03: the vault already holds lds:2026-01-01 from the first test, and would
        # refuse (409) a second record of it with other amounts
        node.advance(48 * H)
        node.cycle("all")
        node.advance(24 * H)
        node.cycle("fees")
        lost = node.call("revenue-lds-payout")["payouts"][0]
        assert lost["status"] == "recorded" and lost["error"].startswith("LNbits POST payouts:")
        assert proxy.dropped == 1
        paid_once = vault.balance_msat(investor) - before
        assert paid_once > 0  # LNbits did pay; the plugin only has the period recorded
        assert node.call("revenue-lds-status")["periods"][0]["status"] == "recorded"
    finally:
        node.stop()
        proxy.close()
    node = Node(workdir, options=lds_options(vault))  # restart on the same database, straight to LNbits
    node.start()
    try:
        node.cycle("fees")
        result = node.call("revenue-lds-payout")["payouts"]
        assert result[0]["period_key"] == "lds:2026-01-03" and result[0]["status"] == "paid"
        assert result[0]["already_paid"] == result[0]["lines"]  # every line was already paid
        assert vault.balance_msat(investor) - before == paid_once
        assert node.call("revenue-lds-status")["periods"][0]["status"] == "paid"
    finally:
        node.stop()
