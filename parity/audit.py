"""Prove the harness can fail: run mutant adapters through every stage check.

    python -m parity audit [--mutants a,b] [--base torch_pinn|tf_pinn] [--json FILE] [--sensitivity]

Each mutant (adapters/mutants.py) wraps a clean bundled adapter (`--base`,
default torch_pinn) and injects one known bug; it is compared with the clean other
backend (the reference) on the small cases of parity.matrix.AUDIT, stage by
stage, exactly as the suite compares two backends. A mutant is *caught* when
the first stage that fails is the one it declares; one that passes every
check, or fails first elsewhere, fails the audit (exit status 1).

As in the suite, the float64 referee (adapters/referee.py) also judges the
deterministic stages. The reference's and the referee's stage outputs are
computed once per case (`CachedRun`) and shared by every mutant's
CaseContext, so each mutant costs only its own side.
A control (the base wrapped with no bug, `Harmless`) runs first: a check that
fails on the clean base is a false alarm of the harness; it is reported, fails
the audit, and is left out of every mutant's verdict (a mutant must be caught
by a check that tells it from clean code).

`--sensitivity` then bisects, for translation, forward and loss, the smallest
perturbation the current tolerances detect (adapters.mutants.PERTURBATIONS).

Framework-free, like the rest of parity/: the adapters import frameworks.
"""

from __future__ import annotations

import copy
import hashlib
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import numpy as np

from adapters.mutants import PERTURBATIONS, Harmless, Mutant, available, get_mutant
from adapters.registry import get_adapter
from backends.common.fileio import atomic_write_json
from parity.backend_run import BackendRun
from parity.case_context import CaseContext, make_context
from parity.comparators import error_comparison
from parity.matrix import AUDIT
from parity.stage_runner import run_stage
from parity.stages import STAGES, first_divergence, stage_index
from parity.tolerances import tolerance
from parity.verdict import REFEREE, Check

SCHEMA = "pinn-parity-audit"
SCHEMA_VERSION = 1
BASES = ("tf_pinn", "torch_pinn")
SUT = "<sut>"  # the system under test's name inside a normalised check label
MAX_FAILURES_KEPT = 5  # failing comparisons kept per stage and row in the JSON


# --- the reference, computed once --------------------------------------------


