"""Reconstruction quality against the simulator's ground truth (docs/benchmarks.md, section quality).

Reuses parity.imagemetrics (global phase/scale fit, SSIM, FRC, relative error);
only the crop to the canvas and the interior mask are defined here.
"""

from __future__ import annotations

import math

import numpy as np

from parity.imagemetrics import align_global_phase_scale, frc_curve, frc_mean, relative_error, ssim


def crop_truth(truth: np.ndarray, canvas_shape: tuple, origin_px) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth on the canvas grid: canvas pixel (r, c) is object pixel (y0 + r, x0 + c).

    Returns (truth_on_canvas, inside) where `inside` marks canvas pixels that exist in the
    ground truth (origin_px is integral by construction, canvas_geometry floors it).
    """
    x0, y0 = int(round(origin_px[0])), int(round(origin_px[1]))
    height, width = canvas_shape
    out = np.zeros((height, width), dtype=np.complex128)
    inside = np.zeros((height, width), dtype=bool)
    r0, c0 = max(0, -y0), max(0, -x0)
    r1, c1 = min(height, truth.shape[0] - y0), min(width, truth.shape[1] - x0)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = truth[y0 + r0:y0 + r1, x0 + c0:x0 + c1]
        inside[r0:r1, c0:c1] = True
    return out, inside


def interior_box(xcoords, ycoords, origin_px, canvas_shape, inset_px: float = 0.0) -> tuple[slice, slice]:
    """Canvas rows/cols whose object pixel lies in the rectangle spanned by the scan positions,
    shrunk by `inset_px` on each side: every such pixel is near the centre of some probe."""
    x0, y0 = origin_px
    cmin = math.ceil(np.min(xcoords) + inset_px - x0)
    cmax = math.floor(np.max(xcoords) - inset_px - x0)
    rmin = math.ceil(np.min(ycoords) + inset_px - y0)
    rmax = math.floor(np.max(ycoords) - inset_px - y0)
    height, width = canvas_shape
    return slice(max(rmin, 0), min(rmax + 1, height)), slice(max(cmin, 0), min(cmax + 1, width))


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
        "amp_ssim": ssim(amp_gt, amp_rec),
        "phase_ssim": ssim(np.angle(gt), np.angle(aligned)),
        "phase_rmse_rad": float(np.sqrt(np.mean(dphi ** 2))),
        "amp_rel_error": float(np.linalg.norm(amp_rec - amp_gt) / np.linalg.norm(amp_gt)),
        "rel_error": relative_error(gt, aligned),
        "frc_mean_half_nyquist": frc_mean(freq, curve),
        "fit_scale_abs": abs(scale), "fit_phase_rad": float(np.angle(scale)),
        "baseline_const_rel_error": relative_error(gt, const),
        "baseline_const_phase_rmse_rad": float(np.sqrt(np.mean(np.angle(const * np.conj(gt)) ** 2))),
    }, (gt, aligned)
