"""Training (docs/spec.md §10): a custom loop with GradientTape and a hand-written Adam.

Counterpart of backends/torch_pinn/train.py.

    python -m backends.tf_pinn.train --train-data-file F --output-dir D [config flags]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from backends.common.config import PinnConfig
from backends.common.dataset import Dataset, DatasetError
from backends.common.geometry import Groups
from backends.common.weights import LOG_INTENSITY_SCALE, check_canonical, initial_weights
from backends.tf_pinn.grouping import group_positions
from backends.tf_pinn.loss import compute_loss
from backends.tf_pinn.model import PinnModel, compute_scales, create_model, to_canonical_layout, to_keras_layout
from backends.tf_pinn.physics import check_offsets
from backends.tf_pinn.runtime import BACKEND_NAME, configure_determinism

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns."""

    model: PinnModel  # the trained model, ready to predict
    history: dict  # step_loss, epoch_loss, steps_per_epoch, n_groups, test_loss, backend (§10)
    groups: Groups  # the training groups, drawn once before training


def batch_order(n_groups: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """Group indices of each step of `epoch`: default_rng(seed + 1 + epoch).permutation, last batch partial."""
    order = np.random.default_rng(seed + 1 + epoch).permutation(n_groups)
    return [order[start:start + batch_size] for start in range(0, n_groups, batch_size)]


def grouped_inputs(data: Dataset, groups: Groups):
    """Native inputs of `groups`: raw amplitudes (B, N, N, C) float32 and offsets (B, C, 2) float32."""
    patterns = tf.constant(np.asarray(data.diffraction, dtype=np.float32))  # (M, N, N)
    members = tf.gather(patterns, tf.constant(groups.nn_indices))  # (B, C, N, N)
    return tf.transpose(members, (0, 2, 3, 1)), tf.constant(groups.offsets_px, dtype=tf.float32)


def inference_inputs(model: PinnModel, data: Dataset):
    """Inference groups of `data` (every position a seed, §4) as native inputs for `model`."""
    if data.N != model.n:
        raise DatasetError(data.source, "diffraction", f"pattern size N={data.N} differs from the model's N={model.n}")
    groups = group_positions(data.xcoords, data.ycoords, model.config, inference=True)
    if model.config.object_big:
        check_offsets(groups.offsets_px, data.N)
    return (groups, *grouped_inputs(data, groups))


def _batch_loss(model: PinnModel, diffraction, offsets_px):
    far = model.far_field(diffraction, offsets_px)
    return compute_loss(far, diffraction, model.log_intensity_scale, model.config.loss)


def loss_and_gradients(model: PinnModel, diffraction, offsets_px) -> tuple[float, dict]:
    """Loss of one native batch of raw amplitudes and its gradient per canonical weight (canonical layout)."""
    variables = model.canonical_variables()
    with tf.GradientTape() as tape:
        loss = _batch_loss(model, tf.convert_to_tensor(diffraction, tf.float32),
                           tf.convert_to_tensor(offsets_px, tf.float32))
    grads = tape.gradient(loss, list(variables.values()))
    return float(loss), {name: to_canonical_layout(name, grad.numpy() if grad is not None else np.zeros(var.shape))
                         for (name, var), grad in zip(variables.items(), grads)}


class Adam:
    """Textbook Adam (§10): p -= lr * m_hat / (sqrt(v_hat) + eps), as torch.optim.Adam computes it."""

    def __init__(self, variables: list, learning_rate: float, epsilon: float,
                 beta1: float = ADAM_BETA1, beta2: float = ADAM_BETA2):
        self.variables = list(variables)
        self.learning_rate, self.epsilon, self.beta1, self.beta2 = learning_rate, epsilon, beta1, beta2
        self.m = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in self.variables]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads) -> None:
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float64)
        # Bias corrections in float64, as torch does them in Python floats.
        bias1 = 1.0 - tf.pow(tf.constant(self.beta1, tf.float64), t)
        bias2 = 1.0 - tf.pow(tf.constant(self.beta2, tf.float64), t)
        step_size = tf.cast(self.learning_rate / bias1, tf.float32)
        bias2_sqrt = tf.cast(tf.sqrt(bias2), tf.float32)
        # 1 - beta in Python floats, then float32: as torch passes them to its kernels.
        b1, b2, one_minus_b1, one_minus_b2, eps = (
            tf.constant(value, tf.float32)
            for value in (self.beta1, self.beta2, 1.0 - self.beta1, 1.0 - self.beta2, self.epsilon))
        for var, grad, m, v in zip(self.variables, grads, self.m, self.v):
            m.assign(b1 * m + one_minus_b1 * grad)
            v.assign(b2 * v + one_minus_b2 * grad * grad)
            var.assign_sub(step_size * m / (tf.sqrt(v) / bias2_sqrt + eps))



