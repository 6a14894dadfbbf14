"""`revops report`: an HTML report with charts from a simulated run's database, rendered by
headless Chromium; and clear errors for a missing or empty database."""

from __future__ import annotations

import calendar
import re
import subprocess
import time

import pytest

from revops.cli import main
from revops.store import Store
from tests.observe.png import read_png
from tests.observe.system import require_binary


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "report.html"
    assert main(["report", "--scenario", "hub", "--days", "1", "-o", str(out)]) == 0
    return out


def chromium(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    binary = require_binary("chromium", "chromium-browser")
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1000,2400", *args], capture_output=True, timeout=timeout_s)


def test_the_report_has_the_four_charts_with_data(report):
    page = report.read_text()
    for title in ("Fee per channel over time", "Revenue and spend", "Budget burn", "Decisions by rule"):
        assert f'aria-label="{title}"' in page
    assert "no data for this chart" not in page
    assert len(re.findall(r"<path d=\"M", page)) >= 3  # fee lines
    assert page.count("<rect") > 30  # bars
    assert re.search(r"routing income<b>[1-9][\d,]* sat</b>", page)


CHARTS = ("Fee per channel over time", "Revenue and spend", "Budget burn", "Cumulative rebalance spend",
          "Decisions by rule")
# Reads, once the page has laid out, where each chart's plot area is on screen (CSS px, which
# are screenshot px at scale 1). Only the test's copy of the page gets it: the report has no JS.
PROBE = """<script>addEventListener("load", () => { for (const r of document.querySelectorAll("rect.plot")) {
  const b = r.getBoundingClientRect();
  r.closest("svg").setAttribute("data-plot", [b.left, b.top, b.right, b.bottom].map(Math.round).join(","));
}});</script>"""


def period(page: str) -> tuple[int, int]:
    found = re.search(r"<p>(\d{4}-\d\d-\d\d \d\d:\d\d) UTC to (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", page)
    return tuple(calendar.timegm(time.strptime(v, "%Y-%m-%d %H:%M")) for v in found.groups())


def test_chromium_renders_the_report(report, tmp_path):
    dom = chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rendered = dom.stdout.decode()
    for title in CHARTS:  # each chart is drawn, or a sentence says there was nothing to draw
        assert f'aria-label="{title}"' in rendered
    sentences = re.findall(r'<p class="nothing" role="note" aria-label="([^"]+)">([^<]+)</p>', rendered)
    assert rendered.count("<svg") == len(CHARTS) - len(sentences)
    if "rebalance spend<b>0 sat</b>" in rendered:  # nothing rebalanced: a sentence, not an empty 0-1 axis
        assert ("Cumulative rebalance spend", "Nothing was rebalanced from "
                f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(period(rendered)[0]))} UTC to "
                f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(period(rendered)[1]))} UTC: 0 sat spent.") in sentences
    shot, blank = tmp_path / "report.png", tmp_path / "blank.png"
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body><h1>revops report</h1></body></html>")
    assert chromium(f"--screenshot={shot}", report.as_uri()).returncode == 0
    assert chromium(f"--screenshot={blank}", (tmp_path / "blank.html").as_uri()).returncode == 0
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 5 * len(blank.read_bytes()), "the charts drew something"


def test_every_time_axis_is_labelled_and_ticks_round_times_within_the_period(report):
    page = report.read_text()
    start, end = period(page)
    charts = re.findall(r'<svg [^>]*aria-label="([^"]+)"(.*?)</svg>', page, re.S)
    timed = [(title, body) for title, body in charts if title != "Decisions by rule"]
    assert len(timed) >= 3
    ticks = [[int(t) for t in re.findall(r'class="tick" data-t="(\d+)"', body)] for _, body in timed]
    for (title, body), marks in zip(timed, ticks):
        assert 'class="x-label"' in body and ">time (UTC)</text>" in body, title
        assert marks == ticks[0], title  # the same ticks on every time axis
        assert len(marks) >= 3 and all(start <= t <= end for t in marks), (title, marks, start, end)
        assert len({b - a for a, b in zip(marks, marks[1:])}) == 1 and all(t % 3600 == 0 for t in marks)
    assert ">decisions (stacked by outcome)</text>" in dict(charts)["Decisions by rule"]


def test_a_person_sees_every_chart_use_its_plot(report, tmp_path):
    """In the screenshot, each chart's data reaches at least half of its plot's height (the
    decisions chart: half its width): axes scaled to the data, a budget line that does not
    flatten the bars (issue 17). The screenshot stays in tmp_path for a person to look at."""
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium("--dump-dom", probe.as_uri())
    plots = dict(re.findall(r'aria-label="([^"]+)"[^>]*data-plot="([\d,]+)"', dom.stdout.decode()))
    assert {"Fee per channel over time", "Revenue and spend", "Budget burn", "Decisions by rule"} <= set(plots)
    shot = tmp_path / "report.png"
    assert chromium(f"--screenshot={shot}", report.as_uri()).returncode == 0
    width, _, bpp, rows = read_png(shot)
    for title, box in plots.items():
        left, top, right, bottom = (int(v) for v in box.split(","))
        inside = [(x, y) for y in range(top + 2, bottom - 1) for x in range(left + 2, right - 1)
                  if max(px := rows[y][x * bpp:x * bpp + 3]) - min(px) >= 80]  # coloured: data, not grey
        assert inside, f"{title}: nothing coloured in its plot"
        if title == "Decisions by rule":
            filled = (max(x for x, _ in inside) - left) / (right - left)
        else:
            filled = (bottom - min(y for _, y in inside)) / (bottom - top)
        assert filled >= 0.5, f"{title}: the data fills {filled:.0%} of the plot ({shot})"


def test_report_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "none.sqlite3"), "-o", str(tmp_path / "x.html")]) == 1
    assert "no database at" in capsys.readouterr().err
    Store(tmp_path / "empty.sqlite3").close()
    assert main(["report", "--db", str(tmp_path / "empty.sqlite3"), "-o", str(tmp_path / "x.html")]) == 1
    assert "holds no decisions and no forwards yet" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
