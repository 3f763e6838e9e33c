"""Grouped model inputs in torch's layout (docs/spec.md §4): for training, evaluation and prediction.

Counterpart of backends/tf_pinn/inputs.py. train.py and stitch.py both
import it; it imports neither, so neither imports the other.
"""

from __future__ import annotations

import numpy as np
import torch

from backends.common.dataset import Dataset
from backends.common.geometry import Groups, check_offsets
from backends.common.validation import check_pattern_size
from backends.torch_pinn.grouping import group_positions
from backends.torch_pinn.model import PinnModel


def grouped_inputs(data: Dataset, groups: Groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Native inputs of `groups`: raw amplitudes (B, C, N, N) float32 and offsets (B, C, 2) float32."""
    diffraction = torch.from_numpy(np.ascontiguousarray(data.diffraction[groups.nn_indices], dtype=np.float32))
    offsets = torch.from_numpy(np.ascontiguousarray(groups.offsets_px, dtype=np.float32))
    return diffraction, offsets


def inference_inputs(model: PinnModel, data: Dataset) -> tuple[Groups, torch.Tensor, torch.Tensor]:
    """Inference groups of `data` (every position a seed, §4) as native inputs for `model`."""
    check_pattern_size(data, model.n, "the model's")
    groups = group_positions(data.xcoords, data.ycoords, model.config, inference=True)
    if model.config.object_big:
        check_offsets(groups.offsets_px, data.N)
    return (groups, *grouped_inputs(data, groups))
