"""Load a policy folder: `policy.yaml` and the files it includes, decoded strictly.

Returns a `PolicySource` or raises `DiagnosticError` listing every problem found, each
at its file:line:col. Nothing here parses DSL; `compile` does that next.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from revops.diagnostics import Diagnostic, DiagnosticError
from revops.policy import host
from revops.policy.limits import MAX_EXPRESSION_CHARS, MAX_FILES, MAX_INCLUDE_CHARS, number_problem
from revops.policy.model import (API_VERSION, PARAM_TYPES, PHASES, STATE_TYPES, DslText, ParamSpec,
                                 PolicySource, RuleSource, Stage, StateSpec)
from revops.policy.yamlsrc import Pos, YList, YMap, load_yaml, read_policy_file

ROOT_FILE = "policy.yaml"
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

ROOT_KEYS = {"apiVersion", "name", "version", "description", "include", "stages", "params", "state", "rules",
             "requires"}
INCLUDED_KEYS = {"apiVersion", "description", "include", "params", "state", "rules"}
PARAM_KEYS = {"type", "default", "min", "max", "values", "unit", "doc"}
STATE_KEYS = {"type", "default", "doc"}
STAGE_KEYS = {"name", "doc", "clamp_exempt", "phase"}
RULE_KEYS = {"id", "stage", "priority", "let", "when", "then", "why", "doc"}

SCHEMA = "policy_schema_error"


class _Collector:
    def __init__(self):
        self.errors: list[Diagnostic] = []
        self.lint: list[Diagnostic] = []

    def error(self, pos: Pos, message: str, code: str = SCHEMA):
        self.errors.append(Diagnostic(pos.file, pos.line, pos.col, code, message))

    def check_keys(self, m: YMap, allowed: set[str], what: str) -> None:
        for key in m:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(m.key_pos[key], f"unknown key {key!r} in {what} (allowed: {hint})")

    def require(self, m: YMap, key: str, kind: type | tuple, what: str) -> Any:
        if key not in m:
            self.error(m.at, f"{what} is missing required key {key!r}")
            return None
        return self.typed(m, key, kind, what)

    def typed(self, m: YMap, key: str, kind: type | tuple, what: str) -> Any:
        value = m.get(key)
        if value is None and key not in m:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            self.error(m.pos(key), f"{what}.{key} must be {names}, got {_type_name(type(value))}")
            return None
        return value


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a bool",
            dict: "a mapping", YMap: "a mapping", list: "a list", YList: "a list",
            type(None): "null"}.get(kind, kind.__name__)


def load_policy(path: str | Path) -> PolicySource:
    """Load the policy at `path` (a folder holding policy.yaml, or the root file itself)."""
    path = Path(path)
    root_file = path / ROOT_FILE if path.is_dir() else path
    root_dir = root_file.parent
    c = _Collector()
    if not root_file.is_file():
        raise DiagnosticError.single(str(root_file), 1, 1, SCHEMA,
                                     f"missing file: no {ROOT_FILE} in {path}" if path.is_dir()
                                     else f"missing file: {path}")
    docs: list[tuple[Path, YMap]] = []
    files: list[tuple[str, str]] = []
    _read_tree(root_file, root_dir, c, docs, files, chain=())
    if c.errors and not docs:
        raise DiagnosticError(c.errors)

    header = docs[0][1] if docs and docs[0][0] == root_file else YMap(Pos(str(root_file), 1, 1))
    api_version = c.require(header, "apiVersion", str, "policy")
    if api_version is not None and api_version != API_VERSION:
        c.error(header.pos("apiVersion"), f"unsupported apiVersion {api_version!r}; this revops reads {API_VERSION!r}")
    version = c.require(header, "version", (str, int, float), "policy")
    name = c.typed(header, "name", str, "policy") or root_dir.resolve().name
    description = c.typed(header, "description", str, "policy") or ""

    stages = _stages(header, c)
    params: dict[str, ParamSpec] = {}
    state: dict[str, StateSpec] = {}
    rules: list[RuleSource] = []
    seen_rules: dict[str, Pos] = {}
    for _, doc in docs:
        for pname, spec in _section(doc, "params", c).items():
            _param(pname, spec, doc["params"], params, c)
        for sname, spec in _section(doc, "state", c).items():
            _state(sname, spec, doc["state"], state, c)
        rule_list = doc.get("rules")
        if rule_list is None:
            continue
        if not isinstance(rule_list, YList):
            c.error(doc.pos("rules"), "rules must be a list of rules")
            continue
        for i, raw in enumerate(rule_list):
            rule = _rule(raw, rule_list.pos(i), len(rules), c)
            if rule is None:
                continue
            if rule.id in seen_rules:
                first = seen_rules[rule.id]
                c.error(rule.pos, f"duplicate rule id {rule.id!r} (first defined at {first.file}:{first.line}:{first.col})",
                        "policy_conflict_error")
                continue
            seen_rules[rule.id] = rule.pos
            rules.append(rule)

    stage_names = {s.name for s in stages}
    for rule in rules:
        if stages and rule.stage not in stage_names:
            c.error(rule.pos, f"rule {rule.id!r} names unknown stage {rule.stage!r} (stages: {', '.join(s.name for s in stages)})")
    requires = _requires(header, params, c)
    _lint_unincluded(root_dir, files, c)
    if c.errors:
        raise DiagnosticError(c.errors)
    from revops.policy.groups import attach_groups  # groups.yaml: groups, overrides, pins (issue 13)
    return attach_groups(PolicySource(
        name=name, version=str(version), api_version=api_version, description=description,
        root=root_dir, stages=tuple(stages), params=params, state=state, rules=tuple(rules),
        files=tuple(files), digest=_digest(files), lint=tuple(sorted(c.lint)), requires=requires))


def _requires(header: YMap, params: dict[str, ParamSpec], c: _Collector) -> tuple[str, ...] | None:
    """The host features policy.yaml's `requires:` names (policy/host.py), checked against the
    params: each feature's params declared, with a type its code reads. None without the key."""
    raw = header.get("requires")
    if "requires" in header and not (isinstance(raw, YList) and all(isinstance(x, str) for x in raw)):
        c.error(header.pos("requires"), f"requires must be a list of host features ({', '.join(host.FEATURES)})")
        return None
    requires = tuple(raw) if raw is not None else None
    for i, feature in enumerate(requires or ()):
        why = host.requires_problem(feature, params)
        if why:
            c.error(raw.pos(i), why)
    in_use = requires if requires is not None else host.inferred_features(params)
    for feature in in_use:
        for hp in host.FEATURES.get(feature, ()):
            spec = params.get(hp.name)
            why = host.type_problem(hp.name, spec.type) if spec is not None else None
            if why:
                c.error(spec.pos, why)
    if requires is None:
        declared = [hp.name for f in in_use for hp in host.FEATURES[f] if hp.name in params]
        if declared:
            c.lint.append(Diagnostic(header.at.file, header.at.line, header.at.col, "policy_lint",
                                     f"no requires: key, yet revops' code reads {', '.join(declared[:3])}"
                                     f"{' and more' if len(declared) > 3 else ''} of this policy by name; "
                                     f"declare requires: [{', '.join(in_use)}] so a missing param is an error"))
    return requires


