"""revops-snapshot/1 loading: the good example, and every kind of malformed or truncated file
with the line:col each problem must be reported at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revops.diagnostics import DiagnosticError
from revops.facts.snapshot import (FORMAT, MAX_ERRORS, Snapshot, load_snapshot, parse_snapshot,
                                   snapshot_to_json)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "snapshot.json"

# Line numbers are on the left of each line (1-based), columns are 1-based too.
MINIMAL = """{
  "format": "revops-snapshot/1",
  "captured_at": 1767225600,
  "rpc": {
    "getinfo": {"id": "03aa", "blockheight": 901234},
    "listpeerchannels": {"channels": [
      {"peer_id": "02bb", "state": "CHANNELD_NORMAL", "short_channel_id": "880001x1x0"}
    ]},
    "listforwards": {"forwards": [
      {"in_channel": "880001x1x0", "in_msat": 1000, "status": "settled", "received_time": 1767200000}
    ]},
    "feerates": {"perkw": {"opening": 2500}},
    "listfunds": {"outputs": [], "channels": []},
    "listpeers": {"peers": []}
  },
  "state": {"880001x1x0": {"fee_ppm_last": 250, "fire_sale": true, "note": "x"}}
}
"""


def errors(text: str) -> list[tuple[int, int, str]]:
    """Returns (line, col, message) of every diagnostic parse_snapshot raises for text."""
    with pytest.raises(DiagnosticError) as ei:
        parse_snapshot(text, "snap.json")
    for d in ei.value.diagnostics:
        assert d.code == "snapshot_error" and d.file == "snap.json"
    return [(d.line, d.col, d.message) for d in ei.value.diagnostics]


def at(text: str, line: int, col: int) -> str:
    """Returns the text starting at line:col (to check a position points at the right token)."""
    return text.splitlines()[line - 1][col - 1:]


def test_minimal_snapshot_loads():
    s = parse_snapshot(MINIMAL, "snap.json")
    assert s.captured_at == 1767225600
    assert s.source == "snap.json"
    assert set(s.rpc) == {"getinfo", "listpeerchannels", "listforwards", "feerates",
                          "listfunds", "listpeers"}
    assert s.state["880001x1x0"] == {"fee_ppm_last": 250, "fire_sale": True, "note": "x"}


def test_state_is_optional_and_extra_rpc_methods_are_kept():
    doc = json.loads(MINIMAL)
    del doc["state"]
    doc["rpc"]["bkpr-listincome"] = {"income_events": []}
    doc["rpc"]["sling-stats"] = []
    s = parse_snapshot(json.dumps(doc), "x")
    assert s.state == {}
    assert s.rpc["sling-stats"] == []


def test_example_loads_and_round_trips():
    s = load_snapshot(EXAMPLE)
    assert s.source == str(EXAMPLE)
    doc = snapshot_to_json(s)
    assert doc["format"] == FORMAT
    again = parse_snapshot(json.dumps(doc), "<again>")
    assert snapshot_to_json(again) == doc
    assert json.loads(EXAMPLE.read_text()) == doc


def test_snapshot_to_json_of_a_live_snapshot():
    s = Snapshot(captured_at=5.0, rpc={"getinfo": {}}, state={}, source="<live>")
    assert snapshot_to_json(s) == {"format": FORMAT, "captured_at": 5.0,
                                   "rpc": {"getinfo": {}}, "state": {}}


@pytest.mark.parametrize("old,new,line,col,token,fragment", [
    ('"revops-snapshot/1"', '"revops-snapshot/2"', 2, 13, '"revops-snapshot/2"',
     'format must be "revops-snapshot/1", got "revops-snapshot/2"'),
    ('"captured_at": 1767225600', '"captured_at": "yesterday"', 3, 18, '"yesterday"',
     "captured_at must be a number, got string"),
    ('{"channels": [', '{"channels": 7, "was": [', 6, 38, "7",
     "rpc.listpeerchannels.channels must be an array, got integer"),
    ('{"peer_id": "02bb", ', '{', 7, 7, '{"state"',
     'missing required key "peer_id" in rpc.listpeerchannels.channels[0]'),
    ('"state": "CHANNELD_NORMAL", ', '', 7, 7, '{"peer_id"',
     'missing required key "state" in rpc.listpeerchannels.channels[0]'),
    ('"short_channel_id": "880001x1x0"}', '"short_channel_id": 880001}', 7, 75, "880001",
     "rpc.listpeerchannels.channels[0].short_channel_id must be a string, got integer"),
    ('"status": "settled"', '"status": "done"', 10, 63, '"done"',
     "rpc.listforwards.forwards[0].status must be one of"),
    ('"in_msat": 1000', '"in_msat": "1000msat"', 10, 47, '"1000msat"',
     "rpc.listforwards.forwards[0].in_msat must be an integer, got string"),
    (',\n    "listpeers": {"peers": []}', '', 4, 10, "{",
     'missing required key "listpeers" in rpc'),
    ('"getinfo": {"id": "03aa", "blockheight": 901234}', '"getinfo": []', 5, 16, "[]",
     "rpc.getinfo must be an object, got array"),
    ('{"id": "03aa", "blockheight": 901234}', '{"id": "03aa", "blockheight": 9.5}', 5, 46, "9.5",
     "rpc.getinfo.blockheight must be an integer, got number"),
    ('"fire_sale": true', '"fire_sale": [true]', 16, 62, "[true]",
     "state.880001x1x0.fire_sale must be a number, bool or string, got array"),
    ('"state": {"880001x1x0": {', '"stat": {"880001x1x0": {', 16, 3, '"stat"',
     'unknown top-level key "stat"'),
    ('"outputs": []', '"outputs": {}', 13, 30, "{}",
     "rpc.listfunds.outputs must be an array, got object"),
])
def test_structural_errors_are_located(old, new, line, col, token, fragment):
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    errs = errors(text)
    assert len(errs) == 1, errs
    (eline, ecol, msg), = errs
    assert fragment in msg
    assert (eline, ecol) == (line, col), (msg, at(text, eline, ecol))
    assert at(text, eline, ecol).startswith(token)


@pytest.mark.parametrize("text,line,col,fragment", [
    ("", 1, 1, "invalid JSON: Expecting value"),
    ("{\n  \"format\": \"revops-snapshot/1\",\n}", 3, 1, "invalid JSON: Expecting property name"),
    ('{"format": "revops-snapshot/1" "rpc": {}}', 1, 32, "invalid JSON: Expecting ',' delimiter"),
    ("[]", 1, 1, "<top level> must be an object, got array"),
    ("null", 1, 1, "<top level> must be an object, got null"),
])
def test_syntax_and_top_level_errors(text, line, col, fragment):
    (eline, ecol, msg), = errors(text)
    assert (eline, ecol) == (line, col)
    assert msg.startswith(fragment)


@pytest.mark.parametrize("cut_line", [1, 5, 7, 10, 15, 16])
def test_truncated_snapshot_points_at_the_end(cut_line):
    lines = MINIMAL.splitlines(keepends=True)
    text = "".join(lines[:cut_line])  # ends with a newline: the error is at the start of the next line
    (eline, ecol, msg), = errors(text)
    assert msg.startswith("invalid JSON:")
    assert (eline, ecol) == (cut_line + 1, 1)


def test_truncated_mid_line():
    text = MINIMAL[:MINIMAL.index('"settled"') + 4]  # inside a string
    (eline, ecol, msg), = errors(text)
    assert msg.startswith("invalid JSON: Unterminated string")
    assert (eline, ecol) == (10, 63)


def test_truncated_example_file():
    full = EXAMPLE.read_text()
    text = full[: len(full) // 2]
    (eline, ecol, msg), = errors(text)
    assert msg.startswith("invalid JSON:")
    assert eline >= text.count("\n")


def test_missing_keys_all_reported_once_each():
    text = '{\n "format": "revops-snapshot/1",\n "rpc": {}\n}'
    errs = errors(text)
    msgs = [m for _, _, m in errs]
    assert 'missing required key "captured_at" in <top level>' in msgs
    for m in ("getinfo", "listpeerchannels", "listforwards", "feerates", "listfunds", "listpeers"):
        assert f'missing required key "{m}" in rpc' in msgs
    assert all((l, c) == (1, 1) for l, c, m in errs if "captured_at" in m)
    assert all((l, c) == (3, 9) for l, c, m in errs if "in rpc" in m)


def test_several_problems_sorted_one_line_each():
    text = (MINIMAL.replace('"revops-snapshot/1"', '"v0"')
            .replace('"in_msat": 1000', '"in_msat": null')
            .replace('{"peer_id": "02bb", ', '{'))
    with pytest.raises(DiagnosticError) as ei:
        parse_snapshot(text, "snap.json")
    lines = str(ei.value).splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["2", "7", "10"]
    assert all(ln.startswith("snap.json:") and ": snapshot_error: " in ln for ln in lines)


def test_error_count_is_capped():
    doc = json.loads(MINIMAL)
    doc["rpc"]["listforwards"]["forwards"] = [{"in_channel": 1}] * 40  # 4 problems each
    errs = errors(json.dumps(doc, indent=1))
    assert len(errs) == MAX_ERRORS + 1
    assert errs[-1][2].endswith("more problems not shown") or any(
        m.endswith("more problems not shown") for _, _, m in errs)


def test_positions_in_compact_json_and_duplicate_paths():
    doc = json.loads(MINIMAL)
    doc["rpc"]["listforwards"]["forwards"].append({"in_channel": "1x1x1", "in_msat": 5,
                                                   "status": "settled", "received_time": "now"})
    text = json.dumps(doc)  # one line
    (line, col, msg), = errors(text)
    assert line == 1
    assert text[col - 1:].startswith('"now"')
    assert "forwards[1].received_time must be a number" in msg


def test_bool_is_not_a_number():
    (line, col, msg), = errors(MINIMAL.replace("1767225600", "true"))
    assert (line, col) == (3, 18) and "got bool" in msg


def test_load_snapshot_missing_file(tmp_path):
    with pytest.raises(DiagnosticError) as ei:
        load_snapshot(tmp_path / "nope.json")
    d, = ei.value.diagnostics
    assert (d.line, d.col, d.code) == (1, 1, "snapshot_error")
    assert "cannot read snapshot" in d.message


def test_load_snapshot_reports_the_path(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(MINIMAL.replace('"revops-snapshot/1"', '"x"'))
    with pytest.raises(DiagnosticError) as ei:
        load_snapshot(p)
    assert str(ei.value).startswith(f"{p}:2:13: snapshot_error: ")


def test_non_finite_numbers_are_rejected():
    (line, col, msg), = errors(MINIMAL.replace("1767225600,", "NaN,"))
    assert (line, col) == (3, 18) and "got non-finite number nan" in msg
