"""The money table: each policy against the oracle and the best fixed fee in hindsight.

For each scenario and seed (issue 14 item 3):

* sweeps one fixed fee on every channel over a grid around the scenario's typical competitor
  fee T (T × 0.4 … 2.0), in-process (revops/sim/inprocess.py; the same figures as
  policies/baselines/static under the plugin, see tests/sim/test_inprocess.py), and keeps the
  best point: the best fixed fee in hindsight;
* runs the oracle (revops/sim/oracle.py, an upper reference that reads the hidden demand
  curves and prices each channel's true balance, its balance curve the best in hindsight),
  in-process;
* runs the real plugin with the default policy and with the proportional baseline
  (`--fair-baselines`: anchored on T).

Every run of one seed faces the identical payment stream (common random numbers). Prints per
scenario × seed: net profit, capture (net / oracle net), ratio to the best fixed fee, fee
broadcasts per channel per day and budget breaches; then the mean and spread (sd, min..max)
over the seeds per scenario and policy.

Usage: PYTHONPATH=. python bench/money_table.py [--scenario hub competitor-shift] [--seeds 1 2 3 4 5]
       [--days 30] [--jobs 2] [--policies default proportional] [--json out.json]
A quick look: --scenario hub --seeds 1 2 --days 7 (a few minutes).
`--policies default-fees-only` is the default policy with rebalance_enabled false (set through
revenue-config): sink-drain's "fees alone" figure of issue 14.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from revops.resources import default_policy_dir
from revops.sim.driver import simulate, typical_ref_fee_ppm
from revops.sim.inprocess import FixedFee, simulate_setter
from revops.sim.model_build import build_node
from revops.sim.oracle import run_oracle

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"default": default_policy_dir(), "static": ROOT / "policies/baselines/static",
            "proportional": ROOT / "policies/baselines/proportional",
            "default-fees-only": default_policy_dir()}
# Param overrides per policy name: fees alone is the default with rebalancing off (issue 14).
OVERRIDES = {"default-fees-only": {"rebalance_enabled": False}}
GRID = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)


def _row(scenario: str, seed: int, name: str, r) -> dict:
    return {"scenario": scenario, "seed": seed, "policy": name, "net_msat": r.net_profit_msat,
            "fees_msat": r.routing_fees_msat, "rebalance_msat": r.rebalance_spend_msat,
            "broadcasts_per_ch_day": r.fee_updates_per_channel_day,
            "budget_breaches": r.budget_breaches, "wall_s": r.wall_s,
            "oracle_balance_curve": r.params.get("oracle_balance_curve")}


def one(job: tuple) -> dict:
    """One run: ("sweep", fee) and "oracle" in-process, a policy name under the plugin."""
    scenario, seed, what, days = job
    if what == "oracle":
        return _row(scenario, seed, "oracle", run_oracle(scenario, days=days, seed=seed))
    if isinstance(what, tuple):
        fee = what[1]
        row = _row(scenario, seed, f"fixed {fee}", simulate_setter(scenario, FixedFee(fee), str(fee), days=days,
                                                                   seed=seed))
        row["fee_ppm"] = fee
        return row
    return _row(scenario, seed, what, simulate(scenario, POLICIES[what], days=days, seed=seed,
                                               fair_baselines=True, params=OVERRIDES.get(what)))


def grid(scenario: str, seed: int) -> list[int]:
    t = typical_ref_fee_ppm(build_node(scenario, seed=seed))
    return sorted({max(1, int(t * m)) for m in GRID})


def table(rows: list[dict], scenarios: list[str], seeds: list[int], policies: list[str]) -> tuple[str, list[dict]]:
    """Markdown per scenario × seed, then mean and spread per scenario and policy."""
    out = ["| scenario | seed | policy | net profit (sat) | capture vs oracle | ratio to best fixed | "
           "broadcasts/ch/day | budget breaches |", "|---|---|---|---:|---:|---:|---:|---:|"]
    summary: list[dict] = []
    per: dict[tuple, list[dict]] = {}
    for s in scenarios:
        for seed in seeds:
            here = [r for r in rows if r["scenario"] == s and r["seed"] == seed]
            oracle = next(r for r in here if r["policy"] == "oracle")
            best = max((r for r in here if "fee_ppm" in r), key=lambda r: r["net_msat"])
            shown = [dict(best, policy=f"best fixed ({best['fee_ppm']} ppm)")] + \
                [next(r for r in here if r["policy"] == p) for p in policies] + [oracle]
            for r in shown:
                r = dict(r, capture=r["net_msat"] / oracle["net_msat"] if oracle["net_msat"] > 0 else float("nan"),
                         vs_best=r["net_msat"] / best["net_msat"] if best["net_msat"] > 0 else float("nan"))
                key = "best fixed" if r["policy"].startswith("best fixed") else r["policy"]
                per.setdefault((s, key), []).append(r)
                out.append(f"| {s} | {seed} | {r['policy']} | {r['net_msat'] // 1000:,} | {r['capture']:.1%} | "
                           f"{r['vs_best']:.3f} | {r['broadcasts_per_ch_day']:.2f} | {r['budget_breaches']} |")
    out += ["", f"mean (sd; min..max) over seeds {', '.join(map(str, seeds))}", "",
            "| scenario | policy | capture vs oracle | ratio to best fixed | broadcasts/ch/day | budget breaches |",
            "|---|---|---:|---:|---:|---:|"]
    for (s, p), rs in per.items():
        cap, vb = [r["capture"] for r in rs], [r["vs_best"] for r in rs]
        sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
        out.append(f"| {s} | {p} | {statistics.mean(cap):.1%} ({sd(cap):.1%}; {min(cap):.1%}..{max(cap):.1%}) | "
                   f"{statistics.mean(vb):.3f} ({sd(vb):.3f}; {min(vb):.3f}..{max(vb):.3f}) | "
                   f"{statistics.mean(r['broadcasts_per_ch_day'] for r in rs):.2f} | "
                   f"{sum(r['budget_breaches'] for r in rs)} |")
        summary.append({"scenario": s, "policy": p, "capture_mean": statistics.mean(cap),
                        "vs_best_mean": statistics.mean(vb), "vs_best_min": min(vb)})
    return "\n".join(out), summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", nargs="+", default=["hub", "zombies", "sink-drain", "competitor-shift",
                                                       "demand-shift"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--policies", nargs="+", default=["default", "proportional"], choices=sorted(POLICIES))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    jobs = [(s, seed, p, args.days) for s in args.scenario for seed in args.seeds for p in args.policies]
    jobs += [(s, seed, "oracle", args.days) for s in args.scenario for seed in args.seeds]
    jobs += [(s, seed, ("sweep", f), args.days) for s in args.scenario for seed in args.seeds
             for f in grid(s, seed)]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, jobs))
    text, summary = table(rows, args.scenario, args.seeds, args.policies)
    print(f"{args.days:g} days per run; fixed-fee grid T × {GRID[0]}..{GRID[-1]} (T = typical competitor fee)\n")
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
