"""Mutant adapters: a clean adapter with ONE known bug, to prove the harness can fail.

`python -m parity audit` runs every mutant of MUTANTS against the clean other
backend and checks that the suite fails, and first fails at the stage the
mutant declares (`expected_stage`). A mutant that passes everything means the
harness is blind to that class of bug.

`Mutant` delegates every stage of `adapters.base.Adapter` to a wrapped adapter
(default: the bundled torch_pinn one); a subclass overrides only the stages its bug
touches. The preferred injection is numpy pre/post-processing of a stage's
inputs or outputs (a perturbed shift, a transposed kernel, an unshifted far
field), which works on any adapter. Where the bug lives inside a backend's own
training loop (`DroppedPartialBatch`), the mutant patches one attribute of the
bundled backend's module inside a `with` block (`patched`), which restores it
on every exit, exceptions included; nothing is patched at import time.

Users add mutants without editing this file, by declaring in their package:

    [project.entry-points."pinn_parity.mutants"]
    my_bug = "my_package.mutants:MyBug"

where `MyBug` subclasses `Mutant` (see docs/adding_a_backend.md, "Adding a
mutant"). Frameworks are never imported here, only by the wrapped adapter.
"""

from __future__ import annotations

import argparse
import importlib
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import entry_points

import numpy as np

from adapters import referee
from adapters.base import Adapter, Batch, ModelState, call_resolve_config
from adapters.registry import get_adapter
from backends.common.config import add_config_arguments, make_config
from backends.common.weights import LOG_INTENSITY_SCALE

ENTRY_POINT_GROUP = "pinn_parity.mutants"


class MutantError(LookupError):
    """No mutant of that name, or an entry point that does not give a Mutant subclass."""


class Mutant(Adapter):
    """A wrapped adapter with one injected bug; every stage delegates unless overridden.

    Subclasses set `name` (unique, used in check labels and file names),
    `expected_stage` (the first stage of parity/stages.py that must fail) and a
    one-line `description` of the bug.
    """

    name = "mutant"
    expected_stage: str | None = None
    description = ""

    def __init__(self, inner: Adapter | str = "torch_pinn"):
        self.inner = get_adapter(inner) if isinstance(inner, str) else inner
        self.code_under_test = self.inner.code_under_test
        self.options = self.inner.options  # the wrapped adapter's option switches, which `switched` sets on it

    @property
    def label(self) -> str:
        """`<wrapped adapter>+<mutant>`, e.g. torch_pinn+fft_norm_backward."""
        return f"{self.inner.name}+{self.name}"

    def inner_module(self, name: str):
        """A module of the wrapped bundled backend (`backends.<package>.<name>`), for scoped patches."""
        package = getattr(self.inner, "package", "")
        if not package:
            raise NotImplementedError(
                f"{self.name}: needs a bundled backend (tf_pinn or torch_pinn) to patch, not {self.inner.name!r}"
            )
        return importlib.import_module(f"backends.{package}.{name}")

    # --- delegation: one method per stage of adapters.base.Adapter ---------
    def supported_stages(self) -> tuple[str, ...]:
        """The wrapped adapter's: a mutant delegates every method, so its own overrides say nothing."""
        return self.inner.supported_stages()

    def unsupported_reason(self, stage: str) -> str | None:
        return self.inner.unsupported_reason(stage)

    def switched(self, switches):
        return self.inner.switched(switches)

    def versions(self) -> dict:
        return self.inner.versions()

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        return call_resolve_config(self.inner, overrides, data_path)

    def load_dataset(self, path) -> dict:
        return self.inner.load_dataset(path)

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        return self.inner.group(xcoords, ycoords, config, inference)

    def model_shapes(self, config, n) -> dict:
        return self.inner.model_shapes(config, n)

    def translate(self, images, shifts_px):
        return self.inner.translate(images, shifts_px)

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        return self.inner.forward(object_patches, probe, offsets_px, object_big)

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        return self.inner.loss(far_field, observed_amplitude, log_intensity_scale, loss_name)

    def scales(self, diffraction, probe, amp_activation) -> dict:
        return self.inner.scales(diffraction, probe, amp_activation)

    def initial_weights(self, config, n, log_intensity_scale) -> dict:
        return self.inner.initial_weights(config, n, log_intensity_scale)

    def predict(self, state, batch) -> dict:
        return self.inner.predict(state, batch)

    def gradients(self, state, batch) -> dict:
        return self.inner.gradients(state, batch)

    def optimizer_steps(self, config, weights, grads_per_step) -> dict:
        return self.inner.optimizer_steps(config, weights, grads_per_step)

    def optimizer_settings(self, config, data_path) -> dict:
        return self.inner.optimizer_settings(config, data_path)

    def train(self, config, data_path, init_weights, max_steps) -> dict:
        return self.inner.train(config, data_path, init_weights, max_steps)

    def stitch(self, patches, xcoords, ycoords) -> dict:
        return self.inner.stitch(patches, xcoords, ycoords)

    def reconstruct(self, state, data_path) -> dict:
        return self.inner.reconstruct(state, data_path)

    def save_bundle(self, state, path) -> None:
        return self.inner.save_bundle(state, path)

    def load_bundle(self, path) -> ModelState:
        return self.inner.load_bundle(path)

    def run_train_cli(self, argv) -> dict:
        return self.inner.run_train_cli(argv)

    def run_infer_cli(self, train_output_dir, data_path, output_dir) -> dict:
        return self.inner.run_infer_cli(train_output_dir, data_path, output_dir)


