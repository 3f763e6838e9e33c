"""The `backend` fixture: each test here runs once per bundled backend (STYLE.md 13).

A test asks for `backend` and reaches the backend's modules as `backend.physics`,
`backend.train`, ... (imported on first use). Arrays cross into the backend through
`backend.to_native` / `backend.from_native` (images as (B, C, H, W) numpy outside,
the framework's own layout inside) and `backend.tensor` / `backend.numpy` (no
layout change). Behaviour that is really framework-specific is tested in
tests/tf_pinn and tests/torch_pinn instead.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

BACKENDS = ("tf_pinn", "torch_pinn")
MARKS = {"tf_pinn": pytest.mark.tf, "torch_pinn": pytest.mark.torch}
MODULES = ("bundle", "cli", "grouping", "inputs", "loss", "model", "physics", "runtime", "stitch", "train")


class BackendModules:
    """One bundled backend as the tests see it: its modules and numpy <-> tensor helpers."""

    def __init__(self, name: str):
        self.name = name  # "tf_pinn" or "torch_pinn", also BACKEND_NAME
        self.channels_last = name == "tf_pinn"  # TF is (B, H, W, C), torch (B, C, H, W)

    def __repr__(self) -> str:
        return self.name

    def __getattr__(self, module: str):
        if module not in MODULES:
            raise AttributeError(module)
        return importlib.import_module(f"backends.{self.name}.{module}")

    def tensor(self, array):
        """A framework tensor of `array`, same dtype and layout."""
        array = np.ascontiguousarray(array)
        if self.channels_last:
            import tensorflow as tf

            return tf.constant(array)
        import torch

        return torch.from_numpy(array.copy())

    def numpy(self, tensor) -> np.ndarray:
        """A numpy copy of a framework tensor (numpy passes through)."""
        if isinstance(tensor, np.ndarray):
            return tensor
        if self.channels_last:
            return np.asarray(tensor.numpy())
        return tensor.detach().cpu().numpy()

    def complex64(self, tensor):
        """A tensor cast to complex64 (imaginary part 0)."""
        if self.channels_last:
            import tensorflow as tf

            return tf.cast(tensor, tf.complex64)
        import torch

        return tensor.to(torch.complex64)

    def to_native(self, images) -> object:
        """(B, C, H, W) numpy images -> a tensor in the backend's layout."""
        images = np.asarray(images)
        return self.tensor(np.transpose(images, (0, 2, 3, 1)) if self.channels_last else images)

    def from_native(self, tensor) -> np.ndarray:
        """A native (B, ., ., .) image tensor -> (B, C, H, W) numpy."""
        array = self.numpy(tensor)
        return np.ascontiguousarray(np.transpose(array, (0, 3, 1, 2)) if self.channels_last else array)

    def take(self, tensor, index):
        """Rows `index` (numpy ints) of a tensor, along the first axis."""
        index = np.asarray(index, np.int64)
        if self.channels_last:
            import tensorflow as tf

            return tf.gather(tensor, index)
        import torch

        return tensor[torch.from_numpy(index)]

    def native_shape(self, b: int, c: int, h: int, w: int) -> tuple:
        """The shape a (B, C, H, W) batch has in the backend's layout."""
        return (b, h, w, c) if self.channels_last else (b, c, h, w)

    def no_grad(self):
        """A context without gradient recording (torch), or nothing (TF)."""
        if self.channels_last:
            import contextlib

            return contextlib.nullcontext()
        import torch

        return torch.no_grad()


@pytest.fixture(scope="session", params=[pytest.param(name, marks=MARKS[name]) for name in BACKENDS])
def backend(request) -> BackendModules:
    return BackendModules(request.param)
