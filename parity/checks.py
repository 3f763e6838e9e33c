"""One check function per pipeline stage: backend outputs in, Comparisons out.

Each function gets a CaseContext (one case, one BackendRun per backend, the
first backend the reference) and returns a StageResult: the cross-backend
comparisons, the reference's data to compare with (or bless as) the golden,
and artifacts for the hub's plots. A backend that raises yields a failed
comparison for that stage, never a crashed session.

The float64 referee (adapters/referee.py), when the context has one, is the
arbiter of the deterministic stages (REFEREE_STAGES): every backend is also
compared with it (printed "<backend>~referee", referee on the right), and a failing
"<other>~<reference>" comparison of those stages says which of the two is
farther from the float64 truth, so a split points at the backend to fix.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from adapters.base import OWN_FIELD_PREFIX, overrides
from backends.common.config import make_config
from parity.comparators import (check_invariants, compare_allclose, compare_band, compare_exact,
                            compare_reconstruction, compare_update, error_comparison)
from parity.comparison import GIVEN, REFEREE, SPEC, Check, Comparison, referee_distance
from parity.report.hub import Artifact, StageNote
from parity.matrix import CLI_ALTERNATIVES, CLI_SWEEP_FIELDS
from parity.case_context import CaseContext, StageResult, Unsupported, UpstreamFailed
from parity.stage_outputs import OUTPUT_KEYS, OutputError
from parity.tolerances import LedgerError, precision_name, tolerance

FIRST_SEEN_KIND = "first seen"  # StageNote kind: a split here that the config stage already showed
OWN_FIELD_KIND = "own field"  # StageNote kind: a backend's own config field another backend lacks
KINK_KIND = "kink"  # StageNote kind: gradients that disagree at one batch and agree at the next
REFEREE_STAGES = ("grouping", "translation", "forward", "loss", "optimizer",
                  "reconstruction")  # reconstruction: stitch only


def _attempt(ctx: CaseContext, stage: str, check: Check, call, result: StageResult):
    """(True, call()) or, when it raises, (False, None) with a failed comparison for `check`."""
    try:
        return True, call()
    except Unsupported:
        raise  # an input no backend can produce: the stage (or its part) is n/a, not this backend's failure
    except UpstreamFailed as exc:
        metric, error = "upstream", exc
    except OutputError as exc:  # a missing, extra or mistyped output key (stage_outputs.OUTPUT_KEYS)
        metric, error = "outputs", exc
    except NotImplementedError as exc:  # the harness calls a backend only for the stages it declares
        metric = "declared"
        error = (f"{check.left} declares stage {stage!r} (supported_stages) but raised NotImplementedError: "
                 f"{exc}; the declaration lied: implement it or leave the stage out")
    except Exception as exc:
        metric, error = "call", exc
    result.comparisons.append(error_comparison(config_id=ctx.case_id, stage=stage, check=check, metric=metric,
                                               error=error))
    return False, None


def _outputs(ctx: CaseContext, stage: str, fn, result: StageResult) -> dict:
    """fn(run) for every backend; a backend that raises gets a failed comparison instead."""
    outputs = {}
    for name, run in ctx.runs.items():
        ok, value = _attempt(ctx, stage, Check(name), lambda run=run: fn(run), result)
        if ok:
            outputs[name] = value
    return outputs


def _pairs(ctx: CaseContext, outputs: dict, variant: str = ""):
    """(Check(other, reference), reference output, other output) per other backend.

    Comparators are called as (other, reference): the check's left side is the first
    argument and the reference is the one relative tolerances scale with."""
    if ctx.reference not in outputs:
        return []
    ref = outputs[ctx.reference]
    return [(Check(name, ctx.reference, variant), ref, outputs[name]) for name, _ in ctx.others() if name in outputs]


def _referee_output(ctx: CaseContext, stage: str, fn, result: StageResult):
    """fn(referee run), or None: no referee, or it raised (then a failed comparison says so,
    since a referee that cannot do a stage the contract defines is a bug of the harness)."""
    if ctx.referee is None:
        return None
    return _attempt(ctx, stage, Check(REFEREE), lambda: fn(ctx.referee), result)[1]


def _referee_checks(ctx: CaseContext, stage: str, outputs: dict, referee_output, *, ledger_metric="max_abs",
                    keys=None, exact=(), prefix="", variant="", optional=()) -> list[Comparison]:
    """Check(backend, REFEREE, variant) for every backend in `outputs`: the backend on the left, the
    float64 referee on the right (side b, the one relative tolerances scale with).

    Metric names are the cross-backend check's own ("prefix + key"), so a failed
    Check(other, reference) comparison finds its two referee counterparts. The ledger entry
    is the one of the backend's precision: the referee is the truth a float32 backend is
    held to, with the same tolerance as the backends are held to each other. Keys in
    `exact` (indices, origins) must match exactly; the others are allclose, the backend's
    output widened to the referee's float64/complex128 first (widening loses nothing).
    """
    if referee_output is None:
        return []
    found = []
    for name, out in outputs.items():
        if name == REFEREE:
            continue
        check = Check(name, REFEREE, variant)
        for key in (referee_output if keys is None else keys):
            if key in optional and key not in out:
                continue  # an optional output this backend does not give (noted by the cross-backend check)
            common = dict(config_id=ctx.case_id, stage=stage, check=check, metric=prefix + key)
            try:
                mine, truth = np.asarray(out[key]), np.asarray(referee_output[key])
                if key in exact:
                    found.append(compare_exact(mine, truth, **common))
                    continue
                wide = np.result_type(mine, truth)
                tol = tolerance(stage, ledger_metric, precision_name(mine.dtype))
                found.append(compare_allclose(mine.astype(wide), truth.astype(wide), tol, **common))
            except Exception as exc:  # a missing key or a dtype with no ledger entry: a failure, not a crash
                found.append(error_comparison(error=exc, **common))
    return found


def _distance(comparison: Comparison) -> tuple[float, str]:
    """referee_distance of a Check(backend, REFEREE) comparison, and how to print it."""
    distance, measured = referee_distance(comparison.kind, comparison.measured), comparison.measured
    if comparison.kind == "allclose" and math.isfinite(distance):
        return distance, f"{measured['max_abs']:.3e}"
    if comparison.kind == "exact" and math.isfinite(distance):
        return distance, f"{measured['n_bad']:g} of {measured['n_total']:g} elements"
    reason = comparison.headline.partition(f"{comparison.metric}: ")[2] or "not comparable"
    return distance, f"not comparable ({reason})"


def _with_referee_note(ctx: CaseContext, comparisons: list) -> list:
    """Each failed Check(other, reference) comparison gets one more line naming the backend
    farther from the referee: two float32 backends that part do not say which one is wrong.
    Built with dataclasses.replace (Comparison is frozen); the rest is unchanged."""
    by_identity = {(c.check, c.metric): c for c in comparisons}
    annotated = []
    for c in comparisons:
        check = c.check
        if not c.passed and check.right == ctx.reference and not check.via and check.left != REFEREE:
            sides = [(name, by_identity.get((Check(name, REFEREE, check.variant), c.metric)))
                     for name in (check.left, check.right)]
            if all(found is not None for _, found in sides):
                (b1, (d1, e1)), (b2, (d2, e2)) = [(name, _distance(found)) for name, found in sides]
                verdict = f"fix {b1 if d1 > d2 else b2} first" if d1 != d2 else "equally far: check both"
                c = replace(c, message=f"{c.message}\n  referee (float64): {b1} is {e1} from it, {b2} is {e2}: "
                                       f"{verdict}")
        annotated.append(c)
    return annotated


def _first_group(arrays: dict) -> dict:
    """Goldens keep one group of image stages: enough to pin the numbers, small on disk."""
    return {key: np.asarray(value)[:1] for key, value in arrays.items()}


def _layer_peaks(grads: dict) -> dict:
    """Peak |gradient| of each layer (kernel and bias together), per tensor name.

    A bias gradient sums a whole feature map; where its terms cancel it is small and
    its float32 rounding relatively large, so it is judged on its layer's scale."""
    layer = {}
    for key, value in grads.items():
        stem = key.rsplit(".", 1)[0]
        layer[stem] = max(layer.get(stem, 0.0), float(np.max(np.abs(value))))
    return {key: layer[key.rsplit(".", 1)[0]] for key in grads}


