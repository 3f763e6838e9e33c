"""What the fuzz tests found, each kept as one plain test of the input that showed it (shrunk by Hypothesis),
so it is checked on every run whatever the examples drawn. The comment of each says what happened before.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from backends.common.bundle_io import MANIFEST, PROBE, WEIGHTS, BundleError, read_bundle
from backends.common.config import ConfigError, config_from_json
from parity.profiles import ProfileError, load_profile_file
from parity.report.diff import diff_hubs
from parity.report.hub import ResultsSchemaError, load_results
from parity.report.merge import merge_hubs
from parity.tolerances import LedgerError, load_ledger

from .genuine import LEDGER_FILE, copy_hub, copy_profile, read_json
from .mutations import DEEP, HUGE_INT, check_loader, json_text, npy_with_header, zip_bytes


@pytest.mark.parametrize(
    "text",
    [
        json_text(DEEP),  # RecursionError escaped read_versioned_json
        json_text(HUGE_INT),  # ValueError (past Python's 4300 digits) escaped read_versioned_json
        json_text({"schema": "pinn-parity-profile"}).encode("utf-16").decode("latin1"),
    ],
    ids=["deep nesting", "5000-digit integer", "utf-16"],
)
def test_an_unreadable_versioned_document_is_the_readers_error(tmp_path, text):
    path = copy_profile(tmp_path) / "profile.json"
    path.write_bytes(text.encode("latin1"))
    with pytest.raises(ProfileError, match=r"profile\.json: unreadable profile"):
        check_loader(lambda: load_profile_file(path), (), (path,))


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", json_text(DEEP).encode(), json_text(HUGE_INT).encode()])
def test_an_unreadable_config_json_is_a_config_error(tmp_path, raw):
    # UnicodeDecodeError, RecursionError and ValueError escaped config_from_json (it caught JSONDecodeError only).
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=r"config\.json: cannot read config JSON"):
        config_from_json(path)


def test_a_config_json_whose_gridsize_is_no_integer_is_a_config_error(tmp_path):
    # TypeError ('>' between list and int) from PinnConfig resolving object_big before checking gridsize.
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"gridsize": [1]}))
    with pytest.raises(ConfigError, match=r"config field 'gridsize'=\[1\]: must be an integer"):
        config_from_json(path)


def test_a_ledger_number_past_float_range_is_a_ledger_error_naming_the_file(tmp_path):
    # OverflowError (math.isfinite of a 401-digit integer) escaped the ledger; and entry errors named no file.
    document = read_json(LEDGER_FILE)
    key = next(iter(document["entries"]))
    document["entries"][key]["value"] = 10**400
    path = tmp_path / "tolerances.json"
    path.write_text(json.dumps(document))
    with pytest.raises(LedgerError, match=rf"{path}: ledger entry '{key}': value must be a finite number"):
        load_ledger(path)


def _damaged_results(hub, change) -> None:
    results = read_json(hub / "results.json")
    change(results)
    (hub / "results.json").write_text(json.dumps(results))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        # TypeError (unhashable list) in diff's identity of a comparison
        (lambda r: r["comparisons"][0].update(config_id=[r["comparisons"][0]["config_id"]]), r"comparisons\[0\]"),
        # KeyError: 'config_id' in diff
        (lambda r: r["comparisons"][0].pop("config_id"), r"comparisons\[0\]\.config_id' is missing"),
        # ValueError: Check.left must name what was checked, from diff
        (lambda r: r["comparisons"][0]["check_parts"].pop("left"), r"comparisons\[0\]': Check\.left"),
        # TypeError: unhashable list in diff's moved-metric check (tolerance.measure)
        (
            lambda r: r["comparisons"][0]["tolerance"].update(measure=["max_abs"]),
            r"comparisons\[0\]\.tolerance\.measure",
        ),
        # ValueError from int() in merge
        (lambda r: r["env"].update(exitstatus="1"), r"env\.exitstatus"),
        # BaselineError naming the baseline file the run used, not results.json, in merge
        (lambda r: r["baseline"]["entries"][0].update(reason=""), r"baseline\.entries\[0\]'.*'reason'"),
        # IndexError in diff's fixed entries
        (lambda r: r["baseline"].update(fixed=[7]), r"baseline\.fixed"),
        # TypeError (unhashable list) in diff's failure_status
        (lambda r: r["comparisons"][3]["error"].update(origin=[]), r"comparisons\[3\]\.error\.origin"),
        # TypeError: int(None) in merge
        (lambda r: r["env"].update(exitstatus=None), r"env\.exitstatus"),
        # TypeError: 'NoneType' object is not iterable, in merge
        (lambda r: r["env"].update(configs=None), r"env\.configs"),
    ],
    ids=[
        "config_id list",
        "config_id missing",
        "check_parts.left missing",
        "measure list",
        "exitstatus text",
        "entry",
        "fixed",
        "error.origin list",
        "exitstatus null",
        "configs null",
    ],
)
def test_a_damaged_results_json_is_one_results_schema_error(tmp_path, genuine_hubs, change, key):
    first, second = genuine_hubs
    hub = copy_hub(second, tmp_path / "hub")
    _damaged_results(hub, change)
    for read in (lambda: load_results(hub), lambda: diff_hubs(first, hub), lambda: merge_hubs([first, hub], tmp_path)):
        with pytest.raises(ResultsSchemaError, match=rf"{hub}/results\.json: key '{key}"):
            read()


# ---- found in bundle_io.py while its bounded-memory rewrite (issue 20) was in progress: np.load on the probe
# ---- member before its header was checked. The rewrite (read_npy_header, read_array) handles all three.


def _resigned_bundle(genuine, tmp_path, probe: bytes):
    """The genuine bundle with another probe.npy, its sha256 (and size, where recorded) updated to match."""
    with zipfile.ZipFile(genuine) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members[MANIFEST])
    members[PROBE] = probe
    manifest["sha256"][PROBE] = hashlib.sha256(probe).hexdigest()
    if isinstance(manifest.get("sizes"), dict):
        manifest["sizes"][PROBE] = len(probe)
    members[MANIFEST] = json.dumps(manifest).encode()
    path = tmp_path / "bundle.zip"
    path.write_bytes(zip_bytes([(name, members[name]) for name in (MANIFEST, WEIGHTS, PROBE)], compress=True))
    return path


def test_a_probe_declaring_512_mib_is_refused_without_allocating_it(genuine_bundle, tmp_path):
    # bundle_io.py: np.load allocates the 512 MiB the header declares (2**26 complex64), then fails on EOF.
    with zipfile.ZipFile(genuine_bundle) as archive:
        probe = np.load(io.BytesIO(archive.read(PROBE)))
    header = {"descr": "<c8", "fortran_order": False, "shape": (2**26,)}
    path = _resigned_bundle(genuine_bundle, tmp_path, npy_with_header(repr(header), probe.tobytes()))
    assert isinstance(check_loader(lambda: read_bundle(path), BundleError, (path,)), BundleError)


def test_a_probe_that_is_a_zip_is_a_bundle_error(genuine_bundle, tmp_path):
    # bundle_io.py: np.load takes b"PK\x03\x04..." for an NPZ archive; its zipfile.BadZipFile escapes read_bundle.
    with zipfile.ZipFile(genuine_bundle) as archive:
        probe = archive.read(PROBE)
    path = _resigned_bundle(genuine_bundle, tmp_path, b"PK\x03\x04xx" + probe[6:])
    assert isinstance(check_loader(lambda: read_bundle(path), BundleError, (path,)), BundleError)


def test_an_empty_probe_is_a_bundle_error(genuine_bundle, tmp_path):
    # bundle_io.py: np.load of an empty probe.npy raises EOFError, which escapes read_bundle (it catches ValueError).
    path = _resigned_bundle(genuine_bundle, tmp_path, b"")
    assert isinstance(check_loader(lambda: read_bundle(path), BundleError, (path,)), BundleError)
