"""Scales (docs/spec.md §5), network and weight layout (§7), PinnModel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.common.weights import canonical_shapes, conv_specs, initial_weights
from backends.tf_pinn.model import (PinnModel, build_network, compute_scales, create_model, model_for_data,
                                    to_canonical_layout, to_keras_layout)

from ._reference import network_np, support_np

pytestmark = pytest.mark.tf


def test_compute_scales_by_formula(rng):
    x = rng.uniform(0, 4, (6, 16, 16)).astype(np.float32)
    probe = (rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16))).astype(np.complex64)
    mean_total = np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2)))
    p = probe.astype(np.complex128)[4:12, 4:12]
    support_power = np.sum(p.real**2 + p.imag**2)
    r, log_g = compute_scales(x, probe, "sigmoid")
    assert r == pytest.approx(8.0 / math.sqrt(mean_total), rel=1e-12)
    assert log_g == pytest.approx(0.5 * math.log(mean_total / (0.25 * support_power)), rel=1e-12)
    _, log_g_soft = compute_scales(x, probe, "softplus")
    assert log_g_soft == pytest.approx(0.5 * math.log(mean_total / (math.log(2) ** 2 * support_power)), rel=1e-12)


def test_compute_scales_refuses_degenerate_input():
    with pytest.raises(ValueError, match="all zero"):
        compute_scales(np.zeros((2, 16, 16), np.float32), np.ones((16, 16), np.complex64), "sigmoid")
    probe = np.ones((16, 16), np.complex64) - support_np(16)
    with pytest.raises(ValueError, match="support"):
        compute_scales(np.ones((2, 16, 16), np.float32), probe, "sigmoid")


def test_layer_names_are_the_canonical_prefixes():
    net = build_network(4, 1, "sigmoid")
    names = {layer.name for layer in net.layers}
    for spec in conv_specs(4, 1):
        layer = net.get_layer(spec.name)
        assert tuple(layer.kernel.shape) == (3, 3, spec.in_channels, spec.out_channels)
        assert spec.name in names


def test_kernel_layout_conversion_round_trip(rng):
    k = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)  # (out, in, kh, kw)
    keras_k = to_keras_layout("a.kernel", k)
    assert keras_k.shape == (3, 3, 3, 5) and keras_k[1, 2, 0, 4] == k[4, 0, 1, 2]
    np.testing.assert_array_equal(to_canonical_layout("a.kernel", keras_k), k)
    b = rng.standard_normal(5).astype(np.float32)
    np.testing.assert_array_equal(to_keras_layout("a.bias", b), b)


@pytest.mark.parametrize("c, activation", [(1, "sigmoid"), (4, "softplus")])
def test_network_matches_numpy_reference(rng, c, activation):
    weights = initial_weights(3, c, 1, 0.0)
    # Non-zero biases, so a bias in the wrong place would show.
    for name in weights:
        if name.endswith(".bias"):
            weights[name] = rng.uniform(-0.1, 0.1, weights[name].shape).astype(np.float32)
    net = build_network(c, 1, activation)
    model = PinnModel(make_config({"gridsize": int(math.isqrt(c)), "n_filters_scale": 1,
                                   "amp_activation": activation}), net, np.ones((16, 16)), 1.0, 0.0)
    model.set_canonical_weights(weights)
    x = rng.uniform(0, 2, (2, 16, 16, c)).astype(np.float32)
    amp, phase = net(x)
    assert tuple(amp.shape) == (2, 8, 8, c)
    for b in range(2):
        amp_np, phase_np = network_np(x[b], weights, activation)
        np.testing.assert_allclose(amp.numpy()[b], amp_np, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(phase.numpy()[b], phase_np, rtol=1e-4, atol=1e-5)


def test_canonical_weights_round_trip_exactly():
    cfg = make_config({"gridsize": 2, "n_filters_scale": 1})
    model = create_model(cfg, np.ones((16, 16), np.complex64), 0.5, 1.5)
    w = initial_weights(11, 4, 1, -0.25)
    model.set_canonical_weights(w)
    got = model.get_canonical_weights()
    assert list(got) == list(canonical_shapes(4, 1))
    for name in w:
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], w[name])
    assert float(model.log_intensity_scale.numpy()) == np.float32(-0.25)
    got["encoder.0.conv0.kernel"][:] = 0  # a copy, not a view of the model
    assert model.get_canonical_weights()["encoder.0.conv0.kernel"].any()


def test_set_canonical_weights_refuses_wrong_names_and_shapes():
    model = create_model(make_config({"n_filters_scale": 1}), np.ones((16, 16), np.complex64), 1.0, 0.0)
    w = initial_weights(0, 1, 1, 0.0)
    with pytest.raises(ValueError, match="decoder_phase.head.bias"):
        model.set_canonical_weights({k: v for k, v in w.items() if k != "decoder_phase.head.bias"})
    with pytest.raises(ValueError, match="encoder.1.conv0.kernel"):
        model.set_canonical_weights({**w, "encoder.1.conv0.kernel": np.zeros((16, 32, 3, 3), np.float32)})


def test_model_for_data_uses_the_shared_initializer():
    ds = simulate(seed=2, n_positions=8, n=16)
    cfg = make_config({"n_filters_scale": 1, "seed": 5})
    model = model_for_data(cfg, ds)
    r, log_g = compute_scales(ds.diffraction, ds.probe, "sigmoid")
    expected = initial_weights(5, 1, 1, log_g)
    got = model.get_canonical_weights()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    assert model.input_scale == r and model.N == 16 and model.probe.dtype == tf.complex64


def test_object_patches_live_in_the_support(rng):
    ds = simulate(seed=2, n_positions=8, n=16)
    model = model_for_data(make_config({"n_filters_scale": 1}), ds)
    x = ds.diffraction[:3, :, :, None]
    obj = model.object_patches(x).numpy()
    assert obj.shape == (3, 16, 16, 1) and obj.dtype == np.complex64
    outside = obj[:, :, :, 0] * (1 - support_np(16))
    assert not outside.any()
    inside = np.abs(obj[:, 4:12, 4:12, 0])
    assert inside.min() > 0 and inside.max() < 1  # sigmoid amplitude
    # The network sees r * X: scaling the input scale changes the output.
    amp, _ = model.network(x * np.float32(model.input_scale))
    np.testing.assert_allclose(np.abs(obj[:, 4:12, 4:12, :]), amp.numpy(), rtol=1e-6)


def test_far_field_of_gridsize_one_is_the_plain_fft():
    ds = simulate(seed=2, n_positions=4, n=16)
    model = model_for_data(make_config({"n_filters_scale": 1}), ds)
    x = ds.diffraction[:, :, :, None]
    psi = model.far_field(x, np.zeros((4, 1, 2), np.float32)).numpy()
    obj = model.object_patches(x).numpy()
    expected = np.fft.fftshift(np.fft.fft2(ds.probe * obj[..., 0], norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(psi[..., 0], expected, rtol=0, atol=1e-5 * np.abs(expected).max())
