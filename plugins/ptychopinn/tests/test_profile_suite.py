"""The plugin's profile through the real suite: green at this snapshot with its baseline, red (exit 1,
a new failure) when a split is not in the baseline. Runs the suite in a subprocess on
one case and one stage, the cheapest run that shows both, as a team's CI does: `pytest --pyargs parity`
from a folder outside this repository, the harness and the plugin installed as wheels (make upstream).
Run in .venv-upstream only.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

REPO = Path(__file__).resolve().parents[3]
PROFILE = REPO / "plugins" / "ptychopinn" / "profile"
CASE, STAGE = "gs1-k4-poisson-n64", "config"


def _suite(profile: Path, reports: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "parity",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-q",
            "--parity-backends",
            "ptychopinn-tf,ptychopinn-torch",
            "--parity-profile",
            str(profile),
            "--parity-config",
            CASE,
            "--parity-stage",
            STAGE,
            "--parity-reports",
            str(reports),
        ],
        cwd=reports.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_green_with_the_baseline_and_red_on_a_split_it_does_not_list(tmp_path):
    green = _suite(PROFILE, tmp_path / "green")
    assert green.returncode == 0, green.stdout[-3000:]
    assert "known split" in green.stdout

    copy = tmp_path / "profile"
    shutil.copytree(PROFILE, copy, ignore=shutil.ignore_patterns("goldens"))
    baseline = json.loads((copy / "baseline.json").read_text())
    kept = [
        e for e in baseline["entries"] if not (e["config"] == CASE and e["stage"] == STAGE and e["metric"] == "fields")
    ]
    assert len(kept) == len(baseline["entries"]) - 1
    (copy / "baseline.json").write_text(json.dumps({**baseline, "entries": kept}))
    red = _suite(copy, tmp_path / "red")
    assert red.returncode == 1, red.stdout[-3000:]
    assert "1 new failure" in red.stdout and "amp_activation" in red.stdout
