"""The `revops` command: check, explain and test policies offline; simulate them.

Exit codes (like promtool/opa): 0 ok, 1 errors, 2 usage, 3 lint findings only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from revops.diagnostics import DiagnosticError
from revops.policy.explain_rebalance import rebalance_explain
from revops.resources import default_policy_dir

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_LINT = 0, 1, 2, 3


def _print_errors(err: DiagnosticError, fmt: str = "text") -> None:
    if fmt == "json":
        print(json.dumps({"ok": False, "errors": [d.to_json() for d in err.diagnostics]}, indent=2))
    else:
        for d in err.diagnostics:
            print(str(d), file=sys.stderr)


def cmd_check(args) -> int:
    from revops.policy.reload import build
    from revops.policy.testing import run_policy_tests
    try:
        prepared = build(args.policy)
    except DiagnosticError as err:
        _print_errors(err, args.format)
        return EXIT_ERRORS
    compiled = prepared.compiled
    lint = list(compiled.source.lint)
    report = run_policy_tests(prepared) if args.run_tests else None
    if args.format == "json":
        print(json.dumps({
            "ok": report is None or report.ok, "name": compiled.name, "version": compiled.version,
            "digest": compiled.digest, "rules": len(compiled.rules), "files": [f for f, _ in compiled.source.files],
            "lint": [d.to_json() for d in lint],
            "tests": None if report is None else {"passed": report.passed, "failed": report.failed}}, indent=2))
    else:
        for d in lint:
            print(str(d), file=sys.stderr)
        if report is not None and not report.ok:
            from revops.policy.testing import format_report
            print(format_report(report), file=sys.stderr)
        else:
            n_files = len(compiled.source.files)
            print(f"SUCCESS: {compiled.name} {compiled.version}: {len(compiled.rules)} rules in "
                  f"{n_files} file{'s' if n_files != 1 else ''} ({compiled.digest[:19]})")
    if report is not None and not report.ok:
        return EXIT_ERRORS
    return EXIT_LINT if lint else EXIT_OK



def explain_json(prepared, evaluations) -> dict:
    """The JSON of `revops explain --json` (and of the plugin's revenue-explain)."""
    compiled = prepared.compiled
    return {
        "policy": {"name": compiled.name, "version": compiled.version, "api_version": compiled.source.api_version,
                   "digest": compiled.digest, "params": prepared.params, "overrides": prepared.overrides},
        "channels": [{"scid": e.decision.scid, "peer_id": e.decision.peer_id, "decision": e.decision.to_json(),
                      "rebalance": rebalance_explain(prepared, e), "trace": list(e.trace), "facts": {k: v for k, v in e.values.items()
                                                        if not k.startswith(("params.", "decision.", "let."))}}
                     for e in evaluations],
    }


_MODES = {
    "full": lambda e: True,
    "fails": lambda e: not e["matched"],
    "notes": lambda e: e["matched"],
}


def render_rebalance(r: dict) -> str:
    """One line: the channel's rebalance role, its plan or why it is skipped, and the budget left."""
    left = r["budget"].get("rebalance_budget_left_msat")
    budget = f" (budget left {left / 1000:,.0f} sat)" if isinstance(left, (int, float)) else ""
    if r["skip"]:
        return f"neither, {r['skip']}{budget}"
    plan = r["plan"] or {}
    if r["role"] == "target":
        return f"target, pull {plan['amount_sat']:,} sat at <= {plan['max_ppm']} ppm{budget}"
    if r["role"] == "source":
        return f"source, score {plan['score']:.1f}{budget}"
    return f"neither{', no positive move' if plan else ''}{budget}"


def render_explain(doc: dict, mode: str = "full") -> str:
    """Human output: per channel `old ➜ new`, the reason, and the rules considered."""
    p = doc["policy"]
    out = [f"policy {p['name']} {p['version']} ({p['digest'][:19]})"]
    keep = _MODES[mode]
    for ch in doc["channels"]:
        d = ch["decision"]
        where = f"{d['stage']}/{d['rule']}" if d["rule"] else "no rule won"
        arrow = f"{d['old_fee_ppm']} ➜ {d['fee_ppm']} ppm" if d["fee_ppm"] != d["old_fee_ppm"] else f"{d['fee_ppm']} ppm"
        extra = "".join(f"  {k}={d[k]}" for k in ("suppressed_by", "forced_by", "vetoed_by", "skip_rebalance", "error")
                        if d.get(k))
        out.append("")
        out.append(f"{ch['scid']}  {arrow}  {d['action']}  [{where}]{extra}")
        f = ch.get("facts") or {}
        if "channel.profit_class" in f:
            out.append(f"  class {f['channel.profit_class']} / {f['channel.flow_class']}, "
                       f"30-day ROI {f['channel.roi_30d']:.0%}, peer reputation {f['peer.reputation']:.2f}, "
                       f"uptime {f['peer.uptime_ratio_7d']:.0%}")
        if ch.get("rebalance"):
            out.append(f"  rebalance: {render_rebalance(ch['rebalance'])}")
        for event in ch["trace"]:
            if not keep(event):
                continue
            mark = "✓" if event["matched"] else "✗"
            text = event.get("why") if event["matched"] else event.get("reason", "")
            outcome = event.get("outcome", "")
            by = f" by {event['by']}" if event.get("by") else ""
            out.append(f"  {mark} {event['rule']:<28} {event['stage']:<20} {outcome}{by}: {text or ''}")
    return "\n".join(out)


def cmd_explain(args) -> int:
    from revops.facts.build import build_facts
    from revops.facts.snapshot import load_snapshot
    from revops.policy.reload import build
    try:
        prepared = build(args.policy)
        snapshot = load_snapshot(args.snapshot)
    except DiagnosticError as err:
        _print_errors(err)
        return EXIT_ERRORS
    facts = build_facts(snapshot.rpc, snapshot.captured_at, history=snapshot.history, states=snapshot.state,
                        rebalance=snapshot.rebalance, price=snapshot.price)
    if args.channel:
        facts = [f for f in facts if f.scid == args.channel]
        if not facts:
            print(f"{args.snapshot}: no channel {args.channel} in the snapshot", file=sys.stderr)
            return EXIT_ERRORS
    evaluations = prepared.evaluate_many(facts, snapshot.state, matcher=args.matcher, explain=True)
    doc = explain_json(prepared, evaluations)
    print(json.dumps(doc, indent=2) if args.json else render_explain(doc, args.mode))
    return EXIT_OK


def cmd_test(args) -> int:
    from revops.policy.reload import build
    from revops.policy.testing import format_report, run_policy_tests, test_files
    try:
        prepared = build(args.policy)
    except DiagnosticError as err:
        _print_errors(err)
        return EXIT_ERRORS
    files = test_files(Path(args.policy))
    if not files:
        print(f"{args.policy}: no test files in {Path(args.policy) / 'tests'}", file=sys.stderr)
        return EXIT_ERRORS
    report = run_policy_tests(prepared, files)
    print(format_report(report, args.verbose))
    return EXIT_OK if report.ok else EXIT_ERRORS


def cmd_simulate(args) -> int:
    from revops.policy.reload import build
    from revops.sim.driver import render, simulate
    from revops.sim.scenario import load_scenario
    policies = [args.policy, *(args.compare or [])]
    try:
        load_scenario(args.scenario)
        for policy in policies:
            build(policy)
    except DiagnosticError as err:
        _print_errors(err)
        return EXIT_ERRORS
    reports = []
    show = sys.stderr.isatty() and not args.json
    for policy in policies:
        def progress(done: float, name=Path(policy).name) -> None:
            if show:
                bar = "#" * int(done * 30)
                print(f"\r{name:<20} [{bar:<30}] {done:4.0%}", end="", file=sys.stderr, flush=True)
        try:
            reports.append(simulate(args.scenario, policy, days=args.days, seed=args.seed, progress=progress,
                                    fair_baselines=args.fair_baselines))
        except Exception as err:  # the harness reports plugin crashes with their stderr
            if show:
                print(file=sys.stderr)
            print(f"simulate: {policy}: {err}", file=sys.stderr)
            return EXIT_ERRORS
        if show:
            print(file=sys.stderr)
    if args.oracle:
        from revops.sim.driver import add_capture
        from revops.sim.inprocess import simulate_setter
        from revops.sim.oracle import ORACLE_NOTE, Oracle
        oracle = simulate_setter(args.scenario, Oracle(), "oracle", days=args.days, seed=args.seed)
        oracle.note = ORACLE_NOTE
        reports.append(oracle)
        add_capture(reports, oracle)
    if args.json:
        print(json.dumps({"scenario": args.scenario, "days": args.days, "seed": reports[0].seed,
                          "policies": [_sim_json(r) for r in reports]}, indent=2))
    else:
        print(render(reports, args.verbose))
        if args.oracle:
            print(f"\n{reports[-1].note}\ncapture (net profit / oracle's): " + ", ".join(
                f"{Path(r.policy).name} {r.capture:.1%}" if r.capture is not None else f"{Path(r.policy).name} n/a"
                for r in reports[:-1]))
    return EXIT_OK


def cmd_report(args) -> int:
    from revops.policy.reload import build
    from revops.report import data as report_data
    from revops.report.html import render as render_report
    from revops.store import Store
    try:
        params = build(args.policy).params
    except DiagnosticError as err:
        _print_errors(err)
        return EXIT_ERRORS
    db = Path(args.db) if args.db else None
    if db is None:
        import tempfile
        from revops.sim.driver import simulate
        db = Path(tempfile.mkdtemp(prefix="rvrep")) / "revops.sqlite3"
        try:
            simulate(args.scenario, args.policy, days=args.days, seed=args.seed, db_path=db)
        except Exception as err:
            print(f"report: simulate {args.scenario}: {err}", file=sys.stderr)
            return EXIT_ERRORS
    elif not db.exists():
        print(f"report: no database at {db}", file=sys.stderr)
        return EXIT_ERRORS
    try:
        with Store(db) as store:
            data = report_data.load(store, params.get("gossip_max_updates_node_day"))
    except Exception as err:  # unreadable, newer or empty database
        print(f"report: {db}: {err}", file=sys.stderr)
        return EXIT_ERRORS
    title = f"revops report: {args.scenario}, {args.days:g} simulated days" if args.db is None else \
        f"revops report: {db.name}"
    Path(args.output).write_text(render_report(data, title), encoding="utf-8")
    print(f"wrote {args.output}")
    return EXIT_OK


def _sim_json(report) -> dict:
    doc = report.to_json()
    return {"policy": doc.pop("policy"), **{k: v for k, v in doc.items() if k not in ("scenario", "days", "seed")}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="revops", description="Revenue operations for Core Lightning: "
                                     "check, explain, test and simulate fee and rebalancing policies.")
    sub = parser.add_subparsers(dest="command", required=True)
    default = str(default_policy_dir())

    p = sub.add_parser("check", help="validate a policy folder exactly as revenue-reload does")
    p.add_argument("policy", nargs="?", default=default, help="policy folder (default: the shipped default)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--run-tests", action="store_true", help="also run the policy's tests/ cases")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("explain", help="show, per channel, every rule considered and what would be done")
    p.add_argument("--policy", default=default, help="policy folder (default: the shipped default)")
    p.add_argument("--snapshot", required=True, help="a revops-snapshot/1 JSON file")
    p.add_argument("--channel", help="only this short_channel_id")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--mode", choices=tuple(_MODES), default="full",
                   help="full: every rule; fails: rules that did not match; notes: rules that matched")
    p.add_argument("--matcher", choices=("durable", "reference"), default="durable",
                   help="durable-rules (as the plugin runs) or the reference interpreter")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("simulate", help="run the real plugin on a simulated node and report money earned")
    p.add_argument("--scenario", default="hub", help="a scenario name (hub, sink-drain, zombies, mempool-shock, "
                   "htlc-flood, flappy-peers, large) or a scenario YAML file")
    p.add_argument("--policy", default=default, help="policy folder (default: the shipped default)")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="more policies to run on the same seed")
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--seed", type=int, default=None, help="market seed (default: the scenario's)")
    p.add_argument("--fair-baselines", action="store_true",
                   help="anchor the baselines' fees on the scenario's typical competitor fee (docs/results.md)")
    p.add_argument("--oracle", action="store_true",
                   help="add the oracle (an upper reference that reads the hidden demand curves) and "
                   "each policy's capture = net profit / the oracle's")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", help="every channel in the tables")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("report", help="an HTML report with charts from the plugin's database or a simulated run")
    p.add_argument("--db", help="the plugin's database (revops.sqlite3); without it, simulate --scenario")
    p.add_argument("--scenario", default="hub", help="scenario to simulate when no --db is given")
    p.add_argument("--days", type=float, default=3, help="days to simulate (with --scenario)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--policy", default=default, help="policy to simulate, and whose gossip budget is drawn")
    p.add_argument("-o", "--output", default="revops-report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("test", help="run the policy's test cases (tests/*.yaml in the policy folder)")
    p.add_argument("policy", nargs="?", default=default)
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `revops explain ... | head` is fine
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
