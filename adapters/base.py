"""The one interface the harness talks to: numpy in, numpy out, canonical layout.

Canonical layout (docs/spec.md): images `(B, C, N, N)`, coordinates and
offsets `(B, C, 2)` as (x, y) pixels, weights a flat name -> float32 mapping
with kernels `(out, in, kh, kw)`. Every stage takes its inputs from outside, so
the harness can feed both backends identical inputs and check one stage in
isolation. A stage an adapter cannot do raises NotImplementedError; it never
returns None.

Capabilities are declared up front: `Adapter.supported_stages()` names the stages an
adapter does (by default those whose STAGE_METHODS it overrides). The harness calls an
adapter only for the stages it declares; a stage fewer than two backends declare is
"n/a" (reported apart, never a failure). A stage method that raises NotImplementedError
at run time says the same for its backend (n/a there, with a note to say so in
`unsupported_stages`); only a stage the class names in `declared_stages` and then does
not do is a failure: the declaration lied.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class ModelState:
    """Everything a prediction needs besides its batch, in canonical form."""

    config: dict  # effective configuration (backends.common.config field names)
    weights: dict  # canonical weights, log_intensity_scale included
    probe: np.ndarray  # (N, N) complex64
    input_scale: float  # r of docs/spec.md §5: the network sees r * X


@dataclass(frozen=True)
class Batch:
    """Groups of measured patterns with their offsets."""

    diffraction: np.ndarray  # (B, C, N, N) float32 raw amplitudes
    offsets_px: np.ndarray  # (B, C, 2) float32 (x, y) offsets from the group centre
    # (N, N) complex64, the scan's probe: for a native state that holds none (a system whose bundles
    # leave the probe to the data file, as its inference reads it from there)
    probe: np.ndarray | None = None


@dataclass(frozen=True)
class Switches:
    """The switches a variant case sets for one backend's calls (profile.json "switches", parity.switches)."""

    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """environment variable -> value: in os.environ during each call, restored after."""
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """adapter option (Adapter.options) -> value: in Adapter.switches during each call."""


NO_SWITCHES = Switches()


STAGE_METHODS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "config": ("resolve_config",),
        "data": ("load_dataset",),
        "grouping": ("group",),
        "shapes": ("model_shapes",),
        "translation": ("translate",),
        "forward": ("forward",),
        "loss": ("loss",),
        "model": ("scales", "initial_weights", "predict"),
        "gradients": ("gradients",),
        "optimizer": ("optimizer_steps",),
        "hyperparameters": ("optimizer_settings",),
        "training": ("train",),
        "reconstruction": ("stitch", "reconstruct"),
        "bundle": ("save_bundle", "load_bundle", "predict"),
        "cli": ("run_train_cli", "run_infer_cli"),
    }
)
"""Stage (parity/stages.py order) -> the Adapter methods it calls."""

OWN_FIELD_PREFIX = "x."
"""Effective-config keys starting with this are a backend's own fields (no canonical counterpart)."""


def call_resolve_config(backend, overrides: dict, data_path=None) -> dict:
    """backend.resolve_config(overrides, data_path=data_path), or without data_path for an adapter
    whose resolve_config predates it (takes `overrides` only): both signatures are accepted."""
    try:
        parameters = inspect.signature(backend.resolve_config).parameters
    except (TypeError, ValueError):  # a builtin or C callable: assume the current signature
        parameters = {"data_path": None}
    kinds = {p.kind for p in parameters.values()}
    if "data_path" in parameters or inspect.Parameter.VAR_KEYWORD in kinds:
        return backend.resolve_config(overrides, data_path=data_path)
    if inspect.Parameter.VAR_POSITIONAL in kinds:  # (*args): a wrapper that passes everything on
        return backend.resolve_config(overrides, data_path)
    return backend.resolve_config(overrides)


