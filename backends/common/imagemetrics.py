"""Image metrics for reconstructions: global phase/scale alignment, SSIM, FRC.

Ptychography recovers an object only up to a global complex factor, so two
correct reconstructions may differ by a constant phase and amplitude scale.
These metrics are used after removing that factor; numpy/scipy only.

Shared by the harness, the benchmarks and the infer command line, which
compares a reconstruction with the simulator's truth (`compare_with_truth`). Metrics, not numerics
of a backend: nothing here computes what the backends are compared on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004
SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5  # 11-pixel Gaussian window, as skimage's gaussian_weights
HALF_NYQUIST = 0.25  # cycles per pixel


def align_global_phase_scale(reference, other, mask=None) -> tuple[np.ndarray, complex]:
    """c·other with the complex scalar c that minimises ||reference - c·other||² over `mask`.

    Closed form: c = <other, reference> / <other, other>. ValueError when `other`
    is zero where it is compared (no scale can be fitted).
    """
    a = np.asarray(reference, dtype=np.complex128)
    b = np.asarray(other, dtype=np.complex128)
    where = np.ones(a.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    power = float(np.vdot(b[where], b[where]).real)
    if power == 0.0:
        raise ValueError("cannot fit a global phase and scale: the second object is zero")
    scale = np.vdot(b[where], a[where]) / power
    return scale * b, complex(scale)


def relative_error(reference, other, mask=None) -> float:
    """||reference - other|| / ||reference|| over `mask`."""
    a = np.asarray(reference, dtype=np.complex128)
    b = np.asarray(other, dtype=np.complex128)
    where = np.ones(a.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    norm = float(np.linalg.norm(a[where]))
    if norm == 0.0:
        raise ValueError("relative error undefined: the reference object is zero")
    return float(np.linalg.norm(a[where] - b[where]) / norm)


def ssim(x, y, *, data_range: float | None = None) -> float:
    """Mean structural similarity of two real 2-D images (Gaussian window, σ = 1.5).

    The border where the window would reach outside the image is left out of
    the mean, as in Wang et al.; data_range defaults to the joint range of both
    images (the harness's cross-backend comparisons). Against a ground truth,
    pass the truth's range (`np.ptp(truth)`), so the result does not depend on
    how far the reconstruction strays.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"ssim needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    if data_range is None:
        data_range = max(x.max(), y.max()) - min(x.min(), y.min())
    if data_range == 0:
        data_range = 1.0  # two constant images: only the constants C1, C2 decide, and they cancel
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def blur(image):
        return ndimage.gaussian_filter(image, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    index_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(x.shape) > 2 * pad:
        index_map = index_map[pad:-pad, pad:-pad]
    return float(index_map.mean())


def frc_curve(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two 2-D images (real or complex).

    Returns (frequency in cycles per pixel at ring centres, up to Nyquist 0.5;
    FRC per ring). FRC = |Σ Fa·conj(Fb)| / sqrt(Σ|Fa|² Σ|Fb|²) per ring; a ring
    where both images have no power counts as 1 (they agree), one-sided power as 0.
    """
    a = np.asarray(a, dtype=np.complex128)
    b = np.asarray(b, dtype=np.complex128)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"frc needs two 2-D images of one shape, got {a.shape} and {b.shape}")
    ny, nx = a.shape
    n_rings = max(min(ny, nx) // 2, 1)
    radius = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    inside = radius <= 0.5  # corners beyond Nyquist are left out
    ring = np.minimum((radius[inside] / 0.5 * n_rings).astype(np.int64), n_rings - 1)
    fa = np.fft.fft2(a)[inside]
    fb = np.fft.fft2(b)[inside]
    cross = fa * np.conj(fb)
    cross_sum = np.bincount(ring, cross.real, n_rings) + 1j * np.bincount(ring, cross.imag, n_rings)
    power_a = np.bincount(ring, np.abs(fa) ** 2, n_rings)
    power_b = np.bincount(ring, np.abs(fb) ** 2, n_rings)
    denominator = np.sqrt(power_a * power_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = np.where(
            denominator > 0, np.abs(cross_sum) / denominator, np.where((power_a == 0) & (power_b == 0), 1.0, 0.0)
        )
    frequency = (np.arange(n_rings) + 0.5) * (0.5 / n_rings)
    return frequency, np.minimum(curve, 1.0)  # Cauchy-Schwarz: > 1 only by rounding


def frc_mean(frequency: np.ndarray, curve: np.ndarray, up_to: float = HALF_NYQUIST) -> float:
    """Mean FRC over the rings whose centre is at or below `up_to` cycles per pixel."""
    selected = curve[frequency <= up_to]
    return float(selected.mean()) if selected.size else float(curve[0])


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
        out[r0:r1, c0:c1] = truth[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1]
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


@dataclass(frozen=True)
class TruthComparison:
    """A reconstruction beside the ground truth on its canvas, aligned, with metrics."""

    truth: np.ndarray  # (H, W) complex128: the truth cropped to the canvas, zero outside it
    aligned: np.ndarray  # (H, W) complex128: the reconstruction times the fitted global factor
    box: tuple  # (rows, cols) slices of the canvas the metrics are computed on (scanned interior)
    amp_ssim: float  # SSIM of the amplitudes, data range of the truth's amplitude
    phase_rmse_rad: float  # RMS of the wrapped phase difference
    frc: float  # mean FRC up to half Nyquist


def compare_with_truth(obj, origin_px, truth, xcoords, ycoords) -> TruthComparison:
    """Align `obj` to `truth` (global complex factor fitted on the scanned interior) and measure it there."""
    obj = np.asarray(obj, dtype=np.complex128)
    gt, inside = crop_truth(np.asarray(truth), obj.shape, origin_px)
    rows, cols = interior_box(xcoords, ycoords, origin_px, obj.shape)
    mask = np.zeros(obj.shape, dtype=bool)
    mask[rows, cols] = True
    mask &= inside
    if not mask.any():
        raise ValueError("the reconstruction's canvas does not overlap the ground truth")
    _, scale = align_global_phase_scale(gt, obj, mask)
    aligned = scale * obj
    g, a = gt[rows, cols], aligned[rows, cols]
    amp_truth = np.abs(g)
    freq, curve = frc_curve(g, a)
    return TruthComparison(
        truth=gt,
        aligned=aligned,
        box=(rows, cols),
        amp_ssim=ssim(amp_truth, np.abs(a), data_range=float(np.ptp(amp_truth))),
        phase_rmse_rad=float(np.sqrt(np.mean(np.angle(a * np.conj(g)) ** 2))),
        frc=frc_mean(freq, curve),
    )


def reconstruction_quality(
    obj: np.ndarray, origin_px, truth: np.ndarray, xcoords, ycoords, inset_px: float = 0.0
) -> dict:
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
        "phase_rmse_rad": float(np.sqrt(np.mean(dphi**2))),
        "amp_rel_error": float(np.linalg.norm(amp_rec - amp_gt) / np.linalg.norm(amp_gt)),
        "rel_error": relative_error(gt, aligned),
        "frc_mean_half_nyquist": frc_mean(freq, curve),
        "fit_scale_abs": abs(scale),
        "fit_phase_rad": float(np.angle(scale)),
        "baseline_const_rel_error": relative_error(gt, const),
        "baseline_const_phase_rmse_rad": float(np.sqrt(np.mean(np.angle(const * np.conj(gt)) ** 2))),
    }, (gt, aligned)
