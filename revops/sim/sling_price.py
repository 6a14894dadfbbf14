"""The price of liquidity bought from a peer: persistent noise and depth (issue 14 item 4).

A rebalance that buys liquidity on channel `ch` pays

    base_ppm × (ch.ref_fee_ppm / median ref) × exp(noise) × (1 + depth_weight × bought / capacity)
             × (1 + stress_weight × mempool stress)

* `noise` is a per-channel Ornstein-Uhlenbeck process in log space (stationary sd
  `noise_sigma`, memory `noise_memory_h`): a quote does not get redrawn by waiting a minute,
  so a patient rebalancer cannot pick the lucky tail; it moves over hours.
* `bought` is what was bought on that channel in the last 24 h: the price rises with the
  amount taken in a day (the cheap routes get used up) and falls back as the day rolls on.

Each channel's noise has its own stream (`{seed}/sling-noise/{idx}`), so one channel's
rebalancing does not move another's prices.
"""

from __future__ import annotations

import math
import random
from collections import deque

DAY_S = 86400.0


class LiquidityPrice:
    """Noise and depth of the liquidity price per channel."""

    def __init__(self, seed: int | str, noise_sigma: float, noise_memory_h: float, depth_weight: float):
        self.seed = seed
        self.sigma = noise_sigma
        self.tau_s = noise_memory_h * 3600.0
        self.depth_weight = depth_weight
        self._noise: dict[int, tuple[float, float, random.Random]] = {}   # idx -> (t, x, rng)
        self._bought: dict[int, deque] = {}                              # idx -> (t, msat)

    def noise(self, ch, now: float) -> float:
        """Return the channel's log-noise at `now` (persistent over `noise_memory_h`)."""
        if self.sigma <= 0:
            return 0.0
        st = self._noise.get(ch.idx)
        if st is None:
            rng = random.Random(f"{self.seed}/sling-noise/{ch.idx}")
            st = (now, rng.gauss(0.0, self.sigma), rng)
        t, x, rng = st
        if now > t:
            if self.tau_s <= 0:          # no memory: a fresh draw each time (the old model)
                x = rng.gauss(0.0, self.sigma)
            else:
                keep = math.exp(-(now - t) / self.tau_s)
                x = x * keep + self.sigma * math.sqrt(max(0.0, 1 - keep * keep)) * rng.gauss(0.0, 1.0)
        self._noise[ch.idx] = (now, x, rng)
        return x

    def depth(self, ch, now: float) -> float:
        """Return the multiplier from liquidity bought on `ch` in the last 24 h."""
        q = self._bought.get(ch.idx)
        if not q or self.depth_weight <= 0:
            return 1.0
        while q and now - q[0][0] >= DAY_S:
            q.popleft()
        return 1.0 + self.depth_weight * sum(a for _, a in q) / max(ch.total_msat, 1)

    def record(self, ch, now: float, amount_msat: int) -> None:
        """Liquidity was bought on `ch`."""
        self._bought.setdefault(ch.idx, deque()).append((now, amount_msat))
