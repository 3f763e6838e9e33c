"""What every stage module is made of: the `Stage` record, and the steps its check is built from.

A stage's check gets a CaseContext (one case, one BackendRun per backend that supports the stage, the
first the reference) and returns a StageResult: the comparisons, the reference's data to compare with
(or bless as) the golden, artifacts for the hub's plots, and notes. A backend that raises yields a
failed comparison for that stage, never a crashed session.

The float64 referee (adapters/referee.py), where the context has one, arbitrates the deterministic
stages (`Stage.referee`): every backend is also compared with it (printed "<backend>~referee", the
referee on the right), and a failing "<other>~<reference>" comparison says which of the two is farther
from the float64 truth, so a split points at the backend to fix (parity.stage_runner adds that line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from adapters.base import STAGE_METHODS
from parity.backend_run import OutputError, OutputKeys
from parity.case_context import CaseContext, NotImplementedHere, Producer, StageResult, Unsupported, UpstreamFailed
from parity.comparators import compare_allclose, compare_exact, error_comparison
from parity.origin import Origin
from parity.report.hub import StageNote
from parity.status import NoteKind
from parity.tolerances import precision_name, tolerance
from parity.verdict import REFEREE, Check, Comparison

POINT_MARK = "@"
"""A golden array `name@k` (k = 1, 2, ...) is the same quantity as `name` at a later point (the gradients stage's
later batches): parity.golden judges `name` at the first point that agrees with the golden, in order, as the
gradients stage's cross-backend check does (docs/tolerances.md): a ReLU input or max-pool tie within float32
rounding on one batch (a kink) flips with the kernels, so one point pinned alone would not travel between
machines."""


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline, checked in isolation: everything the harness knows about it."""

    name: str
    """Identifier used in test ids, ledger keys, golden file names and reports (its module's name)."""
    description: str
    """One line: what is compared at this stage."""
    check: Callable[[CaseContext], StageResult]
    """The comparisons: backend against backend, and against the values given, the spec and the referee."""
    needs: tuple[str, ...] = ()
    """Products of earlier stages it takes (UpstreamInputs: "group offsets", "scales", "trained weights")."""
    produces: Mapping[str, Producer] = field(default_factory=dict)
    """product -> how the first backend supporting this stage makes it for later stages."""
    outputs: Mapping[str, OutputKeys] = field(default_factory=dict)
    """Adapter method -> the keys its output must have, checked on arrival (optional ones apart)."""
    referee: bool = False
    """Whether the float64 referee computes it too, and arbitrates a split."""
    plots: Callable | None = None
    """plan(hub, comparisons, artifacts) -> [(plot name, job or Flat)] from this stage's records
    (parity.report.plots), or None: the stage draws nothing."""

    @property
    def methods(self) -> tuple[str, ...]:
        """The adapter methods it calls (adapters.base.STAGE_METHODS, the adapter interface's own table)."""
        return STAGE_METHODS[self.name]


def attempt(ctx: CaseContext, stage: str, check: Check, call, result: StageResult):
    """(True, call()) or, when it raises, (False, None) with a failed comparison for `check`."""
    try:
        return True, call()
    except Unsupported:
        raise  # an input no backend can produce: the stage (or its part) is n/a, not this backend's failure
    except UpstreamFailed as exc:
        metric, error, blame = "upstream", exc, None
    except OutputError as exc:  # a missing, extra or mistyped output key (Stage.outputs): the adapter's
        metric, error, blame = "outputs", exc, Origin.ADAPTER
    except NotImplementedError as exc:
        declared = check.left in ctx.runs and stage in (ctx.runs[check.left].adapter.declared_stages or ())
        if check.left in ctx.runs and not declared:
            raise NotImplementedHere(check.left, exc) from exc  # it lacks the stage: n/a for it
        metric, blame = "declared", Origin.ADAPTER
        error = (
            f"{check.left} names stage {stage!r} in declared_stages but raised NotImplementedError: "
            f"{exc}; the declaration lied: implement it or leave the stage out"
        )
    except Exception as exc:
        metric, error, blame = "call", exc, None
    result.comparisons.append(
        error_comparison(
            config_id=ctx.case_id, stage=stage, check=check, metric=metric, error=error, places=ctx.places, blame=blame
        )
    )
    return False, None


def each_backend(ctx: CaseContext, stage: str, fn, result: StageResult) -> dict:
    """{name: fn(run)} for every backend; a backend that raises gets a failed comparison instead."""
    outputs = {}
    for name, run in ctx.runs.items():
        ok, value = attempt(ctx, stage, Check(name), lambda run=run: fn(run), result)
        if ok:
            outputs[name] = value
    return outputs


def pairs(ctx: CaseContext, outputs: dict, variant: str = ""):
    """(Check(other, reference), reference output, other output) per other backend.

    Comparators are called as (other, reference): the check's left side is the first
    argument and the reference is the one relative tolerances scale with."""
    if ctx.reference not in outputs:
        return []
    ref = outputs[ctx.reference]
    return [(Check(name, ctx.reference, variant), ref, outputs[name]) for name, _ in ctx.others() if name in outputs]


def exact_pairs(ctx: CaseContext, stage: str, outputs: dict, metric: str, result: StageResult) -> None:
    """Every other backend's output equal to the reference's."""
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons.append(
            compare_exact(other, ref, config_id=ctx.case_id, stage=stage, check=label, metric=metric)
        )


