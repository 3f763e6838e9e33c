"""Training (docs/spec.md §10): batch order, the Adam update, determinism, history, Lightning hygiene."""

import logging
import os
import warnings

import numpy as np
import pytest
import torch

from backends.common.config import make_config
from backends.common.dataset import load_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights
from backends.torch_pinn.grouping import group_positions
from backends.torch_pinn.model import model_for_data
from backends.torch_pinn.runtime import configure_determinism, quiet_lightning
from backends.torch_pinn.train import (EpochBatchSampler, PinnTask, batch_order, grouped_inputs,
                                       loss_and_gradients, train)

pytestmark = pytest.mark.torch

TINY = {"n_filters_scale": 1, "batch_size": 4, "epochs": 2}


@pytest.fixture(scope="module")
def tiny():
    return simulate(seed=2, n_positions=10, n=16)


def test_batch_order_keeps_the_last_partial_batch():
    batches = batch_order(10, 4, epoch=3, seed=42)
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(46).permutation(10))
    assert not np.array_equal(np.concatenate(batch_order(10, 4, 0, 42)), np.concatenate(batches))


def test_batch_sampler_follows_the_epoch():
    sampler = EpochBatchSampler(10, 4, seed=7)
    assert len(sampler) == 3
    sampler.set_epoch(2)
    assert [list(b) for b in sampler] == [b.tolist() for b in batch_order(10, 4, 2, 7)]
    sampler.sampler.set_epoch(5)  # what Lightning calls: dataloader.batch_sampler.sampler.set_epoch
    assert sampler.epoch == 5


def test_epsilon_reaches_the_optimizer(tiny):
    for eps in (1e-7, 0.25):
        cfg = make_config({**TINY, "adam_epsilon": eps, "learning_rate": 0.02})
        task = PinnTask(model_for_data(cfg, tiny), EpochBatchSampler(10, 4, 0))
        group = task.configure_optimizers().param_groups[0]
        assert (group["eps"], group["lr"], group["betas"]) == (eps, 0.02, (0.9, 0.999))


def _adam_reference(cfg, data, n_steps):
    """The contract's update written out in numpy float64 over canonical weights.

    Gradient t is taken at the weights train(max_steps=t-1) reached (bitwise
    reproducible), so float32-vs-float64 rounding cannot flip a ReLU and send
    the two trajectories apart; what is checked is the batches and the update.
    """
    groups = group_positions(data.xcoords, data.ycoords, cfg)
    x, offsets = grouped_inputs(data, groups)
    batches = [b for e in range(cfg.epochs) for b in batch_order(len(x), cfg.batch_size, e, cfg.seed)][:n_steps]
    w = {k: v.astype(np.float64) for k, v in model_for_data(cfg, data).get_canonical_weights().items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(v) for k, v in w.items()}
    losses = []
    for t, batch in enumerate(batches, start=1):
        reached = train(cfg, data, max_steps=t - 1).model
        loss, grads = loss_and_gradients(reached, x[batch], offsets[batch])
        losses.append(loss)
        for k, g in grads.items():
            g = g.astype(np.float64)
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            m_hat, v_hat = m[k] / (1 - 0.9**t), v[k] / (1 - 0.999**t)
            w[k] = w[k] - cfg.learning_rate * m_hat / (np.sqrt(v_hat) + cfg.adam_epsilon)
    return w, losses


@pytest.mark.slow
def test_steps_match_a_hand_written_adam_across_epochs(tiny):
    # A large epsilon changes every update visibly, so a lost epsilon cannot pass;
    # 5 steps cross into epoch 1, whose batches come from another permutation.
    cfg = make_config({**TINY, "adam_epsilon": 0.05, "learning_rate": 0.01, "seed": 4})
    result = train(cfg, tiny, max_steps=5)
    want_w, want_losses = _adam_reference(cfg, tiny, 5)
    np.testing.assert_allclose(result.history["step_loss"], want_losses, rtol=1e-6)
    got = result.model.get_canonical_weights()
    for k in want_w:
        np.testing.assert_allclose(got[k], want_w[k], rtol=0, atol=1e-5, err_msg=k)
    # the same gradients with torch's default epsilon would give other weights
    lost_eps = make_config({**TINY, "adam_epsilon": 1e-8, "learning_rate": 0.01, "seed": 4})
    one_step = train(lost_eps, tiny, max_steps=1).model.get_canonical_weights()
    first = train(cfg, tiny, max_steps=1).model.get_canonical_weights()
    assert max(np.abs(one_step[k] - first[k]).max() for k in first) > 1e-3


