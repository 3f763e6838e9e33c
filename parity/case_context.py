"""A case as the stage checks see it: its canonical inputs, one run per backend, and the
inputs stages take from upstream stages (from the first backend able to make them).

`make_context` is the one way to build it (the session, the audit and the tolerance
measurer use it); parity/checks.py holds the checks that read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from adapters.base import Adapter, ModelState
from parity.comparison import REFEREE
from parity.matrix import ParityCase
from parity.stage_outputs import BackendRun, CaseInputs


class UpstreamFailed(RuntimeError):
    """A stage needs an output that the backend producing it could not produce (a failure)."""


class Unsupported(Exception):
    """A stage (or part of one) fewer than two backends support, or whose input no backend can
    produce: "n/a", reported apart, never a failure."""


@dataclass
class StageResult:
    comparisons: list = field(default_factory=list)
    # backend -> its data for the golden check; the reference's entry is what --force-regen blesses
    golden_by_backend: dict = field(default_factory=dict)
    golden_metric: str = "max_abs"
    artifacts: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # parity.report.hub.StageNote: facts beside the comparisons
    reference: str | None = None  # the stage's reference: the first backend that supports it
    unsupported: str | None = None  # why the stage is n/a for this config (then no comparison ran)


class StageInputs:
    """What stages take from upstream stages, shared by every stage of one case.

    Each input comes from the first backend (in --parity-backends order) that supports the
    stage producing it: group offsets from "grouping", scales from "model" (its `scales`
    method), trained weights from "training". Grouping and scales fall back to the float64
    referee (the contract's grouping and scales: harness-side, like CaseInputs); trained
    weights have no fallback, so without a backend that trains, the stages needing them are
    n/a. A producer that declares the stage but raises is UpstreamFailed: a failure."""

    FALLBACK = ("grouping", "model")  # producing stages the referee can stand in for

    def __init__(self, inputs: CaseInputs, runs: Mapping[str, BackendRun], referee: BackendRun | None):
        self.inputs, self.runs, self.referee = inputs, dict(runs), referee
        self._later_batches = {}

    def producer(self, stage: str) -> tuple[str, BackendRun] | None:
        """(name, run) of the first backend supporting `stage`, else the referee where it may stand in."""
        for name, run in self.runs.items():
            if stage in run.backend.supported_stages():
                return name, run
        if stage in self.FALLBACK and self.referee is not None:
            return REFEREE, self.referee
        return None

    def fetch(self, label: str, stage: str, fn):
        found = self.producer(stage)
        if found is None:
            raise Unsupported(f"no backend supports {stage}, which produces the {label} this stage needs")
        name, run = found
        try:
            return fn(run)
        except Exception as exc:
            raise UpstreamFailed(f"backend {name!r} (the first that supports {stage}) could not produce {label}: "
                                 f"{type(exc).__name__}: {exc}") from exc

    @cached_property
    def groups(self) -> dict:
        return self.fetch("group offsets", "grouping", lambda run: run.groups)

    @cached_property
    def batch(self):
        return self.inputs.batch(self.groups)

    def later_batch(self, part: int):
        """Groups part·b .. (part+1)·b - 1, b = `stage_groups` (None where there are too few): the gradients
        stage's further points."""
        if part not in self._later_batches:
            self._later_batches[part] = self.inputs.batch(self.groups, part=part)
        return self._later_batches[part]

    @cached_property
    def scales(self) -> dict:
        return self.fetch("scales", "model", lambda run: run.scales)

    @cached_property
    def initial_state(self) -> ModelState:
        return self.inputs.initial_state(self.scales)

    @cached_property
    def training(self) -> dict:
        return self.fetch("trained weights", "training", lambda run: run.train(self.initial_state.weights))

    @cached_property
    def trained_state(self) -> ModelState:
        return ModelState(config=self.initial_state.config, weights=self.training["weights"],
                          probe=self.initial_state.probe, input_scale=self.initial_state.input_scale)


@dataclass
class CaseContext:
    """One case as every stage check sees it; made by make_context. run_stage gives each check
    the context of the backends that support its stage (`for_stage`), the first the reference."""

    inputs: CaseInputs
    runs: dict  # backend name -> BackendRun, reference first
    referee: BackendRun | None = None  # the float64 arbiter of REFEREE_STAGES; None: no referee checks
    upstream_inputs: StageInputs | None = None  # None: made from `runs` (shared by for_stage's contexts)

    def __post_init__(self):
        if self.upstream_inputs is None:
            self.upstream_inputs = StageInputs(self.inputs, self.runs, self.referee)

    def against(self, adapter: Adapter) -> "CaseContext":
        """This case with `adapter` as the only other backend: the same inputs, and the same
        reference and referee runs (so what they computed is reused)."""
        return CaseContext(inputs=self.inputs, runs={self.reference: self.ref_run,
                                                     adapter.name: BackendRun(backend=adapter, inputs=self.inputs)},
                           referee=self.referee)

    def only(self, names) -> "CaseContext":
        """The same case compared between `names` only (in this context's order), same upstream inputs."""
        return CaseContext(inputs=self.inputs, runs={n: r for n, r in self.runs.items() if n in names},
                           referee=self.referee, upstream_inputs=self.upstream_inputs)

    def supporting(self, stage: str) -> list[str]:
        return [name for name, run in self.runs.items() if stage in run.backend.supported_stages()]

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
    def ref_groups(self) -> dict:
        return self.upstream_inputs.groups

    @property
    def batch(self):
        return self.upstream_inputs.batch

    def later_batch(self, part: int):
        return self.upstream_inputs.later_batch(part)

    @property
    def ref_scales(self) -> dict:
        return self.upstream_inputs.scales

    @property
    def initial_state(self) -> ModelState:
        return self.upstream_inputs.initial_state

    @property
    def ref_training(self) -> dict:
        return self.upstream_inputs.training

    @property
    def trained_state(self) -> ModelState:
        return self.upstream_inputs.trained_state


def make_context(case: ParityCase, adapters: Mapping[str, Adapter], workdir: Path, *,
                 referee: Adapter | None = None, run=BackendRun) -> CaseContext:
    """The context of one case: its canonical inputs (data written under `workdir`), one run per
    adapter (the first is the reference), and the referee's run when one is given.

    `run(backend=..., inputs=...)` makes each run: BackendRun, or a subclass that caches more
    (audit.CachedRun)."""
    inputs = CaseInputs(case=case, workdir=Path(workdir))
    runs = {name: run(backend=adapter, inputs=inputs) for name, adapter in adapters.items()}
    referee_run = None if referee is None else run(backend=referee, inputs=inputs)
    return CaseContext(inputs=inputs, runs=runs, referee=referee_run)
