"""Scales (docs/spec.md §5), network and canonical weights (§7), PinnModel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _network import network as network_np

from adapters.referee import support_mask
from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.common.weights import LOG_INTENSITY_SCALE, canonical_shapes, initial_weights


@pytest.fixture(scope="module")
def tiny():
    return simulate(seed=5, n_positions=6, n=16)


def test_compute_scales_by_formula(backend, rng):
    compute_scales = backend.model.compute_scales
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


@pytest.mark.parametrize("activation, a0", [("sigmoid", 0.5), ("softplus", math.log(2))])
def test_compute_scales_by_hand(backend, activation, a0):
    x = np.zeros((2, 16, 16), dtype=np.float32)
    x[0, 0, 0], x[1, 3, 4], x[1, 5, 5] = 3.0, 1.0, 2.0  # sums of squares 9 and 5: mean 7
    probe = np.zeros((16, 16), dtype=np.complex64)
    probe[4, 4], probe[11, 11], probe[0, 0] = 1 + 1j, 2.0, 5.0  # S holds rows/cols 4..11; |P|^2 in S: 2 + 4
    r, log_g = backend.model.compute_scales(x, probe, activation)
    assert r == pytest.approx(8 / math.sqrt(7), rel=1e-15)
    assert log_g == pytest.approx(0.5 * math.log(7 / (a0 * a0 * 6)), rel=1e-14)
    assert backend.model.amp_activation_at_zero(activation) == pytest.approx(a0, rel=1e-15)


def test_compute_scales_refuses_degenerate_input(backend):
    compute_scales = backend.model.compute_scales
    with pytest.raises(ValueError, match="all zero"):
        compute_scales(np.zeros((2, 16, 16), np.float32), np.ones((16, 16), np.complex64), "sigmoid")
    probe = (np.ones((16, 16)) - support_mask(16)).astype(np.complex64)
    with pytest.raises(ValueError, match="support"):
        compute_scales(np.ones((2, 16, 16), np.float32), probe, "sigmoid")
    with pytest.raises(ValueError, match=r"probe must be \(N, N\) = \(16, 16\) like the patterns, got \(8, 8\)"):
        compute_scales(np.ones((2, 16, 16), np.float32), np.ones((8, 8), np.complex64), "sigmoid")
    with pytest.raises(ValueError, match=r"diffraction must be \(M, N, N\) with M >= 1, got \(2, 1, 16, 16\)"):
        compute_scales(np.ones((2, 1, 16, 16), np.float32), np.ones((16, 16), np.complex64), "sigmoid")
    with pytest.raises(ValueError, match="amp_activation='relu': choose one of sigmoid, softplus"):
        backend.model.amp_activation_at_zero("relu")
    with pytest.raises(ValueError, match="amp_activation='relu'"):
        backend.model.build_network(1, "relu")


@pytest.mark.parametrize("c, activation", [(1, "sigmoid"), (4, "softplus")])
def test_network_matches_numpy_reference(backend, rng, c, activation):
    weights = initial_weights(3, 1, 0.0)
    # Non-zero biases, so a bias in the wrong place would show.
    for name in weights:
        if name.endswith(".bias"):
            weights[name] = rng.uniform(-0.1, 0.1, weights[name].shape).astype(np.float32)
    net = backend.model.build_network(1, activation)
    model = backend.model.PinnModel(
        make_config({"gridsize": int(math.isqrt(c)), "n_filters_scale": 1, "amp_activation": activation}),
        net,
        np.ones((16, 16)),
        1.0,
        0.0,
    )
    model.set_canonical_weights(weights)
    x = rng.uniform(0, 2, (2 * c, 1, 16, 16)).astype(np.float32)  # the network sees one pattern per row
    with backend.no_grad():
        amp, phase = net(backend.to_native(x))
    amp, phase = backend.from_native(amp), backend.from_native(phase)
    assert amp.shape == (2 * c, 1, 8, 8)
    for row in range(2 * c):
        amp_np, phase_np = network_np(x[row], weights, activation)
        np.testing.assert_allclose(amp[row], amp_np, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(phase[row], phase_np, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gridsize, activation", [(1, "sigmoid"), (2, "softplus")])
def test_object_patches_match_numpy_reference(backend, tiny, rng, gridsize, activation):
    cfg = make_config({"n_filters_scale": 1, "gridsize": gridsize, "amp_activation": activation, "neighbor_count": 4})
    c = cfg.n_channels
    weights = initial_weights(4, 1, 0.0)
    weights = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in weights.items()}
    model = backend.model.create_model(cfg, tiny.probe, 0.37, 0.0, weights)
    x = rng.uniform(0, 3, (2, c, 16, 16)).astype(np.float32)
    with backend.no_grad():
        patches = backend.from_native(model.object_patches(backend.to_native(x)))
    assert patches.shape == (2, c, 16, 16) and patches.dtype == np.complex64
    for b in range(2):
        scaled = x[b] * np.float32(0.37)
        amp, phase = network_np(scaled, weights, activation)
        want = np.zeros((c, 16, 16), dtype=np.complex128)
        want[:, 4:12, 4:12] = amp * np.exp(1j * phase)
        np.testing.assert_allclose(patches[b], want, rtol=0, atol=5e-6)


def test_canonical_weights_round_trip_exactly(backend):
    cfg = make_config({"gridsize": 2, "n_filters_scale": 1})
    model = backend.model.create_model(cfg, np.ones((16, 16), np.complex64), 0.5, 1.5)
    w = initial_weights(11, 1, -0.25)
    model.set_canonical_weights(w)
    got = model.get_canonical_weights()
    assert list(got) == list(canonical_shapes(1))
    for name in w:
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], w[name])
    assert float(backend.numpy(model.log_intensity_scale)) == np.float32(-0.25)
    got["encoder.0.conv0.kernel"][:] = 0  # a copy, not a view of the model
    assert model.get_canonical_weights()["encoder.0.conv0.kernel"].any()
    variables = model.canonical_variables()  # the framework's own trainable variables, by canonical name
    assert list(variables) == list(canonical_shapes(1))
    assert variables["log_intensity_scale"] is model.log_intensity_scale


def test_set_canonical_weights_round_trip_of_random_weights(backend, tiny, rng):
    model = backend.model.create_model(make_config({"n_filters_scale": 1, "gridsize": 2}), tiny.probe, 1.0, 0.0)
    new = {k: rng.standard_normal(s).astype(np.float32) for k, s in canonical_shapes(1).items()}
    model.set_canonical_weights(new)
    got = model.get_canonical_weights()
    for name in new:
        np.testing.assert_array_equal(got[name], new[name])


def test_set_canonical_weights_refuses_wrong_names_and_shapes(backend):
    model = backend.model.create_model(make_config({"n_filters_scale": 1}), np.ones((16, 16), np.complex64), 1.0, 0.0)
    w = initial_weights(0, 1, 0.0)
    with pytest.raises(ValueError, match="decoder_phase.head.bias"):
        model.set_canonical_weights({k: v for k, v in w.items() if k != "decoder_phase.head.bias"})
    with pytest.raises(ValueError, match="missing"):
        model.set_canonical_weights({k: v for k, v in w.items() if k != "encoder.1.conv1.bias"})
    with pytest.raises(ValueError, match="encoder.1.conv0.kernel"):
        model.set_canonical_weights({**w, "encoder.1.conv0.kernel": np.zeros((16, 32, 3, 3), np.float32)})
    with pytest.raises(ValueError, match="decoder_amp.head.bias"):
        model.set_canonical_weights({**w, "decoder_amp.head.bias": np.zeros(3, np.float32)})


def test_create_model_log_scale_in_weights_wins(backend, tiny):
    cfg = make_config({"n_filters_scale": 1})
    w = initial_weights(0, 1, 1.25)
    create_model = backend.model.create_model
    assert float(backend.numpy(create_model(cfg, tiny.probe, 1.0, -3.0, w).log_intensity_scale)) == 1.25
    del w[LOG_INTENSITY_SCALE]
    assert float(backend.numpy(create_model(cfg, tiny.probe, 1.0, -3.0, w).log_intensity_scale)) == -3.0
    assert LOG_INTENSITY_SCALE not in w  # the caller's dict is left alone


def test_model_for_data_uses_the_shared_initializer(backend, tiny):
    cfg = make_config({"n_filters_scale": 1, "seed": 5})
    model = backend.model.model_for_data(cfg, tiny)
    r, log_g = backend.model.compute_scales(tiny.diffraction, tiny.probe, "sigmoid")
    expected = initial_weights(5, 1, log_g)
    got = model.get_canonical_weights()
    shapes = canonical_shapes(1)
    assert list(got) == list(shapes) and {k: v.shape for k, v in got.items()} == shapes
    for name in expected:
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert model.input_scale == r and model.n == 16 and backend.numpy(model.probe).dtype == np.complex64


def test_object_patches_live_in_the_support(backend, tiny):
    model = backend.model.model_for_data(make_config({"n_filters_scale": 1}), tiny)
    x = tiny.diffraction[:3, None]
    with backend.no_grad():
        obj = backend.from_native(model.object_patches(backend.to_native(x)))
        amp, _ = model.network(backend.to_native(x * np.float32(model.input_scale)))
    assert obj.shape == (3, 1, 16, 16) and obj.dtype == np.complex64
    assert not (obj[:, 0] * (1 - support_mask(16))).any()
    inside = np.abs(obj[:, :, 4:12, 4:12])
    assert inside.min() > 0 and inside.max() < 1  # sigmoid amplitude
    # The network sees r * X.
    np.testing.assert_allclose(inside, backend.from_native(amp), rtol=1e-6)


def test_far_field_of_gridsize_one_is_the_plain_fft(backend, tiny):
    model = backend.model.model_for_data(make_config({"n_filters_scale": 1}), tiny)
    x = backend.to_native(tiny.diffraction[:4, None])
    with backend.no_grad():
        psi = backend.from_native(model.far_field(x, backend.tensor(np.zeros((4, 1, 2), np.float32))))
        obj = backend.from_native(model.object_patches(x))
    expected = np.fft.fftshift(np.fft.fft2(tiny.probe * obj[:, 0], norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(psi[:, 0], expected, rtol=0, atol=1e-5 * np.abs(expected).max())
