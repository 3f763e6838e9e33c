"""Translation, support, merge and far field (docs/spec.md §6-§8) against the float64 referee."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from adapters import referee


def _shift(backend, images, shifts):
    """translate of (B, C, H, W) numpy images with (B, C, 2) shifts, through the native layout."""
    images = np.asarray(images)
    out = backend.physics.translate(backend.to_native(images), backend.tensor(np.asarray(shifts, np.float32)))
    return backend.from_native(out)


def _one(backend, img, dx, dy):
    """translate of a single (H, W) image."""
    return _shift(backend, img[None, None], [[[dx, dy]]])[0, 0]


def _ref(img, dx, dy):
    return referee.translate(img, np.array([dx, dy], np.float64))


def test_integer_shift_is_exact_with_zero_fill(backend, rng):
    img = rng.standard_normal((12, 16)).astype(np.float32)
    out = _one(backend, img, 3.0, -2.0)
    expected = np.zeros_like(img)
    expected[:-2, 3:] = img[2:, :-3]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(_one(backend, img, 0.0, 0.0), img)
    img = rng.standard_normal((8, 10)).astype(np.float32)
    expected = np.zeros_like(img)
    expected[:5, 2:] = img[3:, :8]  # out(y, x) = img(y + 3, x - 2)
    np.testing.assert_array_equal(_one(backend, img, 2.0, -3.0), expected)


def test_shift_beyond_the_image_is_all_zero(backend, rng):
    img = rng.standard_normal((8, 8)).astype(np.float32)
    assert not _one(backend, img, 8.0, 0.0).any() and not _one(backend, img, 0.5, -9.5).any()


@pytest.mark.parametrize("dx, dy", [(0.5, 0.0), (0.0, -0.5), (0.5, 0.5), (-1.5, 2.5), (1.25, -0.75), (3.9, -2.1)])
def test_fractional_shift_matches_the_referee(backend, rng, dx, dy):
    img = rng.standard_normal((10, 14))
    out = _one(backend, img.astype(np.float32), dx, dy)
    np.testing.assert_allclose(out, _ref(img, dx, dy), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shift", [(0.25, 0.75), (-1.3, 2.6), (3.5, -0.1), (-7.9, -6.2), (12.0, 0.4)])
def test_fractional_shifts_of_float32_images_match_the_referee(backend, rng, shift):
    img = rng.standard_normal((9, 11)).astype(np.float32)
    out = _one(backend, img, *shift)
    np.testing.assert_allclose(out, _ref(img.astype(np.float64), *shift), rtol=0, atol=2e-6)


def test_half_pixel_by_hand(backend):
    img = np.zeros((4, 4), np.float32)
    img[1, 1] = 2.0
    out = _one(backend, img, 0.5, 0.0)
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 2] = 1.0
    np.testing.assert_array_equal(out, expected)
    # A half-pixel shift at the edge loses half of the edge pixel to the zero fill.
    edge = np.zeros((4, 4), np.float32)
    edge[2, 3] = 4.0
    out = _one(backend, edge, 0.5, 0.0)
    assert out[2, 3] == 2.0 and out.sum() == 2.0


def test_half_pixel_shift_averages_neighbours(backend):
    img = np.arange(1, 7, dtype=np.float32).reshape(1, 6)
    # out(x) = 0.5 img(x) + 0.5 img(x - 1); img(-1) = 0
    np.testing.assert_array_equal(_one(backend, img, 0.5, 0.0)[0], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    # d = -0.5: floor -1, frac 0.5: out(y) = 0.5 img(y + 1) + 0.5 img(y); img(6) = 0
    down = _one(backend, img.reshape(6, 1), 0.0, -0.5)
    np.testing.assert_array_equal(down[:, 0], [1.5, 2.5, 3.5, 4.5, 5.5, 3.0])


def test_agrees_with_scipy_grid_constant_linear_shift(backend, rng):
    img = rng.standard_normal((16, 16))
    for dx, dy in rng.uniform(-5, 5, (5, 2)):
        expected = ndimage.shift(img, (dy, dx), order=1, mode="grid-constant", cval=0.0)
        np.testing.assert_allclose(_one(backend, img.astype(np.float32), dx, dy), expected, atol=1e-5)


def test_one_shift_per_batch_and_channel(backend, rng):
    imgs = rng.standard_normal((3, 2, 9, 11)).astype(np.float32)
    shifts = rng.uniform(-3, 3, (3, 2, 2)).astype(np.float32)
    native = backend.physics.translate(backend.to_native(imgs), backend.tensor(shifts))
    assert backend.numpy(native).dtype == np.float32
    out = backend.from_native(native)
    assert out.shape == imgs.shape
    np.testing.assert_allclose(out, referee.translate(imgs.astype(np.float64), shifts), rtol=1e-5, atol=1e-6)


def test_complex_images_shift_real_and_imag(backend, rng):
    img = (rng.standard_normal((1, 1, 8, 8)) + 1j * rng.standard_normal((1, 1, 8, 8))).astype(np.complex64)
    out = _shift(backend, img, [[[0.3, -1.7]]])
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out[0, 0], _ref(img[0, 0].astype(np.complex128), 0.3, -1.7), rtol=1e-5, atol=1e-6)


def test_complex_batch_with_one_shift_per_image(backend, rng):
    imgs = (rng.standard_normal((2, 3, 8, 8)) + 1j * rng.standard_normal((2, 3, 8, 8))).astype(np.complex64)
    shifts = rng.uniform(-3, 3, (2, 3, 2))
    out = _shift(backend, imgs, shifts)
    assert out.dtype == np.complex64 and out.shape == imgs.shape
    want = referee.translate(imgs.astype(np.complex128), shifts.astype(np.float32))
    np.testing.assert_allclose(out, want, rtol=0, atol=3e-6)


def test_negative_shift_is_the_adjoint(backend, rng):
    a = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    b = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    d = rng.uniform(-4, 4, (2, 3, 2)).astype(np.float32)
    lhs = np.sum(_shift(backend, a, d).astype(np.float64) * b)
    rhs = np.sum(a.astype(np.float64) * _shift(backend, b, -d))
    assert abs(lhs - rhs) < 1e-4 * max(1.0, abs(lhs))


def test_translate_refuses_other_dtypes_and_mismatched_shifts(backend):
    translate = backend.physics.translate
    images, shifts = np.zeros((1, 2, 4, 4), np.float32), np.zeros((1, 2, 2), np.float32)
    translate(backend.to_native(images), backend.tensor(shifts))
    with pytest.raises(TypeError, match="translate: images must be float32 or complex64, got float64"):
        translate(backend.to_native(images.astype(np.float64)), backend.tensor(shifts))
    with pytest.raises(TypeError, match="translate: shifts_px must be float32, got float64"):
        translate(backend.to_native(images), backend.tensor(shifts.astype(np.float64)))
    layout = r"\(B, H, W, C\)" if backend.channels_last else r"\(B, C, H, W\)"
    with pytest.raises(ValueError, match=f"translate: images must be {layout} with shifts_px \\(B, C, 2\\)"):
        translate(backend.to_native(images), backend.tensor(shifts[:, :1]))
    with pytest.raises(ValueError, match="shifts_px"):
        translate(backend.tensor(images[0]), backend.tensor(shifts))


def test_weight_window(backend):
    w = backend.numpy(backend.physics.weight_window(16))
    assert w.dtype == np.float32 and w.shape == (16, 16)
    np.testing.assert_allclose(w, referee.weight_window(16), rtol=0, atol=1e-7)
    # 1 at the centre, 0.5 one pixel inside S's edge on the axes, nothing outside S.
    assert w[8, 8] == 1 and w[8, 11] == w[8, 5] == w[11, 8] == 0.5 and w[8, 12] == w[8, 4] == 0
    assert not (w * (1 - referee.support_mask(16))).any()


def test_far_field_centring_and_normalisation(backend):
    n = 16
    far_field = backend.physics.far_field
    ones = backend.tensor(np.ones((n, n), np.complex64))
    psi = backend.from_native(far_field(backend.to_native(np.ones((1, 1, n, n), np.complex64)), ones))[0, 0]
    # Ortho FFT of a constant: all of it at zero frequency, which sits at (N/2, N/2), with value N.
    expected = np.zeros((n, n), dtype=np.complex64)
    expected[n // 2, n // 2] = n  # ortho: sum / N = N^2 / N, at the centre after fftshift
    np.testing.assert_allclose(psi, expected, rtol=0, atol=1e-5)
    # A plane wave exp(2 pi i 3 x / N) lands three columns right of the centre.
    wave = np.exp(2j * np.pi * 3 * np.arange(n) / n)[None, :].repeat(n, 0)
    psi = backend.from_native(far_field(backend.to_native(wave[None, None].astype(np.complex64)), ones))
    assert np.unravel_index(np.argmax(np.abs(psi[0, 0])), (n, n)) == (n // 2, n // 2 + 3)


@pytest.mark.parametrize("c", [1, 3])
def test_far_field_matches_the_referee(backend, rng, c):
    n = 16
    obj = rng.standard_normal((2, c, n, n)) + 1j * rng.standard_normal((2, c, n, n))
    probe = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    native = backend.physics.far_field(
        backend.to_native(obj.astype(np.complex64)), backend.tensor(probe.astype(np.complex64))
    )
    psi = backend.from_native(native)
    assert psi.dtype == np.complex64 and psi.shape == (2, c, n, n)
    expected = referee.far_field(obj.astype(np.complex64), probe.astype(np.complex64))
    np.testing.assert_allclose(psi, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _patches(rng, b, c, n):
    s = referee.support_mask(n)
    return (rng.uniform(0.5, 1, (b, c, n, n)) * np.exp(1j * rng.uniform(-1, 1, (b, c, n, n)))) * s


def _extend(backend, patches, offsets):
    out = backend.physics.extend_objects(
        backend.to_native(np.asarray(patches, np.complex64)), backend.tensor(np.asarray(offsets, np.float32))
    )
    return backend.from_native(out)


def test_object_big_merge_matches_the_referee(backend, rng):
    n, c = 16, 4
    patches = _patches(rng, 2, c, n)
    offsets = np.array(
        [[[-3.25, 1.5], [2.75, -0.5], [0.0, 4.0], [0.5, -5.0]], [[8.0, -8.0], [-1.0, 0.0], [-7.5, 0.25], [0.5, 7.75]]]
    )
    got = _extend(backend, patches, offsets)
    assert got.shape == (2, c, n, n) and got.dtype == np.complex64
    np.testing.assert_allclose(got, referee.extend_objects(patches, offsets), rtol=0, atol=1e-5)


def test_object_big_merge_of_centred_random_offsets(backend, rng):
    n = 16
    patches = _patches(rng, 2, 4, n).astype(np.complex64)
    offsets = rng.uniform(-4, 4, (2, 4, 2))
    offsets = (offsets - offsets.mean(axis=1, keepdims=True)).astype(np.float32)
    got = _extend(backend, patches, offsets)
    assert got.shape == patches.shape and got.dtype == np.complex64
    want = referee.extend_objects(patches.astype(np.complex128), offsets.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_object_big_single_member_at_zero_offset_returns_the_patch_inside_w(backend, rng):
    patches = _patches(rng, 1, 1, 16)
    got = _extend(backend, patches, np.zeros((1, 1, 2)))
    # W O / (W + 1e-3): the patch / 1.001 where W = 1, less on W's edge, 0 outside W.
    w = referee.weight_window(16)
    np.testing.assert_allclose(got, patches * w / (w + 1e-3), rtol=1e-6, atol=1e-7)
    inner = w == 1
    np.testing.assert_allclose(got[..., inner], patches[..., inner].astype(np.complex64) / 1.001, rtol=2e-7, atol=1e-7)


def test_object_big_refuses_far_offsets(backend, rng):
    patches = _patches(rng, 1, 2, 16)
    message = "group 0 has an offset of 8.500 px, more than N/2 = 8: object_big cannot merge it"
    with pytest.raises(ValueError, match=message):
        _extend(backend, patches, np.array([[[8.5, 0.0], [-8.5, 0.0]]]))
    with pytest.raises(ValueError, match="more than N/2 = 8"):
        _extend(backend, patches[:, :1], np.array([[[8.5, 0.0]]]))


def test_check_offsets(backend):
    check = backend.physics.check_offsets
    check(np.array([[[8.0, -8.0]]]), 16)  # N/2 itself is allowed
    check(np.zeros((0, 4, 2)), 16)
    with pytest.raises(ValueError, match="group 1 has an offset of 8.250 px, more than N/2 = 8"):
        check(np.array([[[1.0, 0.0]], [[0.0, -8.25]]]), 16)


def test_forward_model_amplitude(backend, rng):
    n, c = 16, 4
    patches = _patches(rng, 2, c, n)
    probe = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    offsets = rng.uniform(-3, 3, (2, c, 2))
    for object_big in (False, True):
        native = backend.physics.forward_model(
            backend.to_native(patches.astype(np.complex64)),
            backend.tensor(probe.astype(np.complex64)),
            backend.tensor(offsets.astype(np.float32)),
            object_big,
        )
        got = backend.from_native(native)
        assert got.dtype == np.float32 and got.shape == (2, c, n, n)
        ext = referee.extend_objects(patches, offsets) if object_big else patches
        expected = np.abs(referee.far_field(ext, probe))
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * expected.max(), err_msg=str(object_big))


@pytest.mark.parametrize("object_big", [False, True])
def test_forward_model_with_a_support_probe(backend, rng, object_big):
    n = 16
    patches = _patches(rng, 1, 4, n).astype(np.complex64)
    offsets = np.array([[[-2, -2], [2, -2], [-2, 2], [2, 2]]], dtype=np.float32) * 0.75
    probe = (referee.support_mask(n) * np.exp(1j * rng.uniform(-1, 1, (n, n)))).astype(np.complex64)
    got = backend.from_native(
        backend.physics.forward_model(
            backend.to_native(patches), backend.tensor(probe), backend.tensor(offsets), object_big
        )
    )
    assert got.dtype == np.float32 and got.shape == (1, 4, n, n)
    ext = referee.extend_objects(patches, offsets) if object_big else patches
    want = np.abs(referee.far_field(ext, probe))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * want.max())
