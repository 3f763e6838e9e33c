"""Kernel variation: the parity suite once per set of kernels another machine would pick, and what moves.

    python -m bench.kernels                       # every variant below, one after another
    python -m bench.kernels --only baseline onednn-on threads-2
    python -m bench.kernels --report .bench/kernels-<UTC>.json     # print a saved run's tables again

Each variant is one `pytest parity/ -n N` in a child process whose environment differs from CI's
(backends.common.threads.FRAMEWORK_ENV) only by the variant's variables; every other kernel variable
inherited from the caller is removed first, so the baseline is what CI runs. From each run's hub
(results.json) it keeps every golden comparison (check `<backend>~golden`): measured value, the limit it
was judged by, passed. It prints

1. one line per variant: exit status, wall time, golden comparisons bit-exact / moved / failed, the suite's
   failed comparisons (cross-backend included), and the worst golden ratio (measured / limit);
2. the golden comparisons that moved in some variant (measured differs from the baseline's), grouped by
   (stage, array, side) over the configs: the largest measured value and ratio per variant;
3. which (stage, array, side) stayed bit-exact to the golden in every variant.

Everything goes to .bench/kernels-<UTC>.json. A variant that cannot change anything on this CPU (a cap
above what it has) is still run: its row then shows that the knob is inert here. docs/tolerances.md holds
the table of the last run and what it means.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backends.common.fileio import atomic_write_json
from bench import proc
from parity.envinfo import KERNEL_VARIABLES


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict
    why: str


VARIANTS = (
    Variant("baseline", {}, "as CI: one thread per pool, TF oneDNN off, every library on its best path for this CPU"),
    Variant("onednn-on", {"TF_ENABLE_ONEDNN_OPTS": "1"}, "TensorFlow's oneDNN kernels on (TF's default on x86)"),
    Variant(
        "threads-2",
        {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"},
        "two threads per op pool in every framework (a reduction split in two)",
    ),
    Variant(
        "onednn-on-threads-2",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "OMP_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2",
            "TF_NUM_INTRAOP_THREADS": "2",
            "TF_NUM_INTEROP_THREADS": "2",
        },
        "both: a default TensorFlow on a two-core machine",
    ),
    Variant(
        "isa-avx",
        {"ONEDNN_MAX_CPU_ISA": "AVX", "DNNL_MAX_CPU_ISA": "AVX", "ATEN_CPU_CAPABILITY": "default"},
        "torch's oneDNN capped at AVX and its ATen kernels at the portable build: a CPU without AVX2/FMA",
    ),
    Variant(
        "isa-sse41",
        {
            "TF_ENABLE_ONEDNN_OPTS": "1",
            "ONEDNN_MAX_CPU_ISA": "SSE41",
            "DNNL_MAX_CPU_ISA": "SSE41",
            "ATEN_CPU_CAPABILITY": "default",
        },
        "oneDNN (torch's and TF's, the latter switched on) capped at SSE4.1, ATen portable",
    ),
    Variant(
        "mkl-avx",
        {"MKL_ENABLE_INSTRUCTIONS": "AVX", "MKL_CBWR": "AVX"},
        "torch's MKL on its AVX code path, conditional numerical reproducibility branch AVX",
    ),
    Variant(
        "openblas-sandybridge",
        {"OPENBLAS_CORETYPE": "SandyBridge"},
        "numpy/scipy's OpenBLAS on its Sandy Bridge (AVX, no FMA) kernels",
    ),
    Variant("openblas-prescott", {"OPENBLAS_CORETYPE": "Prescott"}, "numpy/scipy's OpenBLAS on its SSE3 kernels"),
)
BY_NAME = {v.name: v for v in VARIANTS}


def variant_env(variant: Variant) -> dict:
    """CI's environment (bench.proc.measured_env) with the caller's kernel variables removed, plus the variant's."""
    return proc.measured_env(variant.env, drop=KERNEL_VARIABLES)


def _hub(reports: Path) -> Path | None:
    hubs = sorted(p for p in reports.iterdir() if (p / "results.json").exists()) if reports.exists() else []
    return hubs[-1] if hubs else None


