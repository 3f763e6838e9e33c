"""The readable table bench.run prints from its results JSON."""

from __future__ import annotations


def _f(value, fmt="{:.2f}"):
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _rows(title: str, header: list, rows: list) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return [title, line(header), line(["-" * w for w in widths]), *map(line, rows), ""]


def table_backends(s: dict) -> list[str]:
    out = []
    rows = []
    for name, kinds in s["cli"].items():
        for kind, r in kinds.items():
            rows.append(
                [
                    name,
                    kind,
                    _f(r["wall_s"]),
                    _f(r["maxrss_mib"], "{:.0f}"),
                    _f(r["cpu_s"]),
                    _f(r.get("final_epoch_loss"), "{:.4f}"),
                    " ".join(map(str, r["load_before"])),
                ]
            )
    out += _rows(
        f"backends: CLI on the default simulated scan ({s['epochs']} epochs)",
        ["backend", "command", "wall s", "peak RSS MiB", "cpu s", "final loss", "load before"],
        rows,
    )
    ratio = s["torch_over_tf"]
    out.append(f"torch_pinn/tf_pinn wall ratio: train {ratio['train']:.2f}, infer {ratio['infer']:.2f}")
    imp = s["imports"]
    out += [""] + _rows(
        "framework import (python -c, min of repeats; 'import only' = minus bare python)",
        ["import", "wall s", "import only s", "peak RSS MiB"],
        [[v["code"], _f(v["min_s"]), _f(v["import_only_s"]), _f(v["maxrss_mib"], "{:.0f}")] for v in imp.values()],
    )
    same = s["same_start"]
    b = same["backends"]
    out += _rows(
        f"same initial weights, {same['max_steps']} steps (adapters)",
        ["backend", "first loss", "final loss", "seconds"],
        [[n, _f(v["first_loss"], "{:.6f}"), _f(v["final_loss"], "{:.6f}"), _f(v["seconds"])] for n, v in b.items()],
    )
    out.append(
        f"final-loss relative gap {_f(same['final_rel_gap'], '{:.2e}')}, max over steps "
        f"{_f(same['max_step_rel_gap'], '{:.2e}')}, max |weight diff| {_f(same['weights_max_abs_diff'], '{:.2e}')}"
    )
    return out + [""]


# The targets for every quality run (backend stitch): amplitude SSIM, phase RMSE, FRC.
QUALITY_TARGETS = {"amp_ssim": (">=", 0.90), "phase_rmse_rad": ("<=", 0.10), "frc_mean_half_nyquist": (">=", 0.95)}


def _quality_targets(runs: dict) -> list[str]:
    """One line per run: which targets it meets; one per config: tf_pinn / torch_pinn training seconds."""
    lines = []
    for label, run in runs.items():
        missed = [
            f"{key} {run['metrics'][key]:.3f} (target {op} {limit})"
            for key, (op, limit) in QUALITY_TARGETS.items()
            if not (run["metrics"][key] >= limit if op == ">=" else run["metrics"][key] <= limit)
        ]
        lines.append(f"targets, {label}: " + ("all met" if not missed else "missed " + ", ".join(missed)))
    for config in sorted({label.split("/")[0] for label in runs}):
        tf_run, torch_run = runs.get(f"{config}/tf_pinn"), runs.get(f"{config}/torch_pinn")
        if tf_run and torch_run:
            lines.append(
                f"train seconds, {config}: tf_pinn / torch_pinn = {tf_run['train_s'] / torch_run['train_s']:.2f}"
            )
    return lines


