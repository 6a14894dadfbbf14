"""The JSON of one explain: the policy, and per channel its decision, rebalance side, trace,
facts and where each overridden param came from. Shared by `revops explain --json` (cli.py)
and the plugin's revenue-explain (runtime.py), so neither imports the other."""

from __future__ import annotations

from revops.policy.explain_rebalance import rebalance_explain

__all__ = ["explain_json"]


def explain_json(prepared, evaluations) -> dict:
    """The JSON of `revops explain --json` (and of the plugin's revenue-explain)."""
    compiled = prepared.compiled
    groups = compiled.source.groups.groups if compiled.source.groups else ()
    matched = {k[7:] for e in evaluations for k, v in e.values.items() if k.startswith("groups.") and v}
    return {
        "policy": {"name": compiled.name, "version": compiled.version, "api_version": compiled.source.api_version,
                   "digest": compiled.digest, "params": prepared.params, "overrides": prepared.overrides,
                   "groups_matching_nothing": [g.name for g in groups if g.name not in matched]},
        "channels": [{"scid": e.decision.scid, "peer_id": e.decision.peer_id, "decision": e.decision.to_json(),
                      "rebalance": rebalance_explain(prepared, e), "trace": list(e.trace), "facts": {k: v for k, v in e.values.items()
                                                        if not k.startswith(("params.", "decision.", "let.", "override."))},
                      # which groups.yaml / revenue-config override gave a param its value (issue 13)
                      "overrides": {k[9:]: {"value": e.values.get("params." + k[9:]), "from": v}
                                    for k, v in e.values.items() if k.startswith("override.")}}
                     for e in evaluations],
    }
