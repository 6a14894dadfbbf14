"""The policy as loaded from its files: frozen values with their source positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from revops.policy.limits import number_problem
from revops.policy.yamlsrc import Pos

API_VERSION = "revops/v1"
PARAM_TYPES = ("number", "int", "bool", "string")
STATE_TYPES = ("number", "bool", "string")
PHASES = ("decide", "post")


@dataclass(frozen=True)
class ParamSpec:
    """A named tunable: its type, default, allowed range and one-line doc."""

    name: str
    type: str
    default: Any
    doc: str
    pos: Pos
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None  # allowed values of a string param
    unit: str = ""

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return (coerced value, None) or (None, why the value is not allowed)."""
        if self.type == "bool":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            return None, f"expected a bool, got {value!r}"
        if self.type in ("number", "int"):
            want = "an int" if self.type == "int" else "a number"
            if isinstance(value, bool):
                return None, f"expected {want}, got {value!r}"
            if isinstance(value, str):
                try:
                    value = float(value.replace("_", "")) if self.type == "number" else int(value.replace("_", ""))
                except ValueError:
                    return None, f"expected {want}, got {value!r}"
            if not isinstance(value, (int, float)):
                return None, f"expected {want}, got {value!r}"
            too_big = number_problem(value)  # NaN, inf and 400-digit ints are not fees (issue 12)
            if too_big:
                return None, f"expected {want}: {too_big}"
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    return None, f"expected an int, got {value!r}"
                value = int(value)
            if self.min is not None and value < self.min:
                return None, f"{value} is below the minimum {self.min}"
            if self.max is not None and value > self.max:
                return None, f"{value} is above the maximum {self.max}"
            return value, None
        if not isinstance(value, str):
            return None, f"expected a string, got {value!r}"
        if self.values is not None and value not in self.values:
            return None, f"{value!r} is not one of {list(self.values)}"
        return value, None


@dataclass(frozen=True)
class StateSpec:
    """A per-channel state variable the policy reads as state.<name> and writes with actions."""

    name: str
    type: str
    default: Any
    doc: str
    pos: Pos


@dataclass(frozen=True)
class Stage:
    """One step of the Alpha Sequence. Earlier stages take precedence."""

    name: str
    doc: str
    pos: Pos
    clamp_exempt: bool = False  # its fee is final: no premiums, floors or ceilings
    phase: str = "decide"  # "post" stages run after the fee is decided and may read decision.*


@dataclass(frozen=True)
class DslText:
    """A DSL string and the YAML position of the scalar that held it."""

    text: str
    pos: Pos

    def locate(self, line: int, col: int) -> tuple[int, int]:
        """Map a 1-based line/col inside the DSL text to the line/col in the policy file."""
        p = self.pos
        if p.style == ">" and line == 1 and p.line_lengths:
            # Folding joined the content lines with single spaces: walk them to the offset.
            offset = col - 1
            for i, length in enumerate(p.line_lengths):
                if offset <= length:
                    return p.line + 1 + i, p.indent + offset + 1
                offset -= length + 1
        if p.style in ("|", ">"):
            return p.line + line, p.indent + col
        if line == 1:
            return p.line, p.col + col - 1 + (1 if p.style in ("'", '"') else 0)
        return p.line + line - 1, col


@dataclass(frozen=True)
class RuleSource:
    """A rule as written: DSL still unparsed."""

    id: str
    stage: str
    priority: int
    when: DslText | None
    then: tuple[DslText, ...]
    why: DslText
    doc: str
    pos: Pos
    order: int  # position across all files, for stable ordering
    lets: tuple[tuple[str, DslText], ...] = ()  # named expressions for then/why, in order


@dataclass(frozen=True)
class PolicySource:
    """A whole policy folder as loaded: header, params, state, stages, rules, and its files."""

    name: str
    version: str
    api_version: str
    description: str
    root: Path
    stages: tuple[Stage, ...]
    params: dict[str, ParamSpec]
    state: dict[str, StateSpec]
    rules: tuple[RuleSource, ...]
    files: tuple[tuple[str, str], ...]  # (path relative to root, content) in load order
    digest: str
    lint: tuple = field(default=())  # Diagnostics that are warnings only (exit 3 in check)
    groups: Any = None  # revops.policy.groups.GroupsConfig when the folder has a groups.yaml
    requires: tuple[str, ...] | None = None  # host features (policy/host.py); None: no requires: key
