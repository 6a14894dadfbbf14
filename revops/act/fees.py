"""The fee actuator: setchannel only when the decision calls for it and the chain fee differs.

Idempotency: the fee lightningd reports (updates.local, else fee_proportional_millionths)
is compared first, so a `1 -> 1` update never reaches lightningd. In dry-run nothing is
called; the journal records "would set". A fee outside the hard limits (limits.py) is
refused before anything else, dry-run included.

`check` decides without calling lightningd; `send` calls setchannel. The runtime runs all
the checks of a cycle first, journals the intents of the sends (act/journal.py), then sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from revops.act.limits import MAX_FEE_PPM, fee_refusal
from revops.facts import current_fee_ppm
from revops.node.rpc import NodeRpc, NodeRpcError


@dataclass(frozen=True)
class FeeResult:
    scid: str
    applied: bool  # setchannel succeeded
    would_apply: bool  # the decision calls for a change on chain (what dry-run reports)
    error: str | None = None
    refused: bool = False  # outside the actuator's hard limits: nothing was sent


class FeeActuator:
    def __init__(self, rpc: NodeRpc, dry_run: bool, max_fee_ppm: int = MAX_FEE_PPM):
        self.rpc = rpc
        self.dry_run = dry_run
        self.max_fee_ppm = max_fee_ppm
        self.setchannel_calls = 0

    def check(self, decision, channel: Mapping[str, Any] | None) -> FeeResult | None:
        """Returns the outcome when no setchannel is due (nothing to do, refused, dry-run),
        None when `send` should run."""
        if decision.action != "set_fee" or not decision.broadcast:
            return FeeResult(decision.scid, False, False)
        refusal = fee_refusal(decision.fee_ppm, self.max_fee_ppm, getattr(decision, "fee_base_msat", None))
        if refusal:
            return FeeResult(decision.scid, False, False, refusal, refused=True)
        if channel is not None and current_fee_ppm(channel) == decision.fee_ppm:
            return FeeResult(decision.scid, False, False)  # already there: nothing to send
        if self.dry_run:
            return FeeResult(decision.scid, False, True)
        return None

    def send(self, decision) -> FeeResult:
        """Calls setchannel for a decision `check` let through; an RPC error is returned, never raised."""
        self.setchannel_calls += 1
        try:
            self.rpc.call("setchannel", {"id": decision.scid, "feeppm": decision.fee_ppm})
        except NodeRpcError as err:
            return FeeResult(decision.scid, False, True, f"setchannel failed: {err.message} (code {err.code})")
        return FeeResult(decision.scid, True, True)

    def apply(self, decision, channel: Mapping[str, Any] | None) -> FeeResult:
        """Carry out one decision (check, then send if due); an RPC error is returned, never raised."""
        return self.check(decision, channel) or self.send(decision)
