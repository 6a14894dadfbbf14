"""`groups.yaml`: peers and channels by name, and the params they override (issue 13).

    groups:
      exchanges:                      # groups.exchanges is a bool fact rules can test
        aliases: ["Kraken*", "River Financial"]   # exact alias, or a glob (* ? [abc])
        nodes: [03abc...]             # node ids
        channels: [850123x77x1]       # short channel ids
    overrides:                        # channel > peer > group; among groups, the first wins
      - group: exchanges
        params: {min_fee_ppm: 800}
      - {channel: 850123x77x1, pin_fee_ppm: 0}   # a pin: this fee, full stop (after safety)

The file is optional and read with the policy (load.py), so it is checked, reloaded and
digested like every other policy file. Loading it adds the `pin` stage (clamp-exempt,
right after `safety`) and its one rule, so a pin is an ordinary rule in explain.
Pure: no I/O beyond reading the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy.model import DslText, ParamSpec, PolicySource, RuleSource, Stage
from revops.policy.yamlsrc import Pos, YList, YMap, load_yaml, read_policy_file

GROUPS_FILE = "groups.yaml"
CODE = "policy_schema_error"
LINT = "policy_lint"
NODE_ID = re.compile(r"^0[23][0-9a-f]{64}$")
SCID = re.compile(r"^\d{1,8}x\d{1,8}x\d{1,5}$")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
ALIAS_MAX = 32  # BOLT 7: an alias is 32 bytes
PIN = "pin_fee_ppm"  # the pseudo-param of an override that pins the fee
PIN_MAX = 2**32 - 1  # setchannel's feeppm is a u32
PIN_STAGE = "pin"
PIN_RULE = "pin"
SCOPES = ("channel", "peer", "group")  # most specific first
FILE_KEYS = {"apiVersion", "description", "groups", "overrides"}
GROUP_KEYS = {"aliases", "nodes", "channels", "doc"}
OVERRIDE_KEYS = {"group", "peer", "channel", "params", PIN, "doc"}

#: Facts every policy with a groups file gets (besides groups.<name>), for the pin rule.
PIN_FACTS = {"pin.active": "bool", "pin.fee_ppm": "number", "pin.source": "string"}


@dataclass(frozen=True)
class Group:
    """A named set of peers and channels: by node id, alias (exact or glob) or scid."""

    name: str
    nodes: frozenset[str]
    aliases: frozenset[str]
    globs: tuple[re.Pattern, ...]
    channels: frozenset[str]
    pos: Pos

    def matches(self, peer_id: str, alias: str, scid: str) -> bool:
        return (scid in self.channels or peer_id in self.nodes or alias in self.aliases
                or any(g.match(alias) for g in self.globs))


@dataclass(frozen=True)
class Override:
    """Param values (and maybe a pinned fee) for one group, peer or channel."""

    scope: str  # channel | peer | group
    target: str  # scid, node id or group name
    params: Mapping[str, Any]  # checked and coerced against the policy's ParamSpecs
    pin_fee_ppm: int | None
    source: str  # "groups.yaml:14 (group exchanges)", or "revenue-config (peer 02ab..)"


@dataclass(frozen=True)
class GroupsConfig:
    file: str
    groups: tuple[Group, ...]
    overrides: tuple[Override, ...]
    lint: tuple[Diagnostic, ...] = field(default=())

    def fact_types(self) -> dict[str, str]:
        return {**{f"groups.{g.name}": "bool" for g in self.groups}, **PIN_FACTS}


def glob_pattern(text: str) -> re.Pattern | None:
    """The compiled glob (* any run, ? one character, [abc] [!abc] [a-z] a class), or None
    when `text` is not a well-formed glob (an unclosed or empty class)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = text.find("]", i + 2 if text[i + 1:i + 2] in ("!", "^") else i + 1)
            body = text[i + 1:end] if end != -1 else ""
            if end == -1 or body in ("", "!", "^"):
                return None
            negate = body[0] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error:  # e.g. a reversed range [z-a]
        return None


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


