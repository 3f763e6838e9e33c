"""Hypothesis settings of the fuzz tests: profile "default" (bounded, `make test`) or "fuzz" (`make fuzz`).

HYPOTHESIS_PROFILE chooses: `HYPOTHESIS_PROFILE=fuzz python -m pytest tests/fuzz -n auto`. No deadline:
a loader's first call imports modules and the machine is shared, so a slow example is no failure here;
memory and error class are what the tests judge (tests/fuzz/mutations.py). The genuine files the tests
damage are written here once per session (tests/fuzz/genuine.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from .genuine import SHARD_CONFIGS, write_dataset, write_genuine_bundle, write_hub

_COMMON = {
    "deadline": None,
    # Genuine files are built by session fixtures, and the generated files are kilobytes: neither is a
    # problem for these tests, so neither health check applies.
    "suppress_health_check": (HealthCheck.too_slow, HealthCheck.data_too_large),
}
settings.register_profile("default", max_examples=30, **_COMMON)
settings.register_profile("fuzz", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def genuine_dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset") / "scan.npz")


@pytest.fixture(scope="session")
def genuine_bundle(tmp_path_factory) -> Path:
    return write_genuine_bundle(tmp_path_factory.mktemp("bundle") / "bundle.zip")


@pytest.fixture(scope="session")
def genuine_hubs(tmp_path_factory) -> tuple[Path, ...]:
    """The two shards' hubs of one sharded run, one config each."""
    root = tmp_path_factory.mktemp("hubs")
    return tuple(write_hub(root / f"s{n}", c, shard=n) for n, c in enumerate(SHARD_CONFIGS, 1))
