"""The NPZ dataset contract (docs/spec.md §1): every refusal names file, key and problem."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from backends.common.dataset import Dataset, DatasetError, load_dataset, save_dataset


def _arrays(m=5, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "diffraction": rng.uniform(0, 3, (m, n, n)).astype(np.float32),
        "xcoords": rng.uniform(10, 20, m),
        "ycoords": rng.uniform(10, 20, m),
        "probeGuess": (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64),
    }


def _write(tmp_path, arrays, name="d.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _error(path) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    return info.value


def test_valid_file_loads_with_canonical_dtypes(tmp_path):
    arrays = _arrays()
    ds = load_dataset(_write(tmp_path, arrays))
    assert ds.diffraction.dtype == np.float32 and ds.xcoords.dtype == np.float64
    assert ds.probe.dtype == np.complex64
    np.testing.assert_array_equal(ds.diffraction, arrays["diffraction"])
    np.testing.assert_array_equal(ds.ycoords, arrays["ycoords"])
    assert ds.n_positions == 5 and ds.N == 16


def test_missing_file(tmp_path):
    err = _error(tmp_path / "absent.npz")
    assert "absent.npz" in str(err) and "does not exist" in str(err)


def test_not_an_npz(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip")
    err = _error(path)
    assert "text.npz" in str(err) and "not an NPZ" in str(err)


@pytest.mark.parametrize("key", ["diffraction", "xcoords", "ycoords", "probeGuess"])
def test_missing_required_key(tmp_path, key):
    arrays = _arrays()
    del arrays[key]
    err = _error(_write(tmp_path, arrays))
    assert err.key == key and "missing" in err.problem and "d.npz" in str(err)


def test_integer_diffraction_is_cast(tmp_path):
    arrays = _arrays()
    arrays["diffraction"] = np.arange(5 * 16 * 16, dtype=np.int32).reshape(5, 16, 16) % 7
    ds = load_dataset(_write(tmp_path, arrays))
    assert ds.diffraction.dtype == np.float32
    np.testing.assert_array_equal(ds.diffraction, arrays["diffraction"].astype(np.float32))


@pytest.mark.parametrize(
    "key, bad",
    [
        ("diffraction", lambda a: a.astype(np.complex64)),
        ("xcoords", lambda a: a.astype(str)),
        ("probeGuess", lambda a: a.real.astype("datetime64[s]")),
    ],
)
def test_uncastable_dtype(tmp_path, key, bad):
    arrays = _arrays()
    arrays[key] = bad(arrays[key])
    err = _error(_write(tmp_path, arrays))
    assert err.key == key and "cannot be safely cast" in err.problem


@pytest.mark.parametrize("shape, needle", [((5, 16), "3 dimensions"), ((5, 16, 24), "square"), ((16, 16, 5), "square")])
def test_wrong_diffraction_shape(tmp_path, shape, needle):
    arrays = _arrays()
    arrays["diffraction"] = np.ones(shape, dtype=np.float32)
    err = _error(_write(tmp_path, arrays))
    assert err.key == "diffraction" and needle in err.problem


@pytest.mark.parametrize("n", [8, 12, 20])
def test_pattern_size_must_be_multiple_of_8_and_at_least_16(tmp_path, n):
    arrays = _arrays(n=16)
    arrays["diffraction"] = np.ones((5, n, n), dtype=np.float32)
    arrays["probeGuess"] = np.ones((n, n), dtype=np.complex64)
    err = _error(_write(tmp_path, arrays))
    assert err.key == "diffraction" and f"N={n}" in err.problem


def test_n_square_m_layout_is_refused_not_transposed(tmp_path):
    arrays = _arrays(m=16, n=16)
    arrays["diffraction"] = np.ones((16, 16, 24), dtype=np.float32)  # (N, N, M)
    err = _error(_write(tmp_path, arrays))
    assert "(N, N, M)" in err.problem


@pytest.mark.parametrize("key", ["xcoords", "ycoords", "xcoords_start", "ycoords_start"])
def test_mismatched_lengths(tmp_path, key):
    arrays = _arrays()
    arrays[key] = np.zeros(4)
    err = _error(_write(tmp_path, arrays))
    assert err.key == key and "(5,)" in err.problem


def test_probe_shape_must_match_n(tmp_path):
    arrays = _arrays()
    arrays["probeGuess"] = np.ones((24, 24), dtype=np.complex64)
    err = _error(_write(tmp_path, arrays))
    assert err.key == "probeGuess" and "(16, 16)" in err.problem


@pytest.mark.parametrize(
    "key, value",
    [
        ("diffraction", np.nan),
        ("diffraction", np.inf),
        ("xcoords", np.nan),
        ("ycoords", -np.inf),
        ("probeGuess", np.nan),
    ],
)
def test_non_finite_values(tmp_path, key, value):
    arrays = _arrays()
    arr = arrays[key].copy()
    arr.flat[3] = value
    arrays[key] = arr
    err = _error(_write(tmp_path, arrays))
    assert err.key == key and "1 non-finite" in err.problem


def test_negative_amplitude(tmp_path):
    arrays = _arrays()
    arrays["diffraction"][2, 4, 4] = -0.5
    arrays["diffraction"][0, 0, 0] = -1.0
    err = _error(_write(tmp_path, arrays))
    assert err.key == "diffraction" and "2 negative" in err.problem


def test_diff3d_alias_alone_is_read(tmp_path):
    arrays = _arrays()
    arrays["diff3d"] = arrays.pop("diffraction")
    ds = load_dataset(_write(tmp_path, arrays))
    np.testing.assert_array_equal(ds.diffraction, arrays["diff3d"])


def test_diff3d_equal_to_diffraction_is_accepted(tmp_path):
    arrays = _arrays()
    arrays["diff3d"] = arrays["diffraction"].copy()
    load_dataset(_write(tmp_path, arrays))


def test_diff3d_conflicting_with_diffraction(tmp_path):
    arrays = _arrays()
    arrays["diff3d"] = arrays["diffraction"] + 1
    err = _error(_write(tmp_path, arrays))
    assert err.key == "diff3d" and "differ" in err.problem


def test_object_array_needing_pickle_is_refused(tmp_path):
    arrays = _arrays()
    arrays["metadata"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays, allow_pickle=True)
    err = _error(path)
    assert "pickle" in str(err)


def test_metadata_must_be_json_object(tmp_path):
    arrays = _arrays()
    arrays["metadata"] = np.array("[1, 2]")
    err = _error(_write(tmp_path, arrays))
    assert err.key == "metadata"


def test_save_then_load_round_trip_and_fixed_timestamps(tmp_path):
    arrays = _arrays()
    ds = Dataset(
        diffraction=arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
        metadata={"seed": 3},
    )
    path = save_dataset(ds, tmp_path / "out.npz")
    back = load_dataset(path)
    np.testing.assert_array_equal(back.diffraction, ds.diffraction)
    np.testing.assert_array_equal(back.probe, ds.probe)
    assert back.metadata == {"seed": 3}
    with zipfile.ZipFile(path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert json.loads(np.load(path)["metadata"].item()) == {"seed": 3}


def test_save_refuses_invalid_dataset(tmp_path):
    arrays = _arrays()
    ds = Dataset(
        diffraction=-arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
    )
    with pytest.raises(DatasetError, match="negative"):
        save_dataset(ds, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_subset_keeps_each_pattern_with_its_coordinates():
    arrays = _arrays(m=6)
    ds = Dataset(
        diffraction=arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
        xcoords_start=arrays["xcoords"] + 1,
    )
    sub = ds.subset([4, 1])
    np.testing.assert_array_equal(sub.diffraction, arrays["diffraction"][[4, 1]])
    np.testing.assert_array_equal(sub.xcoords, arrays["xcoords"][[4, 1]])
    np.testing.assert_array_equal(sub.xcoords_start, arrays["xcoords"][[4, 1]] + 1)
    assert sub.ycoords_start is None
