"""Wallet-reserve gauges for Prometheus, read from the last check at scrape time (no I/O)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from revops.reserve import SUSPENDS, WalletReserve

REASON = "wallet_below_reserve"


class ReserveCollector:
    def __init__(self, reserve: WalletReserve):
        self.reserve = reserve

    def describe(self):
        return []  # values are only known at scrape time

    def collect(self):
        s = self.reserve.last
        if s is None:
            return
        suspended = GaugeMetricFamily(
            "revops_wallet_reserve_suspended",
            "1 while an operation that spends capital is suspended because the wallet is below the reserve.",
            labels=["operation", "reason"])
        for op in SUSPENDS:
            op_label = op.lower().replace(" ", "_")
            suspended.add_metric([op_label, REASON if s.suspended else ""], 1.0 if s.suspended else 0.0)
        yield suspended
        yield GaugeMetricFamily("revops_wallet_funds_sat", "Confirmed on-chain plus spendable channel sats at "
                                "the last wallet-reserve check.", value=s.funds_sat)
        yield GaugeMetricFamily("revops_wallet_reserve_sat", "The active policy's wallet_reserve_sat.",
                                value=s.reserve_sat)


def register_reserve_metrics(registry: CollectorRegistry, reserve: WalletReserve) -> ReserveCollector:
    collector = ReserveCollector(reserve)
    registry.register(collector)
    return collector
