"""PtychoPINN's own bundles of briefly trained networks (pinn_parity_ptychopinn.bundles). Run in .venv-upstream only:

.venv-upstream/bin/python -m pytest plugins/ptychopinn/tests/test_bundles.py -p no:cacheprovider
"""

import os
import zipfile

import numpy as np
import pytest

# Collected by `make test` in the project's .venv too, which has no PtychoPINN: skip, with the reason.
pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

# the training tests' case (gridsize 1, N = 64) and its scan file fixture
from test_training import GRIDSIZE_1, MAX_STEPS, SEED, TRAIN, N, scan_path  # noqa: E402,F401

from pinn_parity_ptychopinn import bundles  # noqa: E402

B = 6
SAVE = {"tf": bundles.save_tf, "torch": bundles.save_torch}
LOAD = {"tf": bundles.load_tf, "torch": bundles.load_torch}
PREDICT = {"tf": bundles.predict_tf, "torch": bundles.predict_torch}


def _load(side, path, probe=None):
    """load_torch takes the probe their torch bundle lacks; load_tf needs none."""
    return LOAD[side](path) if side == "tf" else LOAD[side](path, probe)


@pytest.fixture(scope="module")
def inputs(scan_path):  # noqa: F811 - the fixture imported from test_training
    """The scan's first B patterns as (B, 1, N, N) and offsets of a few pixels (non-zero: the shift is exercised)."""
    with np.load(scan_path) as f:
        diffraction = np.asarray(f["diffraction"][:B, None], np.float32)
    return diffraction, np.random.default_rng(0).uniform(-2, 2, (B, 1, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def runs(scan_path, inputs, tmp_path_factory):  # noqa: F811
    """Each side trained once, predicted, saved to <folder>/bundle.zip, loaded back and predicted again, from an
    empty working folder. Returns {side: (state, before, path, loaded, after, files left in the working folder)}."""
    out = {}
    for side in sorted(TRAIN):
        cwd = tmp_path_factory.mktemp(f"cwd-{side}")
        path = tmp_path_factory.mktemp(f"bundle-{side}") / "bundle.zip"
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(cwd)
            state = TRAIN[side](GRIDSIZE_1, scan_path, MAX_STEPS, SEED)["state"]
            before = PREDICT[side](state, *inputs)
            SAVE[side](state, path)
            loaded = _load(side, path, state.probe)
            after = PREDICT[side](loaded, *inputs)
        out[side] = (state, before, path, loaded, after, sorted(os.listdir(cwd)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(TRAIN))
def test_a_loaded_bundle_predicts_exactly_what_the_trained_network_did(runs, side):
    _, before, _, _, after, _ = runs[side]
    for key in ("object_patches", "amplitude"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(TRAIN))
def test_predictions_are_canonical_and_finite(runs, side):
    _, before, *_ = runs[side]
    assert before["object_patches"].shape == before["amplitude"].shape == (B, 1, N, N)
    assert before["object_patches"].dtype == np.complex64 and before["amplitude"].dtype == np.float32
    assert all(np.isfinite(v).all() for v in before.values())
    assert np.abs(before["object_patches"]).std() > 0  # a network's output, not a constant


@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(TRAIN))
def test_the_loaded_state_keeps_the_case_and_the_intensity_scale(runs, side):
    state, _, _, loaded, _, _ = runs[side]
    assert (
        (loaded.backend, loaded.n, loaded.gridsize) == (state.backend, N, 1) == (state.backend, state.n, state.gridsize)
    )
    assert loaded.intensity_scale == state.intensity_scale


@pytest.mark.slow
@pytest.mark.parametrize("side", sorted(TRAIN))
def test_the_bundle_is_at_the_given_path_and_nothing_is_written_elsewhere(runs, side):
    _, _, path, _, _, left = runs[side]
    assert sorted(os.listdir(path.parent)) == ["bundle.zip"]
    assert zipfile.is_zipfile(path)
    assert left == []


@pytest.mark.slow
def test_the_tf_loader_refuses_a_torch_bundle(runs):
    """Both write wts.h5.zip with manifest.dill and params.dill, but ModelManager.load_model opens
    custom_objects.dill, which save_torch_bundle does not write."""
    with pytest.raises(FileNotFoundError, match="custom_objects.dill"):
        bundles.load_tf(runs["torch"][2])


@pytest.mark.slow
def test_torch_inference_refuses_a_tf_bundle_that_load_torch_bundle_takes_with_random_weights(runs, inputs):
    """Their inference loader (load_inference_bundle_torch) checks a bundle without scaling metadata strictly and
    stops on the TF bundle, which holds no model.pth (the profile's refusal). load_torch_bundle called directly
    still loads it without a word, as untrained networks (load_state_dict(strict=False), errors swallowed):
    two loads under two torch seeds predict differently (reproduction 3)."""
    import dataclasses

    import torch
    from ptycho_torch.model_manager import load_torch_bundle

    path, probe = runs["tf"][2], runs["torch"][0].probe
    with zipfile.ZipFile(path) as bundle:
        assert not [name for name in bundle.namelist() if name.endswith("model.pth")]
    with pytest.raises(KeyError, match="model.pth"):
        bundles.load_torch(path, probe)
    predictions = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        with bundles.bundle_folder(path) as folder:
            models, _ = load_torch_bundle(str(folder / "wts.h5"))
        state = dataclasses.replace(runs["torch"][0], models=models)
        predictions.append(bundles.predict_torch(state, *inputs)["object_patches"])
    assert not np.array_equal(*predictions)


@pytest.mark.slow
def test_the_tf_bundle_is_written_as_train_py_writes_it(runs):
    """model_manager.save passes its custom objects (ProbeIllumination among them) to save_multiple_models; a save
    with custom_objects={} would leave them out."""
    import dill

    with zipfile.ZipFile(runs["tf"][2]) as bundle:
        custom = dill.loads(bundle.read("diffraction_to_obj/custom_objects.dill"))
    assert {"ProbeIllumination", "IntensityScaler", "negloglik"} <= set(custom)


@pytest.mark.slow
def test_the_torch_bundle_is_written_as_cli_main_writes_it(runs):
    """run_cdi_example_torch adds its scaling metadata to what save_torch_bundle writes."""
    with zipfile.ZipFile(runs["torch"][2]) as bundle:
        assert "torch_scaling_metadata.pt" in bundle.namelist()


@pytest.mark.slow
def test_a_loaded_state_has_no_bundle_of_theirs_to_hand_on(runs, tmp_path):
    with pytest.raises(ValueError, match="not trained here"):
        bundles.write_bundle(runs["tf"][3], tmp_path / "again.zip")
    assert not (tmp_path / "again.zip").exists()
