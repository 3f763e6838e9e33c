"""Image metrics of the harness: kept in backends/common/imagemetrics.py, re-exported here.

They moved so that the infer command line can use them (backends/ never imports
parity/); these names stay for the harness, the benchmarks and existing callers.
"""

from backends.common.imagemetrics import (HALF_NYQUIST, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_TRUNCATE,  # noqa: F401
                                          align_global_phase_scale, crop_truth, frc_curve, frc_mean,
                                          interior_box, relative_error, ssim)
