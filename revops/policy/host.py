"""The params Python reads: one declared contract between the code and a policy (issue 15).

Most params are read only by the policy's own rules. A few are read by code that a rule
cannot express: the rebalancer's budget and job limits, the price learner's knobs, the
wallet reserve, the node's gossip budget. Each such group is a *host feature*, listed here
once with every param it reads, the type it needs and what it means when the policy says
nothing.

A policy names the features it uses in `policy.yaml`:

    requires: [rebalancer, price_learner, wallet_reserve, gossip_budget]

and must then declare every param of those features with a type the code can read; a
missing or mistyped one is a located error at check and reload time, never a silent default.
A feature the policy does not require runs on the defaults below (the rebalancer does not run
at all). A policy without a `requires:` key is read as before this contract existed (each
param by name, the defaults below when absent), with a lint warning naming what to declare.

Every reader goes through `HostSettings` (one typed value per prepared policy, runtime
overrides included), never through the params dict by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from revops.facts.price import PriceSettings


@dataclass(frozen=True)
class HostParam:
    name: str
    type: str  # "int", "number" (an int param is fine) or "bool"
    default: Any  # the value the code uses when the policy does not require the feature


_PRICE = PriceSettings()

#: feature -> the params its code reads. docs/policy.md "Host features" documents each.
FEATURES: Mapping[str, tuple[HostParam, ...]] = MappingProxyType({
    "rebalancer": (
        HostParam("rebalance_enabled", "bool", True),
        HostParam("rebalance_budget_sat", "int", 0),
        HostParam("rebalance_budget_revenue_share", "number", 0.0),
        HostParam("rebalance_max_jobs", "int", 1),
        HostParam("rebalance_chunk_sat", "int", 100_000),
        HostParam("rebalance_min_amount_sat", "int", 50_000),
        HostParam("rebalance_max_candidates", "int", 5),
        HostParam("rebalance_job_max_age_h", "number", 6.0),
        HostParam("rebalance_stall_h", "number", 1.0),
        HostParam("rebalance_backoff_base_h", "number", 1.0),
        HostParam("rebalance_backoff_max_h", "number", 48.0),
        HostParam("rebalance_standing_jobs", "bool", False),
        HostParam("rebalance_outppm_fence", "bool", False),
    ),
    "price_learner": (
        HostParam("min_fee_ppm", "number", _PRICE.floor_ppm),
        HostParam("max_fee_ppm", "number", _PRICE.ceiling_ppm),
        HostParam("base_fee_ppm", "number", _PRICE.prior_ppm),
        HostParam("hc_adopt_min_ppm", "number", _PRICE.adopt_min_ppm),
        HostParam("price_min_samples", "number", _PRICE.min_samples),
        HostParam("price_half_life_days", "number", _PRICE.half_life_s / 86400),
        HostParam("price_explore_step", "number", _PRICE.explore_step),
        HostParam("price_estimate_quantile", "number", _PRICE.estimate_quantile),
        HostParam("price_shift_ratio", "number", _PRICE.shift_ratio),
        HostParam("price_dust_sat", "number", _PRICE.dust_sat),
    ),
    "wallet_reserve": (HostParam("wallet_reserve_sat", "int", 0),),
    "gossip_budget": (HostParam("gossip_max_updates_node_day", "int", None),),
})
_BY_NAME = {p.name: p for ps in FEATURES.values() for p in ps}
_ACCEPTS = {"int": ("int",), "number": ("int", "number"), "bool": ("bool",)}


def requires_problem(feature: str, params: Mapping[str, Any]) -> str | None:
    """Why the params (name -> ParamSpec) do not serve a required feature (it is unknown, or
    one of its params is missing), or None."""
    if feature not in FEATURES:
        return f"unknown host feature {feature!r} (known: {', '.join(FEATURES)})"
    missing = [p.name for p in FEATURES[feature] if p.name not in params]
    if missing:
        return (f"requires {feature}, whose code reads {', '.join(missing)}: "
                f"declare {'it' if len(missing) == 1 else 'them'} under params")
    return None


def type_problem(name: str, declared_type: str) -> str | None:
    """Why a param declared with this type cannot serve the code that reads it, or None."""
    host = _BY_NAME.get(name)
    if host is None or declared_type in _ACCEPTS[host.type]:
        return None
    return f"param {name} is read by revops' code as {host.type}; declared as {declared_type}"


def inferred_features(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The features a policy without `requires:` uses, as before the contract: the
    rebalancer when it declares a budget, the rest always (on their defaults)."""
    return tuple(f for f in FEATURES if f != "rebalancer" or "rebalance_budget_sat" in params)


@dataclass(frozen=True)
class HostSettings:
    """What the code reads of one prepared policy: its host features and their params."""

    features: frozenset[str]
    values: Mapping[str, Any]  # every host param: the policy's value, else the default

    @staticmethod
    def of(requires: tuple[str, ...] | None, params: Mapping[str, Any]) -> "HostSettings":
        """From a policy's `requires:` (None: not declared) and its params' values."""
        features = frozenset(requires if requires is not None else inferred_features(params))
        values = {}
        for feature, ps in FEATURES.items():
            for p in ps:
                use = feature in features and p.name in params
                values[p.name] = params[p.name] if use else p.default
        return HostSettings(features, MappingProxyType(values))

    @property
    def rebalancer(self) -> bool:
        return "rebalancer" in self.features

    @property
    def wallet_reserve_sat(self) -> int:
        return int(self.values["wallet_reserve_sat"] or 0)

    @property
    def gossip_node_budget(self) -> int | None:
        """The node's broadcasts per 24 h, None when the policy sets none."""
        v = self.values["gossip_max_updates_node_day"]
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def price(self) -> PriceSettings:
        """The price learner's settings (floor and ceiling kept sane: 1 <= floor <= ceiling)."""
        v = self.values
        floor, ceiling = float(v["min_fee_ppm"]), float(v["max_fee_ppm"])
        return PriceSettings(
            floor_ppm=max(1.0, min(floor, ceiling)), ceiling_ppm=max(1.0, ceiling),
            prior_ppm=float(v["base_fee_ppm"]), adopt_min_ppm=float(v["hc_adopt_min_ppm"]),
            min_samples=float(v["price_min_samples"]),
            half_life_s=max(3600.0, float(v["price_half_life_days"]) * 86400),
            explore_step=float(v["price_explore_step"]),
            estimate_quantile=min(1.0, max(0.0, float(v["price_estimate_quantile"]))),
            shift_ratio=float(v["price_shift_ratio"]),
            dust_sat=max(0.0, float(v["price_dust_sat"])))
