"""`revops import charge-lnd FILE`: a charge-lnd config (INI) as a revops policy folder.

charge-lnd's semantics (its README and policy.py): sections are tried top to bottom and
the first *final* section (one with a `strategy`) whose matchers all hold decides the
channel; `[default]` decides when none does; a fee change smaller than `min_fee_ppm_delta`
is not sent (proportional defaults it to 10). Here:

  - each final section becomes a rule of the `charge_lnd` stage, in file order (priority),
    whose `when` is the conjunction of its matchers; `[default]` a rule of the next stage;
  - `node.id` and `chan.id` lists become groups in groups.yaml (`groups.<section>_nodes`);
  - strategies: static -> set_fee(param), proportional -> min + (1 - ratio) x (max - min)
    (truncated, as int() does), match_peer -> the peer's fee, ignore / ignore_fees -> hold();
  - each section's numbers become params (`<section>_fee_ppm`, ...), tunable with revenue-config;
  - min_fee_ppm_delta becomes a post-stage rule that holds back smaller changes.

Nothing is dropped silently: every key, matcher or strategy revops cannot express is
listed (and written at the top of policy.yaml). A section with a matcher that cannot be
expressed is imported disabled (`when: false`) rather than matching more channels than
it did; a section with a strategy that cannot be expressed holds the fee (hold()), so the
sections after it still see the channels they saw.
"""

from __future__ import annotations

import configparser
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

NODE_ID = re.compile(r"^0[23][0-9a-f]{64}$")

#: charge-lnd matcher -> (DSL template for its value, value kind). {v} is the value.
MATCHERS = {
    "chan.min_ratio": ("channel.local_ratio >= {v}", "float"),
    "chan.max_ratio": ("channel.local_ratio <= {v}", "float"),
    "chan.min_capacity": ("channel.capacity_sat >= {v}", "int"),
    "chan.max_capacity": ("channel.capacity_sat <= {v}", "int"),
    "chan.min_local_balance": ("channel.local_msat >= {v} * 1000", "int"),
    "chan.max_local_balance": ("channel.local_msat <= {v} * 1000", "int"),
    "chan.min_remote_balance": ("channel.remote_msat >= {v} * 1000", "int"),
    "chan.max_remote_balance": ("channel.remote_msat <= {v} * 1000", "int"),
    "chan.min_age": ("channel.age_blocks >= {v}", "int"),
    "chan.max_age": ("channel.age_blocks <= {v}", "int"),
    "chan.min_fee_ppm": ("channel.peer_fee_known and channel.peer_fee_ppm >= {v}", "int"),
    "chan.max_fee_ppm": ("channel.peer_fee_known and channel.peer_fee_ppm <= {v}", "int"),
    "chan.min_base_fee_msat": ("channel.peer_fee_known and channel.peer_fee_base_msat >= {v}", "int"),
    "chan.max_base_fee_msat": ("channel.peer_fee_known and channel.peer_fee_base_msat <= {v}", "int"),
    "chan.initiator": ("{not}channel.opener_local", "bool"),
    "chan.private": ("{not}channel.private", "bool"),
    "node.min_shared_ratio": ("peer.local_ratio >= {v}", "float"),
    "node.max_shared_ratio": ("peer.local_ratio <= {v}", "float"),
}
#: chan.activity_period values revops has forward windows for -> (window label, seconds).
PERIODS = {"1d": ("1d", 86_400), "24h": ("1d", 86_400), "7d": ("7d", 604_800), "168h": ("7d", 604_800),
           "30d": ("30d", 2_592_000), "720h": ("30d", 2_592_000)}
