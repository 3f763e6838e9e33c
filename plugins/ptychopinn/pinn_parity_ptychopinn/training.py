"""Short trainings of PtychoPINN's own models, from their own random initial weights, through the public
functions their train command lines call; the history comes back in the harness's canonical form:

    {"history": {"epoch_loss": [...], "steps_per_epoch": int, "n_groups": int, "epochs": int},
     "state": TrainedState}  (what the side's own bundle writer needs: pinn_parity_ptychopinn.bundles)

TF     (scripts/training/train.py -> run_cdi_example_with_backend -> run_cdi_example): TrainingConfig/ModelConfig,
       update_legacy_dict(params.cfg, config), ptycho.workflows.components.load_data (n_images = n_subsample =
       n_groups, train.py's legacy sampling mode), create_ptycho_data_container, then run_cdi_example_with_backend
       without test data (so no stitching) and model_manager.save(output_dir), train.py's two calls. train.py's
       nphotons override from the file's metadata is applied as it applies it (see train_py_nphotons).
torch  (python -m ptycho_torch.train, cli_main): create_training_payload, ptycho.raw_data.RawData.from_file (key
       'diff3d': with_diff3d_key renames), then run_cdi_example_torch(do_stitching=False) with the payload's
       output_dir, which trains (train_cdi_model_torch, their Lightning Trainer) and writes the bundle.
Both bundles are kept in the state (TrainedState.bundle): the bundle stage hands on the file their training
command wrote, in the process that trained, rather than writing one of its own.

The losses are theirs and their scales need not match; the harness compares epoch_loss[-1] / epoch_loss[0]
and the schedule, not absolute values. Each epoch value is the mean over the epoch's samples (batch means
weighted by batch size, Keras's loss tracker and Lightning's on_epoch reduction alike):
  TF     Keras History 'loss', the compiled sum realspace_weight * realspace_loss + mae_weight * MAE(X s, |F| s)
         + nll_weight * negloglik((X s)^2, (|F| s)^2), each the Keras mean over the batch; s = intensity_scale =
         sqrt(nphotons) / (N / 2). negloglik = pred - obs * log(pred) (tf.nn.log_poisson_loss,
         compute_full_loss=False: no Stirling term), so at their count levels it is NEGATIVE and a drop makes the
         ratio last/first > 1.
  torch  train_cdi_model_torch's history 'train_loss' (its _LossHistoryCallback reads the module's logged
         '<poisson|mae>_train_loss_epoch'): PoissonLoss -log Poisson(obs^2; pred^2) summed over (C, N, N), or
         elementwise MAE, on amplitudes times their physics scale, meaned over the batch, divided by the batch's
         mean observed amplitude; positive, of order 1e10 at nphotons = 1e9.

Schedule: epochs = max(2, ceil(max_steps / steps_per_epoch)) (two epoch losses are the least a drop needs);
their defaults (50 / 100) are never used. steps_per_epoch, epochs and n_groups are read back from what
trained (Keras History.params, the Lightning Trainer, the data container) and must equal the plan.
  TF     model.fit(validation_split=0.05) (ptycho.model.train): it trains on the first
         floor(0.95 * groups) groups, so n_groups is that count. Its EarlyStopping(monitor='loss',
         patience=3) may end the fit before the planned epochs: "epochs" is the number that ran.
  torch  DataLoader(batch_size, shuffle, drop_last=False) over every group.

Seeds (two calls with one seed give the same history):
  TF     keras.utils.set_random_seed(seed) before loading: Python's random, NumPy's global generator (load_data's
         subsampling and generate_grouped_data draw from it: train.py passes them no seed) and TensorFlow's
         (initial weights, fit's shuffle). TrainingConfig.subsample_seed stays None as train.py leaves it: with
         a seed, load_data writes tmp/subsample_seed<seed>_indices.txt into the working folder.
  torch  lightning seed_everything(seed) before training: their module is built before their own seeding, so
         this seeds its initial weights; TrainingConfig.subsample_seed = seed, which their pipeline passes to
         generate_grouped_data and to its own seed_everything before building the DataLoader (shuffle order).
         Their deterministic=True execution setting is used; the process-wide
         torch.use_deterministic_algorithms it switches on is restored afterwards.

Isolation: PtychoPINN keeps its configuration in the global ptycho.params.cfg (and intensity_scale / probe
computed into it during training, which train_cdi_model reuses when present), and ptycho.model caches the
intensity-scale variable of the first model built in the process. Each call resets both to their import-time
state (reset_legacy_params, reset_tf_model_cache) before setting its own, so nothing leaks from an earlier
call or from another stage that built a model.
Everything they write (the bundles, Lightning's root folder) goes to a temporary folder; checkpointing,
loggers and MLflow are off on the torch side.

Frameworks are imported inside the functions: the pytest controller never loads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pinn_parity_ptychopinn.conversions import (
    diffraction_size,
    require_n,
    tf_config_fields,
    torch_factory_overrides,
    with_diff3d_key,
)

MIN_EPOCHS = 2
"""A loss drop needs two epoch losses."""

TF_VALIDATION_SPLIT = 0.05
"""ptycho.model.train's model.fit(validation_split=0.05): hard-coded there, not a configuration field."""

