"""Comparators on synthetic arrays: verdicts, pinned message texts, NaN handling."""

import json
import math

import numpy as np
import pytest

from parity.comparators import (
    RECONSTRUCTION_METRICS,
    check_invariants,
    compare_allclose,
    compare_band,
    compare_exact,
    compare_reconstruction,
    error_comparison,
)
from parity.verdict import Check, Comparison, assert_passed

CID = "gs1-k4-poisson-n32"


@pytest.fixture
def pair():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    b = a.copy()
    b[1, 0] = 3.0 + 2**-10  # exactly representable: the pinned numbers do not depend on rounding
    return a, b


def test_allclose_failure_message_is_pinned(pair, tol):
    result = compare_allclose(*pair, tol("translation", "max_abs"), config_id=CID)
    assert not result.passed and result.kind == "allclose"
    assert result.message == "\n".join(
        [
            "[gs1-k4-poisson-n32] stage translation tf_pinn~torch_pinn max_abs: 9.766e-04 exceeds tolerance "
            "atol=1e-06, rtol=1e-05 (translation.max_abs.float32)",
            "  1 / 4 elements (25.00%) differ beyond atol + rtol*|torch_pinn|",
            "  abs error: max 9.766e-04, mean 2.441e-04, median 0.000e+00",
            "  rel error: max 3.254e-04",
            "  worst at (1, 0): tf_pinn=3 torch_pinn=3.000977",
            "  1 worst (by error / allowed error):",
            "    index   tf_pinn  torch_pinn  abs err    rel err",
            "    (1, 0)  3        3.000977    9.766e-04  3.254e-04",
            "  tolerance provenance: measured_max 1e-07 over seeds [0,1,2] x headroom 10 "
            "(numpy 2.4.6; test; threads 1; 2026-11-29)",
            "  explain: see docs/tolerances.md (ledger key translation.max_abs.float32)",
        ]
    )
    assert result.measured["n_bad"] == 1 and result.measured["n_total"] == 4
    assert result.worst["index"] == [1, 0]
    assert result.tolerance["key"] == "translation.max_abs.float32"
    assert result.tolerance["atol"] == 1e-6 and result.tolerance["rtol"] == 1e-5


def test_allclose_against_golden_ends_with_the_regen_command(pair, tol):
    result = compare_allclose(*pair, tol("translation", "max_abs"), config_id=CID, check=Check("tf_pinn", "golden"))
    assert "rtol*|golden|" in result.message
    assert result.message.splitlines()[-1] == (
        "  regenerate: python -m parity regen --parity-config gs1-k4-poisson-n32"
        "  (only once the backends agree; see docs/tolerances.md)"
    )


def test_allclose_passes_within_tolerance_and_reports_the_metrics(pair, tol):
    a, _ = pair
    b = a * (1 + 1e-6)  # relative error far below rtol = 1e-5
    result = compare_allclose(a, b.astype(np.float32), tol("translation", "max_abs"), config_id=CID)
    assert result.passed
    assert result.message.startswith("[gs1-k4-poisson-n32] stage translation tf_pinn~torch_pinn max_abs: ")
    assert "within tolerance" in result.message
    assert 0 < result.measured["max_abs"] < 1e-5


@pytest.mark.parametrize(
    "b, first_line_end",
    [
        (np.zeros((2, 2), np.float64), "dtype differs: tf_pinn float32, torch_pinn float64"),
        (np.zeros((4,), np.float32), "shape differs: tf_pinn (2, 2), torch_pinn (4,)"),
    ],
)
def test_allclose_checks_dtype_before_shape_before_values(pair, tol, b, first_line_end):
    result = compare_allclose(pair[0], b, tol("translation", "max_abs"), config_id=CID)
    assert not result.passed
    assert result.headline == f"[{CID}] stage translation tf_pinn~torch_pinn max_abs: {first_line_end}"


def test_allclose_mapping_keys_are_checked_first(pair, tol):
    a, b = pair
    result = compare_allclose(
        {"w": a, "x": a}, {"w": b.astype(np.float64), "y": b}, tol("translation", "max_abs"), config_id=CID
    )
    assert result.headline.endswith("max_abs: keys differ")
    assert "  only in tf_pinn: ['x']" in result.message and "  only in torch_pinn: ['y']" in result.message


def test_allclose_mapping_names_the_failing_tensor(pair, tol):
    a, b = pair
    result = compare_allclose(
        {"encoder.0.kernel": a, "bias": a},
        {"encoder.0.kernel": b, "bias": a},
        tol("translation", "max_abs"),
        config_id=CID,
        stage="gradients",
    )
    assert not result.passed
    assert "    encoder.0.kernel: 1 / 4 (25.00%), max abs 9.766e-04" in result.message
    assert result.worst["key"] == "encoder.0.kernel"
    assert "worst at encoder.0.kernel (1, 0)" in result.message


