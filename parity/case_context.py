"""A case as the stage checks see it: its canonical inputs, one run per backend, and the inputs
stages take from upstream stages (from the first backend able to make them).

`make_context` is the one way to build it (the session, the audit and the tolerance measurer use
it); the stage modules under parity/stages/ read it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from adapters.base import Adapter, Batch, ModelState
from backends.common.dataset import load_dataset, save_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights
from parity.backend_run import BackendRun
from parity.matrix import ParityCase, SimulatedData
from parity.origin import Places
from parity.stages import pipeline
from parity.verdict import REFEREE

# The CLI stage trains with flags left out (50 epochs): a scan this small keeps it to one step an epoch.
CLI_DATA = dict(seed=5, n_positions=16, n=16, nphotons=1e4, step=2.0)


class UpstreamFailed(RuntimeError):
    """A stage needs an output that the backend producing it could not produce (a failure)."""


class NotImplementedHere(Exception):
    """A backend raised NotImplementedError at a stage it does not name in `declared_stages`: in Python that
    says "not implemented", so the backend lacks the stage (n/a for it), it is not a failure."""

    def __init__(self, backend: str, error: NotImplementedError):
        super().__init__(f"{backend}: {error}")
        self.backend, self.error = backend, error


class Unsupported(Exception):
    """A stage (or part of one) fewer than two backends support, or whose input no backend can
    produce: "n/a", reported apart, never a failure."""


@dataclass
class StageResult:
    """What a stage's check gives the session: verdicts, golden data, plot artifacts, notes."""

    comparisons: list = field(default_factory=list)
    # backend -> its data for the golden check; the reference's entry is what --force-regen blesses
    golden_by_backend: dict = field(default_factory=dict)
    golden_metric: str = "max_abs"
    artifacts: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # parity.report.hub.StageNote: facts beside the comparisons
    reference: str | None = None  # the stage's reference: the first backend that supports it
    unsupported: str | None = None  # why the stage is n/a for this config (then no comparison ran)


def _simulated(d: SimulatedData, path: Path) -> Path:
    """`path`, holding the scan `d` describes (simulated once per work folder)."""
    if not path.exists():
        save_dataset(simulate(d.seed, d.n_positions, d.n, d.nphotons, jitter=d.jitter), path)
    return path


@dataclass
class CanonicalInputs:
    """The inputs of one case that need no backend, made with numpy from the case's seed and shared by
    every backend, so each stage is checked in isolation. A stage module makes its own (`kept`)."""

    case: ParityCase
    workdir: Path
    _kept: dict = field(default_factory=dict, repr=False)

    @cached_property
    def data_path(self) -> Path:
        # The seed is in the name: a seed-shifted case keeps its id (tolerance measurement) and its work folder.
        return _simulated(self.case.data, self.workdir / f"{self.case.id}-seed{self.case.data.seed}.npz")

    @cached_property
    def cli_data_path(self) -> Path:
        """The cli stage's scan: the case's own cli_data (a system that refuses N = 16), else CLI_DATA."""
        if self.case.cli_data is not None:
            return _simulated(
                self.case.cli_data, self.workdir / f"cli-{self.case.id}-seed{self.case.cli_data.seed}.npz"
            )
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

    def kept(self, purpose: str, make: Callable[[CanonicalInputs], object]):
        """make(self), made once per case: every backend gets the very same input."""
        if purpose not in self._kept:
            self._kept[purpose] = make(self)
        return self._kept[purpose]

    def batch(self, groups: dict, part: int = 0) -> Batch | None:
        """Groups part·b .. (part+1)·b - 1 of the reference grouping as a batch, b = `stage_groups`
        (the first b by default); None where the grouping has fewer."""
        rows = slice(part * self.case.stage_groups, (part + 1) * self.case.stage_groups)
        idx = groups["nn_indices"][rows]
        if len(idx) < self.case.stage_groups:
            return None
        return Batch(
            diffraction=self.dataset.diffraction[idx].astype(np.float32),
            offsets_px=groups["offsets_px"][rows].astype(np.float32),
            probe=self.dataset.probe,
        )

    def initial_state(self, scales: dict) -> ModelState:
        """The shared initializer's weights (docs/spec.md §7) with `scales`, in canonical form."""
        cfg = self.case.config
        weights = initial_weights(cfg.seed, cfg.n_filters_scale, scales["log_intensity_scale"])
        return ModelState(
            config=self.config, weights=weights, probe=self.dataset.probe, input_scale=scales["input_scale"]
        )


Producer = Callable[[BackendRun, "UpstreamInputs"], object]