def _peak_normalised(grads: dict, peaks: dict) -> dict:
    """Divide each tensor by its layer's reference peak, so one tolerance fits every layer."""
    return {k: np.asarray(v, np.float64) / max(peaks[k], 1e-30) for k, v in grads.items()}


def _norms(weights: dict) -> np.ndarray:
    return np.array([np.linalg.norm(np.asarray(weights[k], np.float64)) for k in sorted(weights)], np.float64)


# --- stages ----------------------------------------------------------------

def _exact_pairs(ctx: CaseContext, stage: str, outputs: dict, metric: str, result: StageResult) -> None:
    """Every other backend's output equal to the reference's."""
    for label, ref, other in _pairs(ctx, outputs):
        result.comparisons.append(compare_exact(other, ref, config_id=ctx.case_id, stage=stage, check=label,
                                                metric=metric))


def _effective_configs(ctx: CaseContext, stage: str, fn, metric: str, given: Mapping, result: StageResult,
                       variant: str = "") -> dict:
    """Every backend's effective config (fn(run)) equal to the others', its fields `given` equal to the
    values given (GIVEN) and the fields left out equal to the contract's defaults (SPEC); returns the outputs."""
    outputs = _outputs(ctx, stage, fn, result)
    expected = make_config(dict(given)).to_dict()
    canonical = {name: _canonical_fields(cfg) for name, cfg in outputs.items()}
    for label, ref, other in _pairs(ctx, canonical, variant):
        result.comparisons.append(compare_exact(other, ref, config_id=ctx.case_id, stage=stage, check=label,
                                                metric=metric))
    _own_fields(ctx, stage, outputs, metric, variant, result)
    for name, cfg in canonical.items():
        for right, keep in ((GIVEN, lambda key: key in given), (SPEC, lambda key: key not in given)):
            if right == GIVEN and not given:
                continue
            result.comparisons.append(compare_exact(_fields_where(cfg, keep), _fields_where(expected, keep),
                                                    config_id=ctx.case_id, stage=stage,
                                                    check=Check(name, right, variant), metric=metric))
    return outputs


