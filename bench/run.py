"""Speed, memory and reconstruction quality of the bundled backends and of the parity suite.

    python -m bench.run [backends] [quality] [parity] [all] [--quick] [--quality-epochs N]

Sections (docs/benchmarks.md): backends (CLI train/infer time and peak RSS per
backend, framework import time, final losses from one initial state), quality
(reconstruction against the simulator's ground truth), parity (the parity
suite with and without xdist: wall time, peak memory, import/compute/overhead
split, golden/ size). Writes every figure to .bench/results-<UTC>.json and
prints a table. Timings are figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from backends.common.fileio import FRAMEWORK_DISTRIBUTIONS, atomic_write_text, installed_versions
from backends.common.threads import FRAMEWORK_ENV
from bench import proc
from bench.report import table

SECTIONS = ("backends", "quality", "parity")
BENCH_DIR = proc.REPO_ROOT / ".bench"
BENCH_DISTRIBUTIONS = (*FRAMEWORK_DISTRIBUTIONS, "pytest", "pytest-xdist")


def _git() -> dict:
    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=proc.REPO_ROOT, capture_output=True, text=True, timeout=20
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"commit": git("rev-parse", "HEAD"), "dirty_files": len((git("status", "--porcelain") or "").splitlines())}


def _meminfo_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sections", nargs="*", metavar="section", help=f"any of {', '.join(SECTIONS)}, all (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke version of every section")
    parser.add_argument(
        "--quality-epochs",
        type=int,
        default=None,
        help="training epochs of every quality run (default: gridsize 2: 60, gridsize 1: 150; quick: 2)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder under .bench/")
    args = parser.parse_args(argv)
    if args.quality_epochs is not None and args.quality_epochs < 1:
        parser.error(f"--quality-epochs {args.quality_epochs}: must be at least 1")
    unknown = sorted(set(args.sections) - {*SECTIONS, "all"})
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}, all")
    wanted = (
        SECTIONS if not args.sections or "all" in args.sections else tuple(s for s in SECTIONS if s in args.sections)
    )

    from bench import sections as sec

    BENCH_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix=f"work-{stamp}-", dir=BENCH_DIR))
    results = {
        "schema": "pinn-parity-bench",
        "version": 1,
        "created": stamp,
        "quick": args.quick,
        "sections_run": list(wanted),
        "machine": {
            "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "mem_total_mib": _meminfo_mib(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "env": FRAMEWORK_ENV,
        "versions": installed_versions(BENCH_DISTRIBUTIONS),
        "git": _git(),
        "load_at_start": proc.load(),
        "sections": {},
        "errors": {},
    }
    out_path = BENCH_DIR / f"results-{stamp}.json"
    for name in wanted:
        start = time.perf_counter()
        load_before = proc.load()
        sec.log(f"section {name} (load {load_before})")
        try:
            if name == "backends":
                figures = sec.section_backends(work, args.quick)
            elif name == "quality":
                figures = sec.section_quality(work, args.quick, args.quality_epochs, BENCH_DIR, stamp)
            else:
                figures = sec.section_parity(work, args.quick)
            figures["section_wall_s"] = time.perf_counter() - start
            figures["load_before"], figures["load_after"] = load_before, proc.load()
            results["sections"][name] = figures
        except Exception as exc:  # report what ran; one broken section does not lose the others
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            sec.log(f"section {name} FAILED: {results['errors'][name]}")
        atomic_write_text(out_path, json.dumps(results, indent=1, default=float))  # after every section
    results["load_at_end"] = proc.load()
    if args.keep_work:
        results["work"] = str(work)
    atomic_write_text(out_path, json.dumps(results, indent=1, default=float))
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(results))
    print(f"\nfigures: {out_path.relative_to(proc.REPO_ROOT)}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