# Fields of the canonical config that set no training input here: the schedule is this module's.
_SCHEDULE_FIELDS = ("epochs",)


@dataclasses.dataclass(frozen=True)
class TrainedState:
    """One side's trained network(s) as its own bundle writer takes them (pinn_parity_ptychopinn.bundles).

    models      TF: {'autoencoder', 'diffraction_to_obj'} Keras models (ModelManager.save_multiple_models);
                torch: train_cdi_model_torch's results['models'] ({'diffraction_to_obj': the Lightning module,
                'autoencoder': their sentinel dict}, as run_cdi_example_torch hands them to save_torch_bundle).
    params      the legacy params.cfg dict the bundle's params.dill holds (TF: params.cfg after training;
                torch: dataclass_to_legacy_dict(config), as save_torch_bundle snapshots it).
    config      ptycho.config.config.TrainingConfig that trained (save_torch_bundle takes it); None when loaded
                from a bundle (a bundle holds only `params`).
    intensity_scale  TF: exp(the trained log_scale), what model_manager.save writes; torch: train_cdi_model_torch's
                results['intensity_scale'] (physics scale), what run_cdi_example_torch writes.
    probe       torch only: the probe their training fed the network (an input of its forward, not a weight,
                and not in their bundle); None on the TF side (the probe is a variable of the Keras model).
    bundle      the wts.h5.zip their training command wrote when it finished, in the process that trained (TF:
                model_manager.save(output_dir), as scripts/training/train.py calls it; torch: run_cdi_example_torch
                with output_dir set, as ptycho_torch.train's cli_main calls it); None when loaded from a bundle."""

    backend: str
    models: Mapping[str, Any]
    params: Mapping[str, Any]
    config: Any
    intensity_scale: float
    n: int
    gridsize: int
    probe: Any = None
    bundle: bytes | None = None


def epochs_for(max_steps: int, steps_per_epoch: int) -> int:
    return max(MIN_EPOCHS, math.ceil(max_steps / steps_per_epoch))


def canonical_fields(config: dict) -> dict:
    """The canonical fields a backend's configuration takes: own ("x.") fields, the schedule and unset
    (None) fields, which keep their dataclass defaults, are left out."""
    return {k: v for k, v in config.items() if not k.startswith("x.") and k not in _SCHEDULE_FIELDS and v is not None}


def reset_legacy_params() -> None:
    """ptycho.params.cfg back to its import-time state (DEFAULT_CFG, unsealed).

    update_legacy_dict skips None fields and never removes keys, and training writes intensity_scale and probe
    into the same dict (train_cdi_model builds the model from an intensity_scale already there): without a
    reset, one call's values reach the next."""
    from ptycho import params

    params.unseal()
    params.cfg.clear()
    params.cfg.update(params.DEFAULT_CFG)


def reset_tf_model_cache() -> None:
    """ptycho.model's process-wide _lazy_cache emptied, as at import (no public reset exists; their own
    scripts/studies/probe_mischaracterization_stress_test.py clears it the same way).

    Its 'log_scale' tf.Variable is made once per process, from the intensity_scale in params.cfg when the first
    model is built (IntensityScaler -> _get_log_scale), and every later model reuses it: without this, a call
    trains with the intensity scale of whatever built a model first in the process (another N or nphotons, or
    the adapters' shape stage, which builds with intensity_scale 1)."""
    from ptycho import model

    model._lazy_cache.clear()


def train_py_nphotons(data_path) -> float | None:
    """nphotons as scripts/training/train.py overrides it from the file's metadata (its top-level 'nphotons',
    else physics_parameters.nphotons), read with their MetadataManager; None where the file has neither.

    Their metadata lives under the key '_metadata'; the harness's files write 'metadata', so for them this is
    None and TrainingConfig's default applies, as in train.py (and in the torch factory, which reads
    physics_parameters.nphotons only)."""
    from ptycho.metadata import MetadataManager

    _, metadata = MetadataManager.load_with_metadata(str(data_path))
    if not metadata:
        return None
    if "nphotons" in metadata:
        return float(metadata["nphotons"])
    nested = metadata.get("physics_parameters", {}).get("nphotons")
    return None if nested is None else float(nested)


