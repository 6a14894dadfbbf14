"""Read YAML so that every value remembers where it came from.

PyYAML's composer gives nodes with marks; we turn them into plain dicts/lists/scalars,
keeping each value's position beside it (`YMap.pos(key)`, `YList.pos(i)`), the way
Prometheus' rulefmt keeps yaml.Node marks. Duplicate keys are errors (PyYAML silently
keeps the last one).

Before composing, one pass over PyYAML's event stream (iterative, so it cannot overflow the
stack) refuses what a policy never needs and an attacker would use (issue 12): anchors and
aliases (the "billion laughs" and `&r [*r]` recursion) and nesting deeper than
MAX_YAML_DEPTH. Files above MAX_FILE_BYTES are refused before they are parsed.

When PyYAML has libyaml, its C parser reads the file first (about ten times faster; policy
tests load thousands of lines at every start). Its nodes carry the same marks; anything it
refuses is read again by the pure-Python parser, so every diagnostic is the same as without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from revops.diagnostics import DiagnosticError
from revops.policy.limits import MAX_FILE_BYTES, MAX_YAML_DEPTH

# PyYAML reports an unclosed quote or bracket where it gave up, often the line after the
# mistake or the end of the file; its context mark is where the scalar or collection opened.
_OPENED_AT_CONTEXT = {
    "while scanning a quoted scalar": "unclosed quote: this string is never closed",
    "while parsing a flow sequence": "unclosed '[': this list is never closed with ']'",
    "while parsing a flow mapping": "unclosed '{': this mapping is never closed with '}'",
}

FAST_LOADER = getattr(yaml, "CSafeLoader", None)  # None when PyYAML was built without libyaml


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a file, with what the loader needs to offset DSL text."""

    file: str
    line: int
    col: int
    style: str | None = None  # scalar style: None (plain), "'", '"', "|", ">"
    indent: int = 0  # for block scalars: the column where their content lines start
    line_lengths: tuple[int, ...] = ()  # for folded (>) scalars: length of each content line


class YMap(dict):
    """A mapping whose keys and values know their positions."""

    def __init__(self, pos: Pos):
        super().__init__()
        self.at = pos
        self.key_pos: dict[str, Pos] = {}
        self.value_pos: dict[str, Pos] = {}

    def pos(self, key: str) -> Pos:
        return self.value_pos.get(key, self.at)


class YList(list):
    """A sequence whose items know their positions."""

    def __init__(self, pos: Pos):
        super().__init__()
        self.at = pos
        self.item_pos: list[Pos] = []

    def pos(self, i: int) -> Pos:
        return self.item_pos[i] if i < len(self.item_pos) else self.at


def _pos(node, file: str, lines: list[str]) -> Pos:
    mark = node.start_mark
    # `or None`: libyaml's plain scalars have style "", PyYAML's have None.
    style = (node.style or None) if isinstance(node, ScalarNode) else None
    indent = 0
    lengths: tuple[int, ...] = ()
    if style in ("|", ">"):
        # Content starts on the next line; its indentation is that line's leading spaces.
        nxt = mark.line + 1
        while nxt < len(lines) and not lines[nxt].strip():
            nxt += 1
        if nxt < len(lines):
            indent = len(lines[nxt]) - len(lines[nxt].lstrip(" "))
        if style == ">":
            end = node.end_mark.line
            lengths = tuple(len(line[indent:].rstrip()) for line in lines[mark.line + 1:end + 1])
    return Pos(file, mark.line + 1, mark.column + 1, style, indent, lengths)


def read_policy_file(path, display: str) -> str:
    """The text of one policy file, read without ever holding more than a policy may be: a file
    far above MAX_FILE_BYTES (a log or a disk image named by mistake) is refused from its first
    bytes, not read whole. OSError and UnicodeDecodeError pass to the caller ("cannot read")."""
    most = MAX_FILE_BYTES * 4  # UTF-8 needs at most 4 bytes a character
    with open(path, "rb") as f:
        data = f.read(most + 1)
    if len(data) > most:
        raise DiagnosticError.single(display, 1, 1, "policy_yaml_error",
                                     f"file is over {most:,} bytes; a policy file may hold at most "
                                     f"{MAX_FILE_BYTES:,} characters")
    return data.decode("utf-8")


