"""Command lines (docs/spec.md §13): in-process and as real `python -m` subprocesses."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from backends.common.config import canonical_defaults
from backends.common.dataset import load_dataset, save_dataset
from backends.common.geometry import canvas_geometry
from backends.common.simulate import simulate
from backends.torch_pinn import load_bundle, reconstruct
from backends.torch_pinn.cli import infer_main, train_main

pytestmark = [pytest.mark.torch, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_data") / "tiny.npz"
    save_dataset(simulate(seed=4, n_positions=16, n=16), path)
    return path


def _read_json(path):
    return json.loads(path.read_text())


def test_train_with_defaults_then_infer(tiny_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert train_main(["--train-data-file", str(tiny_path), "--output-dir", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["run"]  # nothing else written to the working directory
    assert _read_json(out / "effective_config.json") == canonical_defaults()
    history = _read_json(out / "history.json")
    assert history["backend"] == "torch_pinn" and history["test_loss"] is None
    assert len(history["epoch_loss"]) == 50 and len(history["step_loss"]) == 50  # 16 groups, batch 16
    model = load_bundle(out / "bundle.zip")
    assert model.config.to_dict() == canonical_defaults()

    rec = tmp_path / "rec"
    assert infer_main(["--bundle", str(out / "bundle.zip"), "--data-file", str(tiny_path),
                       "--output-dir", str(rec)]) == 0
    data = load_dataset(tiny_path)
    with np.load(rec / "reconstruction.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["object", "origin_px"]
        obj, origin = npz["object"], npz["origin_px"]
    geometry = canvas_geometry(data.xcoords, data.ycoords, data.N)
    assert obj.dtype == np.complex64 and obj.shape == geometry.shape
    np.testing.assert_array_equal(origin, geometry.origin_px)
    np.testing.assert_array_equal(obj, reconstruct(model, data)[0])
    centres = (np.floor(data.ycoords - origin[1]).astype(int), np.floor(data.xcoords - origin[0]).astype(int))
    assert np.all(obj[centres] != 0)  # every probe centre lies inside its patch's support S
    assert (rec / "reconstruction.png").read_bytes()[:8] == PNG_MAGIC


FLAGS = {
    "gridsize": 2, "neighbor_count": 5, "n_groups": 12, "seed": 3, "n_filters_scale": 1,
    "amp_activation": "softplus", "batch_size": 5, "epochs": 2, "learning_rate": 0.002,
    "adam_epsilon": 1e-6, "loss": "mae", "object_big": False,
}


@pytest.mark.parametrize("spelling", ["dashed", "aliases"])
def test_flags_become_the_effective_config(tiny_path, tmp_path, spelling):
    if spelling == "dashed":
        argv = [f"--{k.replace('_', '-')}={str(v).lower() if isinstance(v, bool) else v}" for k, v in FLAGS.items()]
        paths = ["--train-data-file", str(tiny_path), "--test-data-file", str(tiny_path), "--output-dir"]
    else:
        names = {"n_groups": "--n_images", "epochs": "--nepochs", "learning_rate": "--learning_rate",
                 "neighbor_count": "--neighbor_count", "batch_size": "--batch_size",
                 "n_filters_scale": "--n_filters_scale", "amp_activation": "--amp_activation",
                 "adam_epsilon": "--adam_epsilon", "object_big": "--object_big"}
        argv = []
        for k, v in FLAGS.items():
            argv += [names.get(k, "--" + k), str(v).lower() if isinstance(v, bool) else str(v)]
        paths = ["--train_data_file", str(tiny_path), "--test_data_file", str(tiny_path), "--output_dir"]
    out = tmp_path / spelling
    assert train_main(argv + paths + [str(out)]) == 0
    assert _read_json(out / "effective_config.json") == {**canonical_defaults(), **FLAGS}
    history = _read_json(out / "history.json")
    assert history["n_groups"] == 12 and history["steps_per_epoch"] == 3 and len(history["step_loss"]) == 6
    assert isinstance(history["test_loss"], float)
    assert load_bundle(out / "bundle.zip").config.to_dict() == {**canonical_defaults(), **FLAGS}


def test_bad_input_exits_2_with_one_line(tiny_path, tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    assert train_main(["--train-data-file", str(missing), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "does not exist" in err
    assert train_main(["--train-data-file", str(tiny_path), "--output-dir", str(tmp_path / "o"),
                       "--n-groups", "17"]) == 2
    assert "n_groups=17" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert infer_main(["--bundle", str(tiny_path), "--data-file", str(tiny_path), "--output-dir",
                       str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()  # an NPZ is a zip, but not a bundle
    assert len(err.splitlines()) == 1 and str(tiny_path) in err and "unexpected member" in err


def test_python_m_train_and_infer_subprocesses(tiny_path, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out, rec = tmp_path / "run", tmp_path / "rec"
    train = subprocess.run([sys.executable, "-m", "backends.torch_pinn.train", "--train_data_file", str(tiny_path),
                            "--output-dir", str(out), "--nepochs", "2", "--n-filters-scale", "1"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    assert "Traceback" not in train.stderr and "GPU available" not in train.stdout + train.stderr
    assert _read_json(out / "effective_config.json") == {**canonical_defaults(), "epochs": 2, "n_filters_scale": 1}
    assert len(_read_json(out / "history.json")["epoch_loss"]) == 2
    infer = subprocess.run([sys.executable, "-m", "backends.torch_pinn.infer", "--bundle", str(out / "bundle.zip"),
                            "--data-file", str(tiny_path), "--output-dir", str(rec)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert infer.returncode == 0, infer.stderr
    with np.load(rec / "reconstruction.npz", allow_pickle=False) as npz:
        obj = npz["object"]
    np.testing.assert_array_equal(obj, reconstruct(load_bundle(out / "bundle.zip"), load_dataset(tiny_path))[0])
    assert sorted(os.listdir(tmp_path)) == ["rec", "run"]  # no lightning_logs/ in the working directory
