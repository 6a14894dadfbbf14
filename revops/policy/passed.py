"""Remembers the policies that passed their tests, so a restart does not run them again.

Reload runs a policy's tests before the policy may decide anything (reload.verdict): 4-5 s
for the default policy's 256 cases under both matchers, at every plugin start. Their outcome
is a pure function of their inputs: the policy (its digest), the param overrides and fact
types it was prepared with, its test files and the snapshots they read, and revops' own code
(engine, facts, grammar) with the durable-rules, lark, PyYAML and Python versions. A pass is
recorded under a key of these, one small JSON file per key holding the count of cases passed
and the hash of every test file and snapshot read; a lookup checks those hashes again. A
failure is never recorded: a failing policy runs its tests every time and says why.

Where: `$REVOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/revops`, else `~/.cache/revops`, under
`policy-tests/`. `REVOPS_CACHE_DIR=off` turns it off. A directory that cannot be written or an
entry that cannot be read only means the tests run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from revops.resources import grammar_path

_PACKAGE = Path(__file__).resolve().parents[1]  # the revops package
#: Records kept (~1 KB each); the oldest go first.
KEEP = 200
_code: str | None = None


def code_fingerprint() -> str:
    """A hash of what decides a test's outcome besides the policy: revops' modules, the
    grammar, and the durable-rules, lark, PyYAML and Python versions (once per process)."""
    global _code
    if _code is None:
        h = hashlib.sha256()
        for path in sorted(_PACKAGE.rglob("*.py")) + [grammar_path()]:
            h.update(str(path.relative_to(path.parents[1])).encode() + b"\0" + path.read_bytes() + b"\0")
        for package in ("durable-rules", "lark", "PyYAML"):  # the matcher, the DSL and the file parsers
            try:
                h.update(f"{package} {metadata.version(package)};".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{package} ?;".encode())
        h.update(f"python {sys.version}".encode())
        _code = h.hexdigest()
    return _code


def _file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _named(path: Path, root: Path) -> str:
    """A file's name relative to the policy folder when inside it (else absolute)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


class PassedTests:
    """The record of passes in one directory (None: remembering is off)."""

    def __init__(self, directory: Path | None):
        self.directory = directory

    @classmethod
    def default(cls) -> "PassedTests":
        where = os.environ.get("REVOPS_CACHE_DIR")
        if where == "off":
            return cls(None)
        if not where:
            where = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "revops")
        return cls(Path(where) / "policy-tests")

    def key(self, digest: str, root: Path, overrides: Mapping[str, Any], fact_types: Mapping[str, str] | None,
            test_files: list[Path]) -> str:
        """The key of a pass: by content, not by place (a copy of the folder elsewhere has the
        same outcome; its snapshots are checked at lookup)."""
        doc = [code_fingerprint(), digest, [(_named(p, root), _file_hash(p)) for p in test_files],
               json.dumps(overrides, sort_keys=True, default=str),
               json.dumps(fact_types or {}, sort_keys=True, default=str)]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()

    def passed(self, key: str, root: Path) -> int | None:
        """The count of cases passed under `key`, if that pass is recorded and none of the files
        it read (named from the policy folder `root`) differs now; None otherwise."""
        if self.directory is None:
            return None
        try:
            entry = json.loads((self.directory / f"{key}.json").read_text())
            inputs, count = entry["inputs"], entry["passed"]
            if not isinstance(inputs, dict) or not isinstance(count, int):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if any(_file_hash(root / p) != h for p, h in inputs.items()):
            return None
        return count

    def record(self, key: str, passed: int, root: Path, inputs: list[Path]) -> None:
        """Records a pass (atomically: a reader sees the whole entry or none)."""
        if self.directory is None:
            return
        hashes = {_named(p, root): _file_hash(p) for p in inputs}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"passed": passed, "inputs": hashes}))
            os.replace(tmp, self.directory / f"{key}.json")
            self._trim()
        except OSError:
            pass  # not remembered: the tests run again next time

    def _trim(self) -> None:
        """Keeps the KEEP newest records (every edit of a policy makes a new key)."""
        entries = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
