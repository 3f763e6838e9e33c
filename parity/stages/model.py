"""Stage model: the network with the same canonical weights (docs/spec.md §5, §7).

Each backend's own initial weights must be the shared initializer's, bit for bit (SPEC); its prediction
from the shared initial state on the first batch, and the scales it derives from the scan, allclose
between backends. A pair without canonical weights (Adapter.native_weights) compares the scales only.
The first backend's scales feed every later stage that builds a model (`produces`).
"""

from __future__ import annotations

import numpy as np

from parity.backend_run import ARRAY, NUMBER, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_exact
from parity.report.hub import StageNote
from parity.stages.kit import Stage, allclose_stage, each_backend, native
from parity.status import NoteKind
from parity.verdict import SPEC, Check

OUTPUTS = {
    "scales": OutputKeys({"input_scale": NUMBER, "log_intensity_scale": NUMBER}),
    "predict": OutputKeys({"object_patches": ARRAY, "amplitude": ARRAY}),
}


def scales(run) -> dict:
    ds = run.inputs.dataset
    return run.once(
        "scales",
        lambda: run.call(
            "model",
            "scales",
            ds.diffraction,
            ds.probe,
            run.inputs.case.config.amp_activation,
            outputs=OUTPUTS["scales"],
        ),
    )


def predict(run, state, batch, stage: str = "model") -> dict:
    return run.call(stage, "predict", state, batch, outputs=OUTPUTS["predict"])


def _own_initial_weights(run) -> dict:
    return run.once(
        "initial weights",
        lambda: run.call(
            "model", "initial_weights", run.inputs.config, run.inputs.n, scales(run)["log_intensity_scale"]
        ),
    )


def _check_native(ctx: CaseContext, result: StageResult) -> StageResult:
    """The networks, their initial weights and predictions are each backend's own (the shapes, training and
    bundle stages see them); what the data alone decides is compared: the input scale and log intensity
    scale each derives from the scan (§5)."""
    result.notes.append(
        StageNote(
            ctx.case_id,
            "model",
            NoteKind.NATIVE,
            "no canonical weights: compared are the "
            "scales each backend derives from the scan, not initial weights or predictions",
        )
    )
    return allclose_stage(
        ctx,
        "model",
        "scales",
        lambda run: {k: np.float32(v) for k, v in scales(run).items()},
        result,
        golden_keys=lambda out: out,
    )


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    if native(ctx):
        return _check_native(ctx, result)
    init = each_backend(ctx, "model", _own_initial_weights, result)
    for name, weights in init.items():
        expected = ctx.inputs.initial_state(scales(ctx.runs[name])).weights
        result.comparisons.append(
            compare_exact(
                weights,
                expected,
                config_id=ctx.case_id,
                stage="model",
                check=Check(name, SPEC),
                metric="initial_weights",
            )
        )

    def predicted(run):
        out = dict(predict(run, ctx.initial_state, ctx.batch))
        found = scales(run)
        out["input_scale"] = np.float64(found["input_scale"])
        out["log_intensity_scale"] = np.float64(found["log_intensity_scale"])
        return out

    return allclose_stage(
        ctx,
        "model",
        "predict",
        predicted,
        result,
        golden_keys=lambda out: {k: (v[:1] if np.ndim(v) else v) for k, v in out.items()},
    )


STAGE = Stage(
    "model",
    "network prediction with the same canonical weights",
    check,
    needs=("group offsets", "scales"),
    produces={"scales": lambda run, upstream: scales(run)},
    outputs=OUTPUTS,
)