class UpstreamInputs:
    """What stages take from upstream stages, shared by every stage of one case.

    Each product comes from the first backend (in --parity-backends order) that supports the stage
    producing it (a Stage's `produces`): group offsets from grouping, scales from model, trained
    weights from training. Grouping and scales fall back to the float64 referee (the contract's
    grouping and scales: harness-side numpy); trained weights have no fallback, so without a backend
    that trains, the stages needing them are n/a. A producer that declares the stage but raises is
    UpstreamFailed: a failure."""

    FALLBACK = ("grouping", "model")  # producing stages the referee can stand in for

    def __init__(
        self,
        inputs: CanonicalInputs,
        runs: Mapping[str, BackendRun],
        referee: BackendRun | None,
        producers: Mapping[str, tuple[str, Producer]],
    ):
        self.inputs, self.runs, self.referee = inputs, dict(runs), referee
        self.producers = producers  # product -> (the stage making it, how)
        self._made, self._later_batches = {}, {}

    def producer(self, stage: str) -> tuple[str, BackendRun] | None:
        """(name, run) of the first backend supporting `stage`, else the referee where it may stand in."""
        for name, run in self.runs.items():
            if stage in run.adapter.supported_stages():
                return name, run
        if stage in self.FALLBACK and self.referee is not None:
            return REFEREE, self.referee
        return None

    def _product(self, product: str):
        if product not in self._made:
            stage, make = self.producers[product]
            found = self.producer(stage)
            if found is None:
                raise Unsupported(f"no backend supports {stage}, which produces the {product} this stage needs")
            name, run = found
            try:
                self._made[product] = make(run, self)
            except Exception as exc:
                raise UpstreamFailed(
                    f"backend {name!r} (the first that supports {stage}) could not produce "
                    f"{product}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._made[product]

    @property
    def groups(self) -> dict:
        return self._product("group offsets")

    @property
    def batch(self) -> Batch:
        return self.later_batch(0)

    def later_batch(self, part: int) -> Batch | None:
        """Groups part·b .. (part+1)·b - 1, b = `stage_groups` (None where there are too few): the first is the
        isolated stages' batch, the next ones the gradients stage's further points."""
        if part not in self._later_batches:
            self._later_batches[part] = self.inputs.batch(self.groups, part=part)
        return self._later_batches[part]

    @property
    def scales(self) -> dict:
        return self._product("scales")

    @cached_property
    def initial_state(self) -> ModelState:
        return self.inputs.initial_state(self.scales)

    @property
    def training(self) -> dict:
        return self._product("trained weights")

    @cached_property
    def trained_state(self) -> ModelState:
        return replace_weights(self.initial_state, self.training["weights"])


def replace_weights(state: ModelState, weights: dict) -> ModelState:
    return ModelState(config=state.config, weights=weights, probe=state.probe, input_scale=state.input_scale)


@dataclass
class CaseContext:
    """One case as every stage check sees it; made by make_context. run_stage gives each check the
    context of the backends that support its stage (`only`), the first the reference."""

    inputs: CanonicalInputs
    runs: dict  # backend name -> BackendRun, reference first
    upstream: UpstreamInputs
    referee: BackendRun | None = None  # the float64 arbiter of the stages with `referee`; None: no referee checks

    def against(self, adapter: Adapter) -> CaseContext:
        """This case with `adapter` as the only other backend: the same inputs, and the same
        reference and referee runs (so what they computed is reused)."""
        runs = {self.reference: self.ref_run, adapter.name: BackendRun(adapter=adapter, inputs=self.inputs)}
        return CaseContext(
            inputs=self.inputs,
            runs=runs,
            referee=self.referee,
            upstream=UpstreamInputs(self.inputs, runs, self.referee, self.upstream.producers),
        )

    def only(self, names) -> CaseContext:
        """The same case compared between `names` only (in this context's order), same upstream inputs."""
        return CaseContext(
            inputs=self.inputs,
            runs={n: r for n, r in self.runs.items() if n in names},
            referee=self.referee,
            upstream=self.upstream,
        )

    def supporting(self, stage: str) -> list[str]:
        return [name for name, run in self.runs.items() if stage in run.adapter.supported_stages()]

    @cached_property
    def places(self) -> Places:
        """Whose files are whose (parity.origin): for telling where an error was raised."""
        adapters = [run.adapter for run in self.runs.values()]
        return Places.of(adapters + ([self.referee.adapter] if self.referee is not None else []))

    @property
    def case(self) -> ParityCase:
        return self.inputs.case

    @property
    def case_id(self) -> str:
        return self.inputs.case.id

    @property
    def reference(self) -> str:
        return next(iter(self.runs))

    @property
    def ref_run(self) -> BackendRun:
        return self.runs[self.reference]

    def others(self):
        return [(name, run) for name, run in self.runs.items() if name != self.reference]

    @property
    def batch(self) -> Batch:
        return self.upstream.batch

    @property
    def initial_state(self) -> ModelState:
        return self.upstream.initial_state


def make_context(
    case: ParityCase, adapters: Mapping[str, Adapter], workdir: Path, *, referee: Adapter | None = None, run=BackendRun
) -> CaseContext:
    """The context of one case: its canonical inputs (data written under `workdir`), one run per
    adapter (the first is the reference), and the referee's run when one is given.

    `run(adapter=..., inputs=...)` makes each run: BackendRun, or a subclass that keeps more
    (audit.CachedRun). What upstream stages produce comes from the pipeline's `produces`."""
    inputs = CanonicalInputs(case=case, workdir=Path(workdir))
    runs = {name: run(adapter=adapter, inputs=inputs) for name, adapter in adapters.items()}
    referee_run = None if referee is None else run(adapter=referee, inputs=inputs)
    producers = {product: (stage.name, make) for stage in pipeline() for product, make in stage.produces.items()}
    return CaseContext(
        inputs=inputs, runs=runs, referee=referee_run, upstream=UpstreamInputs(inputs, runs, referee_run, producers)
    )
