"""Predicted counts and the two losses (docs/spec.md §5, §9) in torch.

Counterpart of backends/tf_pinn/loss.py. Every loss is a mean over every
element of the (B, C, N, N) batch; X is the raw measured amplitude.
"""

from __future__ import annotations

import torch

from backends.common.config import LOSSES
from backends.common.contract import LOSS_EPSILON
from backends.common.validation import check_choice


def _float32(value) -> torch.Tensor:
    return value.to(torch.float32) if torch.is_tensor(value) else torch.tensor(float(value), dtype=torch.float32)


def predicted_counts(far_field: torch.Tensor, log_intensity_scale) -> torch.Tensor:
    """I = g^2 (Re^2 + Im^2) with g = exp(log g); float32."""
    g = torch.exp(_float32(log_intensity_scale))
    re, im = far_field.real, far_field.imag
    return (g * g) * (re * re + im * im)


def poisson_deviance(pred_counts: torch.Tensor, observed_amplitude: torch.Tensor) -> torch.Tensor:
    """mean((I - X^2) - X^2 log((I + eps) / (X^2 + eps))): 0 at a perfect fit."""
    x2 = observed_amplitude * observed_amplitude
    ratio = (pred_counts + LOSS_EPSILON) / (x2 + LOSS_EPSILON)
    return torch.mean((pred_counts - x2) - x2 * torch.log(ratio))


def mean_absolute_error(pred_counts: torch.Tensor, observed_amplitude: torch.Tensor) -> torch.Tensor:
    """mean(|g A - X|) with g A = sqrt(I)."""
    return torch.mean(torch.abs(torch.sqrt(pred_counts) - observed_amplitude))


_LOSSES = {"poisson": poisson_deviance, "mae": mean_absolute_error}  # keys: backends.common.config.LOSSES


def compute_loss(
    far_field: torch.Tensor, observed_amplitude: torch.Tensor, log_intensity_scale, loss_name: str
) -> torch.Tensor:
    """The named loss of the predicted far field against raw measured amplitudes."""
    check_choice("loss", loss_name, LOSSES)
    return _LOSSES[loss_name](predicted_counts(far_field, log_intensity_scale), observed_amplitude)
