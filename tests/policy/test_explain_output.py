"""`revops explain` output ends with a newline in every mode, for the whole snapshot and for one
channel (issue 17), so a shell prompt never lands on its last line."""

from __future__ import annotations

import json

import pytest

from tests.policy.test_cli import SNAPSHOT, revops


@pytest.mark.parametrize("mode", ["full", "fails", "notes"])
def test_explain_ends_with_a_newline_in_every_mode(mode):
    scids = [c["scid"] for c in json.loads(revops("explain", "--snapshot", str(SNAPSHOT), "--json").stdout)["channels"]]
    for extra in ([], ["--channel", scids[0]], ["--channel", scids[-1]]):
        run = revops("explain", "--snapshot", str(SNAPSHOT), "--mode", mode, *extra)
        assert run.returncode == 0, run.stderr
        assert run.stdout.endswith("\n") and not run.stdout.endswith("\n\n"), (mode, extra, run.stdout[-80:])
