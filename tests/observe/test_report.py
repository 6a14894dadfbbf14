"""`revops report`: an HTML report with charts from a simulated run's database, rendered by
headless Chromium; and clear errors for a missing or empty database."""

from __future__ import annotations

import re
import subprocess

import pytest

from revops.cli import main
from revops.store import Store
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


def test_chromium_renders_the_report(report, tmp_path):
    dom = chromium("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rendered = dom.stdout.decode()
    # four charts, and the cumulative rebalance spend now that the store has the rebalancer's records
    assert rendered.count("<svg") == 5 and "Decisions by rule" in rendered
    assert 'aria-label="Cumulative rebalance spend"' in rendered
    shot, blank = tmp_path / "report.png", tmp_path / "blank.png"
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body><h1>revops report</h1></body></html>")
    assert chromium(f"--screenshot={shot}", report.as_uri()).returncode == 0
    assert chromium(f"--screenshot={blank}", (tmp_path / "blank.html").as_uri()).returncode == 0
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 5 * len(blank.read_bytes()), "the charts drew something"


def test_report_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "none.sqlite3"), "-o", str(tmp_path / "x.html")]) == 1
    assert "no database at" in capsys.readouterr().err
    Store(tmp_path / "empty.sqlite3").close()
    assert main(["report", "--db", str(tmp_path / "empty.sqlite3"), "-o", str(tmp_path / "x.html")]) == 1
    assert "holds no decisions and no forwards yet" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
