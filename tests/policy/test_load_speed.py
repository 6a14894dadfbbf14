"""The fast paths of policy loading give exactly what the slow ones gave.

libyaml (yamlsrc.FAST_LOADER) must read every file to the same values and positions as the
pure-Python parser, and refuse nothing differently; policy tests share snapshot loads and
facts between cases without changing any case's result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from revops.diagnostics import DiagnosticError
from revops.policy import testing
from revops.policy import yamlsrc
from revops.policy.yamlsrc import FAST_LOADER, YList, YMap, load_yaml

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(p for folder in ("policies", "tests", "examples", "revops", "contrib") if (ROOT / folder).is_dir()
                    for pattern in ("*.yaml", "*.yml") for p in (ROOT / folder).rglob(pattern))

# Hand-written corners: every scalar style, block scalar indents and chomping, flow collections,
# multi-line quotes, non-ASCII before values (columns count characters), CRLF, a BOM, tags, and
# documents both parsers refuse.
SAMPLES = [
    "",
    "# only a comment\n",
    "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: 2026-01-01\ng: 0x1f\nh: '1'\ni: \"x\\ty\\u00e9\"\n",
    "é: ñ\n  # comment\nliste: [α, 'β', \"γ\", {δ: ε}]\n  \nnext: →x\n",
    "lit: |\n  one\n    two\n\n  three\nfold: >\n   first\n   second\n\n   third\nkeep: |+\n  k\n\nstrip: >-\n  s\n  t\nend: 1\n",
    "deep:\n  - - - x\n      - y\n    - {a: [1, 2, {b: c}]}\n  -\n    k: v\n",
    "q: 'it''s\n  multi\n  line'\nd: \"a\n  b\\\n  c\"\nplain: word\n  continued\n",
    "\ufeffbom: 1\r\nwin: |\r\n  crlf\r\n  lines\r\nlast: x\r\n",
    "tagged: !!str 12\nset: !!float 3\nbinary: !!binary aGk=\n",
    "seq:\n- a\n- b:\n    c\n-   d\n",
    "when: >-\n      channel.htlc_util > 0.5\n      and x < 1\nwhy: \"{x:.2f}\"\n",
    # refused by both: the pure-Python parser's diagnostics must come out
    "a: [1, 2\nb: 3\n",
    "a: 'unclosed\nb: c\n",
    "a: 1\na: 2\n",
    "a: &x 1\nb: *x\n",
    "key: value: other\n",
    "\tindented: tab\n",
    "a: \"bad \\q escape\"\n",
    "a: 1\n---\nb: 2\n",
    "a: !!python/object:os.system x\n",
    "a: 1\x07\n",
    "[" * 40 + "]" * 40 + "\n",
    "%YAML 1.3\n---\na: 1\n",
    "%YAML 2.0\n---\na: 1\n",
    "{a: 1, b: 2\n",
    "a: b\n  c: d\n",
    "? [complex, key]\n: v\n",
    "a: 9" + "9" * 5000 + "\n",
]


def outcome(text: str, file: str, loader) -> object:
    """Everything load_yaml returns, positions included, or the diagnostics it raises."""
    try:
        return dump(load_yaml(text, file, loader=loader))
    except DiagnosticError as err:
        return ("error", str(err))


def dump(v) -> object:
    if isinstance(v, YMap):
        return ("map", v.at, [(k, v.key_pos[k], v.value_pos[k], dump(x)) for k, x in v.items()])
    if isinstance(v, YList):
        return ("list", v.at, v.item_pos, [dump(x) for x in v])
    return (type(v).__name__, repr(v))


def test_libyaml_is_used_when_present():
    assert (FAST_LOADER is not None) == bool(getattr(yaml, "__with_libyaml__", False))


def test_the_repository_has_yaml_to_compare():
    assert len(YAML_FILES) > 50


@pytest.mark.skipif(FAST_LOADER is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_reads_every_file_as_pyyaml_does(path):
    text = path.read_text(encoding="utf-8")
    slow = outcome(text, str(path), None)
    assert outcome(text, str(path), FAST_LOADER) == slow
    if slow[0] != "error":  # read by libyaml itself, not by the fallback
        assert dump(yamlsrc._values(yamlsrc._compose(text, str(path), FAST_LOADER), text, str(path))) == slow


@pytest.mark.skipif(FAST_LOADER is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", SAMPLES)
def test_libyaml_reads_corner_cases_as_pyyaml_does(text):
    assert outcome(text, "t.yaml", FAST_LOADER) == outcome(text, "t.yaml", None)


def test_shared_snapshots_and_facts_change_no_case(tmp_path):
    """Two cases on one snapshot, the second with its own state: each gets its own facts."""
    from revops.resources import default_policy_dir
    shipped = Path(default_policy_dir()) / "tests"
    (tmp_path / "snapshot.json").write_text((shipped / "snapshot.json").read_text())
    first = testing.load_cases([shipped / "rules_mutants.yaml"])[0][0]
    scid = first.facts[0].scid
    (tmp_path / "t.yaml").write_text(
        "cases:\n"
        f"  - {{snapshot: snapshot.json, want: {{}}, facts: {{'{scid}': {{channel.fee_ppm: 7}}}}}}\n"
        f"  - {{snapshot: snapshot.json, want: {{}}, state: {{'{scid}': {{zombie: true}}}}}}\n"
        "  - {snapshot: snapshot.json, want: {}}\n"
        "  - {snapshot: missing.json, want: {}}\n"
        "  - {snapshot: missing.json, want: {}}\n")
    together, errors = testing.load_cases([tmp_path / "t.yaml"])
    assert not errors
    alone = []
    for i in range(5):  # each case in a file of its own: nothing shared
        single = tmp_path / f"single{i}.yaml"
        single.write_text("cases:\n" + (tmp_path / "t.yaml").read_text().splitlines()[i + 1] + "\n")
        alone.extend(testing.load_cases([single])[0])
    for a, b in zip(together, alone):
        assert (a.facts, a.states, a.result.failures) == (b.facts, b.states, b.result.failures)
    assert together[0].facts[0].values["channel.fee_ppm"] == 7
    assert together[2].facts[0].values["channel.fee_ppm"] != 7  # the patch did not leak
    assert together[3].result.failures and together[4].result.failures
