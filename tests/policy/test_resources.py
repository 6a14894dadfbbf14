"""Shipped files are found in a checkout and in an installed wheel (revops/_data, see setup.py)."""

from __future__ import annotations

from revops import resources


def test_checkout_layout_is_preferred():
    root = resources._root()
    assert (root / "grammar" / "policy.lark").exists() and (root / "policies" / "default" / "policy.yaml").exists()


def test_installed_layout_is_used_without_a_source_tree(tmp_path):
    package = tmp_path / "site-packages" / "revops"
    (package / "_data" / "grammar").mkdir(parents=True)
    (package / "_data" / "grammar" / "policy.lark").write_text("// grammar")
    assert resources._root(package) == package / "_data"
