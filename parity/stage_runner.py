"""run_stage: one stage of one case, between the backends that support it.

The stage's own module (parity/stages/<name>.py) says what is compared; this decides who takes part
and turns what cannot run into a verdict: a stage fewer than two backends support, or whose input no
backend can produce, is n/a (noted, never a failure); an upstream producer that raised, or a check the
ledger has no tolerance for, fails the stage; where the referee arbitrates, each failed comparison of
two backends says which one is farther from the float64 truth.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

from parity.case_context import CaseContext, NotImplementedHere, StageResult, Unsupported, UpstreamFailed
from parity.comparators import error_comparison
from parity.origin import Origin, short_path
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


def _warning_notes(ctx: CaseContext, stage: str, caught) -> list[StageNote]:
    """One note per distinct warning the code under test or an adapter emitted (where it points, by its
    stacklevel), with how often; the frameworks' own chatter stays out."""
    counts: dict[str, int] = {}
    for found in caught:
        if ctx.places.where(found.filename) in (Origin.UPSTREAM, Origin.ADAPTER):
            text = f"{found.category.__name__} at {short_path(found.filename)}:{found.lineno}: {found.message}"
            counts[text] = counts.get(text, 0) + 1
    return [
        StageNote(ctx.case_id, stage, NoteKind.WARNING, text + (f" (x{n})" if n > 1 else ""))
        for text, n in counts.items()
    ]


def _checked(ctx: CaseContext, stage: str, definition, supporting: list[str], notes: list) -> StageResult | None:
    """The stage's check between `supporting`; a backend that raises NotImplementedError there without
    declaring the stage leaves it (noted, n/a for it) and the check runs again without it. None: fewer than
    two were left."""
    while len(supporting) >= 2:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = definition.check(ctx.only(supporting))
        except NotImplementedHere as exc:
            supporting.remove(exc.backend)
            notes.append(
                StageNote(
                    ctx.case_id,
                    stage,
                    NoteKind.NA,
                    f"{exc.backend} raised NotImplementedError at stage {stage} ({exc.error}): n/a for it; "
                    f"say so in its adapter's unsupported_stages, with a reason",
                )
            )
            continue
        result.notes = list(result.notes) + _warning_notes(ctx, stage, caught)
        return result
    return None


def run_stage(ctx: CaseContext, stage: str) -> StageResult:
    """The stage's check between the backends that support it (the first the reference); a backend
    that lacks it is left out and noted. With fewer than two, or an input no backend can produce,
    the result is `unsupported` (n/a, with a note saying why); an upstream failure fails the stage."""
    skipped = ctx.case.skip_reason(stage, ctx.runs)
    if skipped is not None:  # its profile's skip_stages, or a stage its variant's switch cannot affect
        return _not_applicable(ctx, stage, skipped)
    supporting = ctx.supporting(stage)
    lacking = [name for name in ctx.runs if name not in supporting]
    na = f"lacking {stage}: {_names(_with_reasons(ctx, stage, lacking))}"
    if len(supporting) < 2:
        return _not_applicable(
            ctx,
            stage,
            f"stage {stage} n/a: fewer than two backends support it ({na}; supporting: {_names(supporting)})",
        )
    notes = [StageNote(ctx.case_id, stage, NoteKind.NA, f"{na}: compared {', '.join(supporting)}")] if lacking else []
    definition = stage_named(stage)
    reference = supporting[0]
    try:
        result = _checked(ctx, stage, definition, supporting, notes)
    except Unsupported as exc:
        return _not_applicable(ctx, stage, f"stage {stage} n/a: {exc}", notes)
    except UpstreamFailed as exc:
        failed = error_comparison(
            config_id=ctx.case_id, stage=stage, check=Check(reference), metric="upstream", error=exc, places=ctx.places
        )
        return StageResult(comparisons=[failed], reference=reference)
    except LedgerError as exc:  # a check the ledger has no tolerance for fails the stage; it does not crash the run
        failed = error_comparison(
            config_id=ctx.case_id,
            stage=stage,
            check=Check("ledger"),
            metric="tolerance",
            error=exc,
            blame=Origin.HARNESS,
        )
        return StageResult(comparisons=[failed], reference=reference)
    if result is None:
        return _not_applicable(ctx, stage, f"stage {stage} n/a: fewer than two backends implement it", notes)
    stage_ctx = ctx.only(supporting)
    if definition.referee and ctx.referee is not None:
        result.comparisons = with_referee_note(stage_ctx, result.comparisons)
    result.reference, result.notes = stage_ctx.reference, notes + list(result.notes)
    return result