def referee_output(ctx: CaseContext, stage: str, fn, result: StageResult):
    """fn(referee run), or None: no referee, or it raised (then a failed comparison says so,
    since a referee that cannot do a stage the contract defines is a bug of the harness)."""
    if ctx.referee is None:
        return None
    return attempt(ctx, stage, Check(REFEREE), lambda: fn(ctx.referee), result)[1]


def referee_checks(
    ctx: CaseContext,
    stage: str,
    outputs: dict,
    truth,
    *,
    ledger_metric="max_abs",
    keys=None,
    exact=(),
    prefix="",
    variant="",
    optional=(),
) -> list[Comparison]:
    """Check(backend, REFEREE, variant) for every backend in `outputs`: the backend on the left, the
    float64 referee's output `truth` on the right (side b, the one relative tolerances scale with).

    Metric names are the cross-backend check's own ("prefix + key"), so a failed
    Check(other, reference) comparison finds its two referee counterparts. The ledger entry
    is the one of the backend's precision: the referee is the truth a float32 backend is
    held to, with the same tolerance as the backends are held to each other. Keys in
    `exact` (indices, origins) must match exactly; the others are allclose, the backend's
    output widened to the referee's float64/complex128 first (widening loses nothing).
    """
    if truth is None:
        return []
    found = []
    for name, out in outputs.items():
        if name == REFEREE:
            continue
        check = Check(name, REFEREE, variant)
        for key in truth if keys is None else keys:
            if key in optional and key not in out:
                continue  # an optional output this backend does not give (noted by the cross-backend check)
            common = dict(config_id=ctx.case_id, stage=stage, check=check, metric=prefix + key)
            try:
                mine, expected = np.asarray(out[key]), np.asarray(truth[key])
                if key in exact:
                    found.append(compare_exact(mine, expected, **common))
                    continue
                wide = np.result_type(mine, expected)
                tol = tolerance(stage, ledger_metric, precision_name(mine.dtype))
                found.append(compare_allclose(mine.astype(wide), expected.astype(wide), tol, **common))
            except Exception as exc:  # a missing key or a dtype with no ledger entry: a failure, not a crash
                found.append(error_comparison(error=exc, places=ctx.places, **common))
    return found


def first_group(arrays: dict) -> dict:
    """Goldens keep one group of image stages: enough to pin the numbers, small on disk."""
    return {key: np.asarray(value)[:1] for key, value in arrays.items()}


def optional_note(ctx: CaseContext, stage: str, outputs: dict, optional, result: StageResult) -> None:
    """A note for each optional output key some backends do not give: it is compared only where
    both sides give it (a Stage's `outputs` defines the optional keys)."""
    for key in optional:
        lacking = [name for name, out in outputs.items() if key not in out]
        if lacking:
            given = [name for name in outputs if name not in lacking]
            result.notes.append(
                StageNote(
                    ctx.case_id,
                    stage,
                    NoteKind.OPTIONAL,
                    f"{key} (optional) not given by {', '.join(lacking)}: compared "
                    + (f"between {', '.join(given)} only" if len(given) > 1 else "nowhere"),
                )
            )


def allclose_stage(
    ctx, stage, metric, fn, result: StageResult, golden_keys=None, referee_fn=None, optional=()
) -> StageResult:
    """The array stages' path: every other backend allclose to the reference, and, given `referee_fn`
    (its output on the same inputs), every backend to the referee. Keys in `optional` are compared
    where both sides give them, noted otherwise."""
    outputs = each_backend(ctx, stage, fn, result)
    optional_note(ctx, stage, outputs, optional, result)
    for label, ref, other in pairs(ctx, outputs):
        for key in list(ref) + [k for k in other if k not in ref]:
            if key in optional and not (key in ref and key in other):
                continue
            if key not in ref or key not in other:  # outputs are checked on arrival; a harness-made key
                result.comparisons.append(
                    error_comparison(
                        config_id=ctx.case_id,
                        stage=stage,
                        check=label,
                        metric=key,
                        error=f"key {key!r} given by {label.right if key in ref else label.left} only",
                    )
                )
                continue
            # The looser precision of the two decides which ledger entry applies.
            wide = all(np.asarray(x).dtype in (np.float64, np.complex128) for x in (ref[key], other[key]))
            dtype = "float64" if wide else "float32"
            result.comparisons.append(
                compare_allclose(
                    other[key],
                    ref[key],
                    tolerance(stage, metric, dtype),
                    config_id=ctx.case_id,
                    stage=stage,
                    check=label,
                    metric=key,
                )
            )
    if referee_fn is not None:
        result.comparisons.extend(
            referee_checks(
                ctx,
                stage,
                outputs,
                referee_output(ctx, stage, referee_fn, result),
                ledger_metric=metric,
                optional=optional,
            )
        )
    pick = first_group if golden_keys is None else golden_keys
    result.golden_by_backend = {name: pick(out) for name, out in outputs.items()}
    result.golden_metric = metric
    return result


def shared_note(ctx: CaseContext, stage: str) -> list[StageNote]:
    """A note when every backend declares the same implementation of `stage` (Adapter.shared_code):
    its comparisons then pass by construction and say nothing about the pair."""
    shared = {run.adapter.shared_code.get(stage) for run in ctx.runs.values()}
    if len(shared) != 1 or None in shared:
        return []
    (implementation,) = shared
    return [
        StageNote(
            ctx.case_id,
            stage,
            NoteKind.SHARED,
            f"shared by construction: every backend runs "
            f"{implementation} here, so this stage cannot disagree for this pair",
        )
    ]


def native(ctx: CaseContext) -> bool:
    """Whether some backend trains its own network rather than the canonical one (Adapter.native_weights)."""
    return any(run.adapter.native_weights for run in ctx.runs.values())
