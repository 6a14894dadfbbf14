"""Writes revops-dashboard.json (run from anywhere: python contrib/grafana/make_dashboard.py).

Edit the panels here rather than the JSON, so every panel keeps the same shape; the tests run
every expression of the JSON against a real Prometheus.
"""
import json
from pathlib import Path
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
panels = []
y = 0
def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                   "id": len(panels) + 1, "panels": []})
    y += 1
def panel(title, targets, kind="timeseries", unit="short", w=12, h=8, x=0, desc=""):
    global y
    p = {"id": len(panels) + 1, "type": kind, "title": title, "description": desc, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": x, "y": y},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {},
         "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l}
                     for i, (e, l) in enumerate(targets)]}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    panels.append(p)
    if x + w >= 24:
        y += h

row("Revenue")
panel("Routing fees earned (sat/h)", [("sum(rate(revops_routing_fees_msat_total{instance=~\"$instance\"}[$__rate_interval])) * 3600 / 1000", "fees sat/h")], x=0,
      desc="Settled forwards' fees, counted the moment forward_event arrives.")
panel("Top earning channels (sat, dashboard range)", [("topk(10, sum by (scid) (increase(revops_routing_fees_msat_total{instance=~\"$instance\"}[$__range]))) / 1000", "{{scid}}")], kind="bargauge", x=12)
panel("Revenue and spend (sat/h)", [
    ("sum(rate(revops_routing_fees_msat_total{instance=~\"$instance\"}[$__rate_interval])) * 3600 / 1000", "routing fees"),
    ("sum(rate(revops_rebalance_spend_msat_total{instance=~\"$instance\"}[$__rate_interval])) * 3600 / 1000", "rebalance spend")], x=0)
panel("Forwards by status (per min)", [("sum by (status) (rate(revops_forward_events_total{instance=~\"$instance\"}[$__rate_interval])) * 60", "{{status}}")], x=12)
row("Decisions")
panel("Decisions by rule and outcome", [("sum by (rule, outcome) (increase(revops_decisions_total{instance=~\"$instance\"}[$__rate_interval]))", "{{rule}} {{outcome}}")], x=0,
      desc="Every fee-cycle decision, by the rule that decided it, its stage and what happened.")
panel("Suppressed fee changes by reason", [("sum by (reason) (increase(revops_decisions_suppressed_total{instance=~\"$instance\"}[$__rate_interval]))", "{{reason}}")], x=12)
panel("Decisions by stage", [("sum by (stage) (increase(revops_decisions_total{instance=~\"$instance\"}[$__range]))", "{{stage}}")], kind="piechart", x=0)
panel("Fee broadcasts and gossip budget", [
    ("increase(revops_fee_broadcasts_total{instance=~\"$instance\"}[$__rate_interval])", "broadcasts"),
    ("revops_gossip_node_budget_remaining{instance=~\"$instance\"}", "node budget left (24 h)"),
    ("revops_gossip_updates_24h{instance=~\"$instance\"}", "updates in 24 h")], x=12)
row("Channels")
panel("Fee per channel (ppm)", [("revops_channel_fee_ppm{instance=~\"$instance\", scid=~\"$scid\"}", "{{scid}}")], x=0)
panel("Local balance ratio", [("revops_channel_local_balance_ratio{instance=~\"$instance\", scid=~\"$scid\"}", "{{scid}}")], unit="percentunit", x=12)
panel("HTLC slot utilisation (top 10)", [("topk(10, revops_channel_htlc_slot_utilization_ratio{instance=~\"$instance\"})", "{{scid}}")], unit="percentunit", x=0)
panel("HTLC value utilisation (top 10)", [("topk(10, revops_channel_htlc_value_utilization_ratio{instance=~\"$instance\"})", "{{scid}}")], unit="percentunit", x=12)
panel("Channels by class", [("count by (kind, class) (revops_channel_class{instance=~\"$instance\"})", "{{kind}} {{class}}")], kind="bargauge", x=0)
panel("Peer connects and disconnects (per h)", [("sum by (event) (rate(revops_peer_connection_events_total{instance=~\"$instance\"}[$__rate_interval])) * 3600", "{{event}}")], x=12)
row("Rebalancing")
panel("Rebalance budget (sat)", [
    ("revops_rebalance_budget_used_msat{instance=~\"$instance\"} / 1000", "used today"),
    ("revops_rebalance_budget_left_msat{instance=~\"$instance\"} / 1000", "left today")], x=0)
