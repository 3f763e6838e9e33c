"""Grouped model inputs in TensorFlow's layout (docs/spec.md §4): for training, evaluation and prediction.

Counterpart of backends/torch_pinn/inputs.py. train.py and stitch.py both
import it; it imports neither, so neither imports the other.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.dataset import Dataset
from backends.common.geometry import Groups, check_offsets
from backends.common.validation import check_pattern_size
from backends.tf_pinn.grouping import group_positions
from backends.tf_pinn.model import PinnModel


def grouped_inputs(data: Dataset, groups: Groups):
    """Native inputs of `groups`: raw amplitudes (B, N, N, C) float32 and offsets (B, C, 2) float32."""
    patterns = tf.constant(np.asarray(data.diffraction, dtype=np.float32))  # (M, N, N)
    members = tf.gather(patterns, tf.constant(groups.nn_indices))  # (B, C, N, N)
    return tf.transpose(members, (0, 2, 3, 1)), tf.constant(groups.offsets_px, dtype=tf.float32)


def inference_inputs(model: PinnModel, data: Dataset):
    """Inference groups of `data` (every position a seed, §4) as native inputs for `model`."""
    check_pattern_size(data, model.n, "the model's")
    groups = group_positions(data.xcoords, data.ycoords, model.config, inference=True)
    if model.config.object_big:
        check_offsets(groups.offsets_px, data.N)
    return (groups, *grouped_inputs(data, groups))
