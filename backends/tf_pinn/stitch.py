"""Stitching predicted patches into one object (docs/spec.md §11) with TensorFlow ops.

Counterpart of backends/torch_pinn/stitch.py. The canvas geometry (origin,
size, tile corners, fractional shifts) is the shared shape helper
backends.common.geometry.canvas_geometry; shifting and accumulation are here.
TF-only: patches are shifted in blocks of `_STITCH_BLOCK` and the windows
summed with a segment sum; the patches are then added one by one in a
tf.function loop (each turn depends on the sum before it; eager slicing is
4x slower), where torch accumulates tile by tile eagerly.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.contract import MASK_FLOOR, PREDICT_CHUNK
from backends.common.dataset import Dataset
from backends.common.geometry import canvas_geometry
from backends.common.validation import check_stitch_inputs
from backends.tf_pinn.inputs import inference_inputs
from backends.tf_pinn.model import PinnModel
from backends.tf_pinn.physics import translate, weight_window

_STITCH_BLOCK = 256  # patches shifted at once


@tf.function(
    autograph=True,
    input_signature=[
        tf.TensorSpec((None, None), tf.complex128),
        tf.TensorSpec((None, None), tf.int64),
        tf.TensorSpec((), tf.int64),
        tf.TensorSpec((), tf.bool),
    ],
)
def _add_in_order(tiles, flat_index, size, align_phases):
    """Σ of the (P, T) flattened tiles at their canvas indices, added one by one; with align_phases
    each first turned by the phase of its correlation with the sum so far (none where that is 0)."""
    total = tf.zeros((size,), tf.complex128)
    for k in tf.range(tf.shape(tiles)[0]):
        tile, where = tiles[k], flat_index[k]
        c = tf.reduce_sum(tf.math.conj(tile) * tf.gather(total, where))
        magnitude = tf.abs(c)
        turn = tf.where(
            tf.logical_and(align_phases, magnitude > 0),
            c / tf.cast(tf.where(magnitude > 0, magnitude, 1.0), tf.complex128),
            tf.constant(1.0, tf.complex128),
        )
        total = tf.tensor_scatter_nd_add(total, where[:, None], tile * turn)
    return total


def stitch_patches(patches, xcoords, ycoords, align_phases: bool = True) -> tuple[np.ndarray, tuple]:
    """Average (P, N, N) complex patches O_ext, weighted by W, on the global canvas; returns (object, origin_px).

    Patches are added in order; with align_phases each is first turned by the phase of its
    correlation with the sum so far (a single pattern leaves its patch's global phase free, §11).
    """
    patches = tf.convert_to_tensor(patches, dtype=tf.complex64)
    x, y = check_stitch_inputs(patches.shape, xcoords, ycoords)
    p, n = int(patches.shape[0]), int(patches.shape[1])
    geom = canvas_geometry(x, y, n)
    height, width = geom.shape
    window = weight_window(n)
    tile = np.arange(n + 1)
    tiles, indices = [], []
    weight = tf.zeros((height * width,), tf.float64)
    for start in range(0, p, _STITCH_BLOCK):
        stop = min(start + _STITCH_BLOCK, p)
        # Each weighted patch and its window, zero-padded to (N+1)x(N+1) and shifted by frac(p) (§6).
        weighted = patches[start:stop] * tf.cast(window, tf.complex64)[None]
        stack = tf.stack(
            [tf.math.real(weighted), tf.math.imag(weighted), tf.broadcast_to(window, (stop - start, n, n))], axis=-1
        )
        stack = tf.pad(stack, [[0, 0], [0, 1], [0, 1], [0, 0]])  # (P, N+1, N+1, 3)
        shifts = tf.constant(np.repeat(geom.fractions_px[start:stop, None, :], 3, axis=1), tf.float32)
        moved = tf.reshape(tf.cast(translate(stack, shifts), tf.float64), (stop - start, -1, 3))
        # Canvas index of every tile pixel; the windows are summed in float64 with a segment sum.
        rows = geom.tile_offsets[start:stop, 1][:, None, None] + tile[None, :, None]
        cols = geom.tile_offsets[start:stop, 0][:, None, None] + tile[None, None, :]
        flat_index = tf.constant((rows * width + cols).reshape(stop - start, -1), tf.int64)
        weight += tf.math.unsorted_segment_sum(
            tf.reshape(moved[..., 2], (-1,)), tf.reshape(flat_index, (-1,)), height * width
        )
        tiles.append(tf.complex(moved[..., 0], moved[..., 1]))
        indices.append(flat_index)
    total = _add_in_order(
        tf.concat(tiles, 0), tf.concat(indices, 0), tf.constant(height * width, tf.int64), tf.constant(align_phases)
    )
    weight, total = tf.reshape(weight, (height, width)), tf.reshape(total, (height, width))
    covered = weight >= MASK_FLOOR
    safe = tf.where(covered, weight, tf.ones_like(weight))
    real = tf.where(covered, tf.math.real(total) / safe, tf.zeros_like(safe))
    imag = tf.where(covered, tf.math.imag(total) / safe, tf.zeros_like(safe))
    obj = tf.cast(tf.complex(real, imag), tf.complex64).numpy()
    return obj, geom.origin_px


def predict_patches(model: PinnModel, data: Dataset) -> tuple:
    """O_ext of every member of every inference group: (P, N, N) complex64 and each member's x, y."""
    cfg = model.config
    groups, diffraction, offsets = inference_inputs(model, data)
    predict = tf.function(
        model.object_ext,
        input_signature=[
            tf.TensorSpec((None, data.N, data.N, cfg.n_channels), tf.float32),
            tf.TensorSpec((None, cfg.n_channels, 2), tf.float32),
        ],
        autograph=False,
    )
    parts = [
        predict(diffraction[s : s + PREDICT_CHUNK], offsets[s : s + PREDICT_CHUNK])
        for s in range(0, int(diffraction.shape[0]), PREDICT_CHUNK)
    ]
    object_ext = tf.concat(parts, axis=0)  # (B, N, N, C)
    # Group by group, members in order: (B * C, N, N).
    patches = tf.reshape(tf.transpose(object_ext, (0, 3, 1, 2)), (-1, data.N, data.N))
    coords = groups.coords_px.reshape(-1, 2)
    return patches, coords[:, 0].copy(), coords[:, 1].copy()


def reconstruct(model: PinnModel, data: Dataset) -> tuple[np.ndarray, tuple]:
    """The stitched object of `data` and its origin_px (x0, y0)."""
    return stitch_patches(*predict_patches(model, data))