@pytest.mark.parametrize("where", ["a", "b", "both"])
def test_nan_anywhere_fails_even_where_both_agree(tol, where):
    a = np.ones((3, 3), np.float32)
    b = a.copy()
    if where in ("a", "both"):
        a[2, 1] = np.nan
    if where in ("b", "both"):
        b[2, 1] = np.nan
    result = compare_allclose(a, b, tol("translation", "max_abs"), config_id=CID)
    assert not result.passed
    assert "non-finite value(s) (NaN/inf never pass)" in result.headline
    assert "has 1 NaN and 0 inf of 9 (first at (2, 1))" in result.message
    json.dumps(result.to_dict(), allow_nan=False)  # the record stays strict JSON


def test_inf_fails_too(tol):
    a = np.array([1.0, np.inf], np.float32)
    result = compare_allclose(a, a.copy(), tol("translation", "max_abs"), config_id=CID)
    assert not result.passed and "torch_pinn has 0 NaN and 1 inf" in result.message


def test_allclose_complex_uses_the_modulus_of_the_difference(tol):
    a = np.array([1 + 1j, 2 - 1j], np.complex64)
    b = a + np.array([0, 3e-3j], np.complex64)
    result = compare_allclose(a, b, tol("translation", "max_abs", "complex64"), config_id=CID)
    assert not result.passed
    assert result.worst["index"] == [1]
    assert math.isclose(result.measured["max_abs"], 3e-3, rel_tol=1e-3)
    assert "tf_pinn=2-1j torch_pinn=2-0.997j" in result.message
    assert result.to_dict()["worst"]["value_b"] == pytest.approx([2.0, -0.997])


def test_empty_arrays_never_pass(tol):
    empty = np.zeros((0, 4), np.float32)
    result = compare_allclose(empty, empty, tol("translation", "max_abs"), config_id=CID)
    assert not result.passed and result.headline.endswith("nothing to compare: the arrays are empty")
    assert not compare_exact(empty, empty, config_id=CID, stage="grouping").passed


def test_allclose_scalars(tol):
    assert compare_allclose(0.5, 0.5, tol("translation", "max_abs"), config_id=CID).passed
    result = compare_allclose(0.5, 0.6, tol("translation", "max_abs"), config_id=CID)
    assert not result.passed and "1 / 1 elements (100.00%)" in result.message


def test_exact_config_fields_report_every_differing_key():
    tf_cfg = {"gridsize": 2, "loss": "poisson", "n_groups": None, "object_big": True, "lr": 1e-3}
    torch_cfg = {"gridsize": 2, "loss": "mae", "n_groups": 150, "object_big": 1, "lr": 0.001, "extra": 0}
    result = compare_exact(tf_cfg, torch_cfg, config_id=CID, stage="config", metric="fields")
    assert result.message == "\n".join(
        [
            "[gs1-k4-poisson-n32] stage config tf_pinn~torch_pinn fields: 4 of 6 fields differ",
            "  extra: only in torch_pinn (torch_pinn=0)",
            "  loss: tf_pinn='poisson', torch_pinn='mae'",
            "  n_groups: tf_pinn=None, torch_pinn=150",
            "  object_big: tf_pinn=True, torch_pinn=1",
            "  explain: this check requires an exact match; see docs/tolerances.md",
        ]
    )
    assert compare_exact(tf_cfg, dict(tf_cfg), config_id=CID, stage="config").passed


def test_exact_config_with_nan_fails():
    result = compare_exact({"lr": float("nan")}, {"lr": float("nan")}, config_id=CID, stage="config")
    assert not result.passed and "lr: tf_pinn=nan, torch_pinn=nan" in result.message


def test_exact_arrays_pin_the_differing_elements():
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    b = a.copy()
    b[1, 2] = 99
    result = compare_exact(a, b, config_id=CID, stage="grouping", metric="nn_indices")
    assert result.message == "\n".join(
        [
            "[gs1-k4-poisson-n32] stage grouping tf_pinn~torch_pinn nn_indices: 1 / 12 elements (8.33%) "
            "differ, exact match required",
            "  worst at (1, 2): tf_pinn=6 torch_pinn=99",
            "  up to 5 differing elements:",
            "    index   tf_pinn  torch_pinn  abs err",
            "    (1, 2)  6        99          9.300e+01",
            "  explain: this check requires an exact match; see docs/tolerances.md",
        ]
    )
    assert compare_exact(a, a.copy(), config_id=CID, stage="grouping").passed
    dtype = compare_exact(a, a.astype(np.int32), config_id=CID, stage="grouping")
    assert dtype.headline.endswith("dtype differs: tf_pinn int64, torch_pinn int32")


def test_band_failure_message_is_pinned(tol):
    result = compare_band([1.0, 0.5, 0.25], [1.0, 0.5, 0.3], tol("training", "loss_band"), config_id=CID)
    assert result.message.splitlines()[:7] == [
        "[gs1-k4-poisson-n32] stage training tf_pinn~torch_pinn loss_band: 1.667e-01 exceeds tolerance "
        "0.01 (training.loss_band.float32)",
        "  1 / 3 steps (33.33%) leave the band |tf_pinn - torch_pinn| / max(|tf_pinn|, |torch_pinn|) <= 0.01",
        "  first at step 2: tf_pinn=0.25 torch_pinn=0.3",
        "  worst at step 2: tf_pinn=0.25 torch_pinn=0.3",
        "  final step gap 1.667e-01, mean gap 5.556e-02",
        "  1 worst steps:",
        "    index   tf_pinn  torch_pinn  abs err    rel err",
    ]
    assert result.measured["worst_step"] == 2
    assert list(result.extra["trajectory_b"]) == [1.0, 0.5, 0.3]