@contextmanager
def patched(module, attribute: str, value):
    """Set `module.attribute` to `value` for the block; the original is back on every exit."""
    original = getattr(module, attribute)
    setattr(module, attribute, value)
    try:
        yield original
    finally:
        setattr(module, attribute, original)


class Harmless(Mutant):
    """Changes nothing: the control run, and what an uncaught mutant looks like."""

    name = "harmless"
    expected_stage = None
    description = "no bug at all (control)"


# --- config: a factory default that differs from the contract --------------


def config_flag_given(argv, field: str) -> bool:
    """Whether the train CLI's `argv` sets config `field` under any of its spellings."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_config_arguments(parser)
    known, _ = parser.parse_known_args(list(argv))
    return getattr(known, field) is not None


class _FactoryDefault(Mutant):
    """The backend's own config factory fills `field` with `value` when the caller leaves it unset."""

    field = ""
    value = None

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        overrides = dict(overrides)
        overrides.setdefault(self.field, self.value)
        return make_config(overrides).to_dict()

    def run_train_cli(self, argv) -> dict:
        argv = list(argv)
        if not config_flag_given(argv, self.field):
            argv += ["--" + self.field.replace("_", "-"), str(self.value)]  # what the buggy factory sets
        return self.inner.run_train_cli(argv)


class NeighborCountDefault(_FactoryDefault):
    name = "neighbor_count_default"
    expected_stage = "config"
    description = "neighbor_count defaults to 6 (not 4) when unset, in the config factory and the CLI"
    field, value = "neighbor_count", 6


class GridsizeDefault(_FactoryDefault):
    name = "gridsize_default"
    expected_stage = "config"
    description = "gridsize defaults to 2 (not 1) when unset, in the config factory and the CLI"
    field, value = "gridsize", 2


# --- grouping: the referee's grouping (docs/spec.md §4) with one flaw around it ---


def seed_among_neighbors(x, y, seeds, k: int) -> np.ndarray:
    """The seed counted among its own K nearest: at distance 0 it comes first, then its K - 1 nearest others."""
    return np.concatenate([seeds[:, None], referee.nearest_others(x, y, seeds, k - 1)], axis=1)


def ties_to_higher_index(x, y, seeds, k: int) -> np.ndarray:
    """referee.nearest_others on the positions in reverse index order: equal distances go to the higher index."""
    last = x.size - 1
    return last - referee.nearest_others(x[::-1], y[::-1], last - seeds, k)


