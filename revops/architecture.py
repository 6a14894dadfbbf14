"""The one rule of the house, as code: the core never imports the shell.

`revops/facts` and `revops/policy` are the functional core: given the same node data, stored
history and policy they return the same facts and decisions. They must never reach the
outside world, so they may not import the shell's modules (lightningd access, actuators, the
store, the plugin, the simulator) nor the libraries that only the shell uses. The test suite
checks it (tests/house/test_import_graph.py); `violations()` is public so that the check can
be run against any tree.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CORE_PACKAGES", "SHELL_MODULES", "Violation", "violations"]

CORE_PACKAGES = ("facts", "policy")
SHELL_MODULES = ("revops.plugin", "revops.runtime", "revops.node", "revops.act", "revops.store",
                 "revops.sim", "revops.cli", "revops.metrics", "revops.accounting", "revops.lds",
                 "revops.report", "pyln", "sqlite3", "prometheus_client")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: the core imports the shell: {self.imported}"


def _imported_names(tree: ast.AST, module: str):
    """Yield (line, absolute module name) for every import in the tree, at any depth."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if _is_shell(base):
                yield node.lineno, base
            else:  # `from revops import runtime` names the module in the alias
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"


def _is_shell(name: str) -> bool:
    return any(name == shell or name.startswith(shell + ".") for shell in SHELL_MODULES)


def violations(package_root: Path) -> list[Violation]:
    """Every import of a shell module from a core package under `package_root` (the `revops/` folder)."""
    found = []
    for core in CORE_PACKAGES:
        for path in sorted((package_root / core).rglob("*.py")):
            relative = path.relative_to(package_root.parent).with_suffix("")
            module = ".".join(relative.parts)
            if path.name == "__init__.py":
                module += ".__init__"
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found.extend(Violation(path, line, name) for line, name in _imported_names(tree, module)
                         if _is_shell(name))
    return found
