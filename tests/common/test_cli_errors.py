"""Bad input to the command lines: one line `PROG: error: ...`, exit 2, no traceback, nothing half-written.

Real files and real subprocesses; the backends' entry points are run as users run them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backends.common.bundle_io import BundleError, read_bundle, write_bundle
from backends.common.config import make_config
from backends.common.dataset import save_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run(*args, **kwargs):
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300, **kwargs
    )


def one_error_line(proc, *needles):
    """The run failed with status 2 and one stderr line that names every needle."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "RuntimeWarning" not in line]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "error: " in lines[0]
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return save_dataset(simulate(seed=3, n_positions=12, n=16), tmp_path_factory.mktemp("scan") / "scan.npz")


@pytest.fixture
def corrupt_bundle(tmp_path):
    """A real bundle with one byte flipped inside the data of its weights member."""
    cfg = make_config({"n_filters_scale": 1})
    weights = initial_weights(5, cfg.n_filters_scale, 1.25)
    path = write_bundle(
        tmp_path / "bundle.zip",
        backend="test",
        framework_versions={},
        config=cfg,
        weights=weights,
        probe=np.ones((16, 16), np.complex64),
        input_scale=1.0,
    )
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("weights.safetensors")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_member_is_a_bundle_error_naming_file_and_member(corrupt_bundle):
    with pytest.raises(BundleError, match=r"bundle\.zip \[member 'weights\.safetensors'\]: damaged member"):
        read_bundle(corrupt_bundle)


@pytest.mark.slow
def test_infer_reports_a_corrupt_bundle_in_one_line(corrupt_bundle, scan, tmp_path):
    proc = run(
        "-m",
        "backends.torch_pinn.infer",
        "--bundle",
        str(corrupt_bundle),
        "--data-file",
        str(scan),
        "--output-dir",
        str(tmp_path / "out"),
    )
    one_error_line(proc, corrupt_bundle, "weights.safetensors", "damaged member")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_output_dir_under_a_file_is_one_error_before_training(scan, tmp_path):
    (tmp_path / "somefile").write_text("x")
    proc = run(
        "-m",
        "backends.torch_pinn.train",
        "--train-data-file",
        str(scan),
        "--output-dir",
        str(tmp_path / "somefile" / "out"),
        "--epochs",
        "1",
    )
    one_error_line(proc, "--output-dir", "somefile is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile"]


@pytest.mark.slow
def test_infer_output_dir_under_a_file_is_one_error(corrupt_bundle, scan, tmp_path):
    good = tmp_path / "good.zip"
    cfg = make_config({"n_filters_scale": 1})
    write_bundle(
        good,
        backend="test",
        framework_versions={},
        config=cfg,
        input_scale=1.0,
        weights=initial_weights(5, cfg.n_filters_scale, 1.25),
        probe=np.ones((16, 16), np.complex64),
    )
    (tmp_path / "somefile").write_text("x")
    proc = run(
        "-m",
        "backends.torch_pinn.infer",
        "--bundle",
        str(good),
        "--data-file",
        str(scan),
        "--output-dir",
        str(tmp_path / "somefile" / "out"),
    )
    one_error_line(proc, "--output-dir", "somefile is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_output_parent_is_one_error(scan, tmp_path):
    from backends.common.cli import train_main

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert (
        train_main(
            ["--train-data-file", str(scan), "--output-dir", str(locked / "out")],
            prog="train",
            train=None,
            save_bundle=None,
        )
        == 2
    )


@pytest.mark.slow
def test_sigint_during_training_leaves_no_finished_folder(scan, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backends.tf_pinn.train",
            "--train-data-file",
            str(scan),
            "--output-dir",
            str(out),
            "--epochs",
            "100000",
        ],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob("run.incomplete-*/effective_config.json")):  # written just before training
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "RuntimeWarning" not in line]
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in stderr, stderr
    assert not out.exists()  # nothing at the output folder, so nothing that looks finished
    (staging,) = tmp_path.glob("run.incomplete-*")
    assert (staging / "effective_config.json").is_file() and not (staging / "bundle.zip").exists()


@pytest.mark.slow
def test_epochs_0_writes_the_untrained_bundle_and_says_so(scan, tmp_path):
    proc = run(
        "-m",
        "backends.torch_pinn.train",
        "--train-data-file",
        str(scan),
        "--output-dir",
        str(tmp_path / "out"),
        "--epochs",
        "0",
        "--n-filters-scale",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "epochs 0: the bundle holds the untrained initial weights" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the staging folder became the output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"effective_config.json", "history.json", "bundle.zip"}
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "out", *(tmp_path / "out").iterdir()]}
    umask = os.umask(0o022)
    os.umask(umask)
    if umask == 0o022:
        assert modes == {"out": 0o755, "effective_config.json": 0o644, "history.json": 0o644, "bundle.zip": 0o644}


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--seed", "-1"], ["argument --seed:", "expected an integer >= 0, got '-1'"]),
        (["--n-positions", "x"], ["argument --n-positions/--n_positions:", "got 'x'"]),
        (["--nphotons", "0"], ["argument --nphotons:", "expected a positive number"]),
    ],
)
def test_simulate_flag_errors_name_the_flag(tmp_path, args, needles):
    proc = run("-m", "backends.common.simulate", "--output", str(tmp_path / "s.npz"), *args)
    one_error_line(proc, *needles)
    assert not (tmp_path / "s.npz").exists()


def test_config_flag_errors_name_the_flag(capsys):
    from backends.common.cli import train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(
            ["--train-data-file", "x", "--output-dir", "y", "--epochs", "-3"],
            prog="train",
            train=None,
            save_bundle=None,
        )
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err == "train: error: argument --epochs/--nepochs/--n-epochs: expected an integer "
        ">= 0, got '-3' (see --help)\n"
    )


def test_help_has_no_repeated_alias_nor_repeated_default(capsys):
    from backends.common.cli import infer_main, train_main

    for main in (
        lambda: train_main(["--help"], prog="train", train=None, save_bundle=None),
        lambda: infer_main(["--help"], prog="infer", load_bundle=None, reconstruct=None),
    ):
        with pytest.raises(SystemExit):
            main()
    text = capsys.readouterr().out
    assert "--bundle PATH," not in text and "--bundle PATH" in text
    assert "(default: all)" not in text and text.count("(default: all positions)") == 1


def test_a_folder_given_as_data_file_says_so(tmp_path, capsys):
    from backends.common.cli import train_main

    assert (
        train_main(
            ["--train-data-file", str(tmp_path), "--output-dir", str(tmp_path / "o")],
            prog="train",
            train=None,
            save_bundle=None,
        )
        == 2
    )
    assert capsys.readouterr().err == f"train: error: {tmp_path}: is a folder, not an NPZ file\n"
    assert not (tmp_path / "o").exists()