def golden_records(results: dict) -> list[dict]:
    """One record per golden comparison of a results.json: where, measured, limit, ratio, passed."""
    out = []
    for c in results.get("comparisons", []):
        parts = c.get("check_parts") or {}
        if parts.get("right") != "golden" or c.get("metric") == "regenerated":
            continue
        measured, tol = c.get("measured") or {}, c.get("tolerance") or {}
        if c["kind"] == "allclose":
            value, limit = measured.get("max_abs"), tol.get("limit")
        else:  # exact: differing elements (or fields)
            value, limit = measured.get("n_bad"), None
        value = _number(value)
        ratio = value / limit if value is not None and limit else None
        out.append(
            {
                "config_id": c["config_id"],
                "stage": c["stage"],
                "side": parts.get("left", c["check"]),
                "metric": c["metric"],
                "kind": c["kind"],
                "passed": bool(c["passed"]),
                "value": value,
                "limit": limit,
                "ratio": ratio,
                "tolerance_class": tol.get("class"),
            }
        )
    return out


def _number(value):
    if isinstance(value, str):  # results.json writes non-finite numbers as strings
        return float(value)
    return None if value is None else float(value)


def run_variant(variant: Variant, work: Path, workers: str, extra_args: list) -> dict:
    reports = work / variant.name
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir(parents=True)
    argv = [proc.PYTHON, "-m", "pytest", "parity/", "-n", workers, "-q", "-p", "no:cacheprovider"]
    argv += ["--parity-reports", str(reports), *extra_args]
    log = work / f"{variant.name}.log"
    print(f"[kernels] {variant.name}: {' '.join(f'{k}={v}' for k, v in variant.env.items()) or '(CI)'}", flush=True)
    start = time.perf_counter()
    result = proc.run(argv, log=log, env=variant_env(variant))
    wall = time.perf_counter() - start
    hub = _hub(reports)
    record = {"variant": variant.name, "env": variant.env, "why": variant.why, "rc": result.rc, "wall_s": wall}
    if hub is None:
        record.update(error=f"no results.json under {reports}; log {log}", tail=result.tail)
        return record
    results = json.loads((hub / "results.json").read_text())
    record["fingerprint"] = results.get("env", {}).get("fingerprint")
    record["totals"] = results.get("totals")
    record["golden"] = golden_records(results)
    record["failed_other"] = sorted(
        f"{c['config_id']}/{c['stage']} {c['check']} {c['metric']}"
        for c in results.get("comparisons", [])
        if not c["passed"] and (c.get("check_parts") or {}).get("right") != "golden"
    )
    print(f"[kernels] {variant.name}: exit {result.rc} in {wall:.0f} s; {summary_line(record)}", flush=True)
    return record


def _key(rec) -> tuple:
    return rec["config_id"], rec["stage"], rec["side"], rec["metric"]


def _group(rec) -> tuple:
    """Rows of the moved table: a stage's array on one side, over every config."""
    return rec["stage"], rec["metric"], rec["side"]


def moved_keys(runs: list[dict]) -> set:
    """Golden comparisons whose measured value differs from the baseline's in some variant."""
    base = next((r for r in runs if r["variant"] == "baseline" and "golden" in r), None)
    reference = {_key(g): g["value"] for g in base["golden"]} if base else {}
    moved = set()
    for run in runs:
        for g in run.get("golden", []):
            if g["value"] != reference.get(_key(g), 0.0):
                moved.add(_key(g))
    return moved


def summary_line(run: dict) -> str:
    golden = run.get("golden", [])
    exact = sum(1 for g in golden if g["value"] == 0)
    failed = sum(1 for g in golden if not g["passed"])
    worst = max((g["ratio"] for g in golden if g["ratio"] is not None), default=0.0)
    totals = run.get("totals") or {}
    return (
        f"golden {len(golden)}: {exact} bit-exact, {failed} failed, worst ratio {worst:.3g}; "
        f"suite {totals.get('failed', '?')} of {totals.get('comparisons', '?')} comparisons failed"
    )


def _fmt(value) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.2g}"