def fingerprint(obj) -> str:
    """sha256 of a structure of arrays, mappings, sequences, dataclasses and scalars."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest, obj) -> None:
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.ascontiguousarray(obj)
        digest.update(f"a{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    elif isinstance(obj, dict):
        digest.update(f"d{len(obj)}".encode())
        for key in sorted(obj, key=str):
            _feed(digest, str(key))
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f"l{len(obj)}".encode())
        for item in obj:
            _feed(digest, item)
    elif is_dataclass(obj) and not isinstance(obj, type):
        _feed(digest, [type(obj).__name__] + [getattr(obj, f.name) for f in fields(obj)])
    else:
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())


@dataclass
class CachedRun(BackendRun):
    """A BackendRun whose every adapter call is computed once per distinct input.

    The clean reference gets one per case, shared by the CaseContext of every mutant: BackendRun
    already keeps its input-free calls; this also keeps the calls that take inputs (forward, loss,
    predict, gradients, train, reconstruct, the bundle's save and load, the cli sweep), keyed by a
    fingerprint of the inputs (a bundle's by its file's content too)."""

    memo: dict = field(default_factory=dict)

    def call(self, stage: str, method: str, *args, outputs=None):
        key = (args, hashlib.sha256(Path(args[0]).read_bytes()).hexdigest()) if method == "load_bundle" else args
        slot = (stage, method, fingerprint(key))
        if slot not in self.memo:
            self.memo[slot] = BackendRun.call(self, stage, method, *args, outputs=outputs)
        return copy.deepcopy(self.memo[slot])


# --- one row per mutant ----------------------------------------------------


@dataclass
class AuditRow:
    mutant: str
    description: str
    expected_stage: str | None  # None for the control
    failed_stages: list = field(default_factory=list)  # pipeline order
    failures: dict = field(default_factory=dict)  # stage -> [{"case", "check", "metric", "headline"}]
    seconds: float = 0.0

    @property
    def first_failed(self) -> str | None:
        return first_divergence(self.failed_stages)

    @property
    def is_control(self) -> bool:
        return self.expected_stage is None

    @property
    def verdict(self) -> str:
        if self.is_control:
            return "clean" if not self.failed_stages else "FALSE ALARM"
        if not self.failed_stages:
            return "UNCAUGHT"
        return "caught" if self.first_failed == self.expected_stage else "WRONG STAGE"

    @property
    def ok(self) -> bool:
        return self.verdict in ("clean", "caught")

    def to_dict(self) -> dict:
        return {
            "mutant": self.mutant,
            "description": self.description,
            "expected_stage": self.expected_stage,
            "first_failed": self.first_failed,
            "failed_stages": list(self.failed_stages),
            "verdict": self.verdict,
            "seconds": round(self.seconds, 3),
            "failures": self.failures,
        }


@dataclass
class AuditResult:
    base: str
    reference: str
    cases: list  # case ids
    stages: list  # the stages run, pipeline order
    control: AuditRow
    rows: list  # AuditRow per mutant
    noise: list = field(default_factory=list)  # check keys that fail on the clean base, left out of verdicts
    sensitivity: list = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.control.ok and all(row.ok for row in self.rows)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "base": self.base,
            "reference": self.reference,
            "cases": self.cases,
            "stages": self.stages,
            "ok": self.ok,
            "wall_s": round(self.wall_s, 2),
            "control": self.control.to_dict(),
            "rows": [row.to_dict() for row in self.rows],
            "false_alarms": self.noise,
            "sensitivity": self.sensitivity,
        }


def other_backend(base: str) -> str:
    if base not in BASES:
        raise ValueError(f"--base={base!r}: the audit wraps a bundled backend, one of {', '.join(BASES)}")
    return BASES[1 - BASES.index(base)]


def _check_key(case_id: str, comparison, sut: str) -> str:
    """A failing check, the system under test's name replaced, so a mutant's and the control's match."""
    return f"{case_id}|{comparison.stage}|{comparison.check.renamed(sut, SUT)}|{comparison.metric}"


def _failing(ctx: CaseContext, stage: str, sut: str):
    """(key, comparison) of every failed comparison of `stage` on this case."""
    try:
        comparisons = run_stage(ctx, stage).comparisons
    except Exception as exc:  # a check that raises outside its guarded calls still fails its stage
        comparisons = [
            error_comparison(
                config_id=ctx.case_id, stage=stage, check=Check(sut, ctx.reference), metric="check", error=exc
            )
        ]
    return [(_check_key(ctx.case_id, c, sut), c) for c in comparisons if not c.passed]


def _failures(mutant: Mutant, cases: list, stages) -> list:
    """(key, stage, case id, comparison) of every failed check of `stages` on every case.

    `cases` are the clean reference's contexts; each gets `mutant` as its other backend."""
    found = []
    for case in cases:
        ctx = case.against(mutant)
        for stage in stages:
            found += [(key, stage, ctx.case_id, c) for key, c in _failing(ctx, stage, mutant.name)]
    return found


def _row(mutant: Mutant, cases: list, noise: set, stages, label: str | None = None) -> tuple[AuditRow, set]:
    """One mutant through every stage, and the keys of every check it failed. Failures of
    checks in `noise` (those the control failed) are left out of the row."""
    start = time.perf_counter()
    row = AuditRow(mutant=label or mutant.name, description=mutant.description, expected_stage=mutant.expected_stage)
    failures = _failures(mutant, cases, stages)
    for key, stage, case_id, comparison in failures:
        if key in noise:
            continue
        kept = row.failures.setdefault(stage, [])
        if len(kept) < MAX_FAILURES_KEPT:
            kept.append(
                {
                    "case": case_id,
                    "check": str(comparison.check),
                    "metric": comparison.metric,
                    "headline": comparison.message.splitlines()[0],
                }
            )
    row.failed_stages = [s for s in stages if s in row.failures]
    row.seconds = time.perf_counter() - start
    return row, {key for key, *_ in failures}


def resolve_mutants(mutant_names=None, base: str = "torch_pinn", stages=STAGES) -> list:
    """The Mutant classes named (all available when None); MutantError or ValueError on a bad one."""
    reference = other_backend(base)
    names = list(available()) if mutant_names is None else list(mutant_names)
    classes = [get_mutant(name) for name in names]
    for cls in classes:
        if cls.name in (base, reference, REFEREE, Harmless.name):
            raise ValueError(f"mutant name {cls.name!r} is taken by a backend of the audit; rename the mutant")
        if cls.expected_stage not in stages:
            raise ValueError(
                f"mutant {cls.name!r} must be caught at stage {cls.expected_stage!r}, "
                f"which is not among the stages run ({', '.join(stages)})"
            )
    return classes


def run_audit(
    mutant_names=None, base: str = "torch_pinn", cases=AUDIT, *, stages=STAGES, sensitivity: bool = False, log=print
) -> AuditResult:
    """The control, then each named mutant (every one of adapters.mutants.available() when None).

    `stages` (default: all, in pipeline order) limits the checks run, e.g. for a quick
    test of mutants caught early; a mutant is then judged on those stages only."""
    reference = other_backend(base)
    stages = sorted(set(stages), key=stage_index)  # pipeline order; an unknown name is a ValueError
    classes = resolve_mutants(mutant_names, base, stages)  # bad names fail before any work
    begin = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="parity-audit-"))
    try:
        # The clean reference and the referee, computed once per case and shared by every mutant's context.
        clean = {reference: get_adapter(reference)}
        shared = [make_context(case, clean, workdir, referee=get_adapter(REFEREE), run=CachedRun) for case in cases]
        # The control: the base with no bug. A check failing here is the harness's false alarm, not a catch.
        harmless = Harmless(get_adapter(base))
        control, noise = _row(harmless, shared, set(), stages, label=f"{harmless.name} (control)")
        log(f"audit: control {base} vs {reference}: {control.verdict} ({control.seconds:.1f} s)")
        rows = []
        for i, cls in enumerate(classes, 1):
            row, _ = _row(cls(get_adapter(base)), shared, noise, stages)
            rows.append(row)
            log(f"audit: [{i}/{len(classes)}] {row.mutant}: {row.verdict} ({row.seconds:.1f} s)")
        result = AuditResult(
            base=base,
            reference=reference,
            cases=[c.id for c in cases],
            stages=stages,
            control=control,
            rows=rows,
            noise=sorted(noise),
        )
        if sensitivity:
            result.sensitivity = measure_sensitivity(shared, base, noise, log=log)
        result.wall_s = time.perf_counter() - begin
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- sensitivity ------------------------------------------------------------


