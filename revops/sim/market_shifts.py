"""A market that moves: competitor prices drift and jump, peers' demand changes regime.

Every `tick_h` simulated hours, for each channel, from its own stream (`{seed}/shifts`, so
every policy on a seed sees the same moves):

* Competitor price (`ref_fee_ppm`): a level times a mean-reverting log deviation. The
  deviation takes N(0, `ref_drift_sigma_per_day`·√days) steps and decays with
  `ref_revert_days`; at rate `ref_jumps_per_week` the level jumps by ×`ref_jump_factor` or
  ÷`ref_jump_factor` (a new cheaper route appears, a competitor closes) and stays there.
* Demand regime: at rate `demand_regimes_per_week` (per channel and direction) the out- or
  in-demand multiplier switches to one of `demand_levels` (a merchant goes quiet at 0.1, an
  exchange peer turns on at 3).
* Rhythm: each peer's demand follows a daily and a weekly cycle of amplitude
  `daily_amplitude` / `weekly_amplitude` with its own phase (people pay in their daytime).

The oracle (revops/sim/oracle.py) reads `ref_fee_ppm` as it moves; policies only see
forwards.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from revops.sim.model_channel import ONCHAIN

if TYPE_CHECKING:
    from revops.sim.node import Node

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class ShiftParams:
    """Scenario knobs of the moving market (section `shifts`; all off by default)."""

    tick_h: float = 1.0
    ref_drift_sigma_per_day: float = 0.0
    ref_revert_days: float = 10.0
    ref_jumps_per_week: float = 0.0
    ref_jump_factor: float = 2.0
    demand_regimes_per_week: float = 0.0
    demand_levels: tuple = (0.1, 1.0, 3.0)
    daily_amplitude: float = 0.0
    weekly_amplitude: float = 0.0

    @property
    def active(self) -> bool:
        return any((self.ref_drift_sigma_per_day, self.ref_jumps_per_week,
                    self.demand_regimes_per_week, self.daily_amplitude, self.weekly_amplitude))


class _State:
    __slots__ = ("level", "dev", "out_mult", "in_mult", "phase_d", "phase_w")


class MarketShifts:
    """Moves each channel's competitor price and demand over simulated time."""

    def __init__(self, node: "Node", params: ShiftParams, seed: int | str):
        self.node = node
        self.p = params
        self.rng = random.Random(f"{seed}/shifts")
        self.state: dict[int, _State] = {}
        self.last_s: float | None = None

    def start(self, now: float) -> None:
        """Apply the first tick now and schedule the next."""
        self.tick(now, None)

    def _state(self, ch) -> _State:
        st = self.state.get(ch.idx)
        if st is None:
            st = _State()
            ch.base_ref_fee_ppm = ch.ref_fee_ppm
            ch.base_demand_out, ch.base_demand_in = ch.demand_out, ch.demand_in
            st.level, st.dev, st.out_mult, st.in_mult = float(ch.ref_fee_ppm), 0.0, 1.0, 1.0
            st.phase_d, st.phase_w = self.rng.random(), self.rng.random()
            self.state[ch.idx] = st
        return st

    def tick(self, now: float, _arg) -> None:
        p, rng = self.p, self.rng
        dt_s = 0.0 if self.last_s is None else now - self.last_s
        self.last_s = now
        days, weeks = dt_s / DAY_S, dt_s / WEEK_S
        decay = math.exp(-days / max(p.ref_revert_days, 1e-9))
        for ch in self.node.channels:
            if ch.state == ONCHAIN:
                continue
            st = self._state(ch)
            # draws are taken whether used or not, so every channel's moves stay aligned
            z, u_jump, u_dir, u_out, u_in, u_lvl_out, u_lvl_in = (
                rng.gauss(0.0, 1.0), rng.random(), rng.random(), rng.random(), rng.random(),
                rng.random(), rng.random())
            if dt_s > 0:
                st.dev = st.dev * decay + p.ref_drift_sigma_per_day * math.sqrt(days) * z
                if u_jump < p.ref_jumps_per_week * weeks:
                    st.level = st.level * p.ref_jump_factor if u_dir < 0.5 else st.level / p.ref_jump_factor
                levels = p.demand_levels
                if u_out < p.demand_regimes_per_week * weeks:
                    st.out_mult = levels[int(u_lvl_out * len(levels))]
                if u_in < p.demand_regimes_per_week * weeks:
                    st.in_mult = levels[int(u_lvl_in * len(levels))]
            ch.ref_fee_ppm = max(1, int(round(st.level * math.exp(st.dev))))
            rhythm = ((1.0 + p.daily_amplitude * math.sin(2 * math.pi * (now / DAY_S + st.phase_d)))
                      * (1.0 + p.weekly_amplitude * math.sin(2 * math.pi * (now / WEEK_S + st.phase_w))))
            ch.demand_out = ch.base_demand_out * st.out_mult * rhythm
            ch.demand_in = ch.base_demand_in * st.in_mult * rhythm
        self.node.market_dirty()
        self.node.schedule(now + p.tick_h * 3600.0, self.tick, None)
