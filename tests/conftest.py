"""Suite-wide: the plugin processes the tests start remember their policy-test passes in one
directory of this session (revops/policy/passed.py), not in the user's ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def passed_tests_dir(tmp_path_factory):
    before = os.environ.get("REVOPS_CACHE_DIR")
    os.environ["REVOPS_CACHE_DIR"] = str(tmp_path_factory.mktemp("revops-cache"))
    yield
    if before is None:
        os.environ.pop("REVOPS_CACHE_DIR", None)
    else:
        os.environ["REVOPS_CACHE_DIR"] = before
