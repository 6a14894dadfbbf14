"""Benchmark: policy decisions per second and reload latency on a synthetic 5,000-channel node.

Prints
  - decisions/s: facts -> decision for every channel with the default policy, durable-rules
    matcher, no explanation (the plugin's fee-cycle path, which skips the rebalance stage);
    also with the rebalance stage (the rebalance cycle's path), with full explain traces
    and with the reference matcher, for comparison;
  - reload latency: load + validate + compile + prepare (durable-rules Host) + the policy's own
    tests + swap; once with the tests run (an edited policy) and once with their pass
    remembered (an unchanged policy: a restart or a repeated reload; revops/policy/passed.py).
Targets (issue #2, 2-core machine): >= 10,000 decisions/s; reload <= 200 ms.

    PYTHONPATH=. python bench/policy_eval.py [--channels 5000] [--repeat 3] [--groups]

--groups runs a copy of the default policy with a groups.yaml (issue 13): 12 groups by
alias glob, node id and scid, an override for each group, 50 peer and 50 channel overrides
and 20 pins, over peers whose aliases come from listnodes; channels fall into several
distinct param sets, each decided by its own (cached) prepared policy.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facts_build import NOW, synthetic_rpc  # noqa: E402

from revops.facts.build import build_facts  # noqa: E402
from revops.policy.passed import PassedTests  # noqa: E402
from revops.policy.reload import PolicyHolder  # noqa: E402
from revops.resources import default_policy_dir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=5000)
    ap.add_argument("--forwards", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--groups", action="store_true", help="with a groups.yaml: groups, overrides and pins")
    args = ap.parse_args()

    rpc = synthetic_rpc(args.channels, args.forwards)
    policy_dir = default_policy_dir()
    if args.groups:
        policy_dir = with_groups(rpc, Path(tempfile.mkdtemp(prefix="revops-bench-")) / "policy")
    facts = build_facts(rpc, NOW)
    holder = PolicyHolder(policy_dir)
    result = holder.reload()
    assert result.ok, result.errors
    prepared = holder.current
    print(f"policy {prepared.compiled.name} {prepared.compiled.version}: {len(prepared.compiled.rules)} rules, "
          f"{len(facts)} channels")
    if args.groups:
        evaluations = prepared.evaluate_many(facts)
        sets = {tuple(sorted((k, v) for k, v in e.values.items() if k.startswith("override."))) for e in evaluations}
        pinned = sum(1 for e in evaluations if e.decision.rule == "pin")
        print(f"groups.yaml: {len(prepared.compiled.source.groups.groups)} groups, "
              f"{len(prepared.compiled.source.groups.overrides)} overrides; {len(sets)} distinct override "
              f"sources, {len(prepared.layers._variants)} prepared policies, {pinned} channels pinned")

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

    # The durable-rules worker process (issue #12): time the fee cycle spends sending it
    # requests and waiting for its answers (the rest of its matching overlaps with Python:
    # two chunks are in flight), and its restarts.
    from revops.policy.rete import shared_worker, worker_restarts
    worker = shared_worker()
    spent = [0.0]

    def timed(inner):
        def call(*a, **kw):
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t
        return call
    worker.submit, worker.collect = timed(worker.submit), timed(worker.collect)
    start = time.perf_counter()
    prepared.evaluate_many(facts, rebalance=False, keep_values=False, keep_trace=False)
    total = time.perf_counter() - start
    del worker.submit, worker.collect
    print(f"engine worker (fee cycle): {spent[0] * 1000:.0f} ms of {total * 1000:.0f} ms "
          f"({spent[0] / total:.0%}) sending requests and waiting for answers; restarts: {worker_restarts()}")

    for label, remembered in (("tests run", None),
                              ("tests remembered", PassedTests(Path(tempfile.mkdtemp(prefix="revops-bench-"))))):
        holder = PolicyHolder(policy_dir, remembered=remembered)
        assert holder.reload().ok  # the first pass is recorded
        timings = []
        for _ in range(max(5, args.repeat)):
            start = time.perf_counter()
            result = holder.reload()
            timings.append(time.perf_counter() - start)
            assert result.ok and result.tests_remembered == (remembered is not None), result.errors
        print(f"reload latency, {label} (load+validate+compile+prepare+tests+swap): median "
              f"{statistics.median(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms over {len(timings)}")


def with_groups(rpc: dict, folder: Path) -> Path:
    """A copy of the default policy with a groups.yaml over `rpc`'s peers (aliases added to rpc)."""
    shutil.copytree(default_policy_dir(), folder)
    channels = rpc["listpeerchannels"]["channels"]
    peers = sorted({c["peer_id"] for c in channels})
    brands = ["Kraken", "River", "ACINQ", "LNBig", "Boltz", "bfx", "WoS", "Breez", "Voltage", "Zeus", "OKX", "Strike"]
    rpc["listnodes"] = {"nodes": [{"nodeid": p, "last_timestamp": int(NOW), "alias": f"{brands[i % 12]}-{i:04d}",
                                   "color": p[2:8], "features": "08a0", "addresses": []} for i, p in enumerate(peers)]}
    lines = ["groups:"]
    for i, brand in enumerate(brands):
        lines.append(f"  g{i}:")
        lines.append(f"    aliases: [\"{brand}-*\", \"x{brand}[0-9]\"]")
        lines.append(f"    nodes: [\"{peers[(i * 37) % len(peers)]}\"]")
        lines.append(f"    channels: [{channels[(i * 53) % len(channels)]['short_channel_id']}]")
    lines.append("overrides:")
    for i in range(len(brands)):
        lines.append(f"  - {{group: g{i}, params: {{min_fee_ppm: {20 + 10 * (i % 4)}}}}}")
    for i in range(50):
        lines.append(f"  - {{peer: \"{peers[(i * 7) % len(peers)]}\", params: {{congestion_multiplier: {1.5 + (i % 3) / 2}}}}}")
    scids = [c["short_channel_id"] for c in channels][::max(1, len(channels) // 70)]
    for i, scid in enumerate(scids[:50]):
        lines.append(f"  - {{channel: {scid}, params: {{max_fee_ppm: {2000 + 100 * (i % 5)}}}}}")
    for i, scid in enumerate(scids[50:70]):
        lines.append(f"  - {{channel: {scid}, pin_fee_ppm: {i}}}")
    (folder / "groups.yaml").write_text("\n".join(lines) + "\n")
    return folder


if __name__ == "__main__":
    main()
