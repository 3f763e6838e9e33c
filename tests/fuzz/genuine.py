"""Genuine files of every kind a loader reads, made by the project's own writers or taken from the
repository, for the fuzz tests to damage (tests/fuzz/mutations.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PROFILE_FOLDER = REPO / "plugins" / "ptychopinn" / "profile"
"""A real team profile: cases, switches, variants, refusals, its own ledger and baseline."""
LEDGER_FILE = REPO / "parity" / "tolerances.json"
GOLDEN_ID = "gs1-k4-poisson-n32"
GOLDEN_FOLDER = REPO / "golden" / GOLDEN_ID
SHARD_CONFIGS = ("gs1-k4-poisson-n32", "gs2-k4-poisson-n32")


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_dataset(path: Path) -> Path:
    """A small simulated scan (N=16, 12 positions, object included), written by save_dataset."""
    from backends.common.dataset import save_dataset
    from backends.common.simulate import simulate

    return save_dataset(simulate(seed=3, n_positions=12, n=16), path)


def write_genuine_bundle(path: Path) -> Path:
    """A bundle of the initial weights (n_filters_scale 1, N=16), written by write_bundle."""
    from backends.common.bundle_io import write_bundle
    from backends.common.config import make_config
    from backends.common.weights import initial_weights

    cfg = make_config({"n_filters_scale": 1})
    return write_bundle(
        path,
        backend="fuzz",
        framework_versions={"fuzz": "1"},
        config=cfg,
        weights=initial_weights(5, cfg.n_filters_scale, 1.25),
        probe=np.ones((16, 16), np.complex64),
        input_scale=1.0,
    )


def write_hub(root: Path, config_id: str, *, shard: int) -> Path:
    """One shard's finalized hub (new_hub, write_part, finalize) of one config: a passing allclose with its
    tolerance, a new split, a known split its baseline accepts, a check that could not run (adapter
    error), a stage note; env as the suite's plugin records it for a sharded run."""
    from parity import baseline as baselines
    from parity.comparators import error_comparison
    from parity.origin import Origin
    from parity.report import hub as hubs
    from parity.verdict import Check
    from tests.parity.factories import HUB_ENV, make_comparison

    tolerance = {"key": "forward.max_abs.float32", "value": 1e-5, "measure": "max_abs", "limit": 1e-5}
    records = [
        make_comparison(config_id, "forward", True, measured={"max_abs": 1e-7}, tolerance=tolerance),
        make_comparison(config_id, "loss", False, measured={"max_abs": 1.0, "n_bad": 3}),
        make_comparison(config_id, "training", False, metric="loss_band"),
        error_comparison(
            config_id=config_id,
            stage="bundle",
            check=Check("torch_pinn"),
            metric="load",
            error="RuntimeError: refused",
            blame=Origin.ADAPTER,
        ),
    ]
    notes = [hubs.StageNote(config_id, "cli", "n/a", "stage cli n/a: fewer than two backends support it")]
    known = baselines.Baseline(
        path=root / "baseline.json",
        entries=(baselines.BaselineEntry("*", "training", "*", "loss_band", "known drift", "https://example.org/1"),),
    )
    hub = hubs.new_hub(root)
    hubs.write_part(hub, "gw0", records, notes=notes)
    env = {
        **HUB_ENV,
        "packages": {"pinn-parity": "0.1.0", "numpy": "2.4.6"},
        "profile": "bundled",
        "backends": ["tf_pinn", "torch_pinn"],
        "dirty": False,
        "configs": [config_id],
        "exitstatus": 1,
        "shard": {"shard": f"{shard}/{len(SHARD_CONFIGS)}", "configs": list(SHARD_CONFIGS)},
    }
    hubs.finalize(hub, env, "log\n", complete=True, baseline=known)
    return hub


def copy_hub(hub: Path, target: Path) -> Path:
    """A copy of a hub folder (its parts, results.json, rendered report)."""
    return Path(shutil.copytree(hub, target, symlinks=True))


def copy_profile(target: Path) -> Path:
    """The PtychoPINN plugin's profile folder (profile.json, its ledger and baseline) copied into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for item in PROFILE_FOLDER.iterdir():
        if item.is_file():
            shutil.copyfile(item, target / item.name)
    return target
