"""Canonical weights (docs/spec.md §7), the weights a model starts from, and the stitching canvas geometry (§11)."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.config import make_config
from backends.common.geometry import canvas_geometry
from backends.common.weights import (
    LOG_INTENSITY_SCALE,
    canonical_shapes,
    check_canonical,
    conv_specs,
    initial_weights,
    starting_weights,
)


def test_conv_specs_follow_the_architecture():
    specs = {s.name: (s.in_channels, s.out_channels) for s in conv_specs(2)}
    assert specs["encoder.0.conv0"] == (1, 32) and specs["encoder.2.conv1"] == (128, 128)
    assert specs["decoder_amp.0.conv0"] == (128, 64) and specs["decoder_phase.1.conv1"] == (32, 32)
    assert specs["decoder_amp.head"] == (32, 1) and len(specs) == 6 + 2 * 5


def test_initial_weights_draw_order_and_limits():
    w = initial_weights(7, 1, 0.5)
    rng = np.random.default_rng(7)
    for spec in conv_specs(1):  # the documented order, redrawn here
        lim = np.sqrt(6.0 / (9 * (spec.in_channels + spec.out_channels)))
        expected = rng.uniform(-lim, lim, spec.kernel_shape).astype(np.float32)
        np.testing.assert_array_equal(w[f"{spec.name}.kernel"], expected)
        assert not w[f"{spec.name}.bias"].any()
    assert w["log_intensity_scale"].shape == () and w["log_intensity_scale"] == np.float32(0.5)
    assert list(w) == list(canonical_shapes(1))


def test_check_canonical_names_the_problem():
    w = initial_weights(0, 1, 0.0)
    check_canonical(w, 1)
    with pytest.raises(ValueError, match="missing.*encoder.0.conv0.bias"):
        check_canonical({k: v for k, v in w.items() if k != "encoder.0.conv0.bias"}, 1)
    with pytest.raises(ValueError, match="extra.*bogus"):
        check_canonical({**w, "bogus": np.zeros(1)}, 1)
    with pytest.raises(ValueError, match="decoder_amp.head.kernel.*expected"):
        check_canonical({**w, "decoder_amp.head.kernel": np.zeros((1, 16, 1, 1))}, 1)


def test_canvas_geometry_by_hand():
    g = canvas_geometry([10.25, 13.5], [20.0, 17.75], 16)
    assert g.origin_px == (10 - 8, 17 - 8)
    assert g.shape == (20 - 17 + 16 + 1, 13 - 10 + 16 + 1)
    np.testing.assert_array_equal(g.tile_offsets, [[0, 3], [3, 0]])
    np.testing.assert_array_equal(g.fractions_px, [[0.25, 0.0], [0.5, 0.75]])


def test_starting_weights_are_the_callers_or_the_initializers():
    cfg = make_config({"n_filters_scale": 1, "seed": 3})
    fresh = starting_weights(cfg, 0.25)
    for name, value in initial_weights(3, 1, 0.25).items():
        np.testing.assert_array_equal(fresh[name], value)
    given = initial_weights(9, 1, 2.0)
    assert starting_weights(cfg, 0.25, given) is given  # a log g inside the weights wins
    no_scale = {k: v for k, v in given.items() if k != LOG_INTENSITY_SCALE}
    completed = starting_weights(cfg, 0.25, no_scale)
    assert completed[LOG_INTENSITY_SCALE] == np.float32(0.25) and completed[LOG_INTENSITY_SCALE].dtype == np.float32
    assert LOG_INTENSITY_SCALE not in no_scale  # the caller's dict is left alone
