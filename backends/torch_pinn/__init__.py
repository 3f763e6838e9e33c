"""The PyTorch / Lightning backend of the PINN (docs/spec.md, docs/backend_api.md).

Note: `train` here is the function; the module is `backends.torch_pinn.train`
(import names from it with `from backends.torch_pinn.train import ...`).
"""

from backends.torch_pinn.bundle import load_bundle, save_bundle
from backends.torch_pinn.model import PinnModel
from backends.torch_pinn.runtime import BACKEND_NAME
from backends.torch_pinn.stitch import reconstruct
from backends.torch_pinn.train import train

__all__ = ["BACKEND_NAME", "PinnModel", "load_bundle", "reconstruct", "save_bundle", "train"]
