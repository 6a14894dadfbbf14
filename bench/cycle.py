"""Benchmark: the revops plugin under the lightningd harness with 1,000 and 5,000 channels.

Prints per size:
  - wall time of one fee cycle with nothing to change (no setchannel round trips) and of the
    first cycle (which sets fees), both as the plugin reports them;
  - lightningd RPC calls per cycle, by method (target: a constant number of reads plus one
    setchannel per changed channel);
  - forward_event ingestion: notifications sent as fast as the pipe takes them, then the
    time until the store holds all of them (target >= 5,000 events/s, zero lost);
  - plugin RSS after the cycles, with 1,000,000 forwards in its database at 5,000 channels
    (target <= 150 MB).
Targets (issue #4): one fee cycle over 5,000 channels <= 1 s excluding setchannel.

    PYTHONPATH=. python bench/cycle.py [--sizes 1000 5000] [--stored-forwards 1000000] [--events 20000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revops.resources import default_policy_dir  # noqa: E402
from revops.sim.driver import CountingBackend, plugin_command  # noqa: E402
from revops.sim.harness import Lightningd  # noqa: E402
from revops.sim.model_build import build_node  # noqa: E402
from revops.sim.rpc import SimRpc  # noqa: E402
from revops.sim.scenario import parse_scenario  # noqa: E402
from revops.store import Store  # noqa: E402

SCENARIO = """
name: bench-{n}
seed: 5
days: 1
start_time: 1767225600
node: {{alias: BENCH, max_concurrent_htlcs: 30}}
wallet_sat: 50000000
traffic: {{payments_per_hour: 600, amount_median_sat: 30000}}
channel_groups:
  - name: all
    count: {n}
    capacity_sat: [1000000, 20000000]
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def preload_forwards(db: Path, scids: list[str], count: int, now_s: float) -> None:
    """Fill the plugin's database with `count` settled forwards over the last 40 days."""
    rnd = random.Random(1)
    store = Store(db)
    batch = []
    for i in range(count):
        a, b = rnd.sample(scids, 2)
        t = now_s - rnd.random() * 40 * 86400
        out_msat = rnd.randrange(10_000, 10**9)
        batch.append({"created_index": i + 1, "updated_index": i + 1, "in_channel": a, "in_htlc_id": i,
                      "out_channel": b, "out_htlc_id": i, "in_msat": out_msat + out_msat // 2000,
                      "out_msat": out_msat, "fee_msat": out_msat // 2000, "status": "settled",
                      "style": "tlv", "received_time": t, "resolved_time": t + 1.5})
        if len(batch) == 20000:
            store.ingest_forwards(batch)
            batch = []
    if batch:
        store.ingest_forwards(batch)
    store.close()


def run(n: int, stored_forwards: int, events: int) -> None:
    node = build_node(parse_scenario(SCENARIO.format(n=n), f"bench-{n}.yaml"))
    lock = threading.Lock()
    backend = CountingBackend(SimRpc(node), lock)
    work = Path(tempfile.mkdtemp(prefix="rvb"))
    try:
        shutil.copytree(default_policy_dir(), work / "policy")
        scids = [c.scid for c in node.channels if c.scid]
        if stored_forwards:
            start = time.perf_counter()
            preload_forwards(work / "revops.sqlite3", scids, stored_forwards, node.now_s)
            print(f"  preloaded {stored_forwards:,} forwards in {time.perf_counter() - start:.1f} s")
        options = {"revenue-ops-policy": str(work / "policy"), "revenue-ops-db": str(work / "revops.sqlite3"),
                   "revenue-ops-sim-clock": str(int(node.now_s)), "revenue-ops-metrics-listen": ""}
        with Lightningd(plugin_command(), str(work / "ln"), backend, options=options, extra_plugins=node.plugins,
                        env={"PYTHONPATH": str(ROOT)}, startup_timeout_s=120) as ld:
            with lock:
                node.advance(600)
            first = ld.call("revenue-cycle", {"what": "fees", "now": node.now_s}, timeout_s=600)["fees"]
            before = Counter(backend.calls)
            second = ld.call("revenue-cycle", {"what": "fees", "now": node.now_s}, timeout_s=600)["fees"]
            calls = {m: c - before.get(m, 0) for m, c in backend.calls.items() if c - before.get(m, 0)}
            print(f"  fee cycle: first {first['duration_ms']:.0f} ms ({first['set_fee']} setchannel), "
                  f"steady {second['duration_ms']:.0f} ms ({second['set_fee']} setchannel) over {second['channels']} channels")
            print(f"  RPC calls in the steady cycle: {sum(calls.values())} {dict(sorted(calls.items()))}")

            base = ld.call("revenue-status")["store"]["forwards"]
            payloads = _forward_events(scids, events, node.now_s)
            start = time.perf_counter()
            for payload in payloads:
                ld.notify("forward_event", payload)
            sent_s = time.perf_counter() - start
            expected = base + events
            stored = base
            while time.perf_counter() - start < 300:
                stored = ld.call("revenue-status")["store"]["forwards"]
                if stored >= expected:
                    break
                time.sleep(0.05)
            total_s = time.perf_counter() - start
            print(f"  forward_event ingestion: {events:,} settled forwards in {total_s:.2f} s "
                  f"({events / total_s:,.0f} events/s; sending took {sent_s:.2f} s); "
                  f"stored {stored - base:,}, lost {expected - stored:,}")
            print(f"  plugin RSS: {rss_mb(ld.pid):.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _forward_events(scids: list[str], count: int, now_s: float) -> list[dict]:
    """`count` single-event settled forwards (as CLN sends for a forward resolved at once)."""
    rnd = random.Random(2)
    out = []
    for i in range(count):
        a, b = rnd.sample(scids, 2)
        out.append({"payment_hash": f"{i:064x}", "in_channel": a, "out_channel": b, "in_htlc_id": 10**9 + i,
                    "in_msat": 1_000_500, "out_msat": 1_000_000, "fee_msat": 500, "status": "settled",
                    "style": "tlv", "received_time": now_s - 1.0, "resolved_time": now_s,
                    "created_index": 10**8 + i, "updated_index": 10**8 + i})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--stored-forwards", type=int, default=1_000_000, help="preloaded at the largest size")
    ap.add_argument("--events", type=int, default=20000)
    args = ap.parse_args()
    for n in args.sizes:
        print(f"{n} channels:")
        run(n, args.stored_forwards if n == max(args.sizes) else 0, args.events)


if __name__ == "__main__":
    main()
