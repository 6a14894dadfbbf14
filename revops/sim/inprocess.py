"""Run a fee setter inside this process on the simulated node: no plugin, no harness.

For references that need no policy engine (a fixed fee on every channel, the oracle of
`revops.sim.oracle`), this loop replaces `revops.sim.driver.simulate`: the same market, the
same advance steps and the same fee-cycle times, the same figures read through the same RPC
shapes, so its numbers line up with the plugin's on one seed (tests/sim/test_inprocess.py
checks that a fixed fee here equals policies/baselines/static at that fee under the plugin).
A run is a few seconds instead of a minute, which is what makes fee sweeps affordable.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from revops.sim.driver import DAY_S, CountingBackend, SimReport, _channels, _fee, _figures
from revops.sim.model_build import build_node
from revops.sim.model_channel import NORMAL
from revops.sim.node import Node
from revops.sim.rpc import SimRpc

Rpc = Callable[[str, dict], dict]


class FeeSetter(Protocol):
    """Called at every fee cycle; sets fees through `rpc` (setchannel), as a plugin would."""

    def __call__(self, node: Node, rpc: Rpc, now_s: float) -> None: ...


class FixedFee:
    """One fee on every channel, set once per channel, as policies/baselines/static does:
    a channel in CHANNELD_NORMAL whose fee differs gets setchannel (new channels too)."""

    def __init__(self, fee_ppm: int):
        self.fee_ppm = int(fee_ppm)

    def __call__(self, node: Node, rpc: Rpc, now_s: float) -> None:
        for ch in list(node.channels):
            if ch.state == NORMAL and ch.scid and ch.fee_ppm != self.fee_ppm:
                rpc("setchannel", {"id": ch.scid, "feeppm": self.fee_ppm})


def simulate_setter(scenario: str, setter: FeeSetter, name: str, days: float = 30,
                    seed: int | None = None, *, fee_interval_s: int = 1800,
                    step_s: int = 300) -> SimReport:
    """Simulate `days` of `scenario` with `setter` deciding fees; figures as the driver's."""
    started = time.perf_counter()
    node = build_node(scenario, seed=seed)
    backend = CountingBackend(SimRpc(node), threading.Lock())
    report = SimReport(policy=name, scenario=scenario, days=days, seed=node.seed)
    start_fees = {c["short_channel_id"]: _fee(c) for c in _channels(backend)}
    end_s = node.now_s + days * DAY_S
    next_cycle = node.now_s
    while node.now_s < end_s:           # the driver's loop, step for step
        if node.now_s >= next_cycle:
            setter(node, backend, node.now_s)
            report.cycles += 1
            next_cycle += fee_interval_s
        node.advance(min(step_s, end_s - node.now_s))
    setter(node, backend, node.now_s)
    report.cycles += 1
    _figures(report, backend, start_fees, days)
    report.wall_s = round(time.perf_counter() - started, 2)
    return report
