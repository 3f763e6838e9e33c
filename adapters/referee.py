"""A third implementation of the deterministic stages, plain numpy in float64.

The two bundled backends are float32 and each can only be judged against the
other: when they part, the pair alone does not say which one left the
contract. This referee is written from docs/spec.md alone (grouping §4,
scales §5, translation §6, forward model §8 with the object_big merge, loss
§9, the optimiser step §10, stitching §11), in float64/complex128, with no framework and nothing
imported from backends.tf_pinn or backends.torch_pinn. It returns float64 and
complex128 (not the canonical float32 dtypes) so that a float32 backend can be
measured against a truth whose own rounding is 2**-29 times smaller.

It shares with the backends only what docs/spec.md calls shared: the
configuration (backends.common.config), the contract's constants
(backends.common.contract), the dataset reader and the canvas geometry helper
(sizes and origins, no numerics). Stages it does not do (the network,
training, bundles, CLI) raise NotImplementedError from adapters.base.
"""

from __future__ import annotations

import math

import numpy as np

from adapters.base import Adapter, CommonContract
from backends.common.config import make_config
from backends.common.contract import ADAM_BETA1, ADAM_BETA2, LOSS_EPSILON, MASK_FLOOR, MERGE_EPSILON
from backends.common.geometry import canvas_geometry

A0 = {"sigmoid": 0.5, "softplus": math.log(2.0)}  # §5: amp_activation(0)


# --- §6 translation -----------------------------------------------------------------------


def shift_matrix(shift: np.ndarray, size: int) -> np.ndarray:
    """(..., size, size) float64 matrix A with (A @ v)(x) = (1 - f) v(x - i) + f v(x - i - 1).

    One matrix per image and axis, i = floor(d), f = d - i; a source index outside
    [0, size) simply has no column, which is the zero fill. Writing the shift as a
    matrix makes two contract properties visible: an integer shift is a permutation
    with ones (exact), and the matrix of -d is the transpose of the matrix of +d
    (the adjoint), since both are the same infinite band restricted to one square.
    """
    d = np.asarray(shift, np.float64)[..., None, None]
    whole = np.floor(d)
    frac = d - whole
    dest = np.arange(size, dtype=np.float64)[:, None]  # output index x (rows)
    src = np.arange(size, dtype=np.float64)[None, :]  # input index s (columns)
    return (1.0 - frac) * (src == dest - whole) + frac * (src == dest - whole - 1.0)


