"""Grouping of scan positions (docs/spec.md §4) with TensorFlow float64 ops.

Counterpart of backends/torch_pinn/grouping.py. Distances and the stable sort
are TF ops; the random draws use numpy's `default_rng`, as the contract says.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.config import PinnConfig
from backends.common.geometry import Groups

# Rows of the (seeds x M) distance matrix handled at once: bounds memory for large scans.
_ROW_BLOCK = 1024


def _as_coords(xcoords, ycoords) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(xcoords, dtype=np.float64)
    y = np.asarray(ycoords, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"xcoords {x.shape} and ycoords {y.shape} must be 1-D of equal length")
    if x.size == 0:
        raise ValueError("no scan positions to group")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("scan coordinates hold non-finite values")
    return x, y


def nearest_neighbors(xcoords, ycoords, seeds, k: int) -> np.ndarray:
    """(len(seeds), k) int64 numpy: the k nearest other positions of each seed (numpy in).

    Squared distance dx*dx + dy*dy in float64, ties to the lower index (a
    stable ascending argsort, equal to numpy's lexsort((index, d2))); the seed
    itself is dropped by index, so a duplicate position at distance 0 stays.
    """
    x, y = _as_coords(xcoords, ycoords)
    seeds = np.asarray(seeds, dtype=np.int64)
    m = x.size
    if not 1 <= k <= m - 1:
        raise ValueError(f"neighbor_count={k} must be between 1 and M - 1 = {m - 1}")
    x_all, y_all = tf.constant(x, tf.float64), tf.constant(y, tf.float64)
    blocks = []
    for start in range(0, seeds.size, _ROW_BLOCK):
        rows = tf.constant(seeds[start:start + _ROW_BLOCK])
        dx = tf.gather(x_all, rows)[:, None] - x_all[None, :]
        dy = tf.gather(y_all, rows)[:, None] - y_all[None, :]
        d2 = dx * dx + dy * dy
        order = tf.argsort(d2, axis=1, direction="ASCENDING", stable=True)
        order = tf.cast(order, tf.int64)
        not_self = tf.not_equal(order, rows[:, None])
        others = tf.reshape(tf.boolean_mask(order, not_self), (-1, m - 1))
        blocks.append(others[:, :k].numpy())
    return np.concatenate(blocks, axis=0).astype(np.int64)


def group_positions(xcoords, ycoords, config: PinnConfig, inference: bool = False) -> Groups:
    """Groups of C = gridsize**2 positions, for training (random seeds) or inference (every position)."""
    x, y = _as_coords(xcoords, ycoords)
    m = x.size
    c = config.n_channels
    config.check_against_data(m, source="the grouped positions")  # at inference too, as the infer CLI does
    rng = np.random.default_rng(config.seed)
    if inference:
        seeds = np.arange(m, dtype=np.int64)
    else:
        n_groups = m if config.n_groups is None else config.n_groups
        seeds = rng.choice(m, n_groups, replace=False).astype(np.int64)
    if c == 1:
        nn_indices = seeds[:, None]
    else:
        neighbors = nearest_neighbors(x, y, seeds, config.neighbor_count)
        picks = np.stack([rng.choice(config.neighbor_count, c, replace=False) for _ in range(seeds.size)])
        nn_indices = np.take_along_axis(neighbors, picks, axis=1)
    nn_indices = np.ascontiguousarray(nn_indices, dtype=np.int64)
    idx = tf.constant(nn_indices)
    coords = tf.stack([tf.gather(tf.constant(x), idx), tf.gather(tf.constant(y), idx)], axis=-1)
    center = tf.reduce_mean(coords, axis=1)
    offsets = coords - center[:, None, :]
    return Groups(nn_indices=nn_indices, coords_px=coords.numpy(), center_px=center.numpy(),
                  offsets_px=offsets.numpy())