def make_optimizer(model: PinnModel, config: PinnConfig) -> Adam:
    """The optimiser `train` steps (§10): Adam over the model's canonical variables."""
    return Adam(model.trainable_variables, config.learning_rate, config.adam_epsilon)


def apply_gradients(model: PinnModel, optimizer: Adam, grads: dict) -> None:
    """One optimiser step with gradients given per canonical name, in canonical layout."""
    check_canonical(grads, model.config.n_filters_scale, source="apply_gradients")
    optimizer.apply([tf.constant(to_keras_layout(name, grads[name])) for name in model.canonical_variables()])

def _signature(n: int, c: int):
    # None batch: the last partial batch reuses the one trace.
    return [tf.TensorSpec((None, n, n, c), tf.float32), tf.TensorSpec((None, c, 2), tf.float32)]


def evaluate_loss(model: PinnModel, data: Dataset, batch_size: int | None = None) -> float:
    """Mean loss over every position of `data` taken as inference groups (§4).

    `batch_size` groups per forward pass; None: model.config.batch_size (torch's
    default is its EVAL_CHUNK; the test loss of each backend's history keeps its own).
    """
    cfg = model.config
    _, diffraction, offsets = inference_inputs(model, data)
    loss_fn = tf.function(lambda x, d: _batch_loss(model, x, d), input_signature=_signature(data.N, cfg.n_channels),
                          autograph=False)
    size = batch_size or cfg.batch_size
    total, count = 0.0, 0
    for start in range(0, int(diffraction.shape[0]), size):
        batch = diffraction[start:start + size]
        total += float(loss_fn(batch, offsets[start:start + size])) * int(batch.shape[0])
        count += int(batch.shape[0])
    return total / count


def train(config: PinnConfig, train_data: Dataset, test_data: Dataset | None = None, *,
          init_weights: dict | None = None, max_steps: int | None = None,
          on_epoch_end: Callable[[int, float], None] | None = None) -> TrainResult:
    """Group once, then Adam over `config.epochs` epochs (or `max_steps` steps, whichever ends first).

    `on_epoch_end(epochs_done, epoch_loss)` is called after every epoch (progress display)."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r} must be a non-negative integer or None")
    n, c = train_data.N, config.n_channels
    config.check_against_data(train_data.n_positions, source=train_data.source)
    if test_data is not None:
        config.check_against_data(test_data.n_positions, source=test_data.source)
        if test_data.N != n:
            raise DatasetError(test_data.source, "diffraction",
                               f"pattern size N={test_data.N} differs from the training data's N={n}")
    configure_determinism(config.seed)
    groups = group_positions(train_data.xcoords, train_data.ycoords, config)
    if config.object_big:
        check_offsets(groups.offsets_px, n)
    input_scale, log_g0 = compute_scales(train_data.diffraction, train_data.probe, config.amp_activation)
    if init_weights is None:
        weights = initial_weights(config.seed, config.n_filters_scale, log_g0)
    else:
        weights = {LOG_INTENSITY_SCALE: np.float32(log_g0), **init_weights}  # the caller's log g wins
    model = create_model(config, train_data.probe, input_scale, log_g0, weights)

    diffraction, offsets = grouped_inputs(train_data, groups)
    variables = model.trainable_variables
    adam = make_optimizer(model, config)

    # autograph=False: nothing here branches on a tensor, and converting every call costs a tenth of the trace.
    @tf.function(input_signature=_signature(n, c), autograph=False)
    def step(x, d):
        with tf.GradientTape() as tape:
            loss = _batch_loss(model, x, d)
        adam.apply(tape.gradient(loss, variables))
        return loss

    n_groups = int(groups.nn_indices.shape[0])
    step_loss, epoch_loss = [], []
    for epoch in range(config.epochs):
        weighted, seen = 0.0, 0
        for idx in batch_order(n_groups, config.batch_size, epoch, config.seed):
            if max_steps is not None and len(step_loss) >= max_steps:
                break
            loss = float(step(tf.gather(diffraction, idx), tf.gather(offsets, idx)))
            step_loss.append(loss)
            weighted += loss * len(idx)
            seen += len(idx)
        if seen:
            epoch_loss.append(weighted / seen)  # a partial last epoch (max_steps) is recorded too
            if on_epoch_end is not None:
                on_epoch_end(len(epoch_loss), epoch_loss[-1])
        if max_steps is not None and len(step_loss) >= max_steps:
            break
    history = {
        "step_loss": step_loss, "epoch_loss": epoch_loss,
        "steps_per_epoch": math.ceil(n_groups / config.batch_size), "n_groups": n_groups,
        "test_loss": None if test_data is None else evaluate_loss(model, test_data),
        "backend": BACKEND_NAME,
    }
    return TrainResult(model=model, history=history, groups=groups)


if __name__ == "__main__":
    import sys

    from backends.tf_pinn.cli import train_main

    sys.exit(train_main(train=train))  # this module's own train: train.py is not imported a second time
