"""Adapters for PtychoPINN's two backends: `ptycho` (TensorFlow) and `ptycho_torch` (PyTorch).

Each adapter calls PtychoPINN's public entry points, the ones its own train command lines use,
and converts names, layouts and dtypes only; no numerics of the harness stand in for theirs.
A stage PtychoPINN has no public entry point for is not declared (n/a in the report).

config  TF:    ptycho.config.config.TrainingConfig(model=ModelConfig(...), ...), as
               scripts/training/train.py builds it from its flags (dataclass defaults).
        torch: ptycho_torch.config_factory.create_training_payload(train_data_file, output_dir,
               overrides), exactly as ptycho_torch/train.py's cli_main calls it; the effective
               values are read from payload.tf_training_config (the factory's bridge output),
               with the torch-only fields from payload.pt_*_config under "x.".
data    TF:    ptycho.workflows.components.load_data(path) (scripts/training/train.py).
        torch: ptycho.raw_data.RawData.from_file(path) (ptycho_torch/train.py's cli_main), which
               reads the key 'diff3d' only: the adapter renames the harness's 'diffraction' to it.
grouping TF:   ptycho.raw_data.RawData.generate_grouped_data(N, K, nsamples, seed, gridsize, ...), as
               ptycho.workflows.components.create_ptycho_data_container calls it (K = neighbor_count,
               nsamples = n_groups).
        torch: ptycho_torch.raw_data_bridge.RawDataTorch.generate_grouped_data, as
               ptycho_torch.workflows.components calls it; it delegates to the TF RawData unchanged,
               so the pair is shared by construction there (shared_code).
               Their output is (B, 1, 2, C) with coords_relative = centre - position
               (ptycho.raw_data.local_offset_sign = -1): the adapter moves the axes to (B, C, 2) and
               negates. seed: canonical seed is passed as generate_grouped_data's seed (np.random.seed,
               global); note the TF workflow passes none (unseeded), the torch one subsample_seed.
               inference: sequential_sampling=True, nsamples = M (every position, in order).
translation TF: ptycho.tf_helper.Translation (the model's layer, XLA path, jitter 0) on
               (B*C, H, W, 1) images and (B*C, 2) offsets read as (x, y), content moved by +d:
               the canonical convention, no sign change.
        torch: ptycho_torch.helper.Translation(img (B*C, H, W), offset (B*C, 1, 2), jitter_amt=0):
               grid_sample bilinear, align_corners=True, zero fill; (x, y), +d, no sign change.

Canonical fields with no counterpart in a backend's configuration (seed, adam_epsilon; the TF
side's learning_rate, which lives in its model code, not its config) are left out of that
backend's resolved config rather than filled in from the harness's defaults.

Frameworks are imported inside the methods: the pytest controller never loads them.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from types import MappingProxyType

import numpy as np

from adapters.base import Backend

SUPPORTED_N = (64, 128, 256)
"""ptycho.config.config.ModelConfig.N is Literal[64, 128, 256]; its TF model refuses N = 32."""

# canonical loss name -> the TF TrainingConfig weights that select it (nll_weight, mae_weight)
_TF_LOSS = {"poisson": {"nll_weight": 1.0, "mae_weight": 0.0}, "mae": {"nll_weight": 0.0, "mae_weight": 1.0}}
# canonical loss name -> torch factory overrides (ModelConfig.loss_function, TrainingConfig.torch_loss_mode)
_TORCH_LOSS = {"poisson": {"loss_function": "Poisson", "torch_loss_mode": "poisson"},
               "mae": {"loss_function": "MAE", "torch_loss_mode": "mae"}}
# PtychoPINN's amp_activation names -> canonical ones (the bridge normalises torch's silu to swish)
_ACTIVATION_TO_CANONICAL = {"sigmoid": "sigmoid", "softplus": "softplus", "swish": "swish", "silu": "swish",
                            "relu": "relu"}


def require_n(n: int, what: str) -> None:
    if n not in SUPPORTED_N:
        raise ValueError(f"{what}: PtychoPINN supports patch size N in {SUPPORTED_N}, got N = {n}")


def diffraction_size(data_path) -> int:
    """N of the case's file (its diffraction patterns are (M, N, N))."""
    with np.load(data_path) as f:
        return int(f["diffraction"].shape[-1])


