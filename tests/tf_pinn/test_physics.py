"""Translation, support, merge and far field (docs/spec.md §6-§8) against numpy float64."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from backends.tf_pinn.physics import extend_objects, far_field, forward_model, support_mask, translate
from ._reference import extend_np, far_field_np, support_np, translate_np

pytestmark = pytest.mark.tf


def _one(img, dx, dy):
    """translate of a single (H, W) image through the native (1, H, W, 1) layout."""
    out = translate(img[None, :, :, None], np.array([[[dx, dy]]], np.float32))
    return out.numpy()[0, :, :, 0]


def test_integer_shift_is_exact_with_zero_fill(rng):
    img = rng.standard_normal((12, 16)).astype(np.float32)
    out = _one(img, 3.0, -2.0)
    expected = np.zeros_like(img)
    expected[:-2, 3:] = img[2:, :-3]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(_one(img, 0.0, 0.0), img)


def test_shift_beyond_the_image_is_all_zero(rng):
    img = rng.standard_normal((8, 8)).astype(np.float32)
    assert not _one(img, 8.0, 0.0).any() and not _one(img, 0.5, -9.5).any()


@pytest.mark.parametrize("dx, dy", [(0.5, 0.0), (0.0, -0.5), (0.5, 0.5), (-1.5, 2.5), (1.25, -0.75),
                                    (3.9, -2.1)])
def test_fractional_shift_matches_numpy(rng, dx, dy):
    img = rng.standard_normal((10, 14))
    out = _one(img.astype(np.float32), dx, dy)
    np.testing.assert_allclose(out, translate_np(img, dx, dy), rtol=1e-5, atol=1e-6)


def test_half_pixel_by_hand():
    img = np.zeros((4, 4), np.float32)
    img[1, 1] = 2.0
    out = _one(img, 0.5, 0.0)
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 2] = 1.0
    np.testing.assert_array_equal(out, expected)
    # A half-pixel shift at the edge loses half of the edge pixel to the zero fill.
    edge = np.zeros((4, 4), np.float32)
    edge[2, 3] = 4.0
    out = _one(edge, 0.5, 0.0)
    assert out[2, 3] == 2.0 and out.sum() == 2.0


def test_agrees_with_scipy_grid_constant_linear_shift(rng):
    img = rng.standard_normal((16, 16))
    for dx, dy in rng.uniform(-5, 5, (5, 2)):
        expected = ndimage.shift(img, (dy, dx), order=1, mode="grid-constant", cval=0.0)
        np.testing.assert_allclose(_one(img.astype(np.float32), dx, dy), expected, atol=1e-5)


def test_one_shift_per_batch_and_channel(rng):
    imgs = rng.standard_normal((3, 9, 11, 2)).astype(np.float32)
    shifts = rng.uniform(-3, 3, (3, 2, 2)).astype(np.float32)
    out = translate(imgs, shifts).numpy()
    assert out.shape == imgs.shape and out.dtype == np.float32
    for b in range(3):
        for c in range(2):
            np.testing.assert_allclose(out[b, :, :, c], translate_np(imgs[b, :, :, c].astype(np.float64),
                                                                     *shifts[b, c].astype(np.float64)),
                                       rtol=1e-5, atol=1e-6)


def test_complex_images_shift_real_and_imag(rng):
    img = (rng.standard_normal((1, 8, 8, 1)) + 1j * rng.standard_normal((1, 8, 8, 1))).astype(np.complex64)
    out = translate(img, np.array([[[0.3, -1.7]]], np.float32)).numpy()
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out[0, :, :, 0], translate_np(img[0, :, :, 0].astype(np.complex128), 0.3, -1.7),
                               rtol=1e-5, atol=1e-6)


def test_negative_shift_is_the_adjoint(rng):
    a = rng.standard_normal((2, 10, 10, 3)).astype(np.float32)
    b = rng.standard_normal((2, 10, 10, 3)).astype(np.float32)
    d = rng.uniform(-4, 4, (2, 3, 2)).astype(np.float32)
    lhs = np.sum(translate(a, d).numpy().astype(np.float64) * b)
    rhs = np.sum(a.astype(np.float64) * translate(b, -d).numpy())
    assert abs(lhs - rhs) < 1e-4 * max(1.0, abs(lhs))


def test_translate_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float64"):
        translate(np.zeros((1, 4, 4, 1)), np.zeros((1, 1, 2), np.float32))


def test_support_mask():
    s = support_mask(16)
    assert s.dtype == tf.float32 and tuple(s.shape) == (16, 16)
    np.testing.assert_array_equal(s.numpy(), support_np(16))
    assert s.numpy()[4:12, 4:12].all() and s.numpy().sum() == 64


def test_far_field_centring_and_normalisation():
    n = 16
    flat = np.ones((1, n, n, 1), np.complex64)
    psi = far_field(flat, np.ones((n, n), np.complex64)).numpy()[0, :, :, 0]
    # Ortho FFT of a constant: all of it at zero frequency, which sits at (N/2, N/2), with value N.
    assert abs(psi[n // 2, n // 2] - n) < 1e-5
    psi_other = psi.copy()
    psi_other[n // 2, n // 2] = 0
    assert np.abs(psi_other).max() < 1e-5
    # A plane wave exp(2 pi i 3 x / N) lands three columns right of the centre.
    wave = np.exp(2j * np.pi * 3 * np.arange(n) / n)[None, :].repeat(n, 0)
    psi = far_field(wave[None, :, :, None].astype(np.complex64), np.ones((n, n), np.complex64)).numpy()
    assert np.unravel_index(np.argmax(np.abs(psi[0, :, :, 0])), (n, n)) == (n // 2, n // 2 + 3)


def test_far_field_matches_numpy(rng):
    n, c = 16, 3
    obj = rng.standard_normal((2, n, n, c)) + 1j * rng.standard_normal((2, n, n, c))
    probe = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    psi = far_field(obj.astype(np.complex64), probe.astype(np.complex64)).numpy()
    assert psi.dtype == np.complex64 and psi.shape == (2, n, n, c)
    expected = far_field_np(np.moveaxis(obj, -1, 1), probe)
    np.testing.assert_allclose(np.moveaxis(psi, -1, 1), expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def _patches(rng, b, n, c):
    s = support_np(n)
    return ((rng.uniform(0.5, 1, (b, n, n, c)) * np.exp(1j * rng.uniform(-1, 1, (b, n, n, c))))
            * s[None, :, :, None])


def test_object_big_merge_matches_numpy(rng):
    n, c = 16, 4
    patches = _patches(rng, 2, n, c)
    offsets = np.array([[[-3.25, 1.5], [2.75, -0.5], [0.0, 4.0], [0.5, -5.0]],
                        [[8.0, -8.0], [-1.0, 0.0], [-7.5, 0.25], [0.5, 7.75]]])
    got = extend_objects(patches.astype(np.complex64), offsets.astype(np.float32)).numpy()
    assert got.shape == (2, n, n, c) and got.dtype == np.complex64
    for b in range(2):
        expected = extend_np(np.moveaxis(patches[b], -1, 0), offsets[b])
        np.testing.assert_allclose(np.moveaxis(got[b], -1, 0), expected, rtol=0, atol=1e-5)


def test_object_big_single_member_at_zero_offset_returns_the_patch_inside_s(rng):
    n = 16
    patches = _patches(rng, 1, n, 1)
    got = extend_objects(patches.astype(np.complex64), np.zeros((1, 1, 2), np.float32)).numpy()
    # S / (S + 1e-3) inside the support, 0 outside.
    np.testing.assert_allclose(got, patches / (1 + 1e-3), rtol=1e-6, atol=1e-7)


def test_object_big_refuses_far_offsets(rng):
    patches = _patches(rng, 1, 16, 2).astype(np.complex64)
    with pytest.raises(ValueError, match="N/2 = 8"):
        extend_objects(patches, np.array([[[8.5, 0.0], [-8.5, 0.0]]], np.float32))


def test_forward_model_amplitude(rng):
    n, c = 16, 4
    patches = _patches(rng, 2, n, c)
    probe = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    offsets = rng.uniform(-3, 3, (2, c, 2))
    plain = forward_model(patches.astype(np.complex64), probe.astype(np.complex64), offsets.astype(np.float32),
                          object_big=False).numpy()
    expected = np.abs(far_field_np(np.moveaxis(patches, -1, 1), probe))
    assert plain.dtype == np.float32
    np.testing.assert_allclose(np.moveaxis(plain, -1, 1), expected, rtol=0, atol=2e-5 * expected.max())
    big = forward_model(patches.astype(np.complex64), probe.astype(np.complex64), offsets.astype(np.float32),
                        object_big=True).numpy()
    for b in range(2):
        ext = extend_np(np.moveaxis(patches[b], -1, 0), offsets[b])
        expected = np.abs(far_field_np(ext, probe))
        np.testing.assert_allclose(np.moveaxis(big[b], -1, 0), expected, rtol=0, atol=2e-5 * expected.max())
