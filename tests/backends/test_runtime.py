"""Runtime settings (backends/<b>/runtime.py): backend name, versions, determinism."""

from __future__ import annotations

import pytest


def test_backend_name_and_versions(backend):
    assert backend.runtime.BACKEND_NAME == backend.name
    versions = backend.runtime.framework_versions()
    assert versions and all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items())


def test_configure_determinism_is_repeatable_and_reports_its_settings(backend, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    first = backend.runtime.configure_determinism(5)
    second = backend.runtime.configure_determinism(5)
    assert first == second
    assert first["backend"] == backend.name and first["seed"] == 5 and first["op_determinism"] is True
    assert first["intra_op_threads"].startswith("1") and "inter_op_threads" in first
    assert backend.runtime.framework_versions().items() <= first.items()


@pytest.mark.parametrize("value, why", [("two", "must be an integer thread count"), ("0", "must be >= 1")])
def test_bad_thread_variable_is_named(backend, monkeypatch, value, why):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"OMP_NUM_THREADS='{value}' {why}"):
        backend.runtime.configure_determinism(0)
