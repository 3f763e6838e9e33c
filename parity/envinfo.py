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
# What picks a kernel besides the CPU: thread counts (a reduction split differently), TensorFlow's oneDNN
# switch, the ISA caps of oneDNN (torch's and TF's), ATen's and MKL's dispatch, OpenBLAS's core type.
KERNEL_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
)
# CPU features a kernel library dispatches on (numpy's names: numpy._core._multiarray_umath.__cpu_features__).
KERNEL_CPU_FEATURES = (
    "SSE41",
    "SSE42",
    "AVX",
    "F16C",
    "FMA3",
    "AVX2",
    "AVX512F",
    "AVX512CD",
    "AVX512BW",
    "AVX512DQ",
    "AVX512VL",
    "AVX512VNNI",
    "AVX512_BF16",
    "AVX512FP16",
    "ASIMD",
    "ASIMDHP",
    "SVE",
)
DEVICE_VARIABLE = "PINN_PARITY_DEVICE"
"""The device the frameworks compute on: "cpu" when unset; a GPU run sets it, e.g. "cuda:9.0" (compute
capability). The bundled backends are CPU builds, so nothing here can detect a GPU on its own."""
DEVICE_NAME = re.compile(r"^(cpu|(cuda|rocm|xpu|mps):[A-Za-z0-9._-]+)$")
TOLERANCE_CLASSES = ("cpu", "gpu")
"""Tolerance classes, coarse on purpose: one per kind of device (docs/tolerances.md "Tolerance classes")."""
DEFAULT_TOLERANCE_CLASS = "cpu"
"""The class of a ledger entry's own fields and of a golden or entry without a fingerprint."""
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
        "fingerprint": fingerprint(framework_versions or None),
        **git_commit(),
        "collected": utc_now(),
    }


def cpu_features() -> list[str]:
    """The kernel-relevant features this CPU has (KERNEL_CPU_FEATURES order); [] when numpy cannot say."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as found
        except ImportError:
            return []
    return [name for name in KERNEL_CPU_FEATURES if found.get(name)]


def isa_level(features) -> str:
    """The widest vector ISA level of `features`: x86-64 avx512 (v4) / avx2 (v3: AVX2 and FMA) / avx / sse4,
    arm sve / asimd, else baseline."""
    have = set(features)
    if {"AVX512F", "AVX512BW", "AVX512VL", "AVX512DQ", "AVX512CD"} <= have:
        return "avx512"
    if {"AVX2", "FMA3"} <= have:
        return "avx2"
    for level, needs in (("avx", "AVX"), ("sse4", "SSE42"), ("sve", "SVE"), ("asimd", "ASIMD")):
        if needs in have:
            return level
    return "baseline"


def device(environ=os.environ) -> str:
    """The device of this run (DEVICE_VARIABLE, default "cpu"); ValueError naming a malformed value."""
    value = environ.get(DEVICE_VARIABLE, "").strip() or "cpu"
    if not DEVICE_NAME.match(value):
        raise ValueError(
            f"{DEVICE_VARIABLE}={value!r}: expected 'cpu' or '<cuda|rocm|xpu|mps>:<model>', e.g. 'cuda:9.0'"
        )
    return value


def tolerance_class(device_name: str) -> str:
    """A device's tolerance class: "cpu" for the CPU, "gpu" for any accelerator."""
    return DEFAULT_TOLERANCE_CLASS if device_name == "cpu" else "gpu"


def fingerprint(framework_versions: Mapping[str, str] | None = None, environ=os.environ) -> dict:
    """What decides which kernels compute a result: device and its tolerance class, the CPU's ISA level and
    kernel-relevant features, the kernel variables that are set, framework versions. Recorded in golden
    manifests, ledger entries and results.json's env (docs/tolerances.md "Fingerprints")."""
    features = cpu_features()
    name = device(environ)
    return {
        "device": name,
        "tolerance_class": tolerance_class(name),
        "cpu": {"machine": platform.machine(), "isa": isa_level(features), "features": features},
        "kernels": {var: environ[var] for var in KERNEL_VARIABLES if environ.get(var)},
        "frameworks": dict(sorted((framework_versions or installed_versions()).items())),
    }


FINGERPRINT_FIELDS = ("device", "tolerance_class", "cpu.isa", "kernels", "frameworks")
"""The fields whose difference is reported between a golden's fingerprint and the run's (the feature list
follows the ISA level; machine is in the platform string)."""


def fingerprint_differences(recorded: Mapping | None, running: Mapping) -> list[str]:
    """'field: recorded -> running' for each FINGERPRINT_FIELDS entry that differs; [] when `recorded` is
    None (a golden or entry written before fingerprints: unknown, not different)."""
    if not recorded:
        return []
    out = []
    for dotted in FINGERPRINT_FIELDS:
        a, b = recorded, running
        for part in dotted.split("."):
            a = a.get(part) if isinstance(a, Mapping) else None
            b = b.get(part) if isinstance(b, Mapping) else None
        if a != b:
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                out += [f"{dotted}.{k}: {a.get(k)} -> {b.get(k)}" for k in keys]
            else:
                out.append(f"{dotted}: {a} -> {b}")
    return out
