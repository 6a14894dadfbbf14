"""The Prometheus exporter through the plugin on the simulator: parsed with prometheus-client's
own parser, real-time forward and peer counters, reload metrics, per-channel and decision
series, the textfile writer, and a bad listen address."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from revops.sim.rpc import SimRpc
from tests.plugin.conftest import Node


def scrape(address: str) -> dict[str, list]:
    """Returns metric family name -> samples, parsed by prometheus-client's text parser."""
    body = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(body)}


def value(families: dict, sample_name: str, **labels) -> float:
    """Returns the sum of the samples called sample_name whose labels include `labels`."""
    return sum(s.value for samples in families.values() for s in samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_through_the_plugin(workdir):
    n = Node(workdir, scenario="hub", options={"revenue-ops-metrics-listen": "127.0.0.1:0",
                                                "revenue-ops-metrics-textfile": str(workdir / "revops.prom")})
    n.start()
    try:
        at = n.call("revenue-status")["metrics"]
        first = scrape(at)
        assert value(first, "revops_policy_last_reload_successful") == 1
        assert value(first, "revops_policy_last_reload_success_timestamp_seconds") > 0
        # no rebalancer report yet: no budget series that could look exhausted
        assert "revops_rebalance_budget_left_msat" not in first and "revops_wallet_reserve_ok" not in first
        assert value(first, "revops_routing_fees_msat_total") == 0

        # forwards and peer flaps count the moment their notifications arrive, with no cycle
        n.advance(4 * 3600)
        settled = SimRpc(n.sim)("listforwards", {"status": "settled"})["forwards"]
        n.call("revenue-status")  # notifications before this call are handled before it
        live = scrape(at)
        assert value(live, "revops_forward_events_total", status="settled") == len(settled) > 0
        assert value(live, "revops_routing_fees_msat_total") == sum(f["fee_msat"] for f in settled) > 0
        assert value(live, "revops_routed_msat_total") == sum(f["out_msat"] for f in settled)
        assert "revops_channel_fee_ppm" not in live or not live["revops_channel_fee_ppm"]
        peer = next(iter(n.sim.peers))
        n.ld.notify("disconnect", {"id": peer})
        n.ld.notify("connect", {"id": peer, "direction": "out",
                                "address": {"type": "ipv4", "address": "198.51.100.1", "port": 9735}})
        n.ld.notify("disconnect", {"id": peer})
        n.call("revenue-status")
        flaps = scrape(at)
        assert value(flaps, "revops_peer_connection_events_total", event="disconnect") == 2
        assert value(flaps, "revops_peer_connection_events_total", event="connect") == 1

        # a fee cycle: per-channel gauges, decisions by rule/stage/outcome, gossip budget
        summary = n.cycle("all")["fees"]
        after = scrape(at)
        scids = {c.scid for c in n.sim.channels if c.scid}
        fee_series = {s.labels["scid"]: s.value for s in after["revops_channel_fee_ppm"]}
        assert set(fee_series) == scids
        ratio = {s.labels["scid"]: s.value for s in after["revops_channel_local_balance_ratio"]}
        assert all(0 <= v <= 1 for v in ratio.values()) and len(ratio) == len(scids)
        assert "revops_channel_htlc_slot_utilization_ratio" in after
        assert "revops_channel_htlc_value_utilization_ratio" in after
        assert value(after, "revops_channel_htlcs_in_flight_dust") == 0   # hub has no dust flood
        assert value(after, "revops_decisions_total") == summary["channels"]
        assert value(after, "revops_fee_broadcasts_total") == summary["set_fee"]
        rules = {s.labels["rule"] for s in after["revops_decisions"] if s.name == "revops_decisions_total"}
        assert rules - {""}, "decisions carry the rule that decided them"
        assert value(after, "revops_gossip_updates_24h") >= summary["set_fee"] > 0
        assert value(after, "revops_gossip_node_budget_remaining") == 5000 - value(after, "revops_gossip_updates_24h")
        assert not any(s.name.endswith("_created") for samples in after.values() for s in samples)
        assert value(after, "revops_rebalance_enabled") == 1
        assert value(after, "revops_fee_cycle_last_timestamp_seconds") == summary["at"]
        # the textfile holds the same exposition, parseable
        text = (workdir / "revops.prom").read_text()
        assert {f.name for f in text_string_to_metric_families(text)} >= {"revops_decisions", "revops_channel_fee_ppm"}

        # a failed reload flips the gauge to 0 and keeps the old version
        version = n.call("revenue-status")["policy"]["version"]
        params = n.policy_dir / "params.yaml"
        params.write_text(params.read_text().replace("default: 2500", "default: -5"))
        try:
            n.call("revenue-reload")
        except Exception:
            pass
        failed = scrape(at)
        assert value(failed, "revops_policy_last_reload_successful") == 0
        assert value(failed, "revops_policy_info", version=version) == 1
        assert n.call("revenue-status")["policy"]["version"] == version
    finally:
        n.stop()


def test_a_bad_listen_address_logs_a_clear_error_and_the_plugin_runs_without_metrics(workdir):
    n = Node(workdir, options={"revenue-ops-metrics-listen": "localhost:99999"})
    ld = n.start()
    try:
        ld.wait_for_log(r"metrics exporter not started, running without it: "
                        r"revenue-ops-metrics-listen='localhost:99999': .*port 0-65535", timeout_s=5)
        status = n.call("revenue-status")
        assert status["metrics"] is None
        assert n.cycle("fees")["fees"]["ok"] is True
    finally:
        n.stop()


def test_an_unwritable_textfile_is_logged_and_the_cycle_goes_on(workdir):
    n = Node(workdir, options={"revenue-ops-metrics-textfile": str(workdir / "missing-dir" / "revops.prom")})
    ld = n.start()
    try:
        assert n.cycle("fees")["fees"]["ok"] is True
        ld.wait_for_log(r"metrics: write_textfile: FileNotFoundError", timeout_s=5)
        assert n.call("revenue-status")["last_cycle"]["ok"] is True
    finally:
        n.stop()


def test_the_rebalancers_summary_is_scraped(workdir):
    node = Node(workdir, scenario="sink-drain", options={"revenue-ops-metrics-listen": "127.0.0.1:0"})
    node.start()
    try:
        node.advance(6 * 3600)
        summary = node.cycle("all")["rebalance"]
        families = scrape(node.call("revenue-status")["metrics"])   # a collector error would be a 500
        assert value(families, "revops_rebalance_budget_left_msat") == summary["budget"]["left_msat"]
        assert value(families, "revops_rebalance_reservations") == len(summary["reservations"])
        assert value(families, "revops_wallet_reserve_ok") == (0 if summary["wallet_reserve"]["suspended"] else 1)
    finally:
        node.stop()


def test_a_dust_flood_shows_in_the_metrics(workdir):
    """htlc-flood: the gauge of dust HTLCs in flight is what revenue-explain's fact says, and
    nonzero on the channels the flooders fill."""
    n = Node(workdir, scenario="htlc-flood", seed=3, options={"revenue-ops-metrics-listen": "127.0.0.1:0"})
    n.start()
    try:
        at = n.call("revenue-status")["metrics"]
        n.advance(3600)
        n.cycle("fees")
        gauge = {s.labels["scid"]: s.value for s in scrape(at)["revops_channel_htlcs_in_flight_dust"]}
        facts = {c["scid"]: c["facts"]["channel.htlcs_in_flight_dust"] for c in n.call("revenue-explain")["channels"]}
        assert gauge == facts
        flooded = {n.sim.channels[i].scid for i in n.sim.market.flood_rate}
        assert all(gauge[s] > 0 for s in flooded), {s: gauge[s] for s in flooded}
    finally:
        n.stop()
