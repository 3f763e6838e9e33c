"""Translation and forward model (docs/spec.md §6-8) against plain numpy float64."""

import numpy as np
import pytest
import torch

from backends.torch_pinn import physics

from . import reference

pytestmark = pytest.mark.torch


def _shift(images, shifts):
    """images (B, C, H, W) numpy, shifts (B, C, 2) numpy -> numpy result of physics.translate."""
    return physics.translate(torch.from_numpy(images), torch.from_numpy(np.asarray(shifts, dtype=np.float32))).numpy()


def test_integer_shift_is_exact_with_zero_fill(rng):
    img = rng.standard_normal((1, 1, 8, 10)).astype(np.float32)
    out = _shift(img, [[[2.0, -3.0]]])
    expected = np.zeros_like(img)
    expected[0, 0, :5, 2:] = img[0, 0, 3:, :8]  # out(y, x) = img(y + 3, x - 2)
    np.testing.assert_array_equal(out, expected)


def test_half_pixel_shift_averages_neighbours():
    img = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 1, 6)
    out = _shift(img, [[[0.5, 0.0]]])
    # out(x) = 0.5 img(x) + 0.5 img(x - 1); img(-1) = 0
    np.testing.assert_array_equal(out[0, 0, 0], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    down = _shift(img.reshape(1, 1, 6, 1), [[[0.0, -0.5]]])
    # d = -0.5: floor -1, frac 0.5: out(y) = 0.5 img(y + 1) + 0.5 img(y); img(6) = 0
    np.testing.assert_array_equal(down[0, 0, :, 0], [1.5, 2.5, 3.5, 4.5, 5.5, 3.0])


@pytest.mark.parametrize("shift", [(0.25, 0.75), (-1.3, 2.6), (3.5, -0.1), (-7.9, -6.2), (12.0, 0.4)])
def test_fractional_shifts_match_numpy(rng, shift):
    img = rng.standard_normal((9, 11)).astype(np.float32)
    out = _shift(img[None, None], [[list(shift)]])[0, 0]
    np.testing.assert_allclose(out, reference.translate(img.astype(np.float64), *shift), rtol=0, atol=2e-6)


def test_complex_batch_with_one_shift_per_image(rng):
    imgs = (rng.standard_normal((2, 3, 8, 8)) + 1j * rng.standard_normal((2, 3, 8, 8))).astype(np.complex64)
    shifts = rng.uniform(-3, 3, (2, 3, 2))
    out = _shift(imgs, shifts)
    assert out.dtype == np.complex64 and out.shape == imgs.shape
    for b in range(2):
        for c in range(3):
            want = reference.translate(imgs[b, c].astype(np.complex128), *shifts[b, c].astype(np.float32))
            np.testing.assert_allclose(out[b, c], want, rtol=0, atol=3e-6)


def test_negative_shift_is_the_adjoint(rng):
    a = rng.standard_normal((1, 1, 12, 12))
    b = rng.standard_normal((1, 1, 12, 12))
    d = np.array([[[1.37, -2.71]]])
    lhs = np.sum(_shift(a, d) * b)
    rhs = np.sum(a * _shift(b, -d))
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


def test_translate_refuses_mismatched_shifts():
    with pytest.raises(ValueError, match=r"\(B, C, 2\)"):
        physics.translate(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 2))


def test_support_mask():
    mask = physics.support_mask(16).numpy()
    assert mask.dtype == np.float32 and mask.sum() == 64
    np.testing.assert_array_equal(mask, reference.support(16))


def test_far_field_matches_numpy_and_is_centred(rng):
    n = 16
    probe = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    obj = (rng.standard_normal((2, 1, n, n)) + 1j * rng.standard_normal((2, 1, n, n))).astype(np.complex64)
    got = physics.far_field(torch.from_numpy(obj), torch.from_numpy(probe)).numpy()
    assert got.dtype == np.complex64
    want = reference.far_field(obj.astype(np.complex128), probe.astype(np.complex128))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    flat = physics.far_field(torch.ones(1, 1, n, n, dtype=torch.complex64), torch.ones(n, n, dtype=torch.complex64))
    expected = np.zeros((n, n), dtype=np.complex64)
    expected[n // 2, n // 2] = n  # ortho: sum / N = N^2 / N, at the centre after fftshift
    np.testing.assert_allclose(flat.numpy()[0, 0], expected, rtol=0, atol=1e-5)


def _patches(rng, b, c, n):
    s = reference.support(n)
    return ((rng.uniform(0.5, 1, (b, c, n, n)) * np.exp(1j * rng.uniform(-1, 1, (b, c, n, n)))) * s).astype(np.complex64)


def test_extend_objects_matches_numpy(rng):
    n = 16
    patches = _patches(rng, 2, 4, n)
    offsets = rng.uniform(-4, 4, (2, 4, 2))
    offsets -= offsets.mean(axis=1, keepdims=True)
    offsets = offsets.astype(np.float32)
    got = physics.extend_objects(torch.from_numpy(patches), torch.from_numpy(offsets)).numpy()
    assert got.shape == patches.shape and got.dtype == np.complex64
    for b in range(2):
        want = reference.extend_objects(patches[b].astype(np.complex128), offsets[b].astype(np.float64))
        np.testing.assert_allclose(got[b], want, rtol=0, atol=2e-5)


def test_extend_objects_single_patch_and_limit(rng):
    n = 16
    patches = _patches(rng, 1, 1, n)
    got = physics.extend_objects(torch.from_numpy(patches), torch.zeros(1, 1, 2)).numpy()
    np.testing.assert_allclose(got, patches / 1.001, rtol=2e-7, atol=1e-7)
    with pytest.raises(ValueError, match="exceeds N/2"):
        physics.extend_objects(torch.from_numpy(patches), torch.tensor([[[8.5, 0.0]]]))


@pytest.mark.parametrize("object_big", [False, True])
def test_forward_model(rng, object_big):
    n = 16
    patches = _patches(rng, 1, 4, n)
    offsets = np.array([[[-2, -2], [2, -2], [-2, 2], [2, 2]]], dtype=np.float32) * 0.75
    probe = reference.support(n) * np.exp(1j * rng.uniform(-1, 1, (n, n)))
    got = physics.forward_model(torch.from_numpy(patches), torch.from_numpy(probe.astype(np.complex64)),
                                torch.from_numpy(offsets), object_big).numpy()
    assert got.dtype == np.float32 and got.shape == (1, 4, n, n)
    ext = reference.extend_objects(patches[0].astype(np.complex128), offsets[0]) if object_big else patches[0]
    want = np.abs(reference.far_field(ext, probe.astype(np.complex64).astype(np.complex128)))
    np.testing.assert_allclose(got[0], want, rtol=0, atol=1e-5 * want.max())
