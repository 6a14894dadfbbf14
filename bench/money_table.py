"""The money table: net profit and fee broadcasts of the default policy against fair baselines.

For each scenario and seed, runs the real plugin on the simulator (`revops simulate`'s
driver) with the default policy, the static baseline and the proportional baseline, the
baselines anchored on the scenario's typical competitor fee (`--fair-baselines`, see
docs/results.md). Prints a Markdown table (scenario x seed x policy: net profit in sat,
routing fees, rebalance spend, fee broadcasts per channel per day) and whether the default
beat both baselines on every run with <= 2 broadcasts per channel per day.

Usage: PYTHONPATH=. python bench/money_table.py [--days 30] [--seeds 1 2 3]
       [--scenarios hub sink-drain zombies] [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from revops.resources import default_policy_dir
from revops.sim.driver import simulate

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"default": default_policy_dir(), "static": ROOT / "policies/baselines/static",
            "proportional": ROOT / "policies/baselines/proportional"}


def one(job: tuple[str, int, str, float]) -> dict:
    scenario, seed, name, days = job
    r = simulate(scenario, POLICIES[name], days=days, seed=seed, fair_baselines=True)
    return {"scenario": scenario, "seed": seed, "policy": name, "net_sat": r.net_profit_msat // 1000,
            "fees_sat": r.routing_fees_msat // 1000, "rebalance_sat": r.rebalance_spend_msat // 1000,
            "broadcasts_per_ch_day": r.fee_updates_per_channel_day, "params": r.params, "wall_s": r.wall_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--scenarios", nargs="+", default=["hub", "sink-drain", "zombies"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    jobs = [(s, seed, p, args.days) for s in args.scenarios for seed in args.seeds for p in POLICIES]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, jobs))
    print(f"{args.days:g} days per run\n")
    print("| scenario | seed | policy | net profit (sat) | routing fees (sat) | rebalance spend (sat) | broadcasts/ch/day |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['seed']} | {r['policy']} | {r['net_sat']:,} | {r['fees_sat']:,} | "
              f"{r['rebalance_sat']:,} | {r['broadcasts_per_ch_day']:.2f} |")
    wins = 0
    runs = 0
    for s in args.scenarios:
        for seed in args.seeds:
            by = {r["policy"]: r for r in rows if r["scenario"] == s and r["seed"] == seed}
            d = by["default"]
            ok = (d["net_sat"] > by["static"]["net_sat"] and d["net_sat"] > by["proportional"]["net_sat"]
                  and d["broadcasts_per_ch_day"] <= 2)
            runs += 1
            wins += ok
            if not ok:
                print(f"\n{s} seed {seed}: the default did NOT beat both baselines within 2 broadcasts/ch/day")
    print(f"\ndefault beat both baselines (<= 2 broadcasts/ch/day) on {wins} of {runs} runs")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if wins == runs else 1


if __name__ == "__main__":
    sys.exit(main())
