"""The rooms talk through public doors (issue 15): no shell module reaches into the runtime's
private parts, the runtime never imports the CLI, and the plugin keeps no global state dict."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "revops"


def _tree(name: str) -> ast.AST:
    return ast.parse((ROOT / name).read_text(encoding="utf-8"))


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def test_the_runtime_never_imports_the_cli():
    assert not {n for n in _imports(_tree("runtime.py")) if n == "revops.cli" or n.startswith("revops.cli.")}


def test_accounting_uses_only_public_runtime_members():
    for path in sorted((ROOT / "accounting").glob("*.py")):
        private = [f"{path.name}:{n.lineno}: runtime.{n.attr}" for n in ast.walk(ast.parse(path.read_text()))
                   if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "runtime"
                   and n.attr.startswith("_")]
        assert not private, private


def test_the_plugin_keeps_no_global_state_and_patches_nothing_onto_the_runtime():
    tree = _tree("plugin.py")
    globals_ = [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
    assert "state" not in globals_
    patched = [f"plugin.py:{node.lineno}: runtime.{t.attr}" for node in ast.walk(tree) if isinstance(node, ast.Assign)
               for t in node.targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
               and t.value.id == "runtime"]
    assert not patched, patched


def test_every_shell_module_of_the_cycle_says_its_public_names():
    import revops.cycle
    import revops.policy.explain
    for module in (revops.cycle, revops.policy.explain):
        assert all(hasattr(module, name) for name in module.__all__)
