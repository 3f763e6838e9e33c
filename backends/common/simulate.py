"""Deterministic simulator of a ptychography scan (docs/spec.md §2).

    python -m backends.common.simulate --output F [--seed S --n-positions M --N 32 ...]

Plain numpy in float64. Shared by both backends because it only makes their
input data; it is never part of what the harness compares.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from backends.common.config import ArgumentParser, int_at_least, positive_float
from backends.common.dataset import Dataset, save_dataset
from backends.common.fileio import OutputFolderError, ensure_folder

SIMULATOR_VERSION = 2  # 2: probe fills S (radius N/4 - 1), step N/6 (contract v2)


def support_slice(n: int) -> slice:
    """Rows (and columns) of the central N/2 x N/2 object support S."""
    return slice(n // 4, n // 4 + n // 2)


def make_object(rng, height: int, width: int, feature_px: float = 2.0) -> np.ndarray:
    """Amplitude in [0.5, 1] and phase in [-pi/2, pi/2], both smooth random fields."""

    def smooth_unit(shape):
        field = gaussian_filter(rng.standard_normal(shape), feature_px, mode="wrap")
        lo, hi = field.min(), field.max()
        return (field - lo) / (hi - lo)

    amplitude = 0.5 + 0.5 * smooth_unit((height, width))
    phase = math.pi * (smooth_unit((height, width)) - 0.5)
    return amplitude * np.exp(1j * phase)


def make_probe(n: int, curvature: float = 0.02) -> np.ndarray:
    """A soft-edged disk filling S (zero from radius N/4 - 0.5) with a quadratic phase; no random draw."""
    radius = n / 4 - 1
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) - n / 2
    r = np.hypot(xx, yy)
    # Linear ramp 0.5 px either side of the radius: a 0.5 px soft edge.
    magnitude = np.clip((radius + 0.5 - r) / 1.0, 0.0, 1.0)
    return magnitude * np.exp(1j * curvature * (xx**2 + yy**2))


def probe_power_outside_support(probe: np.ndarray) -> float:
    n = probe.shape[0]
    s = support_slice(n)
    power = np.abs(probe) ** 2
    return float(1.0 - power[s, s].sum() / power.sum())


def raster_positions(rng, n_positions: int, n: int, step: float, jitter: float):
    """Jittered raster; returns x, y (probe centres) and the object shape (H, W)."""
    cols = math.ceil(math.sqrt(n_positions))
    rows = math.ceil(n_positions / cols)
    margin = math.ceil(jitter) + 1
    idx = np.arange(n_positions)
    base_x = n / 2 + margin + (idx % cols) * step
    base_y = n / 2 + margin + (idx // cols) * step
    x = base_x + rng.uniform(-jitter, jitter, n_positions)
    y = base_y + rng.uniform(-jitter, jitter, n_positions)
    width = int(math.ceil((cols - 1) * step + n + 2 * margin + 1))
    height = int(math.ceil((rows - 1) * step + n + 2 * margin + 1))
    return x, y, (height, width)


def extract_patches(obj: np.ndarray, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """patch_m[i, j] = O(y_m - N/2 + i, x_m - N/2 + j), bilinear, zero outside."""
    h, w = obj.shape
    padded = np.zeros((h + 2, w + 2), dtype=obj.dtype)  # one zero pixel beyond each edge
    padded[1:-1, 1:-1] = obj
    grid = np.arange(n, dtype=np.float64) - n / 2
    out = np.empty((len(x), n, n), dtype=np.complex128)
    for m in range(len(x)):
        cols = x[m] + grid
        rows = y[m] + grid
        c0 = np.floor(cols).astype(np.int64)
        r0 = np.floor(rows).astype(np.int64)
        fc, fr = cols - c0, rows - r0
        c0p, r0p = np.clip(c0 + 1, 0, w + 1), np.clip(r0 + 1, 0, h + 1)
        c1p, r1p = np.clip(c0 + 2, 0, w + 1), np.clip(r0 + 2, 0, h + 1)
        wr = np.stack([1 - fr, fr])[:, :, None]
        wc = np.stack([1 - fc, fc])[:, None, :]
        out[m] = (
            wr[0] * wc[0] * padded[np.ix_(r0p, c0p)]
            + wr[0] * wc[1] * padded[np.ix_(r0p, c1p)]
            + wr[1] * wc[0] * padded[np.ix_(r1p, c0p)]
            + wr[1] * wc[1] * padded[np.ix_(r1p, c1p)]
        )
    return out


def far_field_intensity(probe: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """|fftshift(F_ortho(P * patch))|^2 in float64."""
    field = np.fft.fftshift(np.fft.fft2(probe[None] * patches, norm="ortho"), axes=(-2, -1))
    return field.real**2 + field.imag**2


def simulate(
    seed: int = 7,
    n_positions: int = 150,
    n: int = 32,
    nphotons: float = 1e5,
    step: float | None = None,
    jitter: float | None = None,
) -> Dataset:
    """A complete scan; the same arguments give byte-identical arrays."""
    if n < 16 or n % 8:
        raise ValueError(f"--N={n}: must be a multiple of 8 and >= 16")
    if n_positions < 2:
        raise ValueError(f"--n-positions={n_positions}: need at least 2 positions")
    if nphotons <= 0:
        raise ValueError(f"--nphotons={nphotons}: must be positive")
    # N/6: about 64 % linear overlap of the probe's 2(N/4 - 1) + 1 px diameter, as real scans overlap.
    step = n / 6 if step is None else float(step)
    jitter = step / 4 if jitter is None else float(jitter)
    rng = np.random.default_rng(seed)
    x, y, (h, w) = raster_positions(rng, n_positions, n, step, jitter)
    obj = make_object(rng, h, w)
    probe = make_probe(n)
    patches = extract_patches(obj, x, y, n)
    clean = far_field_intensity(probe, patches)
    k = nphotons / clean.sum(axis=(-2, -1)).mean()
    counts = rng.poisson(k * clean)
    metadata = {
        "simulator_version": SIMULATOR_VERSION,
        "seed": seed,
        "nphotons": nphotons,
        "N": n,
        "n_positions": n_positions,
        "step_px": step,
        "jitter_px": jitter,
        "probe_power_outside_support": probe_power_outside_support(probe),
    }
    return Dataset(
        diffraction=np.sqrt(counts).astype(np.float32),
        xcoords=x,
        ycoords=y,
        probe=probe.astype(np.complex64),
        object=obj.astype(np.complex64),
        xcoords_start=x.copy(),
        ycoords_start=y.copy(),
        metadata=metadata,
        source="<simulated>",
    )


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="python -m backends.common.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", required=True, metavar="FILE", help="NPZ file to write")
    parser.add_argument("--seed", type=int_at_least(0), default=7, help="random seed (default: 7)")
    parser.add_argument(
        "--n-positions",
        "--n_positions",
        dest="n_positions",
        type=int_at_least(2),
        default=150,
        help="scan positions (default: 150)",
    )
    parser.add_argument(
        "--N", dest="n", type=int_at_least(16), default=32, help="pattern size, a multiple of 8 (default: 32)"
    )
    parser.add_argument(
        "--nphotons", type=positive_float, default=1e5, help="mean total counts per pattern (default: 1e5)"
    )
    parser.add_argument("--step", type=positive_float, default=None, help="raster step in px (default: N/6)")
    parser.add_argument("--jitter", type=float, default=None, help="max jitter in px (default: step/4)")
    args = parser.parse_args(argv)
    if args.jitter is not None and args.jitter < 0:
        parser.error(f"argument --jitter: expected a number >= 0, got {args.jitter!r}")
    try:
        ds = simulate(args.seed, args.n_positions, args.n, args.nphotons, args.step, args.jitter)
    except ValueError as exc:
        parser.error(str(exc))
    if Path(args.output).is_dir():
        parser.error(f"argument --output: {args.output} is a folder, not an NPZ file")
    try:
        ensure_folder(Path(args.output).parent, label=f"argument --output {args.output}")
    except OutputFolderError as exc:
        parser.error(str(exc))
    path = save_dataset(ds, args.output)
    print(f"wrote {path}: M={ds.n_positions} N={ds.N} object {ds.object.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
