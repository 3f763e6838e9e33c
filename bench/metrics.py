"""Reconstruction quality against the simulator's ground truth (docs/benchmarks.md, section quality).

Reuses backends.common.imagemetrics (global phase/scale fit, SSIM, FRC, relative error, the crop to
the canvas and the interior mask); only the benchmark's table of figures is made here.
"""

from __future__ import annotations

import numpy as np

from backends.common.imagemetrics import (align_global_phase_scale, crop_truth, frc_curve, frc_mean, interior_box,
                                         relative_error, ssim)


def quality(obj: np.ndarray, origin_px, truth: np.ndarray, xcoords, ycoords, inset_px: float = 0.0) -> dict:
    """amp SSIM, phase RMSE (rad), relative error and FRC of `obj` against `truth` on the interior."""
    obj = np.asarray(obj, dtype=np.complex128)
    gt, inside = crop_truth(np.asarray(truth), obj.shape, origin_px)
    rows, cols = interior_box(xcoords, ycoords, origin_px, obj.shape, inset_px)
    gt, rec, ok = gt[rows, cols], obj[rows, cols], inside[rows, cols]
    if not ok.all():
        raise ValueError("interior reaches outside the ground-truth object")
    aligned, scale = align_global_phase_scale(gt, rec)
    amp_gt, amp_rec = np.abs(gt), np.abs(aligned)
    dphi = np.angle(aligned * np.conj(gt))  # wrapped to (-pi, pi]
    freq, curve = frc_curve(gt, aligned)
    # The trivial baseline: a constant object (the best complex constant), for scale.
    const = np.full_like(gt, np.vdot(np.ones_like(gt), gt) / gt.size)
    return {
        "interior_px": [int(gt.shape[0]), int(gt.shape[1])],
        # SSIM against the truth uses the truth's data range: a reconstruction with holes or outliers
        # must not widen the range its own score is judged in.
        "amp_ssim": ssim(amp_gt, amp_rec, data_range=float(np.ptp(amp_gt))),
        "phase_ssim": ssim(np.angle(gt), np.angle(aligned), data_range=float(np.ptp(np.angle(gt)))),
        "phase_rmse_rad": float(np.sqrt(np.mean(dphi ** 2))),
        "amp_rel_error": float(np.linalg.norm(amp_rec - amp_gt) / np.linalg.norm(amp_gt)),
        "rel_error": relative_error(gt, aligned),
        "frc_mean_half_nyquist": frc_mean(freq, curve),
        "fit_scale_abs": abs(scale), "fit_phase_rad": float(np.angle(scale)),
        "baseline_const_rel_error": relative_error(gt, const),
        "baseline_const_phase_rmse_rad": float(np.sqrt(np.mean(np.angle(const * np.conj(gt)) ** 2))),
    }, (gt, aligned)
