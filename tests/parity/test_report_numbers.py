"""The numbers a hub shows: ratios per kind of bound, stage margins, the failures table."""

import json
import math

import pytest

from parity.report.numbers import failure_rows, fix_first, ratio, stage_margins
from parity.verdict import Check

from .factories import make_comparison, red_hub


def record(metric, measured, limit, bound="upper", kind="allclose", **kwargs):
    tolerance = {"measure": metric, "limit": limit, "bound": bound}
    return make_comparison(
        "gs1", "forward", True, metric=metric, measured={metric: measured}, tolerance=tolerance, kind=kind, **kwargs
    ).to_dict()


def test_ratio_per_kind_of_bound():
    assert ratio(record("max_abs", 5e-6, 1e-5)) == pytest.approx(0.5)
    # Lower bounds: shortfall from perfect (1) over the shortfall allowed.
    assert ratio(record("ssim", 0.99, 0.95, bound="lower", kind="reconstruction")) == pytest.approx(0.2)
    assert ratio(record("frc_mean", 0.5, 0.95, bound="lower", kind="reconstruction")) == pytest.approx(10.0)
    assert ratio(record("max_abs", "nan", 1e-5)) == math.inf
    assert ratio(record("max_abs", 1e-9, 0.0)) == math.inf and ratio(record("max_abs", 0.0, 0.0)) == 0.0
    assert ratio(make_comparison("gs1", "config", False, kind="exact").to_dict()) is None


def test_stage_margin_is_the_largest_ratio_of_the_stage():
    items = [
        record("max_abs", 2e-6, 1e-5),
        record("max_rel", 7e-6, 1e-5, check=Check("tf_pinn", "golden")),
        record("ssim", 0.97, 0.95, bound="lower", kind="reconstruction"),
    ]
    [(key, margin)] = stage_margins(items).items()
    assert key == ("gs1", "forward") and margin.value == pytest.approx(0.7)
    assert margin.source == "tf_pinn~golden max_rel"


@pytest.fixture
def hub(tmp_path, tol):
    return red_hub(tmp_path / "reports", tol)


def test_failures_table_order_and_cells(hub):
    results = json.loads((hub / "results.json").read_text())
    rows = failure_rows(results)
    # Per (config, stage) in pipeline order: backend~backend, then ~referee, ~spec, ~golden.
    assert [(r.stage, str(r.check), r.fix) for r in rows] == [
        ("config", "torch_pinn~spec", "torch_pinn"),
        ("forward", "torch_pinn~tf_pinn", "torch_pinn"),
        ("forward", "torch_pinn~referee", "torch_pinn"),
        ("forward", "tf_pinn~golden", "-"),
        ("bundle", "torch_pinn", "-"),
    ]
    assert (rows[-1].measured, rows[-1].tolerance, rows[-1].ratio) == ("could not run", "-", "-")
    cross = rows[1]
    assert (cross.measured, cross.tolerance, cross.ratio) == ("max_abs 3.000e-04", "<= 3.52e-05", "8.5")
    assert cross.worst == "(2, 5): torch_pinn=-0.234791 tf_pinn=-0.235091"
    summary = (hub / "summary.md").read_text()
    assert (
        "| gs1 | [**FAIL**](#fail-gs1-config) | - | - | - | - | [**FAIL**](#fail-gs1-forward) 8.5 | - | - | - "
        "| - | - | - | pass 0.9 | [**FAIL**](#fail-gs1-bundle) | - |"
    ) in summary
    assert (
        '| <a id="fail-gs1-forward"></a>gs1 | forward | torch_pinn~tf_pinn | max_abs | max_abs 3.000e-04 | <= 3.52e-05 '
        "| 8.5 | (2, 5): torch_pinn=-0.234791 tf_pinn=-0.235091 | torch_pinn |"
    ) in summary
    # The failures table comes right under the stage table, before the first divergences.
    assert summary.index("## Stages") < summary.index("## Failures\n") < summary.index("## First divergence")


def test_stage_margin_in_the_table_is_the_computed_value(hub):
    results = json.loads((hub / "results.json").read_text())
    margin = stage_margins(results["comparisons"])[("gs2", "reconstruction")]
    expected = max(ratio(c) for c in results["comparisons"] if c["config_id"] == "gs2")
    assert margin.value == expected
    html = (hub / "index.html").read_text()
    assert (
        f'<td class="pass" title="margin from {margin.source}">pass<span class="margin">{margin.value:.2g}</span>'
        in html
    )


def test_fix_first_needs_both_referee_records():
    cross = make_comparison("gs1", "forward", False, check=Check("torch_pinn", "tf_pinn")).to_dict()
    referee = {
        name: make_comparison(
            "gs1", "forward", True, check=Check(name, "referee"), measured={"max_abs": 1e-6}
        ).to_dict()
        for name in ("tf_pinn", "torch_pinn")
    }

    def index(*items):
        return {(c["config_id"], c["stage"], Check.from_dict(c["check_parts"]), c["metric"]): c for c in items}

    assert fix_first(cross, index(referee["tf_pinn"])) == "-"
    assert fix_first(cross, index(*referee.values())) == "both"
    farther = dict(referee["tf_pinn"], measured={"max_abs": 1e-3})
    assert fix_first(cross, index(farther, referee["torch_pinn"])) == "tf_pinn"
    golden = make_comparison("gs1", "forward", False, check=Check("tf_pinn", "golden")).to_dict()
    assert fix_first(golden, index(*referee.values())) == "-"
