"""Thread and logging settings every process of the project sets before a framework loads.

One thread per op pool: results do not depend on the machine (Keras losses
change in the last bit with the thread count), and parallel test workers do not
fight over cores. oneDNN off, so TensorFlow computes the same way in a test, a
benchmark and a command line. Framework-free: it must run before the import.
"""

import os

FRAMEWORK_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def pin_threads(environ=os.environ) -> None:
    """Set FRAMEWORK_ENV where unset: a caller who sets a variable on purpose keeps it."""
    for name, value in FRAMEWORK_ENV.items():
        environ.setdefault(name, value)


def threads_from_env(names, environ=os.environ) -> int | None:
    """The thread count of the first of `names` that is set (None if none is); ValueError naming a bad one."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            try:
                count = int(value)
            except ValueError as exc:
                raise ValueError(f"environment variable {name}={value!r} must be an integer thread count") from exc
            if count < 1:
                raise ValueError(f"environment variable {name}={value!r} must be >= 1")
            return count
    return None
