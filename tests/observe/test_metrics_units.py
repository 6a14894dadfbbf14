"""Metrics on hand-made inputs: the rebalancer's summary, decision outcomes, listen addresses."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from revops.facts.build import ChannelFacts
from revops.metrics import Metrics, outcome, parse_listen


def samples(m: Metrics) -> dict[tuple, float]:
    text = generate_latest(m.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_rebalance_summary_exports_jobs_budget_reservations_and_reserve():
    m = Metrics()
    before = samples(m)
    assert not any(name.startswith(("revops_rebalance_budget", "revops_wallet_reserve", "revops_rebalance_jobs"))
                   for name, _ in before)
    m.on_rebalance({"ok": True, "jobs": {"running": 3, "done": 2, "failed": 1}, "spend_msat": 12_345,
                    "budget_used_msat": 40_000, "budget_left_msat": 0, "reservations": 4,
                    "wallet_reserve_ok": False})
    m.on_rebalance({"ok": True, "spend_msat": 655})
    s = samples(m)
    assert s[("revops_rebalance_jobs", (("state", "running"),))] == 3
    assert s[("revops_rebalance_jobs", (("state", "failed"),))] == 1
    assert s[("revops_rebalance_spend_msat_total", ())] == 13_000
    assert s[("revops_rebalance_budget_used_msat", ())] == 40_000
    assert s[("revops_rebalance_budget_left_msat", ())] == 0
    assert s[("revops_rebalance_reservations", ())] == 4
    assert s[("revops_wallet_reserve_ok", ())] == 0
    assert s[("revops_rebalance_enabled", ())] == 1
    assert m.rebalance_summary()["budget_used_msat"] == 40_000
    m.on_rebalance({"ok": False, "skipped": "sling is not loaded"})
    assert samples(m)[("revops_rebalance_enabled", ())] == 0


def test_decisions_channels_and_classes():
    m = Metrics()
    records = [{"scid": "1x1x0", "action": "set_fee", "rule": "r1", "stage": "discovery", "applied": True,
                "broadcast": True, "fee_ppm": 10, "old_fee_ppm": 5},
               {"scid": "2x2x0", "action": "suppressed", "rule": "r2", "stage": "discovery",
                "suppressed_by": "too soon", "applied": False},
               {"scid": "3x3x0", "action": "hold", "rule": "r3", "stage": "safety", "applied": False}]
    facts = [ChannelFacts("1x1x0", "02aa", {"channel.fee_ppm": 10, "channel.local_ratio": 0.25,
                                           "channel.flow_class": "DRAINING", "channel.profit_class": "PROFITABLE",
                                           "node.fee_updates_24h": 7, "node.fees_collected_msat": 99})]
    m.on_decisions(records, facts, 10, False)
    s = samples(m)
    assert s[("revops_decisions_total", (("outcome", "applied"), ("rule", "r1"), ("stage", "discovery")))] == 1
    assert s[("revops_decisions_total", (("outcome", "suppressed"), ("rule", "r2"), ("stage", "discovery")))] == 1
    assert s[("revops_decisions_suppressed_total", (("reason", "too soon"),))] == 1
    assert s[("revops_fee_broadcasts_total", ())] == 1
    assert s[("revops_channel_fee_ppm", (("peer_id", "02aa"), ("scid", "1x1x0")))] == 10
    assert s[("revops_channel_class", (("class", "DRAINING"), ("kind", "flow"), ("scid", "1x1x0")))] == 1
    assert s[("revops_channel_class", (("class", "PROFITABLE"), ("kind", "profit"), ("scid", "1x1x0")))] == 1
    assert s[("revops_gossip_updates_24h", ())] == 7 + 1  # the facts' count plus this cycle's broadcast
    assert s[("revops_gossip_node_budget_remaining", ())] == 10 - 8
    # the next cycle replaces the channel series: a closed channel's series go away
    m.on_decisions([], [], None, False)
    assert not any(name == "revops_channel_fee_ppm" for name, _ in samples(m))


def test_outcomes():
    assert outcome({"action": "set_fee", "applied": False, "broadcast": True, "fee_ppm": 2, "old_fee_ppm": 1},
                   True) == "dry_run"
    assert outcome({"action": "set_fee", "applied": False, "fee_ppm": 2, "old_fee_ppm": 2}, False) == "unchanged"
    assert outcome({"action": "set_fee", "error": "setchannel failed"}, False) == "error"
    assert outcome({"action": "vetoed"}, False) == "vetoed"


@pytest.mark.parametrize("listen, why", [("9750", "host:port"), ("127.0.0.1:70000", "0-65535"),
                                         ("example.com:9750", "not an IP address"), (":9750", "host:port")])
def test_bad_listen_addresses(listen, why):
    with pytest.raises(ValueError, match=why):
        parse_listen(listen)
    assert parse_listen("[::1]:0") == ("::1", 0) and parse_listen("localhost:9") == ("localhost", 9)
