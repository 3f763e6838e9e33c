"""The argument checks both backends share (backends/common/validation.py): each error names its argument."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.dataset import DatasetError
from backends.common.simulate import simulate
from backends.common.validation import (
    check_choice,
    check_coordinates,
    check_gradients,
    check_neighbor_count,
    check_pattern_size,
    check_scales_inputs,
    check_stitch_inputs,
    check_translate_inputs,
)


def test_choice():
    check_choice("loss", "mae", ("poisson", "mae"))
    with pytest.raises(ValueError, match="^loss='l2': choose one of poisson, mae$"):
        check_choice("loss", "l2", ("poisson", "mae"))


def test_coordinates():
    x, y = check_coordinates([1, 2], (3, 4))
    assert x.dtype == y.dtype == np.float64 and x.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"xcoords \(2,\) and ycoords \(3,\) must be 1-D of equal length"):
        check_coordinates([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="must be 1-D"):
        check_coordinates(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no scan positions to group"):
        check_coordinates([], [])
    with pytest.raises(ValueError, match="non-finite"):
        check_coordinates([0.0, np.nan], [0.0, 1.0])


def test_neighbor_count():
    check_neighbor_count(4, 5)
    for k in (0, 5):
        with pytest.raises(ValueError, match=f"neighbor_count={k} must be between 1 and M - 1 = 4"):
            check_neighbor_count(k, 5)


@pytest.mark.parametrize(
    "channels_last, images, shifts",
    [
        (False, (2, 3, 8, 8), (2, 3, 2)),
        (True, (2, 8, 8, 3), (2, 3, 2)),
        (True, (None, 8, 8, 3), (None, 3, 2)),  # a traced batch
    ],
)
def test_translate_accepts_the_native_layout(channels_last, images, shifts):
    for dtype in ("float32", "complex64"):
        check_translate_inputs(images, shifts, dtype, "float32", channels_last=channels_last)


def test_translate_names_the_argument_at_fault():
    with pytest.raises(TypeError, match="^translate: images must be float32 or complex64, got float64$"):
        check_translate_inputs((1, 1, 4, 4), (1, 1, 2), "float64", "float32", channels_last=False)
    with pytest.raises(TypeError, match="^translate: shifts_px must be float32, got float64$"):
        check_translate_inputs((1, 1, 4, 4), (1, 1, 2), "complex64", "float64", channels_last=False)
    message = (
        r"^translate: images must be \(B, C, H, W\) with shifts_px \(B, C, 2\); "
        r"got images \(1, 2, 4, 4\) and shifts_px \(1, 1, 2\)$"
    )
    with pytest.raises(ValueError, match=message):
        check_translate_inputs((1, 2, 4, 4), (1, 1, 2), "float32", "float32", channels_last=False)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):  # channels-first shape given as channels-last
        check_translate_inputs((1, 2, 4, 4), (1, 2, 2), "float32", "float32", channels_last=True)
    with pytest.raises(ValueError, match="shifts_px"):
        check_translate_inputs((2, 4, 4), (2, 1, 2), "float32", "float32", channels_last=False)


def test_scales_take_n_from_the_patterns_and_want_a_probe_of_that_size():
    assert check_scales_inputs((5, 16, 16), (16, 16)) == 16
    with pytest.raises(ValueError, match=r"compute_scales: probe must be \(N, N\) = \(16, 16\) like the patterns"):
        check_scales_inputs((5, 16, 16), (32, 32))
    for shape in ((16, 16), (0, 16, 16), (5, 16, 8)):
        with pytest.raises(ValueError, match=r"compute_scales: diffraction must be \(M, N, N\) with M >= 1"):
            check_scales_inputs(shape, (16, 16))


def test_stitch_inputs():
    x, y = check_stitch_inputs((2, 8, 8), [[1.0], [2.0]], [3, 4])
    assert x.tolist() == [1.0, 2.0] and y.dtype == np.float64
    with pytest.raises(
        ValueError,
        match=r"^stitch_patches: patches must be \(P, N, N\) with P coordinates; "
        r"got patches \(2, 8, 8\), 1 x and 2 y coordinates$",
    ):
        check_stitch_inputs((2, 8, 8), [1.0], [3, 4])
    with pytest.raises(ValueError, match=r"got patches \(2, 8, 4\)"):
        check_stitch_inputs((2, 8, 4), [1.0, 2.0], [3, 4])


def test_pattern_size():
    data = simulate(seed=1, n_positions=4, n=16)
    check_pattern_size(data, 16, "the model's")
    with pytest.raises(DatasetError, match="pattern size N=16 differs from the model's N=24"):
        check_pattern_size(data, 24, "the model's")


def test_gradients_name_the_first_weight_without_one():
    check_gradients(["a", "b"], [np.zeros(1), np.zeros(2)], source="train")
    with pytest.raises(RuntimeError, match="^train: weight 'b' has no gradient: the loss does not depend on it$"):
        check_gradients(["a", "b", "c"], [np.zeros(1), None, None], source="train")
    with pytest.raises(ValueError):  # a name without a gradient or the reverse is a caller's bug
        check_gradients(["a", "b"], [np.zeros(1)], source="train")
