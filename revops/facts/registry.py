"""The fact registry: every name a policy may reference, with its type, unit and meaning.

The policy compiler type-checks conditions against `FACTS`; `build_facts` (build.py) fills a
value for every registered name on every channel, never None. Where a value can be unknown, the
fact has a documented neutral default and a companion bool (`channel.peer_fee_known`,
`market.feerates_known`, `channel.has_forwarded`).

Namespaces: `channel.` (one channel), `peer.` (all our channels with that channel's peer),
`node.` (the whole node; same value on every channel), `market.` (on-chain fee market; same
value on every channel). docs/facts.md says how each fact is computed and from which RPC field.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from revops.facts.price import ROWS as _PRICE_ROWS
from revops.facts.rebalance import ROWS as _REBALANCE_ROWS

TYPES = ("number", "bool", "string")

#: Flow windows: label used in fact names -> length in seconds.
WINDOWS_S: Mapping[str, int] = MappingProxyType({"1d": 86_400, "7d": 604_800, "30d": 2_592_000})

#: Value of `*_age_s` facts when the event never happened (10 years, in seconds).
NEVER_S = 315_360_000

#: Seconds per block used to turn block counts into days (1 block ~ 600 s).
BLOCK_S = 600


#: Facts that were renamed: old name -> (new name, why), for the compiler's error message.
RENAMED: Mapping[str, tuple[str, str]] = MappingProxyType({
    "channel.roi_30d": ("channel.return_on_cost_30d",
                        "it is profit per unit of cost, not a return on capital; that is "
                        "channel.capital_return_annual (issue 13)"),
})


@dataclass(frozen=True)
class FactSpec:
    """One fact a policy may reference: dotted name, value type, unit and a one-line doc."""

    name: str   # dotted: "channel.local_ratio"; namespaces: channel., peer., node., market.
    type: str   # "number" | "bool" | "string"
    unit: str   # "msat", "sat", "ppm", "ratio", "s", "count", "blocks", "perkw", "" ...
    doc: str    # one line


def _window_specs() -> list[tuple[str, str, str, str]]:
    """Returns the per-window flow fact rows, for each window in WINDOWS_S."""
    rows: list[tuple[str, str, str, str]] = []
    for w in WINDOWS_S:
        rows += [
            (f"channel.out_fwds_{w}", "number", "count",
             f"settled forwards that left through this channel in the last {w}"),
            (f"channel.in_fwds_{w}", "number", "count",
             f"settled forwards that entered through this channel in the last {w}"),
            (f"channel.out_volume_{w}_msat", "number", "msat",
             f"sum of out_msat of settled forwards leaving through this channel in the last {w}"),
            (f"channel.in_volume_{w}_msat", "number", "msat",
             f"sum of in_msat of settled forwards entering through this channel in the last {w}"),
            (f"channel.fees_earned_{w}_msat", "number", "msat",
             f"fees of settled forwards leaving through this channel in the last {w}"),
            (f"channel.fees_sourced_{w}_msat", "number", "msat",
             f"fees of settled forwards entering through this channel in the last {w}"),
            (f"channel.out_failed_liquidity_{w}", "number", "count",
             f"local_failed forwards we could not send out this channel (no liquidity, slots, "
             f"peer down) in the last {w}"),
            (f"channel.out_failed_policy_{w}", "number", "count",
             f"local_failed forwards to this channel refused for fee/cltv/amount policy "
             f"(failcodes 4107-4110) in the last {w}"),
            (f"channel.out_failed_remote_{w}", "number", "count",
             f"forwards sent out this channel that failed downstream in the last {w}"),
            (f"channel.in_failed_{w}", "number", "count",
             f"forwards entering through this channel that failed (any cause) in the last {w}"),
            (f"channel.hold_samples_{w}", "number", "count",
             f"resolved forwards out this channel with a hold time, in the last {w} (a dust "
             f"forward, under 546 sat, has none: it locks no capital worth a premium)"),
            (f"channel.hold_time_avg_{w}_s", "number", "s",
             f"mean resolved_time - received_time of forwards out this channel in the last {w} "
             f"(0 without samples)"),
            (f"channel.hold_time_std_{w}_s", "number", "s",
             f"population std-dev of hold times out this channel in the last {w} "
             f"(0 with < 2 samples)"),
        ]
    return rows


_ROWS: list[tuple[str, str, str, str]] = [
    # --- channel: identity and state
    ("channel.scid", "string", "", "short channel id, e.g. 880001x1234x0"),
    ("channel.state", "string", "", "lightningd channel state, e.g. CHANNELD_NORMAL, ONCHAIN"),
    ("channel.active", "bool", "", "state is CHANNELD_NORMAL and the peer is connected"),
    ("channel.private", "bool", "", "the channel is not announced"),
    ("channel.opener_local", "bool", "", "we opened (funded) the channel"),
    # --- channel: balances
    ("channel.capacity_sat", "number", "sat", "channel capacity (total_msat / 1000, floored)"),
    ("channel.local_msat", "number", "msat", "our balance (to_us_msat)"),
    ("channel.remote_msat", "number", "msat", "the peer's balance (total_msat - to_us_msat)"),
    ("channel.local_ratio", "number", "ratio", "to_us_msat / total_msat, 0..1 (0 if capacity 0)"),
    ("channel.spendable_msat", "number", "msat", "what we can send now (spendable_msat)"),
    ("channel.receivable_msat", "number", "msat", "what we can receive now (receivable_msat)"),
    ("channel.spendable_ratio", "number", "ratio",
     "spendable_msat / total_msat, 0..1: our outbound share of the channel"),
    # --- channel: age
    ("channel.age_blocks", "number", "blocks",
     "node blockheight minus the funding block in the scid (0 if in the future)"),
    ("channel.age_days", "number", "days", "age_blocks * 600 s / 86400"),
    ("channel.flow_days_30d", "number", "days",
     "days of the last 30 its flow windows really cover: min(30, age_days, time since the node's "
     "record of forwards begins), at least 0.25; rates over a window divide by it (a node or "
     "channel younger than the window has not seen 30 days of flow)"),
    # --- channel: fees and HTLC limits
    ("channel.fee_ppm", "number", "ppm", "our proportional fee (updates.local, else top level)"),
    ("channel.fee_base_msat", "number", "msat", "our base fee (updates.local, else top level)"),
    ("channel.htlc_min_msat", "number", "msat", "our htlc_minimum_msat for outgoing HTLCs"),
    ("channel.htlc_max_msat", "number", "msat",
     "our htlc_maximum_msat for outgoing HTLCs (capacity when unknown)"),
    ("channel.peer_fee_known", "bool", "", "the peer's channel_update is known (updates.remote)"),
    ("channel.peer_fee_ppm", "number", "ppm",
     "the peer's proportional fee towards us (updates.remote; 0 when unknown)"),
    ("channel.peer_fee_base_msat", "number", "msat",
     "the peer's base fee towards us (updates.remote; 0 when unknown)"),
    # --- channel: HTLC utilisation
    ("channel.max_accepted_htlcs", "number", "count", "HTLC slot limit (483 when absent)"),
    ("channel.htlcs_in_flight", "number", "count", "HTLCs pending in either direction"),
    ("channel.htlcs_in_flight_msat", "number", "msat", "sum of amount_msat of pending HTLCs"),
    ("channel.htlcs_in_flight_dust", "number", "count",
     "pending HTLCs lightningd marks local_trimmed or under the channel's dust_limit_msat (546 sat "
     "when absent): a dust flood"),
    ("channel.htlc_slot_util", "number", "ratio",
     "htlcs_in_flight / max_accepted_htlcs, clamped to 0..1 (dust HTLCs included)"),
    ("channel.htlc_value_util", "number", "ratio",
     "htlcs_in_flight_msat / min(our_max_htlc_value_in_flight_msat, total_msat), 0..1"),
    ("channel.htlc_util", "number", "ratio",
     "max(slots held by HTLCs of at least the dust limit / max_accepted_htlcs, htlc_value_util): "
     "the use a fee can ration; dust HTLCs pay no fee worth a premium (htlcs_in_flight_dust)"),
    # --- channel: flow summaries
    ("channel.has_forwarded", "bool", "",
     "a settled forward entered or left through this channel in the known history"),
    ("channel.last_out_fwd_age_s", "number", "s",
     "seconds since the last settled forward out (315360000 = 10 years when never)"),
    ("channel.last_in_fwd_age_s", "number", "s",
     "seconds since the last settled forward in (315360000 = 10 years when never)"),
    ("channel.net_flow_7d_msat", "number", "msat", "out_volume_7d_msat - in_volume_7d_msat"),
    ("channel.flow_ratio_7d", "number", "ratio",
     "(out - in) / (out + in) volume over 7d, -1..1 (+1 pure source, -1 pure sink, 0 if none)"),
    ("channel.loop_out_volume_7d_msat", "number", "msat",
     "outflow over 7d that is a self-loop: forwarded out after coming in through the same peer, "
     "plus what revops' rebalances put back in (rebalanced_30d_msat x min(7, flow_days_30d) / flow_days_30d), "
     "at most out_volume_7d_msat"),
    ("channel.loop_ratio_7d", "number", "ratio", "loop_out_volume_7d_msat / out_volume_7d_msat (0 if none)"),
    ("channel.oneway_out_volume_7d_msat", "number", "msat",
     "genuine one-way outflow over 7d: out_volume_7d_msat - loop_out_volume_7d_msat"),
    ("channel.oneway_flow_ratio_7d", "number", "ratio",
     "flow_ratio_7d without the loops: (oneway_out - in) / (oneway_out + in) over 7d, -1..1"),
    ("channel.turnover_7d", "number", "ratio",
     "(out + in volume over 7d) / min(7, flow_days_30d) / capacity: capacity turned over per day"),
    ("channel.revenue_rate_7d_msat_per_h", "number", "msat/h",
     "fees_earned_7d_msat / (min(7, flow_days_30d) x 24)"),
    ("channel.in_reputation_7d", "number", "ratio",
     "Laplace score (s+1)/(s+f+2) of forwards entering here over 7d (0.5 when none)"),
    ("channel.rep_weighted_fees_1d_msat", "number", "msat",
     "fees earned out of this channel over 24h, each forward weighted by the peer.reputation of "
     "the peer it came in from (0.5 for a channel no longer known)"),
    # --- channel: profitability and classes (facts/classes.py; formulas in docs/facts.md)
    ("channel.contribution_30d_msat", "number", "msat",
     "fees_earned_30d_msat + fees_sourced_30d_msat: what this channel helped earn"),
    ("channel.open_cost_estimate_sat", "number", "sat",
     "market.open_cost_sat when we opened the channel, else 0 (today's price of the open)"),
    ("channel.net_profit_30d_msat", "number", "msat",
     "contribution_30d_msat - rebalance_cost_30d_msat - open cost x flow_days_30d/365"),
    ("channel.capital_return_annual", "number", "ratio",
     "return on capital, annualised: net_profit_30d / our local balance x 365/flow_days_30d (0 with none); "
     "what an operator calls ROI"),
    ("channel.return_on_cost_30d", "number", "ratio",
     "net_profit_30d / (rebalance cost + open cost x flow_days_30d/365); with no cost 1.0 if it "
     "contributed, else 0.0"),
    ("channel.marginal_roi_30d", "number", "ratio",
     "(contribution - rebalance cost) / rebalance cost over 30d (sunk open cost ignored); "
     "with no rebalance cost 1.0 if it contributed, else 0.0"),
    ("channel.profit_class", "string", "",
     "ZOMBIE | IDLE | PROFITABLE | UNDERWATER | BREAK_EVEN, first match: IDLE = no "
     "settled forward in or out for 7 days (and 7 days old), ZOMBIE = IDLE after a failed "
     "0 ppm probe (state zombie); return_on_cost_30d > 0.10 PROFITABLE, < -0.10 UNDERWATER"),
    ("channel.flow_class", "string", "",
     "DRAINING (net outflow: flow_ratio_7d >= 0.5) | FILLING (<= -0.5) | BALANCED; with turnover_7d "
     "< 0.001 local_ratio < 0.3 is DRAINING and > 0.7 FILLING"),
    ("channel.stagnant_inventory", "bool", "",
     "0.4 <= local_ratio <= 0.6 and turnover_7d < 0.0015: balanced but idle, a rebalance source"),
    # --- channel: fee-change history (the store's decision journal)
    ("channel.fee_updates_24h", "number", "count",
     "fee changes revops applied to this channel (setchannel succeeded) in the last 24h"),
    ("channel.last_fee_change_age_s", "number", "s",
     "seconds since revops last applied a fee change here (315360000 = 10 years when never)"),
    # --- peer
    ("peer.id", "string", "", "the peer's node id (pubkey hex)"),
    ("peer.alias", "string", "",
     "the alias the peer announced in gossip (listnodes); \"\" before its node_announcement"),
    ("peer.connected", "bool", "", "the peer is connected now"),
    ("peer.num_channels", "number", "count",
     "our open channels (CHANNELD_NORMAL or CHANNELD_AWAITING_SPLICE) with this peer"),
    ("peer.num_active_channels", "number", "count", "our active channels with this peer"),
    ("peer.capacity_sat", "number", "sat", "total capacity of our open channels with this peer"),
    ("peer.local_msat", "number", "msat", "our total balance in open channels with this peer"),
    ("peer.local_ratio", "number", "ratio",
     "peer.local_msat / peer capacity in msat, 0..1 (0 if capacity 0)"),
    ("peer.out_volume_7d_msat", "number", "msat", "settled volume out to this peer over 7d"),
    ("peer.in_volume_7d_msat", "number", "msat", "settled volume in from this peer over 7d"),
    ("peer.fees_earned_7d_msat", "number", "msat", "fees earned on forwards out to this peer, 7d"),
    ("peer.reputation_7d", "number", "ratio",
     "Laplace score (s+1)/(s+f+2) of forwards this peer sent us over 7d (0.5 when none)"),
    ("peer.reputation", "number", "ratio",
     "Laplace score (s+1)/(s+f+2) of forwards this peer sent us over 30d, each counted with "
     "weight 0.5^(age/7 days) in floating point (0.5 when none)"),
    ("peer.uptime_ratio_7d", "number", "ratio",
     "connected time / known time over the last 7d from connect/disconnect events, 0..1 "
     "(1.0 when nothing is known: uptime_known_s_7d = 0)"),
    ("peer.disconnects_7d", "number", "count",
     "disconnects of this peer in the last 7d (a repeated disconnect counts once)"),
    ("peer.uptime_known_s_7d", "number", "s",
     "seconds of the last 7d whose connection state is known (0..604800)"),
    # --- node
    ("node.id", "string", "", "our node id (getinfo.id)"),
    ("node.alias", "string", "", "our alias (getinfo.alias)"),
    ("node.network", "string", "", "getinfo.network, e.g. bitcoin, regtest"),
    ("node.blockheight", "number", "blocks", "getinfo.blockheight"),
    ("node.num_channels", "number", "count",
     "open channels (CHANNELD_NORMAL or CHANNELD_AWAITING_SPLICE)"),
    ("node.num_active_channels", "number", "count", "active channels"),
    ("node.total_capacity_sat", "number", "sat", "sum of capacity over open channels"),
    ("node.total_local_msat", "number", "msat", "sum of local_msat over open channels"),
    ("node.local_ratio", "number", "ratio", "total_local_msat / total capacity in msat"),
    ("node.channel_spendable_msat", "number", "msat", "sum of spendable_msat over active channels"),
    ("node.channel_receivable_msat", "number", "msat",
     "sum of receivable_msat over active channels"),
    ("node.onchain_confirmed_sat", "number", "sat", "listfunds outputs with status confirmed"),
    ("node.onchain_unconfirmed_sat", "number", "sat",
     "listfunds outputs with status unconfirmed or immature"),
    ("node.fees_collected_msat", "number", "msat", "lifetime routing fees (getinfo)"),
    ("node.fees_earned_1d_msat", "number", "msat", "routing fees earned over 1d (all channels)"),
    ("node.fees_earned_7d_msat", "number", "msat", "routing fees earned over 7d (all channels)"),
    ("node.now_s", "number", "s",
     "the evaluation time, unix seconds (the snapshot's captured_at; the clock, live)"),
    ("node.hour_utc", "number", "h", "hour of the day of node.now_s in UTC, 0..23"),
    ("node.weekday", "string", "",
     "day of the week of node.now_s in UTC: mon, tue, wed, thu, fri, sat or sun"),
    ("node.fee_updates_24h", "number", "count",
     "fee changes revops applied over all channels in the last 24h"),
    # --- market
    ("market.feerates_known", "bool", "", "feerates returned an opening feerate"),
    ("market.opening_feerate_perkw", "number", "perkw",
     "feerates opening (fallback: floor, 253)"),
    ("market.mutual_close_feerate_perkw", "number", "perkw",
     "feerates mutual_close (fallback: opening)"),
    ("market.unilateral_close_feerate_perkw", "number", "perkw",
     "feerates unilateral_close (fallback: opening)"),
    ("market.min_acceptable_perkw", "number", "perkw", "feerates min_acceptable (fallback 253)"),
    ("market.max_acceptable_perkw", "number", "perkw",
     "feerates max_acceptable (fallback: 10 x opening)"),
    ("market.floor_perkw", "number", "perkw", "feerates floor (fallback 253)"),
    ("market.fast_feerate_perkw", "number", "perkw",
     "estimate with the fewest blocks (fallback: opening)"),
    ("market.slow_feerate_perkw", "number", "perkw",
     "estimate with the most blocks (fallback: mutual_close)"),
    ("market.opening_sat_per_vb", "number", "sat/vB", "opening feerate in sat/vB (perkw * 4 / 1000)"),
    ("market.open_cost_sat", "number", "sat",
     "onchain_fee_estimates.opening_channel_satoshis (fallback: opening perkw * 702 / 1000)"),
    ("market.close_cost_sat", "number", "sat",
     "onchain_fee_estimates.mutual_close_satoshis (fallback: mutual_close perkw * 673 / 1000)"),
    ("market.replacement_cost_sat", "number", "sat", "open_cost_sat + close_cost_sat"),
    ("market.opening_feerate_ma_24h_perkw", "number", "perkw",
     "mean opening feerate of the fee cycles of the last 24h (current opening when none)"),
    ("market.opening_feerate_ma_7d_perkw", "number", "perkw",
     "mean opening feerate of the fee cycles of the last 7d (current opening when none)"),
    ("market.feerate_shock_ratio", "number", "ratio",
     "opening_feerate_perkw / opening_feerate_ma_7d_perkw (1.0 when no samples)"),
]


def _make(rows: list[tuple[str, str, str, str]]) -> Mapping[str, FactSpec]:
    """Returns the read-only name -> FactSpec table; raises ValueError on a duplicate or bad row."""
    table: dict[str, FactSpec] = {}
    for name, typ, unit, doc in rows:
        if name in table:
            raise ValueError(f"duplicate fact {name}")
        if typ not in TYPES:
            raise ValueError(f"fact {name}: bad type {typ}")
        table[name] = FactSpec(name, typ, unit, doc)
    return MappingProxyType(table)


# The per-window flow facts go just before the flow summaries, so the table reads in order.
_SPLIT = next(i for i, r in enumerate(_ROWS) if r[0] == "channel.has_forwarded")

#: Every fact a policy may reference, in documentation order.
FACTS: Mapping[str, FactSpec] = _make(_ROWS[:_SPLIT] + _window_specs() + _ROWS[_SPLIT:] + _REBALANCE_ROWS + _PRICE_ROWS)


def markdown_table() -> str:
    """Returns the registry as a Markdown table (name, type, unit, doc), one row per fact."""
    lines = ["| name | type | unit | meaning |", "|---|---|---|---|"]
    for s in FACTS.values():
        lines.append(f"| `{s.name}` | {s.type} | {s.unit or '-'} | {s.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m revops.facts.registry > table.md
    print(markdown_table())
