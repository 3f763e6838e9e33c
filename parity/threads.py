"""Thread and logging settings every parity process sets before a framework loads.

One thread per op pool: results do not depend on the machine (Keras losses
change in the last bit with the thread count), and xdist workers do not fight
over cores. setdefault: a caller who sets a variable on purpose keeps it.
"""

import os

PINNED = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def pin_threads() -> None:
    for name, value in PINNED.items():
        os.environ.setdefault(name, value)
