"""bench.kernels: the environment of a variant, and the tables built from the hubs' golden comparisons."""

from bench import kernels
from parity.envinfo import KERNEL_VARIABLES


def _comparison(config, stage, side, metric, value, limit=None, kind="allclose", passed=True):
    measured = {"max_abs": value} if kind == "allclose" else {"n_bad": value}
    return {
        "config_id": config,
        "stage": stage,
        "check": f"{side}~golden",
        "check_parts": {"left": side, "right": "golden", "variant": "", "via": ""},
        "metric": metric,
        "kind": kind,
        "passed": passed,
        "measured": measured,
        "tolerance": {"limit": limit, "class": "cpu"} if limit else None,
    }


def _run(name, comparisons):
    results = {"comparisons": comparisons, "totals": {"comparisons": len(comparisons), "failed": 0}}
    return {"variant": name, "env": kernels.BY_NAME[name].env, "rc": 0, "wall_s": 1.0, "totals": results["totals"]} | {
        "golden": kernels.golden_records(results)
    }


def test_a_variant_runs_in_ci_environment_plus_its_own_variables(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")  # the caller's kernel choice must not leak in
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    env = kernels.variant_env(kernels.BY_NAME["onednn-on"])
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert "ONEDNN_MAX_CPU_ISA" not in env
    for variant in kernels.VARIANTS:
        assert set(variant.env) <= set(KERNEL_VARIABLES), variant.name  # each knob is fingerprinted


def test_tables_list_what_moved_against_the_baseline_and_what_stayed_exact():
    base = [
        _comparison("a", "forward", "tf_pinn", "max_abs[amplitude]", 0.0, 1e-5),
        _comparison("a", "forward", "torch_pinn", "max_abs[amplitude]", 2e-7, 1e-5),
        _comparison("a", "training", "tf_pinn", "loss_band[log_step_loss]", 0.0, 0.04),
        _comparison("a", "grouping", "tf_pinn", "exact[nn_indices]", 0, kind="exact"),
    ]
    moved = [
        base[0],
        base[1],
        _comparison("a", "training", "tf_pinn", "loss_band[log_step_loss]", 0.08, 0.04, passed=False),
        base[3],
    ]
    runs = [_run("baseline", base), _run("onednn-on", moved)]
    assert kernels.moved_keys(runs) == {("a", "training", "tf_pinn", "loss_band[log_step_loss]")}
    text = kernels.tables(runs)
    assert "| training | loss_band[log_step_loss] | tf_pinn | 0 / 0 | 0.08 / 2 **FAIL 1** |" in text
    exact_line = text.split("every config): ")[1].splitlines()[1]
    assert "forward max_abs[amplitude] (tf_pinn)" in exact_line and "grouping exact[nn_indices] (tf_pinn)" in exact_line
    assert "training" not in exact_line
    assert "forward max_abs[amplitude] (torch_pinn)" in text.split("unmoved by every variant")[1]
    assert "| onednn-on | `TF_ENABLE_ONEDNN_OPTS=1` | 0 | 1 | 4 | 2 | 1 | 1 | 2 | 0 |" in text
