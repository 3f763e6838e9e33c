"""Stage hyperparameters: the optimiser each backend's training builds, field by field, exact.

Each adapter's `optimizer_settings` reads, from the optimiser object its training constructs for the
configuration it trains with (the training stage's `training_config`), its name, learning rate, betas,
epsilon, weight decay and learning-rate schedule. Every field is one comparison (metric = the field), so a
baseline can accept one split (say epsilon) and still catch a change of another; between backends, and with
docs/spec.md §10 (SPEC: Adam, the configured learning_rate and adam_epsilon, the contract's betas, no weight
decay, a constant rate).

Exact, no tolerance: these are settings, not results of arithmetic, so there is no rounding error to bound.
The one legitimate difference is the precision a setting is stored in (a Keras optimiser keeps its
learning rate in a float32 variable, 0.0010000000474974513 for 1e-3; torch a Python float), and both train
in float32, so numbers are compared exactly as float32: a split smaller than that changes no update. Names
and schedules are compared as strings. The optimizer stage, before this one, steps the optimisers; this one
says which setting differs, and covers systems whose optimiser cannot be stepped outside their training.
"""

from __future__ import annotations

import numpy as np

from backends.common.contract import ADAM_BETA1, ADAM_BETA2
from parity.backend_run import ANY, NUMBER, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.comparators import compare_exact
from parity.stages.kit import Stage, each_backend, pairs
from parity.stages.training import training_config
from parity.verdict import SPEC, Check, Comparison

TEXT_FIELDS = ("name", "schedule")
NUMBER_FIELDS = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay")
FIELDS = ("name", *NUMBER_FIELDS, "schedule")

OUTPUTS = {
    "optimizer_settings": OutputKeys(
        {name: (ANY if name in TEXT_FIELDS else NUMBER) for name in FIELDS},
    )
}


def settings(run) -> dict:
    """The backend's optimizer_settings for the configuration it trains with, once per case."""
    return run.once(
        "hyperparameters",
        lambda: run.call(
            "hyperparameters",
            "optimizer_settings",
            training_config(run),
            run.inputs.data_path,
            outputs=OUTPUTS["optimizer_settings"],
        ),
    )


def spec_settings(config) -> dict:
    """What docs/spec.md §10 says training builds for `config` (a PinnConfig)."""
    return {
        "name": "adam",
        "learning_rate": config.learning_rate,
        "beta1": ADAM_BETA1,
        "beta2": ADAM_BETA2,
        "epsilon": config.adam_epsilon,
        "weight_decay": 0.0,
        "schedule": "constant",
    }


def _as_compared(field: str, value):
    """A field as it is compared: a string as it is, a number at float32 (the module doc says why)."""
    return value if field in TEXT_FIELDS else np.float32(value)


def compare_settings(ctx: CaseContext, settings_a: dict, settings_b: dict, check: Check) -> list[Comparison]:
    """One exact comparison per field of FIELDS (metric: the field's name), `settings_a` on the left."""
    return [
        compare_exact(
            _as_compared(field, settings_a[field]),
            _as_compared(field, settings_b[field]),
            config_id=ctx.case_id,
            stage="hyperparameters",
            check=check,
            metric=field,
        )
        for field in FIELDS
    ]


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    outputs = each_backend(ctx, "hyperparameters", settings, result)
    for label, ref, other in pairs(ctx, outputs):
        result.comparisons += compare_settings(ctx, other, ref, label)
    expected = spec_settings(ctx.case.config)
    for name, found in outputs.items():
        result.comparisons += compare_settings(ctx, found, expected, Check(name, SPEC))
    result.golden_by_backend = outputs
    return result


STAGE = Stage(
    "hyperparameters",
    "the optimiser training builds: name, learning rate, betas, epsilon, weight decay, schedule (exact)",
    check,
    outputs=OUTPUTS,
)
