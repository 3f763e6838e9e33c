"""Stage data: the dataset arrays each backend loads from the case's file, exact; the golden keeps digests."""

from __future__ import annotations

import hashlib

import numpy as np

from parity.backend_run import ARRAY, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.stages.kit import Stage, each_backend, exact_pairs, shared_note

OUTPUTS = {"load_dataset": OutputKeys({"diffraction": ARRAY, "xcoords": ARRAY, "ycoords": ARRAY, "probe": ARRAY})}


def loaded(run) -> dict:
    return run.once(
        "data", lambda: run.call("data", "load_dataset", run.inputs.data_path, outputs=OUTPUTS["load_dataset"])
    )


def _digest(arrays) -> dict:
    return {
        k: {
            "shape": list(v.shape),
            "dtype": str(v.dtype),
            "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
        }
        for k, v in sorted(arrays.items())
    }


def check(ctx: CaseContext) -> StageResult:
    result = StageResult(notes=shared_note(ctx, "data"))
    outputs = each_backend(ctx, "data", loaded, result)
    exact_pairs(ctx, "data", outputs, "arrays", result)
    result.golden_by_backend = {name: _digest(arrays) for name, arrays in outputs.items()}
    return result


STAGE = Stage("data", "dataset arrays as each backend loads them, exact", check, outputs=OUTPUTS)
