"""Measured child processes of bench.run: `python -m bench.worker TASK ARGS_JSON OUT_JSON`.

Run only in the benchmark environment (bench.proc.measured_env); the thread
settings are repeated here before any framework import for a standalone run.
Tasks:
  steps      same initial weights, same number of steps through both adapters; final losses
  quality    train one backend via its Python API, reconstruct, score against the ground truth
  reference  noise floor (loss at the true object) and ceiling (stitched true patches) of the metrics
"""

from __future__ import annotations

from backends.common.threads import pin_threads

pin_threads()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from backends.common.config import make_config  # noqa: E402
from backends.common.simulate import simulate  # noqa: E402
from bench.sections import BACKENDS  # noqa: E402


def _module(backend: str, name: str):
    """Module `name` of a bundled backend; `backend` is its adapter name, which is also its package."""
    if backend not in BACKENDS:
        raise ValueError(f"no bundled backend {backend!r}; one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"backends.{backend}.{name}")


def _dataset(spec: dict):
    """simulate(**spec); an extra `probe_radius` (px) swaps the simulator's disk probe for a wider
    one of the same form in this process only (quality investigation; the backends are untouched)."""
    spec = dict(spec)
    radius = spec.pop("probe_radius", None)
    if radius is None:
        return simulate(**spec)
    import backends.common.simulate as sim

    def wider_probe(n: int, curvature: float = 0.02) -> np.ndarray:
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) - n / 2
        return np.clip(radius + 0.5 - np.hypot(xx, yy), 0.0, 1.0) * np.exp(1j * curvature * (xx**2 + yy**2))

    original, sim.make_probe = sim.make_probe, wider_probe
    try:
        return sim.simulate(**spec)
    finally:
        sim.make_probe = original


def per_patch(patches, x, y, data) -> dict:
    """Each predicted patch against the true object at its position, inside the probe disk only,
    after fitting one complex scalar per patch: how well single patches are solved, and how much
    their fitted global phases scatter (what the stitcher then averages)."""
    from backends.common.simulate import extract_patches

    arr = np.asarray(patches.numpy() if hasattr(patches, "numpy") else patches, dtype=np.complex128)
    truth = extract_patches(np.asarray(data.object, np.complex128), np.asarray(x), np.asarray(y), data.N)
    disk = np.abs(np.asarray(data.probe)) > 0.5
    a, b = truth[:, disk], arr[:, disk]
    scale = np.einsum("pk,pk->p", b.conj(), a) / np.maximum(np.einsum("pk,pk->p", b.conj(), b).real, 1e-30)
    fitted = scale[:, None] * b
    rel = np.linalg.norm(a - fitted, axis=1) / np.linalg.norm(a, axis=1)
    dphi = np.angle(fitted * a.conj())
    offsets = np.angle(scale)
    spread = np.angle(np.exp(1j * (offsets - np.angle(np.mean(np.exp(1j * offsets))))))
    return {
        "median_rel_error": float(np.median(rel)),
        "median_phase_rmse_rad": float(np.median(np.sqrt(np.mean(dphi**2, axis=1)))),
        "phase_offset_std_rad": float(spread.std()),
        "scale_cv": float(np.std(np.abs(scale)) / np.mean(np.abs(scale))),
    }


