"""Grouping (docs/spec.md §4): exact neighbours with ties, the numpy draw sequence, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.config import ConfigError, make_config
from backends.tf_pinn.grouping import group_positions, nearest_neighbors

pytestmark = pytest.mark.tf

# A hand-made layout full of ties; index 7 duplicates index 0.
#   0 (0,0)  1 (1,0)  2 (0,1)  3 (-1,0)  4 (0,-1)  5 (2,0)  6 (1,1)  7 (0,0)
X = np.array([0.0, 1.0, 0.0, -1.0, 0.0, 2.0, 1.0, 0.0])
Y = np.array([0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0])


def test_hand_made_neighbours_with_ties():
    got = nearest_neighbors(X, Y, [0, 1, 7, 5], 5)
    expected = [
        [7, 1, 2, 3, 4],  # the duplicate at distance 0 first, then four ties at 1 in index order
        [0, 5, 6, 7, 2],  # d2 = 1 for 0, 5, 6, 7; then 2 (d2 = 2) before 4 (d2 = 2) by index
        [0, 1, 2, 3, 4],  # seed 7 excluded by index, its twin 0 kept
        [1, 6, 0, 7, 2],  # d2: 1 -> 1, 6 -> 2, 0 -> 4, 7 -> 4, 2 -> 5, 4 -> 5
    ]
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def _reference_neighbors(x, y, seeds, k):
    out = []
    for s in seeds:
        d2 = (x[s] - x) * (x[s] - x) + (y[s] - y) * (y[s] - y)
        order = np.lexsort((np.arange(x.size), d2))
        out.append(order[order != s][:k])
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_layouts_match_lexsort(seed):
    rng = np.random.default_rng(seed)
    # Integer grid coordinates make many exact ties.
    x = rng.integers(0, 6, 60).astype(np.float64)
    y = rng.integers(0, 6, 60).astype(np.float64) + rng.choice([0.0, 0.5], 60)
    seeds = rng.permutation(60)[:25]
    np.testing.assert_array_equal(nearest_neighbors(x, y, seeds, 7), _reference_neighbors(x, y, seeds, 7))


def test_training_groups_follow_the_draw_sequence():
    rng_data = np.random.default_rng(5)
    x, y = rng_data.uniform(0, 50, 30), rng_data.uniform(0, 50, 30)
    cfg = make_config({"gridsize": 2, "neighbor_count": 6, "n_groups": 12, "seed": 9})
    groups = group_positions(x, y, cfg)
    rng = np.random.default_rng(9)
    seeds = rng.choice(30, 12, replace=False)
    neighbors = _reference_neighbors(x, y, seeds, 6)
    expected = np.array([neighbors[b][rng.choice(6, 4, replace=False)] for b in range(12)])
    np.testing.assert_array_equal(groups.nn_indices, expected)
    assert groups.nn_indices.dtype == np.int64


def test_gridsize_one_groups_are_the_seeds():
    x, y = np.arange(10.0), np.zeros(10)
    groups = group_positions(x, y, make_config({"seed": 4}))
    np.testing.assert_array_equal(groups.nn_indices[:, 0], np.random.default_rng(4).choice(10, 10, replace=False))
    assert groups.nn_indices.shape == (10, 1)
    assert not groups.offsets_px.any()
    groups = group_positions(x, y, make_config({"seed": 4, "n_groups": 3}))
    np.testing.assert_array_equal(groups.nn_indices[:, 0], np.random.default_rng(4).choice(10, 3, replace=False))


def test_inference_groups():
    rng_data = np.random.default_rng(6)
    x, y = rng_data.uniform(0, 40, 15), rng_data.uniform(0, 40, 15)
    one = group_positions(x, y, make_config({"n_groups": 3}), inference=True)
    np.testing.assert_array_equal(one.nn_indices[:, 0], np.arange(15))
    four = group_positions(x, y, make_config({"gridsize": 2, "neighbor_count": 5, "seed": 2}), inference=True)
    rng = np.random.default_rng(2)
    neighbors = _reference_neighbors(x, y, np.arange(15), 5)
    expected = np.array([neighbors[b][rng.choice(5, 4, replace=False)] for b in range(15)])
    np.testing.assert_array_equal(four.nn_indices, expected)


@pytest.mark.parametrize("gridsize, k", [(2, 4), (2, 7), (3, 9)])
def test_invariants_on_random_layouts(gridsize, k):
    rng = np.random.default_rng(gridsize * 10 + k)
    m = 40
    x, y = rng.uniform(0, 100, m), rng.uniform(0, 100, m)
    cfg = make_config({"gridsize": gridsize, "neighbor_count": k, "seed": k})
    g = group_positions(x, y, cfg)
    c = gridsize * gridsize
    assert g.nn_indices.shape == (m, c) and g.coords_px.shape == (m, c, 2) and g.center_px.shape == (m, 2)
    seeds = np.random.default_rng(k).choice(m, m, replace=False)
    neighbors = _reference_neighbors(x, y, seeds, k)
    for b in range(m):
        members = g.nn_indices[b]
        assert len(set(members.tolist())) == c  # drawn without replacement
        assert seeds[b] not in members  # the seed itself is excluded
        assert set(members.tolist()) <= set(neighbors[b].tolist())
    np.testing.assert_array_equal(g.coords_px[..., 0], x[g.nn_indices])
    np.testing.assert_array_equal(g.coords_px[..., 1], y[g.nn_indices])
    np.testing.assert_allclose(g.center_px, g.coords_px.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.offsets_px, g.coords_px - g.center_px[:, None], rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.offsets_px.sum(axis=1), 0, atol=1e-10)


def test_grouping_is_deterministic():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 9, 20), rng.uniform(0, 9, 20)
    cfg = make_config({"gridsize": 2, "seed": 1})
    np.testing.assert_array_equal(group_positions(x, y, cfg).nn_indices, group_positions(x, y, cfg).nn_indices)


def test_errors():
    x, y = np.arange(6.0), np.zeros(6)
    with pytest.raises(ConfigError, match="n_groups=7"):
        group_positions(x, y, make_config({"n_groups": 7}))
    with pytest.raises(ConfigError, match="neighbor_count=6"):
        group_positions(x, y, make_config({"gridsize": 2, "neighbor_count": 6}))
    with pytest.raises(ConfigError, match="neighbor_count=6"):
        group_positions(x, y, make_config({"gridsize": 2, "neighbor_count": 6}), inference=True)
    with pytest.raises(ConfigError, match="n_groups=7"):  # the infer CLI refuses it too
        group_positions(x, y, make_config({"n_groups": 7}), inference=True)
    with pytest.raises(ValueError, match="equal length"):
        group_positions(x, y[:5], make_config())
    with pytest.raises(ValueError, match="finite"):
        group_positions(np.array([0.0, np.nan]), np.zeros(2), make_config())
    with pytest.raises(ValueError, match="neighbor_count=6"):
        nearest_neighbors(x, y, [0], 6)
