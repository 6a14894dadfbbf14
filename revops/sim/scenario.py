"""Scenario files: load by name or path, validate strictly, report errors at path:line:col.

A scenario is a YAML mapping (format documented in docs/simulator.md and in the comments of
every file in revops/sim/scenarios/). Validation walks PyYAML's composed node tree so each
problem points at the offending key or value: an unknown key, a wrong type or an
out-of-range number raises `DiagnosticError` with code `scenario_error` and 1-based
line:col. All problems in a file are reported together.

`load_scenario()` returns a frozen `Scenario`; `revops.sim.model_build.build_node()` turns it
into a running `Node`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from revops.diagnostics import Diagnostic, DiagnosticError

CODE = "scenario_error"
SCENARIO_DIR = Path(__file__).parent / "scenarios"
INF = math.inf


@dataclass(frozen=True)
class F:
    """Schema of one field: kind, bounds, default, nested schema for maps/lists."""

    kind: str                      # int, float, str, bool, enum, range_int, range_float,
    #                                map, list_map
    lo: float = -INF
    hi: float = INF
    default: Any = None
    required: bool = False
    choices: tuple = ()
    schema: Mapping[str, "F"] = field(default_factory=dict)
    max_len: int | None = None


GROUP = {
    "name": F("str"),
    "count": F("int", 1, 5000, required=True),
    "channels_per_peer": F("int", 1, 10, 1),
    "capacity_sat": F("range_int", 20_000, 1_000_000_000, (1_000_000, 10_000_000)),
    "local_ratio": F("range_float", 0, 1, (0.3, 0.7)),
    "opener": F("enum", default="local", choices=("local", "remote")),
    "private": F("bool", default=False),
    "fee_ppm": F("range_int", 0, 100_000, (100, 500)),
    "fee_base_msat": F("range_int", 0, 2**32 - 1, 1000),
    "ref_fee_ppm": F("range_int", 1, 100_000, (100, 800)),
    "peer_fee_ppm": F("range_int", 0, 100_000, (1, 500)),
    "demand_out": F("range_float", 0, 1000, (0.5, 2.0)),
    "demand_in": F("range_float", 0, 1000, (0.5, 2.0)),
    "hold_median_s": F("range_float", 0.01, 86400, (0.8, 3.0)),
    "hold_sigma": F("range_float", 0, 5, 0.6),
    "success_rate": F("range_float", 0, 1, (0.75, 0.95)),
    "mean_up_h": F("float", 0, 1e6, 0.0),
    "mean_down_h": F("float", 0.001, 1e6, 0.5),
    "max_accepted_htlcs": F("int", 1, 483, 483),
    "dead": F("bool", default=False),
    "close_after_days": F("range_float", 0, 10_000),
    "flood_per_hour": F("float", 0, 1e6, 0.0),
    "flood_hold_s": F("float", 0.1, 86400, 600.0),
}

# random opens use a group without a count
NEW_GROUP = {k: v for k, v in GROUP.items() if k not in ("count", "channels_per_peer")}

SCHEMA: dict[str, F] = {
    "name": F("str", required=True),
    "description": F("str", default=""),
    "seed": F("int", 0, 2**63 - 1, 1),
    "days": F("float", 0, 3650, 30.0),
    "start_time": F("int", 1_230_768_000, 4_102_444_800, 1_767_225_600),
    "from_snapshot": F("str"),
    "node": F("map", schema={
        "alias": F("str", default="SIMNODE", max_len=32),
        "color": F("str", default="3399ff"),
        "network": F("enum", default="bitcoin",
                     choices=("bitcoin", "testnet", "testnet4", "signet", "regtest")),
        "version": F("str", default="v25.12"),
        "blockheight": F("int", 1, 10_000_000, 930_000),
        "fee_base_msat": F("int", 0, 2**32 - 1, 1000),
        "fee_ppm": F("int", 0, 2**32 - 1, 10),
        "cltv_delta": F("int", 1, 2016, 34),
        "max_concurrent_htlcs": F("int", 1, 483, 30),
        "htlc_minimum_msat": F("int", 0, 2**63 - 1, 0),
    }),
    "plugins": F("map", schema={"sling": F("bool", default=True),
                                "bookkeeper": F("bool", default=True)}),
    "wallet_sat": F("int", 0, 21_000_000 * 10**8, 5_000_000),
    "traffic": F("map", schema={
        "payments_per_hour": F("float", 0, 1e6, 120.0),
        "amount_median_sat": F("int", 1, 10**9, 40_000),
        "amount_sigma": F("float", 0, 5, 1.5),
        "max_amount_sat": F("int", 1, 10**10, 20_000_000),
        "diurnal_amplitude": F("float", 0, 1, 0.3),
        "elasticity_scale_ppm": F("float", 1, 1e6, 150.0),
        "gossip_delay_s": F("float", 0, 86400, 600.0),
        "stale_gossip_fraction": F("float", 0, 1, 0.5),
        "gossip_updates_per_day": F("float", 1, 1e6, 4.0),
        "unknown_channel_fraction": F("float", 0, 1, 0.003),
        "large_payment_sat": F("int", 1, 10**10, 3_000_000),
        "step_s": F("float", 1, 3600, 60.0),
        "failure_penalty": F("float", 0, 0.9, 0.1),
        "failure_memory_h": F("float", 0.01, 1000, 3.0),
    }),
    "mempool": F("map", schema={
        "base_perkw": F("int", 253, 10_000_000, 2500),
        "volatility": F("float", 0, 2, 0.05),
        "shock_rate_per_week": F("float", 0, 1000, 0.0),
        "shock_multiplier": F("float", 1, 1000, 5.0),
        "shock_duration_h": F("float", 0.01, 10_000, 6.0),
        "shocks": F("list_map", schema={
            "at_day": F("float", 0, 3650, required=True),
            "multiplier": F("float", 1, 1000, required=True),
            "duration_h": F("float", 0.01, 10_000, required=True),
        }),
    }),
    "rebalance_market": F("map", schema={
        "base_ppm": F("float", 0, 1e6, 400.0),
        "noise_sigma": F("float", 0, 5, 0.5),
        "stress_weight": F("float", 0, 100, 0.3),
        "route_failure_rate": F("float", 0, 1, 0.35),
        "tick_s": F("float", 1, 86400, 60.0),
        "attempts_per_tick": F("int", 1, 100, 2),
        "noise_memory_h": F("float", 0, 1000, 12.0),
        "depth_weight": F("float", 0, 100, 1.0),
    }),
    "shifts": F("map", schema={
        "tick_h": F("float", 0.05, 168, 1.0),
        "ref_drift_sigma_per_day": F("float", 0, 5, 0.0),
        "ref_revert_days": F("float", 0.01, 3650, 10.0),
        "ref_jumps_per_week": F("float", 0, 100, 0.0),
        "ref_jump_factor": F("float", 1, 100, 2.0),
        "demand_regimes_per_week": F("float", 0, 100, 0.0),
        "daily_amplitude": F("float", 0, 1, 0.0),
        "weekly_amplitude": F("float", 0, 1, 0.0),
    }),
    "lifecycle": F("map", schema={
        "opens_per_week": F("float", 0, 1e4, 0.0),
        "closes_per_week": F("float", 0, 1e4, 0.0),
        "force_close_fraction": F("float", 0, 1, 0.3),
        "balance_snapshot_every_blocks": F("int", 0, 10_000, 1),
    }),
    "new_channels": F("map", schema=NEW_GROUP),
    "channel_groups": F("list_map", schema=GROUP),
}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: every section with defaults filled in (read-only mappings)."""

    name: str
    path: str
    data: Mapping[str, Any]
    marks: Mapping[str, tuple[int, int]] = field(default_factory=dict)   # top key -> line, col

    def section(self, key: str) -> Mapping[str, Any]:
        """Return a map section (defaults applied)."""
        return self.data[key]

    @property
    def seed(self) -> int:
        return self.data["seed"]


