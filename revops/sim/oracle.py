"""The oracle: a fee setter that reads the market model's hidden parameters.

An upper reference, not a policy an operator could run: it knows each channel's true
competitor price (`ref_fee_ppm`, which moves in the moving scenarios), the elasticity of the
acceptance curve and the payment size distribution, and sets every channel to the fee that
maximises expected fee income per payment offered to it:

    argmax_p  E_a[ (base + a·p/1e6) · 1 / (1 + exp((base·1e6/a + p − ref) / scale)) ]

over lognormal sizes `a` (the market's own distribution, by quadrature). It ignores balance
(a draining channel is not priced up) and never rebalances, so a balance-aware policy can beat
it where liquidity is scarce (sink-drain). It respects the gossip budget: a channel is re-set
only when its best fee moved by more than `move_share` and `min_gap_s` passed since its last
update, so a stationary market sees one update per channel.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from revops.sim.model_channel import NORMAL
from revops.sim.node import Node

ORACLE_NOTE = ("oracle: an upper reference that reads the simulator's hidden demand curves; "
               "no operator can run it")
_QUANTILES = [NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)]


def best_fee_ppm(ref_ppm: float, scale_ppm: float, base_msat: int, amounts_msat: list[int],
                 hi_ppm: int = 100_000) -> int:
    """Return the ppm that maximises expected fee income for these payment sizes."""
    def income(p: float) -> float:
        total = 0.0
        for a in amounts_msat:
            x = (base_msat * 1e6 / a + p - ref_ppm) / scale_ppm
            total += (base_msat + a * p / 1e6) / (1.0 + math.exp(min(x, 50.0)))
        return total

    lo, hi = 0.0, float(min(hi_ppm, ref_ppm + 20 * scale_ppm))
    for _ in range(60):                 # golden-section search: income is unimodal in p
        m1, m2 = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if income(m1) < income(m2):
            lo = m1
        else:
            hi = m2
    best = int(round((lo + hi) / 2))
    return max(0, min(best, hi_ppm, max(best - 1, 0) if income(best - 1) > income(best) else best))


class Oracle:
    """Sets each channel to its revenue-maximising fee under the true demand curve."""

    def __init__(self, move_share: float = 0.1, min_gap_s: float = 6 * 3600):
        self.move_share = move_share
        self.min_gap_s = min_gap_s
        self.last_set_s: dict[str, float] = {}
        self._cache: dict[tuple, int] = {}

    def target_ppm(self, node: Node, ch) -> int:
        """The fee the oracle wants for `ch` now."""
        p = node.market.p
        key = (int(ch.ref_fee_ppm), ch.fee_base_msat)
        if key not in self._cache:
            mu = math.log(p.amount_median_sat * 1000)
            amounts = [min(max(int(math.exp(mu + p.amount_sigma * z)), 1000), p.max_amount_sat * 1000)
                       for z in _QUANTILES]
            self._cache[key] = best_fee_ppm(ch.ref_fee_ppm, p.elasticity_scale_ppm, ch.fee_base_msat,
                                            amounts)
        return self._cache[key]

    def __call__(self, node: Node, rpc, now_s: float) -> None:
        for ch in list(node.channels):
            if ch.state != NORMAL or not ch.scid:
                continue
            want = self.target_ppm(node, ch)
            if want == ch.fee_ppm:
                continue
            last = self.last_set_s.get(ch.scid)
            if last is not None and (now_s - last < self.min_gap_s
                                     or abs(want - ch.fee_ppm) <= self.move_share * max(ch.fee_ppm, 1)):
                continue
            rpc("setchannel", {"id": ch.scid, "feeppm": want})
            self.last_set_s[ch.scid] = now_s
