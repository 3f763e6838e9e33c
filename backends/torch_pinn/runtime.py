"""Torch runtime settings: backend name, framework versions, determinism.

Counterpart of backends/tf_pinn/runtime.py: the same three public names, plus
the Lightning-specific `quiet_lightning` that train.py wraps its Trainer in.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import lightning
import torch

from backends.common.threads import threads_from_env

BACKEND_NAME = "torch_pinn"
_THREAD_VARS = ("OMP_NUM_THREADS",)  # torch's intra-op pool; its inter-op pool is left at its default

# Lightning prints "GPU available", "TPU available" and tips through these
# loggers, which it sets to INFO on import; while a Trainer runs they are
# raised to WARNING if still at that default (a caller who wants the lines
# sets DEBUG, which is left alone).
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def framework_versions() -> dict:
    """Versions recorded in bundles and run headers."""
    return {"torch": torch.__version__, "lightning": lightning.__version__}


def configure_determinism(seed: int) -> dict:
    """Seed torch, force deterministic kernels, and take the thread count from OMP_NUM_THREADS.

    Safe to call repeatedly: every setting is idempotent. Returns the settings in
    force, for logs and report headers.
    """
    torch.manual_seed(int(seed))
    torch.use_deterministic_algorithms(True)
    count = threads_from_env(_THREAD_VARS)
    if count is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return {
        "backend": BACKEND_NAME,
        "seed": int(seed),
        "op_determinism": True,
        "intra_op_threads": str(torch.get_num_threads()),
        "inter_op_threads": str(torch.get_num_interop_threads()),
        **framework_versions(),
    }


@contextlib.contextmanager
def quiet_lightning():
    """Within the block Lightning's INFO lines are dropped (see above), and two warnings
    that do not apply here are ignored, each by its message: the deprecation of
    `isinstance(treespec, LeafSpec)` that Lightning 2.6.6's _pytree module triggers on
    torch 2.13 (a FutureWarning), and the advice to use DataLoader workers (the data is
    a few in-memory tensors; workers would only add process scheduling)."""
    raised = []
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.INFO):
            raised.append((logger, logger.level))
            logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
            warnings.filterwarnings("ignore", message=r"The '\w+' does not have many workers")
            yield
    finally:
        for logger, level in raised:
            logger.setLevel(level)
