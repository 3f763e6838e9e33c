"""Adapters for PtychoPINN's two backends: `ptycho` (TensorFlow) and `ptycho_torch` (PyTorch).

Each adapter calls PtychoPINN's public entry points, the ones its own train command lines use,
and converts names, layouts and dtypes only; no numerics of the harness stand in for theirs.
A stage PtychoPINN has no public entry point for is not declared (n/a in the report, with the reason
given in `unsupported_stages`). PtychoPINN keeps global state in ptycho.params.cfg: see set_legacy_params.

config  TF:    ptycho.config.config.TrainingConfig(model=ModelConfig(...), ...), as
               scripts/training/train.py builds it from its flags (dataclass defaults).
        torch: ptycho_torch.config_factory.create_training_payload(train_data_file, output_dir,
               overrides), exactly as ptycho_torch/train.py's cli_main calls it; the effective
               values are read from payload.tf_training_config (the factory's bridge output),
               with the torch-only fields from payload.pt_*_config under "x.".
data    TF:    ptycho.workflows.components.load_data(path) (scripts/training/train.py).
        torch: ptycho.raw_data.RawData.from_file(path) (ptycho_torch/train.py's cli_main), which
               reads the key 'diff3d' only: given the harness's file ('diffraction') as is, it refuses it.
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

shapes, forward, loss, reconstruction (stitch), cli: see each method's docstring and README.md (the
               stage table).
model, training, bundle: native (`native_weights`): the model stage compares the scales each side
               derives from the scan; each side trains its own network from its own initial weights
               (training.py) and saves, loads and predicts it with its own bundle functions
               (bundles.py). gradients and optimizer are unsupported, with the reason in
               `unsupported_stages`.

Canonical fields with no counterpart in a backend's configuration (seed, adam_epsilon; the TF
side's learning_rate, which lives in its model code, not its config) are left out of that
backend's resolved config rather than filled in from the harness's defaults.

Frameworks are imported inside the methods: the pytest controller never loads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import tempfile
import types
from pathlib import Path
from types import MappingProxyType

import numpy as np

from adapters.base import Adapter
from backends.common.config import make_config
from pinn_parity_ptychopinn.bundles import load_tf, load_torch, predict_tf, predict_torch, save_tf, save_torch
from pinn_parity_ptychopinn.conversions import (
    ACTIVATION_TO_TORCH,
    DUMMY_N,
    TF_LOSS,
    TF_MODEL_OWN,
    TF_OWN,
    TORCH_LOSS,
    bundle_params,
    canonical_from_legacy_params,
    canonical_from_tf_training_config,
    canonical_groups,
    default_nphotons,
    diffraction_size,
    dummy_arrays,
    grouping_inputs,
    harness_cli_args,
    normalized_scan,
    own_fields,
    plain,
    raw_data_arrays,
    require_n,
    run_command,
    set_legacy_params,
    shape_entry,
    stitch_with_reassemble_position,
    tf_config_fields,
    their_flags,
    their_offsets,
    their_script,
    torch_amplitude,
    torch_configs,
    torch_factory_overrides,
    torch_forward_scale,
    with_diff3d_key,
    written_files,
)
from pinn_parity_ptychopinn.optimizers import optimizer_settings_tf, optimizer_settings_torch
from pinn_parity_ptychopinn.training import train_tf, train_torch

TRAINING_SEED = make_config({}).seed
TORCH_STITCH_CROP = 20
"""ptycho_torch.inference's crop of each patch before stitching: getattr(config, 'stitch_crop_size', 20), and no
configuration it builds sets the attribute."""


class _PtychoPINN(Adapter):
    declared_stages = (
        "config",
        "data",
        "grouping",
        "shapes",
        "translation",
        "forward",
        "loss",
        "model",
        "hyperparameters",
        "training",
        "reconstruction",
        "bundle",
        "cli",
    )
    # Each side trains its own network from its own initial weights (pinn_parity_ptychopinn.training).
    native_weights = True
    unsupported_stages = MappingProxyType(
        {
            "gradients": "gradients by canonical weight name: both networks have their own weights, and no public "
            "function of either returns per-weight gradients outside its training step",
            "optimizer": "their optimisers are built inside training (ptycho.model.create_compiled_model's "
            "Adam(1e-3), PtychoPINN_Lightning.configure_optimizers) over their own weights only; "
            "stage hyperparameters compares their settings",
        }
    )
    default_profile = "../profile"

    def train(self, config: dict, data_path, init_weights, max_steps: int) -> dict:
        if init_weights is not None:
            raise ValueError(f"{self.name}: its network cannot load canonical weights (native_weights)")
        # Neither side's config has a seed field: the canonical default seeds both, so reruns repeat.
        out = self.train_native(config, data_path, max_steps, TRAINING_SEED)
        return {"history": out["history"], "state": out["state"]}  # the state: for the bundle stage

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

    train_native = staticmethod(train_tf)
    save_bundle = staticmethod(save_tf)  # the file train.py's model_manager.save wrote after training
    load_bundle = staticmethod(load_tf)  # load_inference_bundle_with_backend, as scripts/inference/inference.py loads

    def predict(self, state, batch) -> dict:
        return predict_tf(state, batch.diffraction, batch.offsets_px)

    def optimizer_settings(self, config, data_path) -> dict:
        """The compiled model's Keras optimiser and ptycho.model.train's schedule
        (pinn_parity_ptychopinn.optimizers)."""
        return optimizer_settings_tf(config, data_path)

    def scales(self, diffraction, probe, amp_activation) -> dict:
        """The input scale of ptycho.raw_data.normalize_data and the intensity scale of
        ptycho.train_pinn.calculate_intensity_scale (sqrt(nphotons) / (N/2), params.cfg's nphotons and N)."""
        from ptycho.train_pinn import calculate_intensity_scale

        n = np.shape(diffraction)[-1]
        normalized, input_scale = normalized_scan(diffraction)
        set_legacy_params(n, 1, False)  # TrainingConfig's defaults: nphotons 1e9, and this N
        # It reads the container's X only to hand it to a formula that ignores it: X is what it needs.
        scale = calculate_intensity_scale(types.SimpleNamespace(X=normalized))
        return {"input_scale": input_scale, "log_intensity_scale": float(np.log(scale))}

    name = "ptychopinn-tf"
    code_under_test = ("ptycho",)
    shared_code = MappingProxyType({"grouping": "ptycho.raw_data.RawData.generate_grouped_data"})

    def stitch(self, patches, xcoords, ycoords) -> dict:
        """ptycho.tf_helper.reassemble_position(M=20), as scripts/inference/inference.py stitches."""
        return stitch_with_reassemble_position(patches, xcoords, ycoords)

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        from ptycho.config.config import ModelConfig, TrainingConfig

        model_kw, train_kw = tf_config_fields(overrides)
        if data_path is not None:
            n = diffraction_size(data_path)
            require_n(n, "ptychopinn-tf resolve_config")
            model_kw["N"] = n
        cfg = TrainingConfig(model=ModelConfig(**model_kw), train_data_file=data_path, **train_kw)
        out = canonical_from_tf_training_config(cfg)
        out.update(own_fields(cfg, TF_OWN))
        out.update(own_fields(cfg.model, TF_MODEL_OWN))
        return out

    def load_dataset(self, path) -> dict:
        from ptycho.workflows.components import load_data

        raw = load_data(str(path))
        return raw_data_arrays(raw)

    def group(self, xcoords, ycoords, config: dict, inference: bool = False) -> dict:
        from ptycho.raw_data import RawData

        x, y, gridsize, k, nsamples, seed = grouping_inputs(xcoords, ycoords, config, inference)
        diff3d, probe, scan_index = dummy_arrays(x.size)
        with contextlib.redirect_stdout(io.StringIO()):
            raw = RawData.from_coords_without_pc(x, y, diff3d, probe, scan_index)
        with contextlib.redirect_stdout(io.StringIO()):  # RawData prints shapes and DEBUG lines
            grouped = raw.generate_grouped_data(
                DUMMY_N, K=k, nsamples=nsamples, seed=seed, sequential_sampling=inference, gridsize=gridsize
            )
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

    def model_shapes(self, config: dict, n: int) -> dict:
        """ptycho.model.create_model_with_gridsize's autoencoder: its inputs, its object output
        ('trimmed_obj') and amplitude output ('pred_amp_scaled'), in canonical layout, and the shape of all
        its trainable weights concatenated (their names have no canonical counterpart)."""
        from ptycho import params
        from ptycho.config.config import ModelConfig, TrainingConfig, update_legacy_dict
        from ptycho.model import create_model_with_gridsize

        require_n(n, "ptychopinn-tf model_shapes")
        gridsize = int(config.get("gridsize", 1))
        model_fields = {k: config[k] for k in ("n_filters_scale", "amp_activation", "object_big") if k in config}
        # the global params.cfg the model factory reads (see set_legacy_params), from this case's config
        update_legacy_dict(params.cfg, TrainingConfig(model=ModelConfig(N=n, gridsize=gridsize, **model_fields)))
        # Their training flow sets intensity_scale from the data before building the model; a shape never
        # depends on its value.
        params.set("intensity_scale", 1.0)
        with contextlib.redirect_stdout(io.StringIO()):
            autoencoder, _ = create_model_with_gridsize(gridsize, n)
        diffraction, positions = autoencoder.inputs  # (B, N, N, C), (B, 1, 2, C)
        obj, amplitude, _ = autoencoder.outputs  # trimmed_obj, pred_amp_scaled, pred_intensity

        def channels_first(t):
            return (1, t.shape[3], t.shape[1], t.shape[2])

        return {
            "input.diffraction": shape_entry(channels_first(diffraction), diffraction.dtype),
            "input.offsets": shape_entry((1, positions.shape[3], 2), positions.dtype),
            "output.object": shape_entry(channels_first(obj), obj.dtype),
            "output.amplitude": shape_entry(channels_first(amplitude), amplitude.dtype),
            "weights.trainable": shape_entry(
                (sum(int(np.prod(w.shape)) for w in autoencoder.trainable_weights),), "float32"
            ),
        }

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        """The layers ptycho.model.create_model_with_gridsize chains after the object ('obj'):
        ReassemblePatchesLayer (object_big) or PadReconstructionLayer, ExtractPatchesPositionLayer,
        ProbeIllumination, PadAndDiffractLayer(pad=False), FlatToChannelLayer; amplitude only."""
        import tensorflow as tf
        from ptycho import params
        from ptycho.custom_layers import (
            ExtractPatchesPositionLayer,
            FlatToChannelLayer,
            PadAndDiffractLayer,
            PadReconstructionLayer,
            ReassemblePatchesLayer,
        )
        from ptycho.model import ProbeIllumination

        patches = np.asarray(object_patches, np.complex64)
        b, c, n, _ = patches.shape
        require_n(n, "ptychopinn-tf forward")
        gridsize = int(round(c**0.5))
        set_legacy_params(n, gridsize, bool(object_big))
        obj = tf.constant(np.moveaxis(patches, 1, -1))  # (B, N, N, C): their channel-last layout
        # coords_relative layout (B, 1, 2, C): row 0 x, row 1 y, their sign
        positions = tf.constant(np.moveaxis(their_offsets(offsets_px), 1, -1)[:, None])
        with contextlib.redirect_stdout(io.StringIO()):  # pad_and_diffract prints shapes
            if object_big:
                padded = ReassemblePatchesLayer(
                    padded_size=params.get_padded_size(), N=n, gridsize=gridsize, dtype=tf.complex64
                )([obj, positions])
            else:
                padded = PadReconstructionLayer(dtype=tf.complex64)(obj)
            flat = ExtractPatchesPositionLayer(jitter=0.0, N=n, gridsize=gridsize, dtype=tf.complex64)(
                [padded, positions]
            )
            illuminated, _ = ProbeIllumination(initial_probe=np.asarray(probe, np.complex64)[..., None], N=n)([flat])
            _, amplitude = PadAndDiffractLayer(h=n, w=n, pad=False)(illuminated)
            amplitude = FlatToChannelLayer(N=n, gridsize=gridsize)(amplitude)
        return {"amplitude": np.ascontiguousarray(np.moveaxis(np.asarray(amplitude, np.float32), -1, 1))}

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        """The loss create_compiled_model compiles: negloglik(X^2, I) for poisson (nll_weight),
        Keras 'mean_absolute_error'(X, g|far field|) for mae (mae_weight), each reduced by Keras's
        default mean over every element; I = (g |far field|)^2 as its 'pred_intensity' output."""
        import tensorflow as tf
        from ptycho.model import negloglik

        g = np.float32(np.exp(np.float64(log_intensity_scale)))
        predicted = tf.constant(g * np.abs(np.asarray(far_field, np.complex64)))  # pred_amp_scaled
        observed = tf.constant(np.asarray(observed_amplitude, np.float32))
        if loss_name == "poisson":
            per_element = negloglik(tf.square(observed), tf.square(predicted))
        elif loss_name == "mae":
            # the function compile(loss='mean_absolute_error') resolves to (mean over the last axis)
            per_element = tf.keras.losses.get("mean_absolute_error")(observed, predicted)
        else:
            raise ValueError(f"ptychopinn-tf: no loss for {loss_name!r}")
        return float(tf.reduce_mean(per_element))

    # canonical field -> scripts/training/train.py's flag (its flags are TrainingConfig/ModelConfig field names)
    CLI_FLAGS = MappingProxyType(
        {
            "gridsize": "--gridsize",
            "neighbor_count": "--neighbor_count",
            "n_groups": "--n_groups",
            "n_filters_scale": "--n_filters_scale",
            "amp_activation": "--amp_activation",
            "batch_size": "--batch_size",
            "epochs": "--nepochs",
            "loss": lambda name: [
                item for field, weight in TF_LOSS[name].items() for item in (f"--{field}", str(weight))
            ],
        }
    )

    def run_train_cli(self, argv) -> dict:
        """scripts/training/train.py (the TF train command line) in a subprocess with the case's flags only;
        its effective configuration is the params.cfg snapshot model_manager.save writes into wts.h5.zip."""
        data, out, given = harness_cli_args(argv)
        script = their_script("training/train.py", self.name)
        run_command(
            [
                sys.executable,
                str(script),
                "--train_data_file",
                str(data),
                "--output_dir",
                str(out),
                *their_flags(given, self.CLI_FLAGS, self.name),
            ],
            "scripts/training/train.py",
            cwd=out,
        )
        return canonical_from_legacy_params(bundle_params(out))

    def run_infer_cli(self, train_output_dir, data_path, output_dir) -> dict:
        """scripts/inference/inference.py --backend tensorflow (its default) on the folder train.py wrote: it reads
        the scan with load_data, so the case's file as it is."""
        script = their_script("inference/inference.py", self.name)
        run_command(
            [
                sys.executable,
                str(script),
                "--model_path",
                str(train_output_dir),
                "--test_data",
                str(data_path),
                "--output_dir",
                str(output_dir),
            ],
            "scripts/inference/inference.py",
            cwd=output_dir,
        )
        return {"files": written_files(output_dir)}


class PtychoPINNTorch(_PtychoPINN):
    """PtychoPINN's PyTorch backend (package `ptycho_torch`), configured through its config factory."""

    train_native = staticmethod(train_torch)
    save_bundle = staticmethod(save_torch)  # the file cli_main's run_cdi_example_torch wrote after training
    load_bundle = staticmethod(load_torch)  # load_inference_bundle_with_backend: the probe is not in the bundle

    def scales(self, diffraction, probe, amp_activation) -> dict:
        """The input scale of ptycho.raw_data.normalize_data (which ptycho_torch's inference applies) and
        ptycho_torch.helper.derive_intensity_scale_from_amplitudes on the normalised scan, as
        workflows.components._attach_physics_scale derives it, with the factory's nphotons (1e9)."""
        import torch
        from ptycho_torch.helper import derive_intensity_scale_from_amplitudes

        normalized, input_scale = normalized_scan(diffraction)
        nphotons = default_nphotons()
        scale = derive_intensity_scale_from_amplitudes(torch.from_numpy(normalized), nphotons)
        return {"input_scale": input_scale, "log_intensity_scale": float(np.log(float(scale)))}

    def predict(self, state, batch) -> dict:
        if state.probe is None:  # loaded from a bundle: their inference takes the probe from the data file
            state = dataclasses.replace(state, probe=batch.probe)
        return predict_torch(state, batch.diffraction, batch.offsets_px)

    def optimizer_settings(self, config, data_path) -> dict:
        """PtychoPINN_Lightning.configure_optimizers on the module their training builds
        (pinn_parity_ptychopinn.optimizers)."""
        return optimizer_settings_torch(config, data_path)

    name = "ptychopinn-torch"
    code_under_test = ("ptycho_torch", "ptycho")
    # Option switches (profile.json "switches"): ModelConfig fields the forward stage's ForwardModel takes.
    options = MappingProxyType(
        {
            "physics_forward_mode": "ModelConfig.physics_forward_mode: 'amplitude' (its default) or "
            "'rectangular_scaled' (RectangularScaledDiffraction: an intensity, whose square root is compared)",
            "patch_weighting": "ptycho_torch.inference's --patch-weighting: 'uniform' (its default) or 'probe' (the "
            "|P|^2-weighted barycentric stitching of ptycho_torch.reassembly)",
        }
    )
    # RawDataTorch.generate_grouped_data delegates to the TF RawData's, unchanged
    shared_code = MappingProxyType({"grouping": "ptycho.raw_data.RawData.generate_grouped_data"})

    def stitch(self, patches, xcoords, ycoords) -> dict:
        """The torch inference command line's stitching (ptycho_torch.inference._run_inference_and_reconstruct,
        its default 'uniform' route): every patch as one channel of one batch, offsets = position - mean position
        in float32, ptycho_torch.helper.reassemble_patches_position_real with crop_size = stitch_crop_size (20) and
        model_config.C_forward = the patch count. Its canvas side S = crop + 2 * even(ceil(max |offset|)) is
        centred on the mean position, so origin_px (x, y) = mean - S/2."""
        import torch
        from ptycho_torch import helper
        from ptycho_torch.config_params import DataConfig, ModelConfig

        patches = torch.from_numpy(np.asarray(patches, np.complex64))
        count, n, _ = patches.shape
        require_n(n, "ptychopinn-torch stitch")
        x = torch.from_numpy(np.asarray(xcoords)).to(torch.float32)
        y = torch.from_numpy(np.asarray(ycoords)).to(torch.float32)
        offsets = torch.stack([x - torch.mean(x), y - torch.mean(y)], dim=-1).reshape(1, count, 1, 2)
        model_config = ModelConfig()
        model_config.C_forward = count
        with torch.no_grad():
            canvas, _, side = helper.reassemble_patches_position_real(
                patches.reshape(1, count, n, n),
                offsets,
                DataConfig(N=n, grid_size=(1, 1)),
                model_config,
                crop_size=min(TORCH_STITCH_CROP, n),
            )
        com = np.array([float(torch.mean(x)), float(torch.mean(y))])
        return {"object": canvas[0].numpy().astype(np.complex64), "origin_px": com - side / 2}

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        from ptycho_torch.config_factory import create_training_payload

        if data_path is None:
            raise ValueError("ptychopinn-torch: create_training_payload needs the case's data file")
        factory = torch_factory_overrides(overrides)
        n = diffraction_size(data_path)
        require_n(n, "ptychopinn-torch resolve_config")
        with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-config-") as out_dir:
            payload = create_training_payload(
                train_data_file=Path(data_path), output_dir=Path(out_dir), overrides=factory
            )
        out = canonical_from_tf_training_config(payload.tf_training_config)
        # Not canonical here: the TF side's learning rate is hard-coded in its model code, not its config.
        out["x.torch.learning_rate"] = float(payload.pt_training_config.learning_rate)
        out["loss"] = {"Poisson": "poisson", "MAE": "mae"}.get(
            payload.pt_model_config.loss_function, payload.pt_model_config.loss_function
        )
        out.update(own_fields(payload.tf_training_config, TF_OWN))
        out.update(own_fields(payload.tf_training_config.model, TF_MODEL_OWN))
        out.update(
            {
                f"x.torch.{k}": plain(v)
                for k, v in (
                    ("K", payload.pt_data_config.K),
                    ("grid_size", payload.pt_data_config.grid_size),
                    ("amp_activation", payload.pt_model_config.amp_activation),
                    ("torch_loss_mode", payload.pt_training_config.torch_loss_mode),
                    ("physics_forward_mode", payload.pt_model_config.physics_forward_mode),
                    ("scale_contract_version", payload.pt_data_config.scale_contract_version),
                )
            }
        )
        return out

    def load_dataset(self, path) -> dict:
        """ptycho.raw_data.RawData.from_file, as ptycho_torch.train's cli_main reads --train_data_file, on the case's
        file as it is: it reads the key 'diff3d' only, so a file that ptycho.workflows.components.load_data (the TF
        side) reads under 'diffraction' is refused here (a split of the data stage; the training and cli stages
        hand torch a copy under 'diff3d' to get past it: with_diff3d_key)."""
        from ptycho.raw_data import RawData

        return raw_data_arrays(RawData.from_file(str(path)))

    def group(self, xcoords, ycoords, config: dict, inference: bool = False) -> dict:
        from ptycho_torch.raw_data_bridge import RawDataTorch

        x, y, gridsize, k, nsamples, seed = grouping_inputs(xcoords, ycoords, config, inference)
        diff3d, probe, scan_index = dummy_arrays(x.size)
        with contextlib.redirect_stdout(io.StringIO()):  # RawData prints shapes and DEBUG lines
            raw = RawDataTorch(x, y, diff3d, probe, scan_index)
            grouped = raw.generate_grouped_data(
                N=DUMMY_N, K=k, nsamples=nsamples, seed=seed, sequential_sampling=inference, gridsize=gridsize
            )
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

    def model_shapes(self, config: dict, n: int) -> dict:
        """ptycho_torch.model.PtychoPINN (the network PtychoPINN_Lightning wraps) with the factory's configs
        (torch_configs; amp_activation mapped back to theirs): forward's inputs, forward_predict's object
        output and forward's amplitude on a batch of one, and all trainable parameters concatenated."""
        import torch
        from ptycho_torch.config_params import TrainingConfig
        from ptycho_torch.model import PtychoPINN

        require_n(n, "ptychopinn-torch model_shapes")
        gridsize = int(config.get("gridsize", 1))
        c = gridsize * gridsize
        model_fields = {}
        if "n_filters_scale" in config:
            model_fields["n_filters_scale"] = int(config["n_filters_scale"])
        if "amp_activation" in config:
            model_fields["amp_activation"] = ACTIVATION_TO_TORCH.get(config["amp_activation"], config["amp_activation"])
        model_config, data_config = torch_configs(
            n, gridsize, bool(config.get("object_big", gridsize > 1)), **model_fields
        )
        network = PtychoPINN(model_config, data_config, TrainingConfig()).eval()
        diffraction = torch.ones((1, c, n, n))
        positions = torch.zeros((1, c, 1, 2))
        probe = torch.ones((1, 1, 1, n, n), dtype=torch.complex64)
        scale = torch.ones((1, 1, 1, 1))
        with torch.no_grad():
            obj = network.forward_predict(diffraction, positions, probe, scale)
            amplitude, _, _ = network(
                diffraction, positions, probe, scale, scale, experiment_ids=torch.zeros(1, dtype=torch.long)
            )
        return {
            "input.diffraction": shape_entry(diffraction.shape, np.float32),
            "input.offsets": shape_entry((1, c, 2), np.float32),
            "output.object": shape_entry(obj.shape, np.complex64 if obj.is_complex() else np.float32),
            "output.amplitude": shape_entry(amplitude.shape, np.float32),
            "weights.trainable": shape_entry(
                (sum(p.numel() for p in network.parameters() if p.requires_grad),), "float32"
            ),
        }

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        """ptycho_torch.model.ForwardModel (output scale 1) with the configs create_training_payload builds
        (torch_configs): amplitude mode, or the physics_forward_mode switched (`options`)."""
        import torch
        from ptycho_torch.model import ForwardModel

        patches = np.asarray(object_patches, np.complex64)
        b, c, n, _ = patches.shape
        require_n(n, "ptychopinn-torch forward")
        gridsize = int(round(c**0.5))
        model_config, data_config = torch_configs(n, gridsize, object_big, **self.switches.options)
        model = ForwardModel(model_config, data_config)
        positions = torch.from_numpy(their_offsets(offsets_px)[:, :, None, :])  # (B, C, 1, 2), their sign
        probe_batch = torch.from_numpy(np.asarray(probe, np.complex64).reshape(1, 1, 1, n, n))  # (1, 1, P=1, N, N)
        with torch.no_grad():
            out = model(torch.from_numpy(patches), None, positions, probe_batch, *torch_forward_scale(b, model_config))
        return {"amplitude": torch_amplitude(out, model_config)}

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        """PtychoPINN_Lightning.compute_loss's unsupervised amplitude path with physics scale 1: its Loss
        module (PoissonLoss: -log Poisson(X^2; (g|far field|)^2) summed over (C, N, N); MAELoss:
        elementwise |.|), .mean(), divided by intensity_norm_factor = mean(X) + 1e-8."""
        import torch
        from ptycho_torch.model import MAELoss, PoissonLoss

        modules = {"poisson": PoissonLoss, "mae": MAELoss}
        if loss_name not in modules:
            raise ValueError(f"ptychopinn-torch: no loss for {loss_name!r}")
        g = np.float32(np.exp(np.float64(log_intensity_scale)))
        predicted = torch.from_numpy(g * np.abs(np.asarray(far_field, np.complex64)))
        observed = torch.from_numpy(np.asarray(observed_amplitude, np.float32))
        with torch.no_grad():
            value = modules[loss_name]()(predicted, observed).mean() / (torch.mean(observed) + 1e-8)
        return float(value)

    # canonical field -> `python -m ptycho_torch.train`'s flag (cli_main's argparse); it has none for
    # neighbor_count, n_filters_scale, amp_activation or object_big.
    CLI_FLAGS = MappingProxyType(
        {
            "gridsize": "--gridsize",
            "n_groups": "--n_images",
            "batch_size": "--batch_size",
            "epochs": "--max_epochs",
            "learning_rate": "--learning-rate",
            "loss": lambda name: ["--torch-loss-mode", TORCH_LOSS[name]["torch_loss_mode"]],
        }
    )

    def run_train_cli(self, argv) -> dict:
        """`python -m ptycho_torch.train` (cli_main) in a subprocess with the case's flags only, plus
        --disable_mlflow (no tracking server here) and --quiet; its effective configuration is the
        params.cfg snapshot its bundle writer puts into wts.h5.zip."""
        data, out, given = harness_cli_args(argv)
        with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-cli-") as folder:
            run_command(
                [
                    sys.executable,
                    "-m",
                    "ptycho_torch.train",
                    "--train_data_file",
                    str(with_diff3d_key(data, folder)),
                    "--output_dir",
                    str(out),
                    *their_flags(given, self.CLI_FLAGS, self.name),
                    "--disable_mlflow",
                    "--quiet",
                ],
                "python -m ptycho_torch.train",
                cwd=out,
            )
        return canonical_from_legacy_params(bundle_params(out))

    def run_infer_cli(self, train_output_dir, data_path, output_dir) -> dict:
        """`python -m ptycho_torch.inference` (its cli_main) on the folder cli_main wrote, --quiet, its stitching
        route as switched (option patch_weighting: left out, so its default 'uniform', or 'probe', the barycentric
        route of ptycho_torch.reassembly); the scan as a diff3d copy, which its RawData.from_file reads."""
        weighting = self.switches.options.get("patch_weighting")
        # the flag only when switched: their command line has it from 712c23f on, and its default is uniform
        route = [] if weighting is None else ["--patch-weighting", weighting]
        with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-infer-") as folder:
            run_command(
                [
                    sys.executable,
                    "-m",
                    "ptycho_torch.inference",
                    "--model_path",
                    str(train_output_dir),
                    "--test_data",
                    str(with_diff3d_key(data_path, folder)),
                    "--output_dir",
                    str(output_dir),
                    *route,
                    "--quiet",
                ],
                "python -m ptycho_torch.inference",
                cwd=output_dir,
            )
        return {"files": written_files(output_dir)}
