"""Stage loss: both losses of docs/spec.md §9, Poisson deviance and MAE, of the same far field against the
same observed amplitudes of the first batch, whatever loss the case's config trains with: each allclose
between backends and with the referee's float64 value (metrics "poisson" and "mae"). A backend trains
with one of them, but either is one config field away, so both are held to the contract on every case."""

from __future__ import annotations

import numpy as np

from adapters.base import Batch
from parity.case_context import CanonicalInputs, CaseContext, StageResult
from parity.stages.kit import Stage, allclose_stage

LOSSES = ("poisson", "mae")
"""The loss names the adapters' `loss` takes (backends.common.config's `loss` values), one metric each."""


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
    def losses(run, dtype) -> dict:
        given = loss_inputs(ctx.inputs, ctx.batch)  # fails per backend when the batch cannot be made
        return {
            name: dtype(
                run.call(
                    "loss", "loss", given["far_field"], given["observed_amplitude"], given["log_intensity_scale"], name
                )
            )
            for name in LOSSES
        }

    # The backends' losses are float32 numbers; the referee's stay float64 (not rounded to float32).
    return allclose_stage(
        ctx,
        "loss",
        "max_abs",
        lambda run: losses(run, np.float32),
        StageResult(),
        # 1-element arrays: the golden is then an npz compared with the ledger, not exact JSON
        golden_keys=lambda out: {k: np.atleast_1d(v) for k, v in out.items()},
        referee_fn=lambda run: losses(run, np.float64),
    )


STAGE = Stage(
    "loss",
    "Poisson deviance and MAE of a prediction against measured amplitudes",
    check,
    needs=("group offsets",),
    referee=True,
)
