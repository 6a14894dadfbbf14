"""Prometheus metrics: a registry of our own, the HTTP exporter, an optional textfile, and
what every cycle, reload and notification reports. Names and meanings: docs/observability.md.

Reload metrics follow Prometheus' own config reload (`prometheus_config_last_reload_successful`
and its `..._success_timestamp_seconds`); they are set in one place, from the runtime's single
reload path. Per-channel and rebalancer series come from a collector that exports the last
cycle's snapshot as is, so a closed channel's series vanish with it instead of going stale,
and nothing about rebalancing is exported before the rebalancer has reported (a budget of 0
must not look exhausted on a node that does not rebalance).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter as Tally
from typing import Any, Iterable, Mapping

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics,
                               start_http_server, write_to_textfile)
from prometheus_client.core import GaugeMetricFamily

from revops.cycle import CycleObserver
from revops.facts.registry import FACTS

#: Decision outcomes (label `outcome` of revops_decisions_total).
OUTCOMES = ("applied", "dry_run", "unchanged", "hold", "suppressed", "vetoed", "error")
#: Channel facts exported per channel: (fact, metric suffix, help).
CHANNEL_GAUGES = (
    ("channel.fee_ppm", "fee_ppm", "Our proportional fee in ppm."),
    ("channel.local_ratio", "local_balance_ratio", "Our balance over capacity, 0..1."),
    ("channel.htlc_slot_util", "htlc_slot_utilization_ratio", "HTLCs in flight over the slot limit, 0..1."),
    ("channel.htlc_value_util", "htlc_value_utilization_ratio",
     "Value of HTLCs in flight over the channel's in-flight limit, 0..1."),
    ("channel.htlcs_in_flight_dust", "htlcs_in_flight_dust",
     "Pending HTLCs under the dust limit (local_trimmed): a jamming flood shows here."),
    ("channel.capacity_sat", "capacity_sat", "Channel capacity in sat."),
)
#: Rebalancer summary keys exported as gauges (see on_rebalance).
#: The channel class facts (`channel.*_class`), exported as revops_channel_class.
CLASS_FACTS = [name for name in FACTS if name.startswith("channel.") and name.endswith("_class")]

REBALANCE_GAUGES = (
    ("budget_used_msat", "revops_rebalance_budget_used_msat", "Rebalance budget used in the current day, msat."),
    ("budget_left_msat", "revops_rebalance_budget_left_msat", "Rebalance budget left in the current day, msat."),
    ("reservations", "revops_rebalance_reservations", "Liquidity reservations held by running rebalances."),
)


def parse_listen(listen: str) -> tuple[str, int]:
    """Returns (host, port) of a `host:port` (IPv6 as [::1]:port); raises ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"revenue-ops-metrics-listen must be host:port with a port 0-65535, got {listen!r}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"revenue-ops-metrics-listen: {host!r} is not an IP address or localhost") from None
    return host, int(port)


