"""LDS gauges for Prometheus, read from the driver's last state at scrape time (no I/O)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily


class LdsCollector:
    def __init__(self, lds):
        self.lds = lds

    def describe(self):
        return []  # values are only known at scrape time

    def collect(self):
        s = self.lds.solvency
        gauges = [
            ("revops_lds_liabilities_msat", "Principal owed to LDS investors at the last solvency check.",
             s.liabilities_msat if s else None),
            ("revops_lds_physical_liquidity_msat", "Spendable local minus pending out HTLCs plus confirmed "
             "on-chain minus the close reserve, at the last solvency check.", s.physical_msat if s else None),
            ("revops_lds_close_reserve_msat", "Close reserve priced from the feerates of the last check.",
             s.close_reserve_msat if s else None),
            ("revops_lds_liability_ratio", "Liabilities over physical liquidity (absent when physical <= 0).",
             s.ratio if s else None),
            ("revops_lds_payouts_halted", "1 when the solvency check halts payouts and queues withdrawals.",
             (1 if s.halted else 0) if s else None),
            ("revops_lds_hwm_deficit_msat", "Losses and costs to recover before the next payout (high-water "
             "mark).", self._deficit()),
            ("revops_lds_dividends_paid_msat", "Dividends paid to investors since the start.",
             self.lds.ledger.paid_total_msat()),
            ("revops_lds_queued_withdrawals", "Withdrawals waiting in the vault queue at the last read.",
             len((self.lds.last_book or {}).get("queue", [])) if self.lds.last_book else None),
        ]
        for name, doc, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value)

    def _deficit(self):
        last = self.lds.ledger.last_period()
        return last["deficit_out_msat"] if last else 0


def register_lds_metrics(registry: CollectorRegistry, lds) -> LdsCollector:
    collector = LdsCollector(lds)
    registry.register(collector)
    return collector