def _fields_where(cfg, keep):
    """The fields of an effective config whose names pass `keep` (a config that is not a mapping as it is)."""
    return {k: v for k, v in cfg.items() if keep(k)} if isinstance(cfg, Mapping) else cfg


def _canonical_fields(cfg) -> dict:
    """An effective config without the backend's own fields (keys under OWN_FIELD_PREFIX)."""
    if not isinstance(cfg, Mapping):
        return cfg
    return {k: v for k, v in cfg.items() if not str(k).startswith(OWN_FIELD_PREFIX)}


def _own_fields(ctx: CaseContext, stage: str, outputs: dict, metric: str, variant: str, result: StageResult) -> None:
    """The backends' own config fields ("x.<field>"): compared (metric "<metric>.own") between the
    reference and each other backend on the keys both have; a key only some backends have is noted
    (kind "own field"), never failed."""
    own = {name: {k: v for k, v in cfg.items() if str(k).startswith(OWN_FIELD_PREFIX)}
           for name, cfg in outputs.items() if isinstance(cfg, Mapping)}
    for label, ref, other in _pairs(ctx, own, variant):
        both = sorted(set(ref) & set(other))
        if both:
            result.comparisons.append(compare_exact({k: other[k] for k in both}, {k: ref[k] for k in both},
                                                    config_id=ctx.case_id, stage=stage, check=label,
                                                    metric=f"{metric}.own"))
    for key in sorted(set().union(*own.values()) if own else ()):
        having = [name for name, fields in own.items() if key in fields]
        if len(having) < len(own):
            lacking = [name for name in own if name not in having]
            where = f" ({variant})" if variant else ""
            result.notes.append(StageNote(ctx.case_id, stage, OWN_FIELD_KIND,
                                          f"{key}{where} is {', '.join(having)}'s own field "
                                          f"(= {own[having[0]][key]!r}); {', '.join(lacking)} "
                                          f"{'has' if len(lacking) == 1 else 'have'} none: not compared"))


def _effective_config_stage(ctx: CaseContext, stage: str, fn, metric: str, given: Mapping) -> StageResult:
    """Config and cli: every backend's effective config equals the others' and the contract's."""
    result = StageResult(notes=_shared_note(ctx, stage))
    result.golden_by_backend = _effective_configs(ctx, stage, fn, metric, given, result)
    return result


def check_config(ctx: CaseContext) -> StageResult:
    return _effective_config_stage(ctx, "config", lambda run: run.config, "fields", ctx.inputs.case.overrides)


def _shared_note(ctx: CaseContext, stage: str) -> list[StageNote]:
    """A note when every backend declares the same implementation of `stage` (Adapter.shared_code):
    its comparisons then pass by construction and say nothing about the pair."""
    shared = {run.backend.shared_code.get(stage) for run in ctx.runs.values()}
    if len(shared) != 1 or None in shared:
        return []
    (implementation,) = shared
    return [StageNote(ctx.case_id, stage, "shared", f"shared by construction: every backend runs {implementation} "
                      "here, so this stage cannot disagree for this pair")]


def check_data(ctx: CaseContext) -> StageResult:
    result = StageResult(notes=_shared_note(ctx, "data"))
    outputs = _outputs(ctx, "data", lambda run: run.data, result)
    _exact_pairs(ctx, "data", outputs, "arrays", result)

    def digest(arrays):
        return {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                    "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}
                for k, v in sorted(arrays.items())}

    result.golden_by_backend = {name: digest(arrays) for name, arrays in outputs.items()}
    return result


