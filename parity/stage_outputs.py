"""Stage outputs of each backend on one case: the canonical inputs, and each backend's calls.

The harness feeds every backend identical canonical inputs, made here with
numpy from the case's seed (never by one backend's physics), so that each
stage is checked in isolation: an error in grouping does not hide in the
forward model. Where a stage needs upstream results (group offsets, scales, trained
weights) it takes those of the first backend that supports the producing stage
(parity.case_context.StageInputs), the same for every backend. Outputs are checked
against OUTPUT_KEYS as they come back: a missing, extra or mistyped key is an
OutputError naming it, which the checks report as a failed comparison.
Training and reconstruction are also run chained, each backend from its own
outputs, for the end-to-end view.
"""

from __future__ import annotations

import json
import numbers
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from adapters.base import Adapter, Batch, ModelState, call_resolve_config
from backends.common.dataset import load_dataset, save_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights
from parity.matrix import CLI_ALTERNATIVES, ParityCase, SimulatedData

# The CLI stage trains with flags left out (50 epochs): a scan this small keeps it to one step an epoch.
CLI_DATA = dict(seed=5, n_positions=16, n=16, nphotons=1e4, step=2.0)


@dataclass(frozen=True)
class OutputKeys:
    """The keys of one Adapter method's output mapping, each with the kind of value it must be."""

    required: Mapping[str, str]
    """key -> kind ("array": numpy.ndarray, "number": a real number, "mapping")."""
    optional: Mapping[str, str] = field(default_factory=dict)
    """Keys a backend may leave out: compared where both backends give them, noted otherwise."""


_ARRAY, _NUMBER, _MAPPING, _ANY = "array", "number", "mapping", "any"
_GROUPS = OutputKeys({"nn_indices": _ARRAY, "coords_px": _ARRAY, "center_px": _ARRAY, "offsets_px": _ARRAY})
_OBJECT = OutputKeys({"object": _ARRAY, "origin_px": _ARRAY})
OUTPUT_KEYS: Mapping[str, OutputKeys] = {
    "load_dataset": OutputKeys({"diffraction": _ARRAY, "xcoords": _ARRAY, "ycoords": _ARRAY, "probe": _ARRAY}),
    "group": _GROUPS,
    # a backend may expose the amplitude only: the complex far field is then not compared
    "forward": OutputKeys({"amplitude": _ARRAY}, optional={"far_field": _ARRAY}),
    "scales": OutputKeys({"input_scale": _NUMBER, "log_intensity_scale": _NUMBER}),
    "predict": OutputKeys({"object_patches": _ARRAY, "amplitude": _ARRAY}),
    "gradients": OutputKeys({"loss": _NUMBER, "grads": _MAPPING}),
    "train": OutputKeys({"history": _MAPPING, "weights": _MAPPING}),
    # A pair without canonical weights trains its own networks from their own initial weights:
    # the history (epoch_loss, steps_per_epoch, n_groups; checks.check_training) and, for the bundle
    # stage, the trained state in the backend's own form (saved, loaded and predicted by it alone).
    "train_native": OutputKeys({"history": _MAPPING}, optional={"state": _ANY}),
    "stitch": _OBJECT,
    "reconstruct": _OBJECT,
}
"""Adapter method -> the keys of its output: the one place optional keys are defined."""


class OutputError(ValueError):
    """A backend's output lacks a key, has one too many, or a value of the wrong kind."""


def _kind_ok(value, kind: str) -> bool:
    if kind == _ARRAY:
        return isinstance(value, np.ndarray)
    if kind == _NUMBER:
        return isinstance(value, (numbers.Real, np.ndarray)) and not isinstance(value, bool) and np.ndim(value) == 0
    if kind == _ANY:
        return value is not None
    return isinstance(value, Mapping)


