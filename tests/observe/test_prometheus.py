"""A real Prometheus server scrapes the plugin running on the simulator: promtool accepts the
exposition and the alert rules, and every PromQL expression of the Grafana dashboard and the
alert rules runs on the server; the revenue and decision panels have data after the run."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from revops.facts.build import ChannelFacts
from revops.metrics import Metrics
from revops.sim.errors import RpcError

from tests.observe.conftest import Node
from tests.observe.system import PrometheusServer, require_binary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "revops-dashboard.json"
RULES = ROOT / "contrib" / "prometheus" / "revops-alerts.yml"
# Grafana's variables as a dashboard over the last few minutes would expand them
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "5m", "$instance": ".*", "$scid": ".*"}


def dashboard_exprs() -> list[tuple[str, str]]:
    """Returns (panel title, expr) of every target of the dashboard, Grafana variables expanded."""
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unexpanded variable in {panel['title']}: {expr}"
            out.append((panel["title"], expr))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    return [(r["alert"], r["expr"]) for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_accepts_the_alert_rules():
    promtool = require_binary("promtool")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"SUCCESS: [5-9] rules found", out.stdout)
    names = {name for name, _ in rule_exprs()}
    assert {"RevopsDown", "RevopsPolicyReloadFailed", "RevopsRebalanceBudgetExhausted",
            "RevopsWalletReserveBreached", "RevopsGossipBudgetExhausted"} <= names


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """The plugin on `hub`, scraped by Prometheus every second while the simulation runs."""
    n = Node(tmp_path_factory.mktemp("p"), scenario="hub", options={"revenue-ops-metrics-listen": "127.0.0.1:0"})
    n.start()
    address = n.call("revenue-status")["metrics"]
    prom = PrometheusServer([address], [RULES])
    try:
        prom.start()
        deadline = time.monotonic() + 20  # the first scrape comes a few seconds after start
        while not prom.query('up{job="revops"} == 1')["data"]["result"]:
            assert time.monotonic() < deadline, "prometheus never scraped the plugin"
            time.sleep(0.25)
        # counters must change between scrapes: run the market and the fee cycles over ~5 s
        for _ in range(8):
            n.advance(3 * 3600)
            n.cycle("fees")
            time.sleep(0.6)
        time.sleep(2.2)  # two more scrapes see the last cycle
        body = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read()
        yield prom, body, n
    finally:
        prom.stop()
        n.stop()


def test_promtool_accepts_the_exposition(scraped):
    _, body, _ = scraped
    promtool = require_binary("promtool")
    out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert out.returncode == 0, (out.stdout + out.stderr).decode()


def test_every_dashboard_and_rule_expression_runs_and_the_key_panels_have_data(scraped):
    prom, _, _ = scraped
    assert prom.query('up{job="revops"}')["data"]["result"][0]["value"][1] == "1"
    results = {}
    for title, expr in dashboard_exprs() + rule_exprs():
        answer = prom.query(expr)
        assert answer["status"] == "success", f"{title}: {expr}: {answer.get('error')}"
        results[title] = answer["data"]["result"]
    for title in ("Routing fees earned (sat/h)", "Top earning channels (sat, dashboard range)",
                  "Decisions by rule and outcome", "Decisions by stage", "Fee per channel (ppm)",
                  "Wallet reserve: suspended operations", "Wallet funds and reserve (sat)"):
        assert results[title], f"panel {title!r} has no data"
    # a healthy hub is above its reserve: every operation shows 0 (not suspended)
    assert {r["metric"]["operation"]: r["value"][1] for r in results["Wallet reserve: suspended operations"]} == \
        {"rebalancing": "0", "lds_payouts": "0"}
    earned = sum(float(r["value"][1]) for r in results["Top earning channels (sat, dashboard range)"])
    assert earned > 0
    # the rules loaded and evaluate without error; nothing is firing on a healthy run
    groups = prom.api("rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(rule_exprs()) and all(r["health"] != "err" for r in rules)
    assert not results["RevopsPolicyReloadFailed"] and not results["RevopsDown"]


def test_promtool_accepts_every_series_including_the_rebalancers():
    """The plugin on this branch has no rebalancer yet: check its series from a hand-made summary."""
    m = Metrics()
    m.on_rebalance({"ok": True, "jobs": {"running": 2}, "spend_msat": 5, "budget_used_msat": 10,
                    "budget_left_msat": 0, "reservations": 1, "wallet_reserve_ok": False})
    m.on_decisions([{"scid": "1x1x0", "action": "suppressed", "rule": "r", "stage": "gossip",
                     "suppressed_by": "too soon", "applied": False}],
                   [ChannelFacts("1x1x0", "02aa", {"channel.fee_ppm": 5, "channel.flow_class": "FILLING",
                                                   "node.fee_updates_24h": 1})],
                   5, False)
    m.on_forward_event({"status": "settled", "fee_msat": 3, "out_msat": 1000, "out_channel": "1x1x0"})
    m.on_connection(True)
    body = generate_latest(m.registry)
    for name in (b"revops_rebalance_budget_left_msat", b"revops_wallet_reserve_ok", b"revops_rebalance_jobs",
                 b"revops_channel_class", b"revops_decisions_suppressed_total"):
        assert name in body
    out = subprocess.run([require_binary("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert out.returncode == 0, (out.stdout + out.stderr).decode()


def test_a_failed_reload_shows_in_the_alert_expression(scraped):
    """Last in this module: it breaks the policy of the shared plugin."""
    prom, _, n = scraped
    expr = dict(rule_exprs())["RevopsPolicyReloadFailed"]
    assert not prom.query(expr)["data"]["result"]
    params = n.policy_dir / "params.yaml"
    params.write_text(params.read_text().replace("default: 2500", "default: -5"))
    with pytest.raises(RpcError):
        n.call("revenue-reload")
    deadline = time.monotonic() + 10
    while not prom.query(expr)["data"]["result"]:
        assert time.monotonic() < deadline, "the failed reload never showed in Prometheus"
        time.sleep(0.25)


def test_the_dashboard_is_importable_grafana_json():
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    defined = {v["name"] for v in dash["templating"]["list"]}
    assert {i["name"] for i in dash["__inputs"]} == {"DS_PROMETHEUS"}
    for panel in dash["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel.get("targets", []):
            assert target["refId"] and target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__range"}
            assert used <= defined, f"{panel['title']}: undefined variables {used - defined}"
    titles = {p["title"] for p in dash["panels"]}
    assert {"Routing fees earned (sat/h)", "Decisions by rule and outcome", "Rebalance budget (sat)",
            "Wallet reserve OK", "Fee per channel (ppm)"} <= titles
