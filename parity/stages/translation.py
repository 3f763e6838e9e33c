"""Stage translation: sub-pixel bilinear translation T (docs/spec.md §6) of the same random complex
images by the same shifts in every backend and the referee, allclose."""

from __future__ import annotations

import numpy as np

from parity.case_context import CanonicalInputs, CaseContext, StageResult
from parity.stages.kit import Stage, allclose_stage


def _inputs(inputs: CanonicalInputs) -> dict:
    """Random complex images and shifts within ±N/4, one of them a whole pixel (where T must be exact)."""
    rng, b = inputs.rng("translation"), inputs.case.stage_groups
    shape = (b, inputs.c, inputs.n, inputs.n)
    images = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    shifts = rng.uniform(-inputs.n / 4, inputs.n / 4, (b, inputs.c, 2)).astype(np.float32)
    shifts[0, 0] = np.round(shifts[0, 0])
    return {"images": images, "shifts_px": shifts}


def translated(run) -> dict:
    def call():
        t = run.inputs.kept("translation", _inputs)
        return {"translated": run.call("translation", "translate", t["images"], t["shifts_px"])}

    return run.once("translation", call)


def check(ctx: CaseContext) -> StageResult:
    return allclose_stage(ctx, "translation", "max_abs", translated, StageResult(), referee_fn=translated)


STAGE = Stage("translation", "sub-pixel bilinear translation of real and complex images", check, referee=True)
