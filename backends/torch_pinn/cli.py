"""Command lines of the torch backend: the shared drivers with this backend's functions."""

from __future__ import annotations

from backends.common import cli as common_cli
from backends.torch_pinn.bundle import load_bundle, save_bundle
from backends.torch_pinn.stitch import reconstruct
from backends.torch_pinn.train import train


def train_main(argv=None) -> int:
    return common_cli.train_main(argv, prog="python -m backends.torch_pinn.train", train=train,
                                 save_bundle=save_bundle)


def infer_main(argv=None) -> int:
    return common_cli.infer_main(argv, prog="python -m backends.torch_pinn.infer", load_bundle=load_bundle,
                                 reconstruct=reconstruct)