def load_yaml(text: str, file: str, loader=FAST_LOADER):
    """Return the document as YMap/YList/scalars, or raise DiagnosticError(policy_yaml_error).
    `loader=None` reads with the pure-Python parser only."""
    if len(text) > MAX_FILE_BYTES:
        raise DiagnosticError.single(file, 1, 1, "policy_yaml_error",
                                     f"file is {len(text):,} characters; a policy file may hold at most "
                                     f"{MAX_FILE_BYTES:,}")
    if loader is not None:
        try:
            return _values(_compose(text, file, loader), text, file)
        except Exception:  # noqa: BLE001 — any refusal is read again below, for today's exact diagnostic
            pass
    try:
        node = _compose(text, file, yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line, col, problem = _locate(err, text)
        raise DiagnosticError.single(file, line, col, "policy_yaml_error", problem) from None
    except yaml.YAMLError as err:
        raise DiagnosticError.single(file, 1, 1, "policy_yaml_error", str(err)) from None
    return _values(node, text, file)


def _compose(text: str, file: str, loader):
    _prescan(text, file, loader)
    return yaml.compose(text, Loader=loader)


def _values(node, text: str, file: str):
    if node is None:
        return None
    lines = text.split("\n")
    constructor = yaml.SafeLoader("")  # only used to resolve scalar tags to Python values
    return _convert(node, file, lines, constructor)


def _prescan(text: str, file: str, loader) -> None:
    """Refuse anchors, aliases and deep nesting, reading events one at a time (no recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise DiagnosticError.single(
                file, mark.line + 1, mark.column + 1, "policy_yaml_error",
                "YAML anchors and aliases (&name, *name) are not allowed in a policy; write the value out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise DiagnosticError.single(file, mark.line + 1, mark.column + 1, "policy_yaml_error",
                                             f"nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _locate(err: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Line, column and message of a YAML error, at the line of the mistake (issue 17)."""
    problem = err.problem or str(err)
    if err.context:
        problem = f"{problem} ({err.context})"
    pm, cm = err.problem_mark, err.context_mark
    opened = _OPENED_AT_CONTEXT.get(err.context or "")
    if opened and pm is not None and cm is not None and pm.line > cm.line:
        return cm.line + 1, cm.column + 1, f"{opened} (PyYAML stopped at line {pm.line + 1}: {err.problem})"
    runaway = _runaway_quote(text, pm) if pm is not None else None
    if runaway is not None:
        return (runaway.line + 1, runaway.column + 1,
                f"unclosed quote: this string runs on to line {pm.line + 1}, where PyYAML stopped: {problem}")
    mark = pm or cm
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return line, col, problem


def _runaway_quote(text: str, problem_mark):
    """The start mark of a quoted string that spans lines and ends where the parser then
    failed: its closing quote is most likely missing and a later quote closed it."""
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            start, end = token.start_mark, token.end_mark
            if end.index > problem_mark.index:
                return None
            if (isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
                    and start.line < end.line == problem_mark.line):
                return start
    except yaml.YAMLError:
        return None
    return None


def _convert(node, file, lines, constructor):
    if isinstance(node, MappingNode):
        out = YMap(_pos(node, file, lines))
        for key_node, value_node in node.value:
            key = _convert(key_node, file, lines, constructor)
            key_pos = _pos(key_node, file, lines)
            if not isinstance(key, str):
                raise DiagnosticError.single(file, key_pos.line, key_pos.col, "policy_yaml_error",
                                             f"keys must be strings, got {key!r}")
            if key in out:
                raise DiagnosticError.single(file, key_pos.line, key_pos.col, "policy_yaml_error",
                                             f"duplicate key {key!r}")
            out[key] = _convert(value_node, file, lines, constructor)
            out.key_pos[key] = key_pos
            out.value_pos[key] = _pos(value_node, file, lines)
        return out
    if isinstance(node, SequenceNode):
        out = YList(_pos(node, file, lines))
        for item in node.value:
            out.append(_convert(item, file, lines, constructor))
            out.item_pos.append(_pos(item, file, lines))
        return out
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as err:
        pos = _pos(node, file, lines)
        raise DiagnosticError.single(file, pos.line, pos.col, "policy_yaml_error", str(err.problem)) from None
    except (ValueError, OverflowError) as err:  # e.g. an integer over Python's 4,300-digit limit
        pos = _pos(node, file, lines)
        raise DiagnosticError.single(file, pos.line, pos.col, "policy_yaml_error",
                                     f"cannot read value: {str(err).split(';')[0]}") from None
