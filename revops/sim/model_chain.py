"""The blockchain as the node sees it: block arrivals and an on-chain feerate series with shocks.

Blocks arrive as a Poisson process (mean 600 s). The base feerate (sat per kw) follows a
mean-reverting random walk in log space, updated every block, multiplied by any mempool shock
in force (scheduled ones from the scenario and random ones at `shock_rate_per_week`). The
`feerates` RPC derives its per-target estimates from that base, as bitcoind's estimatesmartfee
curve would look: faster targets cost more.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

FEERATE_FLOOR_PERKW = 253
# (blockcount, multiplier over the base) for feerates.estimates
_TARGETS = ((2, 2.4), (6, 1.2), (12, 1.0), (100, 0.5))
# approximate weights lightningd uses for onchain_fee_estimates
_OPENING_WEIGHT = 702
_MUTUAL_CLOSE_WEIGHT = 673
_UNILATERAL_WEIGHT = 1112
_UNILATERAL_NONANCHOR_WEIGHT = 1124
_HTLC_TIMEOUT_WEIGHT = 663
_HTLC_SUCCESS_WEIGHT = 703


@dataclass(frozen=True)
class Shock:
    """A mempool congestion episode: feerates × `multiplier` from `start_s` for `duration_s`."""

    start_s: float
    duration_s: float
    multiplier: float


class Chain:
    """Block height, block hashes and the feerate series."""

    def __init__(self, rng: random.Random, height: int, now_s: float, base_perkw: int,
                 volatility: float, shocks: list[Shock], shock_rate_per_week: float,
                 shock_multiplier: float, shock_duration_s: float):
        self.rng = rng
        self.height = height
        self.base_mean_perkw = float(base_perkw)
        self.volatility = volatility
        self._log_dev = 0.0                       # deviation of log(base) from its mean
        self.shocks = sorted(shocks, key=lambda s: s.start_s)
        self.shock_rate_per_s = shock_rate_per_week / (7 * 86400)
        self.shock_multiplier = shock_multiplier
        self.shock_duration_s = shock_duration_s
        self.next_block_s = now_s + rng.expovariate(1 / 600)
        self.next_random_shock_s = (now_s + rng.expovariate(self.shock_rate_per_s)
                                    if self.shock_rate_per_s > 0 else math.inf)
        self.smoothed: dict[int, float] = {}
        self.now_s = now_s
        self._update_smoothing()

    def shock_factor(self, now_s: float) -> float:
        """Return the product of shock multipliers in force at `now_s`."""
        f = 1.0
        for s in self.shocks:
            if s.start_s <= now_s < s.start_s + s.duration_s:
                f *= s.multiplier
        return f

    def base_perkw(self, now_s: float | None = None) -> int:
        """Return the current 12-block feerate in sat/kw."""
        t = self.now_s if now_s is None else now_s
        v = self.base_mean_perkw * math.exp(self._log_dev) * self.shock_factor(t)
        return max(FEERATE_FLOOR_PERKW, int(v))

    def stress(self) -> float:
        """Return how congested the mempool is: current base over its long-run mean (≥ 0)."""
        return self.base_perkw() / self.base_mean_perkw

    def mine_block(self, now_s: float) -> tuple[int, str]:
        """Advance one block at `now_s`; return (height, block hash)."""
        self.now_s = now_s
        self.height += 1
        # Ornstein-Uhlenbeck step in log space: pull back 5% per block plus noise.
        self._log_dev += -0.05 * self._log_dev + self.rng.gauss(0.0, self.volatility)
        while self.next_random_shock_s <= now_s:
            self.shocks.append(Shock(self.next_random_shock_s, self.shock_duration_s,
                                     self.shock_multiplier))
            self.next_random_shock_s += self.rng.expovariate(self.shock_rate_per_s)
        self._update_smoothing()
        self.next_block_s = now_s + self.rng.expovariate(1 / 600)
        return self.height, "%064x" % self.rng.getrandbits(256)

    def _update_smoothing(self) -> None:
        base = self.base_perkw()
        for blocks, mult in _TARGETS:
            raw = max(FEERATE_FLOOR_PERKW, int(base * mult))
            prev = self.smoothed.get(blocks, raw)
            # lightningd smooths estimates so a single block does not swing them
            self.smoothed[blocks] = prev * 0.8 + raw * 0.2

    def estimate(self, blocks: int) -> int:
        """Return the raw estimate for confirmation within `blocks`."""
        base = self.base_perkw()
        for b, mult in _TARGETS:
            if b == blocks:
                return max(FEERATE_FLOOR_PERKW, int(base * mult))
        raise ValueError(blocks)

    def feerates(self, style: str) -> dict:
        """Return the `feerates` RPC result for style perkw or perkb."""
        k = 4 if style == "perkb" else 1
        est = {b: self.estimate(b) for b, _ in _TARGETS}
        smooth = {b: max(FEERATE_FLOOR_PERKW, int(self.smoothed[b])) for b, _ in _TARGETS}
        rates = {
            "opening": smooth[12] * k,
            "mutual_close": smooth[100] * k,
            "unilateral_close": smooth[6] * k,
            "unilateral_anchor_close": smooth[100] * k,
            "penalty": smooth[12] * k,
            "min_acceptable": max(FEERATE_FLOOR_PERKW, smooth[100] // 2) * k,
            "max_acceptable": smooth[2] * 10 * k,
            "floor": FEERATE_FLOOR_PERKW * k,
            "estimates": [{"blockcount": b, "feerate": est[b] * k, "smoothed_feerate": smooth[b] * k}
                          for b, _ in _TARGETS],
        }
        fee = lambda perkw, weight: perkw * weight // 1000  # noqa: E731 (sat)
        return {
            style: rates,
            "onchain_fee_estimates": {
                "opening_channel_satoshis": fee(smooth[12], _OPENING_WEIGHT),
                "mutual_close_satoshis": fee(smooth[100], _MUTUAL_CLOSE_WEIGHT),
                "unilateral_close_satoshis": fee(smooth[100], _UNILATERAL_WEIGHT),
                "unilateral_close_nonanchor_satoshis": fee(smooth[6], _UNILATERAL_NONANCHOR_WEIGHT),
                "htlc_timeout_satoshis": fee(smooth[6], _HTLC_TIMEOUT_WEIGHT),
                "htlc_success_satoshis": fee(smooth[6], _HTLC_SUCCESS_WEIGHT),
            },
        }
