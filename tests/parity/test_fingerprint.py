"""Environment fingerprints and tolerance classes: what they record, how a comparison picks its class,
how the ledger's class entries are validated, and what a golden from another machine says."""

import json

import numpy as np
import pytest

from parity import envinfo
from parity.envinfo import (
    KERNEL_VARIABLES,
    fingerprint,
    fingerprint_differences,
    isa_level,
)
from parity.golden import GoldenError, GoldenStore
from parity.tolerance_measure import write_ledger
from parity.tolerances import LedgerError, load_ledger, read_ledger_document, tolerance

from .factories import ENV, ledger_document, ledger_entry
from .factories import GOLDEN_INFO as INFO

CID = "gs1-k4-poisson-n32"
AVX512 = ["SSE41", "SSE42", "AVX", "FMA3", "AVX2", "AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL"]


# ---- the fingerprint ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features, level",
    [
        (AVX512, "avx512"),
        (AVX512[:-1], "avx2"),  # AVX-512 without VL is not x86-64-v4
        (["SSE42", "AVX", "AVX2", "FMA3"], "avx2"),
        (["SSE42", "AVX", "AVX2"], "avx"),  # AVX2 without FMA: not v3
        (["SSE41", "SSE42"], "sse4"),
        (["ASIMD", "SVE"], "sve"),
        ([], "baseline"),
    ],
)
def test_isa_level(features, level):
    assert isa_level(features) == level