#: Activity matchers (need chan.activity_period) -> DSL template; {w} is the window, {v} the value.
ACTIVITY = {
    "chan.min_htlcs_in": "channel.in_fwds_{w} >= {v}", "chan.max_htlcs_in": "channel.in_fwds_{w} <= {v}",
    "chan.min_htlcs_out": "channel.out_fwds_{w} >= {v}", "chan.max_htlcs_out": "channel.out_fwds_{w} <= {v}",
    "chan.min_sats_in": "channel.in_volume_{w}_msat >= {v} * 1000",
    "chan.max_sats_in": "channel.in_volume_{w}_msat <= {v} * 1000",
    "chan.min_sats_out": "channel.out_volume_{w}_msat >= {v} * 1000",
    "chan.max_sats_out": "channel.out_volume_{w}_msat <= {v} * 1000",
}
#: Keys a section without strategy and without matchers hands down to every later section.
INHERITED = ("fee_ppm", "min_fee_ppm", "max_fee_ppm", "min_fee_ppm_delta", "sum_peer_chans")
#: Strategies and the keys each reads.
STRATEGY_KEYS = {
    "static": {"fee_ppm"},
    "proportional": {"min_fee_ppm", "max_fee_ppm", "sum_peer_chans"},
    "match_peer": {"fee_ppm"},
    "ignore": set(),
    "ignore_fees": set(),
}
#: Keys revops understands beside matchers and strategy keys.
GENERAL_KEYS = {"strategy", "min_fee_ppm_delta", "node.id", "chan.id", "chan.activity_period",
                "chan.activity_period_ignore_channel_age"}


@dataclass
class Imported:
    """The policy folder's files (name -> text) and what could not be imported."""

    files: dict[str, str]
    unsupported: list[str] = field(default_factory=list)
    sections: int = 0
    info: list[str] = field(default_factory=list)


def _ident(name: str) -> str:
    s = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "section"
    return s if re.match(r"[a-z_]", s) else f"s_{s}"


def _int(text: str) -> int:
    return int(text.strip())  # int() accepts 1_000, as charge-lnd's getint does


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean")


def _lnd_scid(item: str) -> str:
    """A channel id as charge-lnd accepts it (lnd's integer, BxTxO or B:T:O) in CLN form."""
    item = item.strip()
    if "x" in item or ":" in item:
        block, tx, out = (int(p) for p in re.split("[x:]", item))
    else:
        n = int(item)
        block, tx, out = n >> 40, (n >> 16) & 0xFFFFFF, n & 0xFFFF
    return f"{block}x{tx}x{out}"


