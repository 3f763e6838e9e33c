"""Bundle save / load (docs/spec.md §12) through the shared archive code.

Counterpart of backends/tf_pinn/bundle.py. Only the conversion between the
model and canonical weights happens here; the archive format, checksums and
refusals live in backends.common.bundle_io.
"""

from __future__ import annotations

from pathlib import Path

from backends.common.bundle_io import read_bundle, write_bundle
from backends.torch_pinn.model import PinnModel, create_model
from backends.torch_pinn.runtime import BACKEND_NAME, framework_versions


def save_bundle(model: PinnModel, path) -> Path:
    """Write `model` atomically as a bundle zip; returns the path."""
    return write_bundle(
        path,
        backend=BACKEND_NAME,
        framework_versions=framework_versions(),
        config=model.config,
        weights=model.get_canonical_weights(),
        probe=model.probe.detach().cpu().numpy(),
        input_scale=model.input_scale,
    )


def load_bundle(path) -> PinnModel:
    """A model from a bundle of either backend (BundleError when it is refused)."""
    contents = read_bundle(path)
    model = create_model(
        contents.config, contents.probe, contents.input_scale, contents.log_intensity_scale, weights=contents.weights
    )
    return model.eval()
