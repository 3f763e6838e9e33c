"""The pipeline: one module per stage under parity/stages/, in the order data flows through them.

`STAGES` is the registry: each name is a module here that defines `STAGE` (a parity.stages.kit.Stage:
what the stage needs, how it calls each adapter, its outputs, its comparisons, its goldens and plots).
Adding a stage is one new module, its name below, an adapter method (adapters.base.STAGE_METHODS) and
a ledger entry (docs/design.md, "Adding a stage").

The order matters: when several stages of one configuration fail, the first one in this order is
where the backends part (later failures may only be its echo), and that is the stage the report names
as the first divergence. The names are plain data, so the light modules that validate a stage name
(verdicts, ledger, profiles, baselines) never import the stage modules themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache

STAGES: tuple[str, ...] = (
    "config",
    "data",
    "grouping",
    "shapes",
    "translation",
    "forward",
    "loss",
    "model",
    "gradients",
    "optimizer",
    "hyperparameters",
    "training",
    "reconstruction",
    "bundle",
    "cli",
)


@cache
def stage(name: str):
    """The Stage defined by parity/stages/<name>.py; ValueError naming it when unknown."""
    stage_index(name)
    module = importlib.import_module(f"{__name__}.{name}")
    found = module.STAGE
    if found.name != name:
        raise ValueError(f"{module.__name__} defines STAGE {found.name!r}, expected {name!r}")
    return found


@cache
def pipeline() -> tuple:
    """Every Stage, in pipeline order; ValueError listing what is inconsistent (pipeline_problems)."""
    stages = tuple(stage(name) for name in STAGES)
    problems = pipeline_problems(stages)
    if problems:
        raise ValueError("the stage registry is inconsistent:\n  " + "\n  ".join(problems))
    return stages


def pipeline_problems(stages) -> list[str]:
    """What is inconsistent in `stages` (Stage records, in pipeline order), one line each: a product taken
    before any stage at or before it makes it, a product made twice, an output spec for a method the stage
    does not call. Empty for a sound pipeline (tests/parity/test_pipeline.py holds the real one to it)."""
    problems, made = [], {}
    for found in stages:
        for product in found.produces:
            if product in made:
                problems.append(f"stage {found.name}: {product!r} is already made by stage {made[product]}")
            made.setdefault(product, found.name)
        for product in found.needs:
            if product not in made:
                problems.append(f"stage {found.name} needs {product!r}, which no stage at or before it makes")
        for method in found.outputs:
            if method.removesuffix("_native") not in found.methods:
                problems.append(
                    f"stage {found.name}: output keys for {method!r}, not one of its adapter methods {found.methods}"
                )
    return problems


def description(name: str) -> str:
    """One line: what is compared at stage `name`."""
    return stage(name).description


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
