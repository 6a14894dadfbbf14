"""Fixtures for store tests: a fresh Store in tmp_path, closed after the test."""

from __future__ import annotations

import pytest

from revops.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "revops.sqlite3")
    yield s
    s.close()
