"""Keep the garbage collector off the frameworks' objects.

TensorFlow, Keras, torch and Lightning leave millions of long-lived objects (modules, classes, op
registries) in a worker. Every full collection walks all of them: measured on one case of the bundled
profile, 19 full collections cost 8 s of a 75 s run. Once a stage has imported new modules, one
collection clears its garbage and gc.freeze() moves what survives out of the collector's reach;
objects created later are still collected as usual.
"""

from __future__ import annotations

import gc
import sys

_NEW_MODULES = 50  # fewer new modules than this: no framework arrived, nothing worth a collection
_modules_at_freeze = 0


def freeze_if_imported() -> bool:
    """Collect and freeze when the modules loaded since the last freeze are many; True if it did."""
    global _modules_at_freeze
    loaded = len(sys.modules)
    if loaded < _modules_at_freeze + _NEW_MODULES:
        return False
    gc.collect()
    gc.freeze()
    _modules_at_freeze = loaded
    return True
