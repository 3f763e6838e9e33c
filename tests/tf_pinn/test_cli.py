"""Command lines (docs/spec.md §13): train then infer, effective config, flag aliases, error exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backends.tf_pinn as tf_pinn
from backends.common.config import canonical_defaults
from backends.common.dataset import load_dataset, save_dataset
from backends.common.geometry import canvas_geometry
from backends.common.simulate import simulate
from backends.tf_pinn.bundle import load_bundle
from backends.tf_pinn.cli import infer_main, train_main
from backends.tf_pinn.stitch import reconstruct

pytestmark = pytest.mark.tf
REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """N=16, 20 positions: the defaults (50 epochs, batch 16) train in seconds."""
    return save_dataset(simulate(seed=21, n_positions=20, n=16), tmp_path_factory.mktemp("cli") / "tiny.npz")


def _json(path):
    return json.loads(Path(path).read_text())


def _check_reconstruction(out_dir, bundle, data_path):
    data = load_dataset(data_path)
    with np.load(out_dir / "reconstruction.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["object", "origin_px"]
        obj, origin = npz["object"], npz["origin_px"]
    geom = canvas_geometry(data.xcoords, data.ycoords, data.N)
    assert obj.dtype == np.complex64 and obj.shape == geom.shape
    np.testing.assert_array_equal(origin, geom.origin_px)
    expected, _ = reconstruct(load_bundle(bundle), data)
    np.testing.assert_array_equal(obj, expected)
    assert np.abs(obj).max() > 0
    assert (out_dir / "reconstruction.png").read_bytes()[:8] == PNG_MAGIC


def test_package_reexports():
    assert tf_pinn.BACKEND_NAME == "tf_pinn"
    assert callable(tf_pinn.train) and tf_pinn.train.__module__ == "backends.tf_pinn.train"
    assert tf_pinn.save_bundle.__module__ == "backends.tf_pinn.bundle" and callable(tf_pinn.load_bundle)
    assert tf_pinn.reconstruct is reconstruct and tf_pinn.PinnModel.__name__ == "PinnModel"


@pytest.mark.slow
def test_train_with_defaults_then_infer(tmp_path, tiny_path, capsys):
    out = tmp_path / "run"
    assert train_main(["--train-data-file", str(tiny_path), "--output-dir", str(out)]) == 0
    assert _json(out / "effective_config.json") == canonical_defaults()
    history = _json(out / "history.json")
    assert history["backend"] == "tf_pinn" and history["test_loss"] is None
    assert history["n_groups"] == 20 and history["steps_per_epoch"] == 2
    assert len(history["epoch_loss"]) == 50 and len(history["step_loss"]) == 100
    model = load_bundle(out / "bundle.zip")
    assert model.config.to_dict() == canonical_defaults()
    with __import__("zipfile").ZipFile(out / "bundle.zip") as zf:
        assert json.loads(zf.read("manifest.json"))["backend"] == "tf_pinn"
    rec = tmp_path / "rec"
    assert infer_main(["--bundle", str(out / "bundle.zip"), "--data-file", str(tiny_path),
                       "--output-dir", str(rec)]) == 0
    _check_reconstruction(rec, out / "bundle.zip", tiny_path)
    assert "reconstruction.npz" in capsys.readouterr().out


@pytest.mark.slow
def test_underscore_aliases_set_every_field(tmp_path, tiny_path):
    out = tmp_path / "run"
    argv = ["--train_data_file", str(tiny_path), "--test_data_file", str(tiny_path), "--output_dir", str(out),
            "--gridsize", "2", "--neighbor_count", "5", "--n_images", "12", "--seed", "3",
            "--n_filters_scale", "1", "--amp_activation", "softplus", "--batch_size", "5", "--nepochs", "1",
            "--learning_rate", "0.002", "--adam_epsilon", "1e-8", "--loss", "mae", "--object_big", "false"]
    assert train_main(argv) == 0
    expected = {"gridsize": 2, "neighbor_count": 5, "n_groups": 12, "seed": 3, "n_filters_scale": 1,
                "amp_activation": "softplus", "batch_size": 5, "epochs": 1, "learning_rate": 0.002,
                "adam_epsilon": 1e-8, "loss": "mae", "object_big": False}
    assert _json(out / "effective_config.json") == expected
    history = _json(out / "history.json")
    assert history["n_groups"] == 12 and history["steps_per_epoch"] == 3 and len(history["step_loss"]) == 3
    assert isinstance(history["test_loss"], float)
    assert load_bundle(out / "bundle.zip").config.to_dict() == expected


@pytest.mark.slow
def test_python_m_train_and_infer_subprocesses(tmp_path, tiny_path):
    out, rec = tmp_path / "run", tmp_path / "rec"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    train_cmd = [sys.executable, "-m", "backends.tf_pinn.train", "--train-data-file", str(tiny_path),
                 "--output-dir", str(out), "--gridsize", "2", "--neighbor-count", "4", "--n-groups", "8",
                 "--n-filters-scale", "1", "--batch-size", "4", "--epochs", "2", "--learning-rate", "0.002"]
    done = subprocess.run(train_cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _json(out / "effective_config.json") == dict(
        canonical_defaults(), gridsize=2, neighbor_count=4, n_groups=8, n_filters_scale=1, batch_size=4,
        epochs=2, learning_rate=0.002, object_big=True)
    assert len(_json(out / "history.json")["step_loss"]) == 4
    infer_cmd = [sys.executable, "-m", "backends.tf_pinn.infer", "--bundle", str(out / "bundle.zip"),
                 "--data-file", str(tiny_path), "--output-dir", str(rec)]
    done = subprocess.run(infer_cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _check_reconstruction(rec, out / "bundle.zip", tiny_path)


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_input_exits_2_with_one_line(tmp_path, tiny_path, capsys):
    missing = tmp_path / "nope.npz"
    assert train_main(["--train-data-file", str(missing), "--output-dir", str(tmp_path / "a")]) == 2
    assert "nope.npz" in _one_error_line(capsys)
    assert train_main(["--train-data-file", str(tiny_path), "--output-dir", str(tmp_path / "b"),
                       "--n-groups", "21"]) == 2
    assert "n_groups=21" in _one_error_line(capsys)
    assert train_main(["--train-data-file", str(tiny_path), "--output-dir", str(tmp_path / "c"),
                       "--gridsize", "2", "--neighbor-count", "3"]) == 2
    assert "neighbor_count" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()
    bad_bundle = tmp_path / "bundle.zip"
    bad_bundle.write_bytes(b"not a zip")
    assert infer_main(["--bundle", str(bad_bundle), "--data-file", str(tiny_path),
                       "--output-dir", str(tmp_path / "d")]) == 2
    assert "bundle.zip" in _one_error_line(capsys)