def smallest_detected(
    detects, lo: float = 1e-12, hi: float = 1.0, rel_precision: float = 0.02, max_probes: int = 60
) -> float | None:
    """The smallest delta in [lo, hi] with detects(delta), by geometric bisection
    (assumes detection is monotone in delta). None when hi is not detected; lo when lo already is."""
    if not detects(hi):
        return None
    if detects(lo):
        return lo
    for _ in range(max_probes):
        if hi / lo <= 1.0 + rel_precision:
            break
        mid = math.sqrt(lo * hi)
        if detects(mid):
            hi = mid
        else:
            lo = mid
    return hi


def measure_sensitivity(cases: list, base: str, noise: set, log=print) -> list:
    """For each stage of adapters.mutants.PERTURBATIONS and case: the smallest delta caught."""
    inner = get_adapter(base)
    found = []
    for stage, cls in PERTURBATIONS.items():
        tol = tolerance(stage, "max_abs", "float32")
        for case in cases:

            def detects(delta, case=case, stage=stage, cls=cls):
                probe = cls(inner, delta)
                return any(key not in noise for key, _ in _failing(case.against(probe), stage, probe.name))

            delta = smallest_detected(detects)
            found.append(
                {
                    "stage": stage,
                    "case": case.case_id,
                    "perturbation": cls.description,
                    "unit": cls.unit,
                    "smallest_detected": delta,
                    "tolerance_key": tol.key,
                    "tolerance": tol.value,
                }
            )
            log(f"audit: sensitivity {stage} {case.case_id}: {delta}")
    return found


# --- rendering and exit status -------------------------------------------------


def render_table(result: AuditResult) -> str:
    head = ("mutant", "expected", "first failed", "failed stages", "verdict")
    body = [
        (
            row.mutant,
            row.expected_stage or "-",
            row.first_failed or "-",
            ", ".join(row.failed_stages) or "-",
            row.verdict,
        )
        for row in [result.control, *result.rows]
    ]
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    line = "  ".join(f"{{:{w}}}" for w in widths)
    out = [
        f"audit: mutants of {result.base} against the clean {result.reference} (reference), "
        f"cases {', '.join(result.cases)}",
        "",
        line.format(*head).rstrip(),
        line.format(*("-" * w for w in widths)),
    ]
    out += [line.format(*r).rstrip() for r in body]
    caught = sum(row.verdict == "caught" for row in result.rows)
    out += [
        "",
        f"{caught} / {len(result.rows)} mutants caught at their declared stage; wall time {result.wall_s:.1f} s",
    ]
    if result.noise:
        out += [
            "",
            f"FALSE ALARMS: {len(result.noise)} check(s) fail on the clean {result.base} too; they are "
            "left out of every mutant's verdict, and fail the audit (case | stage | check | metric):",
        ]
        out += [f"  {key}" for key in result.noise]
    if any(row.verdict in ("WRONG STAGE", "UNCAUGHT") for row in result.rows):
        out.append("")
    for row in result.rows:
        if row.verdict == "WRONG STAGE":
            first = row.failures[row.first_failed][0]
            out.append(
                f"{row.mutant}: expected {row.expected_stage}, first failed {row.first_failed}: {first['headline']}"
            )
        elif row.verdict == "UNCAUGHT":
            out.append(f"{row.mutant}: no check failed ({row.description})")
    return "\n".join(out) + "\n"


def render_sensitivity(result: AuditResult) -> str:
    if not result.sensitivity:
        return ""
    out = ["", "sensitivity: the smallest perturbation the current tolerances detect (bisected to 2 %)"]
    stage = None
    for item in result.sensitivity:
        if item["stage"] != stage:
            stage = item["stage"]
            out.append(f"  {stage}: {item['perturbation']} ({item['tolerance_key']} = {item['tolerance']:g})")
        delta = item["smallest_detected"]
        unit = "px" if item["unit"] == "px" else "relative"
        out.append(f"    {item['case']:28s} " + ("not detected up to 1" if delta is None else f"{delta:.3g} {unit}"))
    return "\n".join(out) + "\n"


def write_json(result: AuditResult, path) -> Path:
    return atomic_write_json(path, result.to_dict(), indent=1, sort_keys=False, default=_json_default)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def exit_status(result: AuditResult) -> int:
    """0 when the control is clean and every mutant is caught at its declared stage, else 1."""
    return 0 if result.ok else 1
