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
