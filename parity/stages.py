"""The pipeline stages, in the order data flows through them.

The order matters: when several stages of one configuration fail, the first
one in this order is where the two backends part (later failures may only be
its echo), and that is the stage the report names as the first divergence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline that the harness checks in isolation."""

    name: str
    """Identifier used in test ids, ledger keys, golden file names and reports."""
    description: str
    """One line: what is compared at this stage."""


STAGE_TABLE: tuple[Stage, ...] = (
    Stage("config", "effective configuration, field by field, exact"),
    Stage("data", "dataset arrays as each backend loads them, exact"),
    Stage("grouping", "neighbour groups: indices, coordinates and offsets"),
    Stage("shapes", "shapes and dtypes of every model input and output"),
    Stage("translation", "sub-pixel bilinear translation of real and complex images"),
    Stage("forward", "forward model: object patches and probe to far-field amplitude"),
    Stage("loss", "Poisson deviance / MAE of a prediction against measured amplitudes"),
    Stage("model", "network prediction with the same canonical weights"),
    Stage("gradients", "gradient of the loss for every canonical weight"),
    Stage("optimizer", "optimiser steps from identical weights and gradients (Adam, §10)"),
    Stage("training", "loss trajectory and final weights after training from the same start"),
    Stage("reconstruction", "stitched object after removing global phase and scale"),
    Stage("bundle", "save / load / cross-load of the model bundle"),
    Stage("cli", "train CLI with flags left out yields the canonical defaults"),
)

STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGE_TABLE)
DESCRIPTIONS: dict[str, str] = {stage.name: stage.description for stage in STAGE_TABLE}


def stage_index(name: str) -> int:
    """Position of `name` in pipeline order; ValueError naming it when unknown."""
    try:
        return STAGES.index(name)
    except ValueError:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}") from None


def first_divergence(failed_stages: Iterable[str]) -> str | None:
    """The earliest failed stage in pipeline order, or None when nothing failed.

    An unknown name raises rather than being skipped: a typo must not hide a
    failure from the summary.
    """
    indices = [stage_index(name) for name in failed_stages]
    return STAGES[min(indices)] if indices else None
