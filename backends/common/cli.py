"""The train and infer command lines, shared by both backends (docs/spec.md §13).

Only argument handling and file writing live here; each backend passes in its
own train / save / load / reconstruct functions, so the numerics stay apart.

Bad input (a flag, a data file, a bundle, an output folder) is one line
`PROG: error: ...` and exit status 2, checked before any work. `train` writes
into a sibling `<output-dir>.incomplete-XXXX` folder and moves its files into
the output folder at the end, bundle.zip last: a folder holding bundle.zip is a
finished run. Ctrl-C prints one line and exits 130, leaving the output folder
as it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from backends.common.bundle_io import BundleError
from backends.common.config import (
    ArgumentParser,
    ConfigError,
    add_config_arguments,
    add_path_argument,
    config_from_args,
)
from backends.common.dataset import DatasetError, load_dataset
from backends.common.fileio import (
    OutputFolderError,
    atomic_write,
    atomic_write_json,
    ensure_folder,
    publish_folder,
    save_npz,
    staging_folder,
)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
FINISHED_MARK = "bundle.zip"  # written last: its presence marks a finished training run


def _check_same_n(data, n: int, what: str) -> None:
    if data.N != n:
        raise DatasetError(data.source, "diffraction", f"pattern size N={data.N} differs from N={n} of {what}")


def _fail(prog: str, exc: Exception) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


@contextlib.contextmanager
def _sigint_noted():
    """Note a SIGINT while it is raised as KeyboardInterrupt as usual.

    Lightning catches KeyboardInterrupt inside `fit` and exits with sys.exit(1);
    the note lets train_main still report that exit as an interruption."""
    seen = {"sigint": False}

    def handler(signum, frame):
        seen["sigint"] = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        yield seen
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def train_main(argv, *, prog: str, train: Callable, save_bundle: Callable) -> int:
    """train(cfg, train_data, test_data) -> result with .model and .history; save_bundle(model, path)."""
    parser = ArgumentParser(prog=prog, description="Train the PINN and write a bundle.")
    add_path_argument(parser, "train_data_file", required=True, help="training NPZ (docs/spec.md §1)")
    add_path_argument(parser, "test_data_file", default=None, help="held-out NPZ; its loss is recorded")
    add_path_argument(
        parser,
        "output_dir",
        required=True,
        help="folder for effective_config.json, "
        "history.json and bundle.zip (bundle.zip, written last, marks a finished run)",
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line (there is none anyway when standard error is not a terminal)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
        train_data = load_dataset(args.train_data_file)
        test_data = load_dataset(args.test_data_file) if args.test_data_file else None
        cfg.check_against_data(train_data.n_positions, source=args.train_data_file)
        if test_data is not None:
            _check_same_n(test_data, train_data.N, f"the training data {args.train_data_file}")
            cfg.check_against_data(test_data.n_positions, source=args.test_data_file)
        staging = staging_folder(args.output_dir, label=f"--output-dir {args.output_dir}")
    except (ConfigError, DatasetError, OutputFolderError) as exc:
        return _fail(prog, exc)
    out = Path(args.output_dir)
    try:
        # Written first, so a run that fails later still says what it was asked to do.
        atomic_write_json(staging / "effective_config.json", cfg.to_dict())
        with _sigint_noted() as noted, epoch_progress(cfg.epochs, quiet=args.quiet) as on_epoch_end:
            try:
                result = train(cfg, train_data, test_data, on_epoch_end=on_epoch_end)
            except SystemExit:
                if noted["sigint"]:
                    raise KeyboardInterrupt from None
                raise
        atomic_write_json(staging / "history.json", result.history)
        save_bundle(result.model, staging / FINISHED_MARK)
        publish_folder(staging, out, last=FINISHED_MARK)
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; {out} left as it was (what was asked: {staging / 'effective_config.json'})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BaseException:
        print(f"{prog}: training failed; {out} left as it was (partial output: {staging})", file=sys.stderr)
        raise
    if cfg.epochs == 0:
        print("epochs 0: the bundle holds the untrained initial weights")
    print(f"wrote {out / 'effective_config.json'}, {out / 'history.json'}, {out / FINISHED_MARK}")
    return 0


@contextlib.contextmanager
def epoch_progress(epochs: int, *, quiet: bool = False, stream=None):
    """A progress line over `epochs` (epoch i/n, loss, elapsed, ETA: tqdm's) on a terminal; yields the
    backends' on_epoch_end callback, or None when quiet or when `stream` is not a terminal."""
    stream = sys.stderr if stream is None else stream
    if quiet or epochs <= 0 or not stream.isatty():
        yield None
        return
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        size = os.terminal_size((0, 0))
    # A terminal that reports no size (0 x 0) would make tqdm print nothing at all.
    with tqdm(
        total=epochs,
        desc="epoch",
        file=stream,
        ncols=size.columns or 80,
        nrows=size.lines or 24,
        bar_format="{desc} {n_fmt}/{total_fmt}{postfix} [{elapsed}<{remaining}]",
    ) as bar:

        def on_epoch_end(epochs_done: int, epoch_loss: float) -> None:
            bar.set_postfix_str(f"loss {epoch_loss:.5g}", refresh=False)
            bar.update(epochs_done - bar.n)

        yield on_epoch_end


def infer_main(argv, *, prog: str, load_bundle: Callable, reconstruct: Callable) -> int:
    """load_bundle(path) -> model; reconstruct(model, data) -> (object complex64, origin_px)."""
    parser = ArgumentParser(prog=prog, description="Stitch a reconstruction from a bundle.")
    add_path_argument(parser, "bundle", required=True, help="bundle.zip written by either backend's train")
    add_path_argument(
        parser,
        "data_file",
        required=True,
        help="NPZ whose positions are reconstructed; "
        "when it holds the true object (objectGuess), the PNG compares with it",
    )
    add_path_argument(parser, "output_dir", required=True, help="folder for reconstruction.npz and .png")
    args = parser.parse_args(argv)
    try:
        model = load_bundle(args.bundle)
        data = load_dataset(args.data_file)
        _check_same_n(data, model.probe.shape[-1], f"the bundle {args.bundle}")
        model.config.check_against_data(data.n_positions, source=args.data_file)
        out = ensure_folder(args.output_dir, label=f"--output-dir {args.output_dir}")
    except (BundleError, DatasetError, ConfigError, OutputFolderError) as exc:
        return _fail(prog, exc)
    obj, origin = reconstruct(model, data)
    save_npz(
        out / "reconstruction.npz",
        {"object": np.asarray(obj, dtype=np.complex64), "origin_px": np.asarray(origin, dtype=np.float64)},
    )
    title = f"{prog.split()[-1]}: bundle {args.bundle}, data {args.data_file}"
    save_reconstruction_png(obj, out / "reconstruction.png", title=title, origin_px=origin, data=data)
    print(f"wrote {out / 'reconstruction.npz'}, {out / 'reconstruction.png'}")
    return 0


def save_reconstruction_png(obj, path, title: str = "", *, origin_px=None, data=None) -> Path:
    """Amplitude and phase of `obj`; beside them the truth when `data` holds it (objectGuess).

    With a truth, the reconstruction is aligned to it (global phase and scale removed), the
    truth is cropped to the reconstruction's canvas (origin_px), and the title gives amplitude
    SSIM (data range of the truth), phase RMSE and FRC on the scanned interior."""
    # A bare Figure on the Agg canvas, not pyplot: no global figure state, and fixed margins instead of
    # tight_layout, which measured every label and took half the drawing time.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from backends.common.imagemetrics import compare_with_truth

    obj = np.asarray(obj)
    truth = getattr(data, "object", None)
    if truth is not None and origin_px is not None:
        found = compare_with_truth(obj, origin_px, truth, data.xcoords, data.ycoords)
        rows = (("reconstruction (aligned)", found.aligned), ("truth", found.truth))
        title += (
            f"\namplitude SSIM {found.amp_ssim:.3f} (truth's range), phase RMSE "
            f"{found.phase_rmse_rad:.3f} rad, FRC {found.frc:.3f} (to half Nyquist); scanned interior boxed"
        )
        box = found.box
        amp_range = (0.0, float(np.abs(found.truth).max()))
        limit = float(np.abs(np.angle(found.truth[box])).max()) or np.pi  # the truth's phase range, both rows
        phase_range = (-limit, limit)
    else:
        rows, box, amp_range, phase_range = (("reconstruction", obj),), None, (None, None), (None, None)
    fig = Figure(figsize=(8, 3.4 * len(rows) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (label, image), ax_row in zip(rows, axes):
        for ax, values, what, cmap, (lo, hi) in (
            (ax_row[0], np.abs(image), "amplitude", "gray", amp_range),
            (ax_row[1], np.angle(image), "phase (rad)", "twilight", phase_range),
        ):
            im = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi)
            if box is not None:
                rs, cs = box
                ax.add_patch(
                    Rectangle(
                        (cs.start - 0.5, rs.start - 0.5),
                        cs.stop - cs.start,
                        rs.stop - rs.start,
                        fill=False,
                        edgecolor="tab:orange",
                        lw=0.8,
                    )
                )
            ax.set_title(f"{label}: {what}", fontsize=9)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=8)
    top = 1 - 0.8 / fig.get_figheight()  # room for the title (up to three lines), whatever the rows
    fig.subplots_adjust(left=0.02, right=0.93, bottom=0.02, top=top, wspace=0.2, hspace=0.2)
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=80, format="png"))
    return Path(path)
