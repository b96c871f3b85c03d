"""The benchmark harness starts and writes a report (`bench/run.py --smoke`).

The test suite never runs the benchmarks themselves: `--quick` installs the
peers (network, minutes), so the suite runs `--smoke` instead — `--quick`
restricted to what is already here: our Python package from this interpreter,
tiny counts, no virtualenvs, no builds. It checks that every workload ran and
produced positive figures, and that REPORT.md has a row for each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"
WORKLOAD_FIGURES = {
    "W1": ("msgs_per_s", "cpu_us_per_msg"),
    "W2": ("msgs_per_s",),
    "W3": ("msgs_per_s",),
    "W4": ("msgs_per_s",),
    "W5": ("p50_us", "p99_us"),
    "W6": ("msgs_per_s", "cpu_us_per_msg"),
    "W7": ("kib_per_conn",),
}


def test_smoke_run_writes_a_report_with_a_row_per_workload(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--python", sys.executable,
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]

    report = tmp_path / "REPORT.md"
    assert report.is_file()
    text = report.read_text()
    assert "## Machine" in text and "## Versions" in text
    rows = [line for line in text.splitlines() if line.startswith("| W")]
    for workload in WORKLOAD_FIGURES:
        assert any(row.startswith(f"| {workload} ") for row in rows), workload

    raw_files = sorted((tmp_path / "raw").glob("*.jsonl"))
    assert len(raw_files) == 1
    records = [json.loads(line) for line in raw_files[0].read_text().splitlines()]
    trials = [record for record in records if record["record"] == "trial"]
    assert {trial["workload"] for trial in trials} == set(WORKLOAD_FIGURES)
    for trial in trials:
        assert trial["contender"] == "zmqtt"
        assert trial["status"] == "ok", trial
        for figure in WORKLOAD_FIGURES[trial["workload"]]:
            value = trial["result"][figure]
            assert isinstance(value, int | float) and value > 0, (figure, trial)
