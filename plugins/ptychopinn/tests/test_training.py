"""Short trainings of PtychoPINN's own models (pinn_parity_ptychopinn.training). Run in .venv-upstream only:

.venv-upstream/bin/python -m pytest plugins/ptychopinn/tests/test_training.py -p no:cacheprovider
"""

import json
import os

import numpy as np
import pytest

# Collected by `make test` in the project's .venv too, which has no PtychoPINN: skip, with the reason.
pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

from backends.common.dataset import save_dataset  # noqa: E402
from backends.common.simulate import simulate  # noqa: E402
from pinn_parity_ptychopinn import adapters, training  # noqa: E402

N = 64  # the smallest patch size PtychoPINN's TF model accepts
N_POSITIONS = 36
MAX_STEPS = 7
SEED = 5
# Canonical configs as an adapter resolves them: "epochs" (their default) and own "x." fields must not matter.
GRIDSIZE_1 = {
    "gridsize": 1,
    "neighbor_count": 4,
    "n_groups": 36,
    "n_filters_scale": 2,
    "amp_activation": "sigmoid",
    "batch_size": 16,
    "epochs": 50,
    "loss": "poisson",
    "object_big": False,
    "x.nphotons": 1e9,
}
GRIDSIZE_2 = {**GRIDSIZE_1, "gridsize": 2, "n_groups": 16, "batch_size": 4, "object_big": True}
# (steps_per_epoch, n_groups trained, epochs) each side's pipeline gives for GRIDSIZE_1 and GRIDSIZE_2 at MAX_STEPS:
#   TF: fit(validation_split=0.05) trains floor(0.95 * groups): 34 of 36 -> 3 batches of 16; 15 of 16 -> 4 of 4.
#   torch: every group: 36 -> 3 batches of 16; 16 -> 4 of 4.
#   epochs = max(2, ceil(7 / steps)): 3 and 2.
EXPECTED = {"tf": [(3, 34, 3), (4, 15, 2)], "torch": [(3, 36, 3), (4, 16, 2)]}
TRAIN = {"tf": training.train_tf, "torch": training.train_torch}
SHAPE_STAGE = {"tf": adapters.PtychoPINNTF, "torch": adapters.PtychoPINNTorch}


@pytest.fixture(scope="module")
def scan_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "scan.npz"
    save_dataset(simulate(3, N_POSITIONS, N), path)
    return path


@pytest.fixture(scope="module", params=sorted(TRAIN))
def runs(request, scan_path, tmp_path_factory):
    """One side trained three times in one process, from an empty working folder: gridsize 1, gridsize 2 with
    another batch size, then, after that side's shape stage has built a model (the TF one with intensity_scale
    1), gridsize 1 again with the same seed: what ran in between must not reach the third call.
    Returns (side, [histories], files left in the working folder)."""
    side = request.param
    cwd = tmp_path_factory.mktemp(f"cwd-{side}")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        results = [TRAIN[side](config, scan_path, MAX_STEPS, SEED)["history"] for config in (GRIDSIZE_1, GRIDSIZE_2)]
        SHAPE_STAGE[side]().model_shapes(GRIDSIZE_2, N)
        results.append(TRAIN[side](GRIDSIZE_1, scan_path, MAX_STEPS, SEED)["history"])
    return side, results, sorted(os.listdir(cwd))


@pytest.mark.slow
def test_history_has_the_canonical_keys_and_types(runs):
    _, histories, _ = runs
    for history in histories:
        assert sorted(history) == ["epoch_loss", "epochs", "n_groups", "steps_per_epoch"]
        assert all(type(v) is float and np.isfinite(v) for v in history["epoch_loss"])
        assert all(type(history[k]) is int for k in ("epochs", "n_groups", "steps_per_epoch"))
        assert len(history["epoch_loss"]) == history["epochs"] >= training.MIN_EPOCHS
        json.dumps(history)


@pytest.mark.slow
def test_the_schedule_follows_gridsize_batch_size_and_max_steps_not_their_default_epochs(runs):
    side, histories, _ = runs
    measured = [(h["steps_per_epoch"], h["n_groups"], h["epochs"]) for h in histories]
    assert measured == EXPECTED[side] + EXPECTED[side][:1]


@pytest.mark.slow
def test_one_seed_gives_one_history_after_other_configs_and_stages_ran(runs):
    _, histories, _ = runs
    assert histories[2] == histories[0]


@pytest.mark.slow
def test_nothing_is_written_in_the_working_folder(runs):
    _, _, left = runs
    assert left == []


def test_epochs_cover_max_steps_and_are_at_least_two():
    assert training.epochs_for(7, 3) == 3
    assert training.epochs_for(6, 3) == 2
    assert training.epochs_for(1, 3) == training.MIN_EPOCHS == 2


def test_canonical_fields_drop_own_fields_the_schedule_and_unset_fields():
    fields = training.canonical_fields({"gridsize": 2, "epochs": 50, "n_groups": None, "x.nphotons": 1e9})
    assert fields == {"gridsize": 2}


def test_a_schedule_other_than_planned_is_an_error():
    with pytest.raises(RuntimeError, match="planned"):
        training.check_schedule("x", {"steps_per_epoch": 3, "epochs": 2}, {"steps_per_epoch": 4, "epochs": 2})


def test_the_reset_drops_what_an_earlier_call_left_in_params_cfg():
    from ptycho import params

    params.cfg["intensity_scale"] = 123.0
    params.cfg["gridsize"] = 3
    params.seal()
    training.reset_legacy_params()
    assert "intensity_scale" not in params.cfg and params.cfg == params.DEFAULT_CFG
    assert not params._sealed


@pytest.mark.parametrize(
    "metadata, expected",
    [({"nphotons": 1e5}, 1e5), ({"physics_parameters": {"nphotons": 1e6}}, 1e6), ({"seed": 1}, None), (None, None)],
)
def test_nphotons_comes_from_their_metadata_as_train_py_reads_it(tmp_path, metadata, expected):
    from ptycho.metadata import MetadataManager

    path = tmp_path / "scan.npz"
    arrays = {"xcoords": np.zeros(2)}
    if metadata is None:
        np.savez(path, **arrays)
    else:
        MetadataManager.save_with_metadata(str(path), arrays, metadata)
    assert training.train_py_nphotons(path) == expected


def test_the_harness_metadata_key_is_not_theirs_so_their_default_nphotons_applies(scan_path):
    with np.load(scan_path) as f:
        assert "nphotons" in json.loads(str(f["metadata"]))
    assert training.train_py_nphotons(scan_path) is None