def translate(images: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    """T(img, d)(y, x) = img(y - d_y, x - d_x) for (..., H, W) images, shifts (..., 2) as (x, y).

    The bilinear 4-tap kernel of §6 is separable, so it is A_y @ img @ A_x^T.
    A real matrix applied to a complex image shifts real and imaginary parts alike.
    """
    images = np.asarray(images)
    shifts = np.asarray(shifts_px, np.float64)
    if images.ndim < 2 or shifts.shape != (*images.shape[:-2], 2):
        raise ValueError(
            f"translate: shifts must be {(*images.shape[:-2], 2)} for images {images.shape}, got {shifts.shape}"
        )
    h, w = images.shape[-2:]
    wide = np.complex128 if np.iscomplexobj(images) else np.float64
    rows = shift_matrix(shifts[..., 1], h)
    cols = shift_matrix(shifts[..., 0], w)
    return rows @ images.astype(wide) @ np.swapaxes(cols, -1, -2)


# --- §7, §8 support, merge and far field ------------------------------------------------------


def support_mask(n: int) -> np.ndarray:
    """(n, n) float64: 1 on the central n/2 x n/2 square S."""
    mask = np.zeros((n, n), np.float64)
    mask[n // 4 : n // 4 + n // 2, n // 4 : n // 4 + n // 2] = 1.0
    return mask


def weight_window(n: int) -> np.ndarray:
    """(n, n) float64 W = clip(N/4 - 0.5 - r, 0, 1), r the distance from pixel (N/2, N/2) (§8, §11)."""
    offset = np.arange(n, dtype=np.float64) - n / 2
    return np.clip(n / 4 - 0.5 - np.hypot(offset[:, None], offset[None, :]), 0.0, 1.0)


def extend_objects(object_patches: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
    """object_big (§8): O_ext_c = centre N x N of T(M, -d_c), M = Σ T(W O_c, d_c) / (Σ T(W, d_c) + 1e-3).

    Patches and W are zero-padded by N/4 to 3N/2 first; a group with max |d| > N/2
    would leave that canvas and is refused, as the contract says.
    """
    obj = np.asarray(object_patches, np.complex128)
    d = np.asarray(offsets_px, np.float64)
    b, c, n, _ = obj.shape
    if d.size and np.abs(d).max() > n / 2:
        raise ValueError(f"extend_objects: a group offset of {np.abs(d).max():.3f} px exceeds N/2 = {n / 2:g}")
    pad = n // 4
    widen = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    window = weight_window(n)
    canvas = np.pad(obj * window, widen)
    masks = np.pad(np.broadcast_to(window, obj.shape), widen)
    merged = translate(canvas, d).sum(axis=1, keepdims=True) / (
        translate(masks, d).sum(axis=1, keepdims=True) + MERGE_EPSILON
    )
    views = translate(np.broadcast_to(merged, canvas.shape), -d)
    return views[..., pad : pad + n, pad : pad + n]


def far_field(object_ext: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Ψ = fftshift(F_ortho(P · O_ext)) over the last two axes: zero frequency at (N/2, N/2)."""
    exit_wave = np.asarray(probe, np.complex128) * np.asarray(object_ext, np.complex128)
    return np.fft.fftshift(np.fft.fft2(exit_wave, norm="ortho"), axes=(-2, -1))


# --- §9 loss ----------------------------------------------------------------------------------


def compute_loss(far: np.ndarray, observed_amplitude: np.ndarray, log_intensity_scale: float, loss_name: str) -> float:
    """Mean over every element; X the raw measured amplitude, I = g^2 |Ψ|^2."""
    psi = np.asarray(far, np.complex128)
    x = np.asarray(observed_amplitude, np.float64)
    g = math.exp(float(log_intensity_scale))
    if loss_name == "poisson":
        counts = g * g * (psi.real**2 + psi.imag**2)
        x2 = x * x
        return float(np.mean((counts - x2) - x2 * np.log((counts + LOSS_EPSILON) / (x2 + LOSS_EPSILON))))
    if loss_name == "mae":
        return float(np.mean(np.abs(g * np.abs(psi) - x)))
    raise ValueError(f"unknown loss {loss_name!r}; choose poisson or mae")


# --- §4 grouping ------------------------------------------------------------------------------


def nearest_others(x: np.ndarray, y: np.ndarray, seeds: np.ndarray, k: int) -> np.ndarray:
    """(S, k): the k nearest positions of each seed by dx*dx + dy*dy, ties to the lower index.

    d2 is formed exactly as the contract writes it (not hypot), so equal distances are
    bitwise equal and the tie rule decides. The seed is dropped by index, not by
    distance: another position at the seed's own coordinates stays a neighbour.
    """
    m = x.size
    dx = x[seeds][:, None] - x[None, :]
    dy = y[seeds][:, None] - y[None, :]
    d2 = dx * dx + dy * dy
    index = np.broadcast_to(np.arange(m), d2.shape)
    order = np.lexsort((index, d2), axis=1)  # primary key d2, then index
    others = order[order != seeds[:, None]].reshape(len(seeds), m - 1)
    return others[:, :k]


def group_positions(xcoords, ycoords, config: dict, inference: bool = False, *, neighbors=nearest_others) -> dict:
    """§4's groups as a dict of numpy arrays. `neighbors(x, y, seeds, k)` is the contract's
    `nearest_others` unless a caller (adapters/mutants.py) swaps in a flawed one."""
    cfg = make_config(config)
    x = np.asarray(xcoords, np.float64).ravel()
    y = np.asarray(ycoords, np.float64).ravel()
    if x.shape != y.shape or x.size == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"grouping needs finite xcoords and ycoords of one non-zero length; got {x.shape}, {y.shape}")
    m, c = x.size, cfg.n_channels
    cfg.check_against_data(m, source="the grouped positions")  # n_groups > M, K >= M
    # One stream: training draws the seeds, then every group's members, in seed order.
    # Inference takes every position in order and draws members from a fresh stream.
    rng = np.random.default_rng(cfg.seed)
    if inference:
        seeds = np.arange(m, dtype=np.int64)
    else:
        seeds = rng.choice(m, m if cfg.n_groups is None else cfg.n_groups, replace=False).astype(np.int64)
    if c == 1:
        nn_indices = seeds[:, None]
    else:
        k = cfg.neighbor_count
        near = neighbors(x, y, seeds, k)
        picks = np.stack([rng.choice(k, c, replace=False) for _ in seeds])
        nn_indices = np.take_along_axis(near, picks, axis=1)
    nn_indices = np.ascontiguousarray(nn_indices, np.int64)
    coords = np.stack([x[nn_indices], y[nn_indices]], axis=-1)
    center = coords.mean(axis=1)
    return {
        "nn_indices": nn_indices,
        "coords_px": coords,
        "center_px": center,
        "offsets_px": coords - center[:, None, :],
    }


# --- §11 stitching ----------------------------------------------------------------------------


def stitch_patches(patches, xcoords, ycoords, align_phases: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Σ T(pad(W·O_p), frac p) / Σ T(pad(W), frac p) on the canvas of canvas_geometry; 0 where uncovered.

    Patches are added in order; with align_phases each is first turned by the phase of its
    correlation with the sum placed so far, c_p = Σ conj(tile_p)·sum (no turn where c_p = 0), since
    one pattern never fixes its patch's global phase (§11).
    """
    patches = np.asarray(patches, np.complex128)
    x = np.asarray(xcoords, np.float64).ravel()
    y = np.asarray(ycoords, np.float64).ravel()
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2] or not len(x) == len(y) == len(patches):
        raise ValueError(
            f"stitch: patches must be (P, N, N) with P coordinates; got {patches.shape}, {len(x)} x, {len(y)} y"
        )
    n = patches.shape[-1]
    geometry = canvas_geometry(x, y, n)
    window = weight_window(n)
    # Pad to (N+1)x(N+1) at the bottom right: a shift by frac(p) in [0, 1) then never clips.
    grow = ((0, 0), (0, 1), (0, 1))
    tiles = translate(np.pad(patches * window, grow), geometry.fractions_px)
    weights = translate(np.pad(np.broadcast_to(window, patches.shape), grow), geometry.fractions_px)
    total = np.zeros(geometry.shape, np.complex128)
    weight = np.zeros(geometry.shape, np.float64)
    for (col, row), tile, tile_weight in zip(geometry.tile_offsets.tolist(), tiles, weights):
        region = (slice(row, row + n + 1), slice(col, col + n + 1))
        if align_phases:
            c = np.vdot(tile, total[region])
            if c != 0:
                tile = tile * (c / abs(c))
        total[region] += tile
        weight[region] += tile_weight
    covered = weight >= MASK_FLOOR
    obj = np.where(covered, total / np.where(covered, weight, 1.0), 0.0)
    return obj, np.asarray(geometry.origin_px, np.float64)


# --- §10 the optimiser -----------------------------------------------------------------------


def adam_steps(weights: dict, grads_per_step: list, learning_rate: float, epsilon: float) -> dict:
    """Textbook Adam from zero moments, one step per gradient mapping:
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g², w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""
    w = {k: np.array(v, np.float64) for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    for t, grads in enumerate(grads_per_step, start=1):
        if set(grads) != set(w):
            raise ValueError(
                f"adam_steps: step {t} has gradients for {sorted(set(grads) ^ set(w))} "
                "but not the same names as the weights"
            )
        for k in w:
            g = np.asarray(grads[k], np.float64)
            m[k] = ADAM_BETA1 * m[k] + (1 - ADAM_BETA1) * g
            v2[k] = ADAM_BETA2 * v2[k] + (1 - ADAM_BETA2) * g * g
            m_hat, v_hat = m[k] / (1 - ADAM_BETA1**t), v2[k] / (1 - ADAM_BETA2**t)
            w[k] = w[k] - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    return w


# --- the adapter ------------------------------------------------------------------------------


class Float64Referee(CommonContract, Adapter):
    """docs/spec.md's deterministic stages in float64 numpy: the harness's arbiter."""

    name = "referee"

    def versions(self) -> dict:
        return {"numpy": np.__version__}

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        return group_positions(xcoords, ycoords, config, inference)

    def translate(self, images, shifts_px):
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"translate: images must be (B, C, H, W), got {images.shape}")
        return translate(images, shifts_px)

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        obj = np.asarray(object_patches, np.complex128)
        ext = extend_objects(obj, offsets_px) if object_big else obj
        psi = far_field(ext, probe)
        return {"far_field": psi, "amplitude": np.abs(psi)}

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        return compute_loss(far_field, observed_amplitude, log_intensity_scale, loss_name)

    def scales(self, diffraction, probe, amp_activation) -> dict:
        """r = (N/2) / sqrt(mean_m Σ X²); log g0 = ½ log(mean_m Σ X² / (a0² Σ_S |P|²))."""
        x = np.asarray(diffraction, np.float64)
        p = np.asarray(probe, np.complex128)
        n = x.shape[-1]
        mean_power = float(np.mean(np.sum(x * x, axis=(-2, -1))))
        s = slice(n // 4, n // 4 + n // 2)
        probe_power = float(np.sum(p.real[s, s] ** 2 + p.imag[s, s] ** 2))
        a0 = A0[amp_activation]
        return {
            "input_scale": (n / 2) / math.sqrt(mean_power),
            "log_intensity_scale": 0.5 * math.log(mean_power / (a0 * a0 * probe_power)),
        }

    def optimizer_steps(self, config, weights, grads_per_step) -> dict:
        cfg = make_config(config)
        return adam_steps(weights, grads_per_step, cfg.learning_rate, cfg.adam_epsilon)

    def stitch(self, patches, xcoords, ycoords) -> dict:
        obj, origin = stitch_patches(patches, xcoords, ycoords)
        return {"object": obj, "origin_px": origin}