class _Reader:
    def __init__(self, display: str, params: Mapping[str, ParamSpec]):
        self.display = display
        self.params = params
        self.errors: list[Diagnostic] = []
        self.lint: list[Diagnostic] = []

    def error(self, pos: Pos, message: str, code: str = CODE) -> None:
        self.errors.append(Diagnostic(pos.file, pos.line, pos.col, code, message))

    def keys(self, m: YMap, allowed: set[str], what: str) -> bool:
        bad = [k for k in m if k not in allowed]
        for key in bad:
            self.error(m.key_pos[key], f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")
        return not bad

    def strings(self, m: YMap, key: str, what: str) -> list[tuple[str, Pos]]:
        value = m.get(key)
        if value is None:
            return []
        if isinstance(value, str):  # one entry may be written without a list
            return [(value, m.pos(key))]
        if not isinstance(value, YList):
            self.error(m.pos(key), f"{what}.{key} must be a list of strings")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append((item, value.pos(i)))
            else:  # e.g. a node id of digits only, which YAML reads as a number
                self.error(value.pos(i), f"{what}.{key} entries must be strings, got {item!r} "
                           "(put node ids and scids in quotes if YAML reads them as numbers)")
        return out

    def group(self, name: str, body: Any, at: Pos, value_pos: Pos) -> Group | None:
        if not NAME.match(name):
            self.error(at, f"group name {name!r} must match [a-z_][a-z0-9_]* (it is used as groups.{name})")
            return None
        if body is None:
            body = YMap(value_pos)
        if not isinstance(body, YMap):
            self.error(value_pos, f"group {name!r} must be a mapping with aliases, nodes and/or channels")
            return None
        self.keys(body, GROUP_KEYS, f"group {name!r}")
        what = f"groups.{name}"
        nodes, aliases, globs, channels = set(), set(), [], set()
        for node_id, pos in self.strings(body, "nodes", what):
            if NODE_ID.match(node_id):
                nodes.add(node_id)
            else:
                self.error(pos, f"{what}: {node_id!r} is not a node id (66 hex digits starting 02 or 03)")
        for alias, pos in self.strings(body, "aliases", what):
            if not alias:
                self.error(pos, f"{what}: an alias must not be empty")
            elif is_glob(alias):
                pattern = glob_pattern(alias)
                if pattern is None:
                    self.error(pos, f"{what}: bad glob {alias!r} (a [class] is unclosed, empty or reversed)")
                else:
                    globs.append(pattern)
            elif len(alias.encode()) > ALIAS_MAX:
                self.lint.append(Diagnostic(pos.file, pos.line, pos.col, LINT,
                                            f"{what}: alias {alias!r} is longer than {ALIAS_MAX} bytes "
                                            "and can match no node"))
            else:
                aliases.add(alias)
        for scid, pos in self.strings(body, "channels", what):
            if SCID.match(scid):
                channels.add(scid)
            else:
                self.error(pos, f"{what}: {scid!r} is not a short channel id (like 850123x77x1)")
        if not (nodes or aliases or globs or channels):
            self.lint.append(Diagnostic(at.file, at.line, at.col, LINT,
                                        f"group {name!r} matches nothing: it names no node, alias or channel"))
        return Group(name, frozenset(nodes), frozenset(aliases), tuple(globs), frozenset(channels), at)

    def override(self, raw: Any, pos: Pos, groups: dict[str, Group]) -> Override | None:
        if not isinstance(raw, YMap):
            self.error(pos, "an override is a mapping: one of group/peer/channel, and params and/or pin_fee_ppm")
            return None
        self.keys(raw, OVERRIDE_KEYS, "an override")
        scopes = [s for s in SCOPES if s in raw]
        if len(scopes) != 1:
            self.error(raw.at, "an override names exactly one of group, peer or channel"
                       + (f" (it names {', '.join(scopes)})" if scopes else ""))
            return None
        scope = scopes[0]
        target = raw[scope]
        tpos = raw.pos(scope)
        if not isinstance(target, str):
            self.error(tpos, f"override {scope} must be a string, got {target!r} (quote it if YAML reads it as a number)")
            return None
        if scope == "group" and target not in groups:
            known = ", ".join(groups) or "none defined"
            self.error(tpos, f"override of unknown group {target!r} (groups: {known})")
            return None
        if scope == "peer" and not NODE_ID.match(target):
            self.error(tpos, f"override peer {target!r} is not a node id (66 hex digits starting 02 or 03)")
            return None
        if scope == "channel" and not SCID.match(target):
            self.error(tpos, f"override channel {target!r} is not a short channel id (like 850123x77x1)")
            return None
        params: dict[str, Any] = {}
        raw_params = raw.get("params")
        if raw_params is not None and not isinstance(raw_params, YMap):
            self.error(raw.pos("params"), "override params must be a mapping of param name -> value")
            return None
        for name, value in (raw_params or {}).items():
            problem, coerced = check_param(self.params, name, value)
            if problem:
                self.error(raw_params.key_pos[name] if problem.startswith("unknown") else raw_params.pos(name),
                           f"override of {scope} {target}: {problem}")
            else:
                params[name] = coerced
        pin = None
        if PIN in raw:
            problem, pin = check_pin(raw[PIN])
            if problem:
                self.error(raw.pos(PIN), f"override of {scope} {target}: {problem}")
                return None
        if not params and pin is None and raw_params is None:
            self.error(raw.at, f"override of {scope} {target} sets nothing: give params and/or {PIN}")
            return None
        label = f"{scope} {target}" if scope != "peer" else f"peer {target[:12]}…"
        return Override(scope, target, params, pin, f"{GROUPS_FILE}:{raw.at.line} ({label})")


def check_param(params: Mapping[str, ParamSpec], name: str, value: Any) -> tuple[str | None, Any]:
    """(None, coerced value) or (why not, None) for an override of param `name`."""
    spec = params.get(name)
    if spec is None:
        import difflib
        close = difflib.get_close_matches(name, list(params), n=1)
        return f"unknown param {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""), None
    coerced, why = spec.check(value)
    return (f"{name}: {why}", None) if why else (None, coerced)


def check_pin(value: Any) -> tuple[str | None, int | None]:
    """(None, fee) or (why not, None) for a pinned fee: an integer ppm in 0..2^32-1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        return f"{PIN} must be an integer number of ppm, got {value!r}", None
    if value < 0:
        return f"{PIN} {value} is below 0: a fee cannot be negative", None
    if value > PIN_MAX:
        return f"{PIN} {value} is above {PIN_MAX} (setchannel's limit)", None
    return None, int(value)


def load_groups(root_dir: Path, params: Mapping[str, ParamSpec], display: str) -> tuple[
        GroupsConfig | None, str | None, list[Diagnostic], list[Diagnostic]]:
    """Read `groups.yaml` from the policy folder: (config, text, errors, lint); (None, None, [], [])
    when the folder has none."""
    path = root_dir / GROUPS_FILE
    if not path.is_file():
        return None, None, [], []
    try:
        text = read_policy_file(path, display)
    except DiagnosticError as err:
        return None, None, list(err.diagnostics), []
    except (OSError, UnicodeDecodeError) as err:
        return None, None, [Diagnostic(display, 1, 1, CODE, f"cannot read {display}: {err}")], []
    try:
        doc = load_yaml(text, display)
    except DiagnosticError as err:
        return None, text, list(err.diagnostics), []
    r = _Reader(display, params)
    if doc is None:
        doc = YMap(Pos(display, 1, 1))
    if not isinstance(doc, YMap):
        return None, text, [Diagnostic(display, 1, 1, CODE, "groups.yaml must be a mapping with groups and overrides")], []
    r.keys(doc, FILE_KEYS, "groups.yaml")
    groups: dict[str, Group] = {}
    raw_groups = doc.get("groups")
    if raw_groups is not None and not isinstance(raw_groups, YMap):
        r.error(doc.pos("groups"), "groups must be a mapping of group name -> {aliases, nodes, channels}")
    for name, body in (raw_groups if isinstance(raw_groups, YMap) else {}).items():
        group = r.group(name, body, raw_groups.key_pos[name], raw_groups.pos(name))
        if group is not None:
            groups[name] = group
    overrides: list[Override] = []
    raw_overrides = doc.get("overrides")
    if raw_overrides is not None and not isinstance(raw_overrides, YList):
        r.error(doc.pos("overrides"), "overrides must be a list of {group|peer|channel, params, pin_fee_ppm}")
    for i, raw in enumerate(raw_overrides if isinstance(raw_overrides, YList) else []):
        ov = r.override(raw, raw_overrides.pos(i), groups)
        if ov is not None:
            overrides.append(ov)
    _same_target_twice(overrides, raw_overrides, r)
    config = GroupsConfig(display, tuple(groups.values()), tuple(overrides), tuple(r.lint))
    return config, text, r.errors, r.lint


def _same_target_twice(overrides: list[Override], raw: Any, r: _Reader) -> None:
    """Two overrides of one channel or one peer would leave the reader guessing: an error."""
    seen: dict[tuple[str, str], str] = {}
    for ov in overrides:
        key = (ov.scope, ov.target)
        if key in seen and ov.scope != "group":
            line = int(ov.source.split(":")[1].split(" ")[0])  # "groups.yaml:LINE (...)"
            r.error(Pos(r.display, line, 3), f"a second override of {ov.scope} {ov.target} "
                    f"(the first is at {seen[key]}): merge them", "policy_conflict_error")
        seen.setdefault(key, ov.source.split(" ")[0])


def with_pin_stage(source: PolicySource, config: GroupsConfig) -> tuple[PolicySource, list[Diagnostic]]:
    """The policy with the pin stage and rule: a pinned channel's fee is set, clamp-exempt,
    by a stage right after `safety` (or first, in a policy without one)."""
    at = Pos(config.file, 1, 1)
    errors = []
    if any(s.name == PIN_STAGE for s in source.stages):
        errors.append(Diagnostic(at.file, 1, 1, "policy_conflict_error",
                                 f"the policy defines a stage {PIN_STAGE!r}; groups.yaml needs that name for pins"))
    if any(r.id == PIN_RULE for r in source.rules):
        errors.append(Diagnostic(at.file, 1, 1, "policy_conflict_error",
                                 f"the policy defines a rule {PIN_RULE!r}; groups.yaml needs that id for pins"))
    if errors:
        return source, errors
    stage = Stage(PIN_STAGE, "a fee pinned in groups.yaml or with revenue-config: wins over every fee stage "
                  "after safety; no premium, floor or ceiling applies", at, clamp_exempt=True)
    names = [s.name for s in source.stages]
    index = names.index("safety") + 1 if "safety" in names else 0
    stages = source.stages[:index] + (stage,) + source.stages[index:]
    rule = RuleSource(
        id=PIN_RULE, stage=PIN_STAGE, priority=0, when=DslText("pin.active", at),
        then=(DslText("set_fee(pin.fee_ppm)", at),), why=DslText("pinned at {pin.fee_ppm} ppm by {pin.source:<}", at),
        doc="the fee of a pinned channel (groups.yaml overrides, pin_fee_ppm)", pos=at, order=len(source.rules))
    return replace(source, stages=stages, rules=source.rules + (rule,)), []


def attach_groups(source: PolicySource) -> PolicySource:
    """The policy with its groups.yaml read, checked and applied (pin stage); raises
    DiagnosticError listing every problem. A folder without groups.yaml is returned as is."""
    import os
    from revops.policy.load import _digest, _display
    display = _display(source.root / GROUPS_FILE, source.root)
    config, text, errors, lint = load_groups(source.root, source.params, display)
    if text is None and not errors:
        return source
    if not errors and config is not None:
        source, errors = with_pin_stage(source, config)
    if errors:
        raise DiagnosticError(errors)
    files = source.files + ((os.path.relpath(source.root / GROUPS_FILE, source.root), text),)
    # groups.yaml is read without being included: it is not "ignored", so drop that lint.
    groups_path = (source.root / GROUPS_FILE).resolve()
    kept = tuple(d for d in source.lint if Path(d.file).resolve() != groups_path)
    return replace(source, groups=config, files=files, digest=_digest(list(files)),
                   lint=tuple(sorted(kept + tuple(lint))))
