"""The tolerance ledger: the shipped file, validation errors, lookups."""

import json

import numpy as np
import pytest

from parity.tolerances import REQUIRED_FIELDS, LedgerError, load_ledger, save_ledger_document, tolerance

from .factories import ledger_document, ledger_entry


def test_shipped_ledger_loads_and_covers_the_tolerance_stages():
    ledger = load_ledger()
    stages = {entry.stage for entry in ledger.entries.values()}
    assert {"translation", "forward", "loss", "model", "gradients", "training", "reconstruction", "bundle"} <= stages
    for metric in ("rel_error", "ssim", "frc"):
        assert tolerance("reconstruction", metric, "float32").key == f"reconstruction.{metric}.float32"
    assert tolerance("reconstruction", "ssim", "float32").bound == "lower"
    # Until measured, every entry says so, and the summary shows it.
    for entry in ledger.entries.values():
        assert entry.provisional or entry.measured_max is not None
        if entry.measured_max is None:
            assert entry.summary().startswith("PROVISIONAL")


def test_complex_dtypes_use_the_real_precision():
    assert tolerance("forward", "max_abs", "complex64").key == "forward.max_abs.float32"


def _write(tmp_path, document):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("missing", REQUIRED_FIELDS)
def test_an_entry_without_a_provenance_field_is_an_error_naming_the_key(tmp_path, missing):
    document = ledger_document([ledger_entry("forward", "max_abs", 1e-5, 1e-5)])
    del document["entries"]["forward.max_abs.float32"][missing]
    with pytest.raises(LedgerError, match=rf"'forward\.max_abs\.float32' lacks provenance field\(s\): {missing}"):
        load_ledger(_write(tmp_path, document))


def test_an_unmeasured_entry_must_be_marked_provisional(tmp_path):
    entry = dict(ledger_entry("loss", "max_abs", 1e-6), measured_max=None)
    with pytest.raises(LedgerError, match="'loss.max_abs.float32': measured_max and seeds are required"):
        load_ledger(_write(tmp_path, ledger_document([entry])))
    load_ledger(_write(tmp_path, ledger_document([dict(entry, provisional=True)])))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stage": "forwrd"}, "unknown stage 'forwrd'"),
        ({"value": -1.0}, "value and rtol must be >= 0"),
        ({"value": "1e-6"}, "value must be a finite number"),
        ({"bound": "sideways"}, "bound must be one of"),
        ({"environment": {"platform": "x"}}, "environment must hold versions, platform, threads"),
    ],
)
def test_invalid_entries_are_rejected(tmp_path, change, message):
    entry = dict(ledger_entry("forward", "max_abs", 1e-5), **change)
    document = ledger_document([ledger_entry("forward", "max_abs", 1e-5)])
    document["entries"]["forward.max_abs.float32"] = entry
    with pytest.raises(LedgerError, match=message):
        load_ledger(_write(tmp_path, document))


def test_a_key_that_does_not_match_its_entry_is_rejected(tmp_path):
    document = {
        "schema": "pinn-parity-tolerances",
        "schema_version": 1,
        "entries": {"forward.max_rel.float32": ledger_entry("forward", "max_abs", 1e-5)},
    }
    with pytest.raises(LedgerError, match="key must be 'forward.max_abs.float32'"):
        load_ledger(_write(tmp_path, document))


def test_unknown_key_and_wrong_schema(tmp_path, test_ledger):
    with pytest.raises(
        LedgerError,
        match=r"no tolerance 'forward\.max_abs\.float64' .*"
        r"entries for stage 'forward': forward\.max_abs\.float32",
    ):
        tolerance("forward", "max_abs", "float64", ledger=test_ledger)
    with pytest.raises(
        LedgerError, match="expected schema 'pinn-parity-tolerances' schema_version 1, found 'other' None"
    ):
        load_ledger(_write(tmp_path, {"schema": "other", "entries": {}}))
    with pytest.raises(LedgerError, match="no tolerance ledger at"):
        load_ledger(tmp_path / "absent.json")


def test_save_validates_before_writing(tmp_path):
    path = _write(tmp_path, ledger_document([ledger_entry("loss", "max_abs", 1e-6)]))
    before = path.read_text()
    bad = ledger_document([dict(ledger_entry("loss", "max_abs", 1e-6), date="")])
    with pytest.raises(LedgerError, match="date must be"):
        save_ledger_document(bad, path)
    assert path.read_text() == before
    good = ledger_document([ledger_entry("loss", "max_abs", 2e-6)])
    save_ledger_document(good, path)
    assert tolerance("loss", "max_abs", "float32", ledger=load_ledger(path)).value == 2e-6


def test_each_measurement_seed_gets_its_own_scan(tmp_path):
    # Seed-shifted cases keep their id and share a work folder; each must still be simulated from its own seed.
    from parity.case_context import CanonicalInputs
    from parity.matrix import MATRIX
    from parity.tolerance_measure import shifted_cases

    shifted = [case for _, case in shifted_cases([0, 1], MATRIX[:1])]
    first, second = (CanonicalInputs(case=case, workdir=tmp_path) for case in shifted)
    assert first.data_path != second.data_path
    assert not np.array_equal(first.dataset.diffraction, second.dataset.diffraction)