def scenario_names() -> list[str]:
    """Return the names of the bundled scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """Return the file for a bundled scenario name or a path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario; raise DiagnosticError (scenario_error) on any problem."""
    path = resolve(name_or_path)
    fname = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DiagnosticError.single(fname, 1, 1, CODE, f"cannot read scenario: {e.strerror}")
    return parse_scenario(text, fname)


def parse_scenario(text: str, fname: str = "<scenario>") -> Scenario:
    """Validate scenario YAML `text` (reported as `fname`) and return the Scenario."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DiagnosticError.single(fname, line, col, CODE,
                                     f"YAML syntax: {getattr(e, 'problem', e)}")
    if root is None:
        raise DiagnosticError.single(fname, 1, 1, CODE, "empty scenario file")
    v = _Validator(fname)
    data = v.mapping(root, SCHEMA, "scenario")
    if v.diags:
        raise DiagnosticError(v.diags)
    return Scenario(name=data["name"], path=fname, data=data,
                    marks=MappingProxyType(v.top_marks))


class _Validator:
    def __init__(self, fname: str):
        self.fname = fname
        self.diags: list[Diagnostic] = []
        self.top_marks: dict[str, tuple[int, int]] = {}
        self._loader = yaml.SafeLoader("")

    def err(self, node: yaml.Node, msg: str) -> None:
        m = node.start_mark
        self.diags.append(Diagnostic(self.fname, m.line + 1, m.column + 1, CODE, msg))

    def value(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, schema: Mapping[str, F], where: str) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{where} must be a mapping")
            return MappingProxyType(out)
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = self.value(knode) if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in schema:
                allowed = ", ".join(sorted(schema))
                self.err(knode, f"unknown key {key!r} in {where} (allowed: {allowed})")
                continue
            if key in seen:
                self.err(knode, f"duplicate key {key!r} in {where}")
                continue
            seen.add(key)
            if where == "scenario":
                self.top_marks[key] = (vnode.start_mark.line + 1, vnode.start_mark.column + 1)
            out[key] = self.field(vnode, schema[key], f"{where}.{key}")
        for key, f in schema.items():
            if key in out:
                continue
            if f.required:
                self.err(node, f"missing required key {key!r} in {where}")
            elif f.kind == "map":
                out[key] = self.mapping(yaml.MappingNode("tag:yaml.org,2002:map", [],
                                                         node.start_mark, node.end_mark),
                                        f.schema, f"{where}.{key}")
            elif f.kind == "list_map":
                out[key] = ()
            else:
                out[key] = f.default
        return MappingProxyType(out)

    def field(self, node: yaml.Node, f: F, where: str) -> Any:
        if f.kind == "map":
            return self.mapping(node, f.schema, where)
        if f.kind == "list_map":
            if not isinstance(node, yaml.SequenceNode):
                self.err(node, f"{where} must be a list of mappings")
                return ()
            return tuple(self.mapping(item, f.schema, f"{where}[{i}]")
                         for i, item in enumerate(node.value))
        if f.kind in ("range_int", "range_float"):
            elem = "int" if f.kind == "range_int" else "float"
            if isinstance(node, yaml.SequenceNode):
                if len(node.value) != 2:
                    self.err(node, f"{where} must be a number or a [low, high] pair")
                    return f.default
                lo = self.scalar(node.value[0], elem, f, where)
                hi = self.scalar(node.value[1], elem, f, where)
                if lo is not None and hi is not None and lo > hi:
                    self.err(node, f"{where}: low {lo} is greater than high {hi}")
                return (lo, hi)
            return self.scalar(node, elem, f, where)
        return self.scalar(node, f.kind, f, where)

    def scalar(self, node: yaml.Node, kind: str, f: F, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.err(node, f"{where} must be a {kind}, not a {_node_kind(node)}")
            return f.default
        v = self.value(node)
        if kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                self.err(node, f"{where} must be an integer, got {_type_name(v)}")
                return f.default
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.err(node, f"{where} must be a number, got {_type_name(v)}")
                return f.default
            v = float(v)
        elif kind == "bool":
            if not isinstance(v, bool):
                self.err(node, f"{where} must be true or false, got {_type_name(v)}")
                return f.default
            return v
        elif kind in ("str", "enum"):
            if not isinstance(v, str):
                self.err(node, f"{where} must be a string, got {_type_name(v)}")
                return f.default
            if kind == "enum" and v not in f.choices:
                self.err(node, f"{where} must be one of {', '.join(f.choices)}, got {v!r}")
                return f.default
            if f.max_len is not None and len(v) > f.max_len:
                self.err(node, f"{where} must be at most {f.max_len} characters")
            return v
        if v < f.lo or v > f.hi:
            self.err(node, f"{where} must be between {_num(f.lo)} and {_num(f.hi)}, got {v}")
            return f.default
        return v


def _num(x: float) -> str:
    if math.isinf(x):
        return "infinity" if x > 0 else "-infinity"
    return str(int(x)) if x == int(x) else str(x)


def _node_kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(node), "scalar")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(v), type(v).__name__)
