"""Sweeps of the price learner's settings, in-process: seconds a run instead of minutes.

The real plugin takes about four minutes for 30 days of `hub` on this machine, too slow to
compare many settings over many seeds. This bench runs the learner itself
(revops/facts/price.py: `observe`, `cached_estimate`, exactly as the plugin does) inside the
simulator's process, with a Python copy of what the default policy's discovery and gossip
stages do with its facts:

* below `min_samples` attempts the fee is left alone (the plugin's hill climber is not modelled);
* the learner's draw while its uncertainty is above `explore_above` (0.1), its estimate after,
  times the balance factor e^(curve x (0.5 - local ratio)) (`price_balance_curve`, 1.0);
* a new fee within `hold` (15 %) of the last one set is not sent;
* gossip: no change under 5 %, none within 12 h unless it is 25 % or more, at most 2 a day.

No premiums, floors, Alpha Sequence stages above discovery, and no rebalancing (sink-drain runs
are "fees alone"). So it is an approximation of the default policy: on hub and zombies seeds 3-7
it reproduced the plugin's mean capture within 0.3 points (docs/results.md, session 25). Use it
to choose a setting; measure the choice with the plugin (bench/money_table.py).

Prints, per scenario, each seed's capture of the oracle (revops/sim/oracle.py, its balance
curve the best in hindsight) and the mean.

Usage: PYTHONPATH=. python bench/learner_sweep.py [--scenarios hub zombies] [--seeds 3 4 5 6 7]
       [--days 30] [--jobs 2] [--set estimate_quantile=0.5 --set explore_step=0.2]
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from revops.facts.price import PriceSettings, cached_estimate, observe
from revops.sim.inprocess import simulate_setter
from revops.sim.model_channel import NORMAL
from revops.sim.model_forwards import FAILED, LOCAL_FAILED, OFFERED, SETTLED
from revops.sim.oracle import run_oracle

FEE_INSUFFICIENT = 4108   # a sender with an old fee: not an attempt at ours (store/price.py)


class LearnerSetter:
    """The default policy's price rules, approximately (see the module docstring)."""

    def __init__(self, settings: PriceSettings, curve: float = 1.0, explore_above: float = 0.1,
                 hold: float = 0.15):
        self.settings, self.curve, self.explore_above, self.hold = settings, curve, explore_above, hold
        self.states: dict[str, dict] = {}
        self.last_set: dict[str, float] = {}
        self.updates: dict[str, list[float]] = {}
        self.cursor = 0
        self.pending: list[int] = []

    def _attempts(self, node) -> dict[str, float]:
        """Forwards out of each channel that accepted its fee, resolved since the last call."""
        fw, out, still = node.forwards, {}, []
        dust = self.settings.dust_sat * 1000  # a dust forward counts as its share (store/price.py)
        rows, self.cursor = self.pending + list(range(self.cursor, len(fw))), len(fw)
        for i in rows:
            status = fw.status[i]
            if status == OFFERED:
                still.append(i)
            elif fw.out_ch[i] >= 0 and (status in (SETTLED, FAILED)
                                        or (status == LOCAL_FAILED and fw.failcode[i] != FEE_INSUFFICIENT)):
                scid = fw.scids[fw.out_ch[i]]
                size = fw.out_msat[i] or fw.in_msat[i]
                out[scid] = out.get(scid, 0) + (min(1.0, size / dust) if dust > 0 else 1)
        self.pending = still
        return out

    def __call__(self, node, rpc, now: float) -> None:
        attempts, s = self._attempts(node), self.settings
        for ch in list(node.channels):
            if not ch.scid or ch.state != NORMAL:
                continue
            old = self.states.get(ch.scid)
            state = observe(old, now, ch.fee_ppm, attempts.get(ch.scid, 0) if old else 0, ch.peer.connected, s)
            e, cache = cached_estimate(state, ch.scid, now, ch.fee_ppm, s)
            if cache is not None:
                state["cache"] = cache
            self.states[ch.scid] = state
            if e.samples < s.min_samples:
                continue
            ratio = ch.to_us_msat / ch.total_msat if ch.total_msat else 0.5
            base = e.next_ppm if e.uncertainty > self.explore_above else e.estimate_ppm
            want = s.clamp(base * math.exp(self.curve * (0.5 - ratio)))
            last = self.last_set.get(ch.scid, 0.0)
            if last > 0 and abs(want - last) < self.hold * last:
                want = last
            self.last_set[ch.scid] = want
            self._send(ch, int(round(want)), now, rpc)

    def _send(self, ch, fee: int, now: float, rpc) -> None:
        change = abs(fee - ch.fee_ppm) / max(1, ch.fee_ppm)
        recent = [t for t in self.updates.get(ch.scid, []) if now - t < 86400]
        if (fee == ch.fee_ppm or change < 0.05 or len(recent) >= 2
                or (recent and now - recent[-1] < 12 * 3600 and change < 0.25)):
            return
        rpc("setchannel", {"id": ch.scid, "feeppm": fee})
        self.updates[ch.scid] = recent + [now]


def one(job: tuple) -> tuple[str, int, float]:
    scenario, seed, days, overrides = job
    settings = replace(PriceSettings(), **overrides)
    learner = simulate_setter(scenario, LearnerSetter(settings), "learner", days=days, seed=seed)
    oracle = run_oracle(scenario, days=days, seed=seed)
    return scenario, seed, learner.net_profit_msat / oracle.net_profit_msat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["hub", "zombies"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[3, 4, 5, 6, 7])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a PriceSettings field, e.g. estimate_quantile=0.5")
    args = ap.parse_args()
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    jobs = [(sc, seed, args.days, overrides) for sc in args.scenarios for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as ex:
        results = list(ex.map(one, jobs))
    label = " ".join(f"{k}={v:g}" for k, v in overrides.items()) or "shipped settings"
    for scenario in args.scenarios:
        caps = [c for sc, _, c in results if sc == scenario]
        seeds = ", ".join(f"{seed}: {c:.1%}" for sc, seed, c in results if sc == scenario)
        print(f"{label}: {scenario} capture mean {sum(caps) / len(caps):.1%} ({seeds})")


if __name__ == "__main__":
    main()
