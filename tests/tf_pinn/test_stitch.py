"""Stitching (docs/spec.md §11): canvas placement, averaging, mask floor, prediction of every member."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.config import make_config
from backends.common.dataset import DatasetError
from backends.common.geometry import canvas_geometry
from backends.common.simulate import extract_patches, simulate
from backends.tf_pinn.grouping import group_positions
from backends.tf_pinn.model import model_for_data
from backends.tf_pinn.stitch import predict_patches, reconstruct, stitch_patches

from ._reference import support_np, translate_np

pytestmark = pytest.mark.tf


def _stitch_np(patches, x, y):
    """§11 in float64 numpy, written from the spec."""
    p, n, _ = patches.shape
    geom = canvas_geometry(x, y, n)
    num = np.zeros(geom.shape, np.complex128)
    den = np.zeros(geom.shape)
    s = support_np(n)
    for k in range(p):
        tile = np.zeros((n + 1, n + 1), np.complex128)
        mask = np.zeros((n + 1, n + 1))
        tile[:n, :n] = patches[k] * s
        mask[:n, :n] = s
        fx, fy = geom.fractions_px[k]
        c0, r0 = geom.tile_offsets[k]
        num[r0:r0 + n + 1, c0:c0 + n + 1] += translate_np(tile, fx, fy)
        den[r0:r0 + n + 1, c0:c0 + n + 1] += translate_np(mask, fx, fy)
    out = np.zeros(geom.shape, np.complex128)
    ok = den >= 1e-3
    out[ok] = num[ok] / den[ok]
    return out, geom.origin_px


def test_single_patch_at_an_integer_position():
    n = 16
    patch = np.arange(n * n).reshape(n, n) * (1 + 1j)
    obj, origin = stitch_patches(patch[None].astype(np.complex64), [30.0], [20.0])
    assert origin == (30 - 8, 20 - 8) and obj.shape == (n + 1, n + 1) and obj.dtype == np.complex64
    expected = np.zeros((n + 1, n + 1), complex)
    expected[4:12, 4:12] = patch[4:12, 4:12]  # only S is kept; the rest is below the mask floor
    np.testing.assert_allclose(obj, expected, rtol=1e-6)


def test_matches_numpy_with_fractional_positions(rng):
    n, p = 16, 7
    patches = rng.standard_normal((p, n, n)) + 1j * rng.standard_normal((p, n, n))
    x, y = rng.uniform(10, 30, p), rng.uniform(12, 25, p)
    obj, origin = stitch_patches(patches.astype(np.complex64), x, y)
    expected, expected_origin = _stitch_np(patches, x, y)
    assert origin == expected_origin and obj.shape == expected.shape
    np.testing.assert_allclose(obj, expected, rtol=0, atol=1e-5)


def test_patches_cut_from_an_object_stitch_back_to_it():
    ds = simulate(seed=1, n_positions=9, n=16)
    x, y = np.round(ds.xcoords), np.round(ds.ycoords)  # integer positions: cutting and placing are exact
    patches = extract_patches(ds.object.astype(np.complex128), x, y, 16)
    obj, (x0, y0) = stitch_patches(patches.astype(np.complex64), x, y)
    h, w = obj.shape
    truth = ds.object[int(y0):int(y0) + h, int(x0):int(x0) + w]
    covered = obj != 0
    assert covered.sum() > 0.3 * covered.size
    np.testing.assert_allclose(obj[covered], truth[covered], rtol=1e-5)


def test_stitch_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="one \\(x, y\\) per patch"):
        stitch_patches(np.zeros((2, 16, 16), np.complex64), [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="\\(P, N, N\\)"):
        stitch_patches(np.zeros((2, 16, 8), np.complex64), [1.0, 2.0], [1.0, 2.0])


@pytest.mark.parametrize("gridsize", [1, 2])
def test_predict_patches_and_reconstruct(gridsize):
    ds = simulate(seed=6, n_positions=12, n=16)
    cfg = make_config({"gridsize": gridsize, "n_filters_scale": 1})
    model = model_for_data(cfg, ds)
    patches, px, py = predict_patches(model, ds)
    groups = group_positions(ds.xcoords, ds.ycoords, cfg, inference=True)
    c = gridsize * gridsize
    assert tuple(patches.shape) == (12 * c, 16, 16)
    np.testing.assert_array_equal(px, ds.xcoords[groups.nn_indices.ravel()])
    np.testing.assert_array_equal(py, ds.ycoords[groups.nn_indices.ravel()])
    ext = model.object_ext(ds.diffraction[groups.nn_indices].transpose(0, 2, 3, 1),
                           groups.offsets_px.astype(np.float32)).numpy()
    np.testing.assert_allclose(patches.numpy()[2 * c - 1], ext[1, :, :, c - 1], rtol=1e-5, atol=1e-6)
    obj, origin = reconstruct(model, ds)
    ref_obj, ref_origin = stitch_patches(patches, px, py)
    np.testing.assert_array_equal(obj, ref_obj)
    assert origin == ref_origin and obj.dtype == np.complex64


def test_block_size_does_not_change_the_result(rng, monkeypatch):
    import backends.tf_pinn.stitch as stitch_module

    patches = (rng.standard_normal((7, 16, 16)) + 1j * rng.standard_normal((7, 16, 16))).astype(np.complex64)
    x, y = rng.uniform(10, 20, 7), rng.uniform(10, 20, 7)
    whole, _ = stitch_patches(patches, x, y)
    monkeypatch.setattr(stitch_module, "_STITCH_BLOCK", 3)
    blocks, _ = stitch_patches(patches, x, y)
    np.testing.assert_allclose(blocks, whole, rtol=1e-6, atol=1e-7)


def test_predict_refuses_another_pattern_size():
    model = model_for_data(make_config({"n_filters_scale": 1}), simulate(seed=6, n_positions=6, n=16))
    with pytest.raises(DatasetError, match="N=24"):
        predict_patches(model, simulate(seed=6, n_positions=6, n=24))
