"""The golden store: missing, corrupt, refused, atomic, never deleting."""

import hashlib
import json

import numpy as np
import pytest

from parity.golden import GoldenError, GoldenRefused, GoldenStore
from parity.verdict import Check

from .factories import GOLDEN_INFO as INFO
from .factories import make_comparison

CID = "gs1-k4-poisson-n32"


@pytest.fixture
def store(tmp_path):
    return GoldenStore(tmp_path / "golden")


@pytest.fixture
def arrays(rng):
    return {
        "amplitude": rng.random((2, 1, 8, 8)).astype(np.float32),
        "nn_indices": np.arange(6, dtype=np.int64).reshape(2, 3),
    }


def lookup(tol):
    return lambda stage, metric, dtype: tol(stage, metric, dtype)


def test_missing_golden_fails_and_says_how_to_create_it(store, arrays, tol):
    [result] = store.check(CID, "forward", arrays, lookup(tol), label="tf_pinn")
    assert not result.passed
    assert result.headline.startswith(f"[{CID}] stage forward tf_pinn~golden golden: no golden file")
    assert (
        f"pytest parity/ --force-regen --parity-config {CID}  or  python -m parity regen --parity-config {CID}"
    ) in result.message


def test_written_golden_passes_then_catches_a_change(store, arrays, tol):
    path = store.write(CID, "forward", arrays, INFO)
    assert path.name == "forward.npz"
    results = store.check(CID, "forward", arrays, lookup(tol), label="torch_pinn")
    assert [r.metric for r in results] == ["max_abs[amplitude]", "exact[nn_indices]"]
    assert all(r.passed for r in results)
    changed = dict(arrays, amplitude=arrays["amplitude"] + np.float32(1e-3))
    amplitude, indices = store.check(CID, "forward", changed, lookup(tol), label="torch_pinn")
    assert not amplitude.passed and indices.passed
    assert "exceeds tolerance atol=1e-05, rtol=1e-05 (forward.max_abs.float32)" in amplitude.headline
    assert amplitude.message.splitlines()[-1].startswith(f"  regenerate: python -m parity regen --parity-config {CID}")


def test_keys_that_differ_from_the_golden_fail(store, arrays, tol):
    store.write(CID, "forward", arrays, INFO)
    results = store.check(CID, "forward", {"amplitude": arrays["amplitude"]}, lookup(tol))
    assert not results[0].passed and results[0].metric == "keys"
    assert "only in the golden: ['nn_indices']" in results[0].message


def test_json_golden_is_compared_field_by_field(store):
    store.write(CID, "config", {"gridsize": 1, "n_groups": None, "shape": (2, 3)}, INFO)
    [same] = store.check(CID, "config", {"gridsize": 1, "n_groups": None, "shape": [2, 3]}, None)
    assert same.passed
    [changed] = store.check(CID, "config", {"gridsize": 2, "n_groups": None, "shape": [2, 3]}, None)
    assert not changed.passed and "gridsize: run=2, golden=1" in changed.message


