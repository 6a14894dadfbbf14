"""The payout loop (revops.lds.driver) against the real vault: pro rata to TWAB with tiers, the
high-water mark, a halt, and a crash between recording and paying."""

from __future__ import annotations

import calendar

import pytest

from revops.lds.driver import Lds
from revops.lds.lnbits import LnbitsError, VaultClient
from revops.lds.params import LdsParams
from revops.store import Store

H, DAY = 3600, 86400
CARRY = {"flex": 0.30, "short": 0.30, "30d": 0.15, "90d": 0.0}


class FakeNode:
    """listpeerchannels/listfunds/feerates of a node with `local_msat` spendable in one channel."""

    def __init__(self, local_msat: int):
        self.local_msat = local_msat

    def call(self, method, params=None):
        if method == "listpeerchannels":
            return {"channels": [{"state": "CHANNELD_NORMAL", "spendable_msat": self.local_msat,
                                  "to_us_msat": self.local_msat, "htlcs": []}]}
        if method == "listfunds":
            return {"outputs": []}
        if method == "feerates":
            return {"perkw": {"unilateral_close": 1000, "estimates": []}}
        raise AssertionError(method)


def day0(date: str) -> int:
    return calendar.timegm(tuple(map(int, date.split("-"))) + (0, 0, 0, 0, 0, 0))


def add_fees(store: Store, at_s: float, fee_msat: int) -> None:
    """One settled forward earning fee_msat at at_s (kind 1 = settled)."""
    with store._conn() as conn:
        conn.execute("INSERT INTO forwards (in_channel, status, t, kind, fee_msat) VALUES ('1x1x1', 1, ?, 1, ?)",
                     (at_s, fee_msat))


def make_lds(tmp_path, vault, node, opex_sat_per_day=0, client=None) -> Lds:
    store = Store(tmp_path / "revops.sqlite3")
    params = LdsParams(vault.server.url, vault.operator["adminkey"], 0.85, CARRY, opex_sat_per_day * 1000, 0)
    logs = []
    lds = Lds(node, store, params, lambda msg, level: logs.append((level, msg)), client=client)
    lds.logs = logs
    return lds


def snapshots(lds: Lds, start_s: int, end_s: int, step_s: int = 6 * H) -> None:
    """Snapshots every step_s (the plugin takes one an hour; TWAB needs no fixed step)."""
    for t in range(start_s, end_s, step_s):
        lds._snapshot(t)


@pytest.fixture
def node():
    return FakeNode(400_000_000_000)


def test_payout_is_pro_rata_to_twab_respects_tiers_and_pays_a_late_deposit_little(tmp_path, vault, node):
    a, b, c = vault.investor("pa", 20_000), vault.investor("pb", 40_000), vault.investor("pc", 40_000)
    vault.deposit(a, 10_000, "flex")
    vault.deposit(b, 30_000, "90d")
    lds = make_lds(tmp_path, vault, node)
    d0 = day0("2032-03-01")
    node.local_msat = 400_000_000  # node capital 400k sat; the vault's other tests' lots are in it too
    snapshots(lds, d0, d0 + 3 * DAY - H)
    vault.deposit(c, 30_000, "flex")  # one hour before the period closes: TWAB sniping
    snapshots(lds, d0 + 3 * DAY - H, d0 + 3 * DAY)
    add_fees(lds.store, d0 + 2 * DAY + 5 * H, 40_000_000)
    before = {w["id"]: vault.balance_msat(w) for w in (a, b, c)}
    dry = lds.payout(d0 + 3 * DAY + 60, dry_run=True)
    assert dry["dry_run"] and dry["period_key"] == "lds:2032-03-01" and dry["lines"] == []  # day 0 earned 0
    result = lds.payout(d0 + 3 * DAY + 60)
    assert [p["period_key"] for p in result["payouts"]] == ["lds:2032-03-01", "lds:2032-03-02", "lds:2032-03-03"]
    paid = {w["id"]: vault.balance_msat(w) - before[w["id"]] for w in (a, b, c)}
    node_twab = 400_000_000
    # each lot's share is its TWAB over the node's; flex keeps 70 %, 90d all of it
    assert paid[a["id"]] == 40_000_000 * 10_000_000 // node_twab * 70 // 100 // 1000 * 1000
    assert paid[b["id"]] == 40_000_000 * 30_000_000 // node_twab // 1000 * 1000
    assert paid[c["id"]] == int(40_000_000 * (30_000_000 / 72) / node_twab * 0.7) // 1000 * 1000  # 29 sat
    assert paid[a["id"]] == 700_000 and paid[b["id"]] == 3_000_000 and paid[c["id"]] == 29_000
    status = lds.status()
    assert status["periods"][0]["status"] == "paid" and status["hwm_deficit_msat"] == 0
    assert lds.payout(d0 + 3 * DAY + 120)["payouts"] == []  # nothing due: nothing paid twice
    assert {w["id"]: vault.balance_msat(w) - before[w["id"]] for w in (a, b, c)} == paid