def _list_items(raw: str, base: Path, what: str, section: str, notes: list[str]) -> list[str]:
    """charge-lnd's getlist (split on commas, strip), with file:// references read now."""
    items: list[str] = []
    for item in (i.strip() for i in raw.split(",")):
        if item.startswith("file://"):
            path = Path(item[len("file://"):])
            path = path if path.is_absolute() else base / path
            try:
                lines = path.read_text().replace(",", "\n").splitlines()
            except OSError as err:
                notes.append(f"[{section}] {what} = {item}: cannot read the file ({err.strerror}); "
                             "its entries are not imported")
                continue
            items += [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
        elif item:
            items.append(item)
    return items


class _Importer:
    def __init__(self, config_path: Path):
        self.path = config_path
        self.notes: list[str] = []
        self.params: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.rules: list[dict] = []
        self.delta_rules: list[dict] = []
        self.inherited: dict[str, tuple[str, str]] = {}  # key -> (value, section it came from)
        self.rule_ids: set[str] = set()
        self.info: list[str] = []  # what was carried over (imported, but worth knowing)

    def param(self, name: str, value, doc: str, kind: str = "int") -> str:
        lo = 0 if kind == "int" else None
        spec = {"type": kind, "default": value, "doc": doc}
        if kind == "int":
            spec.update({"min": min(lo, value), "max": max(2**32 - 1, value), "unit": "ppm"})
        self.params[name] = spec
        return f"params.{name}"

    def section(self, name: str, raw: configparser.SectionProxy, index: int, is_default: bool) -> None:
        ident = _ident(name)
        strategy = raw.get("strategy")
        # charge-lnd masks each matched section over the ones before: a section without
        # strategy and without matchers (it matches every channel) hands its keys down.
        sec = {**{k: v for k, (v, _) in self.inherited.items()}, **dict(raw)}
        if strategy is None and not any("." in k for k in raw) and not is_default:
            handed = [k for k in raw if k in INHERITED]
            for key in handed:
                self.inherited[key] = (raw[key], name)
            for key in raw:
                if key not in INHERITED:
                    self.notes.append(f"[{name}] {key} = {raw[key]}: not imported (revops sets the fee rate in ppm only)")
            return
        conditions: list[str] = []
        disabled: list[str] = []
        conditions += self.activity(name, raw, disabled)
        for key in raw:
            if key in ACTIVITY or key.startswith("chan.activity_period"):
                continue
            value = sec[key]
            if key in ("node.id", "chan.id"):
                items = _list_items(value, self.path.parent, key, name, self.notes)
                if key == "node.id":
                    bad = [i for i in items if not NODE_ID.match(i)]
                    for item in bad:
                        self.notes.append(f"[{name}] node.id entry {item!r} is not a node id (a missing comma?); "
                                          "charge-lnd never matches it either: left out")
                    group, field_name, values = f"{ident}_nodes", "nodes", [i for i in items if i not in bad]
                else:
                    values = []
                    for item in items:
                        try:
                            values.append(_lnd_scid(item))
                        except ValueError:
                            self.notes.append(f"[{name}] chan.id entry {item!r} is not a channel id: left out")
                    group, field_name = f"{ident}_channels", "channels"
                self.groups[group] = {field_name: values}
                conditions.append(f"groups.{group}")
            elif key in MATCHERS:
                template, kind = MATCHERS[key]
                try:
                    if kind == "bool":
                        conditions.append(template.format(**{"not": "" if _bool(value) else "not "}))
                    else:
                        number = _int(value) if kind == "int" else float(value)
                        conditions.append(template.format(v=number))
                except ValueError:
                    disabled.append(f"{key} = {value} (not a {kind})")
            elif "." in key:
                disabled.append(key)
            elif key not in GENERAL_KEYS and key not in STRATEGY_KEYS.get(strategy or "", set()) \
                    and key not in INHERITED:
                self.notes.append(f"[{name}] {key} = {value}: not imported (revops sets the fee rate in ppm only)"
                                  if strategy or key not in ("fee_ppm", "min_fee_ppm", "max_fee_ppm")
                                  else f"[{name}] {key} = {value}: a default for later sections "
                                  "(a section without strategy): not imported")
        if strategy is None:
            self.notes.append(f"[{name}] has no strategy and matchers: the defaults it sets for later "
                              "sections it matches are not imported" if not is_default else
                              "[default] has no strategy: charge-lnd does not use it; not imported")
            return
        for key in disabled:
            self.notes.append(f"[{name}] matcher {key} is not supported: the section is imported disabled "
                              "(when: false)")
        then, why = self.strategy(name, ident, strategy, sec)
        for key, (value, origin) in self.inherited.items():
            used = key in STRATEGY_KEYS.get(strategy, set()) or (key == "min_fee_ppm_delta" and then != "hold()")
            if key not in raw and used:
                self.info.append(f"[{name}] uses {key} = {value} from [{origin}], as charge-lnd hands it down")
        rule_id = ident.replace("_", "-")
        while rule_id in self.rule_ids:  # two section names that read the same once sanitised
            rule_id += "-2"
        self.rule_ids.add(rule_id)
        rule = {"id": rule_id, "stage": "default" if is_default else "charge_lnd",
                "priority": index, "why": why, "then": then,
                "doc": f"[{name}] of {self.path.name}"}
        if disabled:
            rule["when"] = "false"
        elif conditions:
            rule["when"] = " and ".join(conditions)
        self.rules.append(rule)
        delta_default = 10 if strategy == "proportional" else 0
        try:
            delta = _int(sec.get("min_fee_ppm_delta", str(delta_default)))
        except ValueError:
            self.notes.append(f"[{name}] min_fee_ppm_delta = {sec.get('min_fee_ppm_delta')}: not an integer, 0 used")
            delta = 0
        if delta > 0 and then != "hold()":
            p = self.param(f"{ident}_min_fee_ppm_delta", delta, f"[{name}] min_fee_ppm_delta: smaller changes are not sent")
            self.delta_rules.append({
                "id": f"{rule['id']}-delta", "stage": "delta",
                "when": f"decision.rule == \"{rule['id']}\" and decision.changed "
                        f"and abs(decision.fee_ppm - decision.old_fee_ppm) < {p}",
                "then": f"suppress_broadcast(\"change below min_fee_ppm_delta of [{name}]\")",
                "why": f"a change of less than {{{p}}} ppm is not sent ([{name}] min_fee_ppm_delta)"})

    def activity(self, name: str, raw, disabled: list[str]) -> list[str]:
        """Conditions of the activity matchers, over the forward window the period names."""
        keys = [k for k in raw if k in ACTIVITY]
        if not keys:
            return []
        period = raw.get("chan.activity_period", "").strip().lower()
        if period not in PERIODS:
            disabled.append(f"chan.activity_period = {period or '(missing)'} (revops has 1d, 7d and 30d windows)")
            return []
        window, seconds = PERIODS[period]
        out = []
        ignore_age = raw.get("chan.activity_period_ignore_channel_age", "false").strip().lower() in ("1", "yes", "true", "on")
        if not ignore_age:  # charge-lnd: a channel younger than the period (age x 600 s) never matches
            out.append(f"channel.age_blocks * 600 >= {seconds}")
        for key in keys:
            try:
                out.append(ACTIVITY[key].format(w=window, v=_int(raw[key])))
            except ValueError:
                disabled.append(f"{key} = {raw[key]} (not an integer)")
        return out

    def strategy(self, name: str, ident: str, strategy: str, sec) -> tuple[str, str]:
        def number(key):
            try:
                return _int(sec[key]) if key in sec else None
            except ValueError:
                self.notes.append(f"[{name}] {key} = {sec[key]}: not an integer")
                return None
        if strategy == "static" or (strategy == "match_peer" and "fee_ppm" in sec):
            fee = number("fee_ppm")
            if fee is None:
                return "hold()", f"[{name}]: {strategy} without fee_ppm leaves the fee as it is"
            p = self.param(f"{ident}_fee_ppm", fee, f"[{name}] fee_ppm")
            return f"set_fee({p})", f"[{name}]: {strategy} fee {{{p}}} ppm"
        if strategy == "proportional":
            lo, hi = number("min_fee_ppm"), number("max_fee_ppm")
            if lo is None or hi is None:
                self.notes.append(f"[{name}] proportional needs min_fee_ppm and max_fee_ppm "
                                  "(charge-lnd then leaves the channel alone): imported as hold()")
                return "hold()", f"[{name}]: proportional without bounds leaves the fee as it is"
            pl = self.param(f"{ident}_min_fee_ppm", lo, f"[{name}] proportional: fee at 100% local")
            ph = self.param(f"{ident}_max_fee_ppm", hi, f"[{name}] proportional: fee at 0% local")
            peer = sec.get("sum_peer_chans", "false").strip().lower() in ("1", "yes", "true", "on")
            ratio = "peer.local_ratio" if peer else "channel.local_ratio"
            if peer:
                self.notes.append(f"[{name}] sum_peer_chans: revops' peer.local_ratio sums our open channels "
                                  "with the peer (charge-lnd: its active ones, or all when none is active)")
            return (f"set_fee(max(0, floor({pl} + (1 - {ratio}) * ({ph} - {pl}))))",
                    f"[{name}]: proportional, {{{ratio}:.0%}} local")
        if strategy == "match_peer":
            return ("set_fee(pick(channel.peer_fee_known, channel.peer_fee_ppm, channel.fee_ppm))",
                    f"[{name}]: the peer's fee, {{channel.peer_fee_ppm}} ppm")
        if strategy in ("ignore", "ignore_fees"):
            return "hold()", f"[{name}]: {strategy}: the fee is left as it is"
        self.notes.append(f"[{name}] strategy {strategy} is not supported: imported as hold() "
                          "(the fee is left as it is)")
        return "hold()", f"[{name}]: strategy {strategy} is not supported by the import; fee left as it is"


def import_charge_lnd(config_path: str | Path) -> Imported:
    """Read a charge-lnd config and return the policy folder's files and what was not imported.

    Raises ValueError with the parser's message when the file is not a readable INI config.
    """
    path = Path(config_path)
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror}") from None
    except configparser.Error as err:  # its messages span lines: keep the first, add the line
        where = f":{err.lineno}" if getattr(err, "lineno", None) else ""
        raise ValueError(f"{path}{where}: {str(err).splitlines()[0]}") from None
    imp = _Importer(path)
    names = parser.sections()
    for index, name in enumerate(n for n in names if n != "default"):
        imp.section(name, parser[name], index + 1, False)
    if "default" in names:
        imp.section("default", parser["default"], 1, True)
    if not imp.rules:
        imp.notes.append("no section with a strategy: the policy decides nothing (every fee is left alone)")
    return Imported(_render(path, imp), imp.notes, len(imp.rules), imp.info)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _render(path: Path, imp: _Importer) -> dict[str, str]:
    lines = [f"# Imported from the charge-lnd config {path.name} by `revops import charge-lnd`.",
             "# Sections are rules of the charge_lnd stage in file order (priority): the first that",
             "# matches decides, as in charge-lnd; [default] decides when none does.",
             "#"]
    if imp.notes:
        lines.append("# NOT IMPORTED (revops cannot express these; review them):")
        lines += [f"#   - {n}" for n in imp.notes]
    else:
        lines.append("# Everything in the config was imported.")
    if imp.info:
        lines.append("# Carried over:")
        lines += [f"#   - {n}" for n in imp.info]
    lines += ["apiVersion: revops/v1", f"name: {_q(_ident(path.stem).replace('_', '-'))}",
              'version: "imported-1"', f"description: {_q('imported from charge-lnd config ' + path.name)}",
              "stages:",
              "  - name: charge_lnd",
              "    doc: the sections of the charge-lnd config; the first that matches decides",
              "    clamp_exempt: true",
              "  - name: default",
              "    doc: charge-lnd's [default] section, when no section matched",
              "    clamp_exempt: true",
              "  - name: delta",
              "    doc: min_fee_ppm_delta; a smaller change is not sent",
              "    phase: post"]
    if imp.params:
        lines.append("params:")
        for name, spec in imp.params.items():
            lines.append(f"  {name}: {json.dumps(spec)}")
    lines.append("rules:")
    for rule in imp.rules + imp.delta_rules:
        lines.append(f"  - id: {rule['id']}")
        for key in ("stage", "priority", "doc", "when", "then", "why"):
            if key in rule:
                value = rule[key]
                lines.append(f"    {key}: {value if isinstance(value, int) else _q(value)}")
    files = {"policy.yaml": "\n".join(lines) + "\n"}
    if imp.groups:
        g = ["# The node.id and chan.id lists of the charge-lnd config, as groups (groups.<name> in rules).",
             "groups:"]
        for name, body in imp.groups.items():
            g.append(f"  {name}:")
            for key, values in body.items():
                g.append(f"    {key}: [{', '.join(_q(v) for v in values)}]")
        files["groups.yaml"] = "\n".join(g) + "\n"
    return files
