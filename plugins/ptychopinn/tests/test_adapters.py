"""Conversions of the PtychoPINN adapters. Run in .venv-upstream only (not part of `make test`):

    .venv-upstream/bin/python -m pytest plugins/ptychopinn/tests -p no:cacheprovider
"""

import numpy as np
import pytest

from pinn_parity_ptychopinn import adapters as a

pytest.importorskip("ptycho")


def _npz(tmp_path, n=64, m=12, diff_key="diffraction"):
    rng = np.random.default_rng(0)
    path = tmp_path / f"scan-n{n}.npz"
    xy = rng.uniform(0, 30, (2, m))
    np.savez(path, **{diff_key: rng.random((m, n, n)).astype(np.float32)}, xcoords=xy[0], ycoords=xy[1],
             xcoords_start=xy[0], ycoords_start=xy[1], probeGuess=np.ones((n, n), np.complex64))
    return path


def test_tf_loss_name():
    assert a.tf_loss_name(1.0, 0.0) == "poisson"
    assert a.tf_loss_name(0.0, 1.0) == "mae"
    assert a.tf_loss_name(1.0, 1.0).startswith("mixed")


def test_require_n_refuses_32():
    with pytest.raises(ValueError, match="N = 32"):
        a.require_n(32, "x")


def test_tf_resolve_config_maps_canonical_names(tmp_path):
    cfg = a.PtychoPINNTF().resolve_config({"gridsize": 2, "neighbor_count": 5, "epochs": 3, "loss": "mae"},
                                          _npz(tmp_path, n=128))
    assert (cfg["gridsize"], cfg["neighbor_count"], cfg["epochs"], cfg["loss"]) == (2, 5, 3, "mae")
    assert cfg["x.N"] == 128


def test_torch_resolve_config_maps_canonical_names(tmp_path):
    cfg = a.PtychoPINNTorch().resolve_config({"gridsize": 2, "neighbor_count": 5, "epochs": 3}, _npz(tmp_path))
    assert (cfg["gridsize"], cfg["neighbor_count"], cfg["epochs"], cfg["x.torch.K"]) == (2, 5, 3, 5)


@pytest.mark.parametrize("key", ["diffraction", "diff3d"])
def test_loaders_agree_whatever_the_diffraction_key(tmp_path, key):
    path = _npz(tmp_path, diff_key=key)
    tf, torch = a.PtychoPINNTF().load_dataset(path), a.PtychoPINNTorch().load_dataset(path)
    for name in ("diffraction", "xcoords", "ycoords", "probe"):
        np.testing.assert_array_equal(tf[name], torch[name])
    assert tf["diffraction"].shape == (12, 64, 64) and tf["diffraction"].dtype == np.float32


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
    g = backend().group(x, y, {"gridsize": gridsize, "neighbor_count": k, "n_groups": n_groups, "seed": 3},
                        inference)
    b = 30 if inference or n_groups is None else n_groups
    c = gridsize * gridsize
    assert g["nn_indices"].shape == (b, c) and g["nn_indices"].dtype == np.int64
    xy = np.stack([x, y], -1)
    np.testing.assert_array_equal(g["coords_px"], xy[g["nn_indices"]])
    np.testing.assert_allclose(g["center_px"], g["coords_px"].mean(1), atol=1e-12)
    np.testing.assert_allclose(g["offsets_px"], g["coords_px"] - g["coords_px"].mean(1, keepdims=True),
                               atol=1e-12)
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
