"""The `revops` command: check, explain and test policies offline; simulate them.

Exit codes (like promtool/opa): 0 ok, 1 errors, 2 usage, 3 lint findings only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from revops.diagnostics import DiagnosticError
from revops.policy.explain import explain_json
from revops.resources import default_policy_dir

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_LINT = 0, 1, 2, 3


def _print_errors(err: DiagnosticError, fmt: str = "text") -> None:
    if fmt == "json":
        print(json.dumps({"ok": False, "errors": [d.to_json() for d in err.diagnostics]}, indent=2))
    else:
        for d in err.diagnostics:
            print(str(d), file=sys.stderr)


def cmd_check(args) -> int:
    """The verdict `revenue-reload` would give (load, compile, prepare, the policy's tests/),
    for each folder; exits with the worst code (errors over lint over ok)."""
    docs, codes = [], []
    for folder in args.policy or [str(default_policy_dir())]:
        code, doc = _check_one(folder, args.format)
        codes.append(code)
        docs.append(doc)
    if args.format == "json":
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    return EXIT_ERRORS if EXIT_ERRORS in codes else (EXIT_LINT if EXIT_LINT in codes else EXIT_OK)


def _check_one(folder: str, fmt: str) -> tuple[int, dict]:
    from revops.policy.reload import verdict
    judged = verdict(folder)
    tests = {"passed": judged.tests_passed, "failed": judged.tests_failed}
    if not judged.ok:
        if fmt != "json":
            _print_errors(DiagnosticError(list(judged.errors)))
        return EXIT_ERRORS, {"policy": folder, "ok": False, "errors": [d.to_json() for d in judged.errors],
                             "tests": tests}
    compiled = judged.prepared.compiled
    lint = list(judged.lint)
    if fmt != "json":
        for d in lint:
            print(str(d), file=sys.stderr)
        n_files = len(compiled.source.files)
        tested = f", {judged.tests_passed} tests passed" if judged.tests_passed else ""
        print(f"SUCCESS: {compiled.name} {compiled.version}: {len(compiled.rules)} rules in "
              f"{n_files} file{'s' if n_files != 1 else ''}{tested} ({compiled.digest[:19]})")
    return (EXIT_LINT if lint else EXIT_OK), {
        "policy": folder, "ok": True, "name": compiled.name, "version": compiled.version,
        "digest": compiled.digest, "rules": len(compiled.rules), "files": [f for f, _ in compiled.source.files],
        "lint": [d.to_json() for d in lint], "tests": tests}


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


def _ppm(value) -> str:
    """A fee or param for people: `-` when there is none (never `None`), ints without `.0`."""
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _deciding_bound(trace: list[dict], fee_ppm: int) -> str | None:
    """`bound: the floor of <rule> (file:line) raised the fee 120 ➜ 800 ppm` when a floor or
    ceiling clamped the fee, and what changed it after that (peer sync) if anything did."""
    clamps = [(event, effect) for event in trace for effect in event.get("effects") or ()
              if effect.get("action") in ("clamp_floor", "clamp_ceiling")]
    if not clamps:
        return None
    # Floors are applied first, then ceilings: the last clamp had the last word.
    event, effect = sorted(clamps, key=lambda c: c[1]["action"] == "clamp_ceiling")[-1]
    old, new = effect["fee_ppm"]
    kind, verb = ("floor", "raised") if effect["action"] == "clamp_floor" else ("ceiling", "lowered")
    line = (f"bound: the {kind} of {event['rule']} ({event['at']}) {verb} the fee "
            f"{_ppm(round(old, 1))} ➜ {_ppm(new)} ppm")
    if round(new) != fee_ppm:
        line += f"; then peer sync set {fee_ppm} ppm" if any(
            e.get("action") == "sync_peer" for ev in trace for e in ev.get("effects") or ()) \
            else f"; the decision is {fee_ppm} ppm"
    return line


def render_explain(doc: dict, mode: str = "full") -> str:
    """Human output: per channel `old ➜ new`, the reason, and the rules considered."""
    p = doc["policy"]
    out = [f"policy {p['name']} {p['version']} ({p['digest'][:19]})"]
    out += [f"lint: group {name!r} (groups.yaml) matches no channel here"
            for name in p.get("groups_matching_nothing") or ()]
    keep = _MODES[mode]
    for ch in doc["channels"]:
        d = ch["decision"]
        where = f"{d['stage']}/{d['rule']}" if d["rule"] else "no rule won"
        arrow = (f"{_ppm(d['old_fee_ppm'])} ➜ {_ppm(d['fee_ppm'])} ppm" if d["fee_ppm"] != d["old_fee_ppm"]
                 else f"{_ppm(d['fee_ppm'])} ppm")
        extra = "".join(f"  {k}={d[k]}" for k in ("suppressed_by", "forced_by", "vetoed_by", "skip_rebalance", "error")
                        if d.get(k))
        out.append("")
        out.append(f"{ch['scid']}  {arrow}  {d['action']}  [{where}]{extra}")
        f = ch.get("facts") or {}
        if "channel.profit_class" in f:
            out.append(f"  class {f['channel.profit_class']} / {f['channel.flow_class']}, "
                       f"return on capital {f['channel.capital_return_annual']:.1%}/year "
                       f"(30-day return on cost {f['channel.return_on_cost_30d']:.0%}), peer reputation {f['peer.reputation']:.2f}, "
                       f"uptime {f['peer.uptime_ratio_7d']:.0%}")
        for name, o in (ch.get("overrides") or {}).items():
            out.append(f"  param {name} = {_ppm(o['value'])} from {o['from']}")
        bound = _deciding_bound(ch["trace"], d["fee_ppm"])
        if bound:
            out.append(f"  {bound}")
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
    if args.mutate:
        return _mutate(prepared, files, args)
    report = run_policy_tests(prepared, files)
    print(format_report(report, args.verbose))
    return EXIT_OK if report.ok else EXIT_ERRORS


def _mutate(prepared, files, args) -> int:
    """`revops test --mutate`: exit 1 on an engine crash or a kill ratio under --min-kill."""
    from revops.policy.mutate import NoTestsError, format_mutation_report, report_json, run_mutants
    show = sys.stderr.isatty() and not args.json

    def progress(done: int, total: int) -> None:
        if show:
            print(f"\rmutants {done}/{total}", end="", file=sys.stderr, flush=True)
    try:
        report = run_mutants(prepared, files, args.matcher, progress)
    except NoTestsError as err:
        print(f"{args.policy}: {err}", file=sys.stderr)
        return EXIT_ERRORS
    if show:
        print(file=sys.stderr)
    print(json.dumps(report_json(report), indent=2) if args.json else format_mutation_report(report, args.policy))
    return EXIT_ERRORS if report.count("crash") or report.kill_ratio < args.min_kill else EXIT_OK


def cmd_simulate(args) -> int:
    from revops.policy.reload import build
    from revops.sim.driver import render, simulate
    from revops.sim.scenario import load_scenario, resolve, scenario_names
    policies = [args.policy, *(args.compare or [])]
    if not resolve(args.scenario).exists():
        print(f"simulate: no scenario {args.scenario!r}; bundled scenarios: {', '.join(scenario_names())} "
              "(or give a scenario YAML file)", file=sys.stderr)
        return EXIT_ERRORS
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
        progress(0.0)  # the bar shows while the plugin starts, not only once days pass
        if not show and not args.json:  # no terminal: one line per policy, never a silent minute
            print(f"simulating {Path(policy).name} on {args.scenario} for {args.days:g} days ...",
                  file=sys.stderr, flush=True)
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
        from revops.sim.oracle import run_oracle
        oracle = run_oracle(args.scenario, days=args.days, seed=args.seed)
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
    import tempfile
    from revops.policy.reload import build
    try:
        budget = build(args.policy).host.gossip_node_budget
    except DiagnosticError as err:
        _print_errors(err)
        return EXIT_ERRORS
    if args.db:
        return _report(args, Path(args.db), budget)
    with tempfile.TemporaryDirectory(prefix="rvrep") as scratch:  # removed whatever happens (issue 12)
        from revops.sim.driver import simulate
        db = Path(scratch) / "revops.sqlite3"
        try:
            simulate(args.scenario, args.policy, days=args.days, seed=args.seed, db_path=db)
        except Exception as err:
            print(f"report: simulate {args.scenario}: {err}", file=sys.stderr)
            return EXIT_ERRORS
        return _report(args, db, budget)


def _report(args, db: Path, budget: int | None) -> int:
    from revops.report import data as report_data
    from revops.report.html import render as render_report
    from revops.store import Store
    if not db.exists():
        print(f"report: no database at {db}", file=sys.stderr)
        return EXIT_ERRORS
    try:
        with Store(db) as store:
            data = report_data.load(store, budget)
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


def _cmd_import(args) -> int:
    from revops.importers.command import cmd_import
    return cmd_import(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="revops", description="Revenue operations for Core Lightning: "
                                     "check, explain, test and simulate fee and rebalancing policies.")
    sub = parser.add_subparsers(dest="command", required=True)
    default = str(default_policy_dir())

    p = sub.add_parser("check", help="give the verdict revenue-reload would give: load, compile and run the "
                       "policy's tests/ cases (the same function)",
                       description="Validate a policy folder with the function revenue-reload runs: YAML, "
                       "schema, DSL, compile, and the policy's own tests/ cases. Exit 0: reload would accept "
                       "it; 1: it would refuse it (one path:line:col: code: message line per error); "
                       "3: accepted, with lint findings.")
    p.add_argument("policy", nargs="*", help="policy folders (default: the shipped default)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="json: one object (a list of them for several folders) on stdout")
    p.add_argument("--run-tests", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
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
    p.add_argument("--scenario", default="hub", help="a scenario name (hub, sink-drain, zombies, competitor-shift, "
                   "demand-shift, mempool-shock, htlc-flood, flappy-peers, large, self-loops, cheap-market) or a "
                   "scenario YAML file")
    p.add_argument("--policy", default=default, help="policy folder (default: the shipped default)")
    p.add_argument("--compare", nargs="+", action="extend", metavar="DIR",
                   help="more policies to run on the same seed (--compare A B or --compare A --compare B)")
    p.add_argument("--days", type=float, default=30, help="simulated days to run (default: %(default)g)")
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

    p = sub.add_parser("import", help="turn another tool's fee config into a policy folder (charge-lnd)")
    p.add_argument("tool", choices=("charge-lnd",), help="the tool whose config FILE is")
    p.add_argument("file", help="the config file (charge-lnd: its INI file)")
    p.add_argument("-o", "--output", help="the policy folder to write (default: <FILE stem>-policy)")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("test", help="run the policy's test cases (tests/*.yaml in the policy folder)")
    p.add_argument("policy", nargs="?", default=default)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--mutate", action="store_true", help="mutation testing: break one rule at a time and "
                   "list the mutants the tests do not notice (docs/mutation.md)")
    p.add_argument("--matcher", choices=("reference", "durable"), default="reference",
                   help="with --mutate: the matcher the mutants run under (default: the reference interpreter)")
    p.add_argument("--min-kill", type=float, default=0.0, metavar="RATIO",
                   help="with --mutate: exit 1 when fewer than this share of the mutants are killed")
    p.add_argument("--json", action="store_true", help="with --mutate: machine-readable output")
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
