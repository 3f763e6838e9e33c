"""Stitching (docs/spec.md §11) against a numpy float64 reference; prediction of every position."""

import numpy as np
import pytest
import torch

from backends.common.config import make_config
from backends.common.dataset import DatasetError
from backends.common.simulate import simulate
from backends.torch_pinn.model import model_for_data
from backends.torch_pinn.stitch import predict_patches, reconstruct, stitch_patches

from . import reference

pytestmark = pytest.mark.torch


def test_stitch_matches_numpy_reference(rng):
    n, p = 16, 6
    patches = (rng.standard_normal((p, n, n)) + 1j * rng.standard_normal((p, n, n))).astype(np.complex64)
    x = rng.uniform(10, 30, p)
    y = rng.uniform(-5, 12, p)
    obj, origin = stitch_patches(torch.from_numpy(patches), x, y)
    want, want_origin = reference.stitch(patches.astype(np.complex128), x, y)
    assert obj.dtype == np.complex64 and obj.shape == want.shape
    assert origin == want_origin
    np.testing.assert_allclose(obj, want, rtol=0, atol=2e-5)


def test_integer_positions_reproduce_a_constant_object():
    n = 16
    patches = torch.full((3, n, n), 0.5 - 2j, dtype=torch.complex64)
    x = np.array([20.0, 23.0, 20.0])
    y = np.array([7.0, 7.0, 12.0])
    obj, origin = stitch_patches(patches, x, y)
    assert origin == (12.0, -1.0)  # (floor(min x) - N/2, floor(min y) - N/2)
    assert obj.shape == (12 - 7 + n + 1, 23 - 20 + n + 1)
    covered = np.zeros(obj.shape, bool)
    for xi, yi in zip(x, y):  # S of the patch at p spans p - N/4 .. p + N/4 - 1
        r, c = int(yi - n // 4 - origin[1]), int(xi - n // 4 - origin[0])
        covered[r:r + n // 2, c:c + n // 2] = True
    np.testing.assert_array_equal(obj[covered], np.full(covered.sum(), 0.5 - 2j, np.complex64))
    np.testing.assert_array_equal(obj[~covered], 0)


def test_stitch_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="P coordinates"):
        stitch_patches(torch.zeros(2, 16, 16, dtype=torch.complex64), np.zeros(3), np.zeros(3))


@pytest.fixture(scope="module")
def scan():
    return simulate(seed=6, n_positions=9, n=16)


@pytest.mark.parametrize("overrides", [{}, {"gridsize": 2, "neighbor_count": 4}])
def test_predict_patches_covers_every_member(scan, overrides):
    cfg = make_config({"n_filters_scale": 1, **overrides})
    model = model_for_data(cfg, scan)
    patches, x, y = predict_patches(model, scan)
    c = cfg.n_channels
    assert patches.shape == (9 * c, 16, 16) and patches.dtype == torch.complex64
    assert x.shape == y.shape == (9 * c,)
    if c == 1:
        np.testing.assert_array_equal(x, scan.xcoords)
        np.testing.assert_array_equal(y, scan.ycoords)
        with torch.no_grad():
            direct = model.object_patches(torch.from_numpy(scan.diffraction[:, None]))[:, 0]
        np.testing.assert_array_equal(patches.numpy(), direct.numpy())
    else:
        assert set(np.round(x, 9)) <= set(np.round(scan.xcoords, 9))
    obj, origin = reconstruct(model, scan)
    want, want_origin = reference.stitch(patches.numpy().astype(np.complex128), x, y)
    assert origin == want_origin
    np.testing.assert_allclose(obj, want, rtol=0, atol=2e-5)


def test_predict_refuses_another_pattern_size(scan):
    model = model_for_data(make_config({"n_filters_scale": 1}), scan)
    with pytest.raises(DatasetError, match="N=32 does not match the model's N=16"):
        predict_patches(model, simulate(seed=1, n_positions=4, n=32))