def test_band_passes_inside_and_fails_on_length_or_nan(tol):
    band = tol("training", "loss_band")
    assert compare_band([1.0, 0.5], [1.001, 0.5], band, config_id=CID).passed
    short = compare_band([1.0, 0.5], [1.0], band, config_id=CID)
    assert not short.passed and "shape differs: tf_pinn (2,), torch_pinn (1,)" in short.headline
    nan = compare_band([1.0, float("nan")], [1.0, 0.5], band, config_id=CID)
    assert not nan.passed and "tf_pinn has 1 NaN" in nan.message


def _object(rng, shape=(48, 56)):
    amplitude = 0.5 + 0.5 * rng.random(shape)
    return amplitude * np.exp(1j * rng.uniform(-1.5, 1.5, shape))


def test_reconstruction_ignores_global_phase_and_scale(tol, rng):
    a = _object(rng)
    tols = {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}
    results = compare_reconstruction(a, 2.5 * np.exp(0.7j) * a, tols, config_id=CID)
    assert [r.metric for r in results] == ["rel_error", "ssim", "frc"]
    assert all(r.passed for r in results), [r.message for r in results]
    rel, ssim, frc = results
    assert rel.measured["rel_error"] < 1e-12
    assert ssim.measured["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert frc.measured["frc_mean"] == pytest.approx(1.0, abs=1e-12)
    assert rel.measured["scale_abs"] == pytest.approx(1 / 2.5)
    assert rel.measured["phase_offset_rad"] == pytest.approx(-0.7)
    assert len(frc.extra["frc"]) == len(frc.extra["frc_frequency"]) == 24


def test_reconstruction_fails_on_a_real_difference(tol, rng):
    a = _object(rng)
    b = a + 0.4 * rng.standard_normal(a.shape)
    tols = {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}
    rel, ssim, _ = compare_reconstruction(a, b, tols, config_id=CID)
    assert not rel.passed and "exceeds tolerance 0.05 (reconstruction.rel_error.float32)" in rel.headline
    assert not ssim.passed and "falls below tolerance 0.95 (reconstruction.ssim.float32)" in ssim.headline


def test_reconstruction_shape_and_nan_fail_every_metric(tol, rng):
    a = _object(rng)
    tols = {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}
    for b, expected in ((a[:-1], "shape differs"), (np.where(a.real > 0.9, np.nan, a), "NaN")):
        results = compare_reconstruction(a, b, tols, config_id=CID)
        assert len(results) == 3 and not any(r.passed for r in results)
        assert all(expected in r.message for r in results)


def test_invariants_and_errors(tol):
    ok = check_invariants(
        [("unique members", True, "")], config_id=CID, stage="grouping", check=Check("torch_pinn", "spec")
    )
    assert ok.passed and ok.kind == "invariant"
    bad = check_invariants(
        [("unique members", True, ""), ("within K", False, "group 3: 9 > 4")],
        config_id=CID,
        stage="grouping",
        check=Check("torch_pinn", "spec"),
    )
    assert bad.headline == f"[{CID}] stage grouping torch_pinn~spec invariants: 1 of 2 invariants violated"
    assert "  within K: group 3: 9 > 4" in bad.message
    assert not check_invariants([], config_id=CID, stage="grouping", check=Check("tf_pinn", "spec")).passed
    crashed = error_comparison(
        config_id=CID,
        stage="forward",
        check=Check("tf_pinn", "torch_pinn"),
        metric="max_abs",
        error=RuntimeError("shape mismatch"),
    )
    assert not crashed.passed and crashed.kind == "error"
    assert crashed.headline.endswith("could not run: RuntimeError: shape mismatch")


def test_to_dict_round_trip_and_validation(pair, tol):
    result = compare_allclose(*pair, tol("translation", "max_abs"), config_id=CID)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    again = Comparison.from_dict(data)
    assert (again.config_id, again.stage, again.check, again.metric) == (
        result.config_id,
        result.stage,
        result.check,
        result.metric,
    )
    assert again.message == result.message
    assert again.measured == result.measured
    with pytest.raises(ValueError, match="stage 'forwrd' is not one of"):
        Comparison.from_dict(dict(data, stage="forwrd"))


def test_assert_passed_raises_one_error_with_every_failure(pair, tol):
    failing = compare_allclose(*pair, tol("translation", "max_abs"), config_id=CID)
    passing = compare_allclose(pair[0], pair[0], tol("translation", "max_abs"), config_id=CID)
    assert_passed([passing])
    with pytest.raises(AssertionError) as info:
        assert_passed([passing, failing, failing])
    assert str(info.value).count("exceeds tolerance") == 2
    with pytest.raises(AssertionError, match="no comparison was made"):
        assert_passed([])
