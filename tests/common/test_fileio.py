"""The project's one atomic writer, NPZ writer and versioned-JSON reader."""

import json
import os
import stat

import numpy as np
import pytest

from backends.common.fileio import (
    VersionedJsonError,
    atomic_write,
    atomic_write_json,
    installed_versions,
    read_versioned_json,
    save_npz,
)


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"b": 1, "a": [1.5]})
    assert target.read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half_then_fail(handle):
        handle.write(b"new, half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_written_files_are_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "x.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("compress", [False, True])
def test_npz_bytes_depend_on_the_arrays_only(tmp_path, compress):
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1 + 2j], np.complex64)}
    first = save_npz(tmp_path / "1.npz", arrays, compress=compress).read_bytes()
    second = save_npz(tmp_path / "2.npz", dict(reversed(list(arrays.items()))), compress=compress).read_bytes()
    assert first == second
    with np.load(tmp_path / "1.npz", allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["a", "b"]
        np.testing.assert_array_equal(loaded["b"], arrays["b"])


def test_npz_refuses_objects(tmp_path):
    with pytest.raises(ValueError):
        save_npz(tmp_path / "x.npz", {"o": np.array([{}], dtype=object)})
    assert not list(tmp_path.iterdir())


def test_versioned_json_checks_kind_and_version(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"schema": "thing", "schema_version": 2, "x": 1}))
    assert read_versioned_json(path, kind="thing", version=(1, 2))["x"] == 1
    with pytest.raises(
        VersionedJsonError, match=r"doc.json: expected schema 'thing' schema_version 1, found 'thing' 2"
    ):
        read_versioned_json(path, kind="thing", version=1)
    with pytest.raises(VersionedJsonError, match="expected format 'thing'"):
        read_versioned_json(path, kind="thing", version=2, kind_key="format", version_key="format_version")


@pytest.mark.parametrize(
    "text, problem", [(None, "no such manifest"), ("{", "unreadable manifest"), ("[1]", "a manifest is a JSON object")]
)
def test_versioned_json_names_the_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "m.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(VersionedJsonError, match=f"m.json: {problem}"):
        read_versioned_json(path, kind="k", version=1, what="manifest")


def test_installed_versions_from_metadata():
    found = installed_versions(("numpy", "no-such-distribution-xyz"))
    assert found == {"numpy": np.__version__}
