"""Command lines of the tf backend (docs/spec.md §13): the shared drivers with this backend's functions.

Counterpart of backends/torch_pinn/cli.py. train.py and infer.py run these from their
`__main__` blocks. Nothing here imports train.py at module level (stitch.py
imports it too): `python -m backends.tf_pinn.train` passes its own `train`,
so train.py is loaded once, as `__main__`.
"""

from __future__ import annotations

from backends.common import cli as common_cli
from backends.tf_pinn.bundle import load_bundle, save_bundle


def train_main(argv=None, *, train=None) -> int:
    """The train command line; `train` defaults to backends.tf_pinn.train.train."""
    if train is None:
        from backends.tf_pinn.train import train
    return common_cli.train_main(argv, prog="python -m backends.tf_pinn.train", train=train,
                                 save_bundle=save_bundle)


def infer_main(argv=None) -> int:
    """The infer command line: load a bundle, reconstruct a dataset."""
    from backends.tf_pinn.stitch import reconstruct  # imports train.py, so only when inferring

    return common_cli.infer_main(argv, prog="python -m backends.tf_pinn.infer", load_bundle=load_bundle,
                                 reconstruct=reconstruct)
