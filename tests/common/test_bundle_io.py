"""The bundle archive (docs/spec.md §12): round trip and every refusal, with canonical numpy weights."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from backends.common.bundle_io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    PROBE,
    WEIGHTS,
    BundleError,
    read_bundle,
    write_bundle,
)
from backends.common.config import make_config
from backends.common.weights import initial_weights

CFG = make_config({"n_filters_scale": 1, "epochs": 3})


@pytest.fixture
def bundle(tmp_path):
    weights = initial_weights(5, CFG.n_filters_scale, 1.25)
    probe = (np.arange(256).reshape(16, 16) * (1 + 2j)).astype(np.complex64)
    path = write_bundle(
        tmp_path / "b.zip",
        backend="numpy-test",
        framework_versions={"none": "0"},
        config=CFG,
        weights=weights,
        probe=probe,
        input_scale=0.375,
    )
    return path, weights, probe


def _rewrite(src, dst, members: dict):
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_round_trip(bundle):
    path, weights, probe = bundle
    got = read_bundle(path)
    assert got.config == CFG and got.input_scale == 0.375
    assert got.log_intensity_scale == np.float32(1.25)
    assert set(got.weights) == set(weights)
    for name in weights:
        np.testing.assert_array_equal(got.weights[name], weights[name])
    np.testing.assert_array_equal(got.probe, probe)
    m = got.manifest
    assert m["format"] == FORMAT_NAME and m["format_version"] == FORMAT_VERSION and m["backend"] == "numpy-test"
    assert m["framework_versions"]["none"] == "0" and m["N"] == 16
    assert m["intensity_scale"] == pytest.approx(np.exp(1.25), rel=1e-6)
    assert sorted(_members(path)) == sorted([MANIFEST, WEIGHTS, PROBE])


def test_missing_file_and_not_a_zip(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        read_bundle(tmp_path / "nope.zip")
    (tmp_path / "t.zip").write_text("hello")
    with pytest.raises(BundleError, match="not a zip"):
        read_bundle(tmp_path / "t.zip")


@pytest.mark.parametrize("member", [WEIGHTS, PROBE])
def test_tampered_member(tmp_path, bundle, member):
    members = _members(bundle[0])
    data = bytearray(members[member])
    data[-1] ^= 0x01
    members[member] = bytes(data)
    path = _rewrite(bundle[0], tmp_path / "t.zip", members)
    with pytest.raises(BundleError, match=f"member '{member}'.*altered"):
        read_bundle(path)


@pytest.mark.parametrize("name", ["../evil.txt", "/abs.txt", "sub/../../x"])
def test_member_outside_root(tmp_path, bundle, name):
    members = _members(bundle[0])
    members[name] = b"x"
    with pytest.raises(BundleError, match="escapes the archive root"):
        read_bundle(_rewrite(bundle[0], tmp_path / "t.zip", members))


def test_extra_member(tmp_path, bundle):
    members = _members(bundle[0])
    members["model.pkl"] = b"\x80\x04."
    with pytest.raises(BundleError, match="unexpected member"):
        read_bundle(_rewrite(bundle[0], tmp_path / "t.zip", members))


def test_missing_member(tmp_path, bundle):
    members = _members(bundle[0])
    del members[PROBE]
    with pytest.raises(BundleError, match=f"member '{PROBE}'.*missing"):
        read_bundle(_rewrite(bundle[0], tmp_path / "t.zip", members))


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("format_version", 2, "format_version 2 is not supported"),
        ("format", "other", "not a pinn-parity-bundle"),
        ("config", {"loss": "l2"}, "config or input_scale"),
    ],
)
def test_manifest_refusals(tmp_path, bundle, field, value, needle):
    members = _members(bundle[0])
    manifest = json.loads(members[MANIFEST])
    manifest[field] = value
    members[MANIFEST] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match=needle):
        read_bundle(_rewrite(bundle[0], tmp_path / "t.zip", members))


def test_manifest_not_json(tmp_path, bundle):
    members = _members(bundle[0])
    members[MANIFEST] = b"{not json"
    with pytest.raises(BundleError, match="not JSON"):
        read_bundle(_rewrite(bundle[0], tmp_path / "t.zip", members))


def test_write_refuses_wrong_weights(tmp_path):
    weights = initial_weights(5, 1, 0.0)
    del weights["decoder_amp.head.bias"]
    with pytest.raises(ValueError, match="decoder_amp.head.bias"):
        write_bundle(
            tmp_path / "w.zip",
            backend="x",
            framework_versions={},
            config=CFG,
            weights=weights,
            probe=np.ones((16, 16), np.complex64),
            input_scale=1.0,
        )
    assert not (tmp_path / "w.zip").exists()
