"""make_fixture (docs/spec.md §1): a subset keeps every pattern with its own coordinates."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from backends.common.dataset import DatasetError, load_dataset, save_dataset
from backends.common.make_fixture import main, make_fixture
from backends.common.simulate import simulate


@pytest.fixture
def source(tmp_path):
    return save_dataset(simulate(seed=11, n_positions=20, n=16), tmp_path / "source.npz")


def test_keeps_pairs_and_records_provenance(tmp_path, source):
    out = make_fixture(source, tmp_path / "fixture.npz", subset_size=7, seed=3)
    full, sub = load_dataset(source), load_dataset(out)
    expected = np.sort(np.random.default_rng(3).choice(20, size=7, replace=False))
    fixture = sub.metadata["fixture"]
    assert fixture["indices"] == expected.tolist()
    assert fixture["seed"] == 3 and fixture["source_file"] == "source.npz"
    assert fixture["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    for key in ("diffraction", "xcoords", "ycoords", "xcoords_start", "ycoords_start"):
        np.testing.assert_array_equal(getattr(sub, key), getattr(full, key)[expected], err_msg=key)
    np.testing.assert_array_equal(sub.probe, full.probe)
    np.testing.assert_array_equal(sub.object, full.object)
    # Every pattern still matches its own position: the nearest full-set match is the same index.
    for row, idx in enumerate(expected):
        assert np.array_equal(sub.diffraction[row], full.diffraction[idx])


def test_source_metadata_is_kept(tmp_path, source):
    sub = load_dataset(make_fixture(source, tmp_path / "f.npz", subset_size=4))
    assert sub.metadata["seed"] == 11


@pytest.mark.parametrize("size", [0, 21])
def test_subset_size_out_of_range(tmp_path, source, size):
    with pytest.raises(DatasetError, match="subset-size"):
        make_fixture(source, tmp_path / "f.npz", subset_size=size)


def test_cli_and_its_error_exit(tmp_path, source, capsys):
    assert main(["--source", str(source), "--output", str(tmp_path / "c.npz"), "--subset_size", "5"]) == 0
    assert load_dataset(tmp_path / "c.npz").n_positions == 5
    assert (
        main(["--source", str(tmp_path / "missing.npz"), "--output", str(tmp_path / "d.npz"), "--subset-size", "5"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.npz" in err[0]