def test_high_water_mark_recovers_losses_and_opex_before_any_payout(tmp_path, vault, node):
    a = vault.investor("hwm", 20_000)
    vault.deposit(a, 10_000, "90d")
    lds = make_lds(tmp_path, vault, node, opex_sat_per_day=5_000)
    d0 = day0("2032-04-01")
    node.local_msat = 100_000_000
    snapshots(lds, d0, d0 + 3 * DAY)
    add_fees(lds.store, d0 + H, 0)  # day 0: no fees, 5,000 sat OpEx -> 5,000 sat deficit
    add_fees(lds.store, d0 + DAY + H, 3_000_000)  # day 1: 3,000 - 5,000 -> deficit 7,000 sat
    add_fees(lds.store, d0 + 2 * DAY + H, 20_000_000)  # day 2: 20,000 - 5,000 = 15,000; 8,000 after recovery
    before = vault.balance_msat(a)
    lds.payout(d0 + 2 * DAY + 60)
    assert vault.balance_msat(a) == before  # two loss days: nothing paid
    assert lds.status()["hwm_deficit_msat"] == 7_000_000
    periods = {p["period_key"]: p for p in lds.status()["periods"]}
    assert periods["lds:2032-04-02"]["deficit_out_msat"] == 7_000_000
    assert periods["lds:2032-04-02"]["distributable_msat"] == 0
    lds.payout(d0 + 3 * DAY + 60)
    latest = lds.status()["periods"][0]
    assert latest["net_msat"] == 15_000_000 and latest["distributable_msat"] == 8_000_000
    share = vault.book()["investors"][a["id"]]["principal_msat"] / 100_000_000  # 90d: no carry
    assert vault.balance_msat(a) - before == int(8_000_000 * share) // 1000 * 1000 == 800_000
    assert lds.status()["hwm_deficit_msat"] == 0


def test_halted_solvency_records_nothing_and_pays_nothing(tmp_path, vault, node):
    a = vault.investor("halt", 20_000)
    vault.deposit(a, 10_000, "90d")
    lds = make_lds(tmp_path, vault, node)
    d0 = day0("2032-05-01")
    node.local_msat = 100_000_000
    snapshots(lds, d0, d0 + DAY)
    add_fees(lds.store, d0 + H, 10_000_000)
    reserve_msat = 3_300_000  # one channel at the 3,000 sat floor + 10 %
    node.local_msat = int(vault.book()["liabilities_msat"] / 0.9) + reserve_msat  # 90 % > 85 %
    before = vault.balance_msat(a)
    result = lds.payout(d0 + DAY + 60)
    assert result["payouts"][0]["status"] == "halted" and "above 85%" in result["payouts"][0]["reason"]
    assert lds.status()["periods"] == [] and lds.status()["payouts_halted"] is True
    assert vault.balance_msat(a) == before
    node.local_msat = 10**12  # liquidity is back: the same period is paid, once
    assert lds.payout(d0 + DAY + 120)["payouts"][0]["status"] == "paid"
    assert vault.balance_msat(a) > before


class Crash(BaseException):
    """The process dies here (not an error anyone catches)."""


class CrashingClient(VaultClient):
    def __init__(self, url, key, after_paying: bool):
        super().__init__(url, key)
        self.after_paying = after_paying

    def payout(self, period_key, lines):
        if self.after_paying:
            super().payout(period_key, lines)
        raise Crash()


@pytest.mark.parametrize("after_paying", [False, True], ids=["before-paying", "after-paying"])
def test_crash_between_recording_and_paying_resumes_without_paying_twice(tmp_path, vault, node, after_paying):
    a = vault.investor(f"crash{int(after_paying)}", 20_000)
    vault.deposit(a, 10_000, "90d")
    d0 = day0("2032-06-01" if after_paying else "2032-07-01")
    node.local_msat = 10**11  # 100M sat: solvent whatever the other tests left in the vault
    crashing = make_lds(tmp_path, vault, node,
                        client=CrashingClient(vault.server.url, vault.operator["adminkey"], after_paying))
    snapshots(crashing, d0, d0 + DAY)
    add_fees(crashing.store, d0 + H, 10**9)
    before = vault.balance_msat(a)
    with pytest.raises(Crash):
        crashing.payout(d0 + DAY + 60)
    recorded = crashing.ledger.unpaid_periods()
    assert [p["period_key"] for p in recorded] == [f"lds:{'2032-06-01' if after_paying else '2032-07-01'}"]
    owed = sum(x["amount_msat"] for x in crashing.ledger.lines(recorded[0]["period_key"]) if x["wallet_id"] == a["id"])
    assert owed > 0
    lines = len(crashing.ledger.lines(recorded[0]["period_key"]))  # every investor in the vault
    assert vault.balance_msat(a) - before == (owed if after_paying else 0)
    crashing.store.close()
    crashing.close()
    restarted = make_lds(tmp_path, vault, node)  # same database, a new process
    result = restarted.payout(d0 + DAY + 120)
    assert result["payouts"][0]["status"] == "paid"
    assert result["payouts"][0]["already_paid"] == (lines if after_paying else 0)
    assert vault.balance_msat(a) - before == owed  # exactly once
    assert restarted.payout(d0 + DAY + 180)["payouts"] == []
    assert vault.balance_msat(a) - before == owed


def test_unreachable_lnbits_is_one_clear_error(tmp_path, vault, node):
    params = LdsParams("http://127.0.0.1:9", vault.operator["adminkey"], 0.85, CARRY)
    lds = Lds(node, Store(tmp_path / "x.sqlite3"), params, lambda m, l: None)
    result = lds.tick(1_900_000_000)
    assert result["error"].startswith("LNbits GET book:") and lds.status()["last_error"] == result["error"]
    bad_key = Lds(node, Store(tmp_path / "y.sqlite3"), LdsParams(vault.server.url, "0" * 32, 0.85, CARRY),
                  lambda m, l: None)
    with pytest.raises(LnbitsError, match="HTTP 404: Wallet not found"):
        bad_key.client.book()
