"""Checks between the two bundled backends that belong to the backends themselves.

Real TensorFlow and real torch in one process, through the thin adapters (only
layout conversion). Tolerances come from the parity ledger, not literals.
"""

import numpy as np
import pytest

from adapters.base import Batch, ModelState
from adapters.registry import get_adapter
from backends.common.config import make_config
from backends.common.dataset import load_dataset
from backends.common.weights import initial_weights
from parity.tolerances import tolerance

pytestmark = [pytest.mark.tf, pytest.mark.torch]


@pytest.fixture(scope="module")
def backends():
    return get_adapter("tf_pinn"), get_adapter("torch_pinn")


@pytest.mark.parametrize("overrides", [{}, {"gridsize": 2}, {"gridsize": 2, "neighbor_count": 7, "n_groups": 20}])
@pytest.mark.parametrize("inference", [False, True])
def test_same_groups(backends, small_dataset_path, overrides, inference):
    ds = load_dataset(small_dataset_path)
    cfg = make_config(overrides).to_dict()
    tf_groups, torch_groups = (b.group(ds.xcoords, ds.ycoords, cfg, inference) for b in backends)
    np.testing.assert_array_equal(tf_groups["nn_indices"], torch_groups["nn_indices"])
    np.testing.assert_array_equal(tf_groups["coords_px"], torch_groups["coords_px"])
    expected_rows = ds.n_positions if inference or "n_groups" not in overrides else overrides["n_groups"]
    assert tf_groups["nn_indices"].shape == (expected_rows, make_config(overrides).n_channels)


@pytest.mark.parametrize("overrides", [{}, {"gridsize": 2, "n_filters_scale": 1}])
def test_same_initial_weights_for_one_seed(backends, overrides):
    cfg = make_config(overrides)
    tf_w, torch_w = (b.initial_weights(cfg.to_dict(), 32, 1.25) for b in backends)
    shared = initial_weights(cfg.seed, cfg.n_filters_scale, 1.25)
    assert sorted(tf_w) == sorted(torch_w) == sorted(shared)
    for name in shared:
        np.testing.assert_array_equal(tf_w[name], shared[name], err_msg=f"tf_pinn {name}")
        np.testing.assert_array_equal(torch_w[name], shared[name], err_msg=f"torch_pinn {name}")


def test_another_seed_gives_other_weights(backends):
    a = backends[0].initial_weights(make_config({"seed": 1}).to_dict(), 32, 0.0)
    b = backends[0].initial_weights(make_config({"seed": 2}).to_dict(), 32, 0.0)
    assert not np.array_equal(a["encoder.0.conv0.kernel"], b["encoder.0.conv0.kernel"])


@pytest.mark.slow
@pytest.mark.parametrize("writer_index", [0, 1], ids=["tf_pinn-writes", "torch_pinn-writes"])
def test_bundles_cross_load_and_predict(backends, small_dataset_path, tmp_path, writer_index):
    writer, reader = backends[writer_index], backends[1 - writer_index]
    ds = load_dataset(small_dataset_path)
    cfg = make_config({"gridsize": 2, "n_filters_scale": 1})
    scales = writer.scales(ds.diffraction, ds.probe, cfg.amp_activation)
    weights = initial_weights(3, cfg.n_filters_scale, scales["log_intensity_scale"])
    # Perturb biases too, so a loader that drops or reorders them is seen.
    rng = np.random.default_rng(0)
    weights = {
        k: (v + rng.normal(0, 0.01, v.shape).astype(np.float32)) if k.endswith(".bias") else v
        for k, v in weights.items()
    }
    state = ModelState(cfg.to_dict(), weights, ds.probe, scales["input_scale"])
    groups = writer.group(ds.xcoords, ds.ycoords, cfg.to_dict())
    batch = Batch(ds.diffraction[groups["nn_indices"][:3]], groups["offsets_px"][:3].astype(np.float32))
    path = tmp_path / "bundle.zip"
    writer.save_bundle(state, path)
    loaded = reader.load_bundle(path)
    assert loaded.config == state.config
    assert loaded.input_scale == state.input_scale
    for name in weights:
        np.testing.assert_array_equal(loaded.weights[name], weights[name], err_msg=name)
    expected = writer.predict(state, batch)
    got = reader.predict(loaded, batch)
    tol = tolerance("bundle", "cross_load", "float32")
    for key in ("object_patches", "amplitude"):
        err = np.max(np.abs(got[key].astype(np.complex128) - expected[key]))
        assert err <= tol.value, f"{key}: {err:.3g} > {tol.value:.3g} ({tol.key})"
    # and the log intensity scale really reached the reader's prediction: g scales amplitude
    doubled = ModelState(
        loaded.config,
        dict(loaded.weights, log_intensity_scale=np.float32(loaded.weights["log_intensity_scale"] + np.log(2.0))),
        loaded.probe,
        loaded.input_scale,
    )
    np.testing.assert_allclose(reader.predict(doubled, batch)["amplitude"], 2 * got["amplitude"], rtol=1e-5)
