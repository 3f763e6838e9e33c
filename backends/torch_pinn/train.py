"""Training (docs/spec.md §10): a LightningModule run by a CPU lightning.Trainer.

    python -m backends.torch_pinn.train --train-data-file F --output-dir D [flags]

Groups are drawn once; epoch e visits them in default_rng(seed + 1 + e) order
through a batch sampler that Lightning tells the epoch. Adam is torch's own,
with the contract's epsilon (torch's default 1e-8 differs).

Counterpart of backends/tf_pinn/train.py. Lightning-specific, without a TF
counterpart: `EpochBatchSampler` and `PinnTask` (TF runs its own loop with a
hand-written `Adam`). `EVAL_CHUNK` and the Adam betas come from backends.common.contract.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from backends.common.config import PinnConfig
from backends.common.contract import ADAM_BETA1, ADAM_BETA2, EVAL_CHUNK
from backends.common.dataset import Dataset as ScanData
from backends.common.geometry import check_offsets
from backends.common.training import TrainResult, batch_order, check_train_inputs, epoch_order, training_history
from backends.common.validation import check_gradients
from backends.common.weights import check_canonical
from backends.torch_pinn.grouping import group_positions
from backends.torch_pinn.inputs import grouped_inputs, inference_inputs
from backends.torch_pinn.loss import compute_loss
from backends.torch_pinn.model import PinnModel, compute_scales, create_model
from backends.torch_pinn.runtime import BACKEND_NAME, configure_determinism, quiet_lightning


def loss_and_gradients(model: PinnModel, diffraction, offsets_px) -> tuple[float, dict]:
    """Loss of model.config.loss on one batch and its gradient per canonical weight (float32 numpy)."""
    x = diffraction if torch.is_tensor(diffraction) else torch.from_numpy(np.asarray(diffraction, np.float32))
    d = offsets_px if torch.is_tensor(offsets_px) else torch.from_numpy(np.asarray(offsets_px, np.float32))
    variables = model.canonical_variables()
    with torch.enable_grad():
        loss = _batch_loss(model, x, d)
        grads = torch.autograd.grad(loss, list(variables.values()), allow_unused=True)
    check_gradients(variables, grads, source="loss_and_gradients")
    return float(loss.detach()), {
        name: g.detach().numpy().astype(np.float32, copy=True) for name, g in zip(variables, grads)
    }


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
        return iter(epoch_order(self.n_groups, self.epoch, self.seed).tolist())


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

    def __init__(
        self,
        model: PinnModel,
        batch_sampler: EpochBatchSampler,
        on_epoch_end: Callable[[int, float], None] | None = None,
    ):
        super().__init__()
        self.model = model
        self.batch_sampler = batch_sampler
        self.on_epoch_end = on_epoch_end
        self.records: list[tuple[int, float, int]] = []  # (epoch, loss, batch size) per step
        self.visited: list[list[int]] = []  # group indices of each step, in order

    def training_step(self, batch, batch_idx):
        index, diffraction, offsets = batch
        if self.batch_sampler.epoch != self.current_epoch:
            raise RuntimeError(
                f"batch sampler is at epoch {self.batch_sampler.epoch} while Lightning runs "
                f"epoch {self.current_epoch}: set_epoch was not called"
            )
        loss = _batch_loss(self.model, diffraction, offsets)
        self.records.append((self.current_epoch, float(loss.detach()), int(diffraction.shape[0])))
        self.visited.append(index.tolist())
        return loss

    def on_after_backward(self):
        variables = self.model.canonical_variables()
        check_gradients(variables, [p.grad for p in variables.values()], source="train")

    def on_train_epoch_end(self):
        if self.on_epoch_end is not None:
            losses = _epoch_losses(self.records)
            self.on_epoch_end(len(losses), losses[-1])

    def configure_optimizers(self):
        return make_optimizer(self.model, self.model.config)


def make_optimizer(model: PinnModel, config: PinnConfig) -> torch.optim.Adam:
    """The optimiser `train` steps (§10): torch's Adam with the contract's epsilon."""
    return torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, betas=(ADAM_BETA1, ADAM_BETA2), eps=config.adam_epsilon
    )


def optimizer_settings(optimizer: torch.optim.Optimizer) -> dict:
    """What `optimizer` (as make_optimizer builds it) applies, read from its first parameter group: name,
    learning_rate, beta1, beta2, epsilon, weight_decay and schedule. PinnTask.configure_optimizers returns
    the optimiser alone, no scheduler ("constant", as §10 says)."""
    group = optimizer.param_groups[0]
    beta1, beta2 = group["betas"]
    return {
        "name": type(optimizer).__name__.lower(),
        "learning_rate": float(group["lr"]),
        "beta1": float(beta1),
        "beta2": float(beta2),
        "epsilon": float(group["eps"]),
        "weight_decay": float(group["weight_decay"]),
        "schedule": "constant",
    }


def apply_gradients(model: PinnModel, optimizer: torch.optim.Adam, grads: dict) -> None:
    """One optimiser step with gradients given per canonical name, in canonical layout."""
    check_canonical(grads, model.config.n_filters_scale, source="apply_gradients")
    for name, param in model.canonical_variables().items():
        param.grad = torch.from_numpy(np.array(grads[name], dtype=np.float32))
    optimizer.step()


def _run_trainer(task: PinnTask, loader: DataLoader, epochs: int, max_steps: int | None) -> None:
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="torch_pinn_") as scratch:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=epochs,
            max_steps=-1 if max_steps is None else max_steps,
            deterministic=True,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            use_distributed_sampler=False,
            default_root_dir=scratch,
            limit_val_batches=0,
        )
        trainer.fit(task, train_dataloaders=loader)


def evaluate_loss(model: PinnModel, data: ScanData, batch_size: int | None = None) -> float:
    """Mean loss over every position of `data` taken as inference groups (§4), `batch_size` (None:
    EVAL_CHUNK) groups per forward pass."""
    _, diffraction, offsets = inference_inputs(model, data)
    size = batch_size or EVAL_CHUNK
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, diffraction.shape[0], size):
            x, d = diffraction[start : start + size], offsets[start : start + size]
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


def train(
    config: PinnConfig,
    train_data: ScanData,
    test_data: ScanData | None = None,
    *,
    init_weights: dict | None = None,
    max_steps: int | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train on `train_data`; groups, batch order and initial weights all derive from config.seed.

    `on_epoch_end(epochs_done, epoch_loss)` is called after every epoch (progress display)."""
    check_train_inputs(config, train_data, test_data, max_steps)
    configure_determinism(config.seed)
    groups = group_positions(train_data.xcoords, train_data.ycoords, config)
    if config.object_big:
        check_offsets(groups.offsets_px, train_data.N)
    input_scale, log_g0 = compute_scales(train_data.diffraction, train_data.probe, config.amp_activation)
    model = create_model(config, train_data.probe, input_scale, log_g0, init_weights)  # the caller's log g wins
    diffraction, offsets = grouped_inputs(train_data, groups)
    n_groups = diffraction.shape[0]
    sampler = EpochBatchSampler(n_groups, config.batch_size, config.seed)
    loader = DataLoader(_GroupData(diffraction, offsets), batch_sampler=sampler, collate_fn=_identity, num_workers=0)
    task = PinnTask(model, sampler, on_epoch_end)
    if config.epochs > 0 and max_steps != 0:
        _run_trainer(task, loader, config.epochs, max_steps)
    model.eval()
    test_loss = None if test_data is None else evaluate_loss(model, test_data)
    history = training_history(
        [loss for _, loss, _ in task.records],
        _epoch_losses(task.records),
        n_groups,
        config.batch_size,
        test_loss,
        BACKEND_NAME,
    )
    return TrainResult(model=model, history=history, groups=groups)


def _identity(batch):
    return batch


if __name__ == "__main__":
    import sys

    from backends.torch_pinn.cli import train_main

    sys.exit(train_main(train=train))  # this module's own train: train.py is not imported a second time
