"""Benchmark: policy decisions per second and reload latency on a synthetic 5,000-channel node.

Prints
  - decisions/s: facts -> decision for every channel with the default policy, durable-rules
    matcher, no explanation (the plugin's fee-cycle path, which skips the rebalance stage);
    also with the rebalance stage (the rebalance cycle's path), with full explain traces
    and with the reference matcher, for comparison;
  - reload latency: load + validate + compile + prepare (durable-rules Host) + swap.
Targets (issue #2, 2-core machine): >= 10,000 decisions/s; reload <= 200 ms.

    PYTHONPATH=. python bench/policy_eval.py [--channels 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facts_build import NOW, synthetic_rpc  # noqa: E402

from revops.facts.build import build_facts  # noqa: E402
from revops.policy.reload import PolicyHolder  # noqa: E402
from revops.resources import default_policy_dir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=5000)
    ap.add_argument("--forwards", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rpc = synthetic_rpc(args.channels, args.forwards)
    facts = build_facts(rpc, NOW)
    holder = PolicyHolder(default_policy_dir())
    result = holder.reload()
    assert result.ok, result.errors
    prepared = holder.current
    print(f"policy {prepared.compiled.name} {prepared.compiled.version}: {len(prepared.compiled.rules)} rules, "
          f"{len(facts)} channels")

    # The fee cycle skips the rebalance-only stage (evaluate_many(rebalance=False)); the
    # rebalance cycle (every 15 min by default) evaluates every stage.
    # "fee cycle" is exactly what runtime._fee_cycle asks for: no rebalance stage, no
    # per-channel value dicts or traces kept (it journals the winner's `why` only).
    for label, kwargs in (("durable, no explain (fee cycle)", {"rebalance": False, "keep_values": False,
                                                               "keep_trace": False}),
                          ("durable, no explain, values and traces kept", {"rebalance": False}),
                          ("durable, no explain, with the rebalance stage (rebalance cycle)", {}),
                          ("durable, explain", {"explain": True}),
                          ("reference matcher, no explain", {"matcher": "reference"})):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            evaluations = prepared.evaluate_many(facts, **kwargs)
            best = min(best, time.perf_counter() - start)
        changed = sum(1 for e in evaluations if e.decision.action == "set_fee")
        print(f"decisions/s [{label}]: {len(facts) / best:,.0f}  ({best * 1000:.0f} ms for {len(facts)}; "
              f"{changed} set_fee)")

    # The durable-rules worker process (issue #12): time spent in its requests during one fee
    # cycle (encode, pipe both ways, match in the worker, decode) and its restarts.
    from revops.policy.rete import shared_worker, worker_restarts
    worker = shared_worker()
    spent = [0.0]
    inner = worker.match

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - t
    worker.match = timed
    start = time.perf_counter()
    prepared.evaluate_many(facts, rebalance=False, keep_values=False, keep_trace=False)
    total = time.perf_counter() - start
    worker.match = inner
    print(f"engine worker (fee cycle): {spent[0] * 1000:.0f} ms of {total * 1000:.0f} ms "
          f"({spent[0] / total:.0%}) in worker requests; restarts: {worker_restarts()}")

    timings = []
    for _ in range(max(5, args.repeat)):
        start = time.perf_counter()
        result = holder.reload()
        timings.append(time.perf_counter() - start)
        assert result.ok, result.errors
    print(f"reload latency (load+validate+compile+prepare+swap): median {statistics.median(timings) * 1000:.1f} ms, "
          f"max {max(timings) * 1000:.1f} ms over {len(timings)}")


if __name__ == "__main__":
    main()
