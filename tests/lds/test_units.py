"""LDS pure parts: TWAB, solvency, high-water mark, payout table, options."""

from __future__ import annotations

import pytest

from revops.lds.distribute import Position, payout_table
from revops.lds.params import LdsConfigError, from_options, parse_carry
from revops.lds.profit import high_water_mark
from revops.lds.solvency import assess, close_reserve_msat
from revops.lds.twab import twab_msat

H = 3600
KEY = "0123456789abcdef0123456789abcdef"


def test_twab_counts_a_young_deposit_only_for_the_time_it_was_present():
    window = (0, 72 * H)
    old = [(-10 * H, 1_000_000)]
    young = [(71 * H, 72_000_000)]  # 72x the balance, present 1 hour of 72
    assert twab_msat(old, *window) == 1_000_000
    assert twab_msat(young, *window) == 1_000_000
    # hourly steps: 0 for 36 h then 2M for 36 h -> 1M
    assert twab_msat([(0, 0), (36 * H, 2_000_000)], *window) == 1_000_000
    # a withdrawal halfway counts the balance only while it was there
    assert twab_msat([(-H, 4_000_000), (18 * H, 0)], *window) == 1_000_000
    assert twab_msat([], *window) == 0
    with pytest.raises(ValueError):
        twab_msat(old, 5, 5)


def _chan(spendable, to_us, htlcs=(), state="CHANNELD_NORMAL"):
    return {"state": state, "spendable_msat": spendable, "to_us_msat": to_us,
            "htlcs": [{"direction": d, "amount_msat": a} for d, a in htlcs]}


FEERATES = {"perkw": {"unilateral_close": 2500, "estimates": [{"blockcount": 2, "feerate": 5000}]}}


def test_close_reserve_prices_the_urgent_rate_and_never_goes_below_the_floor():
    # 5000 perkw = 20 sat/vB x 500 vB = 10,000 sat, +10 % insurance, per channel
    assert close_reserve_msat(2, FEERATES) == 2 * 11_000_000
    cheap = {"perkw": {"unilateral_close": 253, "estimates": []}}
    assert close_reserve_msat(1, cheap) == 3_300_000  # 3,000 sat floor + 10 %
    # 100 sat/vB (the red team's case) costs 50,000 sat per channel, not 3,000
    assert close_reserve_msat(1, {"perkw": {"unilateral_close": 25_000}}) == 55_000_000
    with pytest.raises(ValueError):
        close_reserve_msat(1, {})


def test_solvency_subtracts_pending_htlcs_and_reserve_and_halts_above_the_limit():
    peers = {"channels": [_chan(500_000_000, 600_000_000, [("out", 20_000_000), ("in", 7)]),
                          _chan(300_000_000, 300_000_000),
                          _chan(999_000_000, 999_000_000, state="ONCHAIN")]}  # closing: not liquid
    funds = {"outputs": [{"amount_msat": 100_000_000, "status": "confirmed"},
                         {"amount_msat": 50_000_000, "status": "unconfirmed"}]}
    s = assess(500_000_000, peers, funds, FEERATES, 0.85, 1000.0)
    assert s.spendable_msat == 800_000_000 and s.pending_out_msat == 20_000_000
    assert s.onchain_msat == 100_000_000 and s.close_reserve_msat == 22_000_000
    assert s.physical_msat == 858_000_000
    assert not s.halted and s.ratio == pytest.approx(500 / 858, abs=1e-6)
    s = assess(760_000_000, peers, funds, FEERATES, 0.85, 1000.0)
    assert s.halted and "above 85%" in s.reason
    empty = assess(1, {"channels": []}, {"outputs": []}, FEERATES, 0.85, 0)
    assert empty.halted and empty.ratio is None


def test_high_water_mark_recovers_losses_before_paying():
    assert high_water_mark(-5000, 0) == (0, 5000)
    assert high_water_mark(3000, 5000) == (0, 2000)
    assert high_water_mark(3000, 2000) == (1000, 0)
    assert high_water_mark(700, 0) == (700, 0)
    with pytest.raises(ValueError):
        high_water_mark(1, -1)


def test_payout_table_is_pro_rata_to_twab_less_carry_by_tier():
    positions = [Position("l1", "A", "flex", 100_000), Position("l2", "B", "90d", 100_000),
                 Position("l3", "B", "flex", 200_000)]
    lines, operator = payout_table(1_000_000, positions, 1_000_000, {"flex": 0.30, "90d": 0.0})
    by = {x.wallet_id: x.amount_msat for x in lines}
    assert by == {"A": 70_000, "B": 100_000 + 140_000}
    assert operator == 1_000_000 - 310_000
    # investors never get more than all of it, even if the node snapshot lags their capital
    lines, _ = payout_table(1000, [Position("l", "A", "90d", 5000)], 10, {"90d": 0.0})
    assert lines[0].amount_msat == 1000
    with pytest.raises(ValueError, match="no carry configured for tier"):
        payout_table(1000, [Position("l", "A", "weird", 1)], 10, {"flex": 0.3})
    with pytest.raises(ValueError):
        payout_table(-1, positions, 10, {"flex": 0.3, "90d": 0})


def test_options_give_one_clear_error_each():
    assert from_options({}) is None
    good = {"revenue-lds-lnbits-url": "http://127.0.0.1:5000", "revenue-lds-operator-key": KEY}
    params = from_options(good)
    assert params.max_liability_ratio == 0.85 and params.carry_by_tier["flex"] == 0.30
    for bad, fragment in [
        ({"revenue-lds-lnbits-url": "ftp://x"}, "http(s) URL"),
        ({"revenue-lds-operator-key": "not-a-key"}, "32 hex"),
        ({"revenue-lds-operator-key": KEY[:-1] + "Z"}, "32 hex"),
        ({"revenue-lds-max-liability-ratio": "1.5"}, "(0, 1]"),
        ({"revenue-lds-opex-sat-per-day": "-3"}, "0 or more"),
        ({"revenue-lds-carry": "flex:1.2"}, "fraction"),
    ]:
        with pytest.raises(LdsConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            from_options({**good, **bad})
    assert parse_carry("a:0.5, b:0") == {"a": 0.5, "b": 0.0}


def test_metrics_collector_reads_the_last_check_without_io():
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, generate_latest

    from revops.lds.metrics import register_lds_metrics
    from revops.lds.solvency import Solvency

    ledger = SimpleNamespace(last_period=lambda: {"deficit_out_msat": 7000}, paid_total_msat=lambda: 123)
    lds = SimpleNamespace(solvency=None, ledger=ledger, last_book=None)
    registry = CollectorRegistry(auto_describe=True)
    register_lds_metrics(registry, lds)
    text = generate_latest(registry).decode()
    assert "revops_lds_hwm_deficit_msat 7000.0" in text and "revops_lds_payouts_halted" not in text
    lds.solvency = Solvency(0, 90, 100, 0, 0, 0, 100, 0.9, 0.85, True, "x")
    lds.last_book = {"queue": [{}, {}]}
    text = generate_latest(registry).decode()
    assert "revops_lds_payouts_halted 1.0" in text and "revops_lds_liability_ratio 0.9" in text
    assert "revops_lds_queued_withdrawals 2.0" in text and "revops_lds_dividends_paid_msat 123.0" in text


def test_a_period_is_recorded_once_with_all_its_lines(tmp_path):
    import sqlite3

    from revops.lds.ledger import Ledger
    from revops.store import Store

    store = Store(tmp_path / "s.sqlite3")
    ledger = Ledger(store.path)
    period = {"period_key": "lds:2026-01-01", "start_s": 0, "end_s": 86400, "net_msat": 5000,
              "deficit_in_msat": 0, "deficit_out_msat": 0, "distributable_msat": 5000, "detail": {}}
    lines = [{"wallet_id": "a", "amount_msat": 3000, "twab_msat": 1, "share": 0.5}]
    ledger.record_period(period, lines, 100)
    assert [p["status"] for p in ledger.unpaid_periods()] == ["recorded"]
    with pytest.raises(sqlite3.IntegrityError):
        ledger.record_period(period, lines, 200)  # the same key twice: refused, nothing changes
    bad = {**period, "period_key": "lds:2026-01-02"}
    with pytest.raises(sqlite3.IntegrityError):  # one bad line rolls back the whole period
        ledger.record_period(bad, lines + [{"wallet_id": "b", "amount_msat": -1, "twab_msat": 1, "share": 0}], 300)
    assert ledger.last_period()["period_key"] == "lds:2026-01-01"
    ledger.mark_paid("lds:2026-01-01", {"a": "hash"}, 400)
    assert ledger.unpaid_periods() == [] and ledger.paid_total_msat() == 3000
    ledger.close()
    store.close()


def test_close_reserve_follows_the_simulated_mempool_shock():
    """The reserve is priced from lightningd's own feerates (here the simulator's): it grows with the
    mempool, which a flat reserve would not."""
    from revops.sim.model_build import build_node
    from revops.sim.rpc import SimRpc

    node = build_node("mempool-shock", seed=7)
    rpc = SimRpc(node)

    def check():
        return assess(10**10, rpc("listpeerchannels", {}), rpc("listfunds", {}),
                      rpc("feerates", {"style": "perkw"}), 0.85, node.now_s)

    calm = check()
    node.advance(5 * 86400 + 9 * H)  # inside the scheduled day-5 shock
    shocked = check()
    assert shocked.close_reserve_msat > 5 * calm.close_reserve_msat
    assert shocked.physical_msat < calm.physical_msat
