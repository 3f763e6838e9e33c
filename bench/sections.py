"""The three benchmark sections of bench.run: backends, quality, parity.

Each function returns a JSON-able dict of figures; every measured process is a
child in the benchmark environment (bench.proc), so this process never imports
a framework.
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bench import proc
from bench.versus import versus

IMPORTS = {
    "python_only": "pass",
    "tensorflow": "import tensorflow",
    "torch_lightning": "import torch, lightning",
    "both": "import tensorflow, keras, torch, lightning",
}
BACKENDS = ("tf_pinn", "torch_pinn")  # the bundled adapters' names, each also its package under backends/


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def _worker(task: str, args: dict, work: Path, tag: str, **kwargs) -> tuple[dict, proc.ProcResult]:
    args_path, out_path = work / f"{tag}.args.json", work / f"{tag}.out.json"
    args_path.write_text(json.dumps(args))
    res = proc.python("-m", "bench.worker", task, args_path, out_path, log=work / f"{tag}.log", **kwargs)
    if res.rc != 0:
        raise RuntimeError(f"bench.worker {task} ({tag}) exited {res.rc}:\n{res.tail}")
    return json.loads(out_path.read_text()), res


def _median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def import_times(repeat: int) -> dict:
    """Wall seconds of `python -c <import>` (min and median of `repeat`), bare interpreter included."""
    out = {}
    for name, code in IMPORTS.items():
        runs = [proc.python("-c", code) for _ in range(repeat)]
        bad = [r for r in runs if r.rc != 0]
        if bad:
            raise RuntimeError(f"python -c {code!r} failed: {bad[0].tail}")
        out[name] = {
            "code": code,
            "min_s": min(r.wall_s for r in runs),
            "median_s": _median([r.wall_s for r in runs]),
            "maxrss_mib": max(r.maxrss_mib for r in runs),
            "load": runs[-1].load_after,
        }
    base = out["python_only"]["min_s"]
    for name in IMPORTS:
        out[name]["import_only_s"] = out[name]["min_s"] - base  # interpreter start-up removed
    return out


# --- 1. backends ----------------------------------------------------------


def section_backends(work: Path, quick: bool) -> dict:
    epochs = 1 if quick else 5
    repeat = 1 if quick else 3
    data = work / "scan.npz"
    sim = proc.python("-m", "backends.common.simulate", "--output", data, log=work / "simulate.log")
    if sim.rc != 0:
        raise RuntimeError(f"simulate failed: {sim.tail}")
    out = {
        "dataset": "python -m backends.common.simulate defaults (seed 7, N=32, 150 positions, 1e5 photons)",
        "epochs": epochs,
        "simulate_s": sim.wall_s,
        "cli": {},
    }
    for name in BACKENDS:
        train_dir, infer_dir = work / f"train-{name}", work / f"infer-{name}"
        log(f"backends: {name} train CLI ({epochs} epochs)")
        train = proc.python(
            "-m",
            f"backends.{name}.train",
            "--train-data-file",
            data,
            "--output-dir",
            train_dir,
            "--epochs",
            epochs,
            log=work / f"train-{name}.log",
        )
        if train.rc != 0:
            raise RuntimeError(f"{name} train CLI exited {train.rc}: {train.tail}")
        log(f"backends: {name} infer CLI")
        infer = proc.python(
            "-m",
            f"backends.{name}.infer",
            "--bundle",
            train_dir / "bundle.zip",
            "--data-file",
            data,
            "--output-dir",
            infer_dir,
            log=work / f"infer-{name}.log",
        )
        if infer.rc != 0:
            raise RuntimeError(f"{name} infer CLI exited {infer.rc}: {infer.tail}")
        history = json.loads((train_dir / "history.json").read_text())
        out["cli"][name] = {
            "train": {
                "wall_s": train.wall_s,
                "maxrss_mib": train.maxrss_mib,
                "cpu_s": train.cpu_s,
                "load_before": train.load_before,
                "final_epoch_loss": history["epoch_loss"][-1],
                "steps": len(history["step_loss"]),
            },
            "infer": {
                "wall_s": infer.wall_s,
                "maxrss_mib": infer.maxrss_mib,
                "cpu_s": infer.cpu_s,
                "load_before": infer.load_before,
            },
        }
    cli = out["cli"]
    out["torch_over_tf"] = {
        kind: cli["torch_pinn"][kind]["wall_s"] / cli["tf_pinn"][kind]["wall_s"] for kind in ("train", "infer")
    }
    log("backends: framework import times")
    out["imports"] = import_times(repeat)
    steps = 10 if quick else 50
    log(f"backends: same initial weights, {steps} steps through both adapters")
    same, res = _worker("steps", {"data": str(data), "config": {}, "max_steps": steps}, work, "steps")
    for name in BACKENDS:
        same["backends"][name].pop("step_loss")
    same["process"] = {"wall_s": res.wall_s, "maxrss_mib": res.maxrss_mib}
    out["same_start"] = same
    return out


# --- 2. quality -------------------------------------------------------------

# Epochs per config: where both backends met the quality targets (docs/benchmarks.md, contract v3). A
# gridsize-2 epoch costs about C = 4 gridsize-1 epochs (the network sees each member pattern), and gridsize 2
# gets there in far fewer epochs.
QUALITY_EPOCHS = {"gridsize2": 60, "gridsize1": 150}
QUICK_EPOCHS = 2


def section_quality(work: Path, quick: bool, epochs: int | None, bench_dir: Path, stamp: str) -> dict:
    """`epochs` overrides QUALITY_EPOCHS for every config (None: the defaults; QUICK_EPOCHS with `quick`)."""
    # The benchmark scan, spelled out: the default step N/6 since contract v2 (v1's was N/4 = 8 px).
    data = {"n_positions": 100 if quick else 400, "n": 32, "seed": 7, "step": 32 / 6}
    configs = {"gridsize2": {"gridsize": 2}, "gridsize1": {}}
    epochs_of = {label: epochs or (QUICK_EPOCHS if quick else QUALITY_EPOCHS[label]) for label in configs}
    inset = 0.0
    out = {
        "dataset": data,
        "epochs": epochs_of,
        "interior": "rectangle spanned by the scan positions (canvas inset by N/2); global complex scale fitted on it",
        "runs": {},
    }
    log("quality: reference figures (loss at the true object, stitched true patches)")
    out["reference"], _ = _worker("reference", {"data": data, "configs": configs, "inset_px": inset}, work, "reference")
    for label, overrides in configs.items():
        for name in BACKENDS:
            log(f"quality: {label} {name}, {epochs_of[label]} epochs")
            tag = f"quality-{label}-{name}"
            args = {
                "backend": name,
                "data": data,
                "config": {**overrides, "epochs": epochs_of[label]},
                "inset_px": inset,
                "npz": str(work / f"{tag}.npz"),
            }
            result, res = _worker("quality", args, work, tag)
            result["process"] = {"wall_s": res.wall_s, "maxrss_mib": res.maxrss_mib, "load_before": res.load_before}
            out["runs"][f"{label}/{name}"] = result
    try:
        from bench.figures import quality_png

        out["png"] = str(quality_png(out, data, bench_dir / f"quality-{stamp}.png"))
    except Exception as exc:  # a missing plot must not lose the figures
        out["png_error"] = f"{type(exc).__name__}: {exc}"
    for run in out["runs"].values():
        run.pop("npz", None)
        run["epoch_loss_every_10"] = run.pop("epoch_loss")[::10]
    return out


# --- 3. parity ---------------------------------------------------------------

_SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped|xfailed|xpassed)")


def _du(path: Path) -> dict:
    files, apparent, disk = 0, 0, 0
    for root, _, names in os.walk(path):
        for n in names:
            st = os.lstat(os.path.join(root, n))
            files += 1
            apparent += st.st_size
            disk += st.st_blocks * 512
    return {"files": files, "apparent_mib": apparent / 2**20, "disk_mib": disk / 2**20}


def _junit_counts(path: Path) -> dict:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def _pytest_summary(log_path: Path) -> dict:
    text = log_path.read_text(errors="replace").splitlines()
    lines = [line for line in text if re.search(r"\d+ (passed|failed)", line) and " in " in line]
    found = {}
    if lines:
        for count, word in _SUMMARY.findall(lines[-1]):
            found[word.rstrip("s") if word == "errors" else word] = int(count)
    return found


def parity_run(work: Path, workers: str, per_process_import_s: float, quick: bool) -> dict:
    reports = work / f"reports-n{workers}"
    junit = work / f"junit-n{workers}.xml"
    import_dir = work / f"imports-n{workers}"
    argv = [
        proc.PYTHON,
        "-m",
        "pytest",
        "parity/",
        "-n",
        workers,
        "-p",
        "no:cacheprovider",
        "-p",
        "bench.pytest_imports",
        "--parity-reports",
        reports,
        f"--junitxml={junit}",
        "-q",
    ]
    if quick:
        argv += ["--parity-config", "gs1-k4-poisson-n32"]
    log(f"parity: {' '.join(str(a) for a in argv[1:])}")
    res = proc.run(
        argv,
        log=work / f"pytest-n{workers}.log",
        sample_tree=True,
        env=proc.measured_env({"BENCH_IMPORT_DIR": str(import_dir)}),
    )
    in_run = {p.stem: json.loads(p.read_text()) for p in sorted(import_dir.glob("*.json"))}
    hub = reports / "latest"
    timing_files = sorted((hub / "timings").glob("*.json")) if (hub / "timings").is_dir() else []
    compute, by_stage, by_backend = 0.0, {}, {}
    busy_files = 0
    for path in timing_files:
        cases = json.loads(path.read_text())
        busy_files += bool(cases)
        for case in cases.values():
            for backend, stages in case.items():
                for stage, seconds in stages.items():
                    compute += seconds
                    by_stage[stage] = by_stage.get(stage, 0.0) + seconds
                    by_backend[backend] = by_backend.get(backend, 0.0) + seconds
    # Processes that can run cases: the xdist workers (or the single -n 0 process). Each imports
    # both frameworks; an idle one still holds its share of the wall time.
    n_proc = max(len(in_run), busy_files, 1)
    process_seconds = res.wall_s * n_proc
    # Import seconds as measured inside the run (bench.pytest_imports), else the standalone figure.
    imports = sum(v["total_s"] for v in in_run.values()) if in_run else per_process_import_s * n_proc
    totals = {}
    results_path = hub / "results.json"
    if results_path.is_file():
        results = json.loads(results_path.read_text())
        totals = {
            **results.get("totals", {}),
            "complete": results.get("complete"),
            "first_divergence": {k: v.get("first_divergence") for k, v in results.get("configs", {}).items()},
        }
    workers_peak = [p for p in res.per_process_peak_mib if "pytest" in p[1] or "execnet" in p[1] or "python" in p[1]]
    return {
        "argv": res.argv[1:],
        "rc": res.rc,
        "wall_s": res.wall_s,
        "cpu_s": res.cpu_s,
        "maxrss_mib_any_process": res.maxrss_mib,
        "per_process_peak_mib": workers_peak[:8],
        "load_before": res.load_before,
        "load_after": res.load_after,
        "case_processes": n_proc,
        "busy_processes": busy_files,
        "timing_files": [p.name for p in timing_files],
        "import_in_run_s": {k: v["total_s"] for k, v in in_run.items()},
        "import_source": "in-run (bench.pytest_imports)" if in_run else "standalone python -c",
        "split_process_seconds": {
            "total": process_seconds,
            "framework_import": imports,
            "backend_compute": compute,
            "harness_overhead": process_seconds - imports - compute,
        },
        "compute_by_stage_s": dict(sorted(by_stage.items(), key=lambda kv: -kv[1])),
        "compute_by_backend_s": by_backend,
        "pytest": _pytest_summary(work / f"pytest-n{workers}.log"),
        "junit": _junit_counts(junit),
        "hub_totals": totals,
        "hub": str(hub.resolve()) if hub.exists() else None,
    }


def section_parity(work: Path, quick: bool) -> dict:
    imports = import_times(1 if quick else 3)
    per_process = imports["both"]["import_only_s"]
    out = {
        "golden_du": _du(proc.REPO_ROOT / "golden"),
        "import_per_process_s": per_process,
        "imports": imports,
        "cpu_count": os.cpu_count(),
        "note": "hubs written under the bench work folder (--parity-reports), so reports/latest is left alone",
    }
    for workers in ("auto", "0"):
        out[f"n_{workers}"] = parity_run(work, workers, per_process, quick)
    auto, zero = out["n_auto"], out["n_0"]
    out["speedup_auto_over_0"] = zero["wall_s"] / auto["wall_s"] if auto["wall_s"] else math.nan
    out["versus_upstream"] = versus(work, 1 if quick else 3)
    return out
