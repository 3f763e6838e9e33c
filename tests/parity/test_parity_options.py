"""The suite's own options: one usage error before anything runs, no hub for a run that starts no test,
short help for `python -m parity run|regen`, adapters under their registered names, readable hub files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.registry import get_adapter
from parity.report import hub as hubs
from tests.parity.factories import make_comparison

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def pytest_parity(tmp_path, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "parity/",
            "-p",
            "no:cacheprovider",
            "--parity-reports",
            str(tmp_path / "reports"),
            *args,
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--parity-backends", "tf_pinn,nosuchbackend"],
            "--parity-backends: unknown backend 'nosuchbackend'; known: tf_pinn, torch_pinn, referee",
        ),
        (["--parity-backends", "tf_pinn,tf_pinn"], "--parity-backends: backend 'tf_pinn' listed more than once"),
        (["--parity-stage", "forwrd"], "--parity-stage: unknown stage 'forwrd'; known: config, data,"),
        (["--parity-config", "nope"], "--parity-config: unknown config id(s) ['nope']"),
    ],
)
def test_a_bad_parity_option_is_one_usage_error_and_no_hub(tmp_path, args, message):
    proc = pytest_parity(tmp_path, "-n", "2", *args)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ") and message in errors[0], proc.stderr
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


@pytest.mark.parametrize("args", [["--help"], ["--collect-only", "-q"], ["-k", "matches_nothing", "-q"]])
def test_a_run_that_starts_no_test_leaves_no_hub(tmp_path, args):
    proc = pytest_parity(tmp_path, "--parity-config", "gs1-k4-poisson-n32", *args)
    assert proc.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), proc.stdout + proc.stderr
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_a_stage_can_be_chosen(tmp_path):
    proc = pytest_parity(
        tmp_path, "--parity-config", "gs1-k4-poisson-n32", "--parity-stage", "shapes,config", "--collect-only", "-q"
    )
    assert [line for line in proc.stdout.splitlines() if "::" in line] == [
        "parity/test_parity.py::test_stage[gs1-k4-poisson-n32-config]",
        "parity/test_parity.py::test_stage[gs1-k4-poisson-n32-shapes]",
    ]


@pytest.mark.parametrize("verb", ["run", "regen"])
def test_run_and_regen_have_their_own_short_help(verb):
    proc = subprocess.run(
        [sys.executable, "-m", "parity", verb, "--help"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) < 30  # pytest's own help is 458 lines
    for flag in (
        "--parity-config",
        "--parity-backends",
        "--parity-stage",
        "--parity-reports",
        "--parity-golden",
        "--parity-profile",
        "--parity-strict-baseline",
    ):
        assert flag in proc.stdout
    assert "goes to pytest" in proc.stdout


def test_every_argument_of_diff_and_tolerances_is_described():
    for verb in ("diff", "tolerances"):
        proc = subprocess.run(
            [sys.executable, "-m", "parity", verb, "--help"],
            cwd=REPO,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        options = proc.stdout.split("arguments:", 1)[-1]
        lines = [line for line in options.splitlines() if line.startswith("  ") and not line.startswith("   ")]
        assert lines and all(len(line.split(None, 1)) == 2 or "  " in line.strip() for line in lines), proc.stdout


def test_an_adapter_carries_its_registered_name():
    backend = get_adapter("referee")
    assert backend.name == "referee"


def test_hub_files_are_readable_by_others(tmp_path):
    umask = os.umask(0o022)
    try:
        hub = hubs.new_hub(tmp_path / "reports")
        hubs.write_part(hub, "gw0", [make_comparison("gs1", "forward", True)])
        hubs.finalize(
            hub, {"backends": ["tf_pinn", "torch_pinn"], "configs": ["gs1"], "exitstatus": 0}, "log\n", complete=True
        )
    finally:
        os.umask(umask)
    files = [p for p in hub.rglob("*") if p.is_file() and not p.is_symlink()]
    assert (
        files
        and {str(p.relative_to(hub)): oct(p.stat().st_mode & 0o777) for p in files if p.stat().st_mode & 0o777 != 0o644}
        == {}
    )