def _grouping_invariants(ctx: CaseContext, name: str, groups: dict, inference: bool) -> Comparison:
    """Properties docs/spec.md §4 requires, whatever the random stream."""
    ds, cfg = ctx.inputs.dataset, ctx.inputs.case.config
    x, y = ds.xcoords, ds.ycoords
    idx, coords, offsets = groups["nn_indices"], groups["coords_px"], groups["offsets_px"]
    m, c = len(x), cfg.n_channels
    b_expected = m if inference else (cfg.n_groups or m)
    items = [("shape", idx.shape == (b_expected, c), f"nn_indices {idx.shape}, expected {(b_expected, c)}"),
             ("dtype", idx.dtype == np.int64, f"nn_indices dtype {idx.dtype}, expected int64"),
             ("range", bool(np.all((idx >= 0) & (idx < m))), "indices outside 0..M-1")]
    if idx.shape == (b_expected, c) and items[2][1]:
        xy = np.stack([x, y], -1)
        items.append(("coords", bool(np.array_equal(coords, xy[idx])), "coords_px != positions[nn_indices]"))
        items.append(("offsets", bool(np.allclose(offsets, coords - coords.mean(1, keepdims=True), atol=1e-9)),
                      "offsets_px != coords - mean(coords)"))
        items.append(("distinct", all(len(set(row)) == c for row in idx.tolist()), "a group repeats a member"))
        if c > 1:
            # Members must lie among the K nearest of some seed: check the K+1 nearest of each member's group.
            d2 = (x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2
            order = np.lexsort((np.broadcast_to(np.arange(m), d2.shape), d2), axis=1)
            near = [set(row) for row in order[:, 1: cfg.neighbor_count + 1]]  # column 0 is the position itself
            stray = [g for g, row in enumerate(idx.tolist()) if not any(set(row) <= ns for ns in near)]
            items.append(("members among the K nearest of a seed", not stray,
                          f"{len(stray)} group(s), first {stray[:1]}, not within any seed's "
                          f"{cfg.neighbor_count} nearest others"))
        elif not inference:
            items.append(("seeds distinct", len(set(idx[:, 0].tolist())) == b_expected, "a seed repeats"))
    check = Check(name, SPEC, "inference" if inference else "")
    return check_invariants(items, config_id=ctx.case_id, stage="grouping", check=check)


def check_grouping(ctx: CaseContext) -> StageResult:
    result = StageResult()
    for inference in (False, True):
        variant = "inference" if inference else ""
        outputs = _outputs(ctx, "grouping", lambda run: run.inference_groups if inference else run.groups, result)
        for label, ref, other in _pairs(ctx, outputs, variant):
            result.comparisons.append(compare_exact(other["nn_indices"], ref["nn_indices"], config_id=ctx.case_id,
                                                    stage="grouping", check=label, metric="nn_indices"))
            result.comparisons.append(compare_allclose(
                other["offsets_px"], ref["offsets_px"], tolerance("grouping", "max_abs", "float64"),
                config_id=ctx.case_id, stage="grouping", check=label, metric="offsets_px"))
        for name, groups in outputs.items():
            result.comparisons.append(_grouping_invariants(ctx, name, groups, inference))
        truth = _referee_output(ctx, "grouping", lambda run: run.inference_groups if inference else run.groups,
                                result)
        result.comparisons.extend(_referee_checks(ctx, "grouping", outputs, truth, keys=("nn_indices", "offsets_px"),
                                                  exact=("nn_indices",), variant=variant))
        if not inference:
            keep = ("nn_indices", "offsets_px")
            result.golden_by_backend = {n: {k: g[k] for k in keep} for n, g in outputs.items()}
    return result


def check_shapes(ctx: CaseContext) -> StageResult:
    result = StageResult()
    outputs = _outputs(ctx, "shapes", lambda run: run.shapes, result)
    _exact_pairs(ctx, "shapes", outputs, "fields", result)
    result.golden_by_backend = outputs
    return result


def _optional_note(ctx: CaseContext, stage: str, outputs: dict, optional, result: StageResult) -> None:
    """A note for each optional output key some backends do not give: it is compared only where
    both sides give it (stage_outputs.OUTPUT_KEYS defines the optional keys)."""
    for key in optional:
        lacking = [name for name, out in outputs.items() if key not in out]
        if lacking:
            given = [name for name in outputs if name not in lacking]
            result.notes.append(StageNote(ctx.case_id, stage, "optional",
                                          f"{key} (optional) not given by {', '.join(lacking)}: compared "
                                          + (f"between {', '.join(given)} only" if len(given) > 1 else "nowhere")))


def _allclose_stage(ctx, stage, metric, fn, result: StageResult, golden_keys=None, referee_fn=None,
                    optional=()) -> StageResult:
    """Shared path of the array stages: every other backend allclose to the reference,
    and, given `referee_fn` (its output on the same inputs), every backend to the referee.
    Keys in `optional` are compared where both sides give them, noted otherwise."""
    outputs = _outputs(ctx, stage, fn, result)
    _optional_note(ctx, stage, outputs, optional, result)
    for label, ref, other in _pairs(ctx, outputs):
        for key in list(ref) + [k for k in other if k not in ref]:
            if key in optional and not (key in ref and key in other):
                continue
            if key not in ref or key not in other:  # outputs are checked on arrival; a harness-made key
                result.comparisons.append(error_comparison(
                    config_id=ctx.case_id, stage=stage, check=label, metric=key,
                    error=f"key {key!r} given by {label.right if key in ref else label.left} only"))
                continue
            # The looser precision of the two decides which ledger entry applies.
            wide = all(np.asarray(x).dtype in (np.float64, np.complex128) for x in (ref[key], other[key]))
            dtype = "float64" if wide else "float32"
            result.comparisons.append(compare_allclose(other[key], ref[key], tolerance(stage, metric, dtype),
                                                       config_id=ctx.case_id, stage=stage, check=label, metric=key))
    if referee_fn is not None:
        result.comparisons.extend(_referee_checks(ctx, stage, outputs, _referee_output(ctx, stage, referee_fn, result),
                                                  ledger_metric=metric, optional=optional))
    pick = (lambda out: _first_group(out)) if golden_keys is None else golden_keys
    result.golden_by_backend = {name: pick(out) for name, out in outputs.items()}
    result.golden_metric = metric
    return result


def check_translation(ctx: CaseContext) -> StageResult:
    def translated(run):
        return {"translated": run.translation}

    return _allclose_stage(ctx, "translation", "max_abs", translated, StageResult(), referee_fn=translated)


def check_forward(ctx: CaseContext) -> StageResult:
    def forward(run):
        return run.forward(ctx.ref_groups["offsets_px"][: ctx.inputs.case.stage_groups])

    return _allclose_stage(ctx, "forward", "max_abs", forward, StageResult(), referee_fn=forward,
                           optional=tuple(OUTPUT_KEYS["forward"].optional))


def check_loss(ctx: CaseContext) -> StageResult:
    result = StageResult()
    # The backends' loss is a float32 number; the referee's stays float64 (not rounded to float32).
    return _allclose_stage(ctx, "loss", "max_abs", lambda run: {
        "loss": np.float32(run.loss(ctx.inputs.loss_inputs(ctx.batch)))}, result,
        # a 1-element array: the golden is then an npz compared with the ledger, not JSON compared exactly
        golden_keys=lambda out: {k: np.atleast_1d(v) for k, v in out.items()},
        referee_fn=lambda run: {"loss": np.float64(run.loss(ctx.inputs.loss_inputs(ctx.batch)))})


def check_model(ctx: CaseContext) -> StageResult:
    result = StageResult()
    if _native(ctx):
        return _check_native_model(ctx, result)
    # The backend's own initial weights must be the shared initializer's, bit for bit.
    init = _outputs(ctx, "model", lambda run: run.own_initial_weights, result)
    for name, weights in init.items():
        expected = ctx.inputs.initial_state(ctx.runs[name].scales).weights
        result.comparisons.append(compare_exact(weights, expected, config_id=ctx.case_id, stage="model",
                                                check=Check(name, SPEC), metric="initial_weights"))

    def predict(run):
        out = dict(run.predict(ctx.initial_state, ctx.batch))
        scales = run.scales
        out["input_scale"] = np.float64(scales["input_scale"])
        out["log_intensity_scale"] = np.float64(scales["log_intensity_scale"])
        return out

    return _allclose_stage(ctx, "model", "predict", predict, result, golden_keys=lambda out: {
        k: (v[:1] if np.ndim(v) else v) for k, v in out.items()})


def _check_native_model(ctx: CaseContext, result: StageResult) -> StageResult:
    """A pair without canonical weights (Adapter.native_weights): the networks, their initial weights and
    predictions are each backend's own (the shapes, training and bundle stages see them); what the data
    alone decides is compared: the input scale and log intensity scale each derives from the scan (§5)."""
    result.notes.append(StageNote(ctx.case_id, "model", "native", "no canonical weights: compared are the "
                                  "scales each backend derives from the scan, not initial weights or predictions"))
    return _allclose_stage(ctx, "model", "scales", lambda run: {k: np.float32(v) for k, v in run.scales.items()},
                           result, golden_keys=lambda out: out)


def _compare_grads(ctx: CaseContext, label: Check, ref: dict, other: dict, tol) -> Comparison:
    peaks = _layer_peaks(ref["grads"])
    return compare_allclose(_peak_normalised(other["grads"], peaks), _peak_normalised(ref["grads"], peaks), tol,
                            config_id=ctx.case_id, stage="gradients", check=label, metric="grads/peak")


GRADIENT_POINTS = 3  # batches at most: the stage's own, then the next ones while a pair still disagrees


def check_gradients(ctx: CaseContext) -> StageResult:
    """Loss and gradients at the initial weights on the stage's batch. Where the gradients disagree, they are
    judged again on the next batches, up to GRADIENT_POINTS in all: a ReLU input, or a max-pool window's
    two largest inputs, within float32 rounding of the switch point make the two frameworks take different
    one-sided derivatives (the gradient is not defined there), which another point does not repeat, while
    a split in the contract shows at every point (docs/tolerances.md)."""
    result = StageResult()
    outputs = _outputs(ctx, "gradients", lambda run: run.gradients(ctx.initial_state, ctx.batch), result)
    tol = tolerance("gradients", "max_abs", "float32")
    later = {}  # part -> outputs at that later batch, computed only when some pair still disagrees
    for label, ref, other in _pairs(ctx, outputs):
        result.comparisons.append(compare_allclose(np.float64(other["loss"]), np.float64(ref["loss"]), tol,
                                                   config_id=ctx.case_id, stage="gradients", check=label,
                                                   metric="loss"))
        grads = _compare_grads(ctx, label, ref, other, tol)
        figures = [grads.measured.get("max_abs")]
        for part in range(1, GRADIENT_POINTS):
            if grads.passed or grads.kind == "error" or ctx.later_batch(part) is None:
                break
            if part not in later:
                later[part] = _outputs(ctx, "gradients",
                                       lambda run, b=ctx.later_batch(part): run.gradients(ctx.initial_state, b), result)
            if label.left not in later[part] or label.right not in later[part]:
                break
            again = _compare_grads(ctx, label, later[part][label.right], later[part][label.left], tol)
            figures.append(again.measured.get("max_abs"))
            if again.passed:
                groups = ctx.inputs.case.stage_groups
                result.notes.append(StageNote(ctx.case_id, "gradients", KINK_KIND, (
                    f"{label} grads/peak on successive batches of {groups} groups: "
                    f"{', '.join(f'{v:.3g}' for v in figures)} (limit {tol.value:g}): kinks at float32 rounding "
                    "before the last (docs/tolerances.md), judged at the last")))
                grads = again
        result.comparisons.append(grads)
    result.golden_by_backend = {name: {"loss": np.float32(out["loss"]), "grad_norms": _norms(out["grads"]).astype(
        np.float32)} for name, out in outputs.items()}
    return result


def check_optimizer(ctx: CaseContext) -> StageResult:
    """The same weights and gradients through each backend's own optimiser, a few steps from a
    fresh state: no trajectory to diverge, so they agree to float32 rounding, and a wrong epsilon
    or beta shows where training's statistical bands could not see it. The referee's textbook
    Adam is the contract, so there is no golden."""
    def updated(run):
        weights = run.optimizer
        return {"weights": np.concatenate([np.ravel(weights[name]) for name in sorted(weights)])}

    result = _allclose_stage(ctx, "optimizer", "max_abs", updated, StageResult(), referee_fn=updated)
    result.golden_by_backend = {}
    return result


def check_training(ctx: CaseContext) -> StageResult:
    """Each backend trains from the same initial weights with its own resolved config (BackendRun.
    training_config): for a pair whose defaults agree that is the case's config; where they split,
    the effect shows here and a note says the split was first seen at the config stage."""
    result = StageResult(notes=_first_seen_notes(ctx, "training",
                                                 {name: run.training_config for name, run in ctx.runs.items()}))
    if _native(ctx):
        return _check_native_training(ctx, result)
    init = ctx.initial_state.weights
    # The reference trains once per case: its result also feeds reconstruction and bundle.
    producer = ctx.upstream_inputs.producer("training")
    outputs = _outputs(ctx, "training", lambda run: ctx.ref_training if producer and run is producer[1]
                       else run.train(init), result)
    band, final = tolerance("training", "loss_band", "float32"), tolerance("training", "update_rel_l2", "float32")
    for label, ref, other in _pairs(ctx, outputs):
        result.comparisons.append(compare_band(other["history"]["step_loss"], ref["history"]["step_loss"], band,
                                               config_id=ctx.case_id, stage="training", check=label,
                                               metric="step_loss"))
        result.comparisons.append(compare_update(init, other["weights"], ref["weights"], final,
                                                 config_id=ctx.case_id, check=label, metric="weight_update"))
        result.comparisons.append(_compare_schedule(other["history"], ref["history"], "step_loss", ctx, label))
    # The golden pins the trajectory only, as logarithms: allclose with the band's value is then a
    # relative band like compare_band. Per-tensor weights are too chaotic to pin (docs/design.md).
    result.golden_by_backend = {name: {"log_step_loss": np.log(np.asarray(out["history"]["step_loss"],
                                                                          np.float64)).astype(np.float32)}
                                for name, out in outputs.items()}
    result.golden_metric = "loss_band"
    return result


def _compare_schedule(history: Mapping, ref: Mapping, losses: str, ctx: CaseContext, label: Check) -> Comparison:
    """Groups, steps per epoch and the number of `losses` entries (steps or epochs), exact."""
    def schedule(h):
        return {"steps_per_epoch": h.get("steps_per_epoch"), "n_groups": h.get("n_groups"),
                losses: len(h.get(losses, ()))}

    return compare_exact(schedule(history), schedule(ref), config_id=ctx.case_id, stage="training", check=label,
                         metric="schedule")


def relative_loss_drop(history: Mapping) -> float:
    """(first epoch's loss - last's) / |first's|: how far training went, whatever each loss's scale and
    sign (a likelihood without its constant term can be negative and still fall)."""
    losses = np.asarray(history["epoch_loss"], np.float64)
    if losses.size < 2 or losses[0] == 0 or not np.all(np.isfinite(losses)):
        raise ValueError(f"a loss drop needs two finite epoch losses, the first non-zero; got {losses.tolist()}")
    return float((losses[0] - losses[-1]) / abs(losses[0]))


def _check_native_training(ctx: CaseContext, result: StageResult) -> StageResult:
    """A pair without canonical weights (Adapter.native_weights): each backend trains its own
    network from its own initial weights, so trajectories cannot match. Compared: the schedule (groups,
    steps per epoch, epochs; exact) and the relative loss drop (statistically, within the ledger's
    training.loss_drop, measured over seeds on the pair). No golden: training is chaotic (docs/design.md)."""
    outputs = _outputs(ctx, "training", lambda run: _with_loss_drop(run.native_training), result)
    result.notes.append(StageNote(ctx.case_id, "training", "native", "no canonical weights: each backend "
                                  "trained its own network from its own initial weights; compared are the schedule "
                                  "and the relative loss drop (first - last epoch loss) / |first|"))
    drop = tolerance("training", "loss_drop", "float32")
    for label, ref, other in _pairs(ctx, outputs):
        result.comparisons.append(_compare_schedule(other["history"], ref["history"], "epoch_loss", ctx, label))
        result.comparisons.append(compare_allclose(other["loss_drop"], ref["loss_drop"], drop, config_id=ctx.case_id,
                                                   stage="training", check=label, metric="loss_drop"))
    return result


def _with_loss_drop(out: Mapping) -> dict:
    return {**out, "loss_drop": relative_loss_drop(out["history"])}


def check_reconstruction(ctx: CaseContext) -> StageResult:
    result = StageResult()
    # Stitching alone, on identical random patches: isolates §11 from the network.
    stitched = _outputs(ctx, "reconstruction", lambda run: run.stitched, result)
    for label, ref, other in _pairs(ctx, stitched):
        result.comparisons.append(compare_exact(other["origin_px"], ref["origin_px"], config_id=ctx.case_id,
                                                stage="reconstruction", check=label, metric="stitch.origin_px"))
        result.comparisons.append(compare_allclose(other["object"], ref["object"],
                                                   tolerance("reconstruction", "stitch", "float32"),
                                                   config_id=ctx.case_id, stage="reconstruction", check=label,
                                                   metric="stitch.object"))
    result.comparisons.extend(_referee_checks(
        ctx, "reconstruction", stitched, _referee_output(ctx, "reconstruction", lambda run: run.stitched, result),
        ledger_metric="stitch", keys=("origin_px", "object"), exact=("origin_px",), prefix="stitch."))
    outputs = _trained_reconstructions(ctx, result)
    # read only when the trained part runs: a profile whose pair stitches only needs no such entries
    tols = {m: tolerance("reconstruction", m, "float32") for m in ("rel_error", "ssim", "frc")} if outputs else {}
    for label, ref, other in _pairs(ctx, outputs):
        result.comparisons.append(compare_exact(other["origin_px"], ref["origin_px"], config_id=ctx.case_id,
                                                stage="reconstruction", check=label, metric="origin_px"))
        result.comparisons.extend(compare_reconstruction(other["object"], ref["object"], tols,
                                                         config_id=ctx.case_id, check=label))
    if outputs:
        result.artifacts.append(Artifact(ctx.case_id, "reconstruction",
                                         {name: out["object"] for name, out in outputs.items()}))
    # The golden pins the stitch of fixed patches, not the trained object: that one follows six Adam
    # steps, whose float32 rounding differs between CPUs (AVX2 vs AVX-512 kernels) and grows chaotically
    # (docs/design.md), so no golden tolerance could hold it on another machine.
    result.golden_by_backend = {name: {"stitch.object": out["object"],
                                       "stitch.origin_px": np.asarray(out["origin_px"]).astype(np.int64)}
                                for name, out in stitched.items()}
    result.golden_metric = "stitch"
    return result


def _trained_reconstructions(ctx: CaseContext, result: StageResult) -> dict:
    """The trained model's object from every backend that overrides `reconstruct` (the stage's second
    part, adapters.base.STAGE_MINIMUM); with fewer than two, or no trained weights, that part is
    n/a and noted."""
    makers = [name for name, run in ctx.runs.items() if overrides(run.backend, "reconstruct")]
    try:
        if len(makers) < 2:
            lacking = [name for name in ctx.runs if name not in makers]
            raise Unsupported(f"{', '.join(lacking)} implement(s) stitch but not reconstruct")
        state = ctx.trained_state
    except Unsupported as exc:
        result.notes.append(StageNote(ctx.case_id, "reconstruction", "n/a",
                                      f"trained-model part n/a: {exc}; stitch part compared"))
        return {}
    return _outputs(ctx.only(makers), "reconstruction", lambda run: run.reconstruct(state), result)


def _native(ctx: CaseContext) -> bool:
    """Whether some backend trains its own network rather than the canonical one (Adapter.native_weights)."""
    return any(run.backend.native_weights for run in ctx.runs.values())


def check_bundle(ctx: CaseContext) -> StageResult:
    """Every backend's bundle loaded by every backend: its own must reproduce its in-memory prediction
    exactly, another's within bundle.cross_load. Canonical pairs share the trained state (and compare the
    bundle's contents); native ones (Adapter.native_weights) each save their own trained state."""
    result = StageResult()
    native = _native(ctx)
    batch = ctx.batch
    states = (_outputs(ctx, "bundle", lambda run: run.native_state, result) if native
              else {name: ctx.trained_state for name in ctx.runs})
    paths = {name: ctx.inputs.workdir / f"bundle-{ctx.case_id}-{name}.zip" for name in ctx.runs}
    written = _outputs(ctx.only(states), "bundle",
                       lambda run: run.bundle_roundtrip(states[run.backend.name], paths[run.backend.name]) or True,
                       result)
    in_memory = _outputs(ctx.only(states), "bundle", lambda run: run.predict(states[run.backend.name], batch), result)
    tol = tolerance("bundle", "cross_load", "float32")
    for reader, run in ctx.runs.items():
        for writer in written:
            # left: the reader's prediction from the writer's bundle; right: the writer's in memory
            check = Check(reader, writer, via=writer)
            try:
                loaded = run.load_bundle(paths[writer])
                prediction = run.predict(loaded, batch)
            except Exception as exc:
                result.comparisons.append(error_comparison(config_id=ctx.case_id, stage="bundle", check=check,
                                                           metric="load", error=exc))
                continue
            if not native:  # a native state is the backend's own object: only its predictions are compared
                state = states[writer]
                result.comparisons.append(compare_exact(
                    {"config": loaded.config, "input_scale": loaded.input_scale, "probe": loaded.probe},
                    {"config": state.config, "input_scale": state.input_scale, "probe": state.probe},
                    config_id=ctx.case_id, stage="bundle", check=check, metric="contents"))
            if reader not in in_memory:
                continue
            if writer == reader:  # a backend's own bundle must reproduce its in-memory prediction exactly
                result.comparisons.append(compare_exact(prediction, in_memory[reader], config_id=ctx.case_id,
                                                        stage="bundle", check=check, metric="predict"))
            else:
                result.comparisons.append(compare_allclose(prediction, in_memory[writer], tol, config_id=ctx.case_id,
                                                           stage="bundle", check=check, metric="predict"))
    return result


def check_cli(ctx: CaseContext) -> StageResult:
    """The train CLI with the case's flags only (ParityCase.cli_flags); with cli_sweep, also once per
    field with that field's flag left out and every other flag set to a non-default value."""
    result = _effective_config_stage(ctx, "cli", lambda run: run.cli_config, "effective_config",
                                     ctx.inputs.case.cli_flags)
    result.notes.extend(_first_seen_notes(ctx, "cli", result.golden_by_backend))
    if ctx.inputs.case.cli_sweep:
        for name in CLI_SWEEP_FIELDS:
            given = {k: v for k, v in CLI_ALTERNATIVES.items() if k != name}
            _effective_configs(ctx, "cli", lambda run, name=name: run.cli_without(name), "effective_config", given,
                               result, variant=f"without --{name.replace('_', '-')}")
    return result


def _first_seen_notes(ctx: CaseContext, stage: str, outputs: Mapping) -> list[StageNote]:
    """A note (kind FIRST_SEEN_KIND) for each canonical field whose value splits between the reference and
    another backend at `stage` and already split between their resolve_config results: a default split
    that carried forward, first seen at the config stage. Backends that lack the config stage, or whose
    resolve_config raises, say nothing here (the config stage reports them)."""
    def resolved(name):
        run = ctx.runs[name]
        if "config" not in run.backend.supported_stages():
            return None
        try:
            return _canonical_fields(run.config)
        except Exception:
            return None

    notes = []
    for label, ref, other in _pairs(ctx, {k: _canonical_fields(v) for k, v in outputs.items()}):
        if not (isinstance(ref, Mapping) and isinstance(other, Mapping)):
            continue
        split = sorted(k for k in set(ref) & set(other) if ref[k] != other[k])
        before = {name: resolved(name) for name in (label.left, label.right)}
        if not split or None in before.values():
            continue
        carried = [k for k in split if before[label.left].get(k) != before[label.right].get(k)]
        if carried:
            notes.append(StageNote(ctx.case_id, stage, FIRST_SEEN_KIND, "default split first seen at stage config: "
                                   + ", ".join(f"{k} ({label.left}={other[k]!r}, {label.right}={ref[k]!r})"
                                               for k in carried)))
    return notes


STAGE_CHECKS = {
    "config": check_config, "data": check_data, "grouping": check_grouping, "shapes": check_shapes,
    "translation": check_translation, "forward": check_forward, "loss": check_loss, "model": check_model,
    "gradients": check_gradients, "optimizer": check_optimizer, "training": check_training, "reconstruction": check_reconstruction,
    "bundle": check_bundle, "cli": check_cli,
}


def _names(names) -> str:
    return ", ".join(names) or "none"


def _with_reasons(ctx: CaseContext, stage: str, lacking) -> list[str]:
    """The backends lacking `stage`, each followed by its reason (Adapter.unsupported_reason) where it gives
    one; backends giving the same reason share it ("a, b (reason)")."""
    by_reason = {}
    for name in lacking:
        by_reason.setdefault(ctx.runs[name].backend.unsupported_reason(stage), []).append(name)
    return [", ".join(names) + (f" ({reason})" if reason else "") for reason, names in by_reason.items()]


def run_stage(ctx: CaseContext, stage: str) -> StageResult:
    """The stage's check between the backends that support it (the first the reference); a backend
    that lacks it is left out and noted. With fewer than two, or an input no backend can produce,
    the result is `unsupported` (n/a, with a note saying why); an upstream failure fails the stage."""
    if stage in ctx.inputs.case.skip_stages:
        reason = f"stage {stage} n/a: not run on this case (its profile's skip_stages)"
        return StageResult(unsupported=reason, notes=[StageNote(ctx.case_id, stage, "n/a", reason)])
    supporting = ctx.supporting(stage)
    lacking = [name for name in ctx.runs if name not in supporting]
    na = f"lacking {stage}: {_names(_with_reasons(ctx, stage, lacking))}"
    if len(supporting) < 2:
        reason = f"stage {stage} n/a: fewer than two backends support it ({na}; supporting: {_names(supporting)})"
        return StageResult(unsupported=reason, notes=[StageNote(ctx.case_id, stage, "n/a", reason)])
    stage_ctx = ctx.only(supporting)
    notes = [StageNote(ctx.case_id, stage, "n/a", f"{na}: compared {', '.join(supporting)}")] if lacking else []
    try:
        result = STAGE_CHECKS[stage](stage_ctx)
        if stage in REFEREE_STAGES and ctx.referee is not None:
            result.comparisons = _with_referee_note(stage_ctx, result.comparisons)
        result.reference, result.notes = stage_ctx.reference, notes + list(result.notes)
        return result
    except Unsupported as exc:
        reason = f"stage {stage} n/a: {exc}"
        return StageResult(unsupported=reason, notes=notes + [StageNote(ctx.case_id, stage, "n/a", reason)])
    except UpstreamFailed as exc:
        return StageResult(comparisons=[error_comparison(config_id=ctx.case_id, stage=stage,
                                                         check=Check(stage_ctx.reference), metric="upstream",
                                                         error=exc)], reference=stage_ctx.reference)
    except LedgerError as exc:  # a check the ledger has no tolerance for fails the stage; it does not crash the run
        return StageResult(comparisons=[error_comparison(config_id=ctx.case_id, stage=stage,
                                                         check=Check("ledger"), metric="tolerance", error=exc)],
                           reference=stage_ctx.reference)
