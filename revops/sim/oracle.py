"""The oracle: a fee setter that reads the market model's hidden parameters.

An upper reference, not a policy an operator could run: it knows each channel's true
competitor price (`ref_fee_ppm`, which moves in the moving scenarios), the elasticity of the
acceptance curve and the payment size distribution, and sets every channel to the fee that
maximises expected fee income per payment offered to it:

    argmax_p  E_a[ (base + a·p/1e6) · 1 / (1 + exp((base·1e6/a + p − ref) / scale)) ]

over lognormal sizes `a` (the market's own distribution, by quadrature), then prices the
channel's true balance along a curve, e^(balance_curve × (0.5 − local ratio)): dearer as it
drains, cheaper as it fills. Liquidity is finite, so a balance-blind fee leaves money on the
table wherever channels drain (a blind oracle was beaten by the default policy on every
stationary seed: it was no upper reference). `run_oracle` runs the curves of
BALANCE_CURVES (0 = blind) and keeps the best in hindsight, as the best fixed fee is kept.
It never rebalances. It keeps the default policy's gossip budget: a channel is re-set only when
its wanted fee moved by more than `move_share`, `min_gap_s` after its last update, and at most
`max_per_day` times in any 24 h.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from revops.sim.model_channel import NORMAL
from revops.sim.node import Node

DAY_S = 86400
ORACLE_NOTE = ("oracle: an upper reference that reads the simulator's hidden demand curves; "
               "no operator can run it")
#: balance curves the oracle tries (0 = balance-blind); run_oracle keeps the best in hindsight
BALANCE_CURVES = (0.0, 0.5, 1.0, 1.5, 2.0)
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

    def __init__(self, move_share: float = 0.1, min_gap_s: float = 6 * 3600, balance_curve: float = 0.0,
                 max_per_day: int = 2):
        self.balance_curve = balance_curve
        self.move_share = move_share
        self.min_gap_s = min_gap_s
        self.max_per_day = max_per_day      # the default policy's gossip budget per channel
        self.set_at_s: dict[str, list[float]] = {}
        self._cache: dict[tuple, int] = {}

    def target_ppm(self, node: Node, ch) -> int:
        """The fee the oracle wants for `ch` now: its market's best, priced for its balance."""
        best = self.market_ppm(node, ch)
        if not self.balance_curve or ch.total_msat <= 0:
            return best
        ratio = ch.to_us_msat / ch.total_msat
        return int(round(best * math.exp(self.balance_curve * (0.5 - ratio))))

    def market_ppm(self, node: Node, ch) -> int:
        """The revenue-maximising fee per payment offered to `ch` (balance aside)."""
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
            times = self.set_at_s.get(ch.scid)
            if times is not None:       # a channel it set before moves on big, spaced changes only
                recent = [t for t in times if now_s - t < DAY_S]
                if (abs(want - ch.fee_ppm) <= self.move_share * max(ch.fee_ppm, 1)
                        or now_s - times[-1] < self.min_gap_s or len(recent) >= self.max_per_day):
                    continue
                times[:] = recent
            rpc("setchannel", {"id": ch.scid, "feeppm": want})
            self.set_at_s.setdefault(ch.scid, []).append(now_s)


def run_oracle(scenario: str, days: float = 30, seed: int | None = None,
               curves: tuple[float, ...] = BALANCE_CURVES):
    """The oracle's run on `scenario`: the best of its balance curves in hindsight (a SimReport
    named "oracle", its curve in params["oracle_balance_curve"] and in its note)."""
    from revops.sim.inprocess import simulate_setter
    runs = [(simulate_setter(scenario, Oracle(balance_curve=c), "oracle", days=days, seed=seed), c)
            for c in curves]
    best, curve = max(runs, key=lambda rc: rc[0].net_profit_msat)
    best.params["oracle_balance_curve"] = curve
    best.wall_s = round(sum(r.wall_s for r, _ in runs), 2)
    best.note = f"{ORACLE_NOTE} (balance curve {curve:g}, the best of {', '.join(f'{c:g}' for c in curves)})"
    return best
