"""Quality investigation: which scan, probe and configuration let the PINN reconstruct.

    python -m bench.investigate [--backend torch_pinn] [--epochs 100] [--only NAME ...]

Trains one backend (torch_pinn by default: the faster one; the backends agree to
float32 rounding) through bench.worker's `quality` task on variants of the
benchmark scan and prints, per variant, the final loss, the scores with the
contract's stitching (§11: window-weighted, phase-aligned) and without the alignment, and the
per-patch figures (how well single patches are solved inside the probe disk,
and how much their global phases scatter). Figures go to
.bench/investigate-<UTC>-<backend>.json. About 3 minutes per variant on one idle core.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from backends.common.fileio import atomic_write_text
from bench import proc
from bench.sections import BACKENDS, _worker, log

# name -> (simulate arguments, config overrides). Default scan (contracts v2, v3): 400 positions, step N/6,
# probe disk radius N/4 - 1 = 7 px filling the 16 px support S.
VARIANTS = {
    "gs1": ({}, {}),
    "gs2": ({}, {"gridsize": 2}),
    # gs2 without the merge: each member solved alone, as at gs1 but from a gs2 batch (what the merge adds).
    "gs2-nomerge": ({}, {"gridsize": 2, "object_big": False}),
    "gs2-k6": ({}, {"gridsize": 2, "neighbor_count": 6}),
    "gs2-filters4": ({}, {"gridsize": 2, "n_filters_scale": 4}),
    "gs1-filters1": ({}, {"n_filters_scale": 1}),  # half the width: how much capacity per pattern matters
    "gs1-step8": ({"step": 8.0}, {}),
    "gs2-step8": ({"step": 8.0}, {"gridsize": 2}),
    "gs2-lr3e-4": ({}, {"gridsize": 2, "learning_rate": 3e-4}),
    "gs1-probe5.5-step8": ({"probe_radius": 5.5, "step": 8.0}, {}),
    "gs2-probe5.5-step8": ({"probe_radius": 5.5, "step": 8.0}, {"gridsize": 2}),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.investigate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="torch_pinn", choices=BACKENDS)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--n-positions", type=int, default=400)
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), help="variants to run (default: all)")
    args = parser.parse_args(argv)
    bench_dir = proc.REPO_ROOT / ".bench"
    bench_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out_path = bench_dir / f"investigate-{stamp}-{args.backend}.json"  # two backends may start in one second
    results = {"created": stamp, "backend": args.backend, "epochs": args.epochs, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="investigate-", dir=bench_dir) as tmp:
        work = Path(tmp)
        for name in args.only or VARIANTS:
            sim, overrides = VARIANTS[name]
            data = {"n_positions": args.n_positions, "n": 32, "seed": 7, **sim}
            log(f"investigate: {name} ({args.epochs} epochs, load {proc.load()})")
            task = {
                "backend": args.backend,
                "data": data,
                "config": {**overrides, "epochs": args.epochs},
                "npz": str(work / f"{name}.npz"),
            }
            result, res = _worker("quality", task, work, name)
            result.pop("npz", None)
            result["epoch_loss_every_10"] = result.pop("epoch_loss")[::10]
            result["data"] = data
            result["process"] = {"wall_s": res.wall_s, "cpu_s": res.cpu_s, "load_before": res.load_before}
            results["variants"][name] = result
            atomic_write_text(out_path, json.dumps(results, indent=1, default=float))
    print(render(results))
    print(f"\nfigures: {out_path.relative_to(proc.REPO_ROOT)}")
    return 0


def render(results: dict) -> str:
    head = [
        "variant",
        "loss",
        "SSIM",
        "phase",
        "FRC",
        "unaligned: SSIM",
        "unaligned: phase",
        "patch err",
        "patch phase",
        "offset std",
    ]
    rows = []
    for name, r in results["variants"].items():
        m, w, p = r["metrics"], r["metrics_unaligned_stitch"], r.get("per_patch_in_probe_disk", {})
        rows.append(
            [
                name,
                f"{r['final_epoch_loss']:.3f}",
                f"{m['amp_ssim']:.3f}",
                f"{m['phase_rmse_rad']:.3f}",
                f"{m['frc_mean_half_nyquist']:.3f}",
                f"{w['amp_ssim']:.3f}",
                f"{w['phase_rmse_rad']:.3f}",
                f"{p.get('median_rel_error', float('nan')):.3f}",
                f"{p.get('median_phase_rmse_rad', float('nan')):.3f}",
                f"{p.get('phase_offset_std_rad', float('nan')):.3f}",
            ]
        )
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join(
        [
            f"{results['backend']}, {results['epochs']} epochs; phase = RMSE rad; patch = per patch in the "
            "probe disk after a per-patch complex fit",
            fmt(head),
            fmt(["-" * w for w in widths]),
            *map(fmt, rows),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
