"""The simulator (docs/spec.md §2): deterministic, physically consistent, within its stated ranges."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common.dataset import load_dataset, save_dataset
from backends.common.simulate import main, make_probe, probe_power_outside_support, simulate, support_slice


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = save_dataset(simulate(seed=5, n_positions=12, n=16), tmp_path / "a.npz")
    b = save_dataset(simulate(seed=5, n_positions=12, n=16), tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()


def test_other_seed_gives_other_data():
    a, b = simulate(seed=5, n_positions=12, n=16), simulate(seed=6, n_positions=12, n=16)
    assert not np.array_equal(a.diffraction, b.diffraction)
    assert not np.array_equal(a.xcoords, b.xcoords)


def test_cli_writes_the_same_bytes_as_the_api(tmp_path):
    assert main(["--output", str(tmp_path / "cli.npz"), "--seed", "9", "--n-positions", "10", "--N", "16"]) == 0
    api = save_dataset(simulate(seed=9, n_positions=10, n=16), tmp_path / "api.npz")
    assert (tmp_path / "cli.npz").read_bytes() == api.read_bytes()


def test_ranges_and_positions():
    ds = simulate(seed=2, n_positions=30, n=32)
    amp, phase = np.abs(ds.object), np.angle(ds.object)
    assert amp.min() >= 0.5 - 1e-6 and amp.max() <= 1 + 1e-6
    assert phase.min() >= -np.pi / 2 - 1e-6 and phase.max() <= np.pi / 2 + 1e-6
    h, w = ds.object.shape
    assert ds.xcoords.min() >= 16 and ds.xcoords.max() <= w - 16 - 1
    assert ds.ycoords.min() >= 16 and ds.ycoords.max() <= h - 16 - 1
    assert ds.diffraction.shape == (30, 32, 32) and np.all(ds.diffraction >= 0)


def test_mean_counts_match_nphotons():
    ds = simulate(seed=4, n_positions=60, n=32, nphotons=1e4)
    mean_total = float(np.mean(np.sum(ds.diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    assert abs(mean_total - 1e4) < 0.02 * 1e4  # Poisson noise on 60 x 1e4 counts is far below 2 %


@pytest.mark.parametrize("n", [16, 32, 64])
def test_probe_confined_to_support(n):
    probe = make_probe(n)
    assert probe_power_outside_support(probe) < 1e-3
    s = support_slice(n)
    power = np.abs(probe) ** 2
    outside = power.copy()
    outside[s, s] = 0
    assert outside.sum() == 0.0


def test_far_field_peak_at_centre_for_flat_object():
    ds = simulate(seed=1, n_positions=4, n=16)
    # Zero frequency sits at (N/2, N/2): the brightest pixel of the mean pattern.
    mean = np.mean(ds.diffraction, axis=0)
    assert np.unravel_index(np.argmax(mean), mean.shape) == (8, 8)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"n": 20}, "multiple of 8"),
        ({"n": 8}, "multiple of 8"),
        ({"n_positions": 1}, "at least 2"),
        ({"nphotons": 0}, "positive"),
    ],
)
def test_invalid_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        simulate(**kwargs)


def test_round_trip_through_file(tmp_path):
    ds = simulate(seed=8, n_positions=9, n=16)
    back = load_dataset(save_dataset(ds, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.object, ds.object)
    assert back.metadata["seed"] == 8 and back.metadata["N"] == 16
