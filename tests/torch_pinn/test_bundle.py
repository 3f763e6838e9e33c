"""Bundle save / load (docs/spec.md §12): exact round trip and refusals."""

import json
import zipfile

import numpy as np
import pytest
import torch

from backends.common.bundle_io import BundleError
from backends.common.config import make_config
from backends.common.simulate import simulate
from backends.torch_pinn import load_bundle, reconstruct, save_bundle
from backends.torch_pinn.train import train

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = simulate(seed=8, n_positions=12, n=16)
    cfg = make_config({"n_filters_scale": 1, "batch_size": 4, "epochs": 1, "gridsize": 2, "neighbor_count": 5})
    result = train(cfg, data)
    path = save_bundle(result.model, tmp_path_factory.mktemp("bundle") / "bundle.zip")
    return data, result.model, path


def test_round_trip_reproduces_prediction_exactly(trained):
    data, model, path = trained
    loaded = load_bundle(path)
    assert loaded.config == model.config
    assert loaded.input_scale == model.input_scale
    np.testing.assert_array_equal(loaded.probe.numpy(), model.probe.numpy())
    a, b = model.get_canonical_weights(), loaded.get_canonical_weights()
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    obj, origin = reconstruct(model, data)
    obj2, origin2 = reconstruct(loaded, data)
    assert origin == origin2
    np.testing.assert_array_equal(obj, obj2)
    x = torch.from_numpy(data.diffraction[:2, None].repeat(4, axis=1))
    offsets = torch.zeros(2, 4, 2)
    with torch.no_grad():
        np.testing.assert_array_equal(model.far_field(x, offsets).numpy(), loaded.far_field(x, offsets).numpy())


def test_manifest_names_this_backend(trained):
    _, model, path = trained
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "probe.npy", "weights.safetensors"]
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["backend"] == "torch_pinn"
    assert manifest["framework_versions"]["torch"] == torch.__version__
    assert "lightning" in manifest["framework_versions"]
    assert manifest["input_scale"] == model.input_scale
    assert manifest["log_intensity_scale"] == pytest.approx(model.log_intensity_scale.item(), rel=1e-7)


def _rewrite(src, dst, replace=None, extra=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, (replace or {}).get(name, zin.read(name)))
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def test_tampered_member_is_refused(trained, tmp_path):
    _, _, path = trained
    with zipfile.ZipFile(path) as zf:
        weights = bytearray(zf.read("weights.safetensors"))
    weights[-1] ^= 0x01
    bad = _rewrite(path, tmp_path / "tampered.zip", replace={"weights.safetensors": bytes(weights)})
    with pytest.raises(BundleError, match=r"weights.safetensors.*altered"):
        load_bundle(bad)


def test_parent_directory_member_is_refused(trained, tmp_path):
    _, _, path = trained
    bad = _rewrite(path, tmp_path / "escape.zip", extra={"../evil.py": b"print('no')"})
    with pytest.raises(BundleError, match=r"\.\./evil\.py.*escapes the archive root"):
        load_bundle(bad)


def test_other_format_version_is_refused(trained, tmp_path):
    _, _, path = trained
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["format_version"] = 2
    bad = _rewrite(path, tmp_path / "v2.zip", replace={"manifest.json": json.dumps(manifest)})
    with pytest.raises(BundleError, match="format_version 2 is not supported"):
        load_bundle(bad)


def test_missing_bundle_is_refused(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nothing.zip")
