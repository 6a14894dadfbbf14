"""Derived facts: decayed peer reputation, profitability, and the channel classes.

The original plugin had these classes too, but two of its formulas could not be reached
(ZOMBIE needed diagnostic rebalances nothing ever made; flow classes needed half the
capacity to move per day). Here every class is a plain function of facts that the simulator
reaches, and docs/facts.md gives each formula. The thresholds are the roadmap's values;
a policy that wants others compares the underlying numbers (`channel.return_on_cost_30d`,
`channel.flow_ratio_7d`, ...) itself.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Mapping

#: Reputation counts lose half their weight every this many days (float decay: a count of 1
#: never collapses to 0, as an hourly integer truncation would make it).
REPUTATION_HALF_LIFE_DAYS = 7.0
#: Forwards are known in three age bands (the flow windows); each band is weighted by the
#: decay at its middle age, in days.
_BAND_MID_AGE_DAYS = (0.5, 4.0, 18.5)   # [0, 1d), [1d, 7d), [7d, 30d)
#: The weight of a forward whose incoming peer is unknown (a channel closed and forgotten).
UNKNOWN_PEER_REPUTATION = 0.5

#: Profitability: the open cost is spread over a year of the channel's life.
OPEN_COST_AMORTISE_DAYS = 365.0
PROFITABLE_ROI = 0.10      # return on cost above this is PROFITABLE
UNDERWATER_ROI = -0.10     # return on cost below this is UNDERWATER
STAGNANT_DAYS = 7.0        # no settled forward in or out for this long (and at least this old)

#: Flow classes: net flow share over 7 d, and the turnover below which balance decides.
FLOW_CLASS_RATIO = 0.5
FLOW_MIN_TURNOVER = 0.001  # capacity turned over per day below which flows are too thin to say
DRAINED_LOCAL_RATIO = 0.3  # no meaningful flow: less local than this counts as DRAINING
FILLED_LOCAL_RATIO = 0.7   # ... and more than this as FILLING

#: Stagnant inventory (a rebalance source): balanced but idle.
STAGNANT_INVENTORY_RATIO = (0.4, 0.6)
STAGNANT_INVENTORY_TURNOVER = 0.0015


def laplace(successes: float, failures: float) -> float:
    """Returns the Laplace-smoothed success score (s+1)/(s+f+2); 0.5 with no observations."""
    return (successes + 1) / (successes + failures + 2)


def decayed_reputation(bands: tuple[tuple[int, int], ...]) -> float:
    """Laplace score (s+1)/(s+f+2) of (successes, failures) per age band, each band's counts
    weighted by 0.5^(age / half-life) in floating point; 0.5 with no forwards."""
    s = f = 0.0
    for (ok, failed), age in zip(bands, _BAND_MID_AGE_DAYS):
        w = 0.5 ** (age / REPUTATION_HALF_LIFE_DAYS)
        s += ok * w
        f += failed * w
    return laplace(s, f)


def bands(c1: tuple[int, int], c7: tuple[int, int], c30: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """(successes, failures) over 1d, 7d and 30d windows -> the three disjoint age bands."""
    return (c1, (c7[0] - c1[0], c7[1] - c1[1]), (c30[0] - c7[0], c30[1] - c7[1]))


def profitability(v: Mapping[str, Any]) -> dict[str, Any]:
    """The channel's 30-day profitability facts from its flow, market and rebalance facts
    (channel.rebalance_cost_30d_msat: the rebalancer's measured spend into the channel)."""
    rebalance_cost_30d_msat = v["channel.rebalance_cost_30d_msat"]
    contribution = v["channel.fees_earned_30d_msat"] + v["channel.fees_sourced_30d_msat"]
    open_cost_msat = v["market.open_cost_sat"] * 1000 if v["channel.opener_local"] else 0
    days = v["channel.flow_days_30d"]  # the open cost of the days the window really covers
    cost = rebalance_cost_30d_msat + open_cost_msat * days / OPEN_COST_AMORTISE_DAYS
    net = contribution - cost
    if cost > 0:
        roi = net / cost
    else:
        roi = 1.0 if contribution > 0 else 0.0
    if rebalance_cost_30d_msat > 0:
        marginal = (contribution - rebalance_cost_30d_msat) / rebalance_cost_30d_msat
    else:
        marginal = 1.0 if contribution > 0 else 0.0
    return {
        "channel.contribution_30d_msat": contribution,
        "channel.open_cost_estimate_sat": open_cost_msat // 1000,
        "channel.net_profit_30d_msat": round(net),
        "channel.return_on_cost_30d": roi,
        "channel.capital_return_annual": capital_return_annual(net, v["channel.local_msat"], days),
        "channel.marginal_roi_30d": marginal,
    }


def capital_return_annual(net_30d_msat: float, local_msat: float, days: float) -> float:
    """Net profit over the 30-day window (which covers `days`) per unit of our capital in the
    channel (its local balance now), annualised (x 365/days): what an operator means by ROI.
    0 with no local balance."""
    return net_30d_msat / local_msat * 365.0 / days if local_msat > 0 else 0.0


def is_stagnant(v: Mapping[str, Any]) -> bool:
    idle_s = min(v["channel.last_out_fwd_age_s"], v["channel.last_in_fwd_age_s"])
    return v["channel.age_days"] >= STAGNANT_DAYS and idle_s >= STAGNANT_DAYS * 86400


def profit_class(v: Mapping[str, Any], zombie_confirmed: bool) -> str:
    """ZOMBIE, IDLE, PROFITABLE, UNDERWATER or BREAK_EVEN, first match in that order.

    ZOMBIE is IDLE plus the Defibrillator's verdict: the policy's 0 ppm probe ran its
    window and nothing routed (the state flag `zombie`), so no channel is called a zombie
    before it was offered for free."""
    if is_stagnant(v):
        return "ZOMBIE" if zombie_confirmed else "IDLE"
    if v["channel.return_on_cost_30d"] > PROFITABLE_ROI:
        return "PROFITABLE"
    if v["channel.return_on_cost_30d"] < UNDERWATER_ROI:
        return "UNDERWATER"
    return "BREAK_EVEN"


def flow_class(v: Mapping[str, Any]) -> str:
    """DRAINING (liquidity leaves: net outflow), FILLING (net inflow) or BALANCED.

    Not to be confused with a rebalance *source*, a channel with liquidity to spare.

    With flows too thin to say (turnover below FLOW_MIN_TURNOVER), the balance decides: a
    drained channel counts as DRAINING, a filled one as FILLING."""
    if v["channel.turnover_7d"] >= FLOW_MIN_TURNOVER:
        ratio = v["channel.flow_ratio_7d"]
        if ratio >= FLOW_CLASS_RATIO:
            return "DRAINING"
        if ratio <= -FLOW_CLASS_RATIO:
            return "FILLING"
        return "BALANCED"
    if v["channel.local_ratio"] < DRAINED_LOCAL_RATIO:
        return "DRAINING"
    if v["channel.local_ratio"] > FILLED_LOCAL_RATIO:
        return "FILLING"
    return "BALANCED"


def stagnant_inventory(v: Mapping[str, Any]) -> bool:
    """Balanced but idle: liquidity worth moving to where it earns (a rebalance source)."""
    lo, hi = STAGNANT_INVENTORY_RATIO
    return lo <= v["channel.local_ratio"] <= hi and v["channel.turnover_7d"] < STAGNANT_INVENTORY_TURNOVER


def weighted_fees(in_fees: Mapping[str, int], peer_of: Mapping[str, str],
                  reputation: Mapping[str, float]) -> float:
    """Fees earned out of one channel, each weighted by the reputation of the peer the
    forward came in from (UNKNOWN_PEER_REPUTATION when that channel is gone)."""
    total = 0.0
    for in_scid, fee in in_fees.items():
        peer = peer_of.get(in_scid)
        total += fee * (reputation.get(peer, UNKNOWN_PEER_REPUTATION) if peer else UNKNOWN_PEER_REPUTATION)
    return total
