"""Stitching predicted patches into one object (docs/spec.md §11) with torch ops.

Counterpart of backends/tf_pinn/stitch.py. The canvas geometry (origin,
size, tile corners, fractional shifts) is the shared shape helper
backends.common.geometry.canvas_geometry; shifting and accumulation are here.
"""

from __future__ import annotations

import numpy as np
import torch

from backends.common.contract import MASK_FLOOR, PREDICT_CHUNK
from backends.common.dataset import Dataset
from backends.common.geometry import canvas_geometry
from backends.common.validation import check_stitch_inputs
from backends.torch_pinn.inputs import inference_inputs
from backends.torch_pinn.model import PinnModel
from backends.torch_pinn.physics import translate, weight_window


def stitch_patches(patches, xcoords, ycoords, align_phases: bool = True) -> tuple[np.ndarray, tuple]:
    """Sum of W-weighted patches placed at their positions over the sum of windows.

    patches (P, N, N) complex tensor of O_ext; xcoords, ycoords (P,) float64. Patches are added in
    order; with align_phases each is first turned by the phase of its correlation with the sum so
    far (a single pattern leaves its patch's global phase free, §11).
    Returns the complex64 object and its origin (x0, y0) in object pixels.
    """
    patches = patches if torch.is_tensor(patches) else torch.from_numpy(np.asarray(patches))
    patches = patches.detach().to(torch.complex64)
    x, y = check_stitch_inputs(patches.shape, xcoords, ycoords)
    p, n = patches.shape[0], patches.shape[-1]
    geometry = canvas_geometry(x, y, n)
    window = weight_window(n)
    tiles = torch.zeros((p, 2, n + 1, n + 1), dtype=torch.complex64)
    tiles[:, 0, :n, :n] = patches * window
    tiles[:, 1, :n, :n] = window.to(torch.complex64)
    fractions = torch.from_numpy(geometry.fractions_px.astype(np.float32))  # float32, as every shift in a backend
    shifts = fractions[:, None, :].expand(p, 2, 2)
    tiles = translate(tiles, shifts)
    height, width = geometry.shape
    total = torch.zeros((height, width), dtype=torch.complex128)
    weight = torch.zeros((height, width), dtype=torch.float64)
    for k, (col, row) in enumerate(geometry.tile_offsets.tolist()):
        tile = tiles[k, 0].to(torch.complex128)
        region = total[row : row + n + 1, col : col + n + 1]
        if align_phases:
            c = torch.sum(tile.conj() * region)
            if c != 0:
                tile = tile * (c / c.abs())
        region += tile
        weight[row : row + n + 1, col : col + n + 1] += tiles[k, 1].real.to(torch.float64)
    covered = weight >= MASK_FLOOR
    obj = torch.where(
        covered,
        total / torch.where(covered, weight, torch.ones((), dtype=torch.float64)),
        torch.zeros((), dtype=torch.complex128),
    )
    return obj.to(torch.complex64).numpy(), geometry.origin_px


def predict_patches(model: PinnModel, data: Dataset) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """O_ext of every member of every inference group: (P, N, N) complex64 with each member's x, y."""
    groups, diffraction, offsets = inference_inputs(model, data)
    chunks = []
    with torch.no_grad():
        for start in range(0, diffraction.shape[0], PREDICT_CHUNK):
            stop = start + PREDICT_CHUNK
            chunks.append(model.object_ext(diffraction[start:stop], offsets[start:stop]))
    patches = torch.cat(chunks).reshape(-1, model.n, model.n)
    return patches, groups.coords_px[..., 0].reshape(-1), groups.coords_px[..., 1].reshape(-1)


def reconstruct(model: PinnModel, data: Dataset) -> tuple[np.ndarray, tuple]:
    """The stitched object of `data` and its origin (x0, y0)."""
    return stitch_patches(*predict_patches(model, data))
