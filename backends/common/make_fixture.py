"""Cut a small dataset from a large one, keeping every pattern with its own coordinates.

    python -m backends.common.make_fixture --source F --output F --subset-size K [--seed S]

The chosen indices and the source file's sha256 are recorded in metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from backends.common.config import ArgumentParser, int_at_least
from backends.common.dataset import DatasetError, load_dataset, save_dataset


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_fixture(source, output, subset_size: int, seed: int = 0):
    """Write `subset_size` positions of `source` (chosen by `default_rng(seed)`, kept sorted) to `output`."""
    ds = load_dataset(source)
    if not 1 <= subset_size <= ds.n_positions:
        raise DatasetError(
            source, "diffraction", f"--subset-size={subset_size} must be between 1 and the {ds.n_positions} positions"
        )
    indices = np.sort(np.random.default_rng(seed).choice(ds.n_positions, size=subset_size, replace=False))
    metadata = dict(ds.metadata)
    metadata["fixture"] = {
        "source_file": Path(source).name,
        "source_sha256": sha256_of(source),
        "seed": seed,
        "indices": indices.tolist(),
    }
    return save_dataset(replace(ds.subset(indices), metadata=metadata), output)


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="python -m backends.common.make_fixture",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, metavar="FILE", help="NPZ to cut from")
    parser.add_argument("--output", required=True, metavar="FILE", help="NPZ to write")
    parser.add_argument(
        "--subset-size",
        "--subset_size",
        dest="subset_size",
        type=int_at_least(1),
        required=True,
        help="positions to keep",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the choice (default: 0)")
    args = parser.parse_args(argv)
    try:
        path = make_fixture(args.source, args.output, args.subset_size, args.seed)
    except DatasetError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
