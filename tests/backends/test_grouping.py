"""Grouping (docs/spec.md §4): exact neighbours with ties, the numpy draw sequence, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.referee import nearest_others
from backends.common.config import ConfigError, make_config

# A hand-made layout full of ties; index 7 duplicates index 0.
#   0 (0,0)  1 (1,0)  2 (0,1)  3 (-1,0)  4 (0,-1)  5 (2,0)  6 (1,1)  7 (0,0)
X = np.array([0.0, 1.0, 0.0, -1.0, 0.0, 2.0, 1.0, 0.0])
Y = np.array([0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0])
# Worked out by hand from squared distances, ties to the lower index, seed excluded.
NEAREST_5 = {
    0: [7, 1, 2, 3, 4],  # the duplicate at distance 0 first, then four ties at 1 in index order
    1: [0, 5, 6, 7, 2],  # d2 = 1 for 0, 5, 6, 7; then 2 (d2 = 2) before 4 (d2 = 2) by index
    7: [0, 1, 2, 3, 4],  # seed 7 excluded by index, its twin 0 kept
    5: [1, 6, 0, 7, 2],  # d2: 1 -> 1, 6 -> 2, 0 -> 4, 7 -> 4, 2 -> 5, 4 -> 5
    6: [1, 2, 0, 5, 7],  # 1, 2 at 1; 0, 5, 7 at 2
}


def _reference_neighbors(x, y, seeds, k):
    return nearest_others(np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(seeds), k)


def test_hand_made_neighbours_with_ties(backend):
    seeds = list(NEAREST_5)
    got = backend.grouping.nearest_neighbors(X, Y, seeds, 5)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    assert got.tolist() == [NEAREST_5[s] for s in seeds]


def test_distances_are_float64(backend):
    # 2 is closer to 0 than 1 by 1e-9 px: a float32 comparison would tie and pick 1.
    x = np.array([0.0, 1000.0, 1000.0 - 1e-9])
    assert backend.grouping.nearest_neighbors(x, np.zeros(3), [0], 1).tolist() == [[2]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_layouts_match_lexsort(backend, seed):
    rng = np.random.default_rng(seed)
    # Integer grid coordinates make many exact ties.
    x = rng.integers(0, 6, 60).astype(np.float64)
    y = rng.integers(0, 6, 60).astype(np.float64) + rng.choice([0.0, 0.5], 60)
    seeds = rng.permutation(60)[:25]
    np.testing.assert_array_equal(
        backend.grouping.nearest_neighbors(x, y, seeds, 7), _reference_neighbors(x, y, seeds, 7)
    )


def test_training_groups_follow_the_draw_sequence(backend):
    rng_data = np.random.default_rng(5)
    x, y = rng_data.uniform(0, 50, 30), rng_data.uniform(0, 50, 30)
    cfg = make_config({"gridsize": 2, "neighbor_count": 6, "n_groups": 12, "seed": 9})
    groups = backend.grouping.group_positions(x, y, cfg)
    rng = np.random.default_rng(9)
    seeds = rng.choice(30, 12, replace=False)
    neighbors = _reference_neighbors(x, y, seeds, 6)
    expected = np.array([neighbors[b][rng.choice(6, 4, replace=False)] for b in range(12)])
    np.testing.assert_array_equal(groups.nn_indices, expected)
    assert groups.nn_indices.dtype == np.int64


def test_gridsize2_groups_on_the_tied_layout_follow_the_draws(backend):
    cfg = make_config({"gridsize": 2, "neighbor_count": 5, "n_groups": 4, "seed": 11})
    groups = backend.grouping.group_positions(X, Y, cfg)
    rng = np.random.default_rng(11)
    seeds = rng.choice(len(X), 4, replace=False)
    table = backend.grouping.nearest_neighbors(X, Y, seeds, 5)
    for s, row in zip(seeds, table):
        if s in NEAREST_5:
            assert row.tolist() == NEAREST_5[s]
    expected = np.stack([table[b][rng.choice(5, 4, replace=False)] for b in range(4)])
    np.testing.assert_array_equal(groups.nn_indices, expected)
    assert groups.nn_indices.dtype == np.int64


def test_gridsize_one_groups_are_the_seeds(backend):
    x, y = np.arange(10.0), np.zeros(10)
    group_positions = backend.grouping.group_positions
    groups = group_positions(x, y, make_config({"seed": 4}))
    np.testing.assert_array_equal(groups.nn_indices[:, 0], np.random.default_rng(4).choice(10, 10, replace=False))
    assert groups.nn_indices.shape == (10, 1)
    assert not groups.offsets_px.any()
    groups = group_positions(x, y, make_config({"seed": 4, "n_groups": 3}))
    np.testing.assert_array_equal(groups.nn_indices[:, 0], np.random.default_rng(4).choice(10, 3, replace=False))


def test_gridsize1_training_and_inference_groups(backend):
    cfg = make_config({"n_groups": 5, "seed": 3})
    groups = backend.grouping.group_positions(X, Y, cfg)
    np.testing.assert_array_equal(groups.nn_indices[:, 0], np.random.default_rng(3).choice(8, 5, replace=False))
    np.testing.assert_array_equal(groups.offsets_px, np.zeros((5, 1, 2)))
    inference = backend.grouping.group_positions(X, Y, cfg, inference=True)
    np.testing.assert_array_equal(inference.nn_indices, np.arange(8)[:, None])
    np.testing.assert_array_equal(inference.coords_px[:, 0], np.stack([X, Y], axis=1))


def test_inference_groups(backend):
    rng_data = np.random.default_rng(6)
    x, y = rng_data.uniform(0, 40, 15), rng_data.uniform(0, 40, 15)
    one = backend.grouping.group_positions(x, y, make_config({"n_groups": 3}), inference=True)
    np.testing.assert_array_equal(one.nn_indices[:, 0], np.arange(15))
    four = backend.grouping.group_positions(
        x, y, make_config({"gridsize": 2, "neighbor_count": 5, "seed": 2}), inference=True
    )
    rng = np.random.default_rng(2)
    neighbors = _reference_neighbors(x, y, np.arange(15), 5)
    expected = np.array([neighbors[b][rng.choice(5, 4, replace=False)] for b in range(15)])
    np.testing.assert_array_equal(four.nn_indices, expected)


def test_inference_gridsize2_draws_members_from_a_fresh_rng(backend):
    cfg = make_config({"gridsize": 2, "neighbor_count": 5, "seed": 5})
    groups = backend.grouping.group_positions(X, Y, cfg, inference=True)
    rng = np.random.default_rng(5)
    table = backend.grouping.nearest_neighbors(X, Y, np.arange(8), 5)
    expected = np.stack([table[b][rng.choice(5, 4, replace=False)] for b in range(8)])
    np.testing.assert_array_equal(groups.nn_indices, expected)


@pytest.mark.parametrize("gridsize, k", [(2, 4), (2, 7), (3, 9)])
def test_invariants_on_random_layouts(backend, gridsize, k):
    rng = np.random.default_rng(gridsize * 10 + k)
    m = 40
    x, y = rng.uniform(0, 100, m), rng.uniform(0, 100, m)
    cfg = make_config({"gridsize": gridsize, "neighbor_count": k, "seed": k})
    g = backend.grouping.group_positions(x, y, cfg)
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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_members_lie_within_the_k_nearest(backend, seed):
    rng = np.random.default_rng(100 + seed)
    m = 30
    x, y = rng.uniform(0, 50, m), rng.uniform(0, 50, m)
    cfg = make_config({"gridsize": 2, "neighbor_count": 6, "seed": seed})
    g = backend.grouping.group_positions(x, y, cfg)
    assert g.nn_indices.shape == (m, 4) and g.coords_px.shape == (m, 4, 2) and g.center_px.shape == (m, 2)
    seeds = np.random.default_rng(seed).choice(m, m, replace=False)
    for b, s in enumerate(seeds):
        members = g.nn_indices[b]
        assert len(set(members.tolist())) == 4 and s not in members
        d2 = (x - x[s]) ** 2 + (y - y[s]) ** 2
        d2[s] = np.inf
        assert np.all(d2[members] <= np.sort(d2)[5])  # within the 6 nearest
    np.testing.assert_array_equal(g.coords_px, np.stack([x[g.nn_indices], y[g.nn_indices]], axis=-1))
    np.testing.assert_allclose(g.offsets_px.mean(axis=1), 0, atol=1e-12)
    again = backend.grouping.group_positions(x, y, cfg)
    np.testing.assert_array_equal(again.nn_indices, g.nn_indices)


def test_grouping_is_deterministic(backend):
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 9, 20), rng.uniform(0, 9, 20)
    cfg = make_config({"gridsize": 2, "seed": 1})
    group_positions = backend.grouping.group_positions
    np.testing.assert_array_equal(group_positions(x, y, cfg).nn_indices, group_positions(x, y, cfg).nn_indices)


def test_errors(backend):
    group_positions, nearest_neighbors = backend.grouping.group_positions, backend.grouping.nearest_neighbors
    x, y = np.arange(6.0), np.zeros(6)
    with pytest.raises(ConfigError, match="n_groups=7"):
        group_positions(x, y, make_config({"n_groups": 7}))
    with pytest.raises(ConfigError, match="neighbor_count=6"):
        group_positions(x, y, make_config({"gridsize": 2, "neighbor_count": 6}))
    with pytest.raises(ConfigError, match="neighbor_count=6"):
        group_positions(x, y, make_config({"gridsize": 2, "neighbor_count": 6}), inference=True)
    with pytest.raises(ConfigError, match="n_groups=7"):  # the infer CLI refuses it too
        group_positions(x, y, make_config({"n_groups": 7}), inference=True)
    with pytest.raises(ConfigError, match="n_groups=9 exceeds the 8 scan positions"):
        group_positions(X, Y, make_config({"n_groups": 9}))
    with pytest.raises(ConfigError, match="neighbor_count=8 must be below the 8"):
        group_positions(X, Y, make_config({"gridsize": 2, "neighbor_count": 8}))
    with pytest.raises(ValueError, match="equal length"):
        group_positions(x, y[:5], make_config())
    with pytest.raises(ValueError, match="non-finite"):
        group_positions(np.array([0.0, np.nan]), np.zeros(2), make_config())
    with pytest.raises(ValueError, match="no scan positions"):
        group_positions(np.zeros(0), np.zeros(0), make_config())
    with pytest.raises(ValueError, match="neighbor_count=6"):
        nearest_neighbors(x, y, [0], 6)
