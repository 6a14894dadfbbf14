"""The LDS loop: hourly snapshots, solvency on a schedule and before every payout, daily payouts.

Order of a payout, each step durable before the next:
  1. solvency check (halted -> nothing recorded, nothing paid; the period waits);
  2. net profit of the UTC day, through the high-water mark (a loss or OpEx deficit is repaid
     before anything is distributable);
  3. the payout table (pro rata to 72 h TWAB, operator carry by tier), written as one period
     row plus one line per wallet under the key `lds:YYYY-MM-DD`;
  4. payment through the vault extension, which also keys each line by (period, wallet);
  5. lines marked paid. A crash anywhere re-enters at 4 with the same key: never paid twice.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from revops.lds.distribute import Position, payout_table
from revops.lds.ledger import NODE_CAPITAL, NODE_LOCAL, NODE_ONCHAIN, Ledger
from revops.lds.lnbits import LnbitsError, VaultClient
from revops.lds.params import LdsParams
from revops.lds.profit import high_water_mark, net_profit
from revops.lds.solvency import USABLE_STATES, Solvency, assess
from revops.lds.twab import twab_msat
from revops.node.rpc import NodeRpcError

DAY_S = 86400
MAX_PERIODS_PER_TICK = 7
LOT_PREFIX = "lot:"


def period_key(start_s: float) -> str:
    return "lds:" + time.strftime("%Y-%m-%d", time.gmtime(start_s))


class Lds:
    def __init__(self, rpc, store, params: LdsParams, log: Callable[[str, str], None],
                 client: VaultClient | None = None, before_accounting: Callable[[], None] = lambda: None,
                 reserve: Callable[[], str | None] = lambda: None):
        self.rpc = rpc
        self.store = store
        self.params = params
        self.log = log
        self.client = client or VaultClient(params.lnbits_url, params.operator_key)
        self.ledger = Ledger(store.path)
        self.before_accounting = before_accounting
        # the wallet reserve (revops/reserve.py): a reason while payouts must wait, else None
        self.reserve = reserve
        self.deferred: str | None = None
        self.lock = threading.Lock()
        self.last_error: str | None = None
        self.last_book: dict | None = None
        self.solvency: Solvency | None = None

    def close(self) -> None:
        self.ledger.close()

    # -- schedule -----------------------------------------------------------------------------

    def tick(self, now: float) -> dict:
        """What is due now: a snapshot each hour, a solvency check each 10 min, due payouts."""
        out: dict = {}
        with self.lock:
            try:
                last = self.ledger.last_snapshot_s()
                if last is None or now - last >= self.params.snapshot_interval_s:
                    out["snapshot"] = self._snapshot(now)
                if self.solvency is None or now - self.solvency.at_s >= self.params.solvency_interval_s:
                    out["solvency"] = self._check_solvency(now).to_json()
                out["payouts"] = self._pay_due(now)
                self.last_error = None
            except (LnbitsError, NodeRpcError, ValueError) as err:
                out["error"] = self._fail(err)
        return out

    def _fail(self, err: Exception) -> str:
        if str(err) != self.last_error:  # once per new error, not every minute while LNbits is down
            self.log(f"lds: {err}", "warn")
        self.last_error = str(err)
        return str(err)

    # -- snapshots ----------------------------------------------------------------------------

    def _book(self) -> dict:
        self.last_book = self.client.book()
        return self.last_book

    def _snapshot(self, now: float) -> dict:
        book = self._book()
        rows = []
        for wallet, pos in book.get("investors", {}).items():
            for lot in pos.get("lots", []):
                rows.append((LOT_PREFIX + lot["id"], wallet, lot["tier"], int(lot["remaining_msat"])))
        local, onchain = self._node_balances_msat()
        capital = local + onchain
        self.ledger.record_snapshot(now, rows + [(NODE_CAPITAL, None, None, capital),
                                                 (NODE_LOCAL, None, None, local),
                                                 (NODE_ONCHAIN, None, None, onchain)])
        return {"at": now, "lots": len(rows), "node_capital_msat": capital,
                "liabilities_msat": book.get("liabilities_msat", 0)}

    def _node_balances_msat(self) -> tuple[int, int]:
        """(local balance of usable channels, confirmed on-chain outputs)."""
        channels = self.rpc.call("listpeerchannels").get("channels", [])
        funds = self.rpc.call("listfunds")
        local = sum(int(c.get("to_us_msat") or 0) for c in channels if c.get("state") in USABLE_STATES)
        onchain = sum(int(o.get("amount_msat") or 0) for o in funds.get("outputs", [])
                      if o.get("status") == "confirmed")
        return local, onchain

    # -- solvency -----------------------------------------------------------------------------

    def _check_solvency(self, now: float) -> Solvency:
        book = self._book()
        solvency = assess(int(book.get("liabilities_msat", 0)), self.rpc.call("listpeerchannels"),
                          self.rpc.call("listfunds"), self.rpc.call("feerates", {"style": "perkw"}),
                          self.params.max_liability_ratio, now)
        self.ledger.record_solvency(solvency)
        self.solvency = solvency
        if solvency.halted:
            self.log(f"lds: payouts halted: {solvency.reason}", "warn")
        # The vault pays queued withdrawals out of this physical liquidity, first come first served.
        reply = self.client.report_solvency(solvency.physical_msat, solvency.liabilities_msat,
                                            self.params.max_liability_ratio)
        for wd in reply.get("paid_withdrawals", []):
            self.log(f"lds: queued withdrawal of {wd['amount_msat'] // 1000} sat paid", "info")
        for wd in reply.get("withdrawal_errors", []):
            self.log(f"lds: queued withdrawal of {wd['amount_msat'] // 1000} sat not paid: {wd['error']}", "warn")
        return solvency

    # -- payouts ------------------------------------------------------------------------------

    def payout(self, now: float, dry_run: bool = False) -> dict:
        """The RPC: pay what is due now (or, dry_run, show the next payout table and pay nothing)."""
        with self.lock:
            try:
                if dry_run:
                    return self._dry_run(now)
                result = {"payouts": self._pay_due(now)}
                self.last_error = None
                return result
            except (LnbitsError, NodeRpcError, ValueError) as err:
                return {"error": self._fail(err)}

    def _next_period(self, now: float) -> tuple[float, float] | None:
        last = self.ledger.last_period()
        if last is not None:
            start = last["end_s"]
        else:
            first = self.ledger.first_snapshot_s()
            if first is None:
                return None
            start = first - first % DAY_S
        return (start, start + DAY_S) if start + DAY_S <= now else None

    def _pay_due(self, now: float) -> list[dict]:
        results: list[dict] = []
        checked = False
        for _ in range(MAX_PERIODS_PER_TICK):
            unpaid = self.ledger.unpaid_periods()
            span = None if unpaid else self._next_period(now)
            if not unpaid and span is None:
                break
            if not checked:  # the wallet reserve and solvency before every payout run
                key = unpaid[0]["period_key"] if unpaid else period_key(span[0])
                reason = self.reserve()
                if reason != self.deferred and reason:
                    self.log(f"lds: payout {key} deferred: {reason}", "warn")
                self.deferred = reason
                if reason:  # nothing recorded or paid: the period waits for the wallet
                    results.append({"status": "deferred", "reason": reason, "period_key": key})
                    break
                solvency = self._check_solvency(now)
                checked = True
                if solvency.halted:
                    results.append({"status": "halted", "reason": solvency.reason,
                                    "period_key": unpaid[0]["period_key"] if unpaid else period_key(span[0])})
                    break
            if unpaid:
                results.append(self._pay_recorded(unpaid[0], now))
                if results[-1]["status"] != "paid":
                    break
                continue
            self.before_accounting()
            period, lines = self._compute(*span)
            self.ledger.record_period(period, lines, now)
            self.log(f"lds: {period['period_key']} recorded: net {period['net_msat']} msat, "
                     f"{len(lines)} line(s), {sum(x['amount_msat'] for x in lines)} msat to investors", "info")
            if not lines:
                results.append({"period_key": period["period_key"], "status": "paid", "lines": 0,
                                 "reason": period["detail"]["why_nothing"]})
                continue
            results.append(self._pay_recorded(self.ledger.unpaid_periods()[0], now))
            if results[-1]["status"] != "paid":
                break
        return results

    def _pay_recorded(self, period: dict, now: float) -> dict:
        key = period["period_key"]
        lines = [x for x in self.ledger.lines(key) if x["status"] != "paid"]
        try:
            reply = self.client.payout(key, [{"wallet_id": x["wallet_id"], "amount_msat": x["amount_msat"]}
                                             for x in lines])
        except LnbitsError as err:
            self._fail(err)
            return {"period_key": key, "status": "recorded", "error": str(err)}
        paid = {x["wallet_id"]: x.get("payment_hash") for x in reply.get("lines", [])
                if x.get("status") in ("paid", "already_paid")}
        self.ledger.mark_paid(key, paid, now)
        return {"period_key": key, "status": "paid", "lines": len(paid),
                "paid_msat": sum(x["amount_msat"] for x in lines if x["wallet_id"] in paid),
                "already_paid": sum(1 for x in reply.get("lines", []) if x.get("status") == "already_paid")}

    def _compute(self, start_s: float, end_s: float) -> tuple[dict, list[dict]]:
        profit = net_profit(self.ledger.conn(), self.store, start_s, end_s, self.params.chain_cost_msat_per_day,
                            self.params.opex_msat_per_day)
        last = self.ledger.last_period()
        deficit_in = last["deficit_out_msat"] if last else 0
        distributable, deficit_out = high_water_mark(profit.net_msat, deficit_in)
        positions, node_twab = self._twabs(end_s)
        table, operator = payout_table(distributable, positions, node_twab, self.params.carry_by_tier)
        lines = [{"wallet_id": x.wallet_id, "amount_msat": x.amount_msat // 1000 * 1000, "twab_msat": x.twab_msat,
                  "share": x.share} for x in table if x.amount_msat >= 1000]  # LNbits pays whole sats
        why = None
        if distributable == 0:
            why = (f"high-water mark: {deficit_out} msat of past losses and costs to recover first"
                   if deficit_out else "no net profit")
        elif not lines:
            why = "no investor capital in the TWAB window"
        period = {"period_key": period_key(start_s), "start_s": start_s, "end_s": end_s,
                  "net_msat": profit.net_msat, "deficit_in_msat": deficit_in, "deficit_out_msat": deficit_out,
                  "distributable_msat": distributable,
                  "detail": {"profit": profit.to_json(), "node_twab_msat": node_twab,
                             "operator_msat": distributable - sum(x["amount_msat"] for x in lines),
                             "carry_by_tier": self.params.carry_by_tier, "why_nothing": why}}
        return period, lines

    def _twabs(self, end_s: float) -> tuple[list[Position], int]:
        start = end_s - self.params.twab_window_s
        positions, node = [], 0
        for key, entry in self.ledger.series(end_s).items():
            twab = twab_msat(entry["samples"], start, end_s)
            if key == NODE_CAPITAL:
                node = twab
            elif key.startswith(LOT_PREFIX):
                positions.append(Position(key[len(LOT_PREFIX):], entry["wallet_id"], entry["tier"], twab))
        return positions, node

    def _dry_run(self, now: float) -> dict:
        unpaid = self.ledger.unpaid_periods()
        if unpaid:
            p = unpaid[0]
            return {"dry_run": True, "period_key": p["period_key"], "status": "recorded, payment pending",
                    "lines": self.ledger.lines(p["period_key"])}
        span = self._next_period(now)
        if span is None:
            return {"dry_run": True, "period_key": None, "status": "no completed period to pay yet"}
        solvency = self._check_solvency(now)
        self.before_accounting()
        period, lines = self._compute(*span)
        return {"dry_run": True, **period, "halted": solvency.halted, "solvency": solvency.reason,
                "deferred": self.reserve(), "lines": lines}

    # -- queries ------------------------------------------------------------------------------

    def status(self) -> dict:
        last = self.ledger.last_period()
        book = self.last_book or {}
        return {"enabled": True, "lnbits_url": self.params.lnbits_url,
                "max_liability_ratio": self.params.max_liability_ratio,
                "carry_by_tier": self.params.carry_by_tier,
                "opex_msat_per_day": self.params.opex_msat_per_day,
                "chain_cost_msat_per_day": self.params.chain_cost_msat_per_day,
                "solvency": self.solvency.to_json() if self.solvency else self.ledger.last_solvency(),
                "payouts_halted": bool(self.solvency.halted) if self.solvency else None,
                "hwm_deficit_msat": last["deficit_out_msat"] if last else 0,
                "paid_total_msat": self.ledger.paid_total_msat(),
                "investors": len(book.get("investors", {})), "queued_withdrawals": len(book.get("queue", [])),
                "last_snapshot_s": self.ledger.last_snapshot_s(),
                "periods": [{k: p[k] for k in ("period_key", "status", "net_msat", "deficit_out_msat",
                                                "distributable_msat", "investors_msat")}
                            for p in self.ledger.periods(7)],
                "payouts_deferred": self.deferred, "last_error": self.last_error}

    def status_line(self) -> dict:
        s = self.solvency.to_json() if self.solvency else self.ledger.last_solvency()
        if s is None:
            return {"enabled": True, "solvency": "not checked yet", "last_error": self.last_error}
        return {"enabled": True, "payouts_halted": s["halted"], "liability_ratio": s["ratio"],
                "solvency": s["reason"], "payouts_deferred": self.deferred, "last_error": self.last_error}

    def investors(self, now: float) -> dict:
        with self.lock:
            try:
                book = self._book()
            except LnbitsError as err:
                raise LdsUnavailable(str(err)) from None
        start = now - self.params.twab_window_s
        series = self.ledger.series(now + 1)
        out = []
        for wallet, pos in sorted(book.get("investors", {}).items()):
            lots = []
            for lot in pos.get("lots", []):
                entry = series.get(LOT_PREFIX + lot["id"])
                lots.append({"lot_id": lot["id"], "tier": lot["tier"], "amount_msat": lot["amount_msat"],
                             "remaining_msat": lot["remaining_msat"], "locked_until": lot["locked_until"],
                             "twab_msat": twab_msat(entry["samples"], start, now + 1) if entry else 0})
            paid = self.ledger.conn().execute("SELECT coalesce(sum(amount_msat), 0) FROM lds_payout_lines "
                                              "WHERE wallet_id = ? AND status = 'paid'", (wallet,)).fetchone()[0]
            out.append({"wallet_id": wallet, "principal_msat": pos["principal_msat"],
                        "withdrawable_msat": pos["withdrawable_msat"],
                        "pending_withdrawals_msat": pos["pending_withdrawals_msat"],
                        "twab_msat": sum(x["twab_msat"] for x in lots), "dividends_paid_msat": paid, "lots": lots})
        return {"investors": out, "liabilities_msat": book.get("liabilities_msat", 0),
                "queue": book.get("queue", []), "twab_window_s": self.params.twab_window_s}


class LdsUnavailable(Exception):
    """The vault could not be read; the message says why."""
