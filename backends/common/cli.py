"""The train and infer command lines, shared by both backends (docs/spec.md §13).

Only argument handling and file writing live here; each backend passes in its
own train / save / load / reconstruct functions, so the numerics stay apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from backends.common.bundle_io import BundleError
from backends.common.config import (ConfigError, add_config_arguments, add_path_argument,
                                    config_from_args)
from backends.common.dataset import DatasetError, load_dataset
from backends.common.fileio import atomic_write_json, save_npz


def _check_same_n(data, n: int, what: str) -> None:
    if data.N != n:
        raise DatasetError(data.source, "diffraction", f"pattern size N={data.N} differs from N={n} of {what}")


def _fail(prog: str, exc: Exception) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def train_main(argv, *, prog: str, train: Callable, save_bundle: Callable) -> int:
    """train(cfg, train_data, test_data) -> result with .model and .history; save_bundle(model, path)."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the PINN and write a bundle.",
                                     allow_abbrev=False)
    add_path_argument(parser, "train_data_file", required=True, help="training NPZ (docs/spec.md §1)")
    add_path_argument(parser, "test_data_file", default=None, help="held-out NPZ; its loss is recorded")
    add_path_argument(parser, "output_dir", required=True, help="folder for effective_config.json, "
                      "history.json and bundle.zip")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
        train_data = load_dataset(args.train_data_file)
        test_data = load_dataset(args.test_data_file) if args.test_data_file else None
        cfg.check_against_data(train_data.n_positions, source=args.train_data_file)
        if test_data is not None:
            _check_same_n(test_data, train_data.N, f"the training data {args.train_data_file}")
            cfg.check_against_data(test_data.n_positions, source=args.test_data_file)
    except (ConfigError, DatasetError) as exc:
        return _fail(prog, exc)
    out = Path(args.output_dir)
    # Written first, so a run that fails later still says what it was asked to do.
    atomic_write_json(out / "effective_config.json", cfg.to_dict())
    result = train(cfg, train_data, test_data)
    atomic_write_json(out / "history.json", result.history)
    save_bundle(result.model, out / "bundle.zip")
    print(f"wrote {out / 'effective_config.json'}, {out / 'history.json'}, {out / 'bundle.zip'}")
    return 0


def infer_main(argv, *, prog: str, load_bundle: Callable, reconstruct: Callable) -> int:
    """load_bundle(path) -> model; reconstruct(model, data) -> (object complex64, origin_px)."""
    parser = argparse.ArgumentParser(prog=prog, description="Stitch a reconstruction from a bundle.",
                                     allow_abbrev=False)
    add_path_argument(parser, "bundle", required=True, help="bundle.zip written by either backend's train")
    add_path_argument(parser, "data_file", required=True, help="NPZ whose positions are reconstructed")
    add_path_argument(parser, "output_dir", required=True, help="folder for reconstruction.npz and .png")
    args = parser.parse_args(argv)
    try:
        model = load_bundle(args.bundle)
        data = load_dataset(args.data_file)
        _check_same_n(data, model.probe.shape[-1], f"the bundle {args.bundle}")
        model.config.check_against_data(data.n_positions, source=args.data_file)
    except (BundleError, DatasetError, ConfigError) as exc:
        return _fail(prog, exc)
    obj, origin = reconstruct(model, data)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_npz(out / "reconstruction.npz",
             {"object": np.asarray(obj, dtype=np.complex64), "origin_px": np.asarray(origin, dtype=np.float64)})
    save_reconstruction_png(obj, out / "reconstruction.png", title=f"{prog} {Path(args.bundle).name}")
    print(f"wrote {out / 'reconstruction.npz'}, {out / 'reconstruction.png'}")
    return 0


def save_reconstruction_png(obj, path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    for ax, data, label, cmap in ((axes[0], np.abs(obj), "amplitude", "gray"),
                                  (axes[1], np.angle(obj), "phase (rad)", "twilight")):
        im = ax.imshow(data, cmap=cmap)
        ax.set_title(label)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