def tf_training_config(config: dict, data_path, what: str, **fields):
    """ptycho's TrainingConfig as scripts/training/train.py builds it from the case's flags: the canonical fields
    (dataclass defaults for the rest), N from the file, train.py's nphotons override; `fields` added as given."""
    from ptycho.config.config import ModelConfig, TrainingConfig

    model_kw, train_kw = tf_config_fields(canonical_fields(config))
    model_kw["N"] = diffraction_size(data_path)
    require_n(model_kw["N"], what)
    nphotons = train_py_nphotons(data_path)
    if nphotons is not None:
        train_kw["nphotons"] = nphotons
    return TrainingConfig(model=ModelConfig(**model_kw), train_data_file=Path(data_path), **train_kw, **fields)


def torch_training_payload(overrides: dict, data_file, folder, execution_config):
    """create_training_payload as cli_main calls it (output under `folder`), params.cfg reset first."""
    from ptycho_torch.config_factory import create_training_payload

    with warnings.catch_warnings():
        # it warns whenever params.cfg is non-empty, which it always is after a reset
        warnings.filterwarnings("ignore", message="params.cfg already populated")
        reset_legacy_params()
        return create_training_payload(
            train_data_file=data_file,
            output_dir=Path(folder) / "out",
            overrides=overrides,
            execution_config=execution_config,
        )


def history_result(epoch_loss, steps_per_epoch: int, n_groups: int, epochs: int) -> dict:
    return {
        "history": {
            "epoch_loss": [float(v) for v in epoch_loss],
            "steps_per_epoch": int(steps_per_epoch),
            "n_groups": int(n_groups),
            "epochs": int(epochs),
        }
    }


def check_schedule(backend: str, planned: dict, measured: dict) -> None:
    """What trained must be what was planned: the epoch count was derived from the planned steps."""
    if planned != measured:
        raise RuntimeError(
            f"{backend}: trained {measured}, planned {planned}: the epoch count was derived from "
            "the plan, so the schedule's reading of their pipeline is out of date"
        )


def no_disk_memoize() -> None:
    """PTYCHO_DISABLE_MEMOIZE=1 unless the caller set it: with it unset, importing ptycho.diffsim (pulled in by
    their workflows) creates ./memoized_data in the working folder (ptycho.misc.memoize_disk_and_memory).
    Effective only before PtychoPINN's first import in the process."""
    os.environ.setdefault("PTYCHO_DISABLE_MEMOIZE", "1")


@contextlib.contextmanager
def _quiet():
    """Their fit/print chatter (Keras progress bars, shape prints) off stdout; warnings and errors still show."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def train_tf(config: dict, data_path, max_steps: int, seed: int) -> dict:
    """PtychoPINN's TF model trained as scripts/training/train.py trains it (see the module doc)."""
    no_disk_memoize()
    import keras
    import numpy as np
    from ptycho import model, model_manager, params
    from ptycho.config.config import update_legacy_dict
    from ptycho.workflows.backend_selector import run_cdi_example_with_backend
    from ptycho.workflows.components import create_ptycho_data_container, load_data

    with tempfile.TemporaryDirectory(prefix="ptychopinn-tf-train-") as out, _quiet():
        cfg = tf_training_config(config, data_path, "ptychopinn-tf train", output_dir=Path(out))
        reset_legacy_params()
        reset_tf_model_cache()
        keras.backend.clear_session()  # earlier calls' models and layer-name counters
        keras.utils.set_random_seed(seed)
        update_legacy_dict(params.cfg, cfg)
        # train.py's legacy sampling (no n_subsample): n_groups images subsampled, then n_groups groups
        raw = load_data(str(data_path), n_images=cfg.n_groups, n_subsample=cfg.n_groups)
        container = create_ptycho_data_container(raw, cfg)
        # Keras's split (train_validation_split): the first floor(n * (1 - split)) samples train
        n_trained = int(math.floor(len(container) * (1.0 - TF_VALIDATION_SPLIT)))
        planned = {"steps_per_epoch": math.ceil(n_trained / cfg.batch_size)}
        planned["epochs"] = epochs_for(max_steps, planned["steps_per_epoch"])
        cfg = dataclasses.replace(cfg, nepochs=planned["epochs"])
        update_legacy_dict(params.cfg, cfg)  # ptycho.train_pinn.train reads nepochs from params.cfg
        # train.py's two calls: the workflow (no stitching without test data), then its TF-only save
        _, _, results = run_cdi_example_with_backend(container, None, cfg, do_stitching=False)
        model_manager.save(str(cfg.output_dir))
        bundle = (Path(out) / f"{params.get('h5_path')}.zip").read_bytes()
    loss = results["history"]["loss"]
    fit_params = results["model_instance"].history.params  # the epochs fit was asked for, its batches per epoch
    check_schedule(
        "ptychopinn-tf", planned, {"steps_per_epoch": int(fit_params["steps"]), "epochs": int(fit_params["epochs"])}
    )
    autoencoder = results["model_instance"]
    # model_manager.save's intensity scale: exp of the trained log_scale variable, read here from the model's own
    # IntensityScaler layer rather than ptycho.model's process-wide cache, which a later model may replace
    log_scale = autoencoder.get_layer("intensity_scaler").w
    # train_cdi_model leaves the inference model in ptycho.model.diffraction_to_obj (for model_manager.save)
    state = TrainedState(
        "ptychopinn-tf",
        {"autoencoder": autoencoder, "diffraction_to_obj": model.diffraction_to_obj},
        dict(params.cfg),
        cfg,
        float(np.exp(log_scale.numpy())),
        cfg.model.N,
        cfg.model.gridsize,
        bundle=bundle,
    )
    return {**history_result(loss, planned["steps_per_epoch"], n_trained, len(loss)), "state": state}


