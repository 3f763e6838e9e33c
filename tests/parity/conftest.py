"""Fixtures of the engine tests: a small ledger of their own.

The engine tests pin message texts, so they use this fixed ledger rather than
parity/tolerances.json, whose numbers change whenever the lead re-measures.
"""

import json

import pytest

from parity.tolerances import load_ledger, tolerance

from .factories import ledger_document, ledger_entry


@pytest.fixture
def test_ledger(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(
        json.dumps(
            ledger_document(
                [
                    ledger_entry("translation", "max_abs", 1e-6, 1e-5),
                    ledger_entry("forward", "max_abs", 1e-5, 1e-5),
                    ledger_entry("training", "loss_band", 0.01),
                    ledger_entry("reconstruction", "rel_error", 0.05),
                    ledger_entry("reconstruction", "ssim", 0.95, bound="lower"),
                    ledger_entry("reconstruction", "frc", 0.95, bound="lower"),
                ]
            )
        )
    )
    return load_ledger(path)


@pytest.fixture
def tol(test_ledger):
    """tol(stage, metric, dtype="float32") from the engine tests' ledger."""

    def lookup(stage, metric, dtype="float32"):
        return tolerance(stage, metric, dtype, ledger=test_ledger)

    return lookup
