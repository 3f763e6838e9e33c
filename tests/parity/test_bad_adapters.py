"""The harness under bad adapters: one that raises, returns the wrong shape or
dtype, or returns NaN. Each must give a clear failed comparison for its stage,
never a crash and never a pass. The backends here are the numpy float64
referee and variants of it: real adapters, no framework needed.
"""

import numpy as np
import pytest

from adapters.referee import Float64Referee
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.stage_runner import run_stage

CASE = ParityCase("gs2-k4-poisson-n32-bad", SimulatedData(seed=3, n_positions=20), {"gridsize": 2})


class Float32Referee(Float64Referee):
    """The referee rounded to float32, like a framework backend's outputs."""

    name = "ref32"

    def translate(self, images, shifts_px):
        return super().translate(images, shifts_px).astype(np.complex64)

    def forward(self, object_patches, probe, offsets_px, object_big):
        out = super().forward(object_patches, probe, offsets_px, object_big)
        return {"far_field": out["far_field"].astype(np.complex64), "amplitude": out["amplitude"].astype(np.float32)}


class Raises(Float32Referee):
    name = "raises"

    def translate(self, images, shifts_px):
        raise RuntimeError("backend exploded in translate")


class WrongShape(Float32Referee):
    name = "wrongshape"

    def translate(self, images, shifts_px):
        return super().translate(images, shifts_px)[:, :1]


class WrongDtype(Float32Referee):
    name = "wrongdtype"

    def forward(self, object_patches, probe, offsets_px, object_big):
        out = super().forward(object_patches, probe, offsets_px, object_big)
        return {**out, "amplitude": out["amplitude"].astype(np.float16)}


class ReturnsNaN(Float32Referee):
    name = "nan"

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name):
        return float("nan")


@pytest.fixture
def context(tmp_path):
    def make(bad_backend):
        return make_context(CASE, {"ref32": Float32Referee(), bad_backend.name: bad_backend}, tmp_path)

    return make


def _failed(result):
    return [c for c in result.comparisons if not c.passed]


def test_an_adapter_that_raises_fails_its_stage_with_the_error(context):
    failed = _failed(run_stage(context(Raises()), "translation"))
    assert len(failed) == 1
    assert failed[0].kind == "error" and str(failed[0].check) == "raises"
    assert "could not run: RuntimeError: backend exploded in translate" in failed[0].message


def test_a_wrong_shape_is_named_before_values(context):
    failed = _failed(run_stage(context(WrongShape()), "translation"))
    assert [str(c.check) for c in failed] == ["wrongshape~ref32"]
    assert "shape" in failed[0].headline and "(2, 1, 32, 32)" in failed[0].message


def test_a_wrong_dtype_fails(context):
    failed = _failed(run_stage(context(WrongDtype()), "forward"))
    assert any(c.metric == "amplitude" and "dtype" in c.headline for c in failed)


def test_nan_never_passes(context):
    failed = _failed(run_stage(context(ReturnsNaN()), "loss"))
    assert failed and all(str(c.check) == "nan~ref32" for c in failed)
    assert any("nan" in c.message.lower() for c in failed)


class WrongMAE(Float32Referee):
    """Its MAE squares the differences; its Poisson deviance is right."""

    name = "wrongmae"

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name):
        if loss_name != "mae":
            return super().loss(far_field, observed_amplitude, log_intensity_scale, loss_name)
        predicted = np.exp(log_intensity_scale) * np.abs(far_field)
        return float(np.mean((predicted - observed_amplitude) ** 2))


def test_the_loss_stage_holds_both_losses_whatever_loss_the_case_trains_with(context):
    assert CASE.config.loss == "poisson"
    result = run_stage(context(WrongMAE()), "loss")
    assert [(str(c.check), c.metric) for c in _failed(result)] == [("wrongmae~ref32", "mae")]
    assert [(c.metric, c.passed) for c in result.comparisons] == [("poisson", True), ("mae", False)]
    assert set(result.golden_by_backend["ref32"]) == {"poisson", "mae"}


class Healthy(Float32Referee):
    name = "healthy"


def test_a_healthy_pair_passes(context):
    result = run_stage(context(Healthy()), "translation")
    assert [str(c.check) for c in result.comparisons] == ["healthy~ref32"]
    assert all(c.passed for c in result.comparisons)


def test_a_missing_ledger_entry_fails_the_stage_clearly(tmp_path):
    # Two float64 backends would need float64 tolerances, which the ledger does not have.
    ctx = make_context(CASE, {"a": Float64Referee(), "b": Float64Referee()}, tmp_path)
    failed = _failed(run_stage(ctx, "translation"))
    assert [str(c.check) for c in failed] == ["ledger"]
    assert "no tolerance 'translation.max_abs.float64'" in failed[0].message


def test_a_stage_no_adapter_declares_is_na_not_passed_nor_failed(context):
    # Neither referee variant trains: the stage is n/a (tests/parity/test_unsupported.py has the rest).
    result = run_stage(context(Raises()), "training")
    assert result.comparisons == [] and result.unsupported
    assert "lacking training: ref32, raises" in result.unsupported
