"""The fixed set of actions a rule's `then` may call, registered by name in one table.

`revops check` reads this table, so an unknown action or a wrong argument is a compile
error with a location, never a surprise at run time (charge-lnd's `@strategy` lesson).

Kinds decide how the engine combines matching rules:
  target     the fee a stage proposes; the first stage with a matching target wins
  modifier   premiums applied to the winning fee (skipped for clamp-exempt stages)
  bound      floors and ceilings, all applied (skipped for clamp-exempt stages)
  guard      vetoes a fee change proposed by the guard's own stage or a later one
  broadcast  gossip discipline: force or suppress the channel_update (post stages)
  state      per-channel memory the next evaluation reads as state.*
  rebalance  instructions to the rebalancer
  sync       peer-level fee syncing: the channels of one peer that take part get one price
"""

from __future__ import annotations

from dataclasses import dataclass

# Argument kinds: "number" and "string" are DSL expressions of that type; "flag" is a bare
# name of a bool state variable; "state" is a bare name of any state variable.


@dataclass(frozen=True)
class ArgSpec:
    name: str
    kind: str  # number | string | flag | state | value


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: str
    args: tuple[ArgSpec, ...]
    doc: str


def _spec(name: str, kind: str, doc: str, *args: tuple[str, str]) -> ActionSpec:
    return ActionSpec(name, kind, tuple(ArgSpec(n, k) for n, k in args), doc)


ACTIONS: dict[str, ActionSpec] = {s.name: s for s in (
    _spec("set_fee", "target", "propose this fee (ppm) for the channel", ("ppm", "number")),
    _spec("hold", "target", "keep the channel's current fee; later stages do not get a say"),
    _spec("multiply", "modifier", "multiply the winning fee by a factor (premiums, discounts)", ("factor", "number")),
    _spec("add_ppm", "modifier", "add ppm to the winning fee (may be negative)", ("ppm", "number")),
    _spec("raise_floor", "bound", "the fee may not go below this (ppm)", ("ppm", "number")),
    _spec("lower_ceiling", "bound", "the fee may not go above this (ppm)", ("ppm", "number")),
    _spec("veto", "guard", "block any fee change proposed by this stage or a later one", ("reason", "string")),
    _spec("sync_peer", "sync", "one price per peer: this channel's fee becomes the highest fee decided for the "
          "peer's channels whose rules also ask for sync_peer (emergency fees never take part)"),
    _spec("force_broadcast", "broadcast", "send the channel_update even if gossip discipline would hold it"),
    _spec("suppress_broadcast", "broadcast", "do not send this fee change now", ("reason", "string")),
    _spec("mark", "state", "set a bool state flag to true", ("flag", "flag")),
    _spec("clear", "state", "set a bool state flag to false", ("flag", "flag")),
    _spec("set_state", "state", "store a value in a state variable", ("name", "state"), ("value", "value")),
    _spec("skip_rebalance", "rebalance", "do not rebalance this channel (as source or target)", ("reason", "string")),
    _spec("rebalance_target", "rebalance",
          "refill this channel: pull up to amount_sat into it, paying at most max_ppm (effective)",
          ("amount_sat", "number"), ("max_ppm", "number")),
    _spec("rebalance_source", "rebalance",
          "this channel may give liquidity to targets; higher score is drawn from first", ("score", "number")),
)}

#: Actions the rebalancer reads from a decision (docs/rebalance.md).
REBALANCE_ROLES = {"rebalance_target": "target", "rebalance_source": "source"}

POST_PHASE_KINDS = {"broadcast", "state", "rebalance"}
