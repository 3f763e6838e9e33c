"""Builders shared by the engine tests: ledger documents and hand-made comparisons."""

from parity.comparison import Check, Comparison

ENV = {"versions": {"numpy": "2.4.6"}, "platform": "test", "threads": "1"}


def ledger_entry(stage, metric, value, rtol=0.0, bound="upper"):
    return {"stage": stage, "metric": metric, "dtype": "float32", "value": value, "rtol": rtol,
            "bound": bound, "measured_max": value / 10, "seeds": [0, 1, 2], "headroom": 10,
            "environment": ENV, "date": "2026-11-29"}


def ledger_document(entries):
    return {"schema": "pinn-parity-tolerances", "schema_version": 1,
            "entries": {f"{e['stage']}.{e['metric']}.{e['dtype']}": e for e in entries}}


def make_comparison(config_id, stage, passed, *, check=Check("tf", "torch"), metric="max_abs",
                    measured=None, tolerance=None, kind="allclose"):
    """A hand-made Comparison for hub and diff tests."""
    verdict = "within" if passed else "exceeds"
    return Comparison(config_id=config_id, stage=stage, check=check, metric=metric,
                      passed=passed, kind=kind, measured=measured or {"max_abs": 0.0},
                      tolerance=tolerance, worst=None,
                      message=f"[{config_id}] stage {stage} {check} {metric}: {verdict}")
