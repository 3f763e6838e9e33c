"""Predicted counts and losses (docs/spec.md §5, §9) against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters.referee import compute_loss as reference_loss


def _f32(backend, values):
    return backend.tensor(np.asarray(values, np.float32))


def test_predicted_counts_are_g_squared_times_power(backend):
    psi = np.array([[[[1 + 1j]], [[0 - 2j]]]], np.complex64)  # (1, 2, 1, 1)
    counts = backend.numpy(backend.loss.predicted_counts(backend.to_native(psi), _f32(backend, math.log(3.0))))
    # g = 3: 9 * (1 + 1) = 18 and 9 * 4 = 36.
    np.testing.assert_allclose(backend.from_native(counts).ravel(), [18.0, 36.0], rtol=1e-6)
    assert counts.dtype == np.float32 and counts.shape == backend.native_shape(1, 2, 1, 1)
    two = backend.numpy(
        backend.loss.predicted_counts(
            backend.tensor(np.array([[3 + 4j, 1j]], np.complex64)), _f32(backend, math.log(2.0))
        )
    )
    np.testing.assert_allclose(two, [[100.0, 4.0]], rtol=1e-6)  # g^2 |psi|^2 = 4 * 25, 4 * 1
    wide = backend.numpy(backend.loss.predicted_counts(backend.to_native(psi), backend.tensor(np.float64(0.0))))
    assert wide.dtype == np.float32  # a float64 log g is taken as float32, as every loss input


def test_poisson_deviance_by_hand(backend):
    deviance = backend.loss.poisson_deviance
    eps = 1e-6
    terms = [
        0.0,  # I = X^2 = 4: a perfect fit
        (8 - 4) - 4 * math.log((8 + eps) / (4 + eps)),
        1.0,  # X = 0: only I remains
        (0 - 1) - 1 * math.log(eps / (1 + eps)),
    ]
    got = deviance(_f32(backend, [4.0, 8.0, 1.0, 0.0]), _f32(backend, [2.0, 2.0, 0.0, 1.0]))
    assert float(got) == pytest.approx(sum(terms) / 4, rel=1e-6)
    assert float(deviance(_f32(backend, np.full(3, 9.0)), _f32(backend, np.full(3, 3.0)))) == 0.0
    # terms: 3 - log(4.000001/1.000001), 0, 0.5 - 0, (2 - 4) - 4 log(2.000001/4.000001)
    terms = [3 - math.log(4.000001 / 1.000001), 0.0, 0.5, -2 - 4 * math.log(2.000001 / 4.000001)]
    got = deviance(_f32(backend, [4.0, 1.0, 0.5, 2.0]), _f32(backend, [1.0, 1.0, 0.0, 2.0]))
    assert float(got) == pytest.approx(sum(terms) / 4, rel=1e-6)
    assert float(deviance(_f32(backend, [2.25, 9.0]), _f32(backend, [1.5, 3.0]))) == 0.0


def test_poisson_deviance_keeps_precision_at_large_counts(backend):
    # At 1e6 counts a 1 % misfit costs about X^2 d^2 / 2 = 50 per pixel, against a log-likelihood of ~1e7.
    x = np.full(4, 1000.0, np.float32)
    counts = np.full(4, 1.01e6, np.float32)
    got = float(backend.loss.poisson_deviance(backend.tensor(counts), backend.tensor(x)))
    x2 = float(x[0]) ** 2
    expected = (float(counts[0]) - x2) - x2 * math.log(float(counts[0]) / x2)
    assert got == pytest.approx(expected, rel=1e-3) and 45 < got < 55


def test_mean_absolute_error_by_hand(backend):
    mae = backend.loss.mean_absolute_error
    assert float(mae(_f32(backend, [9.0, 16.0, 0.0]), _f32(backend, [2.0, 5.0, 1.5]))) == pytest.approx(
        (1 + 1 + 1.5) / 3, rel=1e-6
    )
    # sqrt(I) = g A: 10, 0, 3 against 7, 1, 3
    assert float(mae(_f32(backend, [100.0, 0.0, 9.0]), _f32(backend, [7.0, 1.0, 3.0]))) == pytest.approx(
        4 / 3, rel=1e-6
    )


def test_losses_are_means_over_every_element(backend, rng):
    psi = (rng.standard_normal((2, 4, 8, 8)) + 1j * rng.standard_normal((2, 4, 8, 8))).astype(np.complex64)
    x = rng.uniform(0, 3, (2, 4, 8, 8)).astype(np.float32)
    log_g = 0.3
    for name in ("poisson", "mae"):
        got = float(backend.loss.compute_loss(backend.to_native(psi), backend.to_native(x), _f32(backend, log_g), name))
        assert got == pytest.approx(reference_loss(psi, x, log_g, name), rel=1e-5), name


def test_compute_loss_on_a_hand_made_batch(backend):
    psi = np.zeros((2, 1, 2, 2), np.complex64)
    psi[0, 0, 0, 0] = 2.0  # I = 4 there, 0 elsewhere
    x = np.ones((2, 1, 2, 2), np.float32)
    zero_term = 0 - 1 - math.log(1e-6 / 1.000001)  # I = 0, X = 1
    one_term = 3 - math.log(4.000001 / 1.000001)
    want = (one_term + 7 * zero_term) / 8
    args = backend.to_native(psi), backend.to_native(x), _f32(backend, 0.0)
    assert float(backend.loss.compute_loss(*args, "poisson")) == pytest.approx(want, rel=1e-6)
    assert float(backend.loss.compute_loss(*args, "mae")) == pytest.approx((1 + 7 * 1) / 8, rel=1e-6)


def test_unknown_loss_name(backend):
    psi = backend.to_native(np.ones((1, 1, 8, 8), np.complex64))
    with pytest.raises(ValueError, match="loss='l2': choose one of poisson, mae"):
        backend.loss.compute_loss(psi, backend.to_native(np.ones((1, 1, 8, 8), np.float32)), 0.0, "l2")


def test_loss_epsilon_is_the_contracts(backend):
    assert backend.loss.LOSS_EPSILON == 1e-6
