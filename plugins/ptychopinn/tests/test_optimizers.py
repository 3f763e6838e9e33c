"""The optimisers PtychoPINN's trainings build (pinn_parity_ptychopinn.optimizers). Run in .venv-upstream only:

.venv-upstream/bin/python -m pytest plugins/ptychopinn/tests/test_optimizers.py -p no:cacheprovider
"""

import numpy as np
import pytest

# Collected by `make test` in the project's .venv too, which has no PtychoPINN: skip, with the reason.
pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

from backends.common.dataset import save_dataset  # noqa: E402
from backends.common.simulate import simulate  # noqa: E402
from pinn_parity_ptychopinn import adapters, optimizers, training  # noqa: E402

N = 64
CONFIG = {"gridsize": 1, "neighbor_count": 4, "n_groups": 36, "batch_size": 16, "loss": "poisson", "object_big": False}
PLATEAU = "ReduceLROnPlateau(factor=0.5, patience=2, min_lr=5e-05)"


@pytest.fixture(scope="module")
def scan_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "scan.npz"
    save_dataset(simulate(3, 36, N), path)
    return path


def test_tf_reads_the_compiled_keras_adam_and_the_plateau_callback_train_fits_with(scan_path):
    # ptycho/model.py create_compiled_model: Adam(learning_rate=0.001), Keras's epsilon 1e-7; ptycho.model.train:
    # ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=2, min_lr=0.0001)
    assert adapters.PtychoPINNTF().optimizer_settings(CONFIG, scan_path) == {
        "name": "adam",
        "learning_rate": float(np.float32(1e-3)),  # a float32 variable in Keras
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        "weight_decay": 0.0,
        "schedule": "ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.0001)",
    }


def test_torch_reads_what_configure_optimizers_returns(scan_path):
    # ptycho_torch/model.py _build_optimizer: torch.optim.Adam without eps (torch's 1e-8); scheduler 'Default': none
    assert adapters.PtychoPINNTorch().optimizer_settings(CONFIG, scan_path) == {
        "name": "adam",
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "weight_decay": 0.0,
        "schedule": "constant",
    }


def test_one_plateau_schedule_reads_alike_on_both_sides():
    import keras
    import torch

    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, min_lr=5e-5)
    for configured in ({"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau}}, {"optimizer": optimizer}):
        found, scheduler = optimizers._optimizer_and_scheduler(configured)
        assert found is optimizer
        assert optimizers._torch_schedule(scheduler) == (PLATEAU if "lr_scheduler" in configured else "constant")
    on_plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=5e-5)
    callbacks = [keras.callbacks.EarlyStopping(), on_plateau]
    assert optimizers._keras_schedule(keras.optimizers.Adam(), callbacks) == PLATEAU
    assert optimizers._keras_schedule(keras.optimizers.Adam(), callbacks[:1]) == "constant"
    with pytest.raises(TypeError, match="configure_optimizers returned list"):
        optimizers._optimizer_and_scheduler([optimizer])


@pytest.mark.slow
def test_tf_settings_are_those_of_the_model_their_training_fitted(scan_path):
    state = training.train_tf(CONFIG, scan_path, 7, 5)["state"]
    autoencoder = state.models["autoencoder"]
    fitted = autoencoder.optimizer
    reported = adapters.PtychoPINNTF().optimizer_settings(CONFIG, scan_path)
    assert (type(fitted).__name__.lower(), fitted.beta_1, fitted.beta_2, fitted.epsilon, fitted.weight_decay) == (
        reported["name"],
        reported["beta1"],
        reported["beta2"],
        reported["epsilon"],
        None,
    )
    # Keras's ReduceLROnPlateau writes the rate into every epoch's logs: the plateau callback ran in their fit
    rates = autoencoder.history.history["learning_rate"]
    assert rates[0] == pytest.approx(reported["learning_rate"]) and min(rates) >= 1e-4


@pytest.mark.slow
def test_torch_settings_are_those_of_the_optimizer_their_trainer_stepped(scan_path):
    module = training.train_torch(CONFIG, scan_path, 7, 5)["state"].models["diffraction_to_obj"]
    (stepped,) = module.trainer.optimizers
    group = stepped.param_groups[0]
    reported = adapters.PtychoPINNTorch().optimizer_settings(CONFIG, scan_path)
    assert (type(stepped).__name__.lower(), group["lr"], *group["betas"], group["eps"], group["weight_decay"]) == (
        reported["name"],
        reported["learning_rate"],
        reported["beta1"],
        reported["beta2"],
        reported["epsilon"],
        reported["weight_decay"],
    )
    assert module.trainer.lr_scheduler_configs == [] and reported["schedule"] == "constant"
