"""The benchmark's quality score against the simulator's truth (backends/common/imagemetrics.py)."""

import numpy as np

from backends.common.imagemetrics import align_global_phase_scale, reconstruction_quality, ssim
from backends.common.simulate import simulate


def test_a_reconstruction_with_an_outlier_is_scored_in_the_truths_data_range():
    data = simulate(seed=3, n_positions=40, n=32)
    truth = np.asarray(data.object, np.complex128)
    origin = (0.0, 0.0)
    blurred = truth.copy()
    blurred[::2] = np.roll(truth, 1, axis=1)[::2]  # a real error
    spiked = blurred.copy()
    spiked[60, 60] = 5.0  # one wild pixel inside the scanned interior
    honest = reconstruction_quality(spiked, origin, truth, data.xcoords, data.ycoords)[0]["amp_ssim"]
    # The same reconstruction scored in the joint range gains from its own outlier.
    rows = slice(int(np.ceil(data.ycoords.min())), int(np.floor(data.ycoords.max())) + 1)
    cols = slice(int(np.ceil(data.xcoords.min())), int(np.floor(data.xcoords.max())) + 1)
    aligned, _ = align_global_phase_scale(truth[rows, cols], spiked[rows, cols])
    joint = ssim(np.abs(truth[rows, cols]), np.abs(aligned))
    assert honest < joint
    exact = reconstruction_quality(truth, origin, truth, data.xcoords, data.ycoords)[0]["amp_ssim"]
    assert exact > 0.999
