"""Predicted counts and the two losses (docs/spec.md §5, §9) in TensorFlow.

Counterpart of backends/torch_pinn/loss.py. Every loss is a mean over every
element of the (B, N, N, C) batch; X is the raw measured amplitude.
"""

from __future__ import annotations

import tensorflow as tf

from backends.common.config import LOSSES
from backends.common.contract import LOSS_EPSILON
from backends.common.validation import check_choice


def predicted_counts(far_field, log_intensity_scale):
    """I = g^2 (Re^2 + Im^2) of the far field, g = exp(log g); computed directly, not through abs."""
    far_field = tf.convert_to_tensor(far_field, dtype=tf.complex64)
    g = tf.exp(tf.cast(log_intensity_scale, tf.float32))
    re, im = tf.math.real(far_field), tf.math.imag(far_field)
    return (g * g) * (re * re + im * im)


def poisson_deviance(pred_counts, observed_amplitude):
    """mean((I - X^2) - X^2 log((I + 1e-6) / (X^2 + 1e-6))): 0 at a perfect fit."""
    counts = tf.convert_to_tensor(pred_counts, dtype=tf.float32)
    x = tf.convert_to_tensor(observed_amplitude, dtype=tf.float32)
    x2 = x * x
    return tf.reduce_mean((counts - x2) - x2 * tf.math.log((counts + LOSS_EPSILON) / (x2 + LOSS_EPSILON)))


def mean_absolute_error(pred_counts, observed_amplitude):
    """mean(|sqrt(I) - X|) = mean(|g A - X|)."""
    counts = tf.convert_to_tensor(pred_counts, dtype=tf.float32)
    x = tf.convert_to_tensor(observed_amplitude, dtype=tf.float32)
    return tf.reduce_mean(tf.abs(tf.sqrt(counts) - x))


_LOSSES = {"poisson": poisson_deviance, "mae": mean_absolute_error}  # keys: backends.common.config.LOSSES


def compute_loss(far_field, observed_amplitude, log_intensity_scale, loss_name: str):
    """The configured loss of far field Psi against raw amplitudes X."""
    check_choice("loss", loss_name, LOSSES)
    return _LOSSES[loss_name](predicted_counts(far_field, log_intensity_scale), observed_amplitude)
