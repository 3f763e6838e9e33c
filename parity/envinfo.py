"""Facts about the machine and checkout a result was produced on.

Framework versions are not collected here (this package never imports a
framework); the adapters report them and the caller merges them in.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from backends.common.fileio import installed_versions

REPO_ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTHONHASHSEED",
)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(kind: str, name: str) -> str:
    """Config ids and worker ids become file names: letters, digits, '.', '_', '-' only."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ValueError(
            f"{kind} {name!r} is not a safe file name (letters, digits, '.', '_', '-'; at most 100 characters)"
        )
    return name


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> dict:
    """{"commit": sha or "unknown", "dirty": bool or None}."""
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha or "unknown", "dirty": None if status is None else bool(status)}


def collect_environment(framework_versions: Mapping[str, str] | None = None) -> dict:
    """Versions, platform, thread settings and commit: the header of a run."""
    packages = installed_versions(
        ("pinn-parity", "numpy", "scipy", "matplotlib", "pytest", "pytest-xdist", "pytest-regressions")
    )
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": packages,
        "frameworks": dict(framework_versions or {}),
        "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        **git_commit(),
        "collected": utc_now(),
    }
