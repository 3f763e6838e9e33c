"""Training (docs/spec.md §10): a LightningModule run by a CPU lightning.Trainer.

    python -m backends.torch_pinn.train --train-data-file F --output-dir D [flags]

Groups are drawn once; epoch e visits them in default_rng(seed + 1 + e) order
through a batch sampler that Lightning tells the epoch. Adam is torch's own,
with the contract's epsilon (torch's default 1e-8 differs).

Counterpart of backends/tf_pinn/train.py. Lightning-specific, without a TF
counterpart: `EpochBatchSampler` and `PinnTask` (TF runs its own loop with a
hand-written `Adam`).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from backends.common.config import PinnConfig
from backends.common.dataset import Dataset as ScanData
from backends.common.dataset import DatasetError
from backends.common.weights import LOG_INTENSITY_SCALE, check_canonical
from backends.common.geometry import Groups
from backends.torch_pinn.grouping import group_positions
from backends.torch_pinn.loss import compute_loss
from backends.torch_pinn.model import PinnModel, canonical_name, compute_scales, create_model, model_for_data
from backends.torch_pinn.physics import check_offsets
from backends.torch_pinn.runtime import BACKEND_NAME, configure_determinism, quiet_lightning

EVAL_CHUNK = 64  # groups per forward pass when the test loss is evaluated


ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns."""

    model: PinnModel  # the trained model, ready to predict
    history: dict  # step_loss, epoch_loss, steps_per_epoch, n_groups, test_loss, backend (§10)
    groups: Groups  # the training groups, drawn once before training


def batch_order(n_groups: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """Epoch `epoch`'s batches: default_rng(seed + 1 + epoch).permutation(n_groups) in
    chunks of batch_size, the last partial chunk kept."""
    order = np.random.default_rng(seed + 1 + epoch).permutation(n_groups)
    return [order[start:start + batch_size] for start in range(0, n_groups, batch_size)]


def grouped_inputs(data: ScanData, groups: Groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw amplitudes (B, C, N, N) float32 and offsets (B, C, 2) float32 of `groups`."""
    diffraction = torch.from_numpy(np.ascontiguousarray(data.diffraction[groups.nn_indices], dtype=np.float32))
    offsets = torch.from_numpy(np.ascontiguousarray(groups.offsets_px, dtype=np.float32))
    return diffraction, offsets


def inference_inputs(model: PinnModel, data: ScanData) -> tuple[Groups, torch.Tensor, torch.Tensor]:
    """Inference groups of `data` (every position a seed, §4) as native inputs for `model`."""
    if data.N != model.n:
        raise DatasetError(data.source, "diffraction", f"pattern size N={data.N} differs from the model's N={model.n}")
    groups = group_positions(data.xcoords, data.ycoords, model.config, inference=True)
    if model.config.object_big:
        check_offsets(groups.offsets_px, data.N)
    return (groups, *grouped_inputs(data, groups))


def loss_and_gradients(model: PinnModel, diffraction, offsets_px) -> tuple[float, dict]:
    """Loss of model.config.loss on one batch and its gradient per canonical weight (float32 numpy)."""
    x = diffraction if torch.is_tensor(diffraction) else torch.from_numpy(np.asarray(diffraction, np.float32))
    d = offsets_px if torch.is_tensor(offsets_px) else torch.from_numpy(np.asarray(offsets_px, np.float32))
    named = [(canonical_name(n), p) for n, p in model.network.named_parameters()]
    named.append((LOG_INTENSITY_SCALE, model.log_intensity_scale))
    with torch.enable_grad():
        loss = _batch_loss(model, x, d)
        grads = torch.autograd.grad(loss, [p for _, p in named])
    return float(loss.detach()), {name: g.detach().numpy().astype(np.float32, copy=True)
                                  for (name, _), g in zip(named, grads)}


def _batch_loss(model: PinnModel, diffraction: torch.Tensor, offsets_px: torch.Tensor) -> torch.Tensor:
    far = model.far_field(diffraction, offsets_px)
    return compute_loss(far, diffraction, model.log_intensity_scale, model.config.loss)


class _GroupData(Dataset):
    """Group index, raw amplitudes (C, N, N) and offsets (C, 2) of each group."""

    def __init__(self, diffraction: torch.Tensor, offsets: torch.Tensor):
        self.diffraction, self.offsets = diffraction, offsets

    def __len__(self):
        return self.diffraction.shape[0]

    def __getitems__(self, indices):
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return index, self.diffraction[index], self.offsets[index]


class _EpochOrder(Sampler):
    """The epoch's permutation of group indices; Lightning calls set_epoch before each epoch."""

    def __init__(self, n_groups: int, seed: int):
        self.n_groups, self.seed, self.epoch = n_groups, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return self.n_groups

    def __iter__(self):
        return iter(np.random.default_rng(self.seed + 1 + self.epoch).permutation(self.n_groups).tolist())


class EpochBatchSampler(Sampler):
    """Batches of `batch_order` for the current epoch (Lightning sets it through `.sampler`)."""

    def __init__(self, n_groups: int, batch_size: int, seed: int):
        self.sampler = _EpochOrder(n_groups, seed)
        self.batch_size = batch_size

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self):
        return math.ceil(self.sampler.n_groups / self.batch_size)

    def __iter__(self):
        for batch in batch_order(self.sampler.n_groups, self.batch_size, self.epoch, self.sampler.seed):
            yield batch.tolist()


class PinnTask(pl.LightningModule):
    """Lightning wrapper: one Adam step per batch, every step's loss recorded."""

    def __init__(self, model: PinnModel, batch_sampler: EpochBatchSampler,
                 on_epoch_end: Callable[[int, float], None] | None = None):
        super().__init__()
        self.model = model
        self.batch_sampler = batch_sampler
        self.on_epoch_end = on_epoch_end
        self.records: list[tuple[int, float, int]] = []  # (epoch, loss, batch size) per step
        self.visited: list[list[int]] = []  # group indices of each step, in order

    def training_step(self, batch, batch_idx):
        index, diffraction, offsets = batch
        if self.batch_sampler.epoch != self.current_epoch:
            raise RuntimeError(f"batch sampler is at epoch {self.batch_sampler.epoch} while Lightning runs "
                               f"epoch {self.current_epoch}: set_epoch was not called")
        loss = _batch_loss(self.model, diffraction, offsets)
        self.records.append((self.current_epoch, float(loss.detach()), int(diffraction.shape[0])))
        self.visited.append(index.tolist())
        return loss

    def on_train_epoch_end(self):
        if self.on_epoch_end is not None:
            losses = _epoch_losses(self.records)
            self.on_epoch_end(len(losses), losses[-1])

    def configure_optimizers(self):
        return make_optimizer(self.model, self.model.config)


def make_optimizer(model: PinnModel, config: PinnConfig) -> torch.optim.Adam:
    """The optimiser `train` steps (§10): torch's Adam with the contract's epsilon."""
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=(ADAM_BETA1, ADAM_BETA2),
                            eps=config.adam_epsilon)


