"""sling's RPC as revops uses it: create, start, watch, stop and delete pull jobs.

Shapes follow sling's real interface (cln-interfaces.md §4, peers.md §4 and §15):
`sling-job` takes keyword params only; `sling-stats` with json=true is a list of rows for all
jobs (`status` like ["1:Rebalancing"], `rebamount` a comma-formatted string of sats) and, per
scid, an object whose `successes_in_time_window` (or null) carries `total_amount_sats` and
`total_spent_sats`. Spend is read from those per-scid counters (deltas between two reads),
never computed from maxppm x amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from revops.node.rpc import NodeRpc, NodeRpcError

#: Task states that mean the job cannot make progress right now (back-pressure, not errors).
STALLED = frozenset({"NoCandidates", "NoCheapRoute", "HTLCcapped", "NoRoutes", "PeerNotReady", "Disconnected",
                     "PeerNotFound", "PeerBad", "ChanNotNormal", "GraphEmpty", "ChanNotInGraph", "Error",
                     "Stopped", "NotStarted"})


@dataclass(frozen=True)
class ScidStats:
    """sling's success counters for one target scid (its stats window, 30 days by default)."""

    rebalances: int = 0
    amount_sat: int = 0
    spent_sat: int = 0
    attempts_failed: int = 0

    def to_json(self) -> dict:
        return {"rebalances": self.rebalances, "amount_sat": self.amount_sat, "spent_sat": self.spent_sat,
                "attempts_failed": self.attempts_failed}

    @staticmethod
    def from_json(d: dict) -> "ScidStats":
        return ScidStats(int(d.get("rebalances", 0)), int(d.get("amount_sat", 0)), int(d.get("spent_sat", 0)),
                         int(d.get("attempts_failed", 0)))


def parse_rebamount(text: Any) -> int:
    """sats from sling's `rebamount` ("1,234,567"; en-locale thousands separators)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise ValueError(f"rebamount is not a string: {text!r}")
    return int(text.replace(",", "").strip() or 0)


def parse_states(status: Any) -> list[str]:
    """Task states from a status list like ["1:Rebalancing", "2:NoCandidates"]."""
    if not isinstance(status, list):
        return []
    return [s.split(":", 1)[1] if ":" in s else s for s in status if isinstance(s, str)]


def parse_scid_stats(result: Any) -> ScidStats:
    """ScidStats from `sling-stats {scid, json: true}`; raises ValueError on another shape."""
    if not isinstance(result, dict) or "successes_in_time_window" not in result:
        raise ValueError(f"unexpected sling-stats reply: {str(result)[:120]}")
    succ = result.get("successes_in_time_window") or {}
    fail = result.get("failures_in_time_window") or {}
    return ScidStats(rebalances=int(succ.get("total_rebalances", 0)),
                     amount_sat=int(succ.get("total_amount_sats", 0)),
                     spent_sat=int(succ.get("total_spent_sats", 0)),
                     attempts_failed=int(fail.get("total_rebalances_tried", 0)))


class Sling:
    """revops' calls to sling. Every failure is a NodeRpcError (sling answers -32700 with a message)."""

    def __init__(self, rpc: NodeRpc):
        self.rpc = rpc

    def create_pull(self, scid: str, amount_sat: int, maxppm: int, candidates: list[str], target: float,
                    outppm: int | None = None) -> None:
        params: dict[str, Any] = {"scid": scid, "direction": "pull", "amount": int(amount_sat),
                                  "maxppm": int(maxppm), "candidates": list(candidates),
                                  "target": round(float(target), 4)}
        if outppm is not None:
            params["outppm"] = int(outppm)
        self.rpc.call("sling-job", params)

    def create_once(self, scid: str, amount_sat: int, maxppm: int, candidates: list[str], onceamount_sat: int,
                    outppm: int | None = None) -> None:
        """A pull that moves exactly `onceamount_sat` (a multiple of amount) and stops: bounded spend."""
        params: dict[str, Any] = {"scid": scid, "direction": "pull", "amount": int(amount_sat),
                                  "maxppm": int(maxppm), "candidates": list(candidates),
                                  "onceamount": int(onceamount_sat)}
        if outppm is not None:
            params["outppm"] = int(outppm)
        self.rpc.call("sling-once", params)

    def go(self, scid: str) -> int:
        """Starts the job's tasks; returns how many started."""
        result = self.rpc.call("sling-go", {"scid": scid})
        return int(result.get("tasks_started", 0)) if isinstance(result, dict) else 0

    def delete(self, scid: str) -> None:
        """Stops and removes the job (its stats stay: they are our spend record)."""
        self.rpc.call("sling-deletejob", {"job": scid, "delete_stats": False})

    def stats(self, scid: str) -> ScidStats:
        try:
            return parse_scid_stats(self.rpc.call("sling-stats", {"scid": scid, "json": True}))
        except ValueError as err:
            raise NodeRpcError("sling-stats", -32700, str(err)) from None

    def summary(self) -> dict[str, tuple[list[str], int]]:
        """scid -> (task states, rebamount in sats over sling's stats window) of every sling job,
        ours and others', from `sling-stats {json: true}`."""
        rows = self.rpc.call("sling-stats", {"json": True})
        if not isinstance(rows, list):
            raise NodeRpcError("sling-stats", -32700, f"expected a list, got {type(rows).__name__}")
        out = {}
        for r in rows:
            if isinstance(r, dict) and isinstance(r.get("scid"), str):
                try:
                    amount = parse_rebamount(r.get("rebamount", "0"))
                except ValueError:
                    amount = 0
                out[r["scid"]] = (parse_states(r.get("status")), amount)
        return out

    def jobs(self) -> set[str]:
        """scids sling has a job for."""
        result = self.rpc.call("sling-jobsettings", {})
        return set(result) if isinstance(result, dict) else set()
