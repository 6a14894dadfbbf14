"""What `revops simulate` prints for a person (issues 17 and 13 item 6), through the CLI as a
subprocess: honest table headings, a legend for every column, `-` for a fee that did not exist,
fee-update counts that agree with the summary, one verdict line, both `--compare` forms, a
progress bar on a terminal, and the bundled scenarios when a name is unknown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

from revops.sim.scenario import SCENARIO_DIR, scenario_names
from tests.plugin.conftest import ROOT

STATIC = str(ROOT / "policies/baselines/static")


def revops(*args: str, timeout: int = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **({"capture_output": True} | kw))


def churn_scenario(tmp_path) -> str:
    """The hub market with 12 channels and channels opening and closing every few hours."""
    data = yaml.safe_load((SCENARIO_DIR / "hub.yaml").read_text())
    data["name"] = "churn"
    data["lifecycle"].update(opens_per_week=28, closes_per_week=28)
    for group in data["channel_groups"]:
        group["count"] = 6
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def summary_row(out: str, label: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(label + " "))
    return line[len(label):].split()


def test_tables_say_what_they_show_and_agree_with_the_summary_and_a_verdict_ends_the_output(tmp_path):
    run = revops("simulate", "--scenario", churn_scenario(tmp_path), "--days", "1", "--compare", STATIC)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "None" not in out and " shown; -v for all)" not in out
    assert "- ➜" in out  # a channel opened during the run has no starting fee
    updates = [int(v.replace(",", "")) for v in summary_row(out, "fee updates")]
    net = [int(v.replace(",", "")) for v in summary_row(out, "net profit (sat)")]
    sections = out.split("\n\n")[1:-1]
    assert len(sections) == 3  # the summary, then one table per policy
    for section, total in zip(sections[1:], updates):
        lines = section.splitlines()
        heading, header = lines[0], next(x for x in lines if x.lstrip().startswith("scid"))
        rows = [x for x in lines if re.match(r"  \d+x\d+x\d+ ", x)]
        open_at_end = int(re.search(r"(?:all|of) (\d+) channels", heading).group(1))
        if len(rows) == open_at_end:
            assert heading.endswith(f"all {open_at_end} channels open at the end")
        else:
            assert heading.endswith(f"the {len(rows)} of {open_at_end} channels whose fee changed (-v for all)")
        legend = " ".join(lines[1:lines.index(header)])
        explained = {part for label in re.findall(r"(?:^|; )\s*([a-z][a-z /]*?):", legend)
                     for part in label.split(" / ")}
        columns = set(re.split(r"\s{2,}", header.strip())) - {"scid"}
        assert columns == {"local", "fee", "updates", "fwd out", "failed", "earned sat"} and columns <= explained
        listed = sum(int(r.split()[5]) for r in rows)  # scid local start ➜ end updates ...
        closed = re.search(r"\+ (\d+) fee updates? on channels closed during the run \(not listed\): "
                           rf"{total} in all, as in the summary", section)
        assert listed + (int(closed.group(1)) if closed else 0) == total
    assert any("closed during the run" in s for s in sections)  # the churn closed a channel that was priced
    last = out.rstrip("\n").splitlines()[-1]
    diff = net[1] - net[0]
    assert last == (f"verdict: net profit against default ({net[0]:,} sat in 1 day): "
                    f"static {diff:+,} sat ({diff / abs(net[0]):+.1%})")


def test_compare_takes_several_policies_after_one_flag_or_one_flag_each(tmp_path):
    scenario = churn_scenario(tmp_path)
    common = ("simulate", "--scenario", scenario, "--days", "0.1", "--json")
    one_flag = revops(*common, "--compare", STATIC, str(ROOT / "policies/default"))
    two_flags = revops(*common, "--compare", STATIC, "--compare", str(ROOT / "policies/default"))
    for run in (one_flag, two_flags):
        assert run.returncode == 0, run.stderr
    names = [[os.path.basename(p["policy"]) for p in json.loads(r.stdout)["policies"]] for r in (one_flag, two_flags)]
    assert names[0] == names[1] == ["default", "static", "default"]


def test_a_terminal_sees_a_progress_bar_and_a_pipe_sees_one_line_per_policy(tmp_path):
    import pty
    scenario = churn_scenario(tmp_path)
    leader, follower = pty.openpty()
    try:
        run = revops("simulate", "--scenario", scenario, "--days", "0.1", stderr=follower, stdout=subprocess.PIPE,
                     capture_output=False)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert run.returncode == 0
    bars = seen.decode().split("\r")
    assert any(re.fullmatch(r"default +\[ +\]   0%", b.strip()) for b in bars)  # before the first simulated step
    assert any(re.fullmatch(r"default +\[#{30}\] 100%", b.strip()) for b in bars)
    piped = revops("simulate", "--scenario", scenario, "--days", "0.1")
    assert piped.stderr == f"simulating default on {scenario} for 0.1 days ...\n"


def test_an_unknown_scenario_lists_the_bundled_ones():
    run = revops("simulate", "--scenario", "hubb", "--days", "1")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (f"simulate: no scenario 'hubb'; bundled scenarios: {', '.join(scenario_names())} "
                          "(or give a scenario YAML file)\n")
    assert "hub" in scenario_names() and "--days DAYS" in revops("simulate", "--help").stdout
    assert "simulated days to run (default: 30)" in " ".join(revops("simulate", "--help").stdout.split())