class _FlawedGrouping(Mutant):
    """referee.group_positions with `neighbors` (its K nearest rule) or `stream_seed` (its draws) swapped."""

    neighbors = staticmethod(referee.nearest_others)

    def stream_seed(self, config: dict) -> int:
        """The seed of the grouping's default_rng."""
        return make_config(config).seed

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        config = {**dict(config), "seed": self.stream_seed(config)}
        return referee.group_positions(xcoords, ycoords, config, inference, neighbors=self.neighbors)


class SeedInOwnNeighbors(_FlawedGrouping):
    name = "grouping_seed_included"
    expected_stage = "grouping"
    description = "grouping counts the seed among its own K nearest neighbours"
    neighbors = staticmethod(seed_among_neighbors)


class TiesToHigherIndex(_FlawedGrouping):
    name = "grouping_ties_high"
    expected_stage = "grouping"
    description = "grouping breaks equal distances towards the higher index"
    neighbors = staticmethod(ties_to_higher_index)


class UnseededGrouping(_FlawedGrouping):
    name = "grouping_unseeded"
    expected_stage = "grouping"
    description = "grouping draws seeds and members from a fresh unseeded random stream"

    def stream_seed(self, config: dict) -> int:
        return int(np.random.default_rng().integers(2**63))


class OffsetSignFlipped(Mutant):
    name = "offset_sign"
    expected_stage = "grouping"
    description = "group offsets returned as centre - position (sign flipped)"

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        groups = dict(self.inner.group(xcoords, ycoords, config, inference))
        groups["offsets_px"] = -np.asarray(groups["offsets_px"])
        return groups


# --- model input -------------------------------------------------------------


class ChannelOrderReversed(Mutant):
    name = "channel_order"
    expected_stage = "model"
    description = "grouped diffraction channels reversed before the network, offsets left in order"

    @staticmethod
    def _batch(batch: Batch) -> Batch:
        return Batch(diffraction=np.ascontiguousarray(batch.diffraction[:, ::-1]), offsets_px=batch.offsets_px)

    def predict(self, state, batch) -> dict:
        return self.inner.predict(state, self._batch(batch))

    def gradients(self, state, batch) -> dict:
        return self.inner.gradients(state, self._batch(batch))


# --- physics -----------------------------------------------------------------


class HalfPixelTranslation(Mutant):
    name = "translation_half_pixel"
    expected_stage = "translation"
    description = "bilinear translation shifts by half a pixel too far in x and y"

    def translate(self, images, shifts_px):
        return self.inner.translate(images, np.asarray(shifts_px, np.float64) + 0.5)


class MissingFftshift(Mutant):
    name = "fftshift_missing"
    expected_stage = "forward"
    description = "forward model leaves out the fftshift of the far field"

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        out = self.inner.forward(object_patches, probe, offsets_px, object_big)
        return {key: np.fft.ifftshift(value, axes=(-2, -1)) for key, value in out.items()}


class FftNormBackward(Mutant):
    name = "fft_norm_backward"
    expected_stage = "forward"
    description = "forward FFT normalised 'backward' (unscaled) instead of orthonormal"

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        out = self.inner.forward(object_patches, probe, offsets_px, object_big)
        n = np.asarray(object_patches).shape[-1]  # unscaled 2-D FFT = ortho x sqrt(N * N)
        return {key: (np.asarray(value) * np.float32(n)).astype(np.asarray(value).dtype) for key, value in out.items()}


class ProbeConjugated(Mutant):
    name = "probe_conjugated"
    expected_stage = "forward"
    description = "probe conjugated wherever the forward model uses it"

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        return self.inner.forward(object_patches, np.conj(probe), offsets_px, object_big)

    @staticmethod
    def _state(state: ModelState) -> ModelState:
        return replace(state, probe=np.conj(state.probe))

    def predict(self, state, batch) -> dict:
        return self.inner.predict(self._state(state), batch)

    def gradients(self, state, batch) -> dict:
        return self.inner.gradients(self._state(state), batch)


# --- loss and training ---------------------------------------------------------


