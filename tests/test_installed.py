"""The harness as a team installs it: wheels of the harness and of the PtychoPINN plugin in a fresh virtual
environment, run from a folder outside this repository.

The fresh environment gets the two wheels and nothing of this checkout. Their dependencies (TensorFlow,
torch, Lightning, pytest: 2.7 GB) are not installed again: a path line in the new environment puts this
project's .venv site-packages after its own (a plain path, so the .venv's editable install of the harness
is not read), and the wheels' own copies come first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from parity.stages import STAGES

REPO = Path(__file__).resolve().parents[1]
CASE = "gs1-k4-poisson-n32"

# One worker builds and installs once for all of them (the fixture is per module and worker).
pytestmark = [pytest.mark.slow, pytest.mark.tf, pytest.mark.torch, pytest.mark.xdist_group("installed")]
# What a wheel is built from: the sources, not this checkout's environments, reports or build folders.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".upstream",
    "reports",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".bench",
    "data",
    "runs",
    "lightning_logs",
)


def _run(args, cwd, timeout=900, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of the fresh environment, a working folder outside the repo, the wheels)."""
    root = tmp_path_factory.mktemp("installed")
    wheels, sources = root / "wheels", root / "sources"
    shutil.copytree(REPO, sources, ignore=NOT_SOURCES)  # a build writes build/ beside its sources: not here
    for project in (sources, sources / "plugins" / "ptychopinn"):
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                wheels,
                project,
            ],
            cwd=root,
        )
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).stdout.strip())
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    found = sorted(wheels.glob("*.whl"))
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", *found],
        cwd=root,
    )
    work = root / "team-repo"
    work.mkdir()
    return python, work, found


def _clean_env() -> dict:
    """The environment without this checkout on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    return env


def test_the_wheel_carries_the_ledger_and_every_bundled_golden(installed):
    _, _, wheels = installed
    (harness,) = [w for w in wheels if w.name.startswith("pinn_parity-")]
    names = zipfile.ZipFile(harness).namelist()
    assert "parity/tolerances.json" in names and "parity/plugin.py" in names
    goldens = {p.relative_to(REPO / "golden").as_posix() for p in (REPO / "golden").rglob("*") if p.is_file()}
    packed = {n.partition("share/pinn-parity/golden/")[2] for n in names if "share/pinn-parity/golden/" in n}
    assert goldens and packed == goldens
    assert not [n for n in names if n.startswith(("tests/", "plugins/", "golden/"))]


def test_the_installed_harness_imports_from_its_environment_not_the_checkout(installed):
    python, work, _ = installed
    out = _run(
        [python, "-c", "import parity, adapters.registry as r; print(parity.__file__); print(sorted(r.available()))"],
        cwd=work,
        env=_clean_env(),
    ).stdout.splitlines()
    assert not out[0].startswith(str(REPO)) and "site-packages" in out[0]
    assert "'ptychopinn-tf'" in out[1] and "'tf_pinn'" in out[1]


def test_the_bundled_profile_runs_one_case_from_another_folder(installed):
    python, work, _ = installed
    script = Path(python).parent / "pinn-parity"
    done = _run(
        [script, "run", "--parity-config", CASE, "-n", "0", "-q", "-p", "no:cacheprovider"], cwd=work, env=_clean_env()
    )
    assert f"{len(STAGES)} passed" in done.stdout  # every stage of the case, none skipped
    hubs = sorted(p for p in (work / "reports").iterdir() if p.name != "latest")
    results = json.loads((hubs[-1] / "results.json").read_text())
    assert set(results["configs"][CASE]["stages"].values()) == {"pass"}
    golden = [c for c in results["comparisons"] if c["check_parts"]["right"] == "golden"]
    assert golden and all(c["passed"] for c in golden)  # the packaged goldens were found and matched


def test_pytest_finds_the_suite_and_its_options_through_the_entry_point(installed):
    python, work, _ = installed
    done = _run(
        [
            python,
            "-m",
            "pytest",
            "--pyargs",
            "parity",
            "--parity-config",
            CASE,
            "--parity-stage",
            "config,translation",
            "--parity-reports",
            "hubs",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=work,
        env=_clean_env(),
    )
    assert "2 passed" in done.stdout and (work / "hubs" / "latest" / "results.json").is_file()
    # a run that does not target the suite is left alone: no hub, no parity header
    (work / "test_team.py").write_text("def test_team():\n    assert True\n")
    other = _run([python, "-m", "pytest", "test_team.py", "-q", "-p", "no:cacheprovider"], cwd=work, env=_clean_env())
    assert "1 passed" in other.stdout and "parity" not in other.stdout
