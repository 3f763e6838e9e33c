"""The TensorFlow / Keras 3 backend of the PINN (docs/spec.md, docs/backend_api.md).

The re-exports are eager on purpose: the function `train` shares its name with
the module `train.py`, and importing that submodule later would otherwise
rebind `backends.tf_pinn.train` to the module.
"""

from backends.tf_pinn.bundle import load_bundle, save_bundle
from backends.tf_pinn.model import PinnModel
from backends.tf_pinn.runtime import BACKEND_NAME
from backends.tf_pinn.stitch import reconstruct
from backends.tf_pinn.train import train

__all__ = ["BACKEND_NAME", "PinnModel", "load_bundle", "reconstruct", "save_bundle", "train"]
