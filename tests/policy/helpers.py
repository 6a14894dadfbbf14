"""Build small policies and channels in tests without touching the shipped default."""

from __future__ import annotations

import textwrap
from pathlib import Path

from revops.facts.build import ChannelFacts
from revops.policy.compile import compile_policy
from revops.policy.engine import PreparedPolicy, prepare
from revops.policy.load import load_policy

# A small fact vocabulary, so tests do not depend on the full registry.
FACT_TYPES = {
    "channel.fee_ppm": "number", "channel.local_ratio": "number", "channel.htlc_util": "number",
    "channel.age_days": "number", "channel.active": "bool", "channel.state": "string",
    "channel.out_fwds_7d": "number", "peer.connected": "bool", "market.opening_feerate_perkw": "number",
}

HEADER = """\
apiVersion: revops/v1
version: "t1"
stages:
  - name: safety
  - name: congestion
  - name: probe
    clamp_exempt: true
  - name: premiums
  - name: discovery
  - name: gossip
    phase: post
"""


# One param, one rule: the smallest policy whose fee a test can move.
BASE_FEE_POLICY = """
params:
  base: {type: int, default: 100, min: 1, max: 5000, doc: base fee}
rules:
  - id: base
    stage: discovery
    then: set_fee(params.base)
    why: base
"""


def write_policy(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    folder = tmp_path / "policy"
    folder.mkdir(exist_ok=True)
    (folder / "policy.yaml").write_text(header + textwrap.dedent(body))
    return folder


def make_policy(tmp_path: Path, body: str, overrides=None, header: str = HEADER) -> PreparedPolicy:
    return prepare(compile_policy(load_policy(write_policy(tmp_path, body, header)), FACT_TYPES), overrides)


def channel(scid: str = "100x1x0", **values) -> ChannelFacts:
    base = {"channel.fee_ppm": 100, "channel.local_ratio": 0.5, "channel.htlc_util": 0.0,
            "channel.age_days": 100.0, "channel.active": True, "channel.state": "CHANNELD_NORMAL",
            "channel.out_fwds_7d": 10, "peer.connected": True, "market.opening_feerate_perkw": 253}
    base.update({k.replace("__", "."): v for k, v in values.items()})
    return ChannelFacts(scid, "02" + "ab" * 32, base)
