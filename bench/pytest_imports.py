"""pytest plugin used by `bench.run parity`: times the framework import of every process that runs cases.

Loaded with `-p bench.pytest_imports` and BENCH_IMPORT_DIR set. In each xdist
worker (or the single process of -n 0) it imports tensorflow, keras, torch and
lightning at configure time and writes the seconds to BENCH_IMPORT_DIR/<worker>.json.
The adapters import these lazily inside their first stage anyway, so this only moves
the import out of the backend-compute timings (parity/session.py) into a figure of its own.
The xdist controller, which never imports a framework, is left alone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FRAMEWORKS = ("tensorflow", "keras", "torch", "lightning")


def pytest_configure(config):
    folder = os.environ.get("BENCH_IMPORT_DIR")
    if not folder:
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None and config.getoption("numprocesses", default=None):
        return  # the xdist controller
    worker = workerinput["workerid"] if workerinput else "main"
    seconds = {}
    for name in FRAMEWORKS:
        start = time.perf_counter()
        __import__(name)
        seconds[name] = time.perf_counter() - start
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{worker}.json").write_text(
        json.dumps({"seconds": seconds, "total_s": sum(seconds.values()), "pid": os.getpid()})
    )
