"""Where the files that ship with revops live (grammar, shipped policies, JSON Schema).

They sit at the top of the repository (`grammar/`, `policies/`, `schema/`) so operators
find them; an installed copy keeps the same layout under `revops/_data/`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _root(package: Path = _PACKAGE) -> Path:
    """The source tree when revops runs from a checkout, else the installed copy (setup.py)."""
    source_tree = package.parent
    if (source_tree / "grammar" / "policy.lark").exists():
        return source_tree
    return package / "_data"


def grammar_path() -> Path:
    return _root() / "grammar" / "policy.lark"


def policies_dir() -> Path:
    return _root() / "policies"


def default_policy_dir() -> Path:
    return policies_dir() / "default"


def policy_schema_path() -> Path:
    return _root() / "schema" / "policy.schema.json"
