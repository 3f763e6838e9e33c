"""Stage reconstruction: stitching (docs/spec.md §11), in two parts.

1. Stitching alone: the same random patches at the scan's own coordinates through every backend's
   `stitch` and the referee; origins exact, objects allclose. This isolates §11 from the network, and
   it is what the golden pins.
2. The trained model's object, from the first backend's trained weights, through every backend that
   overrides `reconstruct` (adapters.base.STAGE_MINIMUM: `stitch` alone supports the stage): compared
   after removing global phase and scale (relative error, SSIM, FRC). Never pinned by a golden: it
   follows six Adam steps whose float32 rounding differs between CPUs (AVX2 vs AVX-512 kernels) and
   grows chaotically (docs/design.md).
"""

from __future__ import annotations

import numpy as np

from adapters.base import overrides
from parity.backend_run import ARRAY, OutputKeys
from parity.case_context import CanonicalInputs, CaseContext, StageResult, Unsupported
from parity.comparators import compare_allclose, compare_exact, compare_reconstruction
from parity.report import plots
from parity.report.hub import Artifact, StageNote
from parity.stages.kit import Stage, each_backend, pairs, referee_checks, referee_output
from parity.status import NoteKind
from parity.tolerances import tolerance

_OBJECT = OutputKeys({"object": ARRAY, "origin_px": ARRAY})
OUTPUTS = {"stitch": _OBJECT, "reconstruct": _OBJECT}


def _stitch_inputs(inputs: CanonicalInputs) -> dict:
    """One random complex patch per scan position, at the scan's own coordinates."""
    rng, m, n = inputs.rng("stitch"), inputs.dataset.n_positions, inputs.n
    shape = (m, n, n)
    patches = (rng.uniform(0.5, 1.0, shape) * np.exp(1j * rng.uniform(-1, 1, shape))).astype(np.complex64)
    return {"patches": patches, "xcoords": inputs.dataset.xcoords, "ycoords": inputs.dataset.ycoords}


def stitched(run) -> dict:
    def call():
        t = run.inputs.kept("stitch", _stitch_inputs)
        return run.call("reconstruction", "stitch", t["patches"], t["xcoords"], t["ycoords"], outputs=OUTPUTS["stitch"])

    return run.once("stitch", call)


def _trained_objects(ctx: CaseContext, result: StageResult) -> dict:
    """The trained model's object from every backend that overrides `reconstruct`; with fewer than two, or no
    trained weights, that part is n/a and noted."""
    makers = [name for name, run in ctx.runs.items() if overrides(run.adapter, "reconstruct")]
    try:
        if len(makers) < 2:
            lacking = [name for name in ctx.runs if name not in makers]
            raise Unsupported(f"{', '.join(lacking)} implement(s) stitch but not reconstruct")
        state = ctx.upstream.trained_state
    except Unsupported as exc:
        result.notes.append(
            StageNote(
                ctx.case_id, "reconstruction", NoteKind.NA, f"trained-model part n/a: {exc}; stitch part compared"
            )
        )
        return {}
    return each_backend(
        ctx.only(makers),
        "reconstruction",
        lambda run: run.call(
            "reconstruction", "reconstruct", state, run.inputs.data_path, outputs=OUTPUTS["reconstruct"]
        ),
        result,
    )


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    found = each_backend(ctx, "reconstruction", stitched, result)
    for label, ref, other in pairs(ctx, found):
        result.comparisons.append(
            compare_exact(
                other["origin_px"],
                ref["origin_px"],
                config_id=ctx.case_id,
                stage="reconstruction",
                check=label,
                metric="stitch.origin_px",
            )
        )
        result.comparisons.append(
            compare_allclose(
                other["object"],
                ref["object"],
                tolerance("reconstruction", "stitch", "float32"),
                config_id=ctx.case_id,
                stage="reconstruction",
                check=label,
                metric="stitch.object",
            )
        )
    result.comparisons.extend(
        referee_checks(
            ctx,
            "reconstruction",
            found,
            referee_output(ctx, "reconstruction", stitched, result),
            ledger_metric="stitch",
            keys=("origin_px", "object"),
            exact=("origin_px",),
            prefix="stitch.",
        )
    )
    outputs = _trained_objects(ctx, result)
    # read only when the trained part runs: a profile whose pair stitches only needs no such entries
    tols = {m: tolerance("reconstruction", m, "float32") for m in ("rel_error", "ssim", "frc")} if outputs else {}
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons.append(
            compare_exact(
                other["origin_px"],
                ref["origin_px"],
                config_id=ctx.case_id,
                stage="reconstruction",
                check=label,
                metric="origin_px",
            )
        )
        result.comparisons.extend(
            compare_reconstruction(other["object"], ref["object"], tols, config_id=ctx.case_id, check=label)
        )
    if outputs:
        result.artifacts.append(
            Artifact(ctx.case_id, "reconstruction", {name: out["object"] for name, out in outputs.items()})
        )
    result.golden_by_backend = {
        name: {"stitch.object": out["object"], "stitch.origin_px": np.asarray(out["origin_px"]).astype(np.int64)}
        for name, out in found.items()
    }
    result.golden_metric = "stitch"
    return result


STAGE = Stage(
    "reconstruction",
    "stitched object after removing global phase and scale",
    check,
    needs=("trained weights",),
    outputs=OUTPUTS,
    referee=True,
    plots=plots.reconstruction_plots,
)
