"""Losses (docs/spec.md §9) against numbers worked out by hand."""

import math

import numpy as np
import pytest
import torch

from backends.torch_pinn.loss import compute_loss, mean_absolute_error, poisson_deviance, predicted_counts

pytestmark = pytest.mark.torch


def _t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def test_predicted_counts():
    psi = _t([[3 + 4j, 1j]], torch.complex64)
    got = predicted_counts(psi, _t(math.log(2.0)))
    np.testing.assert_allclose(got.numpy(), [[100.0, 4.0]], rtol=1e-6)  # g^2 |psi|^2 = 4 * 25, 4 * 1
    assert got.dtype == torch.float32


def test_poisson_deviance_by_hand():
    counts = _t([4.0, 1.0, 0.5, 2.0])
    amplitude = _t([1.0, 1.0, 0.0, 2.0])
    # terms: 3 - log(4.000001/1.000001), 0, 0.5 - 0, (2 - 4) - 4 log(2.000001/4.000001)
    terms = [3 - math.log(4.000001 / 1.000001), 0.0, 0.5, -2 - 4 * math.log(2.000001 / 4.000001)]
    assert poisson_deviance(counts, amplitude).item() == pytest.approx(sum(terms) / 4, rel=1e-6)
    assert poisson_deviance(_t([2.25, 9.0]), _t([1.5, 3.0])).item() == 0.0


def test_mean_absolute_error_by_hand():
    # sqrt(I) = g A: 10, 0, 3 against 7, 1, 3
    assert mean_absolute_error(_t([100.0, 0.0, 9.0]), _t([7.0, 1.0, 3.0])).item() == pytest.approx(4 / 3, rel=1e-6)


def test_compute_loss_means_over_every_element():
    psi = torch.zeros((2, 1, 2, 2), dtype=torch.complex64)
    psi[0, 0, 0, 0] = 2.0  # I = 4 there, 0 elsewhere
    x = torch.ones((2, 1, 2, 2))
    zero_term = 0 - 1 - math.log(1e-6 / 1.000001)  # I = 0, X = 1
    one_term = 3 - math.log(4.000001 / 1.000001)
    want = (one_term + 7 * zero_term) / 8
    assert compute_loss(psi, x, _t(0.0), "poisson").item() == pytest.approx(want, rel=1e-6)
    assert compute_loss(psi, x, _t(0.0), "mae").item() == pytest.approx((1 + 7 * 1) / 8, rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        compute_loss(psi, x, _t(0.0), "l2")


def test_gradient_reaches_log_scale():
    log_g = torch.tensor(0.0, requires_grad=True)
    psi = _t([[1.0 + 0j]], torch.complex64)
    loss = compute_loss(psi, _t([[2.0]]), log_g, "poisson")
    loss.backward()
    # d/dlog g of (g^2 - 4) - 4 log(g^2 ...) at g = 1: 2 - 8 = -6 (eps terms negligible)
    assert log_g.grad.item() == pytest.approx(-6.0, rel=1e-5)
