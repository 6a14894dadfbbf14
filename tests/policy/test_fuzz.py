"""A bounded, seeded run of bench/fuzz.py (issue 12, "keep the fuzzer"): every input through
the build `revops check` and `revenue-reload` run, in a guarded worker; no traceback, crash or
hang. Engine classes that branch engine-safety fixes (issue 12.1-3) are counted apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bounded_fuzz_run_finds_no_traceback_crash_or_hang(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz.py"), "--inputs", "400", "--seed", "12",
                          "--time-limit-s", "12", "--allow-known", "--json", "--save", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    report = json.loads(run.stdout)
    assert report["inputs"] >= 40, report
    assert (report["tracebacks"], report["crashes"], report["hangs"]) == (0, 0, 0), report["findings"]
    assert run.returncode == 0
    # the inputs are not all thrown out at the door: some build, most are refused with a location
    assert report["accepted"] > 0 and report["diagnostics"] > report["inputs"] // 2, report
    assert {"policy_yaml_error", "dsl_parse_error"} <= set(report["by_code"]), report["by_code"]


def test_the_fuzzer_counts_an_escaped_exception_as_a_traceback(monkeypatch):
    """The guard is real: a verdict() that raises is a finding, not a pass."""
    sys.path.insert(0, str(ROOT / "bench"))
    import fuzz

    def broken(folder):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(fuzz, "verdict", broken)
    report = fuzz.fuzz(3, seed=1, timeout_s=20, start_method="fork")  # fork: the workers see the patch
    assert report["tracebacks"] == 3 and "escaped RecursionError" in next(iter(report["findings"]))
