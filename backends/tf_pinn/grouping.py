"""Grouping of scan positions (docs/spec.md §4) with TensorFlow float64 ops.

Counterpart of backends/torch_pinn/grouping.py. Distances and the stable sort
are TF ops; the random draws use numpy's `default_rng`, as the contract says.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.config import PinnConfig
from backends.common.contract import NEIGHBOR_ROWS
from backends.common.geometry import Groups
from backends.common.validation import check_coordinates, check_neighbor_count


def nearest_neighbors(xcoords, ycoords, seeds, k: int) -> np.ndarray:
    """(len(seeds), k) int64 numpy: the k nearest other positions of each seed (numpy in).

    Squared distance dx*dx + dy*dy in float64, ties to the lower index (a
    stable ascending argsort, equal to numpy's lexsort((index, d2))); the seed
    itself is dropped by index, so a duplicate position at distance 0 stays.
    """
    x, y = check_coordinates(xcoords, ycoords)
    seeds = np.asarray(seeds, dtype=np.int64)
    m = x.size
    check_neighbor_count(k, m)
    x_all, y_all = tf.constant(x, tf.float64), tf.constant(y, tf.float64)
    blocks = []
    for start in range(0, seeds.size, NEIGHBOR_ROWS):
        rows = tf.constant(seeds[start : start + NEIGHBOR_ROWS])
        dx = tf.gather(x_all, rows)[:, None] - x_all[None, :]
        dy = tf.gather(y_all, rows)[:, None] - y_all[None, :]
        d2 = dx * dx + dy * dy
        order = tf.argsort(d2, axis=1, direction="ASCENDING", stable=True)
        order = tf.cast(order, tf.int64)
        not_self = tf.not_equal(order, rows[:, None])
        others = tf.reshape(tf.boolean_mask(order, not_self), (-1, m - 1))
        blocks.append(others[:, :k].numpy())
    return np.concatenate(blocks, axis=0).astype(np.int64) if blocks else np.zeros((0, k), np.int64)


def group_positions(xcoords, ycoords, config: PinnConfig, inference: bool = False) -> Groups:
    """Groups of C = gridsize**2 positions, for training (random seeds) or inference (every position)."""
    x, y = check_coordinates(xcoords, ycoords)
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
    return Groups(nn_indices=nn_indices, coords_px=coords.numpy(), center_px=center.numpy(), offsets_px=offsets.numpy())
