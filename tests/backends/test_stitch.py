"""Stitching (docs/spec.md §11) against the float64 referee; prediction of every scan position."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.referee import stitch_patches as reference_stitch
from adapters.referee import weight_window
from backends.common.config import make_config
from backends.common.dataset import DatasetError
from backends.common.simulate import extract_patches, simulate


@pytest.fixture(scope="module")
def scan():
    return simulate(seed=6, n_positions=9, n=16)


def test_single_patch_at_an_integer_position(backend):
    n = 16
    patch = np.arange(n * n).reshape(n, n) * (1 + 1j)
    obj, origin = backend.stitch.stitch_patches(patch[None].astype(np.complex64), [30.0], [20.0])
    assert origin == (30 - 8, 20 - 8) and obj.shape == (n + 1, n + 1) and obj.dtype == np.complex64
    expected = np.zeros((n + 1, n + 1), complex)
    lit = weight_window(n) > 0  # only W's disk is kept; the rest has no weight
    expected[:n, :n][lit] = patch[lit]
    np.testing.assert_allclose(obj, expected, rtol=1e-6)


@pytest.mark.parametrize("ys, atol", [((12, 25), 1e-5), ((-5, 12), 2e-5)])
def test_matches_the_referee_with_fractional_positions(backend, rng, ys, atol):
    n, p = 16, 7
    patches = (rng.standard_normal((p, n, n)) + 1j * rng.standard_normal((p, n, n))).astype(np.complex64)
    x, y = rng.uniform(10, 30, p), rng.uniform(*ys, p)
    obj, origin = backend.stitch.stitch_patches(backend.tensor(patches), x, y)
    expected, expected_origin = reference_stitch(patches.astype(np.complex128), x, y)
    assert origin == tuple(expected_origin) and obj.shape == expected.shape and obj.dtype == np.complex64
    np.testing.assert_allclose(obj, expected, rtol=0, atol=atol)


def test_patches_cut_from_an_object_stitch_back_to_it(backend):
    ds = simulate(seed=1, n_positions=9, n=16)
    x, y = np.round(ds.xcoords), np.round(ds.ycoords)  # integer positions: cutting and placing are exact
    patches = extract_patches(ds.object.astype(np.complex128), x, y, 16)
    obj, (x0, y0) = backend.stitch.stitch_patches(patches.astype(np.complex64), x, y)
    h, w = obj.shape
    truth = ds.object[int(y0) : int(y0) + h, int(x0) : int(x0) + w]
    covered = obj != 0
    assert covered.sum() > 0.2 * covered.size  # W's disks (radius N/4 - 0.5) on a canvas with N/2 margins
    np.testing.assert_allclose(obj[covered], truth[covered], rtol=1e-5)


def test_integer_positions_reproduce_a_constant_object(backend):
    n = 16
    patches = np.full((3, n, n), 0.5 - 2j, dtype=np.complex64)
    x, y = np.array([20.0, 23.0, 20.0]), np.array([7.0, 7.0, 12.0])
    obj, origin = backend.stitch.stitch_patches(backend.tensor(patches), x, y)
    assert origin == (12.0, -1.0)  # (floor(min x) - N/2, floor(min y) - N/2)
    assert obj.shape == (12 - 7 + n + 1, 23 - 20 + n + 1)
    covered = np.zeros(obj.shape, bool)
    for xi, yi in zip(x, y):  # the patch at p spans p - N/2 .. p + N/2 - 1; W > 0 on a disk of it
        r, c = int(yi - n // 2 - origin[1]), int(xi - n // 2 - origin[0])
        covered[r : r + n, c : c + n] |= weight_window(n) > 0
    np.testing.assert_array_equal(obj[covered], np.full(covered.sum(), 0.5 - 2j, np.complex64))
    np.testing.assert_array_equal(obj[~covered], 0)


@pytest.mark.parametrize("align", [True, False])
def test_phase_alignment_matches_the_referee(backend, rng, align):
    # Patches of one object with random global phases, as single patterns leave them: aligned they
    # stitch back to the object (up to the first patch's phase); averaged as they are, they do not.
    ds = simulate(seed=1, n_positions=9, n=16)
    x, y = np.round(ds.xcoords), np.round(ds.ycoords)  # integer positions: cutting and placing are exact
    turns = np.exp(1j * rng.uniform(-np.pi, np.pi, len(x)))[:, None, None]
    patches = (extract_patches(ds.object.astype(np.complex128), x, y, 16) * turns).astype(np.complex64)
    obj, origin = backend.stitch.stitch_patches(backend.tensor(patches), x, y, align_phases=align)
    want, _ = reference_stitch(patches.astype(np.complex128), x, y, align_phases=align)
    np.testing.assert_allclose(obj, want, rtol=0, atol=2e-5)
    h, w = obj.shape
    truth = ds.object[int(origin[1]) : int(origin[1]) + h, int(origin[0]) : int(origin[0]) + w] * turns[0, 0, 0]
    covered = obj != 0
    error = np.abs(obj[covered] - truth[covered]).max()
    assert (error < 1e-5) == align, error


def test_stitch_refuses_mismatched_inputs(backend):
    stitch = backend.stitch.stitch_patches
    with pytest.raises(ValueError, match=r"\(P, N, N\) with P coordinates; got patches \(2, 16, 16\), 1 x and 2 y"):
        stitch(np.zeros((2, 16, 16), np.complex64), [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(P, N, N\) with P coordinates; got patches \(2, 16, 8\)"):
        stitch(np.zeros((2, 16, 8), np.complex64), [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="P coordinates"):
        stitch(backend.tensor(np.zeros((2, 16, 16), np.complex64)), np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("overrides", [{}, {"gridsize": 2, "neighbor_count": 4}])
def test_predict_patches_covers_every_member(backend, scan, overrides):
    cfg = make_config({"n_filters_scale": 1, **overrides})
    model = backend.model.model_for_data(cfg, scan)
    patches, x, y = backend.stitch.predict_patches(model, scan)
    c = cfg.n_channels
    patches = backend.numpy(patches)
    assert patches.shape == (9 * c, 16, 16) and patches.dtype == np.complex64
    assert x.shape == y.shape == (9 * c,)
    groups = backend.grouping.group_positions(scan.xcoords, scan.ycoords, cfg, inference=True)
    np.testing.assert_array_equal(x, scan.xcoords[groups.nn_indices.ravel()])
    np.testing.assert_array_equal(y, scan.ycoords[groups.nn_indices.ravel()])
    with backend.no_grad():
        ext = backend.from_native(
            model.object_ext(
                backend.to_native(scan.diffraction[groups.nn_indices]),
                backend.tensor(groups.offsets_px.astype(np.float32)),
            )
        )
    # Group by group, members in order.
    np.testing.assert_allclose(patches[2 * c - 1], ext[1, c - 1], rtol=1e-5, atol=1e-6)
    if c == 1:
        np.testing.assert_array_equal(x, scan.xcoords)
        with backend.no_grad():
            direct = backend.from_native(model.object_patches(backend.to_native(scan.diffraction[:, None])))[:, 0]
        np.testing.assert_array_equal(patches, direct)
    obj, origin = backend.stitch.reconstruct(model, scan)
    ref_obj, ref_origin = backend.stitch.stitch_patches(backend.tensor(patches), x, y)
    np.testing.assert_array_equal(obj, ref_obj)
    assert origin == ref_origin and obj.dtype == np.complex64
    want, want_origin = reference_stitch(patches.astype(np.complex128), x, y)
    assert origin == tuple(want_origin)
    np.testing.assert_allclose(obj, want, rtol=0, atol=2e-5)


def test_predict_refuses_another_pattern_size(backend, scan):
    model = backend.model.model_for_data(make_config({"n_filters_scale": 1}), scan)
    with pytest.raises(DatasetError, match="N=24 differs from the model's N=16"):
        backend.stitch.predict_patches(model, simulate(seed=6, n_positions=6, n=24))


def test_predict_refuses_offsets_object_big_cannot_merge(backend):
    # Two clusters of three, 40 px apart: with gridsize 2 and K = 4 every group spans both,
    # so its offsets exceed N/2.
    data = simulate(seed=6, n_positions=6, n=16)
    data = type(data)(data.diffraction, np.array([0.0, 1.0, 2.0, 40.0, 41.0, 42.0]), np.zeros(6), data.probe)
    model = backend.model.model_for_data(make_config({"n_filters_scale": 1, "gridsize": 2, "neighbor_count": 4}), data)
    with pytest.raises(ValueError, match="more than N/2 = 8: object_big cannot merge it"):
        backend.stitch.predict_patches(model, data)
