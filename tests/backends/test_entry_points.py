"""`python -m backends.<b>.train` / `.infer` run their module once, without import cycles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["train", "infer"])
def test_python_m_help_loads_the_module_once(backend, entry):
    done = _run(["-m", f"backends.{backend.name}.{entry}", "--help"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "found in sys.modules" not in done.stderr
    assert f"python -m backends.{backend.name}.{entry}" in done.stdout


@pytest.mark.slow
def test_running_train_as_main_does_not_import_it_again(backend):
    # runpy with alter_sys runs train.py as __main__; a second copy under its own name means
    # something imported it back (the cli <-> train circle).
    module = f"backends.{backend.name}.train"
    code = (
        f"import runpy, sys\nsys.argv = ['{module}', '--help']\n"
        f"try:\n    runpy.run_module('{module}', run_name='__main__', alter_sys=True)\n"
        f"except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        f"print(sorted(m for m in sys.modules if m == '{module}'))"
    )
    done = _run(["-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_package_imports_nothing(backend):
    # No re-exports: importing backends.<b> loads none of its modules (and no framework).
    code = (
        f"import sys, backends.{backend.name} as pkg\n"
        f"print(sorted(m for m in sys.modules if m.startswith('backends.{backend.name}.')), "
        f"[n for n in vars(pkg) if not n.startswith('__')])"
    )
    done = _run(["-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] []"
