"""Test settings that must be in place before any framework is imported."""

from backends.common.threads import pin_threads

# One thread per op pool, before any framework import: see backends/common/threads.py.
pin_threads()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from backends.common.dataset import save_dataset  # noqa: E402
from backends.common.simulate import simulate  # noqa: E402


@pytest.fixture(scope="session")
def small_dataset_path(tmp_path_factory):
    """A small simulated scan (N=32, 40 positions) written once per worker."""
    path = tmp_path_factory.mktemp("data") / "small.npz"
    save_dataset(simulate(seed=3, n_positions=40, n=32), path)
    return path


@pytest.fixture(scope="session")
def default_dataset_path(tmp_path_factory):
    """The default simulated scan (N=32, 150 positions)."""
    path = tmp_path_factory.mktemp("data") / "default.npz"
    save_dataset(simulate(), path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
