"""Stage loss: Poisson deviance or MAE (docs/spec.md §9) of the same far field against the same observed
amplitudes of the first batch, allclose between backends and with the referee's float64 value."""

from __future__ import annotations

import numpy as np

from adapters.base import Batch
from parity.case_context import CanonicalInputs, CaseContext, StageResult
from parity.stages.kit import Stage, allclose_stage


def loss_inputs(inputs: CanonicalInputs, batch: Batch) -> dict:
    """A far field whose predicted amplitude is near the observed one, with noise."""
    rng = inputs.rng("loss")
    observed = batch.diffraction
    log_g = 0.7
    noise = 1.0 + 0.1 * rng.standard_normal(observed.shape)
    phase = np.exp(1j * rng.uniform(-np.pi, np.pi, observed.shape))
    far = (np.maximum(observed, 0.05) * noise * phase / np.exp(log_g)).astype(np.complex64)
    return {"far_field": far, "observed_amplitude": observed, "log_intensity_scale": log_g}


def check(ctx: CaseContext) -> StageResult:
    def loss(run):
        given = loss_inputs(ctx.inputs, ctx.batch)  # fails per backend when the batch cannot be made
        return run.call(
            "loss",
            "loss",
            given["far_field"],
            given["observed_amplitude"],
            given["log_intensity_scale"],
            run.inputs.case.config.loss,
        )

    # The backends' loss is a float32 number; the referee's stays float64 (not rounded to float32).
    return allclose_stage(
        ctx,
        "loss",
        "max_abs",
        lambda run: {"loss": np.float32(loss(run))},
        StageResult(),
        # a 1-element array: the golden is then an npz compared with the ledger, not exact JSON
        golden_keys=lambda out: {k: np.atleast_1d(v) for k, v in out.items()},
        referee_fn=lambda run: {"loss": np.float64(loss(run))},
    )


STAGE = Stage(
    "loss",
    "Poisson deviance / MAE of a prediction against measured amplitudes",
    check,
    needs=("group offsets",),
    referee=True,
)
