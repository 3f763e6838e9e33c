"""Argument checks both backends make, written once so that both refuse the same inputs the same way.

Shapes, dtype names, sizes and names only: a backend passes in what it holds
(a tensor's shape as a tuple, its dtype's name) and does the numerics itself.
Each error names the function and the argument at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from backends.common.dataset import DatasetError

IMAGE_DTYPES = ("float32", "complex64")  # what translate shifts (docs/backend_api.md)


def check_choice(field: str, value, choices: Sequence[str]) -> None:
    """ValueError naming `field` when `value` is not one of `choices` (a loss, an activation)."""
    if value not in choices:
        raise ValueError(f"{field}={value!r}: choose one of {', '.join(choices)}")


def check_coordinates(xcoords, ycoords) -> tuple[np.ndarray, np.ndarray]:
    """Scan coordinates as float64 numpy (M,), M >= 1, finite; ValueError otherwise."""
    x = np.asarray(xcoords, dtype=np.float64)
    y = np.asarray(ycoords, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"xcoords {x.shape} and ycoords {y.shape} must be 1-D of equal length")
    if x.size == 0:
        raise ValueError("no scan positions to group")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("scan coordinates hold non-finite values")
    return x, y


def check_neighbor_count(k: int, m: int) -> None:
    """nearest_neighbors needs 1 <= k <= M - 1 other positions."""
    if not 1 <= k <= m - 1:
        raise ValueError(f"neighbor_count={k} must be between 1 and M - 1 = {m - 1}")


def _fits(shape: tuple, want: tuple) -> bool:
    """Equal rank and sizes; None (a traced batch) matches any size."""
    return len(shape) == len(want) and all(a is None or b is None or a == b for a, b in zip(shape, want))


def check_translate_inputs(
    images_shape, shifts_shape, images_dtype: str, shifts_dtype: str, *, channels_last: bool
) -> None:
    """translate's arguments: images (B, C, H, W) or (B, H, W, C) float32 or complex64, shifts_px (B, C, 2) float32.

    TypeError for a dtype, ValueError for a shape; dtypes are given by name ("float32").
    """
    if images_dtype not in IMAGE_DTYPES:
        raise TypeError(f"translate: images must be float32 or complex64, got {images_dtype}")
    if shifts_dtype != "float32":
        raise TypeError(f"translate: shifts_px must be float32, got {shifts_dtype}")
    images_shape, shifts_shape = tuple(images_shape), tuple(shifts_shape)
    layout = "(B, H, W, C)" if channels_last else "(B, C, H, W)"
    if len(images_shape) == 4:
        b, c = (images_shape[0], images_shape[3]) if channels_last else images_shape[:2]
        if _fits(shifts_shape, (b, c, 2)):
            return
    raise ValueError(
        f"translate: images must be {layout} with shifts_px (B, C, 2); "
        f"got images {images_shape} and shifts_px {shifts_shape}"
    )


def check_scales_inputs(diffraction_shape, probe_shape) -> int:
    """N for compute_scales (docs/spec.md §5), from the (M, N, N) patterns; the probe must be (N, N)."""
    d, p = tuple(diffraction_shape), tuple(probe_shape)
    if len(d) != 3 or d[1] != d[2] or d[0] == 0:
        raise ValueError(f"compute_scales: diffraction must be (M, N, N) with M >= 1, got {d}")
    if p != (d[1], d[1]):
        raise ValueError(f"compute_scales: probe must be (N, N) = {(d[1], d[1])} like the patterns, got {p}")
    return int(d[1])


def check_stitch_inputs(patches_shape, xcoords, ycoords) -> tuple[np.ndarray, np.ndarray]:
    """stitch_patches' coordinates as float64 numpy (P,); patches must be (P, N, N)."""
    x = np.asarray(xcoords, dtype=np.float64).ravel()
    y = np.asarray(ycoords, dtype=np.float64).ravel()
    shape = tuple(patches_shape)
    if len(shape) != 3 or shape[1] != shape[2] or not len(x) == len(y) == shape[0]:
        raise ValueError(
            f"stitch_patches: patches must be (P, N, N) with P coordinates; got patches "
            f"{shape}, {len(x)} x and {len(y)} y coordinates"
        )
    return x, y


def check_pattern_size(data, n: int, whose: str) -> None:
    """DatasetError when `data`'s patterns are not N x N; `whose` names where N comes from ("the model's")."""
    if data.N != n:
        raise DatasetError(data.source, "diffraction", f"pattern size N={data.N} differs from {whose} N={n}")


def check_gradients(names: Iterable[str], grads: Iterable, *, source: str) -> None:
    """RuntimeError naming the first weight whose gradient is missing (None): the loss does not reach it."""
    for name, grad in zip(names, grads, strict=True):
        if grad is None:
            raise RuntimeError(f"{source}: weight '{name}' has no gradient: the loss does not depend on it")
