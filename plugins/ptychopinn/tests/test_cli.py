"""The cli stage's translation: the harness's canonical flags to each command line's own, and the
bundle's params.cfg snapshot back to canonical fields."""

import zipfile

import numpy as np
import pytest

# Collected by `make test` in the project's .venv too, which has no PtychoPINN: skip, with the reason.
pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

from pinn_parity_ptychopinn import adapters  # noqa: E402
from pinn_parity_ptychopinn import cli  # noqa: E402

HARNESS_ARGV = ["--train-data-file", "scan.npz", "--output-dir", "out", "--gridsize", "2", "--epochs", "0",
                "--neighbor-count", "6", "--object-big", "false", "--loss", "mae", "--n-groups", "16"]


def test_the_harness_argv_splits_into_data_output_and_canonical_fields():
    data, out, given = cli.parse_canonical_argv(HARNESS_ARGV)
    assert (str(data), str(out)) == ("scan.npz", "out")
    assert given == {"gridsize": "2", "epochs": "0", "neighbor_count": "6", "object_big": "false",
                     "loss": "mae", "n_groups": "16"}


@pytest.mark.parametrize("argv, words", [
    (["--train-data-file", "a.npz", "--gridsize"], "pairs"),
    (["--train-data-file", "a.npz", "gridsize", "2"], "'gridsize'"),
    (["--train-data-file", "a.npz"], "--output-dir"),
])
def test_a_malformed_argv_is_one_error_naming_what_is_wrong(argv, words):
    with pytest.raises(ValueError, match=words):
        cli.parse_canonical_argv(argv)


def test_tf_flags_are_train_pys_and_booleans_go_over_in_pythons_spelling():
    _, _, given = cli.parse_canonical_argv(HARNESS_ARGV)
    flags = cli.translate_flags(given, cli.TF_FLAGS, cli.TF_LOSS_FLAGS)
    assert flags == ["--nepochs", "0", "--gridsize", "2", "--nll_weight", "0.0", "--mae_weight", "1.0",
                     "--n_groups", "16", "--neighbor_count", "6", "--object_big", "False"]


def test_torch_flags_are_cli_mains_and_fields_it_has_no_flag_for_are_left_out():
    _, _, given = cli.parse_canonical_argv(HARNESS_ARGV)
    flags = cli.translate_flags(given, cli.TORCH_FLAGS, cli.TORCH_LOSS_FLAGS)
    # neighbor_count and object_big: ptycho_torch.train's cli_main has no flag; its configs' defaults apply.
    assert flags == ["--max_epochs", "0", "--gridsize", "2", "--torch-loss-mode", "mae", "--n_images", "16"]


def test_a_params_snapshot_reads_back_as_canonical_fields_and_the_config_stages_own_fields():
    snapshot = {"N": 64, "gridsize": 2, "neighbor_count": 6, "n_groups": np.int64(16), "n_filters_scale": 2,
                "amp_activation": "silu", "batch_size": 16, "nepochs": 0, "nll_weight": 0.0, "mae_weight": 1.0,
                "object.big": True, "intensity_scale.trainable": False, "probe.trainable": False,
                "nphotons": 1e9, "probe.big": True}
    out = cli.canonical_from_params(snapshot)
    assert {k: v for k, v in out.items() if not k.startswith("x.")} == {
        "gridsize": 2, "neighbor_count": 6, "n_groups": 16, "n_filters_scale": 2, "amp_activation": "swish",
        "batch_size": 16, "epochs": 0, "loss": "mae", "object_big": True}
    assert out["x.intensity_scale_trainable"] is False and out["x.probe_big"] is True and out["x.N"] == 64
    assert type(out["n_groups"]) is int


def test_the_bundle_member_holding_the_snapshot_is_read(tmp_path):
    import dill

    bundle = tmp_path / cli.BUNDLE
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr(cli.PARAMS_MEMBER, dill.dumps({"gridsize": 3}))
    assert cli.read_bundle_params(bundle) == {"gridsize": 3}
    with pytest.raises(RuntimeError, match="no bundle"):
        cli.read_bundle_params(tmp_path / "missing" / cli.BUNDLE)


def test_torch_gets_the_diffraction_under_diff3d_and_a_diff3d_file_is_passed_as_is(tmp_path):
    ours = tmp_path / "ours.npz"
    np.savez(ours, diffraction=np.ones((2, 4, 4), np.float32), xcoords=np.zeros(2))
    copy_folder = tmp_path / "copy"
    copy_folder.mkdir()
    renamed = adapters.with_diff3d_key(ours, copy_folder)
    with np.load(renamed) as f:
        assert sorted(f.files) == ["diff3d", "xcoords"] and f["diff3d"].shape == (2, 4, 4)
    assert adapters.with_diff3d_key(renamed, copy_folder) == renamed
