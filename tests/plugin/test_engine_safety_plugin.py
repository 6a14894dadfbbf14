"""Issue #12 through the real plugin: a channel whose local ratio is 1e-05 (2,000,000,000 msat
capacity, 20,000 msat ours) once killed the plugin with SIGSEGV inside durable-rules. Now
the plugin stays up, decides that channel and keeps pricing the others; `revops explain`
on a snapshot of that node exits cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.plugin.conftest import ROOT, Node


def test_a_ratio_of_1e_05_is_decided_and_the_plugin_stays_alive(workdir):
    node = Node(workdir)
    tiny = node.sim.channels[0]
    tiny.total_msat = 2_000_000_000
    tiny.to_us_msat = tiny.min_to_us_msat = tiny.max_to_us_msat = 20_000
    node.start()
    try:
        first = node.cycle()["fees"]
        second = node.cycle()["fees"]
        assert first["ok"] is True and second["ok"] is True
        assert first["channels"] == len(node.sim.channels) and first["error"] == 0 and second["error"] == 0
        decided = sum(second[k] for k in ("set_fee", "would_set", "hold", "suppressed", "vetoed"))
        assert decided == len(node.sim.channels), second  # every channel, the tiny one included
        live = node.call("revenue-explain")
        row = next(c for c in live["channels"] if c["scid"] == tiny.scid)
        assert row["decision"]["action"] != "error", row
        assert row["facts"]["channel.local_ratio"] == 1e-05, {k: v for k, v in row["facts"].items() if "ratio" in k or "capacity" in k or "local" in k}
        snapshot = workdir / "snap.json"
        snapshot.write_text(json.dumps(node.call("revenue-snapshot")))
        run = subprocess.run([sys.executable, "-m", "revops.cli", "explain", "--policy", str(node.policy_dir),
                              "--snapshot", str(snapshot), "--json"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert run.returncode == 0, run.stderr
        offline = next(c for c in json.loads(run.stdout)["channels"] if c["scid"] == tiny.scid)
        assert offline["decision"]["action"] == row["decision"]["action"]
    finally:
        node.stop()