def check_outputs(backend: str, method: str, out):
    """`out` itself when it has OUTPUT_KEYS[method]'s keys, each of the right kind; else OutputError
    naming every missing, extra or mistyped key and what was expected."""
    spec = OUTPUT_KEYS[method]
    expected = {**spec.required, **spec.optional}
    if not isinstance(out, Mapping):
        raise OutputError(f"{backend}.{method}: returned {type(out).__name__}, expected a mapping with keys "
                          f"{sorted(spec.required)}" + (f" (optional {sorted(spec.optional)})" if spec.optional else ""))
    problems = [f"missing key {key!r} (expected {kind})" for key, kind in spec.required.items() if key not in out]
    problems += [f"extra key {key!r} (expected only {sorted(expected)})" for key in out if key not in expected]
    problems += [f"key {key!r} is {type(out[key]).__name__}, expected {kind}"
                 for key, kind in expected.items() if key in out and not _kind_ok(out[key], kind)]
    if problems:
        raise OutputError(f"{backend}.{method}: " + "; ".join(problems))
    return out


def _simulated(d: SimulatedData, path: Path) -> Path:
    """`path`, holding the scan `d` describes (simulated once per work folder)."""
    if not path.exists():
        save_dataset(simulate(d.seed, d.n_positions, d.n, d.nphotons, jitter=d.jitter), path)
    return path


