"""Scales, network architecture and canonical weights (docs/spec.md §5, §7)."""

import math

import numpy as np
import pytest
import torch

from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.common.weights import LOG_INTENSITY_SCALE, canonical_shapes, initial_weights
from backends.torch_pinn.model import compute_scales, create_model, model_for_data

from . import reference

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tiny():
    return simulate(seed=5, n_positions=6, n=16)


@pytest.mark.parametrize("activation, a0", [("sigmoid", 0.5), ("softplus", math.log(2))])
def test_compute_scales_by_hand(activation, a0):
    x = np.zeros((2, 16, 16), dtype=np.float32)
    x[0, 0, 0], x[1, 3, 4], x[1, 5, 5] = 3.0, 1.0, 2.0  # sums of squares 9 and 5: mean 7
    probe = np.zeros((16, 16), dtype=np.complex64)
    probe[4, 4], probe[11, 11], probe[0, 0] = 1 + 1j, 2.0, 5.0  # S holds rows/cols 4..11; |P|^2 in S: 2 + 4
    r, log_g = compute_scales(x, probe, activation)
    assert r == pytest.approx(8 / math.sqrt(7), rel=1e-15)
    assert log_g == pytest.approx(0.5 * math.log(7 / (a0 * a0 * 6)), rel=1e-14)


def test_weights_have_canonical_names_and_initial_values(tiny):
    cfg = make_config({"n_filters_scale": 1, "seed": 9})
    model = model_for_data(cfg, tiny)
    got = model.get_canonical_weights()
    shapes = canonical_shapes(1, 1)
    assert list(got) == list(shapes)
    assert {k: v.shape for k, v in got.items()} == shapes
    assert all(v.dtype == np.float32 for v in got.values())
    _, log_g0 = compute_scales(tiny.diffraction, tiny.probe, "sigmoid")
    want = initial_weights(9, 1, 1, log_g0)
    for name in shapes:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # torch names mirror the canonical ones
    torch_names = {n.replace(".weight", ".kernel") for n, _ in model.network.named_parameters()}
    assert torch_names == set(shapes) - {LOG_INTENSITY_SCALE}
    assert isinstance(model.log_intensity_scale, torch.nn.Parameter)


def test_set_canonical_weights_round_trip_and_checks(tiny, rng):
    cfg = make_config({"n_filters_scale": 1, "gridsize": 2})
    model = create_model(cfg, tiny.probe, 1.0, 0.0)
    new = {k: rng.standard_normal(s).astype(np.float32) for k, s in canonical_shapes(4, 1).items()}
    model.set_canonical_weights(new)
    got = model.get_canonical_weights()
    for name in new:
        np.testing.assert_array_equal(got[name], new[name])
    got["encoder.0.conv0.kernel"][...] = 0  # a copy: the model is untouched
    assert np.any(model.get_canonical_weights()["encoder.0.conv0.kernel"] != 0)
    bad = dict(new, **{"decoder_amp.head.bias": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="decoder_amp.head.bias"):
        model.set_canonical_weights(bad)
    with pytest.raises(ValueError, match="missing"):
        model.set_canonical_weights({k: v for k, v in new.items() if k != "encoder.1.conv1.bias"})


def test_create_model_log_scale_in_weights_wins(tiny):
    cfg = make_config({"n_filters_scale": 1})
    w = initial_weights(0, 1, 1, 1.25)
    assert float(create_model(cfg, tiny.probe, 1.0, -3.0, w).log_intensity_scale.item()) == 1.25
    del w[LOG_INTENSITY_SCALE]
    assert float(create_model(cfg, tiny.probe, 1.0, -3.0, w).log_intensity_scale.item()) == -3.0


@pytest.mark.parametrize("gridsize, activation", [(1, "sigmoid"), (2, "softplus")])
def test_network_matches_numpy_reference(tiny, rng, gridsize, activation):
    cfg = make_config({"n_filters_scale": 1, "gridsize": gridsize, "amp_activation": activation,
                       "neighbor_count": 4})
    c = cfg.n_channels
    weights = initial_weights(4, c, 1, 0.0)
    weights = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in weights.items()}
    model = create_model(cfg, tiny.probe, 0.37, 0.0, weights)
    x = rng.uniform(0, 3, (2, c, 16, 16)).astype(np.float32)
    with torch.no_grad():
        patches = model.object_patches(torch.from_numpy(x)).numpy()
    assert patches.shape == (2, c, 16, 16) and patches.dtype == np.complex64
    for b in range(2):
        scaled = x[b] * np.float32(0.37)
        amp, phase = reference.network(scaled, weights, activation)
        want = np.zeros((c, 16, 16), dtype=np.complex128)
        want[:, 4:12, 4:12] = amp * np.exp(1j * phase)
        np.testing.assert_allclose(patches[b], want, rtol=0, atol=5e-6)


def test_object_patches_ranges(tiny):
    model = model_for_data(make_config({"n_filters_scale": 1}), tiny)
    with torch.no_grad():
        o = model.object_patches(torch.from_numpy(tiny.diffraction[:, None])).numpy()
    outside = np.ones((16, 16), bool)
    outside[4:12, 4:12] = False
    assert np.all(o[..., outside] == 0)
    inside = o[..., 4:12, 4:12]
    assert np.all((np.abs(inside) > 0) & (np.abs(inside) < 1))
