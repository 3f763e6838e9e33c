"""Stage gradients: the loss and its gradient for every canonical weight at the shared initial state.

Each tensor is divided by its layer's reference peak |gradient| before comparing (docs/design.md), so
one tolerance fits every layer. Where a pair disagrees, it is judged again on the next batches, up to
GRADIENT_POINTS in all: a ReLU input, or a max-pool window's two largest inputs, within float32 rounding
of the switch point make the two frameworks take different one-sided derivatives (the gradient is not
defined there), which another point does not repeat, while a split in the contract shows at every
point (docs/tolerances.md). The golden keeps the loss and the per-tensor norms at every point
(`grad_norms`, `grad_norms@1`, ...), and is judged the same way: at the first point that agrees
(parity.golden.POINT_MARK). A kink flips with the kernels as it does with the framework (TensorFlow's
oneDNN on moved gs2-k4-poisson-n32's first batch off its golden, docs/tolerances.md "Goldens across
machines"), so the first point alone would not travel between machines.
"""

from __future__ import annotations

import numpy as np

from parity.backend_run import MAPPING, NUMBER, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_allclose
from parity.report.hub import StageNote
from parity.stages.kit import POINT_MARK, Stage, each_backend, pairs
from parity.status import NoteKind
from parity.tolerances import tolerance
from parity.verdict import Check, Comparison

OUTPUTS = {"gradients": OutputKeys({"loss": NUMBER, "grads": MAPPING})}
GRADIENT_POINTS = 3  # batches at most: the stage's own, then the next ones while a pair still disagrees


def gradients(run, state, batch) -> dict:
    return run.call("gradients", "gradients", state, batch, outputs=OUTPUTS["gradients"])


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
    return {k: np.asarray(v, np.float64) / max(peaks[k], 1e-30) for k, v in grads.items()}


def norms(weights: dict) -> np.ndarray:
    return np.array([np.linalg.norm(np.asarray(weights[k], np.float64)) for k in sorted(weights)], np.float64)


def _compare_grads(ctx: CaseContext, label: Check, ref: dict, other: dict, tol) -> Comparison:
    peaks = _layer_peaks(ref["grads"])
    return compare_allclose(
        _peak_normalised(other["grads"], peaks),
        _peak_normalised(ref["grads"], peaks),
        tol,
        config_id=ctx.case_id,
        stage="gradients",
        check=label,
        metric="grads/peak",
    )


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    outputs = each_backend(ctx, "gradients", lambda run: gradients(run, ctx.initial_state, ctx.batch), result)
    tol = tolerance("gradients", "max_abs", "float32")
    later = {}  # part -> outputs at that later batch, computed only when some pair still disagrees
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons.append(
            compare_allclose(
                np.float64(other["loss"]),
                np.float64(ref["loss"]),
                tol,
                config_id=ctx.case_id,
                stage="gradients",
                check=label,
                metric="loss",
            )
        )
        grads = _compare_grads(ctx, label, ref, other, tol)
        figures = [grads.measured.get("max_abs")]
        for part in range(1, GRADIENT_POINTS):
            if grads.passed or grads.kind == "error" or ctx.upstream.later_batch(part) is None:
                break
            batch = ctx.upstream.later_batch(part)
            if part not in later:
                later[part] = each_backend(
                    ctx, "gradients", lambda run, b=batch: gradients(run, ctx.initial_state, b), result
                )
            if label.left not in later[part] or label.right not in later[part]:
                break
            again = _compare_grads(ctx, label, later[part][label.right], later[part][label.left], tol)
            figures.append(again.measured.get("max_abs"))
            if again.passed:
                groups = ctx.case.stage_groups
                result.notes.append(
                    StageNote(
                        ctx.case_id,
                        "gradients",
                        NoteKind.KINK,
                        (
                            f"{label} grads/peak on successive batches of {groups} groups: "
                            f"{', '.join(f'{v:.3g}' for v in figures)} (limit {tol.value:g}): "
                            "kinks at float32 rounding before the last (docs/tolerances.md), judged at the last"
                        ),
                    )
                )
                grads = again
        result.comparisons.append(grads)
    points = [outputs]  # every point, for the golden: the later ones computed here where no pair needed them
    for part in range(1, GRADIENT_POINTS):
        batch = ctx.upstream.later_batch(part)
        if batch is None:
            break
        if part not in later:
            later[part] = each_backend(
                ctx, "gradients", lambda run, b=batch: gradients(run, ctx.initial_state, b), result
            )
        points.append(later[part])
    result.golden_by_backend = {
        name: {
            "loss": np.float32(out["loss"]),
            "grad_norms": norms(out["grads"]).astype(np.float32),
            **{
                f"grad_norms{POINT_MARK}{part}": norms(point[name]["grads"]).astype(np.float32)
                for part, point in enumerate(points[1:], start=1)
                if name in point
            },
        }
        for name, out in outputs.items()
    }
    return result


STAGE = Stage(
    "gradients",
    "gradient of the loss for every canonical weight",
    check,
    needs=("group offsets", "scales"),
    outputs=OUTPUTS,
)
