"""SSIM, FRC and alignment on their own; stage order and first divergence."""

import numpy as np
import pytest

from backends.common import imagemetrics
from parity.stages import STAGES, first_divergence, stage_index


def test_ssim_and_frc_of_identical_images_are_one(rng):
    image = rng.random((40, 40))
    assert imagemetrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    frequency, curve = imagemetrics.frc_curve(image, image)
    assert np.allclose(curve, 1.0)
    assert frequency[0] > 0 and frequency[-1] < 0.5
    assert imagemetrics.frc_mean(frequency, curve) == pytest.approx(1.0)


def test_ssim_and_frc_drop_for_unrelated_images(rng):
    a, b = rng.random((40, 40)), rng.random((40, 40))
    assert imagemetrics.ssim(a, b) < 0.2
    frequency, curve = imagemetrics.frc_curve(a, b)
    assert imagemetrics.frc_mean(frequency, curve) < 0.5


def test_ssim_of_constant_images():
    flat = np.full((20, 20), 3.0)
    assert imagemetrics.ssim(flat, flat) == pytest.approx(1.0)


def test_alignment_recovers_the_complex_factor(rng):
    a = rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16))
    aligned, scale = imagemetrics.align_global_phase_scale(a, a * (0.3 - 0.4j))
    assert np.allclose(aligned, a)
    assert scale == pytest.approx(1 / (0.3 - 0.4j))
    with pytest.raises(ValueError, match="second object is zero"):
        imagemetrics.align_global_phase_scale(a, np.zeros_like(a))


def test_stages_in_pipeline_order():
    assert STAGES == (
        "config",
        "data",
        "grouping",
        "shapes",
        "translation",
        "forward",
        "loss",
        "model",
        "gradients",
        "optimizer",
        "hyperparameters",
        "training",
        "reconstruction",
        "bundle",
        "cli",
    )
    assert first_divergence(["bundle", "forward", "training"]) == "forward"
    assert first_divergence([]) is None
    assert stage_index("cli") == len(STAGES) - 1
    with pytest.raises(ValueError, match="unknown stage 'forwad'"):
        first_divergence(["forwad"])
