"""The TensorFlow / Keras 3 backend of the PINN (docs/spec.md, docs/backend_api.md).

Nothing is imported or re-exported here: import names from their modules,
e.g. `from backends.tf_pinn.train import train`. A package that imported
its submodules would have `python -m backends.tf_pinn.train` find train.py
already loaded before running it as `__main__` (a second copy and a runpy
warning), and the function `train` would share an attribute with the module
`train`.
"""
