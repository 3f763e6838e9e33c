"""Save and load a trained model as a bundle (docs/spec.md §12).

Counterpart of backends/torch_pinn/bundle.py. The archive format is
backends.common.bundle_io; this module only converts the model to and from
canonical weights, so a bundle from either backend loads here.
"""

from __future__ import annotations

from pathlib import Path

from backends.common.bundle_io import read_bundle, write_bundle
from backends.tf_pinn.model import PinnModel, create_model
from backends.tf_pinn.runtime import BACKEND_NAME, framework_versions


def save_bundle(model: PinnModel, path) -> Path:
    """Write `model` (config, canonical weights, probe, input scale) to a zip, atomically."""
    return write_bundle(
        path,
        backend=BACKEND_NAME,
        framework_versions=framework_versions(),
        config=model.config,
        weights=model.get_canonical_weights(),
        probe=model.probe.numpy(),
        input_scale=model.input_scale,
    )


def load_bundle(path) -> PinnModel:
    """A PinnModel from a verified bundle written by either backend; raises BundleError."""
    contents = read_bundle(path)
    return create_model(
        contents.config, contents.probe, contents.input_scale, contents.log_intensity_scale, weights=contents.weights
    )