def apply_gradients(model: PinnModel, optimizer: torch.optim.Adam, grads: dict) -> None:
    """One optimiser step with gradients given per canonical name, in canonical layout."""
    check_canonical(grads, model.config.n_filters_scale, source="apply_gradients")
    for name, param in model.network.named_parameters():
        param.grad = torch.from_numpy(np.array(grads[canonical_name(name)], dtype=np.float32))
    model.log_intensity_scale.grad = torch.tensor(np.float32(grads[LOG_INTENSITY_SCALE]))
    optimizer.step()


def _run_trainer(task: PinnTask, loader: DataLoader, epochs: int, max_steps: int | None) -> None:
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="torch_pinn_") as scratch:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, max_epochs=epochs, max_steps=-1 if max_steps is None else max_steps,
            deterministic=True, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1,
            use_distributed_sampler=False, default_root_dir=scratch, limit_val_batches=0,
        )
        trainer.fit(task, train_dataloaders=loader)


def evaluate_loss(model: PinnModel, data: ScanData, batch_size: int | None = None) -> float:
    """Mean loss over every position of `data` taken as inference groups (§4).

    `batch_size` groups per forward pass; None: EVAL_CHUNK (TF's default is
    model.config.batch_size; the test loss of each backend's history keeps its own).
    """
    _, diffraction, offsets = inference_inputs(model, data)
    size = batch_size or EVAL_CHUNK
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, diffraction.shape[0], size):
            x, d = diffraction[start:start + size], offsets[start:start + size]
            total += float(_batch_loss(model, x, d)) * x.shape[0]
            count += x.shape[0]
    return total / count


def _epoch_losses(records: list) -> list[float]:
    sums: dict[int, list[float]] = {}
    for epoch, loss, size in records:
        acc = sums.setdefault(epoch, [0.0, 0])
        acc[0] += loss * size
        acc[1] += size
    return [sums[e][0] / sums[e][1] for e in sorted(sums)]


def train(config: PinnConfig, train_data: ScanData, test_data: ScanData | None = None, *,
          init_weights: dict | None = None, max_steps: int | None = None,
          on_epoch_end: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train on `train_data`; groups, batch order and initial weights all derive from config.seed.

    `on_epoch_end(epochs_done, epoch_loss)` is called after every epoch (progress display)."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r} must be a non-negative integer or None")
    configure_determinism(config.seed)
    config.check_against_data(train_data.n_positions, source=train_data.source)
    if test_data is not None:
        config.check_against_data(test_data.n_positions, source=test_data.source)
        if test_data.N != train_data.N:
            raise DatasetError(test_data.source, "diffraction",
                               f"pattern size N={test_data.N} differs from the training data's N={train_data.N}")
    groups = group_positions(train_data.xcoords, train_data.ycoords, config)
    if config.object_big:
        check_offsets(groups.offsets_px, train_data.N)
    if init_weights is None:
        model = model_for_data(config, train_data)
    else:
        model = _model_from_weights(config, train_data, init_weights)
    diffraction, offsets = grouped_inputs(train_data, groups)
    n_groups = diffraction.shape[0]
    sampler = EpochBatchSampler(n_groups, config.batch_size, config.seed)
    loader = DataLoader(_GroupData(diffraction, offsets), batch_sampler=sampler, collate_fn=_identity,
                        num_workers=0)
    task = PinnTask(model, sampler, on_epoch_end)
    if config.epochs > 0 and max_steps != 0:
        _run_trainer(task, loader, config.epochs, max_steps)
    model.eval()
    history = {
        "step_loss": [loss for _, loss, _ in task.records],
        "epoch_loss": _epoch_losses(task.records),
        "steps_per_epoch": len(sampler),
        "n_groups": n_groups,
        "test_loss": None if test_data is None else evaluate_loss(model, test_data),
        "backend": BACKEND_NAME,
    }
    return TrainResult(model=model, history=history, groups=groups)


def _identity(batch):
    return batch


def _model_from_weights(config: PinnConfig, data: ScanData, init_weights: dict) -> PinnModel:
    """Scales from `data`; a log_intensity_scale inside `init_weights` wins (create_model)."""
    input_scale, log_scale = compute_scales(data.diffraction, data.probe, config.amp_activation)
    return create_model(config, data.probe, input_scale, log_scale, init_weights)


if __name__ == "__main__":
    import sys

    from backends.torch_pinn.cli import train_main

    sys.exit(train_main(train=train))  # this module's own train: train.py is not imported a second time