def table_quality(s: dict) -> list[str]:
    ref = s["reference"]
    rows = []
    for label, run in s["runs"].items():
        for kind, m in (("backend stitch", run["metrics"]), ("unaligned stitch*", run["metrics_unaligned_stitch"])):
            rows.append(
                [
                    label,
                    kind,
                    run["epochs"],
                    _f(run["final_epoch_loss"], "{:.3f}"),
                    _f(run.get("last_fifth_rel_drop"), "{:.1%}"),
                    _f(m["amp_ssim"], "{:.3f}"),
                    _f(m["phase_rmse_rad"], "{:.3f}"),
                    _f(m["rel_error"], "{:.3f}"),
                    _f(m["frc_mean_half_nyquist"], "{:.3f}"),
                    _f(run["train_s"], "{:.0f}"),
                ]
            )
    c = ref["stitched_true_patches"]
    rows.append(
        [
            "true patches",
            "backend stitch",
            "-",
            "-",
            "-",
            _f(c["amp_ssim"], "{:.3f}"),
            _f(c["phase_rmse_rad"], "{:.3f}"),
            _f(c["rel_error"], "{:.3f}"),
            _f(c["frc_mean_half_nyquist"], "{:.3f}"),
            "-",
        ]
    )
    rows.append(
        [
            "constant object",
            "-",
            "-",
            "-",
            "-",
            "-",
            _f(c["baseline_const_phase_rmse_rad"], "{:.3f}"),
            _f(c["baseline_const_rel_error"], "{:.3f}"),
            "-",
            "-",
        ]
    )
    d = s["dataset"]
    interior = s["runs"] and next(iter(s["runs"].values()))["metrics"]["interior_px"]
    out = _rows(
        f"quality: simulate(n_positions={d['n_positions']}, n={d['n']}, step={d.get('step', 'N/4')}), "
        f"interior {interior} px",
        [
            "run",
            "stitch",
            "epochs",
            "final loss",
            "drop last 1/5",
            "amp SSIM",
            "phase RMSE rad",
            "rel err",
            "FRC<=0.25",
            "train s",
        ],
        rows,
    )
    floors = ", ".join(f"{k} {v:.3f}" for k, v in ref["loss_at_true_object"].items())
    out.append(f"loss at the true object (noise floor): {floors}")
    out.append("amp SSIM uses the truth's data range; phase RMSE after one global complex factor is removed")
    out += _quality_targets(s["runs"])
    out.append("* unaligned stitch: diagnostic, the same patches averaged without §11's phase alignment")
    patch_rows = [
        [
            label,
            _f(p.get("median_rel_error"), "{:.3f}"),
            _f(p.get("median_phase_rmse_rad"), "{:.3f}"),
            _f(p.get("phase_offset_std_rad"), "{:.3f}"),
        ]
        for label, run in s["runs"].items()
        if (p := run.get("per_patch_in_probe_disk"))
    ]
    if patch_rows:
        out += [""] + _rows(
            "per patch, inside the probe disk, after one complex fit per patch",
            ["run", "median rel err", "median phase RMSE rad", "std of fitted phase offsets rad"],
            patch_rows,
        )
    if "png" in s:
        out.append(f"png: {s['png']}")
    return out + [""]


def table_parity(s: dict) -> list[str]:
    rows = []
    for key in ("n_auto", "n_0"):
        r = s.get(key)
        if not r:
            continue
        sp = r["split_process_seconds"]
        counts = r["junit"] or r["pytest"]
        rows.append(
            [
                key.replace("n_", "-n "),
                r["rc"],
                _f(r["wall_s"], "{:.0f}"),
                _f(r["maxrss_mib_any_process"], "{:.0f}"),
                r["case_processes"],
                _f(sp["total"], "{:.0f}"),
                _f(sp["framework_import"], "{:.0f}"),
                _f(sp["backend_compute"], "{:.0f}"),
                _f(sp["harness_overhead"], "{:.0f}"),
                f"{counts.get('passed', '-')}/{counts.get('failures', counts.get('failed', '-'))}/"
                f"{counts.get('errors', '-')}",
                " ".join(map(str, r["load_before"])),
            ]
        )
    out = _rows(
        "parity: pytest parity/ -p no:cacheprovider (proc-s = wall x case-running processes; import measured in-run)",
        [
            "run",
            "rc",
            "wall s",
            "max RSS MiB",
            "procs",
            "proc-s",
            "import",
            "compute",
            "overhead",
            "pass/fail/err",
            "load before",
        ],
        rows,
    )
    g = s["golden_du"]
    out.append(
        f"golden/: {g['files']} files, {g['apparent_mib']:.2f} MiB ({g['disk_mib']:.2f} MiB on disk); "
        f"import per process {s['import_per_process_s']:.2f} s; "
        f"speed-up -n auto over -n 0: {s['speedup_auto_over_0']:.2f}"
    )
    vs = s.get("versus_upstream") or {}
    if "ratio_wall" in vs:
        ours, theirs = vs["ours"], vs["theirs"]
        out.append(
            f"side by side (bench.versus): parity/ -n auto {ours['median_wall_s']:.1f} s (peak "
            f"{ours['peak_mib_largest_process']:.0f} MiB), PtychoPINN's own parity tests "
            f"{theirs['median_wall_s']:.1f} s (peak {theirs['peak_mib_largest_process']:.0f} MiB): "
            f"{vs['ratio_wall']:.2f}x (target {vs['target_ratio']}x)"
        )
    elif vs:
        out.append(f"side by side (bench.versus): skipped, {vs['skipped']}")
    return out + [""]


def table(results: dict) -> str:
    lines = [
        f"bench {results['created']} (quick={results['quick']}), {results['machine']['cpu_count']} CPUs, "
        f"load at start {results['load_at_start']}, at end {results.get('load_at_end')}",
        "",
    ]
    makers = {"backends": table_backends, "quality": table_quality, "parity": table_parity}
    for name, section in results["sections"].items():
        try:
            lines += makers[name](section)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            lines.append(f"{name}: table not printable ({type(exc).__name__}: {exc}); see the JSON")
    for name, error in results["errors"].items():
        lines.append(f"{name}: FAILED: {error}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the table of a results JSON again: python -m bench.report .bench/results-<stamp>.json"""
    import json
    import sys
    from pathlib import Path

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.report .bench/results-<stamp>.json", file=sys.stderr)
        return 2
    print(table(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
