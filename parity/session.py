"""Per-worker state of a parity run, and the one path every (config, stage) test takes:
inputs, then the stage, then the comparisons that count, then the report.

Framework-free: adapters import their frameworks lazily, on the first stage that needs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import Adapter
from adapters.registry import get_adapter
from backends.common.fileio import atomic_write_json
from parity import baseline as baselines
from parity.case_context import CaseContext, Unsupported, make_context
from parity.golden import GoldenStore
from parity.matrix import ParityCase
from parity.profiles import BUNDLED, Profile
from parity.report import hub as hubs
from parity.report import plots
from parity.report.hub import StageNote
from parity.stage_runner import run_stage
from parity.status import NoteKind
from parity.tolerances import tolerance
from parity.verdict import GOLDEN, REFEREE, Comparison


@dataclass
class ParitySession:
    backends: list
    workdir: Path
    golden_root: Path
    regen: bool
    hub: Path
    worker: str
    contexts: dict = field(default_factory=dict)
    finished_timings: dict = field(default_factory=dict)  # case id -> timings of a released case
    adapters: dict = field(default_factory=dict)
    referee: Adapter | None = None  # the float64 arbiter (adapters/referee.py): always on, numpy only, cheap
    profile: Profile = BUNDLED  # which contract checks count (parity/profiles.py)
    baseline: baselines.Baseline = baselines.EMPTY  # known splits: failures that do not fail a test
    coverage: object | None = None  # a running coverage.py measurement (--parity-coverage), one context per test

    def __post_init__(self):
        self.store = GoldenStore(self.golden_root)
        repeated = sorted({name for name in self.backends if self.backends.count(name) > 1})
        if repeated:
            raise ValueError(f"backend(s) {repeated} listed more than once; each runs under its registered name")
        for name in self.backends:
            self.adapters[name] = get_adapter(name)
        self.referee = get_adapter(REFEREE)

    def context(self, case: ParityCase) -> CaseContext:
        if case.id not in self.contexts:
            self.contexts[case.id] = make_context(case, self.adapters, self.workdir, referee=self.referee)
        return self.contexts[case.id]

    def run(self, case: ParityCase, stage: str) -> list[Comparison]:
        """The comparisons of one (config, stage) that count, written to the hub at once. A stage n/a for
        this case (parity.stage_runner.run_stage) raises Unsupported with the reason."""
        if self.coverage is not None:
            self.coverage.switch(f"{case.id}/{stage}")
        ctx = self.context(case)
        result = run_stage(ctx, stage)
        if result.unsupported:  # n/a: recorded as a note, then the test is skipped with the reason
            hubs.write_part(self.hub, self.worker, [], notes=result.notes)
            raise Unsupported(result.unsupported)
        comparisons = self.profile.accept_refusals(self.contract_checks(stage, result.comparisons))
        if self.profile.applies(GOLDEN, stage):
            comparisons += self.store.judge(
                ctx.case_id,
                stage,
                result.golden_by_backend,
                result.reference or ctx.reference,
                metric=result.golden_metric,
                config=ctx.inputs.config,
                regen=self.regen,
                tol_lookup=tolerance,
                cross_backend_comparisons=[c for c in result.comparisons if c.check.right != GOLDEN],
            )
            differences = self.store.fingerprint_differences(ctx.case_id) if result.golden_by_backend else []
            if differences:
                text = f"golden written on another machine: {'; '.join(differences)}"
                result.notes.append(StageNote(ctx.case_id, stage, NoteKind.FINGERPRINT, text))
        artifacts = hubs.write_part(self.hub, self.worker, comparisons, result.artifacts, result.notes)
        # This config's plots, drawn here while other workers run, not serially by the controller at the end.
        plots.draw_missing(self.hub, [c.to_dict() for c in comparisons], artifacts)
        return comparisons

    def contract_checks(self, stage: str, comparisons) -> list[Comparison]:
        """The comparisons the profile counts: backend against backend always, spec and referee where it opts in."""
        return [c for c in comparisons if self.profile.applies(c.check.right, stage)]

    def assert_passed(self, comparisons) -> None:
        """A (config, stage) test passes when every failure is a known split of the baseline."""
        baselines.assert_passed(comparisons, self.baseline)

    def release(self, case_id: str) -> None:
        """Drop a finished case's context (data, models, trained weights), keeping its timings: a worker
        otherwise holds every case it ran until the end, and its peak grows with the matrix."""
        ctx = self.contexts.pop(case_id, None)
        if ctx is not None:
            self.finished_timings[case_id] = _case_timings(ctx)

    def write_timings(self) -> None:
        """Compute seconds per (case, backend, stage), the referee's included, for `make bench`'s split."""
        timings = dict(self.finished_timings)
        timings.update((cid, _case_timings(ctx)) for cid, ctx in self.contexts.items())
        atomic_write_json(self.hub / "timings" / f"{self.worker}.json", dict(sorted(timings.items())), indent=1)


def _case_timings(ctx: CaseContext) -> dict:
    runs = dict(ctx.runs)
    if ctx.referee is not None:
        runs["referee"] = ctx.referee
    return {name: run.timings for name, run in runs.items()}
