"""Stitching predicted patches into one object (docs/spec.md §11) with TensorFlow ops.

Counterpart of backends/torch_pinn/stitch.py. The canvas geometry (origin,
size, tile corners, fractional shifts) is the shared shape helper
backends.common.geometry.canvas_geometry; shifting and accumulation are here.
TF-only: patches are shifted and summed in blocks of `_STITCH_BLOCK` (a
segment sum per block); torch accumulates tile by tile.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.dataset import Dataset
from backends.common.geometry import canvas_geometry
from backends.tf_pinn.model import PinnModel
from backends.tf_pinn.physics import support_mask, translate
from backends.tf_pinn.train import inference_inputs

MASK_FLOOR = 1e-3  # canvas pixels whose summed mask is below this are 0
PREDICT_CHUNK = 64  # groups per forward pass
_STITCH_BLOCK = 256  # patches shifted and summed at once


def stitch_patches(patches, xcoords, ycoords) -> tuple[np.ndarray, tuple]:
    """Average (P, N, N) complex patches O_ext, masked by S, on the global canvas; returns (object, origin_px)."""
    patches = tf.convert_to_tensor(patches, dtype=tf.complex64)
    x = np.asarray(xcoords, dtype=np.float64).ravel()
    y = np.asarray(ycoords, dtype=np.float64).ravel()
    if patches.shape.rank != 3 or patches.shape[1] != patches.shape[2] or not (len(x) == len(y) == patches.shape[0]):
        raise ValueError(f"stitch_patches: patches must be (P, N, N) with P coordinates; got patches "
                         f"{tuple(patches.shape)}, {len(x)} x and {len(y)} y coordinates")
    p, n = int(patches.shape[0]), int(patches.shape[1])
    geom = canvas_geometry(x, y, n)
    height, width = geom.shape
    mask = support_mask(n)
    tile = np.arange(n + 1)
    sums = tf.zeros((height * width, 3), tf.float64)
    for start in range(0, p, _STITCH_BLOCK):
        stop = min(start + _STITCH_BLOCK, p)
        # Each masked patch and its mask, zero-padded to (N+1)x(N+1) and shifted by frac(p) (§6).
        masked = patches[start:stop] * tf.cast(mask, tf.complex64)[None]
        stack = tf.stack([tf.math.real(masked), tf.math.imag(masked),
                          tf.broadcast_to(mask, (stop - start, n, n))], axis=-1)
        stack = tf.pad(stack, [[0, 0], [0, 1], [0, 1], [0, 0]])  # (P, N+1, N+1, 3)
        shifts = tf.constant(np.repeat(geom.fractions_px[start:stop, None, :], 3, axis=1), tf.float32)
        moved = tf.cast(translate(stack, shifts), tf.float64)
        # Canvas index of every tile pixel; accumulated in float64 with a segment sum.
        rows = geom.tile_offsets[start:stop, 1][:, None, None] + tile[None, :, None]
        cols = geom.tile_offsets[start:stop, 0][:, None, None] + tile[None, None, :]
        flat_index = tf.constant((rows * width + cols).reshape(-1), tf.int64)
        sums += tf.math.unsorted_segment_sum(tf.reshape(moved, (-1, 3)), flat_index, height * width)
    sums = tf.reshape(sums, (height, width, 3))
    weight = sums[..., 2]
    covered = weight >= MASK_FLOOR
    safe = tf.where(covered, weight, tf.ones_like(weight))
    real = tf.where(covered, sums[..., 0] / safe, tf.zeros_like(weight))
    imag = tf.where(covered, sums[..., 1] / safe, tf.zeros_like(weight))
    obj = tf.cast(tf.complex(real, imag), tf.complex64).numpy()
    return obj, geom.origin_px


def predict_patches(model: PinnModel, data: Dataset) -> tuple:
    """O_ext of every member of every inference group: (P, N, N) complex64 and each member's x, y."""
    cfg = model.config
    groups, diffraction, offsets = inference_inputs(model, data)
    predict = tf.function(model.object_ext, input_signature=[
        tf.TensorSpec((None, data.N, data.N, cfg.n_channels), tf.float32),
        tf.TensorSpec((None, cfg.n_channels, 2), tf.float32)], autograph=False)
    parts = [predict(diffraction[s:s + PREDICT_CHUNK], offsets[s:s + PREDICT_CHUNK])
             for s in range(0, int(diffraction.shape[0]), PREDICT_CHUNK)]
    object_ext = tf.concat(parts, axis=0)  # (B, N, N, C)
    # Group by group, members in order: (B * C, N, N).
    patches = tf.reshape(tf.transpose(object_ext, (0, 3, 1, 2)), (-1, data.N, data.N))
    coords = groups.coords_px.reshape(-1, 2)
    return patches, coords[:, 0].copy(), coords[:, 1].copy()


def reconstruct(model: PinnModel, data: Dataset) -> tuple[np.ndarray, tuple]:
    """The stitched object of `data` and its origin_px (x0, y0)."""
    return stitch_patches(*predict_patches(model, data))