@dataclass
class CaseInputs:
    """Canonical inputs of one case, shared by every backend."""

    case: ParityCase
    workdir: Path

    @cached_property
    def data_path(self) -> Path:
        # The seed is in the name: a seed-shifted case keeps its id (tolerance measurement) and its work folder.
        return _simulated(self.case.data, self.workdir / f"{self.case.id}-seed{self.case.data.seed}.npz")

    @cached_property
    def cli_data_path(self) -> Path:
        """The cli stage's scan: the case's own cli_data (a system that refuses N = 16), else CLI_DATA."""
        if self.case.cli_data is not None:
            return _simulated(self.case.cli_data, self.workdir / f"cli-{self.case.id}-seed{self.case.cli_data.seed}.npz")
        path = self.workdir / "cli-tiny.npz"
        if not path.exists():
            save_dataset(simulate(**CLI_DATA), path)
        return path

    @cached_property
    def dataset(self):
        return load_dataset(self.data_path)

    @property
    def config(self) -> dict:
        return self.case.config.to_dict()

    @property
    def n(self) -> int:
        return self.case.data.n

    @property
    def c(self) -> int:
        return self.case.config.n_channels

    def rng(self, purpose: str) -> np.random.Generator:
        """A numpy stream per purpose, so adding one input never shifts another."""
        return np.random.default_rng([self.case.data.seed, zlib.crc32(purpose.encode())])

    @cached_property
    def translation_inputs(self) -> dict:
        rng, b = self.rng("translation"), self.case.stage_groups
        shape = (b, self.c, self.n, self.n)
        images = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        shifts = rng.uniform(-self.n / 4, self.n / 4, (b, self.c, 2)).astype(np.float32)
        shifts[0, 0] = np.round(shifts[0, 0])  # one integer shift, where the result must be exact
        return {"images": images, "shifts_px": shifts}

    def object_patches(self, purpose: str) -> np.ndarray:
        """Smooth random complex patches inside the support S, like a network's output."""
        rng, b, n = self.rng(purpose), self.case.stage_groups, self.n
        amp = rng.uniform(0.5, 1.0, (b, self.c, n // 2, n // 2))
        phase = rng.uniform(-1.0, 1.0, (b, self.c, n // 2, n // 2))
        patches = np.zeros((b, self.c, n, n), np.complex64)
        patches[..., n // 4: n // 4 + n // 2, n // 4: n // 4 + n // 2] = amp * np.exp(1j * phase)
        return patches

    @cached_property
    def stitch_inputs(self) -> dict:
        """One random complex patch per scan position, at the scan's own coordinates."""
        rng, m, n = self.rng("stitch"), self.dataset.n_positions, self.n
        shape = (m, n, n)
        patches = (rng.uniform(0.5, 1.0, shape) * np.exp(1j * rng.uniform(-1, 1, shape))).astype(np.complex64)
        return {"patches": patches, "xcoords": self.dataset.xcoords, "ycoords": self.dataset.ycoords}

    def batch(self, groups: dict, part: int = 0) -> Batch | None:
        """Groups part·b .. (part+1)·b - 1 of the reference grouping as a batch, b = `stage_groups`
        (the first b by default); None where the grouping has fewer."""
        rows = slice(part * self.case.stage_groups, (part + 1) * self.case.stage_groups)
        idx = groups["nn_indices"][rows]
        if len(idx) < self.case.stage_groups:
            return None
        return Batch(diffraction=self.dataset.diffraction[idx].astype(np.float32),
                     offsets_px=groups["offsets_px"][rows].astype(np.float32),
                     probe=self.dataset.probe)

    def loss_inputs(self, batch: Batch) -> dict:
        """A far field whose predicted amplitude is near the observed one, with noise."""
        rng = self.rng("loss")
        observed = batch.diffraction
        log_g = 0.7
        noise = 1.0 + 0.1 * rng.standard_normal(observed.shape)
        phase = np.exp(1j * rng.uniform(-np.pi, np.pi, observed.shape))
        far = (np.maximum(observed, 0.05) * noise * phase / np.exp(log_g)).astype(np.complex64)
        return {"far_field": far, "observed_amplitude": observed, "log_intensity_scale": log_g}

    @cached_property
    def optimizer_inputs(self) -> dict:
        """Weights (the shared initializer's) and three steps of gradients for the optimiser stage.

        Gradient magnitudes are log-uniform over 1e-9..1e-1 with random signs: where |g| is
        near epsilon, the step depends on epsilon, so a wrong epsilon moves those weights by
        a good part of a learning rate, far beyond float32 rounding."""
        cfg, rng = self.case.config, self.rng("optimizer")
        weights = initial_weights(cfg.seed, cfg.n_filters_scale, 0.7)
        steps = [{name: (rng.choice((-1.0, 1.0), np.shape(w)) * 10.0 ** rng.uniform(-9, -1, np.shape(w)))
                  .astype(np.float32) for name, w in weights.items()} for _ in range(3)]
        return {"weights": weights, "grads_per_step": steps}

    def initial_state(self, scales: dict) -> ModelState:
        cfg = self.case.config
        weights = initial_weights(cfg.seed, cfg.n_filters_scale, scales["log_intensity_scale"])
        return ModelState(config=self.config, weights=weights, probe=self.dataset.probe,
                          input_scale=scales["input_scale"])


@dataclass
class BackendRun:
    """One backend's outputs for one case, with its compute time per stage.

    Calls without an argument (config, data, grouping, shapes, translation, scales,
    own initial weights, optimizer, stitch, cli) are cached_property: computed at most once.
    Calls that take an input (forward, loss, predict, gradients, train, reconstruct,
    bundle, cli_without) run on every call; CaseContext keeps what several stages share (the
    reference's training), and audit.CachedRun memoises them per input."""

    backend: Adapter
    inputs: CaseInputs
    timings: dict = field(default_factory=dict)  # stage -> seconds of backend compute

    def _timed(self, stage: str, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def _checked(self, method: str, out):
        return check_outputs(self.backend.name, method, out)

    @cached_property
    def config(self) -> dict:
        return self._timed("config", call_resolve_config, self.backend, dict(self.inputs.case.overrides),
                           self.inputs.data_path)

    @cached_property
    def data(self) -> dict:
        return self._checked("load_dataset", self._timed("data", self.backend.load_dataset, self.inputs.data_path))

    @cached_property
    def groups(self) -> dict:
        ds = self.inputs.dataset
        return self._checked("group", self._timed("grouping", self.backend.group, ds.xcoords, ds.ycoords,
                                                  self.inputs.config))

    @cached_property
    def inference_groups(self) -> dict:
        ds = self.inputs.dataset
        return self._checked("group", self._timed("grouping", self.backend.group, ds.xcoords, ds.ycoords,
                                                  self.inputs.config, True))

    @cached_property
    def shapes(self) -> dict:
        return self._timed("shapes", self.backend.model_shapes, self.inputs.config, self.inputs.n)

    @cached_property
    def translation(self) -> np.ndarray:
        t = self.inputs.translation_inputs
        return self._timed("translation", self.backend.translate, t["images"], t["shifts_px"])

    def forward(self, offsets_px) -> dict:
        return self._checked("forward", self._timed(
            "forward", self.backend.forward, self.inputs.object_patches("forward"), self.inputs.dataset.probe,
            offsets_px, self.inputs.case.config.object_big))

    def loss(self, loss_inputs: dict) -> float:
        return self._timed("loss", self.backend.loss, loss_inputs["far_field"], loss_inputs["observed_amplitude"],
                           loss_inputs["log_intensity_scale"], self.inputs.case.config.loss)

    @cached_property
    def scales(self) -> dict:
        ds = self.inputs.dataset
        return self._checked("scales", self._timed("model", self.backend.scales, ds.diffraction, ds.probe,
                                                   self.inputs.case.config.amp_activation))

    @cached_property
    def own_initial_weights(self) -> dict:
        return self._timed("model", self.backend.initial_weights, self.inputs.config, self.inputs.n,
                           self.scales["log_intensity_scale"])

    def predict(self, state: ModelState, batch: Batch) -> dict:
        return self._checked("predict", self._timed("model", self.backend.predict, state, batch))

    def gradients(self, state: ModelState, batch: Batch) -> dict:
        return self._checked("gradients", self._timed("gradients", self.backend.gradients, state, batch))

    @cached_property
    def optimizer(self) -> dict:
        o = self.inputs.optimizer_inputs
        return self._timed("optimizer", self.backend.optimizer_steps, self.inputs.config, o["weights"],
                           o["grads_per_step"])

    @cached_property
    def training_config(self) -> dict:
        """The configuration this backend trains with: its own resolved one (the end-to-end path, so a
        default that splits at the config stage shows its effect downstream), or the case's when the
        backend cannot resolve configs (then the config stage reports it)."""
        if "config" not in self.backend.supported_stages():
            return self.inputs.config
        try:
            return self.config
        except Exception:
            return self.inputs.config

    @cached_property
    def native_training(self) -> dict:
        """Training from the backend's own initial weights (Adapter.native_weights), once per case:
        the training stage compares it, the bundle stage saves and loads its state."""
        return self.train(None)

    @property
    def native_state(self):
        out = self.native_training
        if "state" not in out:
            raise OutputError(f"{self.backend.name}.train: returned no 'state' (native_weights): the bundle stage "
                              "saves, loads and predicts the backend's own trained state")
        return out["state"]

    def train(self, init_weights: dict | None) -> dict:
        """Training from the canonical `init_weights`, or, with None, from the backend's own initial weights."""
        return self._checked("train" if init_weights is not None else "train_native",
                             self._timed("training", self.backend.train, self.training_config,
                                         self.inputs.data_path, init_weights, self.inputs.case.train_steps))

    @cached_property
    def stitched(self) -> dict:
        t = self.inputs.stitch_inputs
        return self._checked("stitch", self._timed("reconstruction", self.backend.stitch, t["patches"],
                                                   t["xcoords"], t["ycoords"]))

    def reconstruct(self, state: ModelState) -> dict:
        return self._checked("reconstruct", self._timed("reconstruction", self.backend.reconstruct, state,
                                                        self.inputs.data_path))

    def bundle_roundtrip(self, state: ModelState, path: Path) -> None:
        self._timed("bundle", self.backend.save_bundle, state, path)

    def load_bundle(self, path: Path) -> ModelState:
        return self._timed("bundle", self.backend.load_bundle, path)

    def _train_cli(self, given: dict, label: str) -> dict:
        """The train CLI on the tiny scan with a flag for each of `given` (field -> value) only."""
        out = self.inputs.workdir / f"cli-{self.backend.name}-{self.inputs.case.id}{label}"
        argv = ["--train-data-file", str(self.inputs.cli_data_path), "--output-dir", str(out)]
        for key, value in sorted(given.items()):
            argv += ["--" + key.replace("_", "-"), json.dumps(value) if isinstance(value, bool) else str(value)]
        return self._timed("cli", self.backend.run_train_cli, argv)

    @cached_property
    def cli_config(self) -> dict:
        """Only the case's own overrides become flags: everything else must come out as the default.

        Training adds nothing to this check (effective_config.json is written before it), so
        only cli_sweep cases train (their run leaves every flag out, epochs too); the others add
        `--epochs 0` when the case does not set epochs, and the contract then expects 0."""
        return self._train_cli(self.inputs.case.cli_flags, "")

    def cli_without(self, name: str) -> dict:
        """Effective config of the train CLI with `name`'s flag left out, the others from CLI_ALTERNATIVES."""
        return self._train_cli({k: v for k, v in CLI_ALTERNATIVES.items() if k != name}, f"-without-{name}")
