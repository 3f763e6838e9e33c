"""Grouped model inputs (backends/<b>/inputs.py): native layout, inference groups and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.config import make_config
from backends.common.dataset import Dataset, DatasetError
from backends.common.simulate import simulate


def test_grouped_inputs_native_layout(backend):
    rng = np.random.default_rng(8)
    x, y = rng.uniform(0, 9, 12), rng.uniform(0, 9, 12)
    diffraction = rng.uniform(0, 1, (12, 16, 16)).astype(np.float32)
    g = backend.grouping.group_positions(x, y, make_config({"gridsize": 2, "seed": 0}))
    batch, offsets = backend.inputs.grouped_inputs(Dataset(diffraction, x, y, np.ones((16, 16), np.complex64)), g)
    native = backend.numpy(batch)
    assert native.shape == backend.native_shape(12, 4, 16, 16) and native.dtype == np.float32
    np.testing.assert_array_equal(backend.from_native(batch)[3, 2], diffraction[g.nn_indices[3, 2]])
    np.testing.assert_array_equal(backend.numpy(offsets), g.offsets_px.astype(np.float32))


def test_inference_inputs_take_every_position_as_a_seed(backend):
    data = simulate(seed=3, n_positions=9, n=16)
    cfg = make_config({"n_filters_scale": 1, "gridsize": 2, "neighbor_count": 5})
    model = backend.model.model_for_data(cfg, data)
    groups, diffraction, offsets = backend.inputs.inference_inputs(model, data)
    want = backend.grouping.group_positions(data.xcoords, data.ycoords, cfg, inference=True)
    np.testing.assert_array_equal(groups.nn_indices, want.nn_indices)
    assert backend.numpy(diffraction).shape == backend.native_shape(9, 4, 16, 16)
    np.testing.assert_array_equal(backend.numpy(offsets), want.offsets_px.astype(np.float32))
    with pytest.raises(DatasetError, match="pattern size N=24 differs from the model's N=16"):
        backend.inputs.inference_inputs(model, simulate(seed=3, n_positions=9, n=24))
