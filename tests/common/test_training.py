"""What both train.py share (backends/common/training.py): result type, batch order, refusals, history."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backends.common.config import ConfigError, make_config
from backends.common.dataset import DatasetError
from backends.common.simulate import simulate
from backends.common.training import TrainResult, batch_order, check_train_inputs, epoch_order, training_history


def test_batch_order():
    batches = batch_order(21, 8, 2, 42)
    assert [len(b) for b in batches] == [8, 8, 5]
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(45).permutation(21))
    assert not np.array_equal(np.concatenate(batch_order(21, 8, 3, 42)), np.concatenate(batches))
    batches = batch_order(10, 4, epoch=3, seed=42)
    assert [len(b) for b in batches] == [4, 4, 2]  # the last partial batch is kept
    np.testing.assert_array_equal(np.concatenate(batches), epoch_order(10, 3, 42))
    np.testing.assert_array_equal(epoch_order(10, 3, 42), np.random.default_rng(46).permutation(10))


def test_train_result_is_frozen():
    assert [f.name for f in dataclasses.fields(TrainResult)] == ["model", "history", "groups"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainResult(model=None, history={}, groups=None).history = {"step_loss": []}


def test_history_keys_and_steps_per_epoch():
    history = training_history((1.0, 2.0), [1.5], np.int64(21), 8, None, "tf_pinn")
    assert history == {
        "step_loss": [1.0, 2.0],
        "epoch_loss": [1.5],
        "steps_per_epoch": 3,
        "n_groups": 21,
        "test_loss": None,
        "backend": "tf_pinn",
    }
    assert type(history["n_groups"]) is int  # JSON-ready


def test_train_inputs_are_checked_before_anything_is_drawn():
    data = simulate(seed=1, n_positions=8, n=16)
    cfg = make_config({})
    check_train_inputs(cfg, data, data, None)
    check_train_inputs(cfg, data, None, 0)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"max_steps={bad!r} must be a non-negative integer or None"):
            check_train_inputs(cfg, data, None, bad)
    with pytest.raises(ConfigError, match="n_groups=9 exceeds the 8 scan positions"):
        check_train_inputs(make_config({"n_groups": 9}), data, None, None)
    with pytest.raises(ConfigError, match="n_groups=5 exceeds the 4 scan positions"):
        check_train_inputs(make_config({"n_groups": 5}), data, data.subset(np.arange(4)), None)
    with pytest.raises(DatasetError, match="pattern size N=24 differs from the training data's N=16"):
        check_train_inputs(cfg, data, simulate(seed=1, n_positions=8, n=24), None)