panel("Sling jobs by state", [("sum by (state) (revops_rebalance_jobs{instance=~\"$instance\"})", "{{state}}")], x=12)
panel("Rebalance spend (sat, dashboard range)", [("increase(revops_rebalance_spend_msat_total{instance=~\"$instance\"}[$__range]) / 1000", "spend")], kind="stat", w=6, x=0)
panel("Reservations", [("revops_rebalance_reservations{instance=~\"$instance\"}", "reservations")], kind="stat", w=6, x=6)
panel("Wallet reserve OK", [("revops_wallet_reserve_ok{instance=~\"$instance\"}", "reserve ok")], kind="stat", w=6, x=12)
panel("Rebalancing enabled", [("revops_rebalance_enabled{instance=~\"$instance\"}", "enabled")], kind="stat", w=6, x=18)
row("Wallet reserve")
panel("Wallet reserve: suspended operations", [("max by (operation, reason) (revops_wallet_reserve_suspended{instance=~\"$instance\"})", "{{operation}} {{reason}}")], kind="stat", x=0,
      desc="1 while an operation that spends capital (rebalancing, LDS payouts) is suspended because the wallet (confirmed on-chain + spendable in channels) is below wallet_reserve_sat. Fees keep running.")
panel("Wallet funds and reserve (sat)", [
    ("revops_wallet_funds_sat{instance=~\"$instance\"}", "funds"),
    ("revops_wallet_reserve_sat{instance=~\"$instance\"}", "reserve")], x=12)
row("Policy and plugin")
panel("Plugin up", [("up{job=\"revops\", instance=~\"$instance\"}", "up")], kind="stat", w=6, x=0)
panel("Last reload successful", [("revops_policy_last_reload_successful{instance=~\"$instance\"}", "ok")], kind="stat", w=6, x=6)
panel("Since last successful reload", [("time() - revops_policy_last_reload_success_timestamp_seconds{instance=~\"$instance\"}", "age")], kind="stat", unit="s", w=6, x=12)
panel("Active policy", [("revops_policy_info{instance=~\"$instance\"}", "{{name}} {{version}} {{digest}}")], kind="table", w=6, x=18)
panel("Fee cycle duration", [("revops_fee_cycle_duration_seconds{instance=~\"$instance\"}", "duration")], unit="s", x=0)
panel("Channels evaluated", [("revops_channels{instance=~\"$instance\"}", "channels")], x=12)

dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                  "pluginName": "Prometheus"}],
    "title": "revops: routing node revenue operations", "uid": "revops-overview", "tags": ["lightning", "revops"],
    "timezone": "utc", "schemaVersion": 39, "version": 1, "refresh": "1m", "editable": True,
    "time": {"from": "now-7d", "to": "now"},
    "templating": {"list": [
        {"name": "instance", "type": "query", "datasource": DS, "query": "label_values(revops_policy_info, instance)",
         "definition": "label_values(revops_policy_info, instance)", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": "$__all"}, "allValue": ".*", "refresh": 2},
        {"name": "scid", "type": "query", "datasource": DS, "query": "label_values(revops_channel_fee_ppm, scid)",
         "definition": "label_values(revops_channel_fee_ppm, scid)", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": "$__all"}, "allValue": ".*", "refresh": 2}]},
    "annotations": {"list": []},
    "panels": panels,
}
(Path(__file__).parent / "revops-dashboard.json").write_text(json.dumps(dash, indent=2) + "\n")
