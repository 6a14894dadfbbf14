"""Channel facts: pure functions from lightningd RPC data (+ stored history) to typed facts.

- registry: FactSpec and FACTS, every fact a policy may reference (the compiler type-checks
  against it).
- snapshot: the `revops-snapshot/1` file format (load, parse, serialise) with located errors.
- flow: ChannelFlow, per-channel forwarding aggregates over 1d/7d/30d windows.
- build: build_facts(rpc, now_s, flows) -> list[ChannelFacts].

Never imports pyln, sqlite3 or prometheus_client.
"""

from revops.facts.build import ChannelFacts, build_facts, current_fee_ppm
from revops.facts.flow import ChannelFlow, WindowFlow, flows_from_forwards
from revops.facts.registry import FACTS, NEVER_S, WINDOWS_S, FactSpec
from revops.facts.snapshot import FORMAT, Snapshot, load_snapshot, parse_snapshot, snapshot_to_json

__all__ = [
    "FACTS", "FORMAT", "NEVER_S", "WINDOWS_S", "ChannelFacts", "ChannelFlow", "FactSpec",
    "Snapshot", "WindowFlow", "build_facts", "current_fee_ppm", "flows_from_forwards", "load_snapshot",
    "parse_snapshot", "snapshot_to_json",
]