def task_steps(args: dict) -> dict:
    """Both adapters, one initial state (weights from backends.common.weights, log g from the tf_pinn adapter)."""
    from adapters.registry import get_adapter
    from backends.common.dataset import load_dataset
    from backends.common.weights import initial_weights

    cfg = make_config(args.get("config", {}))
    data = load_dataset(args["data"])
    scales = get_adapter("tf_pinn").scales(data.diffraction, data.probe, cfg.amp_activation)
    init = initial_weights(cfg.seed, cfg.n_filters_scale, scales["log_intensity_scale"])
    out = {"config": cfg.to_dict(), "max_steps": args["max_steps"], "scales": scales, "backends": {}}
    weights = {}
    for name in BACKENDS:
        adapter = get_adapter(name)
        start = time.perf_counter()
        result = adapter.train(cfg.to_dict(), args["data"], {k: v.copy() for k, v in init.items()}, args["max_steps"])
        losses = result["history"]["step_loss"]
        weights[name] = result["weights"]
        out["backends"][name] = {
            "steps": len(losses),
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "step_loss": losses,
            "seconds": time.perf_counter() - start,
        }
    # Control: the tf_pinn backend against itself with every kernel 1 ulp up. If this gap grows like the
    # tf_pinn/torch_pinn one, the split is float32 rounding amplified by training, not a backend difference.
    nudged = {k: (np.nextafter(v, np.float32(np.inf)) if k.endswith(".kernel") else v.copy()) for k, v in init.items()}
    control = get_adapter("tf_pinn").train(cfg.to_dict(), args["data"], nudged, args["max_steps"])["history"][
        "step_loss"
    ]

    def gaps(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        k = min(len(x), len(y))
        return np.abs(y[:k] - x[:k]) / np.maximum(np.abs(x[:k]), 1e-30)

    a = out["backends"]["tf_pinn"]["step_loss"]
    cross, ctrl = gaps(a, out["backends"]["torch_pinn"]["step_loss"]), gaps(a, control)
    out["final_rel_gap"] = float(cross[-1]) if cross.size else None
    out["max_step_rel_gap"] = float(cross.max()) if cross.size else None
    out["rel_gap_by_step"] = [float(g) for g in cross]
    out["control_tf_1ulp"] = {
        "final_loss": control[-1] if control else None,
        "final_rel_gap": float(ctrl[-1]) if ctrl.size else None,
        "rel_gap_by_step": [float(g) for g in ctrl],
    }
    # First step whose relative gap exceeds 1e-3 (None: never).
    first = lambda g: next((i for i, v in enumerate(g) if v > 1e-3), None)  # noqa: E731
    out["first_step_gap_over_1e-3"] = {"tf_vs_torch": first(cross), "tf_vs_tf_1ulp": first(ctrl)}
    out["weights_max_abs_diff"] = max(
        float(
            np.max(
                np.abs(np.asarray(weights["tf_pinn"][n], np.float64) - np.asarray(weights["torch_pinn"][n], np.float64))
            )
        )
        for n in weights["tf_pinn"]
    )
    return out


def _train(backend: str, config: dict, data):
    train = _module(backend, "train").train
    start = time.perf_counter()
    result = train(make_config(config), data)
    return result, time.perf_counter() - start


def _levelled(epoch_loss: list) -> dict:
    """How much the epoch loss still moved over the last fifth of training."""
    n = len(epoch_loss)
    if n < 10:
        return {"last_fifth_rel_drop": None}
    w = max(n // 10, 1)
    late = float(np.mean(epoch_loss[-w:]))
    earlier = float(np.mean(epoch_loss[n - n // 5 - w : n - n // 5]))
    return {"last_fifth_rel_drop": (earlier - late) / earlier}


def task_quality(args: dict) -> dict:
    from backends.common.imagemetrics import reconstruction_quality

    backend = args["backend"]
    data = _dataset(args["data"])
    result, train_s = _train(backend, args["config"], data)
    stitch = _module(backend, "stitch")
    start = time.perf_counter()
    patches, x, y = stitch.predict_patches(result.model, data)
    obj, origin = stitch.stitch_patches(patches, x, y)
    recon_s = time.perf_counter() - start
    # Diagnostic: the same patches averaged without the phase alignment of §11.
    unaligned, _ = stitch.stitch_patches(patches, x, y, align_phases=False)
    patch_fit = per_patch(patches, x, y, data)
    inset = args.get("inset_px", 0.0)
    score, _ = reconstruction_quality(obj, origin, data.object, data.xcoords, data.ycoords, inset)
    score_u, _ = reconstruction_quality(unaligned, origin, data.object, data.xcoords, data.ycoords, inset)
    hist = result.history
    np.savez_compressed(
        args["npz"],
        object=np.asarray(obj),
        unaligned=np.asarray(unaligned),
        origin_px=np.asarray(origin),
        epoch_loss=np.asarray(hist["epoch_loss"]),
    )
    return {
        "backend": backend,
        "config": result.model.config.to_dict(),
        "train_s": train_s,
        "reconstruct_s": recon_s,
        "epochs": len(hist["epoch_loss"]),
        "steps": len(hist["step_loss"]),
        "final_epoch_loss": hist["epoch_loss"][-1] if hist["epoch_loss"] else None,
        "epoch_loss": hist["epoch_loss"],
        **_levelled(hist["epoch_loss"]),
        "metrics": score,
        "metrics_unaligned_stitch": score_u,
        "per_patch_in_probe_disk": patch_fit,
        "npz": args["npz"],
    }


def task_reference(args: dict) -> dict:
    """Backend-independent yardsticks, computed with the float64 referee's physics and stitching
    (adapters/referee.py), so that neither backend is its own measure."""
    from adapters import referee
    from backends.common.imagemetrics import reconstruction_quality
    from backends.common.simulate import extract_patches

    data = _dataset(args["data"])
    n = data.N
    truth = extract_patches(data.object.astype(np.complex128), data.xcoords, data.ycoords, n)
    obj, origin = referee.stitch_patches(truth, data.xcoords, data.ycoords)
    ceiling, _ = reconstruction_quality(
        obj, tuple(float(v) for v in origin), data.object, data.xcoords, data.ycoords, args.get("inset_px", 0.0)
    )
    floors = {}
    for name, overrides in args["configs"].items():
        cfg = make_config(overrides)
        groups = referee.group_positions(data.xcoords, data.ycoords, cfg.to_dict())
        patches = (truth * referee.support_mask(n))[groups["nn_indices"]]  # the network outputs O on S (§7)
        offsets = groups["offsets_px"]
        ext = referee.extend_objects(patches, offsets) if cfg.object_big else patches
        far = referee.far_field(ext, data.probe)
        observed = data.diffraction.astype(np.float64)[groups["nn_indices"]]
        # The best g for the true object: matches total counts.
        log_g = 0.5 * np.log(float((observed**2).sum()) / float((np.abs(far) ** 2).sum()))
        floors[name] = referee.compute_loss(far, observed, log_g, cfg.loss)
    lit = np.abs(np.asarray(data.probe)) > 0
    return {
        "stitched_true_patches": ceiling,
        "loss_at_true_object": floors,
        "support_half_width_px": n / 4,
        "probe_area_fraction_of_support": float(lit.sum() / (n / 2) ** 2),
        "metadata": data.metadata,
    }


TASKS = {"steps": task_steps, "quality": task_quality, "reference": task_reference}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task, args, out = argv[0], json.loads(Path(argv[1]).read_text()), Path(argv[2])
    result = TASKS[task](args)
    out.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
