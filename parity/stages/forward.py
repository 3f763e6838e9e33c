"""Stage forward: the forward model (docs/spec.md §8), the same smooth random object patches, the scan's
probe and the first backend's group offsets into a far-field amplitude, allclose between backends and
with the referee. The complex far field is optional: compared where both give it."""

from __future__ import annotations

import numpy as np

from parity.backend_run import ARRAY, OutputKeys
from parity.case_context import CanonicalInputs, CaseContext, StageResult
from parity.stages.kit import Stage, allclose_stage

OUTPUTS = {"forward": OutputKeys({"amplitude": ARRAY}, optional={"far_field": ARRAY})}


def _object_patches(inputs: CanonicalInputs) -> np.ndarray:
    """Smooth random complex patches inside the support S, like a network's output."""
    rng, b, n = inputs.rng("forward"), inputs.case.stage_groups, inputs.n
    amp = rng.uniform(0.5, 1.0, (b, inputs.c, n // 2, n // 2))
    phase = rng.uniform(-1.0, 1.0, (b, inputs.c, n // 2, n // 2))
    patches = np.zeros((b, inputs.c, n, n), np.complex64)
    patches[..., n // 4 : n // 4 + n // 2, n // 4 : n // 4 + n // 2] = amp * np.exp(1j * phase)
    return patches


def check(ctx: CaseContext) -> StageResult:
    def forward(run):
        offsets_px = ctx.upstream.groups["offsets_px"][: ctx.case.stage_groups]  # fails per backend when missing
        return run.call(
            "forward",
            "forward",
            run.inputs.kept("forward", _object_patches),
            run.inputs.dataset.probe,
            offsets_px,
            run.inputs.case.config.object_big,
            outputs=OUTPUTS["forward"],
        )

    return allclose_stage(
        ctx,
        "forward",
        "max_abs",
        forward,
        StageResult(),
        referee_fn=forward,
        optional=tuple(OUTPUTS["forward"].optional),
    )


STAGE = Stage(
    "forward",
    "forward model: object patches and probe to far-field amplitude",
    check,
    needs=("group offsets",),
    outputs=OUTPUTS,
    referee=True,
)