def _digest(files: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for rel, text in files:
        h.update(rel.encode() + b"\0" + text.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def _read_tree(file: Path, root_dir: Path, c: _Collector, docs, files, chain: tuple[Path, ...],
               include_pos: Pos | None = None) -> None:
    """Read `file` and, depth first, what it includes. Detects loops and missing files."""
    try:
        resolved = file.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, a name the OS refuses
        c.error(include_pos or Pos(str(file), 1, 1), f"cannot read {file}: {err}")
        return
    display = _display(file, root_dir)
    if resolved in chain:
        loop = " -> ".join(os.path.relpath(p, root_dir.resolve()) for p in (*chain, resolved))
        c.error(include_pos, f"include loop: {loop}", SCHEMA)
        return
    rel = os.path.relpath(resolved, root_dir.resolve())
    if any(rel == seen for seen, _ in files):
        return  # included twice (diamond): read once
    try:
        exists = file.is_file()
    except (OSError, ValueError) as err:  # a name too long for the file system, ...
        c.error(include_pos or Pos(display, 1, 1), f"cannot read {display}: {err}")
        return
    if not exists:
        c.error(include_pos or Pos(display, 1, 1), f"missing file: {display}")
        return
    try:
        text = read_policy_file(file, display)
    except DiagnosticError as err:
        c.errors.extend(err.diagnostics)
        return
    except (OSError, ValueError) as err:
        c.error(include_pos or Pos(display, 1, 1), f"cannot read {display}: {err}")
        return
    files.append((rel, text))
    try:
        doc = load_yaml(text, display)
    except DiagnosticError as err:
        c.errors.extend(err.diagnostics)
        return
    if not isinstance(doc, YMap):
        c.error(Pos(display, 1, 1), "a policy file must be a YAML mapping")
        return
    is_root = not chain
    c.check_keys(doc, ROOT_KEYS if is_root else INCLUDED_KEYS,
                 "the root policy file" if is_root else "an included policy file")
    if not is_root:
        api = c.require(doc, "apiVersion", str, display)
        if api is not None and api != API_VERSION:
            c.error(doc.pos("apiVersion"), f"unsupported apiVersion {api!r}; this revops reads {API_VERSION!r}")
    docs.append((file, doc))
    includes = doc.get("include")
    if includes is None:
        return
    if not isinstance(includes, YList):
        c.error(doc.pos("include"), "include must be a list of file paths")
        return
    for i, rel in enumerate(includes):
        if not isinstance(rel, str):
            c.error(includes.pos(i), "include entries must be file paths (strings)")
            continue
        problem = _include_problem(rel)
        if problem:
            c.error(includes.pos(i), problem)
            continue
        if len(files) >= MAX_FILES:
            c.error(includes.pos(i), f"too many files: a policy may include at most {MAX_FILES}")
            return
        _read_tree(file.parent / rel, root_dir, c, docs, files, (*chain, resolved), includes.pos(i))


def _include_problem(rel: str) -> str | None:
    """Why an include entry is not a usable relative path, or None (issue 12: NUL bytes and
    5,000-character names used to escape as exceptions)."""
    if len(rel) > MAX_INCLUDE_CHARS:
        return f"include path is {len(rel):,} characters; at most {MAX_INCLUDE_CHARS} are allowed"
    if not rel or any(ord(ch) < 32 or ord(ch) == 127 for ch in rel):
        return "include path is empty or holds a control character (NUL, newline, ...)"
    if os.path.isabs(rel) or rel.startswith("~"):
        return f"include path {rel!r} must be relative to the file that includes it"
    return None


def _display(file: Path, root_dir: Path) -> str:
    """Paths in messages: relative to the current directory when below it, else absolute."""
    try:
        return str(Path(os.path.abspath(file)).relative_to(Path.cwd()))
    except ValueError:
        return os.path.abspath(file)


def _lint_unincluded(root_dir: Path, files, c: _Collector) -> None:
    loaded = {(root_dir / rel).resolve() for rel, _ in files}
    for candidate in sorted(root_dir.glob("*.yaml")):
        if candidate.resolve() not in loaded:
            c.lint.append(Diagnostic(str(candidate), 1, 1, "policy_lint",
                                     "file is not included by policy.yaml and is ignored"))


def _section(doc: YMap, key: str, c: _Collector) -> YMap:
    value = doc.get(key)
    if value is None:
        return YMap(doc.at)
    if not isinstance(value, YMap):
        c.error(doc.pos(key), f"{key} must be a mapping of name -> definition")
        return YMap(doc.at)
    return value


def _stages(header: YMap, c: _Collector) -> list[Stage]:
    raw = header.get("stages")
    if raw is None:
        c.error(header.at, "policy is missing required key 'stages' (the ordered Alpha Sequence)")
        return []
    if not isinstance(raw, YList) or not raw:
        c.error(header.pos("stages"), "stages must be a non-empty list")
        return []
    stages: list[Stage] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        pos = raw.pos(i)
        if isinstance(item, str):
            item_map = YMap(pos)
            item_map["name"] = item
            item_map.value_pos["name"] = pos
            item = item_map
        if not isinstance(item, YMap):
            c.error(pos, "a stage is a name or a mapping with name, doc, clamp_exempt, phase")
            continue
        c.check_keys(item, STAGE_KEYS, "a stage")
        name = c.require(item, "name", str, "stage")
        if name is None:
            continue
        if not NAME.match(name):
            c.error(item.pos("name"), f"stage name {name!r} must match [a-z_][a-z0-9_]*")
        if name in seen:
            c.error(item.pos("name"), f"duplicate stage {name!r}", "policy_conflict_error")
            continue
        seen.add(name)
        phase = c.typed(item, "phase", str, f"stage {name}") or "decide"
        if phase not in PHASES:
            c.error(item.pos("phase"), f"stage phase must be one of {list(PHASES)}, got {phase!r}")
        stages.append(Stage(name=name, doc=c.typed(item, "doc", str, f"stage {name}") or "", pos=pos,
                            clamp_exempt=bool(c.typed(item, "clamp_exempt", bool, f"stage {name}")),
                            phase=phase))
    post_seen = False
    for stage in stages:
        if stage.phase == "post":
            post_seen = True
        elif post_seen:
            c.error(stage.pos, f"stage {stage.name!r}: decide stages must come before post stages")
    return stages


def _declaration(name: str, spec: Any, section: YMap, seen: dict, kind: str, keys: set[str],
                 types: tuple[str, ...], c: _Collector) -> tuple[str, str] | None:
    """Checks shared by params and state: the name, no duplicate, a mapping with a known
    type and a doc. Returns (type, doc), or None when the declaration is unusable."""
    if not NAME.match(name):
        c.error(section.key_pos[name], f"{kind} name {name!r} must match [a-z_][a-z0-9_]*")
        return None
    if name in seen:
        first = seen[name].pos
        c.error(section.key_pos[name], f"{kind} {name!r} is declared twice (first at "
                f"{first.file}:{first.line}:{first.col})", "policy_conflict_error")
        return None
    if not isinstance(spec, YMap):
        c.error(section.pos(name), f"{kind} {name!r} must be a mapping with type, default, doc")
        return None
    c.check_keys(spec, keys, f"{kind} {name!r}")
    what = f"{'params' if kind == 'param' else kind}.{name}"
    declared = c.require(spec, "type", str, what)
    doc = c.require(spec, "doc", str, what)
    if declared is not None and declared not in types:
        c.error(spec.pos("type"), f"{what}.type must be one of {list(types)}, got {declared!r}")
        return None
    return None if declared is None or doc is None else (declared, doc)


def _param(name: str, spec: Any, section: YMap, params: dict, c: _Collector) -> None:
    pos = section.pos(name)
    head = _declaration(name, spec, section, params, "param", PARAM_KEYS, PARAM_TYPES, c)
    if head is None:
        return
    ptype, doc = head
    lo = _number(c, spec, "min", f"params.{name}")
    hi = _number(c, spec, "max", f"params.{name}")
    values = spec.get("values")
    if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
        c.error(spec.pos("values"), f"params.{name}.values must be a list of strings")
        values = None
    if (lo is not None or hi is not None) and ptype not in ("number", "int"):
        c.error(spec.pos("min" if "min" in spec else "max"), f"params.{name}: min/max only apply to number and int params")
    if lo is not None and hi is not None and lo > hi:
        c.error(spec.pos("min"), f"params.{name}: min {lo} is above max {hi}")
    if "default" not in spec:
        c.error(spec.at, f"params.{name} is missing required key 'default'")
        return
    p = ParamSpec(name=name, type=ptype, default=None, doc=doc, pos=pos, min=lo, max=hi,
                  values=tuple(values) if values else None, unit=c.typed(spec, "unit", str, f"params.{name}") or "")
    default, why = p.check(spec["default"])
    if why:
        c.error(spec.pos("default"), f"params.{name}.default: {why}")
        return
    params[name] = ParamSpec(**{**p.__dict__, "default": default})


def _number(c: _Collector, spec: YMap, key: str, what: str) -> int | float | None:
    """A typed number that is finite and within the limits, or None (after an error)."""
    value = c.typed(spec, key, (int, float), what)
    if value is not None and number_problem(value):
        c.error(spec.pos(key), f"{what}.{key}: {number_problem(value)}")
        return None
    return value


def _short(value: Any) -> str:
    """repr() for messages, cut: a 400-digit default is quoted, not echoed whole."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 40 else f"<{len(str(abs(value)))}-digit number>"
    return text if len(text) <= 60 else text[:57] + "..."


def _state(name: str, spec: Any, section: YMap, state: dict, c: _Collector) -> None:
    pos = section.pos(name)
    head = _declaration(name, spec, section, state, "state", STATE_KEYS, STATE_TYPES, c)
    if head is None:
        return
    stype, doc = head
    default = spec.get("default", {"bool": False, "number": 0, "string": ""}[stype])
    expected = {"bool": (bool,), "number": (int, float), "string": (str,)}[stype]
    if not isinstance(default, expected) or (stype == "number" and isinstance(default, bool)):
        c.error(spec.pos("default"), f"state.{name}.default must be a {stype}, got {_short(default)}")
        return
    if number_problem(default):
        c.error(spec.pos("default"), f"state.{name}.default: {number_problem(default)}")
        return
    state[name] = StateSpec(name=name, type=stype, default=default, doc=doc, pos=pos)


def _dsl(m: YMap, key: str, what: str, c: _Collector) -> DslText | None:
    value = m.get(key)
    if isinstance(value, bool) and key == "when":
        value = "true" if value else "false"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "then":
        value = str(value)
    if not isinstance(value, str):
        c.error(m.pos(key), f"{what}.{key} must be a string, got {_type_name(type(value))}")
        return None
    if len(value) > MAX_EXPRESSION_CHARS:
        c.error(m.pos(key), f"{what}.{key} is {len(value):,} characters; at most {MAX_EXPRESSION_CHARS:,} are allowed")
        return None
    return DslText(value, m.pos(key))


def _rule(raw: Any, pos: Pos, order: int, c: _Collector) -> RuleSource | None:
    if not isinstance(raw, YMap):
        c.error(pos, "a rule must be a mapping with id, stage, when, then, why")
        return None
    c.check_keys(raw, RULE_KEYS, "a rule")
    rid = c.require(raw, "id", str, "rule")
    what = f"rule {rid!r}" if rid else "rule"
    stage = c.require(raw, "stage", str, what)
    priority = c.typed(raw, "priority", int, what)
    if priority is not None and abs(priority) > 1_000_000:
        c.error(raw.pos("priority"), f"{what}.priority must be between -1,000,000 and 1,000,000")
        priority = None
    if "then" not in raw:
        c.error(raw.at, f"{what} is missing required key 'then'")
    if "why" not in raw:
        c.error(raw.at, f"{what} is missing required key 'why'")
    if rid is not None and not RULE_ID.match(rid):
        c.error(raw.pos("id"), f"rule id {rid!r} must match [a-z0-9][a-z0-9_.-]*")
        rid = None
    when = _dsl(raw, "when", what, c) if "when" in raw else None
    then: list[DslText] = []
    raw_then = raw.get("then")
    if isinstance(raw_then, YList):
        for i, item in enumerate(raw_then):
            if isinstance(item, str) and len(item) > MAX_EXPRESSION_CHARS:
                c.error(raw_then.pos(i), f"{what}.then item is {len(item):,} characters; at most "
                        f"{MAX_EXPRESSION_CHARS:,} are allowed")
            elif isinstance(item, str):
                then.append(DslText(item, raw_then.pos(i)))
            else:
                c.error(raw_then.pos(i), f"{what}.then items must be action strings")
        if not raw_then:
            c.error(raw.pos("then"), f"{what}.then must name at least one action")
    elif "then" in raw:
        t = _dsl(raw, "then", what, c)
        if t:
            then.append(t)
    why = _dsl(raw, "why", what, c) if "why" in raw else None
    doc = c.typed(raw, "doc", str, what) or ""
    lets = _lets(raw, what, c)
    if rid is None or stage is None or not then or why is None or ("when" in raw and when is None) or lets is None:
        return None
    return RuleSource(id=rid, stage=stage, priority=100 if priority is None else priority, when=when,
                      then=tuple(then), why=why, doc=doc, pos=pos, order=order, lets=lets)


def _lets(raw: YMap, what: str, c: _Collector) -> tuple[tuple[str, DslText], ...] | None:
    """`let: {name: expression, ...}`: named values for `then` and `why`, in order."""
    section = raw.get("let")
    if section is None:
        return ()
    if not isinstance(section, YMap):
        c.error(raw.pos("let"), f"{what}.let must be a mapping of name -> expression")
        return None
    lets = []
    for name, expr in section.items():
        if not NAME.match(name):
            c.error(section.key_pos[name], f"let name {name!r} must match [a-z_][a-z0-9_]*")
            return None
        if isinstance(expr, (int, float)) and not isinstance(expr, bool):
            expr = str(expr)
        if not isinstance(expr, str) or len(expr) > MAX_EXPRESSION_CHARS:
            c.error(section.pos(name), f"{what}.let.{name} must be an expression (a string of at most "
                    f"{MAX_EXPRESSION_CHARS:,} characters)")
            return None
        lets.append((name, DslText(expr, section.pos(name))))
    return tuple(lets)