def tf_loss_name(nll_weight: float, mae_weight: float) -> str:
    """Canonical loss name for the TF weights; 'mixed' where both are on (no canonical counterpart)."""
    if nll_weight > 0 and mae_weight == 0:
        return "poisson"
    if mae_weight > 0 and nll_weight == 0:
        return "mae"
    return f"mixed(nll={nll_weight},mae={mae_weight})"


def canonical_from_tf_training_config(cfg) -> dict:
    """The canonical fields a ptycho.config.config.TrainingConfig holds, by canonical name."""
    model = cfg.model
    return {
        "gridsize": int(model.gridsize),
        "neighbor_count": int(cfg.neighbor_count),
        "n_groups": None if cfg.n_groups is None else int(cfg.n_groups),
        "n_filters_scale": int(model.n_filters_scale),
        "amp_activation": _ACTIVATION_TO_CANONICAL.get(model.amp_activation, model.amp_activation),
        "batch_size": int(cfg.batch_size),
        "epochs": int(cfg.nepochs),
        "loss": tf_loss_name(cfg.nll_weight, cfg.mae_weight),
        "object_big": bool(model.object_big),
    }


def own_fields(obj, names) -> dict:
    return {f"x.{name}": _plain(getattr(obj, name)) for name in names}


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


TF_OWN = ("nphotons", "intensity_scale_trainable", "probe_trainable", "nll_weight", "mae_weight")
TF_MODEL_OWN = ("N", "model_type", "architecture", "probe_big", "probe_mask", "pad_object", "probe_scale")


def _grouping_inputs(xcoords, ycoords, config: dict, inference: bool):
    """Positions, gridsize, K, nsamples and seed for generate_grouped_data from the canonical config."""
    x = np.asarray(xcoords, np.float64).ravel()
    y = np.asarray(ycoords, np.float64).ravel()
    m = x.size
    gridsize = int(config.get("gridsize", 1))
    k = int(config.get("neighbor_count", 4))
    n_groups = config.get("n_groups")
    nsamples = m if (inference or n_groups is None) else int(n_groups)
    seed = config.get("seed", 42)
    return x, y, gridsize, k, nsamples, None if seed is None else int(seed)


# generate_grouped_data indexes diffraction patterns too; grouping never reads their values.
_DUMMY_N = 4


def _dummy_arrays(m: int):
    return (np.ones((m, _DUMMY_N, _DUMMY_N), np.float32), np.ones((_DUMMY_N, _DUMMY_N), np.complex64),
            np.arange(m))


def canonical_groups(grouped: dict, xcoords, ycoords) -> dict:
    """PtychoPINN's grouped dict -> canonical groups.

    Theirs: nn_indices (B, C) int32; coords_nn (B, 1, 2, C) with row 0 = x, row 1 = y;
    coords_offsets (B, 1, 2, 1) the group centre (mean); coords_relative (B, 1, 2, C) =
    local_offset_sign * (coords_nn - centre), local_offset_sign = -1 (centre - position).
    Ours: (B, C, 2) as (x, y), offsets = position - centre."""
    from ptycho import raw_data

    idx = np.ascontiguousarray(grouped["nn_indices"], np.int64)
    coords = np.moveaxis(np.asarray(grouped["coords_nn"], np.float64)[:, 0], 1, 2)  # (B, 2, C) -> (B, C, 2)
    center = np.asarray(grouped["coords_offsets"], np.float64)[:, 0, :, 0]  # (B, 2)
    relative = np.moveaxis(np.asarray(grouped["coords_relative"], np.float64)[:, 0], 1, 2)
    offsets = relative / raw_data.local_offset_sign  # their sign -> position - centre
    return {"nn_indices": idx, "coords_px": coords, "center_px": center, "offsets_px": offsets}


class _PtychoPINN(Backend):
    declared_stages = ("config", "data", "grouping", "translation")
    default_profile = "../profile"

    def versions(self) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        out = {}
        for dist in ("ptychopinn", "tensorflow", "tensorflow-cpu", "keras", "torch", "lightning", "numpy"):
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                pass
        return out