class LossSummed(Mutant):
    name = "loss_sum"
    expected_stage = "loss"
    description = "loss reduced by sum over (B, C, N, N) instead of mean"

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        count = np.asarray(observed_amplitude).size
        return self.inner.loss(far_field, observed_amplitude, log_intensity_scale, loss_name) * count

    def gradients(self, state, batch) -> dict:
        out = self.inner.gradients(state, batch)
        count = np.float32(batch.diffraction.size)
        return {"loss": out["loss"] * float(count), "grads": {k: v * count for k, v in out["grads"].items()}}


class AdamEpsilonDefault(Mutant):
    name = "adam_epsilon_1e-8"
    expected_stage = "optimizer"
    description = "Adam built with epsilon 1e-8 (the framework default), ignoring the configured value"

    def optimizer_steps(self, config, weights, grads_per_step) -> dict:
        return self.inner.optimizer_steps({**dict(config), "adam_epsilon": 1e-8}, weights, grads_per_step)

    def optimizer_settings(self, config, data_path) -> dict:
        return self.inner.optimizer_settings({**dict(config), "adam_epsilon": 1e-8}, data_path)

    def train(self, config, data_path, init_weights, max_steps) -> dict:
        return self.inner.train({**dict(config), "adam_epsilon": 1e-8}, data_path, init_weights, max_steps)


class DroppedPartialBatch(Mutant):
    """Patches `batch_order` of the wrapped bundled backend's train module during its train
    call only (a scoped patch, restored on every exit): the bug sits inside the backend's
    own training loop, which no numpy wrapper of the stage's inputs can reach."""

    name = "partial_batch_dropped"
    expected_stage = "training"
    description = "the last partial batch of every epoch is dropped"

    def train(self, config, data_path, init_weights, max_steps) -> dict:
        module = self.inner_module("train")
        original = module.batch_order

        def full_batches_only(n_groups, batch_size, epoch, seed):
            return [b for b in original(n_groups, batch_size, epoch, seed) if len(b) == batch_size]

        with patched(module, "batch_order", full_batches_only):
            return self.inner.train(config, data_path, init_weights, max_steps)


# --- weights, bundle, stitching ------------------------------------------------


def transpose_kernels(weights: dict) -> dict:
    """Canonical weights with every kernel's (kh, kw) swapped; other tensors as they are."""
    return {
        k: (np.ascontiguousarray(np.swapaxes(v, -1, -2)) if k.endswith(".kernel") else v) for k, v in weights.items()
    }


class KernelsTransposed(Mutant):
    """Canonical <-> native kernel conversion swaps height and width in both directions: the
    round trip is the identity (initial weights, bundles look right), the convolutions are not."""

    name = "kernels_transposed"
    expected_stage = "model"
    description = "kernels transposed in height and width when converting canonical weights"

    @staticmethod
    def _state(state: ModelState) -> ModelState:
        return replace(state, weights=transpose_kernels(state.weights))

    def predict(self, state, batch) -> dict:
        return self.inner.predict(self._state(state), batch)

    def gradients(self, state, batch) -> dict:
        out = self.inner.gradients(self._state(state), batch)
        return {"loss": out["loss"], "grads": transpose_kernels(out["grads"])}

    def train(self, config, data_path, init_weights, max_steps) -> dict:
        out = self.inner.train(config, data_path, transpose_kernels(init_weights), max_steps)
        return {**out, "weights": transpose_kernels(out["weights"])}

    def reconstruct(self, state, data_path) -> dict:
        return self.inner.reconstruct(self._state(state), data_path)


class BundleIgnoresIntensityScale(Mutant):
    name = "bundle_intensity_scale"
    expected_stage = "bundle"
    description = "bundle loader ignores the trained intensity scale (log g = 0)"

    def load_bundle(self, path) -> ModelState:
        state = self.inner.load_bundle(path)
        return replace(state, weights={**state.weights, LOG_INTENSITY_SCALE: np.float32(0.0)})


