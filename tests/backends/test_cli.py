"""Command lines (docs/spec.md §13): in-process and as real `python -m` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backends.common.config import canonical_defaults
from backends.common.dataset import load_dataset, save_dataset
from backends.common.geometry import canvas_geometry
from backends.common.simulate import simulate

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """N=16, 20 positions: the defaults (50 epochs, batch 16) train in seconds."""
    return save_dataset(simulate(seed=21, n_positions=20, n=16), tmp_path_factory.mktemp("cli") / "tiny.npz")


def _json(path):
    return json.loads(Path(path).read_text())


def _check_reconstruction(backend, out_dir, bundle, data_path):
    data = load_dataset(data_path)
    with np.load(out_dir / "reconstruction.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["object", "origin_px"]
        obj, origin = npz["object"], npz["origin_px"]
    geom = canvas_geometry(data.xcoords, data.ycoords, data.N)
    assert obj.dtype == np.complex64 and obj.shape == geom.shape
    np.testing.assert_array_equal(origin, geom.origin_px)
    expected, _ = backend.stitch.reconstruct(backend.bundle.load_bundle(bundle), data)
    np.testing.assert_array_equal(obj, expected)
    assert np.abs(obj).max() > 0
    centres = (np.floor(data.ycoords - origin[1]).astype(int), np.floor(data.xcoords - origin[0]).astype(int))
    assert np.all(obj[centres] != 0)  # every probe centre lies inside its patch's support S
    assert (out_dir / "reconstruction.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_train_with_defaults_then_infer(backend, tmp_path, tiny_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert backend.cli.train_main(["--train-data-file", str(tiny_path), "--output-dir", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["run"]  # nothing else written to the working directory
    assert _json(out / "effective_config.json") == canonical_defaults()
    history = _json(out / "history.json")
    assert history["backend"] == backend.name and history["test_loss"] is None
    assert history["n_groups"] == 20 and history["steps_per_epoch"] == 2
    assert len(history["epoch_loss"]) == 50 and len(history["step_loss"]) == 100
    model = backend.bundle.load_bundle(out / "bundle.zip")
    assert model.config.to_dict() == canonical_defaults()
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        assert json.loads(zf.read("manifest.json"))["backend"] == backend.name
    rec = tmp_path / "rec"
    assert (
        backend.cli.infer_main(
            ["--bundle", str(out / "bundle.zip"), "--data-file", str(tiny_path), "--output-dir", str(rec)]
        )
        == 0
    )
    _check_reconstruction(backend, rec, out / "bundle.zip", tiny_path)
    assert "reconstruction.npz" in capsys.readouterr().out


FLAGS = {
    "gridsize": 2,
    "neighbor_count": 5,
    "n_groups": 12,
    "seed": 3,
    "n_filters_scale": 1,
    "amp_activation": "softplus",
    "batch_size": 5,
    "epochs": 2,
    "learning_rate": 0.002,
    "adam_epsilon": 1e-6,
    "loss": "mae",
    "object_big": False,
}
ALIASES = {
    "n_groups": "--n_images",
    "epochs": "--nepochs",
    "learning_rate": "--learning_rate",
    "neighbor_count": "--neighbor_count",
    "batch_size": "--batch_size",
    "n_filters_scale": "--n_filters_scale",
    "amp_activation": "--amp_activation",
    "adam_epsilon": "--adam_epsilon",
    "object_big": "--object_big",
}


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["dashed", "aliases"])
def test_flags_become_the_effective_config(backend, tiny_path, tmp_path, spelling):
    if spelling == "dashed":
        argv = [f"--{k.replace('_', '-')}={str(v).lower() if isinstance(v, bool) else v}" for k, v in FLAGS.items()]
        paths = ["--train-data-file", str(tiny_path), "--test-data-file", str(tiny_path), "--output-dir"]
    else:
        argv = []
        for k, v in FLAGS.items():
            argv += [ALIASES.get(k, "--" + k), str(v).lower() if isinstance(v, bool) else str(v)]
        paths = ["--train_data_file", str(tiny_path), "--test_data_file", str(tiny_path), "--output_dir"]
    out = tmp_path / spelling
    assert backend.cli.train_main(argv + paths + [str(out)]) == 0
    assert _json(out / "effective_config.json") == {**canonical_defaults(), **FLAGS}
    history = _json(out / "history.json")
    assert history["n_groups"] == 12 and history["steps_per_epoch"] == 3 and len(history["step_loss"]) == 6
    assert isinstance(history["test_loss"], float)
    assert backend.bundle.load_bundle(out / "bundle.zip").config.to_dict() == {**canonical_defaults(), **FLAGS}


@pytest.mark.slow
def test_one_epoch_with_every_alias(backend, tmp_path, tiny_path):
    out = tmp_path / "run"
    argv = [
        "--train_data_file",
        str(tiny_path),
        "--test_data_file",
        str(tiny_path),
        "--output_dir",
        str(out),
        "--gridsize",
        "2",
        "--neighbor_count",
        "5",
        "--n_images",
        "12",
        "--seed",
        "3",
        "--n_filters_scale",
        "1",
        "--amp_activation",
        "softplus",
        "--batch_size",
        "5",
        "--nepochs",
        "1",
        "--learning_rate",
        "0.002",
        "--adam_epsilon",
        "1e-8",
        "--loss",
        "mae",
        "--object_big",
        "false",
    ]
    assert backend.cli.train_main(argv) == 0
    expected = {
        "gridsize": 2,
        "neighbor_count": 5,
        "n_groups": 12,
        "seed": 3,
        "n_filters_scale": 1,
        "amp_activation": "softplus",
        "batch_size": 5,
        "epochs": 1,
        "learning_rate": 0.002,
        "adam_epsilon": 1e-8,
        "loss": "mae",
        "object_big": False,
    }
    assert _json(out / "effective_config.json") == expected
    history = _json(out / "history.json")
    assert history["n_groups"] == 12 and history["steps_per_epoch"] == 3 and len(history["step_loss"]) == 3
    assert isinstance(history["test_loss"], float)
    assert backend.bundle.load_bundle(out / "bundle.zip").config.to_dict() == expected


@pytest.mark.slow
def test_python_m_train_and_infer_subprocesses(backend, tmp_path, tiny_path):
    out, rec = tmp_path / "run", tmp_path / "rec"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    train_cmd = [
        sys.executable,
        "-m",
        f"backends.{backend.name}.train",
        "--train-data-file",
        str(tiny_path),
        "--output-dir",
        str(out),
        "--gridsize",
        "2",
        "--neighbor-count",
        "4",
        "--n-groups",
        "8",
        "--n-filters-scale",
        "1",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--learning-rate",
        "0.002",
    ]
    done = subprocess.run(train_cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "GPU available" not in done.stdout + done.stderr
    assert _json(out / "effective_config.json") == dict(
        canonical_defaults(),
        gridsize=2,
        neighbor_count=4,
        n_groups=8,
        n_filters_scale=1,
        batch_size=4,
        epochs=2,
        learning_rate=0.002,
        object_big=True,
    )
    assert len(_json(out / "history.json")["step_loss"]) == 4
    assert len(_json(out / "history.json")["epoch_loss"]) == 2
    infer_cmd = [
        sys.executable,
        "-m",
        f"backends.{backend.name}.infer",
        "--bundle",
        str(out / "bundle.zip"),
        "--data-file",
        str(tiny_path),
        "--output-dir",
        str(rec),
    ]
    done = subprocess.run(infer_cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _check_reconstruction(backend, rec, out / "bundle.zip", tiny_path)
    assert sorted(os.listdir(tmp_path)) == ["rec", "run"]  # no logs in the working directory


@pytest.mark.slow
def test_train_subprocess_with_aliases_and_defaults(backend, tmp_path, tiny_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            f"backends.{backend.name}.train",
            "--train_data_file",
            str(tiny_path),
            "--output-dir",
            str(out),
            "--nepochs",
            "2",
            "--n-filters-scale",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _json(out / "effective_config.json") == {**canonical_defaults(), "epochs": 2, "n_filters_scale": 1}
    assert len(_json(out / "history.json")["epoch_loss"]) == 2


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_input_exits_2_with_one_line(backend, tmp_path, tiny_path, capsys):
    train_main, infer_main = backend.cli.train_main, backend.cli.infer_main
    missing = tmp_path / "nope.npz"
    assert train_main(["--train-data-file", str(missing), "--output-dir", str(tmp_path / "a")]) == 2
    line = _one_error_line(capsys)
    assert str(missing) in line and "does not exist" in line
    assert (
        train_main(["--train-data-file", str(tiny_path), "--output-dir", str(tmp_path / "b"), "--n-groups", "21"]) == 2
    )
    assert "n_groups=21" in _one_error_line(capsys)
    assert not (tmp_path / "b").exists()
    assert (
        train_main(
            [
                "--train-data-file",
                str(tiny_path),
                "--output-dir",
                str(tmp_path / "c"),
                "--gridsize",
                "2",
                "--neighbor-count",
                "3",
            ]
        )
        == 2
    )
    assert "neighbor_count" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()
    bad_bundle = tmp_path / "bundle.zip"
    bad_bundle.write_bytes(b"not a zip")
    assert (
        infer_main(["--bundle", str(bad_bundle), "--data-file", str(tiny_path), "--output-dir", str(tmp_path / "d")])
        == 2
    )
    assert "bundle.zip" in _one_error_line(capsys)
    assert (
        infer_main(["--bundle", str(tiny_path), "--data-file", str(tiny_path), "--output-dir", str(tmp_path / "r")])
        == 2
    )
    line = _one_error_line(capsys)  # an NPZ is a zip, but not a bundle
    assert str(tiny_path) in line and "unexpected member" in line


def _train_on_a_terminal(backend, tiny_path, out, *extra):
    """`python -m backends.<b>.train` with standard error on a pseudo-terminal; (exit code, what it showed)."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                f"backends.{backend.name}.train",
                "--train-data-file",
                str(tiny_path),
                "--output-dir",
                str(out),
                "--epochs",
                "3",
                "--n-filters-scale",
                "1",
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=300,
        )
        os.close(follower)
        follower = None
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    return proc.returncode, shown.decode("utf-8", "replace")


@pytest.mark.slow
def test_train_shows_one_progress_line_on_a_terminal_and_none_with_quiet(backend, tmp_path, tiny_path):
    rc, shown = _train_on_a_terminal(backend, tiny_path, tmp_path / "a")
    assert rc == 0, shown
    assert "epoch 3/3, loss " in shown and "<00:00]" in shown, shown
    rc, shown = _train_on_a_terminal(backend, tiny_path, tmp_path / "b", "--quiet")
    assert rc == 0 and "epoch" not in shown, shown


@pytest.mark.slow
def test_train_shows_no_progress_when_standard_error_is_not_a_terminal(backend, tmp_path, tiny_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"backends.{backend.name}.train",
            "--train-data-file",
            str(tiny_path),
            "--output-dir",
            str(tmp_path / "o"),
            "--epochs",
            "2",
            "--n-filters-scale",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch" not in proc.stderr, proc.stderr
