"""Stage shapes: shapes and dtypes of every model input, output and canonical weight, exact."""

from __future__ import annotations

from parity.case_context import CaseContext, StageResult
from parity.stages.kit import Stage, each_backend, exact_pairs


def model_shapes(run) -> dict:
    return run.once("shapes", lambda: run.call("shapes", "model_shapes", run.inputs.config, run.inputs.n))


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    outputs = each_backend(ctx, "shapes", model_shapes, result)
    exact_pairs(ctx, "shapes", outputs, "fields", result)
    result.golden_by_backend = outputs
    return result


STAGE = Stage("shapes", "shapes and dtypes of every model input and output", check)
