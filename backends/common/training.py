"""What both backends' train.py share that is not numerics (docs/spec.md §10).

The result type, the history's format, the batch order (a numpy permutation
the contract fixes) and the checks of train's arguments. The losses, gradients
and the optimiser step stay in each backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.common.config import PinnConfig
from backends.common.geometry import Groups
from backends.common.validation import check_pattern_size


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns."""

    model: Any  # the backend's trained PinnModel, ready to predict
    history: dict  # step_loss, epoch_loss, steps_per_epoch, n_groups, test_loss, backend (§10)
    groups: Groups  # the training groups, drawn once before training


def epoch_order(n_groups: int, epoch: int, seed: int) -> np.ndarray:
    """The group indices epoch `epoch` (from 0) visits, in order: default_rng(seed + 1 + epoch).permutation."""
    return np.random.default_rng(seed + 1 + epoch).permutation(n_groups)


def batch_order(n_groups: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """Group indices of each step of `epoch`: epoch_order in batches of batch_size, the last one partial."""
    order = epoch_order(n_groups, epoch, seed)
    return [order[start : start + batch_size] for start in range(0, n_groups, batch_size)]


def check_train_inputs(config: PinnConfig, train_data, test_data, max_steps) -> None:
    """train's refusals, before anything is drawn: a bad max_steps, data that does not fit the config."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r} must be a non-negative integer or None")
    config.check_against_data(train_data.n_positions, source=train_data.source)
    if test_data is not None:
        config.check_against_data(test_data.n_positions, source=test_data.source)
        check_pattern_size(test_data, train_data.N, "the training data's")


def training_history(
    step_loss: list, epoch_loss: list, n_groups: int, batch_size: int, test_loss: float | None, backend: str
) -> dict:
    """The history of §10, keys in their documented order."""
    return {
        "step_loss": list(step_loss),
        "epoch_loss": list(epoch_loss),
        "steps_per_epoch": math.ceil(n_groups / batch_size),
        "n_groups": int(n_groups),
        "test_loss": test_loss,
        "backend": backend,
    }
