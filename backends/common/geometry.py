"""Shape helpers both backends share: the Groups container and stitching geometry (§4, §11).

Only sizes, origins, integer/fractional splits of coordinates and the object_big
offset check (check_offsets, which both backends' physics modules re-export) live here;
the translation and accumulation numerics are written once per backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Groups:
    """Grouped scan positions (docs/spec.md §4), numpy, canonical layout."""

    nn_indices: np.ndarray  # (B, C) int64 scan-position indices of each group's members
    coords_px: np.ndarray  # (B, C, 2) float64 (x, y) of each member
    center_px: np.ndarray  # (B, 2) float64 mean of the members' coordinates
    offsets_px: np.ndarray  # (B, C, 2) float64 coords_px - center_px


@dataclass(frozen=True)
class CanvasGeometry:
    """Where each predicted patch lands on the stitched canvas."""

    origin_px: tuple  # (x0, y0): object-pixel coordinates of canvas pixel (0, 0)
    shape: tuple  # (height, width) of the canvas
    tile_offsets: np.ndarray  # (P, 2) int64 (col, row) of each (N+1)x(N+1) tile's corner on the canvas
    fractions_px: np.ndarray  # (P, 2) float64 (x, y) sub-pixel shift in [0, 1) applied inside the tile


def canvas_geometry(xcoords, ycoords, n: int) -> CanvasGeometry:
    """Canvas origin (floor(min x) - N/2, floor(min y) - N/2), covering every patch.

    A patch centred at p covers object pixels p - N/2 .. p + N/2 - 1; shifted by
    frac(p) inside an (N+1)-wide tile it never clips, so the tile of position p
    starts at floor(p) - floor(min p) on the canvas.
    """
    x = np.asarray(xcoords, dtype=np.float64).ravel()
    y = np.asarray(ycoords, dtype=np.float64).ravel()
    fx, fy = np.floor(x), np.floor(y)
    x0, y0 = fx.min(), fy.min()
    width = int(fx.max() - x0) + n + 1
    height = int(fy.max() - y0) + n + 1
    tiles = np.stack([fx - x0, fy - y0], axis=-1).astype(np.int64)
    return CanvasGeometry(
        origin_px=(float(x0 - n // 2), float(y0 - n // 2)),
        shape=(height, width),
        tile_offsets=tiles,
        fractions_px=np.stack([x - fx, y - fy], axis=-1),
    )


def check_offsets(offsets_px, n: int) -> None:
    """Refuse a group whose offset exceeds N/2 in x or y: its merged canvas would clip it (§8)."""
    d = np.abs(np.asarray(offsets_px, dtype=np.float64))
    if d.size and d.max() > n / 2:
        group = int(np.unravel_index(np.argmax(d), d.shape)[0])
        raise ValueError(
            f"group {group} has an offset of {d.max():.3f} px, more than N/2 = {n / 2:g}: "
            "object_big cannot merge it; use smaller neighbor_count or gridsize"
        )