def test_corrupt_golden_names_the_file(store, arrays, tol):
    path = store.write(CID, "forward", arrays, INFO)
    path.write_bytes(b"not a zip archive")
    [result] = store.check(CID, "forward", arrays, lookup(tol))
    assert not result.passed and str(path) in result.headline and "sha256" in result.headline
    # Corrupt in a way the manifest agrees with (it was written that way): the load names it.
    manifest = json.loads(store.manifest_path(CID).read_text())
    manifest["stages"]["forward"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    store.manifest_path(CID).write_text(json.dumps(manifest))
    [result] = store.check(CID, "forward", arrays, lookup(tol))
    assert not result.passed
    assert result.headline.endswith(f"{path}: corrupt golden file (not an npz archive)")
    # A damaged member inside a valid archive is named as well.
    store.write(CID, "forward", arrays, INFO)
    raw = bytearray(path.read_bytes())
    raw[60:80] = bytes(20)
    path.write_bytes(bytes(raw))
    manifest = json.loads(store.manifest_path(CID).read_text())
    manifest["stages"]["forward"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    store.manifest_path(CID).write_text(json.dumps(manifest))
    [result] = store.check(CID, "forward", arrays, lookup(tol))
    assert not result.passed and f"{path}: corrupt golden file (" in result.headline


def test_corrupt_or_foreign_manifest_is_an_error_naming_it(store, arrays, tol):
    store.write(CID, "forward", arrays, INFO)
    manifest_path = store.manifest_path(CID)
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(dict(manifest, config_id="gs2-k4-poisson-n32")))
    with pytest.raises(
        GoldenError,
        match=rf"{manifest_path}: manifest is for config "
        r"'gs2-k4-poisson-n32' but lives in the folder of",
    ):
        store.check(CID, "forward", arrays, lookup(tol))
    manifest_path.write_text("{ truncated")
    with pytest.raises(GoldenError, match=rf"{manifest_path}: unreadable golden manifest \(JSONDecodeError"):
        store.check(CID, "forward", arrays, lookup(tol))


def test_a_golden_of_another_config_is_stale(store, arrays, tol):
    store.write(CID, "forward", arrays, INFO)
    [result] = store.check(CID, "forward", arrays, lookup(tol), config={"gridsize": 2})
    assert not result.passed and "was made from another config (stale golden)" in result.headline
    with pytest.raises(GoldenError, match="holds another config"):
        store.write(CID, "forward", arrays, dict(INFO, config={"gridsize": 2}))


def test_bless_refuses_when_the_backends_disagree(store, arrays):
    disagree = [make_comparison(CID, "forward", True), make_comparison(CID, "forward", False, metric="amplitude")]
    with pytest.raises(GoldenRefused) as info:
        store.bless(CID, "forward", arrays, disagree, INFO)
    assert "1 of 2 cross-backend comparisons failed" in str(info.value)
    assert f"[{CID}] stage forward tf_pinn~torch_pinn amplitude: exceeds" in str(info.value)
    assert not store.folder(CID).exists() or not any(store.folder(CID).iterdir())
    with pytest.raises(GoldenRefused, match="no cross-backend comparison"):
        store.bless(CID, "forward", arrays, [], INFO)
    with pytest.raises(GoldenRefused, match="not cross-backend evidence"):
        store.bless(
            CID, "forward", arrays, [make_comparison(CID, "forward", True, check=Check("tf_pinn", "golden"))], INFO
        )
    store.bless(CID, "forward", arrays, [make_comparison(CID, "forward", True)], INFO)
    assert (store.folder(CID) / "forward.npz").exists()


class ExplodingArray:
    """Passes for an array until numpy converts it, half way through writing the archive."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("serialisation failed mid-write")


def test_a_failed_write_leaves_the_old_golden_and_no_temp_file(store, arrays):
    path = store.write(CID, "forward", arrays, INFO)
    before = path.read_bytes()
    manifest_before = store.manifest_path(CID).read_bytes()
    # "amplitude" sorts first and is written; "zz" then explodes inside the open archive.
    broken = {"amplitude": arrays["amplitude"] * 2, "zz": ExplodingArray()}
    with pytest.raises(RuntimeError, match="serialisation failed mid-write"):
        store.write(CID, "forward", broken, INFO)
    assert path.read_bytes() == before
    assert store.manifest_path(CID).read_bytes() == manifest_before
    assert sorted(p.name for p in store.folder(CID).iterdir()) == ["forward.npz", "manifest.json"]
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.write(CID, "config", {"lr": float("nan")}, INFO)
    assert sorted(p.name for p in store.folder(CID).iterdir()) == ["forward.npz", "manifest.json"]


def test_writes_never_delete_other_configs_or_stages(store, arrays):
    store.write(CID, "forward", arrays, INFO)
    store.write(CID, "config", {"gridsize": 1}, INFO)
    store.write("gs2-k4-poisson-n32", "forward", arrays, INFO)
    other = (store.folder("gs2-k4-poisson-n32") / "forward.npz").read_bytes()
    store.write(CID, "forward", {"amplitude": arrays["amplitude"] * 2}, INFO)
    assert (store.folder(CID) / "config.json").exists()
    assert (store.folder("gs2-k4-poisson-n32") / "forward.npz").read_bytes() == other
    manifest = store.read_manifest(CID)
    assert set(manifest["stages"]) == {"forward", "config"}
    assert manifest["stages"]["forward"]["keys"] == ["amplitude"]
    assert manifest["framework_versions"] == INFO["framework_versions"]
    assert manifest["platform"] == "test-platform" and manifest["commit"] == "0123abc"


def test_writes_are_deterministic_and_small(store, arrays):
    first = store.write(CID, "forward", arrays, INFO).read_bytes()
    assert store.write(CID, "forward", arrays, INFO).read_bytes() == first
    with pytest.raises(GoldenError, match="exceeds the .*-byte limit"):
        store.write(CID, "model", {"x": np.random.default_rng(0).random(400_000)}, INFO)
    with pytest.raises(GoldenError, match="cannot be stored without pickle"):
        store.write(CID, "model", {"x": np.array([object()])}, INFO)
    with pytest.raises(ValueError, match="not a safe file name"):
        store.write("../escape", "forward", arrays, INFO)