def test_fingerprint_records_device_class_isa_kernel_variables_and_versions(monkeypatch):
    monkeypatch.setattr(envinfo, "cpu_features", lambda: AVX512)
    environ = {"TF_ENABLE_ONEDNN_OPTS": "1", "OMP_NUM_THREADS": "2", "HOME": "/x", "ONEDNN_MAX_CPU_ISA": ""}
    found = fingerprint({"torch": "2.13.0"}, environ=environ)
    assert found["device"] == "cpu" and found["tolerance_class"] == "cpu"
    assert found["cpu"]["isa"] == "avx512" and found["cpu"]["features"] == AVX512
    assert found["kernels"] == {"OMP_NUM_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}  # set ones, nothing else
    assert found["frameworks"] == {"torch": "2.13.0"}
    assert set(found["kernels"]) <= set(KERNEL_VARIABLES)
    gpu = fingerprint({}, environ={"PINN_PARITY_DEVICE": "cuda:9.0"})
    assert gpu["device"] == "cuda:9.0" and gpu["tolerance_class"] == "gpu"


def test_the_real_cpu_features_are_read():
    features = envinfo.cpu_features()
    assert features and set(features) <= set(envinfo.KERNEL_CPU_FEATURES)  # numpy knows this CPU
    assert json.loads(json.dumps(fingerprint()))["cpu"]["isa"] == isa_level(features)


@pytest.mark.parametrize("value", ["gpu", "cuda", "cuda:", "CPU", "cuda:9.0 ", "cuda:9/0"])
def test_a_malformed_device_is_an_error_naming_the_variable(value):
    if value.strip() != value:  # surrounding blanks are trimmed
        assert envinfo.device({"PINN_PARITY_DEVICE": value}) == value.strip()
        return
    with pytest.raises(ValueError, match="PINN_PARITY_DEVICE="):
        envinfo.device({"PINN_PARITY_DEVICE": value})


def test_fingerprint_differences_name_each_field():
    here = fingerprint({"torch": "2.13.0"}, environ={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert fingerprint_differences(here, here) == []
    assert fingerprint_differences(None, here) == []  # a golden without one: unknown, not different
    there = json.loads(json.dumps(here))
    there["cpu"]["isa"] = "avx512"
    there["kernels"] = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    there["frameworks"]["torch"] = "2.12.0"
    assert fingerprint_differences(there, here) == [
        f"cpu.isa: avx512 -> {here['cpu']['isa']}",
        "kernels.TF_ENABLE_ONEDNN_OPTS: 1 -> 0",
        "frameworks.torch: 2.12.0 -> 2.13.0",
    ]


# ---- tolerance classes in the ledger --------------------------------------------------------------


def _ledger(tmp_path, **classes):
    entry = ledger_entry("forward", "max_abs", 1e-5)
    if classes:
        entry["classes"] = classes
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger_document([entry, ledger_entry("loss", "max_abs", 1e-6)])))
    return path


def _gpu(value=3e-4, **extra):
    return {
        "value": value,
        "rtol": 0.0,
        "measured_max": value / 10,
        "seeds": [0, 1, 2],
        "headroom": 10,
        "environment": ENV,
        "date": "2026-12-06",
        **extra,
    }


def test_a_comparison_picks_the_entry_of_its_class(tmp_path, monkeypatch):
    ledger = load_ledger(_ledger(tmp_path, gpu=_gpu()))
    cpu = tolerance("forward", "max_abs", "float32", ledger=ledger, tolerance_class="cpu")
    gpu = tolerance("forward", "max_abs", "float32", ledger=ledger, tolerance_class="gpu")
    assert (cpu.value, cpu.tolerance_class) == (1e-5, "cpu")
    assert (gpu.value, gpu.tolerance_class, gpu.bound, gpu.key) == (3e-4, "gpu", "upper", "forward.max_abs.float32")
    assert gpu.to_dict()["class"] == "gpu" and "class gpu" in gpu.to_dict()["provenance"]
    assert cpu.to_dict()["class"] == "cpu" and "class" not in cpu.to_dict()["provenance"]
    # No gpu entry: the cpu fields, and the tolerance says so.
    loss = tolerance("loss", "max_abs", "float32", ledger=ledger, tolerance_class="gpu")
    assert (loss.value, loss.tolerance_class) == (1e-6, "cpu")
    # The default is the running device's class.
    monkeypatch.setenv("PINN_PARITY_DEVICE", "cuda:8.0")
    assert tolerance("forward", "max_abs", "float32", ledger=ledger).value == 3e-4
    monkeypatch.delenv("PINN_PARITY_DEVICE")
    assert tolerance("forward", "max_abs", "float32", ledger=ledger).value == 1e-5
    with pytest.raises(LedgerError, match="unknown tolerance class 'tpu'"):
        tolerance("forward", "max_abs", "float32", ledger=ledger, tolerance_class="tpu")
    monkeypatch.setenv("PINN_PARITY_DEVICE", "gpu0")
    with pytest.raises(LedgerError, match="PINN_PARITY_DEVICE='gpu0'"):
        tolerance("forward", "max_abs", "float32", ledger=ledger)


def test_the_shipped_ledgers_still_load_without_classes():
    ledger = load_ledger()
    assert ledger.entries and all(t.tolerance_class == "cpu" for t in ledger.entries.values())


@pytest.mark.parametrize(
    "classes, message",
    [
        ({"cpu": _gpu()}, r"'forward\.max_abs\.float32': classes\.cpu: the entry's own fields are class 'cpu'"),
        ({"tpu": _gpu()}, r"'forward\.max_abs\.float32': unknown tolerance class 'tpu' in classes \(known: gpu\)"),
        ({"gpu": 3e-4}, r"'forward\.max_abs\.float32': classes\.gpu must be an object"),
        ({"gpu": _gpu(bound="lower")}, r"classes\.gpu may hold only .*\(bound given; stage, metric, dtype, bound"),
        ({"gpu": _gpu(colour="red")}, r"classes\.gpu may hold only .*\(colour given"),
        ({"gpu": {k: v for k, v in _gpu().items() if k != "seeds"}}, r"classes\.gpu lacks provenance field.*seeds"),
        ({"gpu": _gpu(value=-1.0)}, r"'forward\.max_abs\.float32' classes\.gpu: value and rtol must be >= 0"),
        ({"gpu": _gpu(measured_max=None)}, r"classes\.gpu: measured_max and seeds are required"),
        (
            {"gpu": _gpu(environment=dict(ENV, fingerprint={"tolerance_class": "cpu"}))},
            r"classes\.gpu \(class 'gpu'\) were measured on a machine of class 'cpu'",
        ),
    ],
)
def test_a_bad_class_entry_is_an_error_naming_the_key(tmp_path, classes, message):
    with pytest.raises(LedgerError, match=message):
        load_ledger(_ledger(tmp_path, **classes))


def test_an_entry_fingerprint_must_match_its_class(tmp_path):
    entry = ledger_entry("forward", "max_abs", 1e-5)
    entry["environment"] = dict(ENV, fingerprint={"tolerance_class": "gpu"})
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger_document([entry])))
    with pytest.raises(LedgerError, match=r"its own fields \(class 'cpu'\) were measured on a machine of class 'gpu'"):
        load_ledger(path)
    entry["environment"] = dict(ENV, fingerprint={"tolerance_class": "cpu"})
    path.write_text(json.dumps(ledger_document([entry])))
    assert load_ledger(path).entries["forward.max_abs.float32"].value == 1e-5


