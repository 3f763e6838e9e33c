"""Bundles of the TF backend (docs/spec.md §12): save, load, predict exactly; refusals through load_bundle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from backends.common.bundle_io import MANIFEST, WEIGHTS, BundleError, read_bundle
from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.tf_pinn.bundle import load_bundle, save_bundle
from backends.tf_pinn.stitch import reconstruct
from backends.tf_pinn.train import train

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def trained():
    data = simulate(seed=12, n_positions=16, n=16)
    cfg = make_config({"gridsize": 2, "n_filters_scale": 1, "epochs": 1, "batch_size": 8, "seed": 3})
    return train(cfg, data).model, data


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def test_save_load_predict_is_exact(tmp_path, trained):
    model, data = trained
    path = save_bundle(model, tmp_path / "bundle.zip")
    loaded = load_bundle(path)
    assert loaded.config == model.config and loaded.input_scale == model.input_scale
    np.testing.assert_array_equal(loaded.probe.numpy(), model.probe.numpy())
    before, after = model.get_canonical_weights(), loaded.get_canonical_weights()
    for name in before:
        assert before[name].tobytes() == after[name].tobytes(), name
    x = data.diffraction[:4, :, :, None].repeat(4, axis=-1)
    offsets = np.zeros((4, 4, 2), np.float32)
    np.testing.assert_array_equal(loaded.far_field(x, offsets).numpy(), model.far_field(x, offsets).numpy())
    obj_a, origin_a = reconstruct(model, data)
    obj_b, origin_b = reconstruct(loaded, data)
    np.testing.assert_array_equal(obj_a, obj_b)
    assert origin_a == origin_b


def test_manifest_names_this_backend(tmp_path, trained):
    model, _ = trained
    contents = read_bundle(save_bundle(model, tmp_path / "b.zip"))
    m = contents.manifest
    assert m["backend"] == "tf_pinn"
    assert {"tensorflow", "keras", "numpy", "python"} <= set(m["framework_versions"])
    assert m["config"] == model.config.to_dict() and m["input_scale"] == model.input_scale
    assert m["log_intensity_scale"] == float(model.log_intensity_scale.numpy())
    assert contents.probe.dtype == np.complex64 and m["N"] == 16


def test_tampered_member_is_refused(tmp_path, trained):
    path = save_bundle(trained[0], tmp_path / "b.zip")

    def flip(members):
        data = bytearray(members[WEIGHTS])
        data[-4] ^= 0x10
        members[WEIGHTS] = bytes(data)

    with pytest.raises(BundleError, match="weights.safetensors.*altered"):
        load_bundle(_rewrite(path, tmp_path / "t.zip", flip))


def test_member_outside_the_root_is_refused(tmp_path, trained):
    path = save_bundle(trained[0], tmp_path / "b.zip")
    bad = _rewrite(path, tmp_path / "t.zip", lambda m: m.__setitem__("../escape.txt", b"x"))
    with pytest.raises(BundleError, match="'../escape.txt'.*escapes the archive root"):
        load_bundle(bad)


def test_other_format_version_is_refused(tmp_path, trained):
    path = save_bundle(trained[0], tmp_path / "b.zip")

    def bump(members):
        manifest = json.loads(members[MANIFEST])
        manifest["format_version"] = 99
        members[MANIFEST] = json.dumps(manifest).encode()

    with pytest.raises(BundleError, match="format_version 99 is not supported"):
        load_bundle(_rewrite(path, tmp_path / "t.zip", bump))


def test_save_is_atomic_and_overwrites(tmp_path, trained):
    path = tmp_path / "sub" / "b.zip"
    save_bundle(trained[0], path)
    save_bundle(trained[0], path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.zip"]