def _msat(v: Any) -> int:
    """Returns an msat amount given as an integer or (before v23.05) as "123msat"; 0 otherwise."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.endswith("msat") and v[:-4].isdigit():
        return int(v[:-4])
    return 0


def outcome(record: Mapping[str, Any], dry_run: bool) -> str:
    """Returns the OUTCOMES entry of one fee-cycle decision record."""
    if record.get("error"):
        return "error"
    action = record.get("action")
    if action == "set_fee":
        if record.get("applied"):
            return "applied"
        return "dry_run" if dry_run and record.get("broadcast") and record.get("fee_ppm") != record.get(
            "old_fee_ppm") else "unchanged"
    return action if action in OUTCOMES else "error"


class _Snapshot:
    """The collector behind per-channel, gossip and rebalancer gauges: the last values, as given."""

    def __init__(self):
        self.lock = threading.Lock()
        self.channels: list[tuple[str, str, Mapping[str, Any]]] = []  # (scid, peer_id, facts)
        self.node: dict[str, float] = {}
        self.rebalance: dict | None = None

    def describe(self):
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self.lock:
            channels, node, rebalance = self.channels, dict(self.node), self.rebalance
        for fact, suffix, doc in CHANNEL_GAUGES:
            g = GaugeMetricFamily(f"revops_channel_{suffix}", doc, labels=["scid", "peer_id"])
            for scid, peer_id, values in channels:
                v = values.get(fact)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    g.add_metric([scid, peer_id], float(v))
            yield g
        # Channel classes are string facts named channel.*_class (flow, profit); 1 per channel.
        g = GaugeMetricFamily("revops_channel_class", "The channel's class of each kind (always 1).",
                              labels=["scid", "kind", "class"])
        for scid, _, values in channels:
            for name, v in values.items():
                if name.startswith("channel.") and name.endswith("_class") and isinstance(v, str):
                    g.add_metric([scid, name[len("channel."):-len("_class")], v], 1.0)
        yield g
        for key, name, doc in (
                ("updates_24h", "revops_gossip_updates_24h", "Fee updates sent by the node in the last 24 h."),
                ("budget_remaining", "revops_gossip_node_budget_remaining",
                 "Routine fee updates the node may still send in the rolling 24 h (policy's node budget)."),
                ("fees_collected_msat", "revops_node_fees_collected_msat",
                 "Lifetime routing fees lightningd reports (getinfo fees_collected_msat).")):
            if key in node:
                yield GaugeMetricFamily(name, doc, value=node[key])
        if rebalance is None:
            return
        jobs = GaugeMetricFamily("revops_rebalance_jobs", "Sling jobs by state.", labels=["state"])
        by_state = rebalance.get("jobs") if isinstance(rebalance.get("jobs"), dict) else {}
        for state, n in sorted(by_state.items()):
            jobs.add_metric([str(state)], float(n))
        yield jobs
        for key, name, doc in REBALANCE_GAUGES:
            if isinstance(rebalance.get(key), (int, float)):
                yield GaugeMetricFamily(name, doc, value=float(rebalance[key]))
        if isinstance(rebalance.get("wallet_reserve_ok"), bool):
            yield GaugeMetricFamily("revops_wallet_reserve_ok",
                                    "Whether on-chain funds are above the wallet reserve (1) or not (0).",
                                    value=1.0 if rebalance["wallet_reserve_ok"] else 0.0)


class _EngineWorkerCollector:
    """revops_engine_worker_restarts_total: deaths (crash or hang) of the durable-rules worker
    process, read from revops.policy.rete at scrape time (issue #12)."""

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        from revops.policy.rete import worker_restarts
        yield CounterMetricFamily("revops_engine_worker_restarts", "Times the durable-rules worker process died "
                                  "(crash or hang) and was restarted; that batch's decisions were errors.",
                                  value=worker_restarts())


def rebalance_view(summary: dict) -> dict:
    """The rebalancer's cycle summary (revops/act/rebalance.py: jobs with by_state, budget,
    reservations as a list, wallet_reserve, ended jobs with their measured spend) in the
    documented shape on_rebalance reads; a summary already in that shape is kept."""
    if not isinstance(summary.get("budget"), dict):
        return summary
    jobs, budget = summary.get("jobs") or {}, summary["budget"]
    by_state = dict(jobs.get("by_state") or {})
    view = {"ok": summary.get("ok", True),
            "jobs": by_state if by_state or not jobs.get("running") else {"running": jobs["running"]},
            "spend_msat": sum(int(e.get("spent_msat") or 0) for e in summary.get("ended") or ()),
            "budget_used_msat": int(budget.get("spent_24h_msat", 0)) + int(budget.get("reserved_msat", 0)),
            "budget_left_msat": int(budget.get("left_msat", 0)),
            "reservations": len(summary.get("reservations") or ())}
    reserve = summary.get("wallet_reserve")
    if isinstance(reserve, dict) and "suspended" in reserve:
        view["wallet_reserve_ok"] = not reserve["suspended"]
    return view


class Metrics(CycleObserver):
    """The Prometheus exporter: listens to the runtime's cycles and the plugin's notifications."""

    def __init__(self):
        # No `*_created` series: they would double every per-channel counter for nothing we graph.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.policy = Info("revops_policy", "The active policy.", registry=r)
        self.reload_ok = Gauge("revops_policy_last_reload_successful",
                               "Whether the last policy reload succeeded (1) or failed (0).", registry=r)
        self.reload_success_ts = Gauge("revops_policy_last_reload_success_timestamp_seconds",
                                       "Unix time of the last successful policy reload.", registry=r)
        self.reload_seconds = Histogram("revops_policy_reload_duration_seconds",
                                        "Time to load, validate, compile and swap a policy.", registry=r,
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.decisions = Counter("revops_fee_decisions_total", "Fee decisions by outcome.",
                                 ["action"], registry=r)
        self.rule_decisions = Counter("revops_decisions_total",
                                      "Per-channel decisions by deciding rule, stage and outcome.",
                                      ["rule", "stage", "outcome"], registry=r)
        self.suppressed = Counter("revops_decisions_suppressed_total",
                                  "Fee changes decided but not broadcast, by the reason given.", ["reason"],
                                  registry=r)
        self.broadcasts = Counter("revops_fee_broadcasts_total", "Fee updates sent to lightningd (setchannel).",
                                  registry=r)
        self.cycle_seconds = Gauge("revops_fee_cycle_duration_seconds", "Wall time of the last fee cycle.",
                                   registry=r)
        self.cycle_ts = Gauge("revops_fee_cycle_last_timestamp_seconds",
                              "Unix time (node clock) of the last successful fee cycle.", registry=r)
        self.cycle_failures = Counter("revops_fee_cycle_failures_total", "Fee cycles that could not read the node.",
                                      registry=r)
        self.channels = Gauge("revops_channels", "Channels evaluated in the last fee cycle.", registry=r)
        self.forward_events = Counter("revops_forward_events_total", "forward_event notifications received.",
                                      ["status"], registry=r)
        self.fees_earned = Counter("revops_routing_fees_msat_total",
                                   "Routing fees earned by settled forwards since the plugin started, msat, "
                                   "by outgoing channel.", ["scid"], registry=r)
        self.forwarded = Counter("revops_routed_msat_total",
                                 "Amount forwarded out by settled forwards since the plugin started, msat.",
                                 registry=r)
        self.peer_events = Counter("revops_peer_connection_events_total", "Peer connect and disconnect "
                                   "notifications received.", ["event"], registry=r)
        self.rebalance_spend = Counter("revops_rebalance_spend_msat_total",
                                       "Fees paid for rebalancing, msat, as the rebalancer reports them.",
                                       registry=r)
        self.rebalance_enabled = Gauge("revops_rebalance_enabled",
                                       "Whether rebalancing can run (sling loaded) (1) or not (0).", registry=r)
        self._snapshot = _Snapshot()
        r.register(self._snapshot)
        r.register(_EngineWorkerCollector())
        self.server = None
        self.textfile: str | None = None

    # -- export ------------------------------------------------------------------------------

    def serve(self, listen: str) -> str | None:
        """Start the HTTP exporter on host:port (port 0 picks one); returns the bound address."""
        if not listen:
            return None
        host, port = parse_listen(listen)
        self.server, _ = start_http_server(port, addr=host, registry=self.registry)
        return f"{host}:{self.server.server_port}"

    def write_textfile(self) -> None:
        """Write the exposition for node_exporter's textfile collector (atomic rename), if configured."""
        if self.textfile:
            write_to_textfile(self.textfile, self.registry)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- what the runtime and the plugin report ---------------------------------------------

    # The runtime's observer interface (revops.cycle.CycleObserver).

    name = "metrics"

    def reload_done(self, result) -> None:
        self.run_steps((self.on_reload, result))

    def fee_cycle_done(self, result) -> None:
        """One fee cycle: its decisions and facts (when it could read the node), then its summary."""
        decisions = [(self.on_decisions, result.records, result.facts, result.gossip_budget, result.dry_run)]
        self.run_steps(*(decisions if result.records is not None else []), (self.on_cycle, result.summary),
                       (self.write_textfile,))

    def rebalance_done(self, summary: dict) -> None:
        self.run_steps((self.on_rebalance, summary), (self.write_textfile,))

    def on_reload(self, result) -> None:
        self.reload_ok.set(1 if result.ok else 0)
        self.reload_seconds.observe(result.duration_s)
        if result.ok:
            self.reload_success_ts.set(result.at)
            self.policy.info({"name": result.name or "", "version": result.version or "",
                              "digest": result.digest or ""})

    def on_cycle(self, summary: dict) -> None:
        if not summary.get("ok"):
            self.cycle_failures.inc()
            return
        for action in ("set_fee", "would_set", "hold", "suppressed", "vetoed", "error"):
            if summary.get(action):
                self.decisions.labels(action).inc(summary[action])
        self.channels.set(summary.get("channels", 0))
        self.cycle_seconds.set(summary.get("duration_ms", 0) / 1000)
        if summary.get("at") is not None:
            self.cycle_ts.set(summary["at"])

    def on_decisions(self, records: list[dict], facts: list, budget: int | None, dry_run: bool) -> None:
        """One fee cycle's decision records and channel facts (revops.facts.build.ChannelFacts)."""
        # Counted first, then one inc per label set: 5,000 labels() lookups cost more than the counting.
        decided: Tally = Tally()
        suppressed: Tally = Tally()
        sent = 0
        for rec in records:
            decided[(rec.get("rule") or "", rec.get("stage") or "", outcome(rec, dry_run))] += 1
            if rec.get("action") == "suppressed" or (rec.get("action") == "set_fee" and rec.get("suppressed_by")):
                suppressed[rec.get("suppressed_by") or "unknown"] += 1
            sent += bool(rec.get("applied"))
        for labels, n in decided.items():
            self.rule_decisions.labels(*labels).inc(n)
        for reason, n in suppressed.items():
            self.suppressed.labels(reason).inc(n)
        if sent:
            self.broadcasts.inc(sent)
        # Only the facts the exporter shows, looked up by name (a channel has ~170 facts).
        wanted = [fact for fact, _, _ in CHANNEL_GAUGES] + CLASS_FACTS
        channels = [(f.scid, f.peer_id, {k: f.values[k] for k in wanted if k in f.values}) for f in facts]
        node: dict[str, float] = {}
        if facts:
            first = facts[0].values
            # the facts were read before this cycle: add what it just sent
            node["updates_24h"] = float(first.get("node.fee_updates_24h", 0) + sent)
            node["fees_collected_msat"] = float(first.get("node.fees_collected_msat", 0))
            if budget is not None:
                node["budget_remaining"] = float(max(0, budget - node["updates_24h"]))
        with self._snapshot.lock:
            self._snapshot.channels, self._snapshot.node = channels, node

    def on_rebalance(self, summary: dict) -> None:
        """One rebalance cycle's summary, from the rebalancer:

        {"jobs": {state: count}, "spend_msat": fees paid since the last summary,
         "budget_used_msat": int, "budget_left_msat": int, "reservations": int,
         "wallet_reserve_ok": bool}. Missing keys export nothing; {"enabled": False} (or a
        summary with "ok": False) marks rebalancing off.
        """
        summary = rebalance_view(summary)
        enabled = summary.get("ok", True) and summary.get("enabled", True)
        self.rebalance_enabled.set(1 if enabled else 0)
        spend = summary.get("spend_msat")
        if isinstance(spend, (int, float)) and spend > 0:
            self.rebalance_spend.inc(spend)
        if any(k in summary for k in ("jobs", "budget_used_msat", "budget_left_msat", "reservations",
                                      "wallet_reserve_ok")):
            with self._snapshot.lock:
                self._snapshot.rebalance = dict(summary)

    def rebalance_summary(self) -> dict | None:
        """The rebalancer's last summary, None before its first."""
        with self._snapshot.lock:
            return None if self._snapshot.rebalance is None else dict(self._snapshot.rebalance)

    def on_forward_event(self, event: Mapping[str, Any]) -> None:
        """Count a forward_event as it arrives; settled ones add their fee and amount at once."""
        status = str(event.get("status"))
        self.forward_events.labels(status).inc()
        if status == "settled":
            fee, out = _msat(event.get("fee_msat")), _msat(event.get("out_msat"))
            if fee > 0:
                self.fees_earned.labels(str(event.get("out_channel") or "")).inc(fee)
            if out > 0:
                self.forwarded.inc(out)

    def on_connection(self, connected: bool) -> None:
        self.peer_events.labels("connect" if connected else "disconnect").inc()
