"""The price learner's table (issue #14): capture vs the oracle and ratio to the best fixed fee.

For each scenario and seed: the policy (default: the shipped one, the real plugin under the
harness), the oracle (in-process, reads the hidden demand curves) and a sweep of one fixed fee
on every channel (in-process, `FIXED_GRID`, the best point taken in hindsight). All share the
seed's payment stream (common random numbers). Prints a Markdown row per run.

Usage: PYTHONPATH=. python bench/price_table.py [--days 30] [--seeds 1 2] [--scenarios hub zombies]
       [--policy DIR ...] [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from revops.resources import default_policy_dir
from revops.sim.driver import simulate
from revops.sim.inprocess import FixedFee, simulate_setter
from revops.sim.oracle import run_oracle

#: Fixed fees swept (ppm): 10 % steps over the scenarios' competitor prices.
FIXED_GRID = [round(40 * 1.1 ** i) for i in range(0, 31)]   # 40 .. 700 ppm


def one(job: tuple) -> dict:
    kind, scenario, seed, days, arg = job
    if kind == "policy":
        r = simulate(scenario, arg, days=days, seed=seed)
        name = Path(arg).name if Path(arg) != default_policy_dir() else "default"
    elif kind == "oracle":
        r = run_oracle(scenario, days=days, seed=seed)
        name = "oracle"
    else:
        r = simulate_setter(scenario, FixedFee(arg), f"fixed-{arg}", days=days, seed=seed)
        name = f"fixed-{arg}"
    return {"scenario": scenario, "seed": seed, "policy": name, "net_msat": r.net_profit_msat,
            "broadcasts_per_ch_day": r.fee_updates_per_channel_day, "wall_s": r.wall_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scenarios", nargs="+", default=["hub", "zombies"])
    ap.add_argument("--policy", nargs="+", default=[str(default_policy_dir())])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    jobs = []
    for s in args.scenarios:
        for seed in args.seeds:
            jobs += [("policy", s, seed, args.days, p) for p in args.policy]
            jobs += [("oracle", s, seed, args.days, None)]
            jobs += [("fixed", s, seed, args.days, f) for f in FIXED_GRID]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, jobs))
    print(f"{args.days:g} days per run\n")
    print("| scenario | seed | policy | net (sat) | capture vs oracle | vs best fixed fee | best fixed | broadcasts/ch/day |")
    print("|---|---|---|---:|---:|---:|---|---:|")
    for s in args.scenarios:
        for seed in args.seeds:
            mine = [r for r in rows if r["scenario"] == s and r["seed"] == seed]
            oracle = next(r for r in mine if r["policy"] == "oracle")
            fixed = max((r for r in mine if r["policy"].startswith("fixed-")), key=lambda r: r["net_msat"])
            for r in mine:
                if r["policy"].startswith("fixed-") and r is not fixed:
                    continue
                print(f"| {s} | {seed} | {r['policy']} | {r['net_msat'] // 1000:,} | "
                      f"{r['net_msat'] / oracle['net_msat']:.1%} | {r['net_msat'] / fixed['net_msat'] - 1:+.1%} | "
                      f"{fixed['policy'][6:]} ppm | {r['broadcasts_per_ch_day']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
