"""The optimisers PtychoPINN's trainings build, read from the objects they construct, in the harness's
hyperparameters form (adapters.base.Adapter.optimizer_settings):

    {"name": "adam", "learning_rate", "beta1", "beta2", "epsilon", "weight_decay": float,
     "schedule": "constant" | "<scheduler>(...)"}

TF     ptycho.train_pinn.train builds its model with ptycho.model.create_compiled_model() after setting
       params.cfg (update_legacy_dict, and the intensity_scale it computes), then calls ptycho.model.train,
       which makes its callbacks and calls model.fit. Here: the same TrainingConfig as training.train_tf,
       update_legacy_dict, create_compiled_model(gridsize, N); the optimiser is the compiled model's
       (`model.optimizer`, a Keras Adam). The schedule is what ptycho.model.train hands fit: it is called
       with a stand-in model whose fit records its arguments and trains nothing, on a one-group container
       of zeros (glue of the adapter's own: train builds its callbacks inside, and they are visible only
       there), and the callbacks that change the learning rate (ReduceLROnPlateau, LearningRateScheduler)
       make the schedule. intensity_scale is set to 1: it seeds the network's log scale, never the optimiser.
torch  ptycho_torch's training (workflows.components._train_with_lightning) builds its Lightning module
       with the generator registry (resolve_generator(config).build_model(pt_configs), a
       PtychoPINN_Lightning for the default CNN) from create_training_payload's configs, and Lightning
       calls its configure_optimizers. Here: create_training_payload with training.train_torch's
       overrides, the same build, then configure_optimizers(): its optimiser's first parameter group and
       its 'lr_scheduler' entry, if any. (_train_with_lightning derives its payload again from the
       payload's tf_training_config; the optimiser fields reach it unchanged, since no override the
       plugin passes sets them.)

A scheduler reads as its class name with the arguments both frameworks share (factor, patience, min_lr for
ReduceLROnPlateau; gamma for ExponentialLR), so the same schedule reads alike on both sides; the metric it
watches is named differently on each and is left out. Each call resets ptycho.params.cfg and ptycho.model's
cache first, as training.py does.

Frameworks are imported inside the functions: the pytest controller never loads them.
"""

from __future__ import annotations

import contextlib
import io
import tempfile

import numpy as np

from pinn_parity_ptychopinn.conversions import (
    diffraction_size,
    require_n,
    torch_factory_overrides,
    with_diff3d_key,
)
from pinn_parity_ptychopinn.training import (
    canonical_fields,
    no_disk_memoize,
    reset_legacy_params,
    reset_tf_model_cache,
    tf_training_config,
    torch_training_payload,
)


def schedule_text(kind: str, **arguments) -> str:
    """The one spelling of a schedule on both sides: Kind(name=value, ...), numbers as %g."""
    shown = ", ".join(f"{name}={value:g}" for name, value in arguments.items())
    return f"{kind}({shown})"


def _settings(name: str, learning_rate, beta1, beta2, epsilon, weight_decay, schedule: str) -> dict:
    return {
        "name": name.lower(),
        "learning_rate": float(learning_rate),
        "beta1": float(beta1),
        "beta2": float(beta2),
        "epsilon": float(epsilon),
        "weight_decay": 0.0 if weight_decay is None else float(weight_decay),  # Keras: None, no decay
        "schedule": schedule,
    }


class _FitRecorder:
    """Stands in for the Keras model ptycho.model.train fits: records fit's keyword arguments, trains nothing."""

    def __init__(self):
        self.fit_kwargs = None

    def fit(self, *args, **kwargs):
        self.fit_kwargs = kwargs


def _tf_fit_callbacks(epochs: int, n: int, gridsize: int) -> list:
    """The callbacks ptycho.model.train passes to fit (see the module doc), on a one-group container of zeros."""
    from ptycho import model
    from ptycho.loader import PtychoDataContainer

    c = gridsize * gridsize
    images = np.zeros((1, n, n, c), np.float32)
    coords = np.zeros((1, 1, 2, c), np.float32)
    probe = np.ones((n, n), np.complex64)
    container = PtychoDataContainer(images, images, images, None, None, coords, coords, None, None, None, probe)
    recorder = _FitRecorder()
    model.train(epochs, container, model_instance=recorder)
    return list(recorder.fit_kwargs.get("callbacks") or [])


