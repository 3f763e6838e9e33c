"""Where an error was raised: in the code under test, in the adapter, or in the harness.

A check that could not run is a failure, but not always a split: after a refactor of the code under
test, an adapter that calls an entry point which moved or changed its signature raises in the adapter
(the adapter fell behind), while a crash inside the code under test is the code's own. The innermost
frame of the traceback that lies in one of the three decides; frames in other libraries (numpy,
TensorFlow, Keras) count for whoever called them. The full traceback is kept beside the verdict.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import parity


class Origin(StrEnum):
    """Who raised: the three places a check that could not run can fail in."""

    UPSTREAM = "code under test"
    ADAPTER = "adapter"
    HARNESS = "harness"


UNKNOWN = "unknown"
"""The origin of an exception that carries no traceback."""

HARNESS_MODULES = ("adapters.base", "adapters.registry")
"""Of the adapters package, the interface and the registry are the harness's; the adapters in it are adapters."""


def _module_paths(name: str) -> list[str]:
    """The file, or every folder of the package, of module `name`, found without running it: the code under
    test may be the very thing that fails to import. None found: no paths."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return []
    locations = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.origin else [])
    return [os.path.realpath(location) for location in locations]


@dataclass(frozen=True)
class Places:
    """The files of the code under test and of the adapters of a run, from their module names."""

    upstream: tuple[str, ...]
    adapter: tuple[str, ...]
    harness: tuple[str, ...]

    @classmethod
    def of(cls, adapters: Iterable) -> Places:
        """The places of these adapters: each one's module (a plugin: its whole package) and its
        `code_under_test` modules; the harness is the parity package and adapters.base/registry."""
        upstream, adapter = [], []
        for found in adapters:
            module = type(found).__module__
            top = module.split(".")[0]
            adapter += _module_paths(module if top == "adapters" else top)
            for name in found.code_under_test:
                upstream += _module_paths(name)
        harness = [os.path.realpath(Path(parity.__file__).parent)]
        for name in HARNESS_MODULES:
            harness += _module_paths(name)
        return cls(tuple(upstream), tuple(adapter), tuple(harness))

    def where(self, filename: str) -> Origin | None:
        path = os.path.realpath(filename)

        def inside(roots):
            return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)

        # A package of the code under test may sit inside an adapter's folder (the bundled backends do not,
        # but a team's may): the narrower claim, code under test, is checked first.
        for origin, roots in (
            (Origin.UPSTREAM, self.upstream),
            (Origin.ADAPTER, self.adapter),
            (Origin.HARNESS, self.harness),
        ):
            if inside(roots):
                return origin
        return None


def _innermost(exc: BaseException, places: Places) -> tuple[Origin | None, traceback.FrameSummary | None]:
    """The origin of the innermost frame that lies in a known place; (None, None) for an exception that was
    never raised (no traceback: nothing says where it came from)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    for frame in reversed(frames):
        origin = places.where(frame.filename)
        if origin is not None:
            return origin, frame
    return (Origin.HARNESS, frames[-1]) if frames else (None, None)


def describe(exc: BaseException, places: Places, *, blame: Origin | None = None) -> dict:
    """{"type", "origin", "raised_at", "traceback"} of `exc`. `blame` overrides the frame rule where the
    harness knows better: a mistyped output is the adapter's, though the harness's check raised it."""
    cause = exc
    origin, frame = _innermost(cause, places)
    while origin == Origin.HARNESS and cause.__cause__ is not None:  # the harness re-raising another's error
        cause = cause.__cause__  # (an upstream stage's failure): classified where that one was raised
        origin, frame = _innermost(cause, places)
    raised_at = f"{short_path(frame.filename)}:{frame.lineno} in {frame.name}" if frame is not None else UNKNOWN
    return {
        "type": type(cause).__name__,
        "origin": str(blame or origin or UNKNOWN),
        "raised_at": raised_at,
        "traceback": "".join(traceback.format_exception(exc)).rstrip(),
    }


def short_path(filename: str) -> str:
    """A file name as a reader finds it: relative to its site-packages or to the current folder."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return str(Path(*parts[parts.index(marker) + 1 :]))
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename
