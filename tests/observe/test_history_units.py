"""revenue-history and the report with the rebalancer's store records (`rebalance_spend_msat`),
which the rebalancer branch provides: used when present, and said to be unknown when not."""

from __future__ import annotations

from revops.accounting.history import revenue_history
from revops.report.data import load
from revops.report.html import render
from revops.store import Store


class FakeRpc:
    def call(self, method, params=None):
        return {"listpeerchannels": {"channels": [
                    {"short_channel_id": "1x1x0", "channel_id": "aa", "peer_id": "02a", "state": "CHANNELD_NORMAL",
                     "total_msat": 10_000_000, "to_us_msat": 4_000_000}]},
                "listclosedchannels": {"closedchannels": [
                    {"short_channel_id": "2x2x0", "channel_id": "bb", "peer_id": "02b", "total_msat": 5_000_000,
                     "final_to_us_msat": 1_000_000}]}}[method]


class StoreWithoutRebalances:
    """A store as it was before the rebalancer existed: no rebalance_spend_msat."""

    def __init__(self, store: Store):
        self.store = store

    def __getattr__(self, name):
        if name == "rebalance_spend_msat":
            raise AttributeError(name)
        return getattr(self.store, name)


class StoreWithRebalances:
    """A store plus the rebalancer's spend query, answering fixed amounts per scid."""

    def __init__(self, store: Store, spend: dict[str, int]):
        self.store, self.spend = store, spend

    def daily_history(self, scid=None):
        return self.store.daily_history(scid)

    def rebalance_spend_msat(self, since_s, until_s, scid=None):
        return self.spend.get(scid, 0) if scid else sum(self.spend.values())

    def _conn(self):
        return self.store._conn()


def forwards(n: int, out: str, t0: float) -> list[dict]:
    return [{"in_channel": "9x9x0", "in_htlc_id": i, "out_channel": out, "in_msat": 100_500, "out_msat": 100_000,
             "fee_msat": 500, "status": "settled", "received_time": t0 + i * 600, "resolved_time": t0 + i * 600 + 1}
            for i in range(n)]


def test_store_history_uses_the_rebalancers_records_when_the_store_has_them(tmp_path):
    with Store(tmp_path / "db.sqlite3") as store:
        store.ingest_forwards(forwards(10, "1x1x0", 1_700_000_000) + [
            {**f, "in_htlc_id": 100 + i} for i, f in enumerate(forwards(4, "2x2x0", 1_700_000_000))])
        plain = revenue_history(FakeRpc(), StoreWithoutRebalances(store), 1_700_100_000, None,
                                use_bookkeeper=False)
        assert plain["totals"]["routing_income_msat"] == 14 * 500
        assert plain["closed_channels"]["routing_income_msat"] == 4 * 500
        assert any("rebalance costs unknown" in note for note in plain["notes"])
        h = revenue_history(FakeRpc(), StoreWithRebalances(store, {"1x1x0": 1_200}), 1_700_100_000, None,
                            use_bookkeeper=False)
        rows = {r["scid"]: r for r in h["channels"]}
        assert rows["1x1x0"]["rebalance_cost_msat"] == 1_200 and rows["1x1x0"]["net_msat"] == 5_000 - 1_200
        assert rows["2x2x0"]["status"] == "closed" and h["totals"]["net_msat"] == 7_000 - 1_200
        assert not any("rebalance costs unknown" in note for note in h["notes"])


def test_report_draws_rebalance_spend_and_its_burn_when_recorded(tmp_path):
    with Store(tmp_path / "db.sqlite3") as store:
        store.ingest_forwards(forwards(30, "1x1x0", 1_700_000_000))
        plain = render(load(StoreWithoutRebalances(store), 100))
        assert "rebalance spend unknown" in plain and "cumulative rebalance spend" not in plain
        page = render(load(StoreWithRebalances(store, {"1x1x0": 50_000}), 100))
        assert 'aria-label="Cumulative rebalance spend"' in page and "rebalance spend (sat)" in page