def _keras_schedule(optimizer, callbacks) -> str:
    import keras

    found = []
    rate = getattr(optimizer, "_learning_rate", None)  # Keras keeps a LearningRateSchedule there
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        found.append(type(rate).__name__)
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.ReduceLROnPlateau):
            found.append(
                schedule_text(
                    "ReduceLROnPlateau", factor=callback.factor, patience=callback.patience, min_lr=callback.min_lr
                )
            )
        elif isinstance(callback, keras.callbacks.LearningRateScheduler):
            found.append(type(callback).__name__)
    return " + ".join(found) or "constant"


def optimizer_settings_tf(config: dict, data_path) -> dict:
    """The Keras optimiser create_compiled_model compiles, and ptycho.model.train's schedule (module doc)."""
    no_disk_memoize()
    from ptycho import model, params
    from ptycho.config.config import update_legacy_dict

    cfg = tf_training_config(config, data_path, "ptychopinn-tf optimizer_settings")
    with contextlib.redirect_stdout(io.StringIO()):  # their shape prints and DEBUG lines
        reset_legacy_params()
        reset_tf_model_cache()
        update_legacy_dict(params.cfg, cfg)
        params.set("intensity_scale", 1.0)
        autoencoder, _ = model.create_compiled_model(cfg.model.gridsize, cfg.model.N)
        callbacks = _tf_fit_callbacks(cfg.nepochs, cfg.model.N, cfg.model.gridsize)
    optimizer = autoencoder.optimizer
    return _settings(
        type(optimizer).__name__,
        optimizer.learning_rate.numpy(),  # a float32 variable
        optimizer.beta_1,
        optimizer.beta_2,
        optimizer.epsilon,
        optimizer.weight_decay,
        _keras_schedule(optimizer, callbacks),
    )


def _torch_schedule(scheduler) -> str:
    import torch

    if scheduler is None:
        return "constant"
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return schedule_text(
            "ReduceLROnPlateau", factor=scheduler.factor, patience=scheduler.patience, min_lr=scheduler.min_lrs[0]
        )
    if isinstance(scheduler, torch.optim.lr_scheduler.ExponentialLR):
        return schedule_text("ExponentialLR", gamma=scheduler.gamma)
    return type(scheduler).__name__


def _optimizer_and_scheduler(configured):
    """(optimizer, scheduler or None) of what a LightningModule's configure_optimizers returned: an optimiser,
    or a dict with 'optimizer' and an optional 'lr_scheduler' (a scheduler, or a dict holding 'scheduler')."""
    import torch

    if isinstance(configured, torch.optim.Optimizer):
        return configured, None
    if isinstance(configured, dict) and "optimizer" in configured:
        scheduler = configured.get("lr_scheduler")
        if isinstance(scheduler, dict):
            scheduler = scheduler.get("scheduler")
        return configured["optimizer"], scheduler
    raise TypeError(
        f"ptychopinn-torch: configure_optimizers returned {type(configured).__name__}, expected an optimizer "
        "or a dict with 'optimizer'"
    )


def optimizer_settings_torch(config: dict, data_path) -> dict:
    """PtychoPINN_Lightning.configure_optimizers on the module their training builds (module doc)."""
    no_disk_memoize()
    from ptycho.config.config import PyTorchExecutionConfig
    from ptycho_torch.config_params import InferenceConfig
    from ptycho_torch.generators.registry import resolve_generator

    require_n(diffraction_size(data_path), "ptychopinn-torch optimizer_settings")
    overrides = torch_factory_overrides(canonical_fields(config))
    with (
        tempfile.TemporaryDirectory(prefix="ptychopinn-torch-optimizer-") as folder,
        contextlib.redirect_stdout(io.StringIO()),  # their model's construction prints
    ):
        # on the CPU as training.train_torch runs it; its learning_rate unset there too, so the factory's stands
        payload = torch_training_payload(
            overrides, with_diff3d_key(data_path, folder), folder, PyTorchExecutionConfig(accelerator="cpu")
        )
        module = resolve_generator(payload.tf_training_config).build_model(
            {
                "model_config": payload.pt_model_config,
                "data_config": payload.pt_data_config,
                "training_config": payload.pt_training_config,
                "inference_config": InferenceConfig(),  # as _train_with_lightning makes it
            }
        )
        optimizer, scheduler = _optimizer_and_scheduler(module.configure_optimizers())
    group = optimizer.param_groups[0]
    beta1, beta2 = group.get("betas", (float("nan"), float("nan")))  # SGD has none: NaN, never equal
    return _settings(
        type(optimizer).__name__,
        group["lr"],
        beta1,
        beta2,
        group.get("eps", float("nan")),
        group.get("weight_decay"),
        _torch_schedule(scheduler),
    )
