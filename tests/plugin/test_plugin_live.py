"""The plugin on the system clock: timers, auto-reload, the metrics endpoint, first start, bad start."""

from __future__ import annotations

import time
import urllib.request

import pytest

from revops.sim.errors import RpcError
from tests.plugin.conftest import Node, failing_backend


def test_timers_auto_reload_and_metrics_on_the_system_clock(workdir):
    n = Node(workdir, options={"revenue-ops-sim-clock": "0", "revenue-ops-fee-interval": "10",
                               "revenue-ops-auto-reload": "true", "revenue-ops-metrics-listen": "127.0.0.1:0"})
    ld = n.start()
    try:
        status = n.call("revenue-status")
        assert status["clock"] == "system"
        body = urllib.request.urlopen(f"http://{status['metrics']}/metrics", timeout=5).read().decode()
        assert "revops_policy_last_reload_successful 1.0" in body
        assert 'revops_policy_info{digest="sha256:' in body
        ld.wait_for_log(r"^policy default .* loaded \(startup\)", timeout_s=5)
        with pytest.raises(RpcError):
            n.call("revenue-cycle", {"what": "fees", "now": 1})  # `now` needs the simulated clock
        # an edit to a policy file is picked up without revenue-reload
        params = n.policy_dir / "params.yaml"
        params.write_text(params.read_text().replace("default: 2500", "default: 2400"))
        ld.wait_for_log(r"loaded \(file change\)", timeout_s=15)
        assert n.call("revenue-config", ["max_fee_ppm"])["value"] == 2400
        # a broken edit is rejected and the metric says so; the policy stays
        params.write_text(params.read_text().replace("default: 2400", "default: -5"))
        ld.wait_for_log(r"policy reload failed \(file change\)", timeout_s=15)
        body = urllib.request.urlopen(f"http://{status['metrics']}/metrics", timeout=5).read().decode()
        assert "revops_policy_last_reload_successful 0.0" in body
        assert n.call("revenue-config", ["max_fee_ppm"])["value"] == 2400
        # the fee timer (10 s) has run a cycle by itself
        last_cycle = None
        for _ in range(60):
            last_cycle = n.call("revenue-status")["last_cycle"]
            if last_cycle:
                break
            time.sleep(0.5)
        assert last_cycle and last_cycle["ok"] is True
        body = urllib.request.urlopen(f"http://{status['metrics']}/metrics", timeout=5).read().decode()
        channels = [line for line in body.splitlines() if line.startswith("revops_channels ")]
        assert channels and float(channels[0].split()[1]) == last_cycle["channels"] > 0
    finally:
        n.stop()


def test_first_start_copies_the_default_policy_into_the_lightning_dir(workdir):
    n = Node(workdir)
    del n.options["revenue-ops-policy"]
    n.start()
    try:
        status = n.call("revenue-status")
        policy_dir = workdir / "ln" / "revops" / "policy"
        assert status["policy"]["path"] == str(policy_dir)
        assert (policy_dir / "policy.yaml").exists() and status["policy"]["name"] == "default"
    finally:
        n.stop()


def test_invalid_policy_at_startup_disables_the_plugin_with_the_reason(workdir):
    n = Node(workdir)
    fees = n.policy_dir / "fees.yaml"
    fees.write_text(fees.read_text().replace("then: hold()", "then: hodl()", 1))
    n.start()
    try:
        assert n.ld.disabled and "fees.yaml" in n.ld.disabled and "unknown action 'hodl'" in n.ld.disabled
    finally:
        n.stop()


def test_node_read_failure_skips_the_cycle_and_keeps_running(workdir):
    broken = {"on": False}
    wrapper = failing_backend(lambda method, params: broken["on"] and method == "listpeerchannels",
                              RpcError(-32602, "listpeerchannels: temporarily unavailable"))
    n = Node(workdir, backend_wrapper=wrapper)
    n.start()
    try:
        broken["on"] = True
        fees = n.cycle()["fees"]
        assert fees["ok"] is False and "cannot read the node" in fees["error"]
        assert n.backend.calls["setchannel"] == 0
        broken["on"] = False
        assert n.cycle()["fees"]["ok"] is True
    finally:
        n.stop()


def test_unusable_database_disables_the_plugin_with_the_reason(workdir):
    blocker = workdir / "not-a-dir"
    blocker.write_text("a file where the database folder should be")
    n = Node(workdir, options={"revenue-ops-db": str(blocker / "revops.sqlite3")})
    n.start()
    try:
        assert n.ld.disabled and "cannot open the database" in n.ld.disabled
    finally:
        n.stop()
