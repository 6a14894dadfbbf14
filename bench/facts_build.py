"""Benchmark: build_facts over a synthetic node (default 5,000 channels, 100,000 forwards).

Prints the time of flows_from_forwards, of build_facts with precomputed flows, and of the
whole build_facts (flows included), as channels/s and forwards/s. Best of --repeat runs.

    PYTHONPATH=. python bench/facts_build.py [--channels 5000] [--forwards 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time

from revops.facts.build import build_facts
from revops.facts.flow import flows_from_forwards

NOW = 1_767_225_600.0


def synthetic_rpc(n_channels: int, n_forwards: int, seed: int = 1) -> dict:
    """Returns an rpc dict (listpeerchannels, listforwards, getinfo, feerates, listfunds,
    listpeers) with n_channels channels over n_channels // 2 peers and n_forwards forwards
    spread over the last 30 days."""
    rnd = random.Random(seed)
    peers = [f"02{i:064x}" for i in range(max(1, n_channels // 2))]
    channels = []
    scids = []
    for i in range(n_channels):
        scid = f"{800000 + i}x{i % 3000}x{i % 2}"
        scids.append(scid)
        total = rnd.choice([1, 2, 5, 10]) * 1_000_000_000
        local = rnd.randrange(0, total)
        htlcs = [{"direction": rnd.choice(["in", "out"]), "id": j, "amount_msat": rnd.randrange(1000, 10**8),
                  "expiry": 901300, "payment_hash": "00" * 32, "state": "SENT_ADD_ACK_REVOCATION"}
                 for j in range(rnd.choice([0, 0, 0, 1, 3, 20]))]
        ch = {
            "peer_id": peers[i % len(peers)], "peer_connected": rnd.random() > 0.05,
            "state": "CHANNELD_NORMAL", "short_channel_id": scid, "direction": i % 2,
            "opener": rnd.choice(["local", "remote"]), "private": rnd.random() < 0.1,
            "features": ["option_static_remotekey"], "to_us_msat": local, "total_msat": total,
            "spendable_msat": max(0, local - total // 100), "receivable_msat": max(0, total - local - total // 100),
            "fee_base_msat": 0, "fee_proportional_millionths": 100,
            "our_max_htlc_value_in_flight_msat": 18446744073709551615, "max_accepted_htlcs": 483,
            "updates": {"local": {"htlc_minimum_msat": 1000, "htlc_maximum_msat": total,
                                  "cltv_expiry_delta": 34, "fee_base_msat": 0,
                                  "fee_proportional_millionths": rnd.randrange(1, 2000)}},
            "htlcs": htlcs,
        }
        if rnd.random() < 0.9:
            ch["updates"]["remote"] = {"htlc_minimum_msat": 1000, "htlc_maximum_msat": total,
                                       "cltv_expiry_delta": 144, "fee_base_msat": 1000,
                                       "fee_proportional_millionths": rnd.randrange(1, 2000)}
        channels.append(ch)
    forwards = []
    for k in range(n_forwards):
        a, b = rnd.sample(scids, 2)
        out_msat = rnd.randrange(10_000, 10**9)
        fee = out_msat // 2000 + 1
        t = NOW - rnd.random() * 30 * 86400
        r = rnd.random()
        f = {"created_index": k + 1, "in_channel": a, "in_htlc_id": k, "in_msat": out_msat + fee,
             "received_time": t, "style": "tlv"}
        if r < 0.7:
            f.update(status="settled", out_channel=b, out_msat=out_msat, fee_msat=fee,
                     resolved_time=t + rnd.random() * 5, updated_index=k + 1)
        elif r < 0.9:
            f.update(status="local_failed", out_channel=b, failcode=rnd.choice([4103, 4108]),
                     failreason="WIRE_TEMPORARY_CHANNEL_FAILURE")
        else:
            f.update(status="failed", out_channel=b, out_msat=out_msat, fee_msat=fee,
                     resolved_time=t + rnd.random() * 30, updated_index=k + 1)
        forwards.append(f)
    return {
        "getinfo": {"id": "03" + "11" * 32, "alias": "BENCH", "blockheight": 901234, "network": "bitcoin",
                    "fees_collected_msat": 0},
        "listpeerchannels": {"channels": channels},
        "listforwards": {"forwards": forwards},
        "feerates": {"perkw": {"opening": 2500, "mutual_close": 1250, "min_acceptable": 253,
                               "max_acceptable": 60000, "floor": 253}},
        "listfunds": {"outputs": [], "channels": []},
        "listpeers": {"peers": [{"id": p, "connected": True} for p in peers]},
    }


def best(fn, repeat: int) -> float:
    """Returns the fastest wall time of `repeat` calls of fn, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=5000)
    ap.add_argument("--forwards", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rpc = synthetic_rpc(a.channels, a.forwards)
    fwds = rpc["listforwards"]["forwards"]
    flows = flows_from_forwards(fwds, NOW)
    t_flow = best(lambda: flows_from_forwards(fwds, NOW), a.repeat)
    t_facts = best(lambda: build_facts(rpc, NOW, flows), a.repeat)
    t_all = best(lambda: build_facts(rpc, NOW), a.repeat)
    n_facts = len(build_facts(rpc, NOW, flows)[0].values)
    print(f"{a.channels} channels, {a.forwards} forwards, {n_facts} facts per channel (best of {a.repeat})")
    print(f"flows_from_forwards   {t_flow * 1000:8.1f} ms  {a.forwards / t_flow:12,.0f} forwards/s")
    print(f"build_facts (flows)   {t_facts * 1000:8.1f} ms  {a.channels / t_facts:12,.0f} channels/s")
    print(f"build_facts (total)   {t_all * 1000:8.1f} ms  {a.channels / t_all:12,.0f} channels/s"
          f"  {a.forwards / t_all:12,.0f} forwards/s")


if __name__ == "__main__":
    main()
