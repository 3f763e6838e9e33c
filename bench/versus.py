"""This suite against PtychoPINN's own TF-vs-torch tests, side by side (issue 19's speed target).

    python -m bench.versus [--repeat 3] [--json FILE]

Runs, alternately so both see the same load, `pytest parity/ -n auto` on the bundled profile and
PtychoPINN's own parity tests in .venv-upstream (`make upstream`), once each as warm-up and then
`--repeat` times each, and prints the medians and the ratio (target: at most 1.5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench import proc

UPSTREAM_PYTHON = proc.REPO_ROOT / ".venv-upstream" / "bin" / "python"
UPSTREAM_SOURCE = proc.REPO_ROOT / ".venv-upstream" / ".pinn-parity-source"
# Their TF-vs-torch checks: every parity test of tests/torch, and the config bridge and factory
# that map one backend's configuration onto the other's.
UPSTREAM_TESTS = (
    "tests/torch/test_*parity*.py",
    "tests/torch/test_config_bridge.py",
    "tests/torch/test_config_factory.py",
)
TARGET_RATIO = 1.5


def upstream_source() -> Path | None:
    """The PtychoPINN tree .venv-upstream was built from, or None when there is none."""
    if not UPSTREAM_PYTHON.exists() or not UPSTREAM_SOURCE.is_file():
        return None
    source = Path(UPSTREAM_SOURCE.read_text().strip())
    source = source if source.is_absolute() else proc.REPO_ROOT / source
    return source if (source / "tests" / "torch").is_dir() else None


def _ours(work: Path, tag: str) -> proc.ProcResult:
    argv = [proc.PYTHON, "-m", "pytest", "parity/", "-n", "auto", "-q", "-p", "no:cacheprovider"]
    argv += ["--parity-reports", str(work / f"reports-{tag}")]
    return proc.run(argv, log=work / f"ours-{tag}.log", env=proc.measured_env(), sample_tree=True)


def _theirs(source: Path, work: Path, tag: str) -> proc.ProcResult:
    tests = sorted(str(p.relative_to(source)) for pattern in UPSTREAM_TESTS for p in source.glob(pattern))
    argv = [str(UPSTREAM_PYTHON), "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"]
    env = proc.measured_env()
    env.pop("PYTHONPATH", None)  # their tests import their tree, not this repository
    return proc.run(argv, log=work / f"theirs-{tag}.log", env=env, cwd=source, sample_tree=True)


def _summary(runs: list[proc.ProcResult]) -> dict:
    return {
        "wall_s": [round(r.wall_s, 2) for r in runs],
        "median_wall_s": round(statistics.median(r.wall_s for r in runs), 2),
        "median_cpu_s": round(statistics.median(r.cpu_s for r in runs), 2),
        "peak_mib_largest_process": round(max(r.maxrss_mib for r in runs), 1),
        "exit_codes": [r.rc for r in runs],
    }


def versus(work: Path, repeat: int) -> dict:
    source = upstream_source()
    if source is None:
        return {"skipped": "no .venv-upstream with a PtychoPINN source (make upstream PTYCHOPINN_SRC=...)"}
    ours, theirs = [], []
    for turn in range(repeat + 1):  # turn 0 warms the page cache and is not counted
        mine, other = _ours(work, f"{turn}"), _theirs(source, work, f"{turn}")
        if turn:
            ours.append(mine)
            theirs.append(other)
    result = {"upstream_source": str(source), "ours": _summary(ours), "theirs": _summary(theirs)}
    result["ratio_wall"] = round(result["ours"]["median_wall_s"] / result["theirs"]["median_wall_s"], 2)
    result["target_ratio"] = TARGET_RATIO
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of each, after one warm-up each")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as work:
        result = versus(Path(work), args.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if "skipped" in result:
        return 0
    if any(result[side]["exit_codes"].count(0) != args.repeat for side in ("ours", "theirs")):
        print("bench.versus: a run failed; see the figures' exit codes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
