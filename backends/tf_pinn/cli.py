"""Command lines of the tf backend (docs/spec.md §13): the shared drivers with this backend's functions.

Counterpart of backends/torch_pinn/cli.py. train.py and infer.py run these from their
`__main__` blocks. train.py is the one module not imported at module level:
`python -m backends.tf_pinn.train` runs it as `__main__` and passes its own `train`,
so importing it here would load a second copy.
"""

from __future__ import annotations

from backends.common import cli as common_cli
from backends.tf_pinn.bundle import load_bundle, save_bundle
from backends.tf_pinn.stitch import reconstruct


def train_main(argv=None, *, train=None) -> int:
    """The train command line; `train` defaults to backends.tf_pinn.train.train."""
    if train is None:
        from backends.tf_pinn.train import train  # see the module docstring
    return common_cli.train_main(argv, prog="python -m backends.tf_pinn.train", train=train, save_bundle=save_bundle)


def infer_main(argv=None) -> int:
    """The infer command line: load a bundle, reconstruct a dataset."""
    return common_cli.infer_main(
        argv, prog="python -m backends.tf_pinn.infer", load_bundle=load_bundle, reconstruct=reconstruct
    )
