"""run_stage: one stage of one case, between the backends that support it.

The stage's own module (parity/stages/<name>.py) says what is compared; this decides who takes part
and turns what cannot run into a verdict: a stage fewer than two backends support, or whose input no
backend can produce, is n/a (noted, never a failure); an upstream producer that raised, or a check the
ledger has no tolerance for, fails the stage; where the referee arbitrates, each failed comparison of
two backends says which one is farther from the float64 truth.
"""

from __future__ import annotations

import math
from dataclasses import replace

from parity.case_context import CaseContext, StageResult, Unsupported, UpstreamFailed
from parity.comparators import error_comparison
from parity.report.hub import StageNote
from parity.stages import stage as stage_named
from parity.status import NoteKind
from parity.tolerances import LedgerError
from parity.verdict import REFEREE, Check, Comparison, referee_distance


def _distance(comparison: Comparison) -> tuple[float, str]:
    """referee_distance of a Check(backend, REFEREE) comparison, and how to print it."""
    distance, measured = referee_distance(comparison.kind, comparison.measured), comparison.measured
    if comparison.kind == "allclose" and math.isfinite(distance):
        return distance, f"{measured['max_abs']:.3e}"
    if comparison.kind == "exact" and math.isfinite(distance):
        return distance, f"{measured['n_bad']:g} of {measured['n_total']:g} elements"
    reason = comparison.headline.partition(f"{comparison.metric}: ")[2] or "not comparable"
    return distance, f"not comparable ({reason})"


def with_referee_note(ctx: CaseContext, comparisons: list) -> list:
    """Each failed Check(other, reference) comparison gets one more line naming the backend
    farther from the referee: two float32 backends that part do not say which one is wrong.
    Built with dataclasses.replace (Comparison is frozen); the rest is unchanged."""
    by_identity = {(c.check, c.metric): c for c in comparisons}
    annotated = []
    for c in comparisons:
        check = c.check
        if not c.passed and check.right == ctx.reference and not check.via and check.left != REFEREE:
            sides = [
                (name, by_identity.get((Check(name, REFEREE, check.variant), c.metric)))
                for name in (check.left, check.right)
            ]
            if all(found is not None for _, found in sides):
                (b1, (d1, e1)), (b2, (d2, e2)) = [(name, _distance(found)) for name, found in sides]
                verdict = f"fix {b1 if d1 > d2 else b2} first" if d1 != d2 else "equally far: check both"
                c = replace(
                    c, message=f"{c.message}\n  referee (float64): {b1} is {e1} from it, {b2} is {e2}: {verdict}"
                )
        annotated.append(c)
    return annotated


def _names(names) -> str:
    return ", ".join(names) or "none"


def _with_reasons(ctx: CaseContext, stage: str, lacking) -> list[str]:
    """The backends lacking `stage`, each followed by its reason (Adapter.unsupported_reason) where it gives
    one; backends giving the same reason share it ("a, b (reason)")."""
    by_reason = {}
    for name in lacking:
        by_reason.setdefault(ctx.runs[name].adapter.unsupported_reason(stage), []).append(name)
    return [", ".join(names) + (f" ({reason})" if reason else "") for reason, names in by_reason.items()]


def _not_applicable(ctx: CaseContext, stage: str, reason: str, notes=()) -> StageResult:
    return StageResult(unsupported=reason, notes=list(notes) + [StageNote(ctx.case_id, stage, NoteKind.NA, reason)])


def run_stage(ctx: CaseContext, stage: str) -> StageResult:
    """The stage's check between the backends that support it (the first the reference); a backend
    that lacks it is left out and noted. With fewer than two, or an input no backend can produce,
    the result is `unsupported` (n/a, with a note saying why); an upstream failure fails the stage."""
    if stage in ctx.case.skip_stages:
        return _not_applicable(ctx, stage, f"stage {stage} n/a: not run on this case (its profile's skip_stages)")
    supporting = ctx.supporting(stage)
    lacking = [name for name in ctx.runs if name not in supporting]
    na = f"lacking {stage}: {_names(_with_reasons(ctx, stage, lacking))}"
    if len(supporting) < 2:
        return _not_applicable(
            ctx,
            stage,
            f"stage {stage} n/a: fewer than two backends support it ({na}; supporting: {_names(supporting)})",
        )
    stage_ctx = ctx.only(supporting)
    notes = [StageNote(ctx.case_id, stage, NoteKind.NA, f"{na}: compared {', '.join(supporting)}")] if lacking else []
    definition = stage_named(stage)
    try:
        result = definition.check(stage_ctx)
    except Unsupported as exc:
        return _not_applicable(ctx, stage, f"stage {stage} n/a: {exc}", notes)
    except UpstreamFailed as exc:
        return StageResult(
            comparisons=[
                error_comparison(
                    config_id=ctx.case_id, stage=stage, check=Check(stage_ctx.reference), metric="upstream", error=exc
                )
            ],
            reference=stage_ctx.reference,
        )
    except LedgerError as exc:  # a check the ledger has no tolerance for fails the stage; it does not crash the run
        return StageResult(
            comparisons=[
                error_comparison(
                    config_id=ctx.case_id, stage=stage, check=Check("ledger"), metric="tolerance", error=exc
                )
            ],
            reference=stage_ctx.reference,
        )
    if definition.referee and ctx.referee is not None:
        result.comparisons = with_referee_note(stage_ctx, result.comparisons)
    result.reference, result.notes = stage_ctx.reference, notes + list(result.notes)
    return result