def shift_one_pixel(obj: np.ndarray) -> np.ndarray:
    """The canvas content moved one pixel in +x (zero filled), origin unchanged."""
    obj = np.asarray(obj)
    out = np.zeros_like(obj)
    out[:, 1:] = obj[:, :-1]
    return out


class StitchOnePixelOff(Mutant):
    name = "stitch_one_pixel"
    expected_stage = "reconstruction"
    description = "stitching places every patch one pixel off in x"

    def stitch(self, patches, xcoords, ycoords) -> dict:
        out = self.inner.stitch(patches, xcoords, ycoords)
        return {**out, "object": shift_one_pixel(out["object"])}

    def reconstruct(self, state, data_path) -> dict:
        out = self.inner.reconstruct(state, data_path)
        return {**out, "object": shift_one_pixel(out["object"])}


# name -> class: the audit's mutants, in the order of the audit brief. Explicit, so a typo is an error.
MUTANTS: dict[str, type[Mutant]] = {
    cls.name: cls
    for cls in (
        NeighborCountDefault,
        GridsizeDefault,
        SeedInOwnNeighbors,
        TiesToHigherIndex,
        UnseededGrouping,
        ChannelOrderReversed,
        OffsetSignFlipped,
        HalfPixelTranslation,
        MissingFftshift,
        FftNormBackward,
        ProbeConjugated,
        LossSummed,
        AdamEpsilonDefault,
        DroppedPartialBatch,
        KernelsTransposed,
        BundleIgnoresIntensityScale,
        StitchOnePixelOff,
    )
}


def available() -> dict:
    """name -> Mutant subclass or "module:attribute" (entry points, loaded on use); bundled first."""
    found: dict = dict(MUTANTS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_mutant(name: str) -> type[Mutant]:
    """The Mutant subclass registered as `name` (bundled, or an entry point's)."""
    table = available()
    if name not in table:
        raise MutantError(
            f"no mutant named {name!r}; available: {', '.join(table)} "
            f"(others register under the entry point group '{ENTRY_POINT_GROUP}')"
        )
    target = table[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    if not (isinstance(target, type) and issubclass(target, Mutant)):
        raise MutantError(f"mutant {name!r} ({table[name]}) is not a subclass of adapters.mutants.Mutant")
    if target.name != name:
        raise MutantError(f"mutant registered as {name!r} names itself {target.name!r}; make them equal")
    return target


# --- graded perturbations: how small a bug the current tolerances still see ------


class Perturbation(Mutant):
    """A bug of adjustable size `delta`, for `python -m parity audit --sensitivity`.

    Not in MUTANTS: the audit bisects `delta` for the smallest value its stage's
    checks detect with the tolerances of parity/tolerances.json."""

    stage = ""
    unit = ""

    def __init__(self, inner: Adapter | str = "torch_pinn", delta: float = 0.0):
        super().__init__(inner)
        self.delta = float(delta)


class ShiftPerturbation(Perturbation):
    name = "perturb_translation"
    stage, unit = "translation", "px"
    description = "delta px added to both components of every translation shift"

    def translate(self, images, shifts_px):
        return self.inner.translate(images, np.asarray(shifts_px, np.float64) + self.delta)


class FarFieldScalePerturbation(Perturbation):
    name = "perturb_forward"
    stage, unit = "forward", "relative"
    description = "far field and amplitude scaled by (1 + delta)"

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        out = self.inner.forward(object_patches, probe, offsets_px, object_big)
        return {
            key: (
                np.asarray(value, np.complex128 if np.iscomplexobj(value) else np.float64) * (1.0 + self.delta)
            ).astype(np.asarray(value).dtype)
            for key, value in out.items()
        }


class LossScalePerturbation(Perturbation):
    name = "perturb_loss"
    stage, unit = "loss", "relative"
    description = "loss scaled by (1 + delta)"

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        return self.inner.loss(far_field, observed_amplitude, log_intensity_scale, loss_name) * (1.0 + self.delta)


PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.stage: cls for cls in (ShiftPerturbation, FarFieldScalePerturbation, LossScalePerturbation)
}
