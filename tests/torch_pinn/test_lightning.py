"""What only the torch backend has: torch parameter names, autograd, the Lightning sampler and task,
Lightning's logs and warnings, torch's own runtime switches. Everything both backends do is in
tests/backends/. One exception, kept as the old torch suite had it: the loss falling monotonically
over 4 epochs with the default filter count (the shared test uses 3 epochs and one filter scale;
this longer run is not repeated on TF to keep the suite's time)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pytest
import torch

from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.common.weights import LOG_INTENSITY_SCALE, canonical_shapes
from backends.torch_pinn.loss import compute_loss
from backends.torch_pinn.model import canonical_name, model_for_data
from backends.torch_pinn.runtime import configure_determinism, quiet_lightning
from backends.torch_pinn.train import EpochBatchSampler, PinnTask, batch_order, optimizer_settings, train

pytestmark = pytest.mark.torch

TINY = {"n_filters_scale": 1, "batch_size": 4, "epochs": 2}


@pytest.fixture(scope="module")
def tiny():
    return simulate(seed=2, n_positions=10, n=16)


def test_torch_names_mirror_the_canonical_ones(tiny):
    model = model_for_data(make_config({"n_filters_scale": 1, "seed": 9}), tiny)
    torch_names = {canonical_name(n) for n, _ in model.network.named_parameters()}
    assert torch_names == set(canonical_shapes(1)) - {LOG_INTENSITY_SCALE}
    assert {n.replace(".weight", ".kernel") for n, _ in model.network.named_parameters()} == torch_names
    assert isinstance(model.log_intensity_scale, torch.nn.Parameter)
    assert canonical_name("encoder.0.conv0.weight") == "encoder.0.conv0.kernel"
    assert canonical_name("decoder_amp.head.bias") == "decoder_amp.head.bias"


def test_gradient_reaches_log_scale():
    log_g = torch.tensor(0.0, requires_grad=True)
    psi = torch.tensor([[1.0 + 0j]], dtype=torch.complex64)
    loss = compute_loss(psi, torch.tensor([[2.0]]), log_g, "poisson")
    loss.backward()
    # d/dlog g of (g^2 - 4) - 4 log(g^2 ...) at g = 1: 2 - 8 = -6 (eps terms negligible)
    assert log_g.grad.item() == pytest.approx(-6.0, rel=1e-5)


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


def test_lightning_gets_the_optimizer_alone_so_the_schedule_is_constant(tiny):
    # optimizer_settings says "constant" because configure_optimizers attaches no lr_scheduler
    task = PinnTask(model_for_data(make_config(TINY), tiny), EpochBatchSampler(10, 4, 0))
    configured = task.configure_optimizers()
    assert isinstance(configured, torch.optim.Optimizer)
    assert optimizer_settings(configured)["schedule"] == "constant"


@pytest.mark.slow
def test_training_leaves_no_lightning_logs_or_warnings(tiny, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    cfg = make_config({**TINY, "gridsize": 2, "neighbor_count": 5, "object_big": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Lightning warning escapes train()
        with caplog.at_level(logging.INFO):
            train(cfg, tiny)
    assert os.listdir(tmp_path) == []  # no lightning_logs/, no checkpoints
    assert not [r for r in caplog.records if r.name.startswith("lightning")]


@pytest.mark.slow
def test_training_lowers_the_loss_with_the_default_filters(default_dataset_path):
    from backends.common.dataset import load_dataset

    result = train(make_config({"epochs": 4}), load_dataset(default_dataset_path))
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
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
            warnings.warn("The 'train_dataloader' does not have many workers which may be a bottleneck.", stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert logger.level == before
    assert [str(w.message) for w in caught] == ["something else"]
