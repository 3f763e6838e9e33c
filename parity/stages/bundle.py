"""Stage bundle: every backend's bundle loaded by every backend.

A backend's own bundle must reproduce its in-memory prediction exactly; another's within
bundle.cross_load ("torch_pinn(tf_pinn bundle)~tf_pinn": torch_pinn predicting from tf_pinn's bundle,
against tf_pinn in memory).
Canonical pairs share the first backend's trained state and also compare the bundle's contents; pairs
without canonical weights (Adapter.native_weights) each save their own trained state.
"""

from __future__ import annotations

from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_allclose, compare_exact, error_comparison
from parity.stages.kit import Stage, each_backend, native
from parity.stages.model import predict
from parity.stages.training import native_state
from parity.tolerances import tolerance
from parity.verdict import Check


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    is_native = native(ctx)
    batch = ctx.batch
    states = (
        each_backend(ctx, "bundle", native_state, result)
        if is_native
        else {name: ctx.upstream.trained_state for name in ctx.runs}
    )
    paths = {name: ctx.inputs.workdir / f"bundle-{ctx.case_id}-{name}.zip" for name in ctx.runs}
    written = each_backend(
        ctx.only(states),
        "bundle",
        lambda run: run.call("bundle", "save_bundle", states[run.name], paths[run.name]) or True,
        result,
    )
    in_memory = each_backend(
        ctx.only(states), "bundle", lambda run: predict(run, states[run.name], batch, "bundle"), result
    )
    tol = tolerance("bundle", "cross_load", "float32")
    for reader, run in ctx.runs.items():
        for writer in written:
            # left: the reader's prediction from the writer's bundle; right: the writer's in memory
            check = Check(reader, writer, via=writer)
            try:
                loaded = run.call("bundle", "load_bundle", paths[writer])
                prediction = predict(run, loaded, batch, "bundle")
            except Exception as exc:
                result.comparisons.append(
                    error_comparison(
                        config_id=ctx.case_id,
                        stage="bundle",
                        check=check,
                        metric="load",
                        error=exc,
                        places=ctx.places,
                    )
                )
                continue
            if not is_native:  # a native state is the backend's own object: only its predictions are compared
                state = states[writer]
                result.comparisons.append(
                    compare_exact(
                        {"config": loaded.config, "input_scale": loaded.input_scale, "probe": loaded.probe},
                        {"config": state.config, "input_scale": state.input_scale, "probe": state.probe},
                        config_id=ctx.case_id,
                        stage="bundle",
                        check=check,
                        metric="contents",
                    )
                )
            if reader not in in_memory:
                continue
            if writer == reader:  # a backend's own bundle must reproduce its in-memory prediction exactly
                result.comparisons.append(
                    compare_exact(
                        prediction,
                        in_memory[reader],
                        config_id=ctx.case_id,
                        stage="bundle",
                        check=check,
                        metric="predict",
                    )
                )
            else:
                result.comparisons.append(
                    compare_allclose(
                        prediction,
                        in_memory[writer],
                        tol,
                        config_id=ctx.case_id,
                        stage="bundle",
                        check=check,
                        metric="predict",
                    )
                )
    return result


STAGE = Stage(
    "bundle", "save / load / cross-load of the model bundle", check, needs=("group offsets", "trained weights")
)
