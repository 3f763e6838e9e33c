"""Stage grouping: neighbour groups (docs/spec.md §4) for training and for inference.

Indices exact and offsets allclose between backends and with the referee, and the spec's invariants
on each backend whatever its random stream. The first backend's training groups feed every later
stage that needs group offsets (`produces`).
"""

from __future__ import annotations

import numpy as np

from parity.backend_run import ARRAY, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.comparators import check_invariants, compare_allclose, compare_exact
from parity.stages.kit import Stage, each_backend, pairs, referee_checks, referee_output
from parity.tolerances import tolerance
from parity.verdict import SPEC, Check, Comparison

OUTPUTS = {"group": OutputKeys({"nn_indices": ARRAY, "coords_px": ARRAY, "center_px": ARRAY, "offsets_px": ARRAY})}


def groups(run, inference: bool = False) -> dict:
    """The backend's groups of the case's scan positions: for training, or all positions for inference."""
    ds = run.inputs.dataset
    args = (ds.xcoords, ds.ycoords, run.inputs.config) + ((True,) if inference else ())
    return run.once(
        "inference groups" if inference else "groups",
        lambda: run.call("grouping", "group", *args, outputs=OUTPUTS["group"]),
    )


def _invariants(ctx: CaseContext, name: str, found: dict, inference: bool) -> Comparison:
    """Properties docs/spec.md §4 requires, whatever the random stream."""
    ds, cfg = ctx.inputs.dataset, ctx.case.config
    x, y = ds.xcoords, ds.ycoords
    idx, coords, offsets = found["nn_indices"], found["coords_px"], found["offsets_px"]
    m, c = len(x), cfg.n_channels
    b_expected = m if inference else (cfg.n_groups or m)
    items = [
        ("shape", idx.shape == (b_expected, c), f"nn_indices {idx.shape}, expected {(b_expected, c)}"),
        ("dtype", idx.dtype == np.int64, f"nn_indices dtype {idx.dtype}, expected int64"),
        ("range", bool(np.all((idx >= 0) & (idx < m))), "indices outside 0..M-1"),
    ]
    if idx.shape == (b_expected, c) and items[2][1]:
        xy = np.stack([x, y], -1)
        items.append(("coords", bool(np.array_equal(coords, xy[idx])), "coords_px != positions[nn_indices]"))
        items.append(
            (
                "offsets",
                bool(np.allclose(offsets, coords - coords.mean(1, keepdims=True), atol=1e-9)),
                "offsets_px != coords - mean(coords)",
            )
        )
        items.append(("distinct", all(len(set(row)) == c for row in idx.tolist()), "a group repeats a member"))
        if c > 1:
            # Members must lie among the K nearest of some seed: check the K+1 nearest of each member's group.
            d2 = (x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2
            order = np.lexsort((np.broadcast_to(np.arange(m), d2.shape), d2), axis=1)
            near = [set(row) for row in order[:, 1 : cfg.neighbor_count + 1]]  # column 0 is the position itself
            stray = [g for g, row in enumerate(idx.tolist()) if not any(set(row) <= ns for ns in near)]
            items.append(
                (
                    "members among the K nearest of a seed",
                    not stray,
                    f"{len(stray)} group(s), first {stray[:1]}, not within any seed's "
                    f"{cfg.neighbor_count} nearest others",
                )
            )
        elif not inference:
            items.append(("seeds distinct", len(set(idx[:, 0].tolist())) == b_expected, "a seed repeats"))
    check = Check(name, SPEC, "inference" if inference else "")
    return check_invariants(items, config_id=ctx.case_id, stage="grouping", check=check)


def check(ctx: CaseContext) -> StageResult:
    result = StageResult()
    for inference in (False, True):
        variant = "inference" if inference else ""
        outputs = each_backend(ctx, "grouping", lambda run, inference=inference: groups(run, inference), result)
        for label, ref, other in pairs(ctx, outputs, variant):
            result.comparisons.append(
                compare_exact(
                    other["nn_indices"],
                    ref["nn_indices"],
                    config_id=ctx.case_id,
                    stage="grouping",
                    check=label,
                    metric="nn_indices",
                )
            )
            result.comparisons.append(
                compare_allclose(
                    other["offsets_px"],
                    ref["offsets_px"],
                    tolerance("grouping", "max_abs", "float64"),
                    config_id=ctx.case_id,
                    stage="grouping",
                    check=label,
                    metric="offsets_px",
                )
            )
        for name, found in outputs.items():
            result.comparisons.append(_invariants(ctx, name, found, inference))
        truth = referee_output(ctx, "grouping", lambda run, inference=inference: groups(run, inference), result)
        result.comparisons.extend(
            referee_checks(
                ctx,
                "grouping",
                outputs,
                truth,
                keys=("nn_indices", "offsets_px"),
                exact=("nn_indices",),
                variant=variant,
            )
        )
        if not inference:
            keep = ("nn_indices", "offsets_px")
            result.golden_by_backend = {n: {k: g[k] for k in keep} for n, g in outputs.items()}
    return result


STAGE = Stage(
    "grouping",
    "neighbour groups: indices, coordinates and offsets",
    check,
    outputs=OUTPUTS,
    produces={"group offsets": lambda run, upstream: groups(run)},
    referee=True,
)