def test_measuring_on_a_gpu_writes_the_gpu_class_and_leaves_the_cpu_fields(tmp_path, monkeypatch):
    path = _ledger(tmp_path)
    before = read_ledger_document(path)["entries"]["forward.max_abs.float32"]
    found = {"forward.max_abs.float32": {"worst": 2e-4, "max_ref": 1.0, "seeds": [0, 1], "n": 4}}
    monkeypatch.setenv("PINN_PARITY_DEVICE", "cuda:9.0")
    write_ledger(found, path, log=lambda line: None)
    entry = read_ledger_document(path)["entries"]["forward.max_abs.float32"]
    assert {k: v for k, v in entry.items() if k != "classes"} == before
    gpu = entry["classes"]["gpu"]
    assert gpu["value"] == pytest.approx(2e-3) and gpu["measured_max"] == 2e-4 and not gpu["provisional"]
    assert gpu["environment"]["fingerprint"]["tolerance_class"] == "gpu"
    assert load_ledger(path).classes["forward.max_abs.float32"]["gpu"].value == pytest.approx(2e-3)
    monkeypatch.delenv("PINN_PARITY_DEVICE")
    write_ledger(found, path, log=lambda line: None)  # on the CPU: the entry's own fields, the gpu class kept
    entry = read_ledger_document(path)["entries"]["forward.max_abs.float32"]
    assert entry["value"] == pytest.approx(2e-3) and entry["environment"]["fingerprint"]["tolerance_class"] == "cpu"
    assert entry["classes"]["gpu"] == gpu


# ---- goldens --------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    return GoldenStore(tmp_path / "golden")


def _arrays():
    return {"amplitude": np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)}


def test_a_golden_records_the_fingerprint_of_its_machine(store):
    store.write(CID, "forward", _arrays(), INFO)
    manifest = store.read_manifest(CID)
    assert manifest["fingerprint"] == json.loads(json.dumps(fingerprint(INFO["framework_versions"])))
    # Same machine, only the versions INFO claims differ from the installed ones.
    assert all(line.startswith("frameworks.") for line in store.fingerprint_differences(CID))
    store.write(CID, "loss", {"loss": np.float32([1.0])}, dict(INFO, framework_versions=fingerprint()["frameworks"]))
    assert store.fingerprint_differences(CID) == []  # the last write's fingerprint is the manifest's


