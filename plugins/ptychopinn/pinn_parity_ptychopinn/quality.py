"""Reconstruction quality of PtychoPINN's own TF model on a harness scan, scored as the bench scores its backends.

    python -m pinn_parity_ptychopinn.quality --data SCAN.npz --epochs E --out OUT.json   (in .venv-upstream)

Trains PtychoPINN's TF model from its own initial weights (pinn_parity_ptychopinn.training.train_tf: their
load_data, create_ptycho_data_container, train_cdi_model; gridsize 1, one group per scan position, the canonical
default seed), predicts every position's object patch (bundles.predict_tf, their diffraction_to_obj), stitches
the patches twice (the patches and both objects are saved beside OUT, suffix .npz) and scores both with
backends.common.imagemetrics.reconstruction_quality against the file's true object:
  referee    adapters.referee.stitch_patches, the float64 stitcher the bench's reference row uses, so the
             bundled backends and PtychoPINN are stitched the same way;
  own        ptycho.tf_helper.reassemble_position (M = 20, what their workflows call), via conversions.
The scan must have N = 64 (or 128, 256): PtychoPINN's ModelConfig.N is Literal[64, 128, 256] and its TF model
refuses the harness's usual N = 32. Their fit holds out the last 5 % of groups (validation_split=0.05) and may
stop early (EarlyStopping, patience 3): "epochs" is the number that ran. Their loss is theirs (negative
Poisson log-likelihood at their nphotons), not comparable in value with the bundled backends' loss.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from backends.common.config import make_config
from pinn_parity_ptychopinn.conversions import SUPPORTED_N, diffraction_size, stitch_with_reassemble_position
from pinn_parity_ptychopinn.training import TF_VALIDATION_SPLIT, train_tf

CONFIG = {
    k: v
    for k, v in make_config({}).to_dict().items()
    if k in ("gridsize", "batch_size", "loss", "n_filters_scale", "amp_activation", "object_big")
}
"""The canonical defaults (gridsize 1) of the fields PtychoPINN's TF configuration takes, as the bundled backend
trains; the others (seed, learning rate, Adam's epsilon) have no counterpart there (conversions.tf_config_fields)."""


def score(obj, origin_px, data) -> dict:
    from backends.common.imagemetrics import reconstruction_quality

    return reconstruction_quality(
        np.asarray(obj), tuple(float(v) for v in origin_px), data.object, data.xcoords, data.ycoords
    )[0]


def run(data_path: Path, epochs: int, patches_path: Path) -> dict:
    from adapters import referee
    from backends.common.dataset import load_dataset
    from pinn_parity_ptychopinn.adapters import TRAINING_SEED, PtychoPINNTF
    from pinn_parity_ptychopinn.bundles import predict_tf

    data = load_dataset(data_path)
    m = len(data.xcoords)
    # train_tf plans epochs from a step budget: epochs * (batches per epoch of their 95 % split) gives `epochs`
    steps_per_epoch = math.ceil(math.floor(m * (1.0 - TF_VALIDATION_SPLIT)) / CONFIG["batch_size"])
    start = time.perf_counter()
    trained = train_tf({**CONFIG, "n_groups": m}, data_path, epochs * steps_per_epoch, TRAINING_SEED)
    train_s = time.perf_counter() - start
    # gridsize 1: each group is one position, its offset from its own centre 0
    pred = predict_tf(trained["state"], np.asarray(data.diffraction)[:, None], np.zeros((m, 1, 2)))
    patches = pred["object_patches"][:, 0]
    obj, origin = referee.stitch_patches(patches, data.xcoords, data.ycoords)
    own = stitch_with_reassemble_position(patches, data.xcoords, data.ycoords)
    np.savez_compressed(
        patches_path,
        object_patches=patches,
        referee_object=obj,
        referee_origin_px=origin,
        own_object=own["object"],
        own_origin_px=own["origin_px"],
    )
    hist = trained["history"]
    return {
        "data": str(data_path),
        "n_positions": m,
        "N": int(data.N),
        "config": CONFIG,
        "seed": TRAINING_SEED,
        "epochs_requested": epochs,
        "epochs": hist["epochs"],
        "n_groups_trained": hist["n_groups"],
        "steps_per_epoch": hist["steps_per_epoch"],
        "epoch_loss": hist["epoch_loss"],
        "final_epoch_loss": hist["epoch_loss"][-1],
        "train_s": train_s,
        "patches_npz": str(patches_path),
        "metrics_referee_stitch": score(obj, origin, data),
        "metrics_own_stitch": score(own["object"], own["origin_px"], data),
        "versions": PtychoPINNTF().versions(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pinn_parity_ptychopinn.quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, required=True, help="harness scan (.npz, N = 64)")
    parser.add_argument("--epochs", type=int, required=True, help="training epochs (>= 2)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2 (a loss drop needs two epochs), got {args.epochs}")
    if not args.data.is_file():
        parser.error(f"--data: no such file: {args.data}")
    if not args.out.parent.is_dir():
        parser.error(f"--out: no such folder: {args.out.parent}")
    try:
        n = diffraction_size(args.data)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad argument
        parser.error(f"--data: not a harness scan with a 'diffraction' array: {args.data} ({exc})")
    if n not in SUPPORTED_N:
        parser.error(f"--data: PtychoPINN's TF model takes N in {SUPPORTED_N}; this scan has N = {n}")
    result = run(args.data, args.epochs, args.out.with_suffix(".npz"))
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(
        json.dumps(
            {k: result[k] for k in ("epochs", "final_epoch_loss", "train_s")}
            | {"referee": result["metrics_referee_stitch"], "own": result["metrics_own_stitch"]},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
