"""Bundles (docs/spec.md §12): save, load, predict exactly; refusals through load_bundle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from backends.common.bundle_io import MANIFEST, WEIGHTS, BundleError, read_bundle
from backends.common.config import make_config
from backends.common.simulate import simulate

VERSIONS = {"tf_pinn": {"tensorflow", "keras"}, "torch_pinn": {"torch", "lightning"}}


@pytest.fixture(scope="module")
def trained(backend):
    data = simulate(seed=12, n_positions=16, n=16)
    cfg = make_config({"gridsize": 2, "n_filters_scale": 1, "epochs": 1, "batch_size": 8, "seed": 3})
    return backend.train.train(cfg, data).model, data


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def test_save_load_predict_is_exact(backend, tmp_path, trained):
    model, data = trained
    path = backend.bundle.save_bundle(model, tmp_path / "bundle.zip")
    loaded = backend.bundle.load_bundle(path)
    assert loaded.config == model.config and loaded.input_scale == model.input_scale
    np.testing.assert_array_equal(backend.numpy(loaded.probe), backend.numpy(model.probe))
    before, after = model.get_canonical_weights(), loaded.get_canonical_weights()
    assert list(before) == list(after)
    for name in before:
        assert before[name].tobytes() == after[name].tobytes(), name
    x = backend.to_native(data.diffraction[:4, None].repeat(4, axis=1))
    offsets = backend.tensor(np.zeros((4, 4, 2), np.float32))
    with backend.no_grad():
        np.testing.assert_array_equal(
            backend.numpy(loaded.far_field(x, offsets)), backend.numpy(model.far_field(x, offsets))
        )
    obj_a, origin_a = backend.stitch.reconstruct(model, data)
    obj_b, origin_b = backend.stitch.reconstruct(loaded, data)
    np.testing.assert_array_equal(obj_a, obj_b)
    assert origin_a == origin_b


def test_manifest_names_this_backend(backend, tmp_path, trained):
    model, _ = trained
    path = backend.bundle.save_bundle(model, tmp_path / "b.zip")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "probe.npy", "weights.safetensors"]
    contents = read_bundle(path)
    m = contents.manifest
    assert m["backend"] == backend.name
    assert VERSIONS[backend.name] | {"numpy", "python"} <= set(m["framework_versions"])
    for name, version in backend.runtime.framework_versions().items():
        assert m["framework_versions"][name] == version
    assert m["config"] == model.config.to_dict() and m["input_scale"] == model.input_scale
    assert m["log_intensity_scale"] == float(backend.numpy(model.log_intensity_scale))
    assert contents.probe.dtype == np.complex64 and m["N"] == 16


def test_tampered_member_is_refused(backend, tmp_path, trained):
    path = backend.bundle.save_bundle(trained[0], tmp_path / "b.zip")

    for byte in (-4, -1):

        def flip(members, byte=byte):
            data = bytearray(members[WEIGHTS])
            data[byte] ^= 0x10
            members[WEIGHTS] = bytes(data)

        with pytest.raises(BundleError, match="weights.safetensors.*altered"):
            backend.bundle.load_bundle(_rewrite(path, tmp_path / "t.zip", flip))


def test_member_outside_the_root_is_refused(backend, tmp_path, trained):
    path = backend.bundle.save_bundle(trained[0], tmp_path / "b.zip")
    bad = _rewrite(path, tmp_path / "t.zip", lambda m: m.__setitem__("../escape.txt", b"x"))
    with pytest.raises(BundleError, match="'../escape.txt'.*escapes the archive root"):
        backend.bundle.load_bundle(bad)


@pytest.mark.parametrize("version", [2, 99])
def test_other_format_version_is_refused(backend, tmp_path, trained, version):
    path = backend.bundle.save_bundle(trained[0], tmp_path / "b.zip")

    def bump(members):
        manifest = json.loads(members[MANIFEST])
        manifest["format_version"] = version
        members[MANIFEST] = json.dumps(manifest).encode()

    with pytest.raises(BundleError, match=f"format_version {version} is not supported"):
        backend.bundle.load_bundle(_rewrite(path, tmp_path / "t.zip", bump))


def test_missing_bundle_is_refused(backend, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        backend.bundle.load_bundle(tmp_path / "nothing.zip")


def test_save_is_atomic_and_overwrites(backend, tmp_path, trained):
    path = tmp_path / "sub" / "b.zip"
    assert backend.bundle.save_bundle(trained[0], path) == path
    backend.bundle.save_bundle(trained[0], path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.zip"]
