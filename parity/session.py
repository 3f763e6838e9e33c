"""Per-worker state of a parity run: adapters, case contexts, goldens, hub parts.

Framework-free: adapters import their frameworks lazily, on the first stage
that needs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import Adapter
from adapters.registry import get_adapter
from backends.common.fileio import atomic_write_json, installed_versions
from parity.report import hub as hubs
from parity.report import plots
from parity.case_context import CaseContext, StageResult, Unsupported, make_context
from parity.checks import REFEREE, run_stage
from parity.comparators import error_comparison
from parity.comparison import GOLDEN, Check, Comparison
from parity.golden import GoldenError, GoldenRefused, GoldenStore
from parity.matrix import ParityCase
from parity.tolerances import tolerance
from parity import baseline as baselines
from parity.profiles import BUNDLED, Profile


@dataclass
class ParitySession:
    backends: list
    workdir: Path
    golden_root: Path
    regen: bool
    hub: Path
    worker: str
    contexts: dict = field(default_factory=dict)
    adapters: dict = field(default_factory=dict)
    referee: Adapter | None = None  # the float64 arbiter (adapters/referee.py): always on, numpy only, cheap
    profile: Profile = BUNDLED  # which contract checks count (parity/profiles.py)
    baseline: baselines.Baseline = baselines.EMPTY  # known splits: failures that do not fail a test

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
        """Cross-backend checks, then goldens (blessed first under --force-regen); parts written at once.
        A stage n/a for this case (parity.checks.run_stage) raises Unsupported with the reason."""
        ctx = self.context(case)
        result = run_stage(ctx, stage)
        if result.unsupported:  # n/a: recorded as a note, then the test is skipped with the reason
            hubs.write_part(self.hub, self.worker, [], notes=result.notes)
            raise Unsupported(result.unsupported)
        comparisons = self.contract_checks(stage, result.comparisons)
        if self.profile.applies(GOLDEN, stage):
            comparisons += self._golden(ctx, stage, result)
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

    def _golden(self, ctx: CaseContext, stage: str, result: StageResult) -> list[Comparison]:
        reference = result.reference or ctx.reference  # the stage's: the first backend that supports it
        golden = result.golden_by_backend.get(reference)  # the reference's data is what a golden holds
        if golden is None:
            return []
        config = ctx.inputs.config
        out = []
        if self.regen:
            cross = [c for c in result.comparisons if c.check.right != GOLDEN]
            info = {"config": config, "framework_versions": installed_versions(),
                    "reference_backend": reference}
            try:
                path = self.store.bless(ctx.case_id, stage, golden, cross, info)
            except (GoldenRefused, GoldenError) as exc:
                return [error_comparison(config_id=ctx.case_id, stage=stage, check=Check(reference, GOLDEN),
                                         metric="regen", error=exc)]
            out.append(Comparison(config_id=ctx.case_id, stage=stage, check=Check(reference, GOLDEN),
                                  metric="regenerated", passed=True, kind="exact", measured={}, tolerance=None,
                                  worst=None, message=f"[{ctx.case_id}] stage {stage}: golden written to {path}"))
        for name, data in result.golden_by_backend.items():
            out += self.store.check(ctx.case_id, stage, data, tolerance, label=name, metric=result.golden_metric,
                                    config=config)
        return out

    def write_timings(self) -> None:
        """Compute seconds per (case, backend, stage), the referee's included, for `make bench`'s split."""
        timings = {}
        for cid, ctx in self.contexts.items():
            runs = dict(ctx.runs)
            if ctx.referee is not None:
                runs["referee"] = ctx.referee
            timings[cid] = {name: run.timings for name, run in runs.items()}
        atomic_write_json(self.hub / "timings" / f"{self.worker}.json", timings, indent=1)
