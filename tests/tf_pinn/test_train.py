"""Training (docs/spec.md §10): batch order, Adam, gradients, history, determinism, init weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from backends.common.config import ConfigError, make_config
from backends.common.dataset import Dataset, DatasetError, load_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights
from backends.tf_pinn.grouping import group_positions
from backends.tf_pinn.model import compute_scales, model_for_data
from backends.tf_pinn.train import (Adam, batch_order, evaluate_loss, grouped_inputs, loss_and_gradients,
                                    train)

pytestmark = pytest.mark.tf

TINY = {"n_filters_scale": 1, "batch_size": 8}


@pytest.fixture(scope="module")
def tiny():
    return simulate(seed=4, n_positions=20, n=16)


def test_batch_order():
    batches = batch_order(21, 8, 2, 42)
    assert [len(b) for b in batches] == [8, 8, 5]
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(45).permutation(21))
    assert not np.array_equal(np.concatenate(batch_order(21, 8, 3, 42)), np.concatenate(batches))


def test_adam_matches_the_textbook_update(rng):
    start = rng.standard_normal((3, 4)).astype(np.float32)
    var = tf.Variable(start)
    adam = Adam([var], learning_rate=0.01, epsilon=1e-7)
    p, m, v = start.astype(np.float64), 0.0, 0.0
    for t in range(1, 6):
        g = rng.standard_normal((3, 4)).astype(np.float32) * 10.0 ** (-t)  # shrinking, so eps matters
        adam.apply([tf.constant(g)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        p = p - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-7)
        np.testing.assert_allclose(var.numpy(), p, rtol=1e-5, atol=1e-7)
    assert int(adam.step.numpy()) == 5


def test_adam_adds_epsilon_to_the_bias_corrected_root():
    # |g| = eps on step 1: the textbook update is lr * g / (|g| + eps) = lr / 2. Keras's form would add
    # eps to the uncorrected sqrt(v) = sqrt(0.001) |g|, an update of about lr / 32.6.
    var = tf.Variable(np.zeros(2, np.float32))
    Adam([var], learning_rate=0.1, epsilon=1e-7).apply([tf.constant([1e-7, -1e-7], tf.float32)])
    np.testing.assert_allclose(var.numpy(), [-0.05, 0.05], rtol=1e-4)


def test_first_step_moves_each_weight_by_lr_times_sign_of_its_gradient(tiny):
    cfg = make_config({**TINY, "epochs": 1, "learning_rate": 1e-3})
    groups = group_positions(tiny.xcoords, tiny.ycoords, cfg)
    x, d = grouped_inputs(tiny, groups)
    first = batch_order(20, 8, 0, cfg.seed)[0]
    loss0, grads = loss_and_gradients(model_for_data(cfg, tiny), tf.gather(x, first), tf.gather(d, first))
    result = train(cfg, tiny, max_steps=1)
    assert result.history["step_loss"] == [pytest.approx(loss0, rel=1e-6)]
    before = initial_weights(cfg.seed, 1, 1, compute_scales(tiny.diffraction, tiny.probe, "sigmoid")[1])
    after = result.model.get_canonical_weights()
    for name, g in grads.items():
        # Adam's first step is -lr * g / (|g| + eps): the canonical layout of gradients must match the weights'.
        expected = -1e-3 * g / (np.abs(g) + 1e-7)
        np.testing.assert_allclose(after[name] - before[name], expected, rtol=1e-3, atol=2e-7, err_msg=name)


def test_gradient_matches_finite_differences(tiny):
    cfg = make_config({**TINY, "loss": "mae"})
    model = model_for_data(cfg, tiny)
    g = group_positions(tiny.xcoords, tiny.ycoords, cfg)
    x, d = grouped_inputs(tiny, g)
    _, grads = loss_and_gradients(model, x, d)
    weights = model.get_canonical_weights()
    for name in ("log_intensity_scale", "encoder.0.conv0.kernel", "decoder_phase.head.kernel"):
        idx = np.unravel_index(np.argmax(np.abs(grads[name])), grads[name].shape)
        h = 1e-2
        values = []
        for sign in (1, -1):
            w = {k: v.copy() for k, v in weights.items()}
            w[name][idx] += sign * h
            model.set_canonical_weights(w)
            values.append(loss_and_gradients(model, x, d)[0])
        fd = (values[0] - values[1]) / (2 * h)
        assert fd == pytest.approx(float(grads[name][idx]), rel=0.05), name
    model.set_canonical_weights(weights)


def test_grouped_inputs_native_layout():
    rng = np.random.default_rng(8)
    x, y = rng.uniform(0, 9, 12), rng.uniform(0, 9, 12)
    diffraction = rng.uniform(0, 1, (12, 16, 16)).astype(np.float32)
    g = group_positions(x, y, make_config({"gridsize": 2, "seed": 0}))
    batch, offsets = grouped_inputs(Dataset(diffraction, x, y, np.ones((16, 16), np.complex64)), g)
    assert tuple(batch.shape) == (12, 16, 16, 4) and batch.dtype.name == "float32"
    np.testing.assert_array_equal(batch.numpy()[3, :, :, 2], diffraction[g.nn_indices[3, 2]])
    np.testing.assert_array_equal(offsets.numpy(), g.offsets_px.astype(np.float32))


@pytest.mark.slow
def test_two_runs_with_one_seed_are_bitwise_identical(small_dataset_path):
    data = load_dataset(small_dataset_path)
    cfg = make_config({**TINY, "gridsize": 2, "epochs": 2, "n_groups": 24})
    a, b = train(cfg, data, max_steps=5), train(cfg, data, max_steps=5)
    assert a.history == b.history
    assert len(a.history["step_loss"]) == 5
    wa, wb = a.model.get_canonical_weights(), b.model.get_canonical_weights()
    for name in wa:
        assert wa[name].tobytes() == wb[name].tobytes(), name
    c = train(make_config({**TINY, "gridsize": 2, "epochs": 2, "n_groups": 24, "seed": 7}), data, max_steps=5)
    assert c.history["step_loss"] != a.history["step_loss"]


@pytest.mark.slow
def test_loss_decreases_on_the_default_dataset(default_dataset_path):
    data = load_dataset(default_dataset_path)
    result = train(make_config({"epochs": 3, "n_filters_scale": 1}), data)
    h = result.history
    assert h["steps_per_epoch"] == 10 and h["n_groups"] == 150 and len(h["step_loss"]) == 30
    assert len(h["epoch_loss"]) == 3
    assert h["epoch_loss"][-1] < 0.9 * h["epoch_loss"][0]
    assert all(math.isfinite(v) for v in h["step_loss"])


def test_history_format_and_weighted_epoch_mean(tiny):
    cfg = make_config({**TINY, "epochs": 2, "batch_size": 6})
    h = train(cfg, tiny, tiny).history
    assert set(h) == {"step_loss", "epoch_loss", "steps_per_epoch", "n_groups", "test_loss", "backend"}
    assert h["backend"] == "tf_pinn" and h["n_groups"] == 20 and h["steps_per_epoch"] == 4
    sizes = [6, 6, 6, 2]
    for e in range(2):
        steps = h["step_loss"][4 * e:4 * e + 4]
        assert h["epoch_loss"][e] == pytest.approx(np.dot(steps, sizes) / 20, rel=1e-12)
    assert isinstance(h["test_loss"], float)


@pytest.mark.slow
def test_test_loss_is_the_mean_over_inference_groups(tiny):
    cfg = make_config({**TINY, "epochs": 1, "gridsize": 2, "n_groups": 10})
    result = train(cfg, tiny, tiny)
    groups = group_positions(tiny.xcoords, tiny.ycoords, cfg, inference=True)
    x, d = grouped_inputs(tiny, groups)
    whole, _ = loss_and_gradients(result.model, x, d)  # all 20 groups in one batch
    assert result.history["test_loss"] == pytest.approx(whole, rel=1e-5)
    assert evaluate_loss(result.model, tiny, batch_size=3) == pytest.approx(whole, rel=1e-5)
    assert train(cfg, tiny, max_steps=0).history["test_loss"] is None


def test_max_steps_and_partial_epochs(tiny):
    cfg = make_config({**TINY, "epochs": 5})
    h = train(cfg, tiny, max_steps=4).history
    assert len(h["step_loss"]) == 4 and len(h["epoch_loss"]) == 2  # 3 steps per epoch: 3 + 1
    assert h["epoch_loss"][1] == pytest.approx(h["step_loss"][3])
    h0 = train(cfg, tiny, max_steps=0).history
    assert h0["step_loss"] == [] and h0["epoch_loss"] == []
    with pytest.raises(ValueError, match="max_steps"):
        train(cfg, tiny, max_steps=-1)


def test_init_weights(tiny):
    cfg = make_config({**TINY, "epochs": 1})
    w = initial_weights(99, 1, 1, 2.5)
    result = train(cfg, tiny, init_weights=w, max_steps=0)
    got = result.model.get_canonical_weights()
    for name in w:
        np.testing.assert_array_equal(got[name], w[name])
    no_scale = {k: v for k, v in w.items() if k != "log_intensity_scale"}
    result = train(cfg, tiny, init_weights=no_scale, max_steps=0)
    log_g0 = compute_scales(tiny.diffraction, tiny.probe, "sigmoid")[1]
    assert result.model.get_canonical_weights()["log_intensity_scale"] == np.float32(log_g0)
    assert "log_intensity_scale" not in no_scale  # the caller's dict is left alone
    with pytest.raises(ValueError, match="encoder.0.conv0.kernel"):
        train(make_config({**TINY, "gridsize": 2}), tiny, init_weights=w, max_steps=0)


def test_data_that_does_not_fit_is_refused(tiny):
    other_n = simulate(seed=4, n_positions=20, n=24)
    with pytest.raises(DatasetError, match="N=24"):
        train(make_config({**TINY, "epochs": 1}), tiny, other_n)
    few = tiny.subset(np.arange(6))
    with pytest.raises(ConfigError, match="n_groups=10"):
        train(make_config({**TINY, "n_groups": 10}), tiny, few)
    with pytest.raises(ConfigError, match="n_groups=21"):
        train(make_config({**TINY, "n_groups": 21}), tiny)
    model = train(make_config({**TINY, "epochs": 0}), tiny).model
    with pytest.raises(DatasetError, match="N=24"):
        evaluate_loss(model, other_n)
