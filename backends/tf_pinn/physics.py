"""Physics of the forward model (docs/spec.md §6-§8) in TensorFlow, channels-last.

Counterpart of backends/torch_pinn/physics.py. Images are (B, H, W, C); shifts
and offsets are (B, C, 2) as (x, y) in pixels, one per image.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from backends.common.contract import MERGE_EPSILON
from backends.common.geometry import check_offsets  # a shape check, not numerics: shared, re-exported here
from backends.common.validation import check_translate_inputs


def _translate_real(images, shifts_px):
    """4-tap bilinear translation of real (B, H, W, C) images, zero outside."""
    shape = tf.shape(images)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    flat = tf.reshape(tf.transpose(images, (0, 3, 1, 2)), (b * c, h, w))
    shifts = tf.reshape(tf.cast(shifts_px, tf.float32), (b * c, 2))
    dx, dy = shifts[:, 0], shifts[:, 1]
    ix, iy = tf.math.floor(dx), tf.math.floor(dy)
    fx, fy = dx - ix, dy - iy

    def taps(size, whole, frac):
        # out(x) = (1 - f) img(x - i) + f img(x - i - 1); a source outside [0, size) weighs 0.
        grid = tf.range(size)[None, :]
        src0 = grid - tf.cast(whole, tf.int32)[:, None]
        src1 = src0 - 1

        def inside(src):
            return tf.cast(tf.logical_and(src >= 0, src < size), tf.float32)

        w0 = (1.0 - frac)[:, None] * inside(src0)
        w1 = frac[:, None] * inside(src1)
        return tf.clip_by_value(src0, 0, size - 1), tf.clip_by_value(src1, 0, size - 1), w0, w1

    r0, r1, wy0, wy1 = taps(h, iy, fy)
    c0, c1, wx0, wx1 = taps(w, ix, fx)
    rows0 = tf.gather(flat, r0, axis=1, batch_dims=1)
    rows1 = tf.gather(flat, r1, axis=1, batch_dims=1)

    def cols(img, idx):
        return tf.gather(img, idx, axis=2, batch_dims=1)

    wy0, wy1 = wy0[:, :, None], wy1[:, :, None]
    wx0, wx1 = wx0[:, None, :], wx1[:, None, :]
    out = (
        (wy0 * wx0) * cols(rows0, c0)
        + (wy0 * wx1) * cols(rows0, c1)
        + (wy1 * wx0) * cols(rows1, c0)
        + (wy1 * wx1) * cols(rows1, c1)
    )
    return tf.transpose(tf.reshape(out, (b, c, h, w)), (0, 2, 3, 1))


def translate(images, shifts_px):
    """T(img, d)(y, x) = img(y - d_y, x - d_x) per (B, C) image; float32 or complex64 in and out, shifts float32."""
    images = tf.convert_to_tensor(images)
    shifts_px = tf.convert_to_tensor(shifts_px)
    check_translate_inputs(images.shape, shifts_px.shape, images.dtype.name, shifts_px.dtype.name, channels_last=True)
    if images.dtype.is_complex:
        parts = tf.concat([tf.math.real(images), tf.math.imag(images)], axis=-1)
        moved = _translate_real(parts, tf.concat([shifts_px, shifts_px], axis=1))
        re, im = tf.split(moved, 2, axis=-1)
        return tf.complex(re, im)
    return _translate_real(images, shifts_px)


def weight_window(n: int):
    """(n, n) float32 W: 1 out to radius N/4 - 1.5 from pixel (N/2, N/2), 0 from N/4 - 0.5, linear between.

    Where the default probe has power (§2, §8, §11): the merge and the stitcher weight patches by W,
    so output the data never constrains is never averaged in.
    """
    offset = tf.range(n, dtype=tf.float64) - n / 2
    r = tf.sqrt(offset[:, None] ** 2 + offset[None, :] ** 2)
    return tf.cast(tf.clip_by_value(n / 4 - 0.5 - r, 0.0, 1.0), tf.float32)


def extend_objects(object_patches, offsets_px):
    """object_big merge (§8): each W O_c and W on a 3N/2 canvas, shifted by +d_c, averaged, shifted back."""
    object_patches = tf.convert_to_tensor(object_patches, dtype=tf.complex64)
    offsets_px = tf.convert_to_tensor(offsets_px, dtype=tf.float32)
    n = int(object_patches.shape[1])
    if tf.executing_eagerly():
        check_offsets(offsets_px.numpy(), n)
    else:  # traced (a training step, a prediction): the same check on the host each time the graph runs
        tf.numpy_function(lambda d: _offsets_checked(d, n), [offsets_px], tf.bool, stateful=True)
    pad = n // 4
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
    window = weight_window(n)[None, :, :, None]
    canvas = tf.pad(object_patches * tf.cast(window, tf.complex64), paddings)
    numerator = tf.reduce_sum(translate(canvas, offsets_px), axis=-1, keepdims=True)
    masks = tf.pad(window, paddings)
    masks = tf.broadcast_to(masks, tf.shape(canvas))
    denominator = tf.reduce_sum(translate(masks, offsets_px), axis=-1, keepdims=True) + MERGE_EPSILON
    merged = tf.complex(tf.math.real(numerator) / denominator, tf.math.imag(numerator) / denominator)
    merged = tf.broadcast_to(merged, tf.shape(canvas))
    back = translate(merged, -offsets_px)
    return back[:, pad : pad + n, pad : pad + n, :]


def _offsets_checked(offsets_px, n: int) -> np.ndarray:
    check_offsets(offsets_px, n)
    return np.True_


def far_field(object_ext, probe):
    """Psi = fftshift(F_ortho(P * O_ext)), complex64 (B, N, N, C)."""
    object_ext = tf.convert_to_tensor(object_ext, dtype=tf.complex64)
    probe = tf.convert_to_tensor(probe, dtype=tf.complex64)
    n = int(probe.shape[0])
    exit_wave = tf.transpose(object_ext * probe[None, :, :, None], (0, 3, 1, 2))
    spectrum = tf.signal.fft2d(exit_wave)
    scale = tf.constant(1.0 / n, tf.float32)  # ortho: 1 / sqrt(N * N)
    spectrum = tf.complex(tf.math.real(spectrum) * scale, tf.math.imag(spectrum) * scale)
    spectrum = tf.signal.fftshift(spectrum, axes=(2, 3))
    return tf.transpose(spectrum, (0, 2, 3, 1))


def forward_model(object_patches, probe, offsets_px, object_big: bool):
    """Far-field amplitude |Psi| (float32, native layout) of object patches O."""
    object_ext = extend_objects(object_patches, offsets_px) if object_big else object_patches
    return tf.abs(far_field(object_ext, probe))
