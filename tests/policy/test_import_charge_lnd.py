"""`revops import charge-lnd` (issue 13): real charge-lnd example configs become policy folders
that `revops check` accepts, with what cannot be imported listed; an imported config decides
the fees charge-lnd's documented semantics give on a snapshot."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from revops.facts.build import build_facts
from revops.facts.snapshot import load_snapshot

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "charge-lnd"
SNAPSHOT = ROOT / "policies" / "default" / "tests" / "snapshot.json"
EXAMPLES = sorted(DATA.glob("*.config"))


def revops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


# -- charge-lnd's documented semantics (its README), written out independently ----------------
def _expected_fees(config: Path, facts) -> dict[str, int]:
    """The fee ppm charge-lnd would leave on each channel: first matching final section, else
    [default]; static / proportional / match_peer / ignore; min_fee_ppm_delta (10 for
    proportional unless set); a section without strategy or matchers sets defaults."""
    cp = configparser.ConfigParser()
    cp.read(config)
    out = {}
    for f in facts:
        v = f.values
        inherited: dict[str, str] = {}
        chosen = None
        for name in [s for s in cp.sections() if s != "default"] + ["default"]:
            if name == "default" and not cp.has_section("default"):
                break
            sec = cp[name]
            if name == "default" or (name != "default" and _matches(sec, v)):
                merged = {**inherited, **dict(sec)}
                if "strategy" in sec:
                    chosen = merged
                    break
                inherited = merged
            if name == "default":
                break
        out[f.scid] = _apply(chosen, v)
    return out


def _matches(sec, v) -> bool:
    checks = {
        "node.id": lambda x: v["peer.id"] in [i.strip() for i in x.split(",")],
        "chan.id": lambda x: v["channel.scid"] in [i.strip() for i in x.split(",")],
        "chan.min_ratio": lambda x: float(x) <= v["channel.local_ratio"],
        "chan.max_ratio": lambda x: float(x) >= v["channel.local_ratio"],
        "chan.min_capacity": lambda x: int(x) <= v["channel.capacity_sat"],
        "chan.max_capacity": lambda x: int(x) >= v["channel.capacity_sat"],
        "chan.min_fee_ppm": lambda x: int(x) <= v["channel.peer_fee_ppm"],
        "chan.max_local_balance": lambda x: int(x) * 1000 >= v["channel.local_msat"],
        "chan.activity_period": lambda x: v["channel.age_blocks"] * 600 >= {"7d": 604800, "1d": 86400}[x],
        "chan.min_htlcs_out": lambda x: v["channel.out_fwds_7d"] >= int(x),
        "chan.max_htlcs_out": lambda x: v["channel.out_fwds_7d"] <= int(x),
    }
    return all(checks[k](sec[k]) for k in sec if "." in k)


def _apply(sec, v) -> int:
    old = v["channel.fee_ppm"]
    if sec is None or sec["strategy"] in ("ignore", "ignore_fees", "disable"):
        return old
    strategy = sec["strategy"]
    if strategy == "static" or (strategy == "match_peer" and "fee_ppm" in sec):
        new = int(sec["fee_ppm"])
    elif strategy == "match_peer":
        new = v["channel.peer_fee_ppm"]
    else:  # proportional
        lo, hi = int(sec["min_fee_ppm"]), int(sec["max_fee_ppm"])
        peer = sec.get("sum_peer_chans", "false") == "true"
        ratio = v["peer.local_ratio"] if peer else v["channel.local_ratio"]
        new = max(int(lo + (1.0 - ratio) * (hi - lo)), 0)
    delta = int(sec.get("min_fee_ppm_delta", 10 if strategy == "proportional" else 0))
    return new if new != old and abs(new - old) >= delta else old


# -- the tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("config", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_imports_into_a_policy_revops_check_accepts(config, tmp_path):
    out = tmp_path / "policy"
    run = revops("import", "charge-lnd", str(config), "-o", str(out))
    assert run.returncode in (0, 3), run.stderr
    check = revops("check", str(out))
    assert check.returncode in (0, 3) and check.stdout.startswith("SUCCESS"), check.stderr
    listed = [line for line in run.stderr.splitlines() if line.startswith("not imported: ")]
    assert (run.returncode == 3) == bool(listed)
    policy_text = (out / "policy.yaml").read_text()
    assert all(line[len("not imported: "):] in policy_text for line in listed)


def test_unsupported_keys_are_listed_never_dropped(tmp_path):
    run = revops("import", "charge-lnd", str(DATA / "complex-ruleset.config"), "-o", str(tmp_path / "p"))
    assert run.returncode == 3
    for expected in ("[beginner-node] matcher node.max_capacity is not supported: the section is imported disabled",
                     "[recover-cost] strategy cost is not supported: imported as hold()",
                     "[micropayments-only] max_htlc_msat = 1_000_000: not imported",
                     "[onchain-congestion] has no strategy and matchers",
                     "[known-one-way-drains] node.id entry '03cde60a",
                     "[pool-policy] chan.id = file:///home/lnd/pool-channels.txt: cannot read the file"):
        assert expected in run.stderr, expected
    # Every key of every section is either imported or listed.
    cp = configparser.ConfigParser()
    cp.read(DATA / "complex-ruleset.config")
    text = (tmp_path / "p" / "policy.yaml").read_text() + (tmp_path / "p" / "groups.yaml").read_text()
    for name in cp.sections():
        assert f"[{name}]" in text, name


@pytest.mark.parametrize("config", ["revops-mixed", "all-channels-proportional", "static-but-incentivise-extremes",
                                    "multiple-channels-per-peer-proportional", "all-channels-static"])
def test_an_imported_config_decides_the_fees_charge_lnd_documents(config, tmp_path):
    out = tmp_path / "policy"
    assert revops("import", "charge-lnd", str(DATA / f"{config}.config"), "-o", str(out)).returncode in (0, 3)
    snapshot = load_snapshot(SNAPSHOT)
    facts = build_facts(snapshot.rpc, snapshot.captured_at, history=snapshot.history, states=snapshot.state)
    expected = _expected_fees(DATA / f"{config}.config", facts)
    for matcher in ("durable", "reference"):
        run = revops("explain", "--policy", str(out), "--snapshot", str(SNAPSHOT), "--json", "--matcher", matcher)
        assert run.returncode == 0, run.stderr
        decided = {c["scid"]: (c["decision"]["fee_ppm"] if c["decision"]["action"] == "set_fee"
                               else c["decision"]["old_fee_ppm"]) for c in json.loads(run.stdout)["channels"]}
        assert decided == expected, matcher
    if config == "revops-mixed":  # worked out by hand: busy 200 + 0.38 x 1000, default 10 + 0.55 x 490, ...
        assert expected == {"880001x1234x0": 580, "850123x77x1": 1500, "870500x400x1": 50, "860000x12x0": 279,
                            "820000x900x2": 255, "890000x55x0": 660, "881234x5x0": 77, "875000x10x1": 300}


def test_a_config_that_is_not_ini_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.config"
    bad.write_text("strategy = static\n")
    run = revops("import", "charge-lnd", str(bad), "-o", str(tmp_path / "p"))
    assert run.returncode == 1 and run.stderr.startswith("import: ") and len(run.stderr.splitlines()) == 1
    assert not (tmp_path / "p").exists()
