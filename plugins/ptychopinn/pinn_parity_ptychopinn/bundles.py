"""PtychoPINN's own bundles (wts.h5.zip) of the networks pinn_parity_ptychopinn.training trains, as their training
command lines write them and their inference command line reads them, and predictions of those networks as their
inference runs them.

save   both: the file their training wrote when it finished, in the process that trained (TrainedState.bundle: TF
       model_manager.save(output_dir), called by scripts/training/train.py, custom objects included; torch
       run_cdi_example_torch, called by ptycho_torch.train's cli_main: save_torch_bundle plus the scaling metadata
       its loader checks), copied to the harness's path.
load   both: ptycho.workflows.backend_selector.load_inference_bundle_with_backend(folder, InferenceConfig(backend)),
       what scripts/inference/inference.py calls (TF: load_inference_bundle; torch: load_inference_bundle_torch), on a
       folder holding the file as wts.h5.zip, in a process whose PtychoPINN state was reset as at start-up.
       Glue of the adapter's own: their inference reads the inference model only ('diffraction_to_obj'); the TF
       amplitude comes from the bundle's 'autoencoder', read with ModelManager.load_multiple_models (what
       load_inference_bundle calls) from the same file.

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
import os
import tempfile
from pathlib import Path

import numpy as np

from pinn_parity_ptychopinn.conversions import their_offsets
from pinn_parity_ptychopinn.training import TrainedState, no_disk_memoize, reset_legacy_params, reset_tf_model_cache

BUNDLE_NAME = "wts.h5.zip"
"""The file name their loaders look for in a bundle folder (params.cfg's h5_path plus '.zip')."""


def write_bundle(state: TrainedState, path) -> None:
    """The file their training wrote, at `path`."""
    if state.bundle is None:
        raise ValueError(f"{state.backend}: this state was not trained here, so no bundle of theirs was written")
    Path(path).write_bytes(state.bundle)


@contextlib.contextmanager
def bundle_folder(path):
    """A folder holding `path` as wts.h5.zip: their inference loaders take a training run's output folder."""
    with tempfile.TemporaryDirectory(prefix="ptychopinn-bundle-") as folder:
        os.symlink(Path(path).resolve(), Path(folder) / BUNDLE_NAME)
        yield Path(folder)


def load_for_inference(path, backend: str):
    """(model, params.cfg) as scripts/inference/inference.py loads a bundle for `backend`."""
    from ptycho.config.config import InferenceConfig, ModelConfig
    from ptycho.workflows.backend_selector import load_inference_bundle_with_backend

    with bundle_folder(path) as folder:
        # inference.py's InferenceConfig: only `backend` steers the loader; the data file is not read here
        config = InferenceConfig(
            model=ModelConfig(), model_path=folder, test_data_file=folder / "unused.npz", backend=backend
        )
        with contextlib.redirect_stdout(io.StringIO()):
            return load_inference_bundle_with_backend(folder, config)


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


save_tf = write_bundle


def load_tf(path) -> TrainedState:
    no_disk_memoize()
    from ptycho import params
    from ptycho.model_manager import ModelManager

    # as in a fresh inference process: their blank models take log_scale from ptycho.model's cache, which must
    # be rebuilt from the bundle's intensity_scale, not reuse the variable of a model trained earlier
    reset_legacy_params()
    reset_tf_model_cache()
    model, _ = load_for_inference(path, "tensorflow")
    snapshot = dict(params.cfg)  # load_inference_bundle restored params.cfg from the bundle
    with bundle_folder(path) as folder, contextlib.redirect_stdout(io.StringIO()):
        (autoencoder,) = ModelManager.load_multiple_models(str(folder / "wts.h5"), ["autoencoder"]).values()
    return TrainedState(
        "ptychopinn-tf",
        {"diffraction_to_obj": model, "autoencoder": autoencoder},
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


save_torch = write_bundle


def load_torch(path, probe=None) -> TrainedState:
    """`probe`: their bundle holds none (ptycho_torch.inference reads it from the data file); predict needs it."""
    no_disk_memoize()
    reset_legacy_params()
    model, snapshot = load_for_inference(path, "pytorch")
    return TrainedState(
        "ptychopinn-torch",
        {"diffraction_to_obj": model},
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
