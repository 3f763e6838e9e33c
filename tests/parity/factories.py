"""Builders shared by the engine tests: ledger documents, hand-made comparisons, golden info, sessions."""

from parity.session import ParitySession
from parity.verdict import Check, Comparison

ENV = {"versions": {"numpy": "2.4.6"}, "platform": "test", "threads": "1"}
HUB_ENV = {
    "frameworks": {"tensorflow": "2.21.0", "torch": "2.13.0"},
    "commit": "0123abc",
    "platform": "test",
    "threads": {"OMP_NUM_THREADS": "1"},
}
"""What the controller records of a run (collect_environment's shape), for hubs."""


def ledger_entry(stage, metric, value, rtol=0.0, bound="upper"):
    return {
        "stage": stage,
        "metric": metric,
        "dtype": "float32",
        "value": value,
        "rtol": rtol,
        "bound": bound,
        "measured_max": value / 10,
        "seeds": [0, 1, 2],
        "headroom": 10,
        "environment": ENV,
        "date": "2026-11-29",
    }


def ledger_document(entries):
    return {
        "schema": "pinn-parity-tolerances",
        "schema_version": 1,
        "entries": {f"{e['stage']}.{e['metric']}.{e['dtype']}": e for e in entries},
    }


TF_TORCH = Check("tf_pinn", "torch_pinn")


def make_comparison(
    config_id,
    stage,
    passed,
    *,
    check=TF_TORCH,
    metric="max_abs",
    measured=None,
    tolerance=None,
    kind="allclose",
):
    """A hand-made Comparison for hub and diff tests."""
    verdict = "within" if passed else "exceeds"
    return Comparison(
        config_id=config_id,
        stage=stage,
        check=check,
        metric=metric,
        passed=passed,
        kind=kind,
        measured=measured or {"max_abs": 0.0},
        tolerance=tolerance,
        worst=None,
        message=f"[{config_id}] stage {stage} {check} {metric}: {verdict}",
    )


def red_hub(root, tol, env=None):
    """A finalized hub with the engine's own comparators: gs1 fails forward (torch_pinn~tf_pinn, farther
    from the referee than tf_pinn), its golden, the spec, and its bundle stage raised; gs2 passes;
    both have reconstructions."""
    import numpy as np

    from parity.comparators import (
        RECONSTRUCTION_METRICS,
        compare_allclose,
        compare_exact,
        compare_reconstruction,
        error_comparison,
    )
    from parity.report import hub as hubs
    from parity.verdict import GOLDEN, REFEREE, SPEC

    rng = np.random.default_rng(7)
    truth = rng.standard_normal((4, 8)).astype(np.float64)
    tf_out = (truth + 1e-7).astype(np.float32)
    torch_out = tf_out.copy()
    torch_out[2, 5] += 3e-4
    forward = tol("forward", "max_abs")
    records = [
        compare_allclose(torch_out, tf_out, forward, config_id="gs1", check=Check("torch_pinn", "tf_pinn")),
        compare_allclose(tf_out.astype(np.float64), truth, forward, config_id="gs1", check=Check("tf_pinn", REFEREE)),
        compare_allclose(
            torch_out.astype(np.float64), truth, forward, config_id="gs1", check=Check("torch_pinn", REFEREE)
        ),
        compare_allclose(tf_out + 1e-4, tf_out, forward, config_id="gs1", check=Check("tf_pinn", GOLDEN)),
        compare_exact(
            {"n_filters": 32},
            {"n_filters": 16},
            config_id="gs1",
            stage="config",
            check=Check("torch_pinn", SPEC),
            metric="fields",
        ),
        # A long unbroken line, as real provenance and paths are: the page must wrap it.
        error_comparison(
            config_id="gs1",
            stage="bundle",
            check=Check("torch_pinn"),
            metric="load",
            error=OSError("cannot read " + "/very/long/path" * 30 + "/bundle.zip"),
        ),
    ]
    obj = (0.5 + rng.random((24, 28))) * np.exp(1j * rng.random((24, 28)))
    noisy = obj * 1.1 + 0.05 * rng.standard_normal(obj.shape)
    tols = {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}
    artifacts = []
    for config_id, other in (("gs1", noisy), ("gs2", obj * 1.1)):
        records += compare_reconstruction(obj, other, tols, config_id=config_id, check=Check("torch_pinn", "tf_pinn"))
        artifacts.append(hubs.Artifact(config_id, "reconstruction", {"tf_pinn": obj, "torch_pinn": other}))
    hub = hubs.new_hub(root)
    hubs.write_part(hub, "gw0", records, artifacts)
    hubs.finalize(hub, env or HUB_ENV, "", complete=True)
    return hub


GOLDEN_INFO = {  # what a golden writer records beside the arrays (GoldenStore.write's info)
    "config": {"gridsize": 1, "loss": "poisson"},
    "framework_versions": {"tensorflow": "2.21.0", "torch": "2.13.0"},
    "platform": "test-platform",
    "commit": "0123abc",
}


def session_with(tmp_path, hub, adapters: dict, worker="main"):
    """A ParitySession writing to `hub` whose backends are `adapters` (name -> adapter, each renamed so)."""
    session = ParitySession(
        backends=["tf_pinn", "torch_pinn"],
        workdir=tmp_path,
        golden_root=tmp_path / "golden",
        regen=False,
        hub=hub,
        worker=worker,
    )
    for name, adapter in adapters.items():
        adapter.name = name
    session.adapters = dict(adapters)
    return session
