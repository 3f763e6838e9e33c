"""Stage config: each backend's effective configuration for the case's overrides, field by field.

Compared exactly between backends, with the values the case gives (GIVEN) and, for the fields left
out, with the contract's defaults (SPEC). A backend's own fields ("x.<field>", no canonical
counterpart) are compared between the backends that both have them and noted otherwise. The cli
and training stages reuse `effective_configs` and `first_seen_notes`.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import OWN_FIELD_PREFIX, call_resolve_config
from backends.common.config import make_config
from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_exact
from parity.report.hub import StageNote
from parity.stages.kit import Stage, each_backend, pairs, shared_note
from parity.status import NoteKind
from parity.verdict import GIVEN, SPEC, Check


def resolved_config(run) -> dict:
    """The backend's own resolve_config for the case's overrides and data file, once per case."""
    return run.once(
        "config",
        lambda: run.timed(
            "config", call_resolve_config, run.adapter, dict(run.inputs.case.overrides), run.inputs.data_path
        ),
    )


def canonical_fields(cfg) -> dict:
    """An effective config without the backend's own fields (keys under OWN_FIELD_PREFIX)."""
    if not isinstance(cfg, Mapping):
        return cfg
    return {k: v for k, v in cfg.items() if not str(k).startswith(OWN_FIELD_PREFIX)}


def _fields_where(cfg, keep):
    """The fields of an effective config whose names pass `keep` (a config that is not a mapping as it is)."""
    return {k: v for k, v in cfg.items() if keep(k)} if isinstance(cfg, Mapping) else cfg


def _own_fields(ctx: CaseContext, stage: str, outputs: dict, metric: str, variant: str, result: StageResult) -> None:
    """The backends' own config fields ("x.<field>"): compared (metric "<metric>.own") between the
    reference and each other backend on the keys both have; a key only some backends have is noted
    (NoteKind.OWN_FIELD), never failed."""
    own = {
        name: {k: v for k, v in cfg.items() if str(k).startswith(OWN_FIELD_PREFIX)}
        for name, cfg in outputs.items()
        if isinstance(cfg, Mapping)
    }
    for label, ref, other in pairs(ctx, own, variant):
        both = sorted(set(ref) & set(other))
        if both:
            result.comparisons.append(
                compare_exact(
                    {k: other[k] for k in both},
                    {k: ref[k] for k in both},
                    config_id=ctx.case_id,
                    stage=stage,
                    check=label,
                    metric=f"{metric}.own",
                )
            )
    for key in sorted(set().union(*own.values()) if own else ()):
        having = [name for name, fields in own.items() if key in fields]
        if len(having) < len(own):
            lacking = [name for name in own if name not in having]
            where = f" ({variant})" if variant else ""
            result.notes.append(
                StageNote(
                    ctx.case_id,
                    stage,
                    NoteKind.OWN_FIELD,
                    f"{key}{where} is {', '.join(having)}'s own field "
                    f"(= {own[having[0]][key]!r}); {', '.join(lacking)} "
                    f"{'has' if len(lacking) == 1 else 'have'} none: not compared",
                )
            )


def effective_configs(
    ctx: CaseContext, stage: str, fn, metric: str, given: Mapping, result: StageResult, variant: str = ""
) -> dict:
    """Every backend's effective config (fn(run)) equal to the others', its fields `given` equal to the
    values given (GIVEN) and the fields left out equal to the contract's defaults (SPEC); returns the outputs."""
    outputs = each_backend(ctx, stage, fn, result)
    expected = make_config(dict(given)).to_dict()
    canonical = {name: canonical_fields(cfg) for name, cfg in outputs.items()}
    for label, ref, other in pairs(ctx, canonical, variant):
        result.comparisons.append(
            compare_exact(other, ref, config_id=ctx.case_id, stage=stage, check=label, metric=metric)
        )
    _own_fields(ctx, stage, outputs, metric, variant, result)
    for name, cfg in canonical.items():
        for right, keep in ((GIVEN, lambda key: key in given), (SPEC, lambda key: key not in given)):
            if right == GIVEN and not given:
                continue
            result.comparisons.append(
                compare_exact(
                    _fields_where(cfg, keep),
                    _fields_where(expected, keep),
                    config_id=ctx.case_id,
                    stage=stage,
                    check=Check(name, right, variant),
                    metric=metric,
                )
            )
    return outputs


def first_seen_notes(ctx: CaseContext, stage: str, outputs: Mapping) -> list[StageNote]:
    """A note (NoteKind.FIRST_SEEN) for each canonical field whose value splits between the reference and
    another backend at `stage` and already split between their resolve_config results: a default split
    that carried forward, first seen at the config stage. Backends that lack the config stage, or whose
    resolve_config raises, say nothing here (the config stage reports them)."""

    def resolved(name):
        run = ctx.runs[name]
        if "config" not in run.adapter.supported_stages():
            return None
        try:
            return canonical_fields(resolved_config(run))
        except Exception:
            return None

    notes = []
    for label, ref, other in pairs(ctx, {k: canonical_fields(v) for k, v in outputs.items()}):
        if not (isinstance(ref, Mapping) and isinstance(other, Mapping)):
            continue
        split = sorted(k for k in set(ref) & set(other) if ref[k] != other[k])
        before = {name: resolved(name) for name in (label.left, label.right)}
        if not split or None in before.values():
            continue
        carried = [k for k in split if before[label.left].get(k) != before[label.right].get(k)]
        if carried:
            notes.append(
                StageNote(
                    ctx.case_id,
                    stage,
                    NoteKind.FIRST_SEEN,
                    "default split first seen at stage config: "
                    + ", ".join(f"{k} ({label.left}={other[k]!r}, {label.right}={ref[k]!r})" for k in carried),
                )
            )
    return notes


def check(ctx: CaseContext) -> StageResult:
    result = StageResult(notes=shared_note(ctx, "config"))
    result.golden_by_backend = effective_configs(ctx, "config", resolved_config, "fields", ctx.case.overrides, result)
    return result


STAGE = Stage("config", "effective configuration, field by field, exact", check)
