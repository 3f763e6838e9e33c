"""Grouping of scan positions (docs/spec.md §4) with torch float64 ops.

Counterpart of backends/tf_pinn/grouping.py. Distances and the stable sort
are torch ops; the random draws use numpy's `default_rng`, as the contract says.
"""

from __future__ import annotations

import numpy as np
import torch

from backends.common.config import PinnConfig
from backends.common.contract import NEIGHBOR_ROWS
from backends.common.geometry import Groups
from backends.common.validation import check_coordinates, check_neighbor_count


def _as_coordinates(xcoords, ycoords) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = check_coordinates(xcoords, ycoords)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def nearest_neighbors(xcoords, ycoords, seeds, k: int) -> np.ndarray:
    """(len(seeds), k) int64 numpy: the k nearest other positions of each seed (numpy in).

    Squared distance dx*dx + dy*dy in float64, ties to the lower index (a
    stable ascending sort, equal to numpy's lexsort((index, d2))); the seed
    itself is dropped by index, so a duplicate position at distance 0 stays.
    """
    x, y = _as_coordinates(xcoords, ycoords)
    check_neighbor_count(k, x.shape[0])
    return _nearest(x, y, torch.from_numpy(np.asarray(seeds, dtype=np.int64)), k).numpy()


def _nearest(x: torch.Tensor, y: torch.Tensor, seeds: torch.Tensor, k: int) -> torch.Tensor:
    blocks = []
    for start in range(0, len(seeds), NEIGHBOR_ROWS):
        rows = seeds[start : start + NEIGHBOR_ROWS]
        dx = x[rows][:, None] - x[None, :]
        dy = y[rows][:, None] - y[None, :]
        d2 = dx * dx + dy * dy
        order = torch.sort(d2, dim=1, stable=True).indices
        # Drop the seed itself wherever it sorts (another position may share its coordinates).
        keep = order != rows[:, None]
        blocks.append(order[keep].reshape(len(rows), x.shape[0] - 1)[:, :k])
    return torch.cat(blocks) if blocks else torch.zeros((0, k), dtype=torch.int64)


def group_positions(xcoords, ycoords, config: PinnConfig, inference: bool = False) -> Groups:
    """Groups of C = gridsize**2 positions: training draws seeds, inference takes every position."""
    x, y = _as_coordinates(xcoords, ycoords)
    m = x.shape[0]
    config.check_against_data(m, source="the grouped positions")  # at inference too, as the infer CLI does
    c = config.n_channels
    if inference:
        seeds = np.arange(m, dtype=np.int64)
        rng = np.random.default_rng(config.seed) if c > 1 else None
    else:
        rng = np.random.default_rng(config.seed)
        n_groups = m if config.n_groups is None else config.n_groups
        seeds = rng.choice(m, n_groups, replace=False).astype(np.int64)
    if c == 1:
        nn_indices = seeds[:, None]
    else:
        k = config.neighbor_count
        neighbors = _nearest(x, y, torch.from_numpy(seeds), k).numpy()
        picks = np.stack([rng.choice(k, c, replace=False) for _ in range(len(seeds))])
        nn_indices = np.take_along_axis(neighbors, picks, axis=1)
    index = torch.from_numpy(np.ascontiguousarray(nn_indices, dtype=np.int64))
    coords = torch.stack([x[index], y[index]], dim=-1)  # (B, C, 2) float64
    center = coords.mean(dim=1)
    offsets = coords - center[:, None, :]
    return Groups(
        nn_indices=index.numpy(), coords_px=coords.numpy(), center_px=center.numpy(), offsets_px=offsets.numpy()
    )
