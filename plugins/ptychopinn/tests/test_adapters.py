"""Conversions of the PtychoPINN adapters. Run in .venv-upstream only (not part of `make test`):

.venv-upstream/bin/python -m pytest plugins/ptychopinn/tests -p no:cacheprovider
"""

from pathlib import Path

import numpy as np
import pytest

# Collected by `make test` in the project's .venv too, which has no PtychoPINN: skip, with the reason.
pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

from pinn_parity_ptychopinn import adapters as a  # noqa: E402
from pinn_parity_ptychopinn import conversions  # noqa: E402


def _npz(tmp_path, n=64, m=12, diff_key="diffraction"):
    rng = np.random.default_rng(0)
    path = tmp_path / f"scan-n{n}.npz"
    xy = rng.uniform(0, 30, (2, m))
    np.savez(
        path,
        **{diff_key: rng.random((m, n, n)).astype(np.float32)},
        xcoords=xy[0],
        ycoords=xy[1],
        xcoords_start=xy[0],
        ycoords_start=xy[1],
        probeGuess=np.ones((n, n), np.complex64),
    )
    return path


def test_tf_loss_name():
    assert conversions.tf_loss_name(1.0, 0.0) == "poisson"
    assert conversions.tf_loss_name(0.0, 1.0) == "mae"
    assert conversions.tf_loss_name(1.0, 1.0).startswith("mixed")


def test_require_n_refuses_32():
    with pytest.raises(ValueError, match="N = 32"):
        conversions.require_n(32, "x")


def test_tf_resolve_config_maps_canonical_names(tmp_path):
    cfg = a.PtychoPINNTF().resolve_config(
        {"gridsize": 2, "neighbor_count": 5, "epochs": 3, "loss": "mae"}, _npz(tmp_path, n=128)
    )
    assert (cfg["gridsize"], cfg["neighbor_count"], cfg["epochs"], cfg["loss"]) == (2, 5, 3, "mae")
    assert cfg["x.N"] == 128


def test_torch_resolve_config_maps_canonical_names(tmp_path):
    cfg = a.PtychoPINNTorch().resolve_config({"gridsize": 2, "neighbor_count": 5, "epochs": 3}, _npz(tmp_path))
    assert (cfg["gridsize"], cfg["neighbor_count"], cfg["epochs"], cfg["x.torch.K"]) == (2, 5, 3, 5)


def test_loaders_agree_on_a_file_under_diff3d(tmp_path):
    path = _npz(tmp_path, diff_key="diff3d")
    tf, torch = a.PtychoPINNTF().load_dataset(path), a.PtychoPINNTorch().load_dataset(path)
    for name in ("diffraction", "xcoords", "ycoords", "probe"):
        np.testing.assert_array_equal(tf[name], torch[name])
    assert tf["diffraction"].shape == (12, 64, 64) and tf["diffraction"].dtype == np.float32


def test_the_torch_loader_is_handed_the_file_as_is_and_refuses_diffraction(tmp_path):
    """The TF loader reads the harness's key; torch's RawData.from_file does not, and the adapter does not rename
    the key away (that refusal is the data stage's split)."""
    path = _npz(tmp_path, diff_key="diffraction")
    assert a.PtychoPINNTF().load_dataset(path)["diffraction"].shape == (12, 64, 64)
    with pytest.raises(KeyError, match="diff3d"):
        a.PtychoPINNTorch().load_dataset(path)


BACKENDS = [a.PtychoPINNTF, a.PtychoPINNTorch]


def _scan(m=30, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 40, m), rng.uniform(0, 40, m)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("gridsize,k,n_groups", [(1, 4, 10), (1, 4, None), (2, 6, 12)])
@pytest.mark.parametrize("inference", [False, True])
def test_group_is_canonical(backend, gridsize, k, n_groups, inference):
    """(B,1,2,C) centre - position -> (B,C,2) position - centre: offsets = coords - mean(coords)."""
    x, y = _scan()
    g = backend().group(x, y, {"gridsize": gridsize, "neighbor_count": k, "n_groups": n_groups, "seed": 3}, inference)
    b = 30 if inference or n_groups is None else n_groups
    c = gridsize * gridsize
    assert g["nn_indices"].shape == (b, c) and g["nn_indices"].dtype == np.int64
    xy = np.stack([x, y], -1)
    np.testing.assert_array_equal(g["coords_px"], xy[g["nn_indices"]])
    np.testing.assert_allclose(g["center_px"], g["coords_px"].mean(1), atol=1e-12)
    np.testing.assert_allclose(g["offsets_px"], g["coords_px"] - g["coords_px"].mean(1, keepdims=True), atol=1e-12)
    assert all(len(set(row)) == c for row in g["nn_indices"].tolist())


