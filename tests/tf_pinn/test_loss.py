"""Predicted counts and losses (docs/spec.md §5, §9) against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.tf_pinn.loss import compute_loss, mean_absolute_error, poisson_deviance, predicted_counts

pytestmark = pytest.mark.tf


def test_predicted_counts_are_g_squared_times_power():
    psi = np.array([[[[1 + 1j]], [[0 - 2j]]]], np.complex64)  # (1, 2, 1, 1)
    counts = predicted_counts(psi, math.log(3.0)).numpy()
    # g = 3: 9 * (1 + 1) = 18 and 9 * 4 = 36.
    np.testing.assert_allclose(counts.ravel(), [18.0, 36.0], rtol=1e-6)
    assert counts.dtype == np.float32 and counts.shape == psi.shape


def test_poisson_deviance_by_hand():
    counts = np.array([4.0, 8.0, 1.0, 0.0], np.float32)
    x = np.array([2.0, 2.0, 0.0, 1.0], np.float32)
    eps = 1e-6
    terms = [
        0.0,  # I = X^2 = 4: a perfect fit
        (8 - 4) - 4 * math.log((8 + eps) / (4 + eps)),
        1.0,  # X = 0: only I remains
        (0 - 1) - 1 * math.log(eps / (1 + eps)),
    ]
    assert float(poisson_deviance(counts, x)) == pytest.approx(sum(terms) / 4, rel=1e-6)
    assert float(poisson_deviance(np.full(3, 9.0, np.float32), np.full(3, 3.0, np.float32))) == 0.0


def test_poisson_deviance_keeps_precision_at_large_counts():
    # At 1e6 counts a 1 % misfit costs about X^2 d^2 / 2 = 50 per pixel, against a log-likelihood of ~1e7.
    x = np.full(4, 1000.0, np.float32)
    counts = np.full(4, 1.01e6, np.float32)
    got = float(poisson_deviance(counts, x))
    x2 = float(x[0]) ** 2
    expected = (float(counts[0]) - x2) - x2 * math.log(float(counts[0]) / x2)
    assert got == pytest.approx(expected, rel=1e-3) and 45 < got < 55


def test_mean_absolute_error_by_hand():
    counts = np.array([9.0, 16.0, 0.0], np.float32)
    x = np.array([2.0, 5.0, 1.5], np.float32)
    assert float(mean_absolute_error(counts, x)) == pytest.approx((1 + 1 + 1.5) / 3, rel=1e-6)


def test_losses_are_means_over_every_element(rng):
    psi = (rng.standard_normal((2, 8, 8, 4)) + 1j * rng.standard_normal((2, 8, 8, 4))).astype(np.complex64)
    x = rng.uniform(0, 3, (2, 8, 8, 4)).astype(np.float32)
    log_g = 0.3
    intensity = math.exp(2 * log_g) * np.abs(psi.astype(np.complex128)) ** 2
    x2 = x.astype(np.float64) ** 2
    poisson = np.mean((intensity - x2) - x2 * np.log((intensity + 1e-6) / (x2 + 1e-6)))
    mae = np.mean(np.abs(math.exp(log_g) * np.abs(psi.astype(np.complex128)) - x))
    assert float(compute_loss(psi, x, log_g, "poisson")) == pytest.approx(poisson, rel=1e-5)
    assert float(compute_loss(psi, x, log_g, "mae")) == pytest.approx(mae, rel=1e-5)


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="'l2'"):
        compute_loss(np.ones((1, 8, 8, 1), np.complex64), np.ones((1, 8, 8, 1), np.float32), 0.0, "l2")
