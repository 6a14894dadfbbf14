"""Per-channel money in and out, from bookkeeper's account events or from revops' own store.

A ledger maps a channel key (channel_id for bookkeeper, scid for the store) to a `Line`:
routing income, rebalance costs and on-chain costs (open, close, other: splices and
anything else spent on a transaction touching the channel).

On-chain fees, from bookkeeper: a transaction's fee is the sum of its `onchain_fee` events
(debit minus credit) over every account, wallet included; bookkeeper may book it on the
wallet (our funding) or on the channel (closes). The fee belongs to the channels the
transaction touches: the channels it funds (their `channel_open` outpoint is in it), closes
(`channel_close` with that txid) or that carry an `onchain_fee` for it. A batch transaction
(one funding tx for several channels, `multifundchannel`) is split evenly over its channels
in output order, the first `fee % n` channels taking one msat more, so the parts add up to
the fee exactly and nothing is counted twice. A fee touching no channel (withdrawals) stays
with the wallet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

WALLET = "wallet"


@dataclass
class Line:
    routing_income_msat: int = 0
    sourced_income_msat: int = 0  # fees of forwards that came in through the channel (not added to net)
    rebalance_cost_msat: int = 0
    open_cost_msat: int = 0
    close_cost_msat: int = 0
    other_onchain_cost_msat: int = 0

    @property
    def onchain_cost_msat(self) -> int:
        return self.open_cost_msat + self.close_cost_msat + self.other_onchain_cost_msat

    @property
    def net_msat(self) -> int:
        return self.routing_income_msat - self.rebalance_cost_msat - self.onchain_cost_msat

    def add(self, other: "Line") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def to_json(self) -> dict:
        return {**asdict(self), "onchain_cost_msat": self.onchain_cost_msat, "net_msat": self.net_msat}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _vout(outpoint: Any) -> int:
    tail = str(outpoint or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def bookkeeper_ledger(events: Iterable[Mapping[str, Any]], start_s: float = 0, end_s: float = float("inf")
                      ) -> tuple[dict[str, Line], int]:
    """Returns ({channel_id: Line}, wallet on-chain fees touching no channel) from
    bkpr-listaccountevents events whose timestamp is in [start_s, end_s]."""
    lines: dict[str, Line] = {}
    line = lambda account: lines.setdefault(account, Line())  # noqa: E731
    tx_fee: dict[str, int] = {}             # txid -> fee, all accounts
    tx_channels: dict[str, dict[str, int]] = {}  # txid -> {channel account: output order}
    tx_kind: dict[str, str] = {}            # txid -> open | close
    rebalance_in: dict[str, str] = {}       # payment_id -> account that received the liquidity
    rebalance_fees: list[tuple[str, str | None, int]] = []  # (paying account, payment_id, fee)
    for e in events:
        account, tag, kind = e.get("account"), e.get("tag"), e.get("type")
        if not isinstance(account, str):
            continue
        in_period = start_s <= _int(e.get("timestamp")) <= end_s
        if kind == "chain" and account != WALLET:
            if tag == "channel_open":
                txid = str(e.get("outpoint") or "").rpartition(":")[0]
                tx_channels.setdefault(txid, {})[account] = _vout(e.get("outpoint"))
                tx_kind.setdefault(txid, "open")
            elif tag == "channel_close" and e.get("txid"):
                tx_channels.setdefault(e["txid"], {}).setdefault(account, 0)
                tx_kind.setdefault(e["txid"], "close")
        elif kind == "onchain_fee" and e.get("txid"):
            if in_period:
                tx_fee[e["txid"]] = tx_fee.get(e["txid"], 0) + _int(e.get("debit_msat")) - _int(e.get("credit_msat"))
            if account != WALLET:
                tx_channels.setdefault(e["txid"], {}).setdefault(account, 0)
        elif kind == "channel" and in_period:
            fees = _int(e.get("fees_msat"))
            if e.get("is_rebalance"):
                if _int(e.get("credit_msat")) and e.get("payment_id"):
                    rebalance_in[e["payment_id"]] = account
                elif _int(e.get("debit_msat")) and fees:
                    rebalance_fees.append((account, e.get("payment_id"), fees))
            elif tag == "routed":
                if _int(e.get("debit_msat")):
                    line(account).routing_income_msat += fees
                elif _int(e.get("credit_msat")):
                    line(account).sourced_income_msat += fees
    # a rebalance's fee is the cost of the liquidity it bought: book it on the channel it filled
    for paying, payment_id, fee in rebalance_fees:
        line(rebalance_in.get(payment_id, paying)).rebalance_cost_msat += fee
    wallet_msat = 0
    for txid, fee in tx_fee.items():
        channels = sorted(tx_channels.get(txid, {}).items(), key=lambda kv: (kv[1], kv[0]))
        if not channels:
            wallet_msat += fee
            continue
        share, rest = divmod(fee, len(channels))
        field = {"open": "open_cost_msat", "close": "close_cost_msat"}.get(tx_kind.get(txid, ""),
                                                                          "other_onchain_cost_msat")
        for i, (account, _) in enumerate(channels):
            setattr(line(account), field, getattr(line(account), field) + share + (1 if i < rest else 0))
    return lines, wallet_msat


def store_ledger(daily: Iterable[Mapping[str, Any]], start_day: str = "", end_day: str = "9999-12-31"
                 ) -> dict[str, Line]:
    """Returns {scid: Line} of routing income from the store's daily totals (rollups of pruned
    forwards plus the forwards still kept), days in [start_day, end_day] (YYYY-MM-DD)."""
    lines: dict[str, Line] = {}
    for row in daily:
        if not start_day <= row["day"] <= end_day:
            continue
        line = lines.setdefault(row["scid"], Line())
        line.routing_income_msat += _int(row.get("fees_msat"))
        line.sourced_income_msat += _int(row.get("sourced_fees_msat"))
    return lines