def test_group_same_for_both_backends_and_seeded():
    x, y = _scan()
    cfg = {"gridsize": 2, "neighbor_count": 6, "n_groups": 12, "seed": 5}
    g1, g2 = a.PtychoPINNTF().group(x, y, cfg), a.PtychoPINNTorch().group(x, y, cfg)
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])
    np.testing.assert_array_equal(a.PtychoPINNTF().group(x, y, cfg)["nn_indices"], g1["nn_indices"])


def _translation_inputs(integer):
    rng = np.random.default_rng(2)
    b, c, n = 2, 4, 64
    images = (rng.standard_normal((b, c, n, n)) + 1j * rng.standard_normal((b, c, n, n))).astype(np.complex64)
    shifts = (rng.integers(-16, 17, (b, c, 2)) if integer else rng.uniform(-16, 16, (b, c, 2))).astype(np.float32)
    return images, shifts


def test_tf_translate_integer_shift_is_exact():
    from adapters.referee import translate

    images, shifts = _translation_inputs(True)
    out = a.PtychoPINNTF().translate(images, shifts)
    assert out.shape == images.shape and out.dtype == np.complex64
    np.testing.assert_array_equal(out, translate(images, shifts).astype(np.complex64))


def test_torch_translate_integer_shift_close():
    """grid_sample (align_corners=True) normalises d by 2/(W-1) in float32: integer shifts are not
    exact (measured max |err| 4.6e-5 on unit-variance complex images)."""
    from adapters.referee import translate

    images, shifts = _translation_inputs(True)
    out = a.PtychoPINNTorch().translate(images, shifts)
    assert out.shape == images.shape and out.dtype == np.complex64
    np.testing.assert_allclose(out, translate(images, shifts), rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_translate_fractional_matches_referee_convention(backend):
    """(x, y) order and +d sign as the referee: a wrong sign or order errs by O(1)."""
    from adapters.referee import translate

    images, shifts = _translation_inputs(False)
    out = backend().translate(images, shifts)
    np.testing.assert_allclose(out, translate(images, shifts), rtol=0, atol=1e-4)


# --- forward, loss, stitch, shapes ------------------------------------------------------------------


def _forward_inputs(b, gridsize, n=64, integer=True, seed=4):
    """Smooth patches inside the support, a Gaussian probe and per-group offsets (mean 0)."""
    rng = np.random.default_rng(seed)
    c = gridsize * gridsize
    patches = np.zeros((b, c, n, n), np.complex64)
    inner = rng.uniform(0.5, 1, (b, c, n // 2, n // 2)) * np.exp(1j * rng.uniform(-1, 1, (b, c, n // 2, n // 2)))
    patches[..., n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = inner
    yy, xx = np.mgrid[:n, :n]
    probe = np.exp(-((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (2 * (n / 8) ** 2)).astype(np.complex64)
    if gridsize == 1:
        return patches, probe, np.zeros((b, 1, 2))
    # a square of side 2k per group: integer offsets with mean 0, member order (x, y) distinguishable
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], float) * rng.integers(1, 4, (b, 1, 1))
    offsets = corners if integer else corners + rng.uniform(-0.5, 0.5, (b, 4, 2))
    return patches, probe, offsets - offsets.mean(1, keepdims=True)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("gridsize,object_big", [(1, False), (2, True)])
def test_forward_layout_and_offset_sign_match_the_referee(backend, gridsize, object_big):
    """(B, C, N, N) <-> their layouts, offsets negated to coords_relative, probe (N, N) -> theirs: with integer
    offsets every translation is exact, so a wrong sign, (x, y) order or channel order errs by O(1)."""
    from adapters.referee import Float64Referee

    patches, probe, offsets = _forward_inputs(3, gridsize)
    out = backend().forward(patches, probe, offsets, object_big)["amplitude"]
    if object_big:  # PtychoPINN merges with the square support S (our contract v1), not v2's window W
        patches = _support_weighted_merge(patches, offsets)
    truth = Float64Referee().forward(patches, probe, offsets, False)["amplitude"]
    assert out.shape == patches.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, truth, rtol=0, atol=1e-5 * truth.max())


def _support_weighted_merge(patches, offsets):
    """docs/spec.md §8 as contract v1 had it, and PtychoPINN's merge does (centre-mask weighted), from the
    referee's translation: O_ext_c = centre of T(M, -d_c), M = Σ T(O_c, d_c) / (Σ T(S, d_c) + 1e-3)."""
    from adapters.referee import MERGE_EPSILON, translate

    n = patches.shape[-1]
    pad = n // 4
    support = np.zeros((n, n))
    support[pad : n - pad, pad : n - pad] = 1.0
    widen = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    canvas = np.pad(np.asarray(patches, np.complex128), widen)
    masks = np.pad(np.broadcast_to(support, patches.shape), widen)
    merged = translate(canvas, offsets).sum(1, keepdims=True) / (
        translate(masks, offsets).sum(1, keepdims=True) + MERGE_EPSILON
    )
    return translate(np.broadcast_to(merged, canvas.shape), -offsets)[..., pad : pad + n, pad : pad + n]


def test_tf_object_big_merges_groups_of_a_batch_of_16_groups_of_4():
    """PtychoPINN bug (README): ReassemblePatchesLayer -> tf_helper._reassemble_position_batched sums every
    patch of the batch into one canvas once B*C >= 64, so ExtractPatchesPositionLayer sees 1 canvas for 16
    groups. 15 groups work (test above); 16 fail."""
    patches, probe, offsets = _forward_inputs(16, 2)
    with pytest.raises(AssertionError):
        a.PtychoPINNTF().forward(patches, probe, offsets, True)
    assert a.PtychoPINNTorch().forward(patches, probe, offsets, True)["amplitude"].shape == patches.shape


def test_torch_object_big_weights_patches_by_their_mask_where_tf_does_not():
    """A deliberate difference (README): at fractional offsets ptycho_torch's reassembly multiplies each
    translated patch by its translated mask, TF's does not; integer offsets agree (test above)."""
    patches, probe, offsets = _forward_inputs(3, 2, integer=False)
    tf_out, torch_out = (b().forward(patches, probe, offsets, True)["amplitude"] for b in BACKENDS)
    assert np.abs(torch_out - tf_out).max() > 1e-2 * tf_out.max()


def _loss_inputs():
    rng = np.random.default_rng(5)
    shape = (2, 4, 64, 64)
    far = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return far, (3 * np.abs(rng.standard_normal(shape))).astype(np.float32), 0.7


def test_loss_takes_g_times_the_far_field_amplitude():
    """mae: TF's mean |g |far field| - X| is the canonical formula; torch's is the same divided by mean(X)
    (compute_loss's intensity_norm_factor). A wrong g (log g not exponentiated) errs by O(1)."""
    from adapters.referee import Float64Referee

    far, observed, log_g = _loss_inputs()
    canonical = Float64Referee().loss(far, observed, log_g, "mae")
    assert a.PtychoPINNTF().loss(far, observed, log_g, "mae") == pytest.approx(canonical, rel=1e-5)
    torch_mae = a.PtychoPINNTorch().loss(far, observed, log_g, "mae")
    assert torch_mae * (observed.mean() + 1e-8) == pytest.approx(canonical, rel=1e-5)
    with pytest.raises(ValueError, match="no loss for 'l2'"):
        a.PtychoPINNTF().loss(far, observed, log_g, "l2")


def _stitch_centres(backend):
    """One bright pixel at each patch's centre (N/2, N/2), stitched; positions, the canvas's (y, x) of each value
    if placed at its own position, and if placed mirrored through the mean position."""
    n = 64
    x, y = np.array([10.0, 30.0, 20.0]), np.array([12.0, 12.0, 42.0])  # integer mean: exact shifts
    patches = np.zeros((3, n, n), np.complex64)
    patches[:, n // 2, n // 2] = [1, 2, 3]
    out = backend().stitch(patches, x, y)
    positions = np.stack([x, y], -1)
    own = np.round(positions - out["origin_px"]).astype(int)
    mirrored = np.round(2 * positions.mean(0) - positions - out["origin_px"]).astype(int)
    return out["object"], own, mirrored


def test_tf_stitch_places_patch_centres_at_their_positions_from_the_origin():
    """The (x, y) order of the positions and the origin of reassemble_position's canvas."""
    canvas, own, _ = _stitch_centres(a.PtychoPINNTF)
    for value, (col, row) in zip((1, 2, 3), own):
        assert canvas[row, col] == pytest.approx(value, rel=1e-5)


def test_torch_inference_stitch_mirrors_the_patches_through_the_mean_position():
    """ptycho_torch.inference hands reassemble_patches_position_real offsets position - mean, which it negates
    (its convention for coords_relative, centre - position): each patch lands at 2 mean - position (the stitch
    split of the baseline, reproduction 4). Fails once they agree on the sign, and the baseline entry with it."""
    canvas, own, mirrored = _stitch_centres(a.PtychoPINNTorch)
    for value, (col, row), (mcol, mrow) in zip((1, 2, 3), own, mirrored):
        assert canvas[mrow, mcol] == pytest.approx(value, rel=1e-5)
        assert canvas[row, col] != pytest.approx(value, rel=1e-2)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_model_shapes_are_channels_first(backend):
    shapes = backend().model_shapes({"gridsize": 2, "object_big": True}, 64)
    assert shapes["input.diffraction"] == [[1, 4, 64, 64], "float32"]
    assert shapes["input.offsets"] == [[1, 4, 2], "float32"]
    assert shapes["output.amplitude"][0] == [1, 4, 64, 64]


# --- cli -------------------------------------------------------------------------------------------


def test_harness_cli_flags_become_theirs_and_a_missing_flag_is_named():
    from pinn_parity_ptychopinn.conversions import harness_cli_args, their_flags

    data, out, given = harness_cli_args(
        ["--train-data-file", "d.npz", "--output-dir", "o", "--epochs", "0", "--n-groups", "16", "--loss", "mae"]
    )
    assert (data, out, given) == (
        Path("d.npz").resolve(),
        Path("o").resolve(),
        {"epochs": "0", "n_groups": "16", "loss": "mae"},
    )
    assert their_flags(given, a.PtychoPINNTF.CLI_FLAGS, "tf") == [
        "--nepochs",
        "0",
        "--nll_weight",
        "0.0",
        "--mae_weight",
        "1.0",
        "--n_groups",
        "16",
    ]
    assert their_flags(given, a.PtychoPINNTorch.CLI_FLAGS, "torch") == [
        "--max_epochs",
        "0",
        "--torch-loss-mode",
        "mae",
        "--n_images",
        "16",
    ]
    with pytest.raises(ValueError, match=r"torch: its train command line has no flag for \['neighbor_count'\]"):
        their_flags({"neighbor_count": "6"}, a.PtychoPINNTorch.CLI_FLAGS, "torch")


def test_legacy_params_read_back_in_canonical_names():
    from ptycho import params
    from ptycho.config.config import ModelConfig, TrainingConfig, update_legacy_dict

    from pinn_parity_ptychopinn.conversions import canonical_from_legacy_params

    legacy = dict(params.cfg)
    update_legacy_dict(
        legacy,
        TrainingConfig(
            model=ModelConfig(N=128, gridsize=2, amp_activation="swish", object_big=False),
            nepochs=3,
            neighbor_count=5,
            n_groups=9,
            mae_weight=1.0,
            nll_weight=0.0,
        ),
    )
    cfg = canonical_from_legacy_params(legacy)
    assert {
        k: cfg[k]
        for k in ("gridsize", "neighbor_count", "n_groups", "epochs", "loss", "object_big", "amp_activation", "x.N")
    } == {
        "gridsize": 2,
        "neighbor_count": 5,
        "n_groups": 9,
        "epochs": 3,
        "loss": "mae",
        "object_big": False,
        "amp_activation": "swish",
        "x.N": 128,
    }
