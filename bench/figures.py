"""PNG of the quality section: ground truth against each reconstruction (amplitude and phase)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backends.common.imagemetrics import align_global_phase_scale, crop_truth, interior_box
from backends.common.simulate import simulate


def quality_png(section: dict, data_spec: dict, path: Path) -> Path:
    """Rows: ground truth, then every run (backend stitch and the unaligned diagnostic stitch),
    each aligned to the truth by one complex scalar on the interior shown."""
    data = simulate(**data_spec)
    rows = []
    for label, run in section["runs"].items():
        arrays = np.load(run["npz"])
        obj, origin = arrays["object"], arrays["origin_px"]
        truth, _ = crop_truth(data.object, obj.shape, origin)
        rs, cs = interior_box(data.xcoords, data.ycoords, origin, obj.shape, 0.0)
        if not rows:
            rows.append(("ground truth", truth[rs, cs]))
        m = run["metrics"]
        rows.append(
            (
                f"{label} (SSIM {m['amp_ssim']:.2f}, phase RMSE {m['phase_rmse_rad']:.2f})",
                align_global_phase_scale(truth[rs, cs], obj[rs, cs])[0],
            )
        )
        w = run["metrics_unaligned_stitch"]
        rows.append(
            (
                f"{label}, unaligned stitch (SSIM {w['amp_ssim']:.2f}, {w['phase_rmse_rad']:.2f})",
                align_global_phase_scale(truth[rs, cs], arrays["unaligned"][rs, cs])[0],
            )
        )
    truth_img = rows[0][1]
    amp_lo, amp_hi = np.percentile(np.abs(truth_img), [1, 99])
    ph_lo, ph_hi = np.percentile(np.angle(truth_img), [1, 99])
    cols = 2
    fig = Figure(figsize=(3.2 * cols * 2, 3.0 * ((len(rows) + 1) // 2)))
    for i, (title, image) in enumerate(rows):
        for j, (part, lo, hi, cmap) in enumerate(
            ((np.abs(image), amp_lo, amp_hi, "gray"), (np.angle(image), ph_lo, ph_hi, "viridis"))
        ):
            ax = fig.add_subplot((len(rows) + 1) // 2, 2 * cols, 2 * i + j + 1)
            ax.imshow(part, vmin=lo, vmax=hi, cmap=cmap)
            ax.set_title(("amp " if j == 0 else "phase ") + title, fontsize=7)
            ax.axis("off")
    FigureCanvasAgg(fig)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
