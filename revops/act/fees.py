"""The fee actuator: setchannel only when the decision calls for it and the chain fee differs.

Idempotency: the fee lightningd reports (updates.local, else fee_proportional_millionths)
is compared first, so a `1 -> 1` update never reaches lightningd. In dry-run nothing is
called; the journal records "would set".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from revops.node.rpc import NodeRpc, NodeRpcError


@dataclass(frozen=True)
class FeeResult:
    scid: str
    applied: bool  # setchannel succeeded
    would_apply: bool  # the decision calls for a change on chain (what dry-run reports)
    error: str | None = None


def chain_fee_ppm(channel: Mapping[str, Any]) -> int | None:
    """The fee lightningd currently has for this channel."""
    local = (channel.get("updates") or {}).get("local") or {}
    fee = local.get("fee_proportional_millionths", channel.get("fee_proportional_millionths"))
    return int(fee) if isinstance(fee, int) else None


class FeeActuator:
    def __init__(self, rpc: NodeRpc, dry_run: bool):
        self.rpc = rpc
        self.dry_run = dry_run
        self.setchannel_calls = 0

    def apply(self, decision, channel: Mapping[str, Any] | None) -> FeeResult:
        """Carry out one decision; an RPC error is returned, never raised."""
        if decision.action != "set_fee" or not decision.broadcast:
            return FeeResult(decision.scid, False, False)
        if channel is not None and chain_fee_ppm(channel) == decision.fee_ppm:
            return FeeResult(decision.scid, False, False)  # already there: nothing to send
        if self.dry_run:
            return FeeResult(decision.scid, False, True)
        self.setchannel_calls += 1
        try:
            self.rpc.call("setchannel", {"id": decision.scid, "feeppm": decision.fee_ppm})
        except NodeRpcError as err:
            return FeeResult(decision.scid, False, True, f"setchannel failed: {err.message} (code {err.code})")
        return FeeResult(decision.scid, True, True)
