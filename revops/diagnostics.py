"""Located errors: every problem in a policy, snapshot or scenario file points at file:line:col.

Codes are stable and prefixed (OPA style): policy_yaml_error, policy_schema_error,
dsl_parse_error, dsl_type_error, policy_conflict_error, snapshot_error, scenario_error,
eval_error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One error at a location. Sorts by file, line, column."""

    file: str
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.code}: {self.message}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col,
                "code": self.code, "message": self.message}


class DiagnosticError(Exception):
    """Raised with every diagnostic found; str() gives one `file:line:col: code: message` per line."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def single(cls, file: str, line: int, col: int, code: str, message: str) -> "DiagnosticError":
        return cls([Diagnostic(file, line, col, code, message)])
