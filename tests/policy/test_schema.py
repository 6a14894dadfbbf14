"""The JSON Schema shipped for editors accepts the shipped policies and rejects structural mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from revops.resources import policies_dir, policy_schema_path

SCHEMA = json.loads(policy_schema_path().read_text())
BAD = Path(__file__).resolve().parents[1] / "policies" / "bad"


POLICY_FILES = sorted(p for p in policies_dir().rglob("*.yaml") if p.parent.name != "tests")


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: str(p.relative_to(policies_dir())))
def test_shipped_policy_files_validate(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


@pytest.mark.parametrize("case", ["unknown_key", "wrong_type", "missing_then", "bad_api_version"])
def test_structural_mistakes_are_rejected(case):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load((BAD / case / "policy.yaml").read_text()), SCHEMA)
