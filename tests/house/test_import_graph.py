"""The core (revops/facts, revops/policy) never imports the shell; the check itself can fail."""

import shutil
from pathlib import Path

from revops.architecture import violations

PACKAGE = Path(__file__).resolve().parents[2] / "revops"


def test_the_core_never_imports_the_shell():
    assert [str(v) for v in violations(PACKAGE)] == []


def _copy_core(tmp_path: Path) -> Path:
    root = tmp_path / "revops"
    for core in ("facts", "policy"):
        shutil.copytree(PACKAGE / core, root / core)
    return root


def test_a_planted_import_of_the_runtime_is_found(tmp_path):
    root = _copy_core(tmp_path)
    target = root / "policy" / "engine.py"
    target.write_text(target.read_text() + "\n\ndef _late():\n    from revops.runtime import Runtime\n")
    found = violations(root)
    assert [(v.path.name, v.imported) for v in found] == [("engine.py", "revops.runtime")]


def test_relative_and_from_package_imports_are_resolved(tmp_path):
    root = _copy_core(tmp_path)
    (root / "facts" / "planted.py").write_text("from .. import store\nimport sqlite3\nfrom revops import sim\n")
    names = sorted(v.imported for v in violations(root))
    assert names == ["revops.sim", "revops.store", "sqlite3"]
