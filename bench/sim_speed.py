"""How fast the simulator runs: the market model alone, and with the real plugin in the loop.

Prints, for the model alone (Node.advance plus draining its notifications; no harness, no
plugin process, no JSON encoding):

* simulated forwards (rows added to listforwards) per wall-clock second,
* wall time of 30 simulated days of the `hub` scenario (40 channels),
* wall time of 7 simulated days of the `large` scenario (2,000 channels), with the size
  of its forwards table and the process's peak memory.

and then, with `revops simulate`'s driver (the plugin process under the harness, every
subscribed notification delivered, a fee cycle every 30 simulated minutes), the same runs'
wall time and simulated forwards per wall-clock second, with the CPU seconds spent in this
process (model + harness) and in the plugin process, and the same 30 days of `hub` with a
fixed fee in-process (revops/sim/inprocess.py: no plugin). Target (issue 14): 30 days of
`hub` for one policy (the real plugin, default policy) <= 30 s.

Usage: PYTHONPATH=. python bench/sim_speed.py [--hub-days 30] [--large-days 7] [--model-only]
"""

from __future__ import annotations

import argparse
import resource
import time

from revops.sim.model_build import build_node
from revops.sim.rpc import SimRpc


def run(name: str, days: float) -> dict:
    """Return wall time, forwards and notification count for `days` of scenario `name`."""
    t0 = time.perf_counter()
    node = build_node(name)
    build_s = time.perf_counter() - t0
    notes = 0
    t1 = time.perf_counter()
    remaining = days * 86400
    while remaining > 0:
        step = min(86400.0, remaining)
        notes += len(node.advance(step))      # the caller would forward these; we drop them
        remaining -= step
    model_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    listed = len(SimRpc(node)("listforwards", {})["forwards"])
    list_s = time.perf_counter() - t2
    return {"name": name, "days": days, "channels": len(node.channels), "build_s": build_s,
            "model_s": model_s, "forwards": len(node.forwards), "notifications": notes,
            "listforwards_s": list_s, "listed": listed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub-days", type=float, default=30)
    ap.add_argument("--large-days", type=float, default=7)
    ap.add_argument("--model-only", action="store_true", help="skip the plugin-in-the-loop runs")
    args = ap.parse_args()
    for r in (run("hub", args.hub_days), run("large", args.large_days)):
        rate = r["forwards"] / r["model_s"] if r["model_s"] else float("inf")
        print(f"{r['name']:>6}: {r['days']:g} days, {r['channels']} channels: "
              f"model {r['model_s']:.2f} s wall (build {r['build_s']:.2f} s), "
              f"{r['forwards']} forwards = {rate:,.0f} forwards/s, "
              f"{r['notifications']} notifications; "
              f"listforwards of all {r['listed']} rows {r['listforwards_s']:.2f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:.0f} MB")
    if args.model_only:
        return
    from revops.resources import default_policy_dir
    from revops.sim.driver import simulate
    from revops.sim.inprocess import FixedFee, simulate_setter
    fixed = simulate_setter("hub", FixedFee(250), "fixed", days=args.hub_days)
    print(f"   hub with a fixed fee in-process: {args.hub_days:g} days in {fixed.wall_s:.1f} s wall")
    for name, days in (("hub", args.hub_days), ("large", args.large_days)):
        cpu0, kids0 = time.process_time(), _children_cpu_s()
        report = simulate(name, default_policy_dir(), days=days)
        total = report.forwards_settled + report.forwards_failed
        print(f"{name:>6} with the plugin: {days:g} days in {report.wall_s:.1f} s wall "
              f"(cpu: {time.process_time() - cpu0:.1f} s model+harness, {_children_cpu_s() - kids0:.1f} s plugin), "
              f"{report.cycles} fee cycles, {total:,} forwards = {total / report.wall_s:,.0f} simulated forwards/s")
        if name == "hub" and days == 30:
            print(f"   target 30 days of hub <= 30 s: {'met' if report.wall_s <= 30 else 'NOT met'}")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


if __name__ == "__main__":
    main()
