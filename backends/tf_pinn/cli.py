"""Command lines of the TF backend (docs/spec.md §13): the shared drivers with this backend's functions.

Counterpart of backends/torch_pinn/cli.py.
"""

from __future__ import annotations

from backends.common import cli as common_cli
from backends.tf_pinn.bundle import load_bundle, save_bundle
from backends.tf_pinn.stitch import reconstruct
from backends.tf_pinn.train import train


def train_main(argv=None) -> int:
    return common_cli.train_main(argv, prog="python -m backends.tf_pinn.train", train=train,
                                 save_bundle=save_bundle)


def infer_main(argv=None) -> int:
    return common_cli.infer_main(argv, prog="python -m backends.tf_pinn.infer", load_bundle=load_bundle,
                                 reconstruct=reconstruct)