def _check_stage_names(backend: str, attribute: str, stages) -> None:
    unknown = sorted(set(stages) - set(STAGE_METHODS))
    if unknown:
        raise ValueError(
            f"{backend}: {attribute} names unknown stage(s) {unknown}; stages are {', '.join(STAGE_METHODS)}"
        )


STAGE_MINIMUM: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"reconstruction": ("stitch",), "cli": ("run_train_cli",)}
)
"""Stages an adapter supports with fewer methods than STAGE_METHODS lists. Reconstruction has two
parts: stitching given patches (`stitch`) and the trained model's object (`reconstruct`); `stitch`
alone supports the stage, and only the backends that also override `reconstruct` take part in the
second part (the others are noted n/a there). Likewise cli: the train command line supports it, and
the backends that also override `run_infer_cli` take part in its inference part."""


def overrides(backend, method: str) -> bool:
    """Whether `backend`'s class implements `method` itself rather than inheriting Adapter's stub."""
    return getattr(type(backend), method, None) is not getattr(Adapter, method)


class Adapter:
    """A system under test. Subclasses implement the stages they support."""

    name: str = "unnamed"
    shared_code: Mapping[str, str] = MappingProxyType({})
    """stage -> the one implementation this adapter shares with others there (a dotted name).
    Where every backend of a run names the same one, the report says the stage is shared by
    construction: its checks pass whatever that code does."""

    code_under_test: ClassVar[tuple[str, ...]] = ()
    """The modules of the system under test this adapter drives (e.g. ("ptycho",)): an error raised in them is
    the code's own, one raised in the adapter's module the adapter's (parity.origin), and coverage is
    measured there."""

    declared_stages: ClassVar[tuple[str, ...] | None] = None
    """The stages this adapter supports, said explicitly; None: those whose methods it overrides."""

    unsupported_stages: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """stage -> one line saying why this adapter cannot do it (e.g. the system under test has no public
    entry point there); shown in the stage's n/a note. Only stages it does not support may be named."""
    options: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """The option switches this adapter honours (profile.json "switches" with "option"): name -> one line on
    what its values select. A stage method reads the value in force as self.switches.options.get(name)."""
    switches: Switches = NO_SWITCHES
    """The switches in force for the current call (`switched` sets them); NO_SWITCHES outside variant cases."""
    native_weights: ClassVar[bool] = False
    """True for a system whose networks have their own weights, not the canonical ones (a foreign pair):
    the training stage then calls train(..., init_weights=None, ...), each backend starting from its own
    initial weights, and compares schedules and loss drops instead of trajectories; the model stage
    compares only the scales each backend derives from the data."""

    def supported_stages(self) -> tuple[str, ...]:
        """The stages this adapter does, in pipeline order: `declared_stages` when the class sets it
        (unknown names raise ValueError), else every stage of STAGE_METHODS whose methods (or
        STAGE_MINIMUM's) the class overrides."""
        if self.declared_stages is not None:
            _check_stage_names(self.name, "declared_stages", self.declared_stages)
            supported = tuple(stage for stage in STAGE_METHODS if stage in self.declared_stages)
        else:
            supported = tuple(
                stage
                for stage, methods in STAGE_METHODS.items()
                if all(overrides(self, m) for m in STAGE_MINIMUM.get(stage, methods))
            )
        _check_stage_names(self.name, "unsupported_stages", self.unsupported_stages)
        contradicted = [stage for stage in supported if stage in self.unsupported_stages]
        if contradicted:
            raise ValueError(
                f"{self.name}: unsupported_stages gives a reason for stage(s) {contradicted}, which it supports"
            )
        bad = [
            stage
            for stage, reason in self.unsupported_stages.items()
            if not isinstance(reason, str) or not reason.strip() or "\n" in reason
        ]
        if bad:
            raise ValueError(f"{self.name}: unsupported_stages needs a one-line reason for stage(s) {bad}")
        return supported

    @contextlib.contextmanager
    def switched(self, switches: Switches) -> Iterator[None]:
        """Calls inside run with `switches` set: its environment variables in os.environ, its options in
        self.switches; both restored after. An option this adapter does not list in `options` is a
        ValueError. An adapter whose code reads a switch at some other time than the call (a compiled
        function reads it when traced) overrides this, or the method concerned, to see to it."""
        unknown = sorted(set(switches.options) - set(self.options))
        if unknown:
            raise ValueError(
                f"{self.name}: no option switch {unknown}; its Adapter.options: {sorted(self.options) or 'none'}"
            )
        saved = {name: os.environ.get(name) for name in switches.env}
        previous = self.switches
        os.environ.update(switches.env)
        self.switches = switches
        try:
            yield
        finally:
            self.switches = previous
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def unsupported_reason(self, stage: str) -> str | None:
        """Why this adapter cannot do `stage` (unsupported_stages), or None where it gives no reason."""
        self.supported_stages()  # validates unsupported_stages
        return self.unsupported_stages.get(stage)

    def versions(self) -> dict:
        """Framework name -> version, for env.json and golden manifests."""
        raise NotImplementedError(f"{self.name}: versions")

    # config / data
    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        """Effective configuration for `overrides`, every field, defaults filled in.

        Canonical fields (backends.common.config) by their names; fields of the backend's own
        configuration with no canonical counterpart under the namespace OWN_FIELD_PREFIX
        ("x.<field>"): compared where two backends both have one, noted where only one does.
        `data_path` is the case's data file, for a factory that reads something from it; the
        harness passes it only to adapters whose resolve_config accepts it (call_resolve_config)."""
        raise NotImplementedError(f"{self.name}: stage config")

    def load_dataset(self, path) -> dict:
        """diffraction (M,N,N) float32, xcoords, ycoords (M,) float64, probe (N,N) complex64."""
        raise NotImplementedError(f"{self.name}: stage data")

    # grouping
    def group(self, xcoords: np.ndarray, ycoords: np.ndarray, config: dict, inference: bool = False) -> dict:
        """nn_indices (B,C) int64, coords_px (B,C,2), center_px (B,2), offsets_px (B,C,2)."""
        raise NotImplementedError(f"{self.name}: stage grouping")

    # shapes
    def model_shapes(self, config: dict, n: int) -> dict:
        """name -> [shape, dtype] of the model's inputs, outputs and canonical weights, batch dim B=1."""
        raise NotImplementedError(f"{self.name}: stage shapes")

    # physics
    def translate(self, images: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
        """T(images, shifts) of docs/spec.md §6; images (B,C,H,W) real or complex, shifts (B,C,2)."""
        raise NotImplementedError(f"{self.name}: stage translation")

    def forward(self, object_patches: np.ndarray, probe: np.ndarray, offsets_px: np.ndarray, object_big: bool) -> dict:
        """far_field (B,C,N,N) complex64 and amplitude (B,C,N,N) float32 of docs/spec.md §8."""
        raise NotImplementedError(f"{self.name}: stage forward")

    def loss(
        self, far_field: np.ndarray, observed_amplitude: np.ndarray, log_intensity_scale: float, loss_name: str
    ) -> float:
        raise NotImplementedError(f"{self.name}: stage loss")

    def scales(self, diffraction: np.ndarray, probe: np.ndarray, amp_activation: str) -> dict:
        """input_scale and log_intensity_scale of docs/spec.md §5."""
        raise NotImplementedError(f"{self.name}: stage scales")

    # model
    def initial_weights(self, config: dict, n: int, log_intensity_scale: float) -> dict:
        """The backend's own freshly initialised model, as canonical weights."""
        raise NotImplementedError(f"{self.name}: stage model")

    def predict(self, state: ModelState, batch: Batch) -> dict:
        """object_patches (B,C,N,N) complex64 and amplitude (B,C,N,N) float32 (g * |far field|)."""
        raise NotImplementedError(f"{self.name}: stage model")

    def gradients(self, state: ModelState, batch: Batch) -> dict:
        """loss (float) and grads: canonical name -> float32 array of d loss / d weight."""
        raise NotImplementedError(f"{self.name}: stage gradients")

    def optimizer_steps(self, config: dict, weights: dict, grads_per_step: list) -> dict:
        """Canonical weights after one step of the backend's training optimiser per entry of
        `grads_per_step` (each a canonical name -> gradient mapping), from a fresh optimiser
        state built from `config` (learning_rate, adam_epsilon) exactly as training builds it."""
        raise NotImplementedError(f"{self.name}: stage optimizer")

    def optimizer_settings(self, config: dict, data_path) -> dict:
        """The optimiser the backend's training builds for `config`, read from the object it constructs:
        name (str, its class in lower case: "adam", "adamw", "sgd"), learning_rate, beta1, beta2, epsilon,
        weight_decay (numbers; 0.0 where it applies none) and schedule (str: "constant", or the learning-rate
        scheduler training attaches, e.g. "ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.0001)").
        `data_path` is the case's data file, for a system whose training factory reads it."""
        raise NotImplementedError(f"{self.name}: stage hyperparameters")

    # training and reconstruction
    def train(self, config: dict, data_path, init_weights: dict | None, max_steps: int) -> dict:
        """history (docs/spec.md §10) and weights (canonical) after `max_steps` steps. With native_weights,
        init_weights is None: train the backend's own network from its own initial weights, for about
        `max_steps` steps in whole epochs (at least two), and return the history only: epoch_loss,
        steps_per_epoch, n_groups."""
        raise NotImplementedError(f"{self.name}: stage training")

    def stitch(self, patches: np.ndarray, xcoords: np.ndarray, ycoords: np.ndarray) -> dict:
        """docs/spec.md §11 on given patches: (P,N,N) complex O_ext, (P,) coordinates ->
        object (H,W) complex64 and origin_px (2,)."""
        raise NotImplementedError(f"{self.name}: stage reconstruction (stitch)")

    def reconstruct(self, state: ModelState, data_path) -> dict:
        """object (H,W) complex64 and origin_px (2,) stitched from every position of the file."""
        raise NotImplementedError(f"{self.name}: stage reconstruction")

    # bundle and cli
    def save_bundle(self, state: ModelState, path) -> None:
        raise NotImplementedError(f"{self.name}: stage bundle")

    def load_bundle(self, path) -> ModelState:
        raise NotImplementedError(f"{self.name}: stage bundle")

    def run_train_cli(self, argv: list) -> dict:
        """Run the backend's train command line with `argv`; return its effective_config.json."""
        raise NotImplementedError(f"{self.name}: stage cli")

    def run_infer_cli(self, train_output_dir, data_path, output_dir) -> dict:
        """Run the backend's inference command line on the bundle its train command line wrote into
        `train_output_dir`, reconstructing `data_path` into `output_dir`; return {"files": the names it wrote,
        sorted}. Optional: the cli stage's inference part takes the backends that override it."""
        raise NotImplementedError(f"{self.name}: stage cli (inference command line)")


class CommonContract:
    """Config and dataset stages for backends built on backends.common (mix in before Adapter).

    A team's own backend would resolve configs with its own factory instead: that
    factory is exactly what the config stage exists to check."""

    shared_code = MappingProxyType(
        {"config": "backends.common.config.make_config", "data": "backends.common.dataset.load_dataset"}
    )

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        from backends.common.config import make_config

        return make_config(overrides).to_dict()

    def load_dataset(self, path) -> dict:
        from backends.common.dataset import load_dataset

        ds = load_dataset(path)
        return {"diffraction": ds.diffraction, "xcoords": ds.xcoords, "ycoords": ds.ycoords, "probe": ds.probe}
