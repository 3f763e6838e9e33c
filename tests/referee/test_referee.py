"""The float64 referee (adapters/referee.py) against hand-worked cases of docs/spec.md,
then the two bundled backends against the referee.

The analytic tests need only numpy: each states a property the contract implies
and checks it with numbers that can be worked out on paper. The cross-checks at
the end import TensorFlow and torch (marked tf, torch, slow) and hold both
backends to the parity ledger's float32 tolerances around the float64 truth.
"""

import math

import numpy as np
import pytest

from adapters import referee
from adapters.referee import Float64Referee, extend_objects, nearest_others, stitch_patches, weight_window
from adapters.registry import get_adapter
from backends.common import contract
from backends.common.config import ConfigError

N = 16


@pytest.fixture(scope="module")
def ref():
    return Float64Referee()


def complex_images(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


# --- §6 translation -----------------------------------------------------------------------


def test_the_constants_are_the_backends_own():
    # One definition (backends/common/contract.py): a referee with its own copy could drift from the backends'.
    for name in ("MERGE_EPSILON", "LOSS_EPSILON", "MASK_FLOOR", "ADAM_BETA1", "ADAM_BETA2"):
        assert getattr(referee, name) is getattr(contract, name), name


def test_registered_under_its_name():
    assert isinstance(get_adapter("referee"), Float64Referee)


def test_integer_shift_is_exact_and_zero_filled(ref, rng):
    img = complex_images(rng, (1, 1, N, N))
    out = ref.translate(img, np.array([[[3.0, -2.0]]]))  # x by +3, y by -2
    expected = np.zeros_like(img)
    expected[..., : N - 2, 3:] = img[..., 2:, : N - 3]  # out(y, x) = img(y + 2, x - 3)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.complex128


def test_shift_by_minus_d_is_the_adjoint(ref, rng):
    shape = (2, 3, N, N + 4)
    x, y = complex_images(rng, shape), complex_images(rng, shape)
    d = rng.uniform(-5, 5, (2, 3, 2))
    lhs = np.vdot(ref.translate(x, d), y)  # vdot conjugates its first argument: <T x, y>
    rhs = np.vdot(x, ref.translate(y, -d))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    assert not np.allclose(ref.translate(y, -d), ref.translate(y, d))  # and T(-d) is not T(d)


def test_half_pixel_shift_averages_neighbours(ref, rng):
    img = rng.standard_normal((1, 1, N, N))
    out = ref.translate(img, np.array([[[0.5, 0.0]]]))
    # i = 0, f = 0.5: out(x) = 0.5 img(x) + 0.5 img(x - 1); img(-1) is the zero fill.
    np.testing.assert_allclose(out[..., 1:], 0.5 * (img[..., 1:] + img[..., :-1]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out[..., 0], 0.5 * img[..., 0], rtol=0, atol=1e-15)
    down = ref.translate(img, np.array([[[0.0, -0.5]]]))
    # d = -0.5: i = -1, f = 0.5: out(y) = 0.5 img(y + 1) + 0.5 img(y).
    np.testing.assert_allclose(down[..., :-1, :], 0.5 * (img[..., 1:, :] + img[..., :-1, :]), rtol=0, atol=1e-15)


def test_zero_fill_at_the_edges(ref):
    img = np.ones((1, 3, N, N))
    out = ref.translate(img, np.array([[[-2.5, 0.0], [0.0, 3.25], [N + 1.0, 0.0]]]))
    # x by -2.5 (i = -3, f = 0.5): out(x) = 0.5 img(x + 3) + 0.5 img(x + 2)
    assert np.all(out[0, 0, :, N - 2 :] == 0) and np.all(out[0, 0, :, N - 3] == 0.5)
    assert np.all(out[0, 0, :, : N - 3] == 1)
    # y by 3.25 (i = 3, f = 0.25): rows 0..2 read outside, row 3 reads 0.75 img(0) + 0.25 img(-1)
    assert np.all(out[0, 1, :3] == 0) and np.allclose(out[0, 1, 3], 0.75) and np.allclose(out[0, 1, 4:], 1)
    assert np.all(out[0, 2] == 0)  # shifted out of the image altogether


# --- §8 forward model ---------------------------------------------------------------------


def flat_in_support(c=1, value=1.0):
    obj = np.zeros((1, c, N, N), np.complex128)
    obj[..., N // 4 : 3 * N // 4, N // 4 : 3 * N // 4] = value
    return obj


def test_delta_probe_on_flat_object_gives_flat_amplitude(ref):
    probe = np.zeros((N, N), np.complex128)
    probe[N // 2, N // 2] = 1.0  # a unit delta inside S
    out = ref.forward(flat_in_support(), probe, np.zeros((1, 1, 2)), object_big=False)
    # F_ortho of a unit delta has |F| = 1 / sqrt(N * N) = 1 / N at every frequency.
    np.testing.assert_allclose(out["amplitude"], np.full((1, 1, N, N), 1.0 / N), rtol=1e-14, atol=0)
    assert out["far_field"].dtype == np.complex128 and out["amplitude"].dtype == np.float64


def test_flat_probe_on_flat_object_puts_all_energy_at_the_centre(ref):
    out = ref.forward(np.ones((1, 1, N, N), np.complex128), np.ones((N, N)), np.zeros((1, 1, 2)), False)
    expected = np.zeros((N, N))
    expected[N // 2, N // 2] = N  # ortho DC = N * N / N; fftshift puts it at (N/2, N/2)
    np.testing.assert_allclose(out["amplitude"][0, 0], expected, rtol=0, atol=1e-12)


def test_parseval(ref, rng):
    obj = complex_images(rng, (2, 4, N, N))
    probe = complex_images(rng, (N, N))
    psi = ref.forward(obj, probe, np.zeros((2, 4, 2)), object_big=False)["far_field"]
    np.testing.assert_allclose(
        np.sum(np.abs(psi) ** 2, axis=(-2, -1)), np.sum(np.abs(probe * obj) ** 2, axis=(-2, -1)), rtol=1e-12
    )


def test_object_big_with_zero_offsets_scales_identical_patches_by_c_over_c_plus_eps(ref, rng):
    c = 4
    patch = np.zeros((N, N), np.complex128)
    inside = complex_images(rng, (N // 2, N // 2))
    patch[N // 4 : 3 * N // 4, N // 4 : 3 * N // 4] = inside
    obj = np.broadcast_to(patch, (1, c, N, N)).copy()
    ext = extend_objects(obj, np.zeros((1, c, 2)))
    # M = C W O / (C W + 1e-3): the patch where W = 1, turned down where W falls, 0 / 1e-3 = 0 outside W.
    w = weight_window(N)
    expected = patch * (c * w / (c * w + 1e-3))
    np.testing.assert_allclose(ext, np.broadcast_to(expected, ext.shape), rtol=1e-14, atol=0)
    probe = complex_images(rng, (N, N))
    out = ref.forward(obj, probe, np.zeros((1, c, 2)), object_big=True)
    by_hand = np.fft.fftshift(np.fft.fft2(probe * expected, norm="ortho"))
    np.testing.assert_allclose(out["far_field"][0, 2], by_hand, rtol=0, atol=1e-13)


def test_object_big_merges_a_pair_at_integer_offsets(rng):
    # Two patches at d = (+3, 0) and (-3, 0): patch 0's pixel (i, j) sits on the merge canvas where
    # patch 1's pixel (i, j + 6) sits, so O_ext_0(i, j) = (W O_0(i, j) + W O_1(i, j + 6)) / (W(i, j)
    # + W(i, j + 6) + 1e-3), and O_ext_1(i, j) = (W O_1(i, j) + W O_0(i, j - 6)) / (W(i, j) + W(i, j - 6) + 1e-3).
    obj = flat_in_support(2) * complex_images(rng, (1, 2, N, N))
    mask = weight_window(N)

    def moved(img, k):  # img(i, j + k), zero outside
        out = np.zeros_like(img)
        out[:, max(0, -k) : N - max(0, k)] = img[:, max(0, k) : N - max(0, -k)]
        return out

    ext = extend_objects(obj, np.array([[[3.0, 0.0], [-3.0, 0.0]]]))
    o0, o1 = obj[0] * mask
    np.testing.assert_allclose(ext[0, 0], (o0 + moved(o1, 6)) / (mask + moved(mask, 6) + 1e-3), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ext[0, 1], (o1 + moved(o0, -6)) / (mask + moved(mask, -6) + 1e-3), rtol=0, atol=1e-14)


def test_object_big_refuses_offsets_beyond_half_n(ref):
    offsets = np.zeros((1, 4, 2))
    offsets[0, 1, 0] = N / 2 + 0.01
    with pytest.raises(ValueError, match="N/2"):
        ref.forward(flat_in_support(4), np.ones((N, N)), offsets, object_big=True)


# --- §9 loss and §5 scales ----------------------------------------------------------------

# Psi = [1, 2j, 0.5, 1.5], X = [1, 1, 0, 3], g = 2  ->  I = g^2 |Psi|^2 = [4, 16, 1, 9], X^2 = [1, 1, 0, 9]
LOSS_PSI = np.array([1, 2j, 0.5, 1.5], np.complex128).reshape(1, 1, 2, 2)
LOSS_X = np.array([1.0, 1.0, 0.0, 3.0]).reshape(1, 1, 2, 2)


def test_poisson_deviance_by_hand(ref):
    terms = [
        (4 - 1) - 1 * 1.3862936111203594,  # ln(4.000001 / 1.000001) = ln 4 - 7.5e-7 (to 1e-12)
        (16 - 1) - 1 * 2.7725877847402796,  # ln(16.000001 / 1.000001) = ln 16 - 9.375e-7
        (1 - 0) - 0.0,  # X = 0: the term is I
        (9 - 9) - 9 * 0.0,
    ]  # perfect fit: 0
    assert sum(terms) / 4 == pytest.approx(3.71027965103484, rel=1e-14)
    assert ref.loss(LOSS_PSI, LOSS_X, math.log(2.0), "poisson") == pytest.approx(3.71027965103484, rel=1e-12)
    perfect = ref.loss(LOSS_PSI, 2 * np.abs(LOSS_PSI), math.log(2.0), "poisson")
    assert abs(perfect) < 1e-12


def test_mae_by_hand(ref):
    # g |Psi| = [2, 4, 1, 3]; |g |Psi| - X| = [1, 3, 1, 0]; mean 5/4.
    assert ref.loss(LOSS_PSI, LOSS_X, math.log(2.0), "mae") == pytest.approx(1.25, rel=1e-14)
    with pytest.raises(ValueError, match="loss"):
        ref.loss(LOSS_PSI, LOSS_X, 0.0, "l2")


def test_scales_by_hand(ref):
    x = np.full((3, N, N), 0.5)  # Σ X² = N² / 4 for every pattern, so the mean is N² / 4
    probe = np.zeros((N, N), np.complex128)
    probe[N // 2, N // 2] = 2.0  # Σ_S |P|² = 4
    probe[0, 0] = 100.0  # outside S: must not count
    out = ref.scales(x, probe, "sigmoid")
    assert out["input_scale"] == pytest.approx((N / 2) / (N / 2), rel=1e-15)
    assert out["log_intensity_scale"] == pytest.approx(0.5 * math.log((N * N / 4) / (0.25 * 4)), rel=1e-15)
    soft = ref.scales(x, probe, "softplus")["log_intensity_scale"]
    assert soft == pytest.approx(0.5 * math.log((N * N / 4) / (math.log(2) ** 2 * 4)), rel=1e-15)


# --- §4 grouping --------------------------------------------------------------------------

# Position 6 sits on position 0; 1..4 are at distance 1 from both; 5 is farther out.
TIE_X = np.array([0.0, 1.0, 0.0, -1.0, 0.0, 2.0, 0.0])
TIE_Y = np.array([0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0])


def test_nearest_with_ties_to_the_lower_index():
    near = nearest_others(TIE_X, TIE_Y, np.array([0, 6, 1]), 4)
    # seed 0: 6 at distance 0 (kept: only the seed itself is excluded), then 1, 2, 3 of the four at 1
    # seed 6: 0 at distance 0, then 1, 2, 3
    # seed 1: 0, 5, 6 at distance 1 (index order), then 2 and 4 at 2: 2 wins the tie
    np.testing.assert_array_equal(near, [[6, 1, 2, 3], [0, 1, 2, 3], [0, 5, 6, 2]])


def brute_force_neighbours(x, y, k):
    """Every seed's k nearest others by a plain sort on (d2, index): independent of lexsort."""
    rows = []
    for s in range(len(x)):
        keyed = sorted(
            ((x[s] - x[j]) * (x[s] - x[j]) + (y[s] - y[j]) * (y[s] - y[j]), j) for j in range(len(x)) if j != s
        )
        rows.append([j for _, j in keyed[:k]])
    return np.array(rows)


@pytest.mark.parametrize("inference", [False, True])
def test_groups_follow_the_spec_recipe(ref, inference):
    config = {"gridsize": 2, "neighbor_count": 5, "n_groups": 5, "seed": 3}
    got = ref.group(TIE_X, TIE_Y, config, inference=inference)
    table = brute_force_neighbours(TIE_X, TIE_Y, 5)
    rng = np.random.default_rng(3)
    seeds = np.arange(7) if inference else rng.choice(7, 5, replace=False)
    expected = np.array([table[s][rng.choice(5, 4, replace=False)] for s in seeds])
    np.testing.assert_array_equal(got["nn_indices"], expected)
    assert got["nn_indices"].dtype == np.int64
    for s, row in zip(seeds, got["nn_indices"]):
        assert s not in row  # members come from the seed's nearest *others*
    coords = np.stack([TIE_X[expected], TIE_Y[expected]], -1)
    np.testing.assert_array_equal(got["coords_px"], coords)
    np.testing.assert_allclose(got["offsets_px"], coords - coords.mean(1, keepdims=True), rtol=0, atol=1e-15)


def test_gridsize_one_groups_are_their_seeds(ref):
    train = ref.group(TIE_X, TIE_Y, {"n_groups": 4, "seed": 9})
    np.testing.assert_array_equal(train["nn_indices"][:, 0], np.random.default_rng(9).choice(7, 4, replace=False))
    infer = ref.group(TIE_X, TIE_Y, {"n_groups": 4, "seed": 9}, inference=True)
    np.testing.assert_array_equal(infer["nn_indices"], np.arange(7)[:, None])
    assert np.all(infer["offsets_px"] == 0)


def test_too_many_groups_is_an_error(ref):
    with pytest.raises(ConfigError, match="n_groups"):
        ref.group(TIE_X, TIE_Y, {"n_groups": 8})


# --- §11 stitching ------------------------------------------------------------------------


def test_stitching_constant_patches_at_integer_positions(ref):
    x, y = np.array([10.0, 13.0, 10.0]), np.array([20.0, 20.0, 27.0])
    value = 2.0 - 1.5j
    out = ref.stitch(np.full((3, N, N), value), x, y)
    x0, y0 = 10 - N // 2, 20 - N // 2  # floor(min) - N/2
    np.testing.assert_array_equal(out["origin_px"], [x0, y0])
    obj = out["object"]
    assert obj.shape == (27 - 20 + N + 1, 13 - 10 + N + 1)
    covered = np.zeros(obj.shape, bool)
    for px, py in zip(x, y):  # W of the patch at p covers object pixels p - N/2 + (i, j) where W(i, j) > 0
        covered[int(py - N // 2 - y0) : int(py + N // 2 - y0), int(px - N // 2 - x0) : int(px + N // 2 - x0)] |= (
            weight_window(N) > 0
        )
    np.testing.assert_allclose(obj[covered], value, rtol=1e-15)
    assert np.all(obj[~covered] == 0)


def test_stitching_constant_patches_at_fractional_positions(ref):
    x, y = np.array([10.3, 14.75, 9.5]), np.array([20.6, 21.1, 26.9])
    out = ref.stitch(np.full((3, N, N), 0.5 + 0.25j), x, y)
    np.testing.assert_array_equal(out["origin_px"], [9 - N // 2, 20 - N // 2])
    obj = out["object"]
    assert obj.shape == (26 - 20 + N + 1, 14 - 9 + N + 1)
    nonzero = obj != 0
    np.testing.assert_allclose(obj[nonzero], 0.5 + 0.25j, rtol=1e-12)
    # three disks of W (radius N/4 - 0.5, about 38 px each), grown by the bilinear edge, overlapping
    assert 0.2 * obj.size < nonzero.sum() < 0.4 * obj.size
    assert np.all(obj[:2] == 0) and np.all(obj[:, :2] == 0)


@pytest.mark.parametrize("frac, edge_kept", [(4e-4, False), (4e-3, True)])
def test_stitching_drops_pixels_with_window_sum_below_the_floor(ref, frac, edge_kept):
    # One patch shifted by frac in x: on the centre row, the pixel just right of W (W = 0 at offset N/4,
    # 0.5 at N/4 - 1) gets weight 0.5 frac. Below the 1e-3 floor it is 0, above it the constant.
    out = ref.stitch(np.full((1, N, N), 3.0 + 0j), np.array([10.0 + frac]), np.array([20.0]))["object"]
    np.testing.assert_allclose(out[N // 2, 3 * N // 4], 3.0 if edge_kept else 0.0, rtol=1e-12, atol=0)
    np.testing.assert_allclose(out[N // 2, N // 4 + 1 : 3 * N // 4], 3.0, rtol=1e-12)


def test_stitching_turns_each_patch_to_the_phase_of_what_is_placed(ref, rng):
    # Constant patches with random global phases: aligned, they stitch back to one constant (the first
    # patch's phase); averaged as they are, overlaps mix phases and the magnitude drops.
    x, y = np.array([10.0, 13.0, 10.0, 13.5]), np.array([20.0, 20.0, 24.0, 23.5])
    turns = np.exp(1j * rng.uniform(-np.pi, np.pi, 4))
    patches = np.full((4, N, N), 2.0 - 1.5j) * turns[:, None, None]
    obj = ref.stitch(patches, x, y)["object"]
    np.testing.assert_allclose(obj[obj != 0], (2.0 - 1.5j) * turns[0], rtol=1e-12)
    unaligned, _ = stitch_patches(patches, x, y, align_phases=False)
    assert np.abs(unaligned[unaligned != 0]).min() < 0.9 * abs(2.0 - 1.5j)


# --- the bundled backends against the referee --------------------------------------------


@pytest.fixture(scope="module")
def case(small_dataset_path):
    """Inputs of every stage for one small scan (N = 32, 40 positions), as the harness builds them."""
    from backends.common.dataset import load_dataset

    ds = load_dataset(small_dataset_path)
    rng = np.random.default_rng(77)
    n, b, c = ds.N, 3, 4
    shifts = rng.uniform(-n / 4, n / 4, (b, c, 2)).astype(np.float32)
    shifts[0, 0] = np.round(shifts[0, 0])
    patches = np.zeros((b, c, n, n), np.complex64)
    patches[..., n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = rng.uniform(0.5, 1, (b, c, n // 2, n // 2)) * np.exp(
        1j * rng.uniform(-1, 1, (b, c, n // 2, n // 2))
    )
    groups = Float64Referee().group(ds.xcoords, ds.ycoords, {"gridsize": 2})
    observed = ds.diffraction[groups["nn_indices"][:b]]
    far = (
        np.maximum(observed, 0.05)
        * (1 + 0.1 * rng.standard_normal(observed.shape))
        * np.exp(1j * rng.uniform(-np.pi, np.pi, observed.shape))
        / np.exp(0.7)
    ).astype(np.complex64)
    stitch_patches = (
        rng.uniform(0.5, 1, (ds.n_positions, n, n)) * np.exp(1j * rng.uniform(-1, 1, (ds.n_positions, n, n)))
    ).astype(np.complex64)
    return {
        "ds": ds,
        "images": complex_images(rng, (b, c, n, n)).astype(np.complex64),
        "shifts": shifts,
        "patches": patches,
        "offsets": groups["offsets_px"][:b],
        "far": far,
        "observed": observed,
        "stitch_patches": stitch_patches,
    }


def max_distance(backend_out, referee_out) -> float:
    a, b = np.asarray(backend_out), np.asarray(referee_out)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.complex128) - b.astype(np.complex128))))


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", ["tf_pinn", "torch_pinn"])
def test_bundled_backend_agrees_with_the_referee(name, case, ref):
    from parity.tolerances import tolerance

    backend, ds = get_adapter(name), case["ds"]
    found = {}

    def within(stage, metric, key, got, want):
        limit = tolerance(stage, metric, "float64" if stage == "grouping" else "float32").value
        found[key] = max_distance(got, want)
        assert found[key] <= limit, f"{name} {key}: {found[key]:.3e} from the referee, tolerance {limit:g}"

    within(
        "translation",
        "max_abs",
        "translate",
        backend.translate(case["images"], case["shifts"]),
        ref.translate(case["images"], case["shifts"]),
    )
    for big in (False, True):
        got = backend.forward(case["patches"], ds.probe, case["offsets"], big)
        want = ref.forward(case["patches"], ds.probe, case["offsets"], big)
        for key in ("far_field", "amplitude"):
            within("forward", "max_abs", f"forward[object_big={big}].{key}", got[key], want[key])
    for loss in ("poisson", "mae"):
        within(
            "loss",
            "max_abs",
            f"loss[{loss}]",
            backend.loss(case["far"], case["observed"], 0.7, loss),
            ref.loss(case["far"], case["observed"], 0.7, loss),
        )
    got = backend.stitch(case["stitch_patches"], ds.xcoords, ds.ycoords)
    want = ref.stitch(case["stitch_patches"], ds.xcoords, ds.ycoords)
    np.testing.assert_array_equal(got["origin_px"], want["origin_px"])
    within("reconstruction", "stitch", "stitch.object", got["object"], want["object"])
    for overrides in ({}, {"gridsize": 2}, {"gridsize": 2, "neighbor_count": 7, "n_groups": 20}):
        for inference in (False, True):
            cfg = {"seed": 42, **overrides}
            got = backend.group(ds.xcoords, ds.ycoords, cfg, inference)
            want = ref.group(ds.xcoords, ds.ycoords, cfg, inference)
            np.testing.assert_array_equal(got["nn_indices"], want["nn_indices"], err_msg=f"{name} {cfg}")
            within(
                "grouping",
                "max_abs",
                f"group{overrides}[inference={inference}].offsets",
                got["offsets_px"],
                want["offsets_px"],
            )
    # the measured distances, for the record: shown with -s
    print(f"\n{name} vs referee: " + ", ".join(f"{k} {v:.3e}" for k, v in found.items()))


# --- the referee as the suite's arbiter ---------------------------------------------------


class _Float32Copy(Float64Referee):
    """A stand-in "backend": the referee's numbers rounded to float32, optionally nudged."""

    def __init__(self, name, nudge=0.0):
        self.name, self.nudge = name, nudge

    def translate(self, images, shifts_px):
        return (super().translate(images, shifts_px) + self.nudge).astype(np.complex64)

    def group(self, xcoords, ycoords, config, inference=False):
        out = super().group(xcoords, ycoords, config, inference)
        if self.nudge:
            out["nn_indices"] = out["nn_indices"][::-1].copy()  # same groups, wrong order
        return out


def test_a_split_names_the_backend_farther_from_the_referee(tmp_path):
    from parity.case_context import CaseContext, make_context
    from parity.matrix import MATRIX
    from parity.stage_runner import run_stage
    from parity.verdict import Check

    adapters = {name: _Float32Copy(name, nudge) for name, nudge in (("good", 0.0), ("bad", 1e-3))}
    ctx = make_context(MATRIX[1], adapters, tmp_path, referee=Float64Referee())
    result = {str(c.check): c for c in run_stage(ctx, "translation").comparisons}
    assert set(result) == {"bad~good", "good~referee", "bad~referee"}
    assert result["good~referee"].passed and not result["bad~referee"].passed
    note = result["bad~good"].message.splitlines()[-1]
    assert note.startswith("  referee (float64): bad is 1.000e-03 from it, good is ")
    assert note.endswith(": fix bad first")
    grouping = run_stage(ctx, "grouping").comparisons
    split = next(c for c in grouping if c.check == Check("bad", "good") and c.metric == "nn_indices")
    assert split.message.splitlines()[-1].endswith("good is 0 of 192 elements: fix bad first")
    assert all(c.passed for c in grouping if c.check.left == "good")
    without = CaseContext(
        inputs=ctx.inputs, runs=ctx.runs, upstream=ctx.upstream
    )  # no referee: no referee checks, no note
    plain = run_stage(without, "translation").comparisons
    assert [c.check for c in plain] == [Check("bad", "good")] and "referee" not in plain[0].message
