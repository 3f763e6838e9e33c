"""Stage training: each backend trains from the same initial weights with its own resolved config.

Judged on the loss trajectory (a relative band per step), the whole weight update and the schedule
(steps per epoch, groups, steps; exact), not element by element (docs/design.md). For a pair whose
defaults agree that config is the case's; where they split, the effect shows here and a note says the
split was first seen at the config stage. A pair without canonical weights (Adapter.native_weights)
trains each network from its own initial weights: compared are the schedule and the relative loss
drop. The first backend's trained weights feed reconstruction and bundle (`produces`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from parity.backend_run import ANY, MAPPING, OutputError, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_allclose, compare_band, compare_exact, compare_update
from parity.report import plots
from parity.report.hub import StageNote
from parity.stages.config import first_seen_notes, resolved_config
from parity.stages.kit import Stage, each_backend, native, pairs
from parity.status import NoteKind
from parity.tolerances import tolerance
from parity.verdict import Check, Comparison

OUTPUTS = {
    "train": OutputKeys({"history": MAPPING, "weights": MAPPING}),
    # A pair without canonical weights trains its own networks from their own initial weights: the history
    # (epoch_loss, steps_per_epoch, n_groups) and, for the bundle stage, the trained state in the backend's
    # own form (saved, loaded and predicted by it alone).
    "train_native": OutputKeys({"history": MAPPING}, optional={"state": ANY}),
}


def training_config(run) -> dict:
    """The configuration this backend trains with: its own resolved one (the end-to-end path, so a
    default that splits at the config stage shows its effect downstream), or the case's when the
    backend cannot resolve configs (then the config stage reports it)."""
    if "config" not in run.adapter.supported_stages():
        return run.inputs.config
    try:
        return resolved_config(run)
    except Exception:
        return run.inputs.config


def train(run, init_weights: dict | None) -> dict:
    """Training from the canonical `init_weights`, or, with None, from the backend's own initial weights."""
    spec = "train" if init_weights is not None else "train_native"
    return run.call(
        "training",
        "train",
        training_config(run),
        run.inputs.data_path,
        init_weights,
        run.inputs.case.train_steps,
        outputs=OUTPUTS[spec],
    )


def native_training(run) -> dict:
    """Training from the backend's own initial weights, once per case: the training stage compares it, the
    bundle stage saves and loads its state."""
    return run.once("native training", lambda: train(run, None))


def native_state(run):
    out = native_training(run)
    if "state" not in out:
        raise OutputError(
            f"{run.name}.train: returned no 'state' (native_weights): the bundle stage "
            "saves, loads and predicts the backend's own trained state"
        )
    return out["state"]


def relative_loss_drop(history: Mapping) -> float:
    """(first epoch's loss - last's) / |first's|: how far training went, whatever each loss's scale and
    sign (a likelihood without its constant term can be negative and still fall)."""
    losses = np.asarray(history["epoch_loss"], np.float64)
    if losses.size < 2 or losses[0] == 0 or not np.all(np.isfinite(losses)):
        raise ValueError(f"a loss drop needs two finite epoch losses, the first non-zero; got {losses.tolist()}")
    return float((losses[0] - losses[-1]) / abs(losses[0]))


def _compare_schedule(history: Mapping, ref: Mapping, losses: str, ctx: CaseContext, label: Check) -> Comparison:
    """Groups, steps per epoch and the number of `losses` entries (steps or epochs), exact."""

    def schedule(h):
        return {
            "steps_per_epoch": h.get("steps_per_epoch"),
            "n_groups": h.get("n_groups"),
            losses: len(h.get(losses, ())),
        }

    return compare_exact(
        schedule(history), schedule(ref), config_id=ctx.case_id, stage="training", check=label, metric="schedule"
    )


def _check_native(ctx: CaseContext, result: StageResult) -> StageResult:
    """Compared: the schedule (groups, steps per epoch, epochs; exact) and the relative loss drop
    (statistically, within the ledger's training.loss_drop, measured over seeds on the pair). No golden:
    training is chaotic (docs/design.md)."""
    outputs = each_backend(
        ctx,
        "training",
        lambda run: {**native_training(run), "loss_drop": relative_loss_drop(native_training(run)["history"])},
        result,
    )
    result.notes.append(
        StageNote(
            ctx.case_id,
            "training",
            NoteKind.NATIVE,
            "no canonical weights: each backend "
            "trained its own network from its own initial weights; compared are the schedule "
            "and the relative loss drop (first - last epoch loss) / |first|",
        )
    )
    drop = tolerance("training", "loss_drop", "float32")
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons.append(_compare_schedule(other["history"], ref["history"], "epoch_loss", ctx, label))
        result.comparisons.append(
            compare_allclose(
                other["loss_drop"],
                ref["loss_drop"],
                drop,
                config_id=ctx.case_id,
                stage="training",
                check=label,
                metric="loss_drop",
            )
        )
    return result


def check(ctx: CaseContext) -> StageResult:
    result = StageResult(
        notes=first_seen_notes(ctx, "training", {name: training_config(run) for name, run in ctx.runs.items()})
    )
    if native(ctx):
        return _check_native(ctx, result)
    init = ctx.initial_state.weights
    # The first backend trains once per case: its result also feeds reconstruction and bundle.
    producer = ctx.upstream.producer("training")
    outputs = each_backend(
        ctx,
        "training",
        lambda run: ctx.upstream.training if producer and run is producer[1] else train(run, init),
        result,
    )
    band, final = tolerance("training", "loss_band", "float32"), tolerance("training", "update_rel_l2", "float32")
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons.append(
            compare_band(
                other["history"]["step_loss"],
                ref["history"]["step_loss"],
                band,
                config_id=ctx.case_id,
                stage="training",
                check=label,
                metric="step_loss",
            )
        )
        result.comparisons.append(
            compare_update(
                init,
                other["weights"],
                ref["weights"],
                final,
                config_id=ctx.case_id,
                check=label,
                metric="weight_update",
            )
        )
        result.comparisons.append(_compare_schedule(other["history"], ref["history"], "step_loss", ctx, label))
    # The golden pins the trajectory only, as logarithms: allclose with the band's value is then a
    # relative band like compare_band. Per-tensor weights are too chaotic to pin (docs/design.md).
    result.golden_by_backend = {
        name: {"log_step_loss": np.log(np.asarray(out["history"]["step_loss"], np.float64)).astype(np.float32)}
        for name, out in outputs.items()
    }
    result.golden_metric = "loss_band"
    return result


STAGE = Stage(
    "training",
    "loss trajectory and final weights after training from the same start",
    check,
    needs=("scales",),
    outputs=OUTPUTS,
    plots=plots.loss_plots,
    produces={"trained weights": lambda run, upstream: train(run, upstream.initial_state.weights)},
)