class PtychoPINNTF(_PtychoPINN):
    """PtychoPINN's TensorFlow backend (package `ptycho`)."""

    name = "ptychopinn-tf"
    shared_code = MappingProxyType({"grouping": "ptycho.raw_data.RawData.generate_grouped_data"})

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        from ptycho.config.config import ModelConfig, TrainingConfig

        o = dict(overrides)
        model_kw, train_kw = {}, {}
        if data_path is not None:
            n = diffraction_size(data_path)
            require_n(n, "ptychopinn-tf resolve_config")
            model_kw["N"] = n
        for ours in ("gridsize", "n_filters_scale", "amp_activation", "object_big"):
            if ours in o:
                model_kw[ours] = o.pop(ours)
        for ours, theirs in (("neighbor_count", "neighbor_count"), ("n_groups", "n_groups"),
                             ("batch_size", "batch_size"), ("epochs", "nepochs")):
            if ours in o:
                train_kw[theirs] = o.pop(ours)
        if "loss" in o:
            train_kw.update(_TF_LOSS[o.pop("loss")])
        if o:
            # seed, learning_rate, adam_epsilon: no field of TrainingConfig/ModelConfig takes them
            raise ValueError(f"ptychopinn-tf: no TrainingConfig/ModelConfig field for override(s) {sorted(o)}")
        cfg = TrainingConfig(model=ModelConfig(**model_kw), train_data_file=data_path, **train_kw)
        out = canonical_from_tf_training_config(cfg)
        out.update(own_fields(cfg, TF_OWN))
        out.update(own_fields(cfg.model, TF_MODEL_OWN))
        return out

    def load_dataset(self, path) -> dict:
        from ptycho.workflows.components import load_data

        raw = load_data(str(path))
        return _raw_data_arrays(raw)

    def group(self, xcoords, ycoords, config: dict, inference: bool = False) -> dict:
        from ptycho.raw_data import RawData

        x, y, gridsize, k, nsamples, seed = _grouping_inputs(xcoords, ycoords, config, inference)
        diff3d, probe, scan_index = _dummy_arrays(x.size)
        with contextlib.redirect_stdout(io.StringIO()):
            raw = RawData.from_coords_without_pc(x, y, diff3d, probe, scan_index)
        with contextlib.redirect_stdout(io.StringIO()):  # RawData prints shapes and DEBUG lines
            grouped = raw.generate_grouped_data(_DUMMY_N, K=k, nsamples=nsamples, seed=seed,
                                                sequential_sampling=inference, gridsize=gridsize)
        return canonical_groups(grouped, x, y)

    def translate(self, images, shifts_px):
        import tensorflow as tf
        from ptycho import tf_helper

        images = np.asarray(images)
        b, c, h, w = images.shape
        flat = images.reshape(b * c, h, w)[..., None]  # (B*C, H, W, 1): their channel-last layout
        shifts = np.asarray(shifts_px, np.float32).reshape(b * c, 2)  # (x, y) both sides
        layer = tf_helper.Translation(jitter_stddev=0.0)
        dtype = tf.complex64 if np.iscomplexobj(images) else tf.float32
        out = layer([tf.constant(flat, dtype), tf.constant(shifts, tf.float32)])
        return np.asarray(out)[..., 0].reshape(b, c, h, w)


