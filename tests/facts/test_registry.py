"""The fact registry is well formed and fully documented."""

from __future__ import annotations

import re
from pathlib import Path

from revops.facts.registry import FACTS, TYPES, FactSpec, markdown_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "facts.md"
NAMESPACES = ("channel.", "peer.", "node.", "market.")
UNIT_SUFFIX = {"_msat": "msat", "_sat": "sat", "_ppm": "ppm", "_s": "s", "_perkw": "perkw"}


def test_specs_are_well_formed():
    assert len(FACTS) > 100
    for name, spec in FACTS.items():
        assert isinstance(spec, FactSpec) and spec.name == name
        assert name.startswith(NAMESPACES), name
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_]+", name), name
        assert spec.type in TYPES
        assert spec.doc and "\n" not in spec.doc
        if spec.type != "number":
            assert spec.unit == "", name


def test_units_match_name_suffixes():
    for name, spec in FACTS.items():
        for suffix, unit in UNIT_SUFFIX.items():
            if name.endswith(suffix):
                assert spec.unit == unit, name


def test_registry_is_read_only():
    try:
        FACTS["channel.x"] = FACTS["channel.scid"]  # type: ignore[index]
    except TypeError:
        return
    raise AssertionError("FACTS must be read-only")


def test_required_facts_of_the_brief_exist():
    for name in ("channel.scid", "channel.state", "channel.active", "channel.private",
                 "channel.opener_local", "channel.capacity_sat", "channel.local_msat",
                 "channel.remote_msat", "channel.local_ratio", "channel.spendable_msat",
                 "channel.receivable_msat", "channel.age_blocks", "channel.age_days",
                 "channel.fee_ppm", "channel.fee_base_msat", "channel.peer_fee_ppm",
                 "channel.peer_fee_base_msat", "channel.peer_fee_known",
                 "channel.max_accepted_htlcs", "channel.htlcs_in_flight", "channel.htlc_slot_util",
                 "channel.htlc_value_util", "channel.htlc_util", "channel.out_fwds_7d",
                 "channel.in_fwds_1d", "channel.out_volume_30d_msat", "channel.fees_earned_7d_msat",
                 "channel.out_failed_liquidity_7d", "channel.last_out_fwd_age_s",
                 "channel.last_in_fwd_age_s", "channel.flow_ratio_7d",
                 "channel.revenue_rate_7d_msat_per_h", "peer.id", "peer.connected",
                 "peer.num_channels", "peer.local_ratio", "node.id", "node.blockheight",
                 "node.num_channels", "node.total_local_msat", "node.total_capacity_sat",
                 "node.onchain_confirmed_sat", "node.onchain_unconfirmed_sat",
                 "node.channel_spendable_msat", "market.opening_feerate_perkw",
                 "market.mutual_close_feerate_perkw", "market.min_acceptable_perkw",
                 "market.open_cost_sat", "market.close_cost_sat", "market.replacement_cost_sat"):
        assert name in FACTS, name


def test_docs_list_every_fact():
    text = DOCS.read_text()
    missing = [n for n in FACTS if f"`{n}`" not in text]
    assert missing == []


def test_markdown_table_has_a_row_per_fact():
    rows = markdown_table().splitlines()
    assert len(rows) == len(FACTS) + 2
