"""Stage optimizer: the same weights and gradients through each backend's own optimiser (as its training
builds it), three steps from a fresh state, allclose between backends and with the referee's textbook
Adam (docs/spec.md §10). No trajectory to diverge, so they agree to float32 rounding, and a wrong
epsilon or beta shows where training's statistical bands could not see it. The referee is the
contract, so there is no golden."""

from __future__ import annotations

import numpy as np

from backends.common.weights import initial_weights
from parity.case_context import CanonicalInputs, CaseContext, StageResult
from parity.stages.kit import Stage, allclose_stage


def _inputs(inputs: CanonicalInputs) -> dict:
    """Weights (the shared initializer's) and three steps of gradients.

    Gradient magnitudes are log-uniform over 1e-9..1e-1 with random signs: where |g| is
    near epsilon, the step depends on epsilon, so a wrong epsilon moves those weights by
    a good part of a learning rate, far beyond float32 rounding."""
    cfg, rng = inputs.case.config, inputs.rng("optimizer")
    weights = initial_weights(cfg.seed, cfg.n_filters_scale, 0.7)
    steps = [
        {
            name: (rng.choice((-1.0, 1.0), np.shape(w)) * 10.0 ** rng.uniform(-9, -1, np.shape(w))).astype(np.float32)
            for name, w in weights.items()
        }
        for _ in range(3)
    ]
    return {"weights": weights, "grads_per_step": steps}


def updated(run) -> dict:
    def call():
        given = run.inputs.kept("optimizer", _inputs)
        weights = run.call("optimizer", "optimizer_steps", run.inputs.config, given["weights"], given["grads_per_step"])
        return {"weights": np.concatenate([np.ravel(weights[name]) for name in sorted(weights)])}

    return run.once("optimizer", call)


def check(ctx: CaseContext) -> StageResult:
    result = allclose_stage(ctx, "optimizer", "max_abs", updated, StageResult(), referee_fn=updated)
    result.golden_by_backend = {}
    return result


STAGE = Stage("optimizer", "optimiser steps from identical weights and gradients (Adam, §10)", check, referee=True)
