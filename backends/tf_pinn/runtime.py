"""TensorFlow runtime settings: backend name, framework versions, determinism.

Counterpart of backends/torch_pinn/runtime.py. Nothing here runs at import
time; `configure_determinism` is called by `train` and may be called again.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from backends.common.threads import threads_from_env

BACKEND_NAME = "tf_pinn"

# Environment variables that fix thread counts, in the order they are consulted.
_INTRA_VARS = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")
_INTER_VARS = ("TF_NUM_INTEROP_THREADS",)


def framework_versions() -> dict:
    """Versions recorded in bundles and report headers."""
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def _set_threads(setter, count: int | None) -> str:
    """Apply a thread count; once TF's runtime is up it keeps what it read from the same env vars."""
    if count is None:
        return "framework default"
    try:
        setter(count)
        return str(count)
    except RuntimeError:
        # TF reads TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS itself when
        # its context starts, so an already started runtime runs with them.
        return f"{count} (from the environment at runtime start)"


def configure_determinism(seed: int) -> dict:
    """Seed every generator, switch on deterministic kernels, fix thread counts.

    Safe to call more than once. Returns the settings in force, for logs and report headers.
    """
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    intra = _set_threads(tf.config.threading.set_intra_op_parallelism_threads, threads_from_env(_INTRA_VARS))
    inter = _set_threads(tf.config.threading.set_inter_op_parallelism_threads, threads_from_env(_INTER_VARS))
    return {
        "backend": BACKEND_NAME,
        "seed": int(seed),
        "op_determinism": True,
        "intra_op_threads": intra,
        "inter_op_threads": inter,
        **framework_versions(),
    }