def test_a_golden_of_another_machine_says_so_when_a_comparison_fails(store, tol):
    here = fingerprint()
    there = json.loads(json.dumps(here))
    there["cpu"]["isa"] = "avx512"
    store.write(CID, "forward", _arrays(), dict(INFO, fingerprint=there))
    assert store.fingerprint_differences(CID) == [f"cpu.isa: avx512 -> {here['cpu']['isa']}"]
    [ok] = store.check(CID, "forward", _arrays(), tol)
    assert ok.passed and "another machine" not in ok.message
    moved = {"amplitude": _arrays()["amplitude"] + np.float32(1e-3)}
    [failed] = store.check(CID, "forward", moved, tol)
    assert not failed.passed
    *_, line, closing = failed.message.splitlines()
    assert line == f"  golden written on another machine: cpu.isa: avx512 -> {here['cpu']['isa']}"
    assert closing.startswith("  regenerate: ")  # what to do next stays last


def test_a_manifest_without_a_fingerprint_is_read_as_unknown(store, tol):
    store.write(CID, "forward", _arrays(), dict(INFO, fingerprint=fingerprint()))
    path = store.manifest_path(CID)
    manifest = json.loads(path.read_text())
    del manifest["fingerprint"]
    path.write_text(json.dumps(manifest))
    assert store.fingerprint_differences(CID) == []
    [result] = store.check(CID, "forward", _arrays(), tol)
    assert result.passed
    manifest["fingerprint"] = {"tolerance_class": "quantum"}
    path.write_text(json.dumps(manifest))
    with pytest.raises(GoldenError, match="manifest fingerprint must be an object whose tolerance_class"):
        store.read_manifest(CID)


# ---- golden points: a quantity pinned at several batches, judged at the first that agrees ----------


def _points(shift_at=(), size=1e-3):
    base = {"loss": np.float32([1.0])}
    for k, name in enumerate(("grad_norms", "grad_norms@1", "grad_norms@2")):
        value = np.linspace(1, 2, 8, dtype=np.float32) * (k + 1)
        base[name] = value + np.float32(size) if k in shift_at else value
    return base


def test_a_kink_on_the_first_point_is_judged_at_the_next(store, tol):
    store.write(CID, "gradients", _points(), INFO)
    lookup = lambda stage, metric, dtype: tol("forward", "max_abs", dtype)  # noqa: E731
    results = {r.metric: r for r in store.check(CID, "gradients", _points(shift_at=(0,)), lookup)}
    assert set(results) == {"max_abs[grad_norms]", "max_abs[loss]"}  # the later points are no comparisons
    judged = results["max_abs[grad_norms]"]
    assert judged.passed and judged.measured["point"] == 1 and judged.measured["max_abs"] == 0
    assert "judged at point 1, the first that agrees" in judged.message and "0.001, 0" in judged.message
    both = {r.metric: r for r in store.check(CID, "gradients", _points(shift_at=(0, 1)), lookup)}
    assert both["max_abs[grad_norms]"].passed and both["max_abs[grad_norms]"].measured["point"] == 2


def test_a_split_at_every_point_fails_at_the_first(store, tol):
    store.write(CID, "gradients", _points(), INFO)
    lookup = lambda stage, metric, dtype: tol("forward", "max_abs", dtype)  # noqa: E731
    [grads, loss] = store.check(CID, "gradients", _points(shift_at=(0, 1, 2)), lookup)
    assert not grads.passed and grads.measured["point"] == 0 and loss.passed
    assert "\n  max_abs at points 0..2: 0.001, 0.001, 0.001; none agrees: judged at point 0\n" in grads.message
    [same, _] = store.check(CID, "gradients", _points(), lookup)
    assert same.passed and same.measured["point"] == 0


def test_a_golden_without_the_later_points_fails_as_keys_that_differ(store, tol):
    old = {k: v for k, v in _points().items() if "@" not in k}
    store.write(CID, "gradients", old, INFO)
    lookup = lambda stage, metric, dtype: tol("forward", "max_abs", dtype)  # noqa: E731
    results = store.check(CID, "gradients", _points(), lookup)
    assert results[0].metric == "keys" and "only in this run: ['grad_norms@1', 'grad_norms@2']" in results[0].message