def tables(runs: list[dict]) -> str:
    """The three tables as markdown."""
    names = [r["variant"] for r in runs]
    lines = ["| variant | env | exit | wall s | golden | bit-exact | moved | failed | worst ratio | suite failed |"]
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    base = next((r for r in runs if r["variant"] == "baseline" and "golden" in r), None)
    reference = {_key(g): g["value"] for g in base["golden"]} if base else {}
    for r in runs:
        golden = r.get("golden", [])
        env = " ".join(f"`{k}={v}`" for k, v in r["env"].items()) or "(CI)"
        if not golden:
            error = r.get("error", "")
            lines.append(f"| {r['variant']} | {env} | {r['rc']} | {r['wall_s']:.0f} | - | - | - | - | - | {error} |")
            continue
        moved = sum(1 for g in golden if g["value"] != reference.get(_key(g), 0.0))
        worst = max((g["ratio"] for g in golden if g["ratio"] is not None), default=0.0)
        lines.append(
            f"| {r['variant']} | {env} | {r['rc']} | {r['wall_s']:.0f} | {len(golden)} | "
            f"{sum(1 for g in golden if g['value'] == 0)} | {moved} | {sum(1 for g in golden if not g['passed'])} | "
            f"{worst:.3g} | {(r.get('totals') or {}).get('failed', '?')} |"
        )
    moved = moved_keys(runs)
    groups: dict = defaultdict(dict)
    all_groups: set = set()
    for r in runs:
        for g in r.get("golden", []):
            all_groups.add(_group(g))
            if _key(g) not in moved:
                continue
            cell = groups[_group(g)].setdefault(r["variant"], {"value": 0.0, "ratio": 0.0, "failed": 0, "n": 0})
            cell["value"] = max(cell["value"], g["value"] or 0.0)
            cell["ratio"] = max(cell["ratio"], g["ratio"] or 0.0)
            cell["failed"] += not g["passed"]
            cell["n"] += 1
    lines += ["", "Moved golden comparisons: largest measured / ratio to its limit over the configs", ""]
    lines.append("| stage | array | side | " + " | ".join(names) + " |")
    lines.append("|---|---|---|" + "---|" * len(names))
    for group in sorted(groups, key=lambda g: (_stage_order(g[0]), g[1], g[2])):
        cells = []
        for name in names:
            cell = groups[group].get(name)
            if cell is None:
                cells.append("=")
                continue
            text = f"{_fmt(cell['value'])} / {_fmt(cell['ratio'])}"
            cells.append(text + (f" **FAIL {cell['failed']}**" if cell["failed"] else ""))
        lines.append(f"| {group[0]} | {group[1]} | {group[2]} | " + " | ".join(cells) + " |")
    exact = sorted(
        (g for g in all_groups if all(g2 != g for g2 in groups) and _all_zero(runs, g)),
        key=lambda g: (_stage_order(g[0]), g[1], g[2]),
    )
    lines += ["", "Bit-exact to the golden in every variant (every config): "]
    lines.append(", ".join(f"{s} {m} ({side})" for s, m, side in exact) or "none")
    unmoved_nonzero = sorted(
        (g for g in all_groups if g not in groups and not _all_zero(runs, g)),
        key=lambda g: (_stage_order(g[0]), g[1], g[2]),
    )
    if unmoved_nonzero:
        lines += ["", "Not bit-exact but unmoved by every variant (the backends' own difference): "]
        lines.append(", ".join(f"{s} {m} ({side})" for s, m, side in unmoved_nonzero))
    return "\n".join(lines)


def _all_zero(runs, group) -> bool:
    return all(g["value"] == 0 for r in runs for g in r.get("golden", []) if _group(g) == group)


def _stage_order(stage: str) -> int:
    from parity.stages import STAGES

    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kernels", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=[v.name for v in VARIANTS], help="variants (default: all)")
    parser.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers per run (default: auto)")
    parser.add_argument("--report", type=Path, help="print the tables of a saved run instead of running")
    parser.add_argument("--keep-work", action="store_true", help="keep the hubs and logs (.bench/kernels-work-*)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to every pytest run (e.g. --parity-config)")
    args = parser.parse_args(argv)
    if args.report:
        print(tables(json.loads(args.report.read_text())["runs"]))
        return 0
    names = args.only or [v.name for v in VARIANTS]
    if "baseline" not in names:
        names.insert(0, "baseline")  # what "moved" is measured against
    bench_dir = proc.REPO_ROOT / ".bench"
    bench_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out = bench_dir / f"kernels-{stamp}.json"
    work = Path(tempfile.mkdtemp(prefix=f"kernels-work-{stamp}-", dir=bench_dir))
    document = {"created": stamp, "workers": args.workers, "pytest_args": args.pytest_args, "runs": []}
    try:
        for name in names:
            document["runs"].append(run_variant(BY_NAME[name], work, args.workers, args.pytest_args))
            atomic_write_json(out, document, indent=1)  # an interrupted run keeps what it measured
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print(tables(document["runs"]))
    print(f"\n[kernels] written to {out}")
    bad = [r["variant"] for r in document["runs"] if "golden" not in r]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
