"""PtychoPINN's own bundles (wts.h5.zip) of the networks pinn_parity_ptychopinn.training trains, written and read
through the public functions their workflows call, and predictions of those networks as their inference runs them.

save   TF:    ptycho.model_manager.ModelManager.save_multiple_models (what model_manager.save, called by
              scripts/training/train.py, calls) with the state's models and intensity scale, params.cfg set to
              the state's snapshot (save_model writes params.cfg into params.dill).
       torch: ptycho_torch.model_manager.save_torch_bundle(models, base, config, intensity_scale), as
              run_cdi_example_torch calls it.
load   TF:    ModelManager.load_multiple_models (what ptycho.workflows.components.load_inference_bundle calls).
       torch: ptycho_torch.model_manager.load_torch_bundle.
Both take a base path and add '.zip': the harness's path must end in '.zip'.

predict: diffraction (B, C, N, N) raw amplitudes and offsets (B, C, 2) (x, y), position - group centre, in;
{"object_patches": (B, C, N, N) complex64, "amplitude": (B, C, N, N) float32} out. The input is normalised by
ptycho.raw_data.normalize_data over the batch, as both inferences do (TF: generate_grouped_data's X_full; torch:
ptycho_torch.inference scales by the same factor, "Match RawData.normalize_data()"). The amplitude is each
network's predicted diffraction amplitude in its own units (TF: the autoencoder's intensity_scaler_inv output,
scaled by exp(log_scale); torch: its forward with output scale 1): compare a side with itself only.

Loaders and models read PtychoPINN's global ptycho.params.cfg: each function sets it from the state first.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from pinn_parity_ptychopinn.conversions import their_offsets
from pinn_parity_ptychopinn.training import TrainedState, no_disk_memoize, reset_legacy_params, reset_tf_model_cache


def base_path(path) -> str:
    """Their writers and loaders append '.zip' to the path they are given."""
    path = Path(path)
    if path.suffix != ".zip":
        raise ValueError(f"a PtychoPINN bundle path must end in .zip: {path}")
    return str(path.with_suffix(""))


def set_params(snapshot) -> None:
    """ptycho.params.cfg = the state's snapshot exactly (no key left from an earlier call)."""
    from ptycho import params

    reset_legacy_params()
    params.cfg.update(snapshot)


def normalized_input(diffraction) -> np.ndarray:
    """(B, C, N, N) raw amplitudes -> (B, N, N, C) as their inference normalises them (ptycho.raw_data.normalize_data
    on the grouped, channel-last array, as generate_grouped_data calls it), float32."""
    grouped = np.ascontiguousarray(np.moveaxis(np.asarray(diffraction, np.float32), 1, -1))
    from ptycho.raw_data import normalize_data

    return np.asarray(normalize_data({"diffraction": grouped}, grouped.shape[1]), np.float32)


def _canonical(object_patches, amplitude, channels_last: bool) -> dict:
    move = (lambda a: np.moveaxis(a, -1, 1)) if channels_last else (lambda a: a)
    return {
        "object_patches": np.ascontiguousarray(move(np.asarray(object_patches)).astype(np.complex64)),
        "amplitude": np.ascontiguousarray(move(np.asarray(amplitude)).astype(np.float32)),
    }


def save_tf(state: TrainedState, path) -> None:
    from ptycho.model_manager import ModelManager

    set_params(state.params)
    # custom_objects empty: their layers are registered Keras serializables, and load_model adds the functions
    # and layers the saved graph needs itself
    with contextlib.redirect_stdout(io.StringIO()):
        ModelManager.save_multiple_models(dict(state.models), base_path(path), {}, state.intensity_scale)


def load_tf(path) -> TrainedState:
    no_disk_memoize()
    from ptycho import params
    from ptycho.model_manager import ModelManager

    # as in a fresh inference process: their blank models take log_scale from ptycho.model's cache, which must
    # be rebuilt from the bundle's intensity_scale, not reuse the variable of a model trained earlier
    reset_legacy_params()
    reset_tf_model_cache()
    with contextlib.redirect_stdout(io.StringIO()):
        models = ModelManager.load_multiple_models(base_path(path))
    snapshot = dict(params.cfg)  # load_model updated params.cfg from params.dill
    return TrainedState(
        "ptychopinn-tf",
        models,
        snapshot,
        None,
        float(snapshot["intensity_scale"]),
        int(snapshot["N"]),
        int(snapshot["gridsize"]),
    )


def predict_tf(state: TrainedState, diffraction, offsets_px) -> dict:
    """diffraction_to_obj for the object (ptycho.nbutils.reconstruct_image: input X * intensity_scale) and the
    autoencoder's second output (pred_amp_scaled) for the amplitude, channel-last in and out."""
    set_params(state.params)
    inputs = normalized_input(diffraction) * np.float32(state.intensity_scale)
    # their coords_relative layout (B, 1, 2, C): row 0 x, row 1 y, sign centre - position
    positions = np.moveaxis(their_offsets(offsets_px), 1, -1)[:, None]
    with contextlib.redirect_stdout(io.StringIO()):
        obj = state.models["diffraction_to_obj"].predict([inputs, positions], verbose=0)
        amplitude = state.models["autoencoder"].predict([inputs, positions], verbose=0)[1]
    return _canonical(obj, amplitude, channels_last=True)


def save_torch(state: TrainedState, path) -> None:
    from ptycho_torch.model_manager import save_torch_bundle

    if state.config is None:
        raise ValueError("ptychopinn-torch: save_torch_bundle needs the TrainingConfig that trained (state.config)")
    set_params(state.params)
    save_torch_bundle(dict(state.models), base_path(path), state.config, state.intensity_scale)


def load_torch(path, probe=None) -> TrainedState:
    """`probe`: their bundle holds none (ptycho_torch.inference reads it from the data file); predict needs it."""
    no_disk_memoize()
    from ptycho_torch.model_manager import load_torch_bundle

    reset_legacy_params()
    models, snapshot = load_torch_bundle(base_path(path))
    return TrainedState(
        "ptychopinn-torch",
        models,
        dict(snapshot),
        None,
        float(snapshot["intensity_scale"]),
        int(snapshot["N"]),
        int(snapshot["gridsize"]),
        probe,
    )


def predict_torch(state: TrainedState, diffraction, offsets_px) -> dict:
    """The Lightning module's forward_predict (the object, as ptycho_torch.inference calls it) and forward (the
    amplitude), channel-first, on the normalised input with input and output scale factors 1."""
    import torch

    if state.probe is None:
        raise ValueError("ptychopinn-torch: no probe in the state (their bundle holds none): load_torch(path, probe)")
    set_params(state.params)
    module = state.models["diffraction_to_obj"].eval()
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(normalized_input(diffraction), -1, 1)))
    positions = torch.from_numpy(their_offsets(offsets_px)[:, :, None, :])  # (B, C, 1, 2), their sign
    n = x.shape[-1]
    probe = torch.as_tensor(np.asarray(state.probe, np.complex64).reshape(1, 1, 1, n, n))  # (1, 1, P=1, N, N)
    one = torch.ones((x.shape[0], 1, 1, 1))
    with torch.no_grad():
        obj = module.forward_predict(x, positions, probe, one)
        amplitude, _, _ = module(x, positions, probe, one, one, torch.zeros(x.shape[0], dtype=torch.long))
    return _canonical(obj.numpy(), amplitude.numpy(), channels_last=False)