@pytest.mark.slow
def test_history_format_and_max_steps(tiny):
    cfg = make_config({**TINY, "epochs": 3})
    result = train(cfg, tiny, tiny, max_steps=5)
    h = result.history
    assert set(h) == {"step_loss", "epoch_loss", "steps_per_epoch", "n_groups", "test_loss", "backend"}
    assert (h["steps_per_epoch"], h["n_groups"], h["backend"]) == (3, 10, "torch_pinn")
    assert len(h["step_loss"]) == 5 and len(h["epoch_loss"]) == 2
    s = h["step_loss"]
    assert h["epoch_loss"][0] == pytest.approx((4 * s[0] + 4 * s[1] + 2 * s[2]) / 10, rel=1e-12)
    assert h["epoch_loss"][1] == pytest.approx((s[3] + s[4]) / 2, rel=1e-12)  # partial epoch: two full batches
    groups = group_positions(tiny.xcoords, tiny.ycoords, cfg, inference=True)
    x, offsets = grouped_inputs(tiny, groups)
    assert h["test_loss"] == pytest.approx(loss_and_gradients(result.model, x, offsets)[0], rel=1e-5)
    assert result.groups.nn_indices.shape == (10, 1)


@pytest.mark.slow
def test_init_weights_and_zero_epochs(tiny, rng):
    cfg = make_config({**TINY, "epochs": 0})
    w = initial_weights(123, 1, 1, 0.75)
    result = train(cfg, tiny, init_weights=w)
    got = result.model.get_canonical_weights()
    for k in w:
        np.testing.assert_array_equal(got[k], w[k])
    assert result.history["step_loss"] == [] and result.history["epoch_loss"] == []
    del w["log_intensity_scale"]
    from_data = train(cfg, tiny, init_weights=w).model.log_intensity_scale.item()
    assert from_data == model_for_data(cfg, tiny).log_intensity_scale.item() != 0.75


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_runs_and_no_files(tiny, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    cfg = make_config({**TINY, "gridsize": 2, "neighbor_count": 5, "object_big": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Lightning warning escapes train()
        with caplog.at_level(logging.INFO):
            first = train(cfg, tiny)
    second = train(cfg, tiny)
    assert first.history == second.history
    a, b = first.model.get_canonical_weights(), second.model.get_canonical_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert os.listdir(tmp_path) == []  # no lightning_logs/, no checkpoints
    assert not [r for r in caplog.records if r.name.startswith("lightning")]
    different = train(make_config({**TINY, "gridsize": 2, "neighbor_count": 5, "seed": 1}), tiny)
    assert different.history["step_loss"] != first.history["step_loss"]


@pytest.mark.slow
def test_training_lowers_the_loss_on_the_default_dataset(default_dataset_path):
    data = load_dataset(default_dataset_path)
    result = train(make_config({"epochs": 4}), data)
    losses = result.history["epoch_loss"]
    assert len(losses) == 4 and result.history["steps_per_epoch"] == 10
    assert losses[-1] < 0.9 * losses[0], losses
    assert np.all(np.diff(losses) < 0), losses


def test_configure_determinism(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    configure_determinism(3)
    configure_determinism(3)
    assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    first = torch.rand(3)
    configure_determinism(3)
    assert torch.equal(first, torch.rand(3))
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        configure_determinism(3)


def test_quiet_lightning_drops_only_the_known_warnings():
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning():
            assert logger.level == logging.WARNING
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
            warnings.warn("The 'train_dataloader' does not have many workers which may be a bottleneck.")
            warnings.warn("something else", UserWarning)
    assert logger.level == before
    assert [str(w.message) for w in caught] == ["something else"]
