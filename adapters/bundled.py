"""Adapters for the two bundled backends.

Both backends expose the same mirrored API (docs/backend_api.md), so one
adapter class serves both; what differs is only the layout and tensor
conversion, given per backend below. Every number comes from the backend
but one: `predict` reports the amplitude g·|far field| (g = exp(log
intensity scale)), scaled here in numpy from the backend's own far field and
scale, since the models return the far field only. Frameworks are imported
on first use, never at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
from pathlib import Path

import numpy as np

from adapters.base import Adapter, Batch, CommonContract, ModelState
from backends.common.config import make_config
from backends.common.dataset import load_dataset

MODELS_KEPT = 4  # models cached by _model: a case uses two or three (its data's, the 8x8 optimiser probe's)


class BundledAdapter(CommonContract, Adapter):
    """Adapter over `backends.<package>`; subclasses give the layout conversion."""

    package = ""
    channels_last = False

    def __init__(self):
        self._modules = {}
        self._models = {}  # (config JSON, probe sha256, input_scale) -> model; see _model

    def _mod(self, name: str):
        if name not in self._modules:
            self._modules[name] = importlib.import_module(f"backends.{self.package}.{name}")
        return self._modules[name]

    # layout and tensor conversion: the adapter's whole job
    def tensor(self, array):
        raise NotImplementedError

    def numpy(self, tensor) -> np.ndarray:
        raise NotImplementedError

    def to_native(self, images: np.ndarray):
        """(B, C, H, W) numpy -> the backend's image tensor."""
        arr = np.ascontiguousarray(np.transpose(images, (0, 2, 3, 1)) if self.channels_last else images)
        return self.tensor(arr)

    def from_native(self, tensor) -> np.ndarray:
        arr = self.numpy(tensor)
        return np.ascontiguousarray(np.transpose(arr, (0, 3, 1, 2)) if self.channels_last else arr)

    def _model(self, state: ModelState):
        """The backend's model holding `state`. Built once per (config, probe, input scale) and then
        only given new weights: building a Keras model costs more than most stages it serves."""
        self._mod("runtime").configure_determinism(int(state.config["seed"]))
        probe = np.ascontiguousarray(state.probe, np.complex64)
        key = (
            json.dumps(state.config, sort_keys=True),
            hashlib.sha256(probe.tobytes()).hexdigest(),
            float(state.input_scale),
        )
        model = self._models.get(key)
        if model is None:
            model = self._mod("model").create_model(
                make_config(state.config),
                self.tensor(probe),
                float(state.input_scale),
                float(state.weights["log_intensity_scale"]),
                weights=state.weights,
            )
            self._models[key] = model
            while len(self._models) > MODELS_KEPT:  # the oldest first: its case is most likely done
                del self._models[next(iter(self._models))]
        else:
            model.set_canonical_weights(state.weights)
        return model

    def _batch(self, batch: Batch):
        return self.to_native(batch.diffraction.astype(np.float32)), self.tensor(batch.offsets_px.astype(np.float32))

    # stages
    def versions(self) -> dict:
        return self._mod("runtime").framework_versions()

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        groups = self._mod("grouping").group_positions(xcoords, ycoords, make_config(config), inference=inference)
        return {
            "nn_indices": groups.nn_indices,
            "coords_px": groups.coords_px,
            "center_px": groups.center_px,
            "offsets_px": groups.offsets_px,
        }

    def model_shapes(self, config, n) -> dict:
        cfg = make_config(config)
        c = cfg.n_channels
        probe = np.ones((n, n), np.complex64)
        weights = self.initial_weights(config, n, 0.0)
        state = ModelState(config=config, weights=weights, probe=probe, input_scale=1.0)
        batch = Batch(np.ones((1, c, n, n), np.float32), np.zeros((1, c, 2), np.float32))
        shapes = {"input.diffraction": [list(batch.diffraction.shape), str(batch.diffraction.dtype)]}
        for key, value in self.predict(state, batch).items():
            shapes[f"output.{key}"] = [list(value.shape), str(value.dtype)]
        for key, value in weights.items():
            shapes[f"weight.{key}"] = [list(np.shape(value)), str(np.asarray(value).dtype)]
        return shapes

    def translate(self, images, shifts_px):
        out = self._mod("physics").translate(self.to_native(images), self.tensor(shifts_px.astype(np.float32)))
        return self.from_native(out)

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        physics = self._mod("physics")
        obj, prb = self.to_native(object_patches.astype(np.complex64)), self.tensor(probe.astype(np.complex64))
        offsets = self.tensor(offsets_px.astype(np.float32))
        ext = physics.extend_objects(obj, offsets) if object_big else obj
        return {
            "far_field": self.from_native(physics.far_field(ext, prb)),
            "amplitude": self.from_native(physics.forward_model(obj, prb, offsets, object_big)),
        }

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        value = self._mod("loss").compute_loss(
            self.to_native(far_field.astype(np.complex64)),
            self.to_native(observed_amplitude.astype(np.float32)),
            self.tensor(np.float32(log_intensity_scale)),
            loss_name,
        )
        return float(self.numpy(value))

    def scales(self, diffraction, probe, amp_activation) -> dict:
        r, log_g = self._mod("model").compute_scales(diffraction, probe, amp_activation)
        return {"input_scale": float(r), "log_intensity_scale": float(log_g)}

    def initial_weights(self, config, n, log_intensity_scale) -> dict:
        cfg = make_config(config)
        probe = self.tensor(np.ones((n, n), np.complex64))
        model = self._mod("model").create_model(cfg, probe, 1.0, float(log_intensity_scale))
        return model.get_canonical_weights()

    def predict(self, state, batch) -> dict:
        model = self._model(state)
        diffraction, offsets = self._batch(batch)
        far = self.from_native(model.far_field(diffraction, offsets))
        g = np.float32(np.exp(np.float64(state.weights["log_intensity_scale"])))
        return {
            "object_patches": self.from_native(model.object_patches(diffraction)).astype(np.complex64),
            "amplitude": (g * np.abs(far)).astype(np.float32),
        }

    def gradients(self, state, batch) -> dict:
        loss, grads = self._mod("train").loss_and_gradients(self._model(state), *self._batch(batch))
        return {"loss": float(loss), "grads": grads}

    def optimizer_steps(self, config, weights, grads_per_step) -> dict:
        train = self._mod("train")
        probe = np.ones((8, 8), np.complex64)  # the optimiser never reads the probe or the scale
        model = self._model(ModelState(config=config, weights=weights, probe=probe, input_scale=1.0))
        optimizer = train.make_optimizer(model, make_config(config))
        for grads in grads_per_step:
            train.apply_gradients(model, optimizer, grads)
        return model.get_canonical_weights()

    def optimizer_settings(self, config, data_path) -> dict:
        cfg, train = make_config(config), self._mod("train")
        probe = self.tensor(np.ones((8, 8), np.complex64))  # the optimiser never reads the probe or the scales
        model = self._mod("model").create_model(cfg, probe, 1.0, 0.0)
        return train.optimizer_settings(train.make_optimizer(model, cfg))

    def train(self, config, data_path, init_weights, max_steps) -> dict:
        result = self._mod("train").train(
            make_config(config), load_dataset(data_path), init_weights=init_weights, max_steps=max_steps
        )
        return {"history": result.history, "weights": result.model.get_canonical_weights()}

    def stitch(self, patches, xcoords, ycoords) -> dict:
        obj, origin = self._mod("stitch").stitch_patches(
            self.tensor(patches.astype(np.complex64)), np.asarray(xcoords, np.float64), np.asarray(ycoords, np.float64)
        )
        return {"object": np.asarray(obj, np.complex64), "origin_px": np.asarray(origin, np.float64)}

    def reconstruct(self, state, data_path) -> dict:
        obj, origin = self._mod("stitch").reconstruct(self._model(state), load_dataset(data_path))
        return {"object": np.asarray(obj, np.complex64), "origin_px": np.asarray(origin, np.float64)}

    def save_bundle(self, state, path) -> None:
        self._mod("bundle").save_bundle(self._model(state), path)

    def load_bundle(self, path) -> ModelState:
        model = self._mod("bundle").load_bundle(path)
        return ModelState(
            config=model.config.to_dict(),
            weights=model.get_canonical_weights(),
            probe=np.asarray(self.numpy(model.probe), np.complex64),
            input_scale=float(model.input_scale),
        )

    def run_train_cli(self, argv) -> dict:
        argv = list(argv)
        printed = io.StringIO()  # the CLI's "wrote ..." lines would fill the parity run's log
        with contextlib.redirect_stdout(printed):
            rc = self._mod("cli").train_main(argv)
        if rc != 0:
            raise RuntimeError(f"{self.name} train CLI exited {rc} for argv {argv}; it printed: {printed.getvalue()}")
        out = Path(argv[argv.index("--output-dir") + 1])
        return json.loads((out / "effective_config.json").read_text())

    def run_infer_cli(self, train_output_dir, data_path, output_dir) -> dict:
        argv = ["--bundle", str(Path(train_output_dir) / "bundle.zip"), "--data-file", str(data_path)]
        argv += ["--output-dir", str(output_dir)]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            rc = self._mod("cli").infer_main(argv)
        if rc != 0:
            raise RuntimeError(f"{self.name} infer CLI exited {rc} for argv {argv}; it printed: {printed.getvalue()}")
        return {"files": sorted(p.name for p in Path(output_dir).iterdir())}


class TfPinnAdapter(BundledAdapter):
    """backends/tf_pinn: channels-last tensors."""

    name = "tf_pinn"
    package = "tf_pinn"
    code_under_test = ("backends.tf_pinn", "backends.common")
    channels_last = True

    def tensor(self, array):
        import tensorflow as tf

        return tf.constant(np.asarray(array))

    def numpy(self, tensor) -> np.ndarray:
        return np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)


class TorchPinnAdapter(BundledAdapter):
    """backends/torch_pinn: channels-first tensors."""

    name = "torch_pinn"
    package = "torch_pinn"
    code_under_test = ("backends.torch_pinn", "backends.common")
    channels_last = False

    def tensor(self, array):
        import torch

        return torch.from_numpy(np.array(array, copy=True))

    def numpy(self, tensor) -> np.ndarray:
        if hasattr(tensor, "detach"):
            return tensor.detach().cpu().numpy()
        return np.asarray(tensor)