def train_torch(config: dict, data_path, max_steps: int, seed: int) -> dict:
    """PtychoPINN's torch model trained as ptycho_torch.train's cli_main trains it (see the module doc)."""
    no_disk_memoize()
    import lightning.pytorch as L
    import torch
    from ptycho.config.config import PyTorchExecutionConfig, dataclass_to_legacy_dict
    from ptycho.raw_data import RawData
    from ptycho_torch.workflows.components import run_cdi_example_torch

    require_n(diffraction_size(data_path), "ptychopinn-torch train")
    overrides = torch_factory_overrides(canonical_fields(config))
    overrides["subsample_seed"] = int(seed)
    # cli_main's execution settings, but no progress bar, checkpoints or loggers (MLflow included), on the CPU
    execution = PyTorchExecutionConfig(
        accelerator="cpu",
        deterministic=True,
        num_workers=0,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger_backend=None,
    )
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-train-") as folder, _quiet(), warnings.catch_warnings():
        # their training builds its payload again, and warns as torch_training_payload's does
        warnings.filterwarnings("ignore", message="params.cfg already populated")
        renamed = with_diff3d_key(data_path, Path(folder))
        out = Path(folder) / "out"
        resolved = torch_training_payload(overrides, renamed, folder, execution).tf_training_config
        raw = RawData.from_file(str(renamed))
        n_groups = min(int(resolved.n_groups), len(raw.xcoords))  # generate_grouped_data caps groups at positions
        planned = {"n_groups": n_groups, "steps_per_epoch": math.ceil(n_groups / resolved.batch_size)}
        planned["epochs"] = epochs_for(max_steps, planned["steps_per_epoch"])
        payload = torch_training_payload({**overrides, "max_epochs": planned["epochs"]}, renamed, folder, execution)
        L.seed_everything(seed, verbose=False)
        try:
            # as cli_main calls it: trains, then writes output_dir/wts.h5.zip (save_torch_bundle and the
            # scaling metadata its inference loader reads)
            _, _, results = run_cdi_example_torch(
                raw, None, payload.tf_training_config, do_stitching=False, execution_config=execution
            )
        finally:
            torch.use_deterministic_algorithms(deterministic_before)
        bundle = (out / "wts.h5.zip").read_bytes()
    trainer = results["models"]["diffraction_to_obj"].trainer
    measured = {
        "n_groups": int(results["train_container"].X.shape[0]),
        "steps_per_epoch": int(trainer.num_training_batches),
        "epochs": int(trainer.current_epoch),
    }
    check_schedule("ptychopinn-torch", planned, measured)
    config = payload.tf_training_config
    state = TrainedState(
        "ptychopinn-torch",
        results["models"],
        dataclass_to_legacy_dict(config),
        config,
        float(results["intensity_scale"]),
        config.model.N,
        config.model.gridsize,
        results["train_container"].probe,
        bundle,
    )
    return {**history_result(results["history"]["train_loss"], **measured), "state": state}
