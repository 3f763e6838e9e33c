"""The quality table's target lines (bench/report.py): a run is judged against every target, on the right side."""

from bench.report import _quality_targets


def _run(ssim, phase, frc, train_s):
    return {"metrics": {"amp_ssim": ssim, "phase_rmse_rad": phase, "frc_mean_half_nyquist": frc}, "train_s": train_s}


def test_each_run_is_judged_on_every_target_and_the_pair_on_training_time():
    runs = {
        "gridsize2/tf_pinn": _run(0.95, 0.05, 0.99, 300.0),
        "gridsize2/torch_pinn": _run(0.95, 0.12, 0.94, 200.0),
        "gridsize1/tf_pinn": _run(0.899, 0.10, 0.95, 10.0),
    }
    lines = _quality_targets(runs)
    assert "targets, gridsize2/tf_pinn: all met" in lines
    assert (
        "targets, gridsize2/torch_pinn: missed phase_rmse_rad 0.120 (target <= 0.1), "
        "frc_mean_half_nyquist 0.940 (target >= 0.95)"
    ) in lines
    assert "targets, gridsize1/tf_pinn: missed amp_ssim 0.899 (target >= 0.9)" in lines  # the limits themselves pass
    assert "train seconds, gridsize2: tf_pinn / torch_pinn = 1.50" in lines
    assert not any(line.startswith("train seconds, gridsize1") for line in lines)  # no torch_pinn run to compare
