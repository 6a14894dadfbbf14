"""The wallet reserve (roadmap Phase 1): below it nothing that spends or commits capital runs.

The measure is the policy's `node.wallet_funds_sat` (facts/build.py): confirmed on-chain
outputs plus what active channels can spend; the threshold is the active policy's
`wallet_reserve_sat` param (runtime overrides included). What it suspends, and where:

  - rebalancing: act/rebalance.py stops our running sling jobs and starts none;
  - LDS dividend payouts: lds/driver.py defers a due payout, with this reason, until the
    wallet is back above the reserve (the period stays unrecorded, nothing is lost);
  - channel opens and splices: revops does neither (no fundchannel, splice or
    multifundchannel call anywhere), so there is nothing to stop.

Routing fees keep running (they refill the wallet); the fee side's answer is in the policy
(fees.yaml: no 0 ppm probe or underwater fire sale starts below the reserve).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

SUSPENDS = ("rebalancing", "LDS payouts")
NOT_DONE = "revops opens no channels and splices none"


@dataclass(frozen=True)
class ReserveStatus:
    funds_sat: int
    reserve_sat: int
    at_s: float

    @property
    def suspended(self) -> bool:
        return self.funds_sat < self.reserve_sat

    @property
    def reason(self) -> str | None:
        """Why capital is frozen, in one line; None when the wallet is above the reserve."""
        if not self.suspended:
            return None
        return (f"wallet {self.funds_sat:,} sat below reserve {self.reserve_sat:,} sat: "
                f"{' and '.join(SUSPENDS)} suspended")

    def to_json(self) -> dict:
        return {"suspended": self.suspended, "reason": self.reason, "funds_sat": self.funds_sat,
                "reserve_sat": self.reserve_sat, "at": self.at_s,
                "suspends": list(SUSPENDS) if self.suspended else [], "opens_and_splices": NOT_DONE}


def wallet_funds_sat(listfunds: Mapping[str, Any], listpeerchannels: Mapping[str, Any]) -> int:
    """Confirmed on-chain sats plus the spendable sats of active channels (node.wallet_funds_sat)."""
    onchain_msat = sum(int(o.get("amount_msat") or 0) for o in listfunds.get("outputs") or []
                       if isinstance(o, Mapping) and o.get("status") == "confirmed")
    spend_msat = sum(int(c.get("spendable_msat") or 0) for c in listpeerchannels.get("channels") or []
                     if isinstance(c, Mapping) and c.get("state") == "CHANNELD_NORMAL"
                     and c.get("peer_connected") is True)
    return onchain_msat // 1000 + spend_msat // 1000


class WalletReserve:
    """Checks the wallet against the active policy's reserve and remembers the last answer
    (read by revenue-status and the metrics exporter without any I/O)."""

    def __init__(self, rpc, reserve_sat: Callable[[], int], now: Callable[[], float],
                 log: Callable[[str, str], None]):
        self.rpc = rpc
        self.reserve_sat = reserve_sat  # the active policy's wallet_reserve_sat (host settings)
        self.now = now
        self.log = log
        self.last: ReserveStatus | None = None
        self._lock = threading.Lock()

    def check(self, replies: Mapping[str, Any] | None = None) -> ReserveStatus:
        """Reads the node now (raises NodeRpcError when it cannot), or takes `replies` (listfunds
        and listpeerchannels a cycle has just read); logs each change of state once."""
        if replies is None:
            replies = {"listfunds": self.rpc.call("listfunds"), "listpeerchannels": self.rpc.call("listpeerchannels")}
        funds = wallet_funds_sat(replies["listfunds"], replies["listpeerchannels"])
        status = ReserveStatus(funds, self.reserve_sat(), self.now())
        with self._lock:
            before, self.last = self.last, status
        if before is None or before.suspended != status.suspended:
            if status.suspended:
                self.log(status.reason, "warn")
            elif before is not None:
                self.log(f"wallet {funds:,} sat back above reserve {status.reserve_sat:,} sat: "
                         f"{' and '.join(SUSPENDS)} resume", "info")
        return status

    def suspension(self) -> str | None:
        """The reason spending is suspended now, or None (for LDS payouts)."""
        return self.check().reason


def refresh(reserve: WalletReserve, read: Callable[[], Mapping[str, Any]] | None = None) -> ReserveStatus | None:
    """A check that never raises (a cycle hook): None when the node cannot be read. `read`
    gives the replies to check against (the cycle's shared read), else the node is read."""
    try:
        return reserve.check(read() if read is not None else None)
    except Exception as err:  # NodeRpcError and friends: the last answer stays
        reserve.log(f"wallet reserve: cannot read the node: {err}", "warn")
        return None


def status_json(reserve: WalletReserve) -> dict:
    """revenue-status' view: checked now, or the last answer when the node cannot be read."""
    status = refresh(reserve) or reserve.last
    return status.to_json() if status else {"suspended": None, "reason": "not checked yet"}
