"""Training (docs/spec.md §10): a custom loop with GradientTape and a hand-written Adam.

Counterpart of backends/torch_pinn/train.py.

    python -m backends.tf_pinn.train --train-data-file F --output-dir D [config flags]
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from backends.common.config import PinnConfig
from backends.common.contract import ADAM_BETA1, ADAM_BETA2, EVAL_CHUNK
from backends.common.dataset import Dataset
from backends.common.geometry import check_offsets
from backends.common.training import TrainResult, batch_order, check_train_inputs, training_history
from backends.common.validation import check_gradients
from backends.common.weights import check_canonical
from backends.tf_pinn.grouping import group_positions
from backends.tf_pinn.inputs import grouped_inputs, inference_inputs
from backends.tf_pinn.loss import compute_loss
from backends.tf_pinn.model import PinnModel, compute_scales, create_model, to_canonical_layout, to_keras_layout
from backends.tf_pinn.runtime import BACKEND_NAME, configure_determinism


def _batch_loss(model: PinnModel, diffraction, offsets_px):
    far = model.far_field(diffraction, offsets_px)
    return compute_loss(far, diffraction, model.log_intensity_scale, model.config.loss)


def loss_and_gradients(model: PinnModel, diffraction, offsets_px) -> tuple[float, dict]:
    """Loss of one native batch of raw amplitudes and its gradient per canonical weight (canonical layout)."""
    variables = model.canonical_variables()
    with tf.GradientTape() as tape:
        loss = _batch_loss(
            model, tf.convert_to_tensor(diffraction, tf.float32), tf.convert_to_tensor(offsets_px, tf.float32)
        )
    grads = tape.gradient(loss, list(variables.values()))
    check_gradients(variables, grads, source="loss_and_gradients")
    return float(loss), {name: to_canonical_layout(name, grad.numpy()) for name, grad in zip(variables, grads)}


class Adam:
    """Textbook Adam (§10): p -= lr * m_hat / (sqrt(v_hat) + eps), as torch.optim.Adam computes it."""

    def __init__(
        self,
        variables: list,
        learning_rate: float,
        epsilon: float,
        beta1: float = ADAM_BETA1,
        beta2: float = ADAM_BETA2,
    ):
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
            for value in (self.beta1, self.beta2, 1.0 - self.beta1, 1.0 - self.beta2, self.epsilon)
        )
        for var, grad, m, v in zip(self.variables, grads, self.m, self.v):
            m.assign(b1 * m + one_minus_b1 * grad)
            v.assign(b2 * v + one_minus_b2 * grad * grad)
            var.assign_sub(step_size * m / (tf.sqrt(v) / bias2_sqrt + eps))


def make_optimizer(model: PinnModel, config: PinnConfig) -> Adam:
    """The optimiser `train` steps (§10): Adam over the model's canonical variables."""
    return Adam(model.trainable_variables, config.learning_rate, config.adam_epsilon)


def optimizer_settings(optimizer: Adam) -> dict:
    """What `optimizer` (as make_optimizer builds it) applies, read from the object: name, learning_rate,
    beta1, beta2, epsilon, weight_decay and schedule. This Adam has no weight decay and `train` never
    changes its learning rate (0.0 and "constant"), as §10 says."""
    return {
        "name": type(optimizer).__name__.lower(),
        "learning_rate": float(optimizer.learning_rate),
        "beta1": float(optimizer.beta1),
        "beta2": float(optimizer.beta2),
        "epsilon": float(optimizer.epsilon),
        "weight_decay": 0.0,
        "schedule": "constant",
    }


def apply_gradients(model: PinnModel, optimizer: Adam, grads: dict) -> None:
    """One optimiser step with gradients given per canonical name, in canonical layout."""
    check_canonical(grads, model.config.n_filters_scale, source="apply_gradients")
    optimizer.apply([tf.constant(to_keras_layout(name, grads[name])) for name in model.canonical_variables()])


def _signature(n: int, c: int):
    # None batch: the last partial batch reuses the one trace.
    return [tf.TensorSpec((None, n, n, c), tf.float32), tf.TensorSpec((None, c, 2), tf.float32)]


def evaluate_loss(model: PinnModel, data: Dataset, batch_size: int | None = None) -> float:
    """Mean loss over every position of `data` taken as inference groups (§4), `batch_size` (None:
    EVAL_CHUNK) groups per forward pass."""
    _, diffraction, offsets = inference_inputs(model, data)
    loss_fn = tf.function(
        lambda x, d: _batch_loss(model, x, d),
        input_signature=_signature(data.N, model.config.n_channels),
        autograph=False,
    )
    size = batch_size or EVAL_CHUNK
    total, count = 0.0, 0
    for start in range(0, int(diffraction.shape[0]), size):
        batch = diffraction[start : start + size]
        total += float(loss_fn(batch, offsets[start : start + size])) * int(batch.shape[0])
        count += int(batch.shape[0])
    return total / count


def train(
    config: PinnConfig,
    train_data: Dataset,
    test_data: Dataset | None = None,
    *,
    init_weights: dict | None = None,
    max_steps: int | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Group once, then Adam over `config.epochs` epochs (or `max_steps` steps, whichever ends first).

    `on_epoch_end(epochs_done, epoch_loss)` is called after every epoch (progress display)."""
    check_train_inputs(config, train_data, test_data, max_steps)
    n, c = train_data.N, config.n_channels
    configure_determinism(config.seed)
    groups = group_positions(train_data.xcoords, train_data.ycoords, config)
    if config.object_big:
        check_offsets(groups.offsets_px, n)
    input_scale, log_g0 = compute_scales(train_data.diffraction, train_data.probe, config.amp_activation)
    model = create_model(config, train_data.probe, input_scale, log_g0, init_weights)  # the caller's log g wins

    diffraction, offsets = grouped_inputs(train_data, groups)
    variables = model.canonical_variables()
    adam = make_optimizer(model, config)

    # autograph=False: nothing here branches on a tensor, and converting every call costs a tenth of the trace.
    @tf.function(input_signature=_signature(n, c), autograph=False)
    def step(x, d):
        with tf.GradientTape() as tape:
            loss = _batch_loss(model, x, d)
        grads = tape.gradient(loss, list(variables.values()))
        check_gradients(variables, grads, source="train")  # at trace time: a missing gradient is structural
        adam.apply(grads)
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
    test_loss = None if test_data is None else evaluate_loss(model, test_data)
    history = training_history(step_loss, epoch_loss, n_groups, config.batch_size, test_loss, BACKEND_NAME)
    return TrainResult(model=model, history=history, groups=groups)


if __name__ == "__main__":
    import sys

    from backends.tf_pinn.cli import train_main

    sys.exit(train_main(train=train))  # this module's own train: train.py is not imported a second time