class PtychoPINNTorch(_PtychoPINN):
    """PtychoPINN's PyTorch backend (package `ptycho_torch`), configured through its config factory."""

    name = "ptychopinn-torch"
    # RawDataTorch.generate_grouped_data delegates to the TF RawData's, unchanged.
    shared_code = MappingProxyType({"grouping": "ptycho.raw_data.RawData.generate_grouped_data"})

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        from ptycho_torch.config_factory import create_training_payload

        if data_path is None:
            raise ValueError("ptychopinn-torch: create_training_payload needs the case's data file")
        o = dict(overrides)
        factory = {}
        # Canonical name -> the key create_training_payload takes (it maps neighbor_count to K,
        # max_epochs to epochs itself).
        for ours, theirs in (("gridsize", "gridsize"), ("neighbor_count", "neighbor_count"),
                             ("n_groups", "n_groups"), ("batch_size", "batch_size"), ("epochs", "max_epochs"),
                             ("n_filters_scale", "n_filters_scale"), ("amp_activation", "amp_activation"),
                             ("object_big", "object_big")):
            if ours in o:
                factory[theirs] = o.pop(ours)
        if "loss" in o:
            factory.update(_TORCH_LOSS[o.pop("loss")])
        if o:
            raise ValueError(f"ptychopinn-torch: no factory field for override(s) {sorted(o)}")
        # The factory has no default for n_groups; ptycho_torch/train.py's cli_main passes its
        # --n_images flag, whose default is 512, and object_big = gridsize > 1.
        factory.setdefault("n_groups", 512)
        n = diffraction_size(data_path)
        require_n(n, "ptychopinn-torch resolve_config")
        with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-config-") as out_dir:
            payload = create_training_payload(train_data_file=Path(data_path), output_dir=Path(out_dir),
                                              overrides=factory)
        out = canonical_from_tf_training_config(payload.tf_training_config)
        # Not canonical here: the TF side's learning rate is hard-coded in its model code, not its config.
        out["x.torch.learning_rate"] = float(payload.pt_training_config.learning_rate)
        out["loss"] = {"Poisson": "poisson", "MAE": "mae"}.get(payload.pt_model_config.loss_function,
                                                                 payload.pt_model_config.loss_function)
        out.update(own_fields(payload.tf_training_config, TF_OWN))
        out.update(own_fields(payload.tf_training_config.model, TF_MODEL_OWN))
        out.update({f"x.torch.{k}": _plain(v) for k, v in (
            ("K", payload.pt_data_config.K), ("grid_size", payload.pt_data_config.grid_size),
            ("amp_activation", payload.pt_model_config.amp_activation),
            ("torch_loss_mode", payload.pt_training_config.torch_loss_mode),
            ("physics_forward_mode", payload.pt_model_config.physics_forward_mode),
            ("scale_contract_version", payload.pt_data_config.scale_contract_version))})
        return out

    def load_dataset(self, path) -> dict:
        from ptycho.raw_data import RawData

        # RawData.from_file reads the key 'diff3d' only (KeyError on the harness's 'diffraction', which
        # ptycho.workflows.components.load_data accepts): the file is handed over under their key name.
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        if "diff3d" in arrays:
            return _raw_data_arrays(RawData.from_file(str(path)))
        arrays["diff3d"] = arrays.pop("diffraction")
        with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-data-") as folder:
            renamed = Path(folder) / Path(path).name
            np.savez(renamed, **arrays)
            return _raw_data_arrays(RawData.from_file(str(renamed)))

    def group(self, xcoords, ycoords, config: dict, inference: bool = False) -> dict:
        from ptycho_torch.raw_data_bridge import RawDataTorch

        x, y, gridsize, k, nsamples, seed = _grouping_inputs(xcoords, ycoords, config, inference)
        diff3d, probe, scan_index = _dummy_arrays(x.size)
        with contextlib.redirect_stdout(io.StringIO()):  # RawData prints shapes and DEBUG lines
            raw = RawDataTorch(x, y, diff3d, probe, scan_index)
            grouped = raw.generate_grouped_data(N=_DUMMY_N, K=k, nsamples=nsamples, seed=seed,
                                                sequential_sampling=inference, gridsize=gridsize)
        return canonical_groups(grouped, x, y)

    def translate(self, images, shifts_px):
        import torch
        from ptycho_torch.helper import Translation

        images = np.asarray(images)
        b, c, h, w = images.shape
        dtype = torch.complex64 if np.iscomplexobj(images) else torch.float32
        flat = torch.as_tensor(images.reshape(b * c, h, w)).to(dtype)
        shifts = torch.as_tensor(np.asarray(shifts_px, np.float32).reshape(b * c, 1, 2))  # (x, y)
        with torch.no_grad():
            out = Translation(flat, shifts, jitter_amt=0)  # (B*C, 1, H, W)
        return out.numpy().reshape(b, c, h, w)


def _raw_data_arrays(raw) -> dict:
    """A ptycho.raw_data.RawData as the canonical dataset: diff3d is already (M, N, N)."""
    return {"diffraction": np.asarray(raw.diff3d, np.float32),
            "xcoords": np.asarray(raw.xcoords, np.float64), "ycoords": np.asarray(raw.ycoords, np.float64),
            "probe": np.asarray(raw.probeGuess, np.complex64)}
