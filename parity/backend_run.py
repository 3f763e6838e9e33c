"""One backend's calls on one case: timed, checked on arrival, input-free ones computed once.

The stage modules (parity/stages/) say which adapter method a stage calls with which inputs, and
which keys its output must have (`OutputKeys`); a BackendRun makes the call. Outputs are checked as
they come back: a missing, extra or mistyped key is an OutputError naming it, which the stage
reports as a failed comparison (metric "outputs"), never a crash.
"""

from __future__ import annotations

import contextlib
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from adapters.base import Adapter


@dataclass(frozen=True)
class OutputKeys:
    """The keys of one adapter method's output mapping, each with the kind of value it must be."""

    required: Mapping[str, str]
    """key -> kind ("array": numpy.ndarray, "number": a real number, "mapping", "any": not None)."""
    optional: Mapping[str, str] = field(default_factory=dict)
    """Keys a backend may leave out: compared where both backends give them, noted otherwise."""


ARRAY, NUMBER, MAPPING, ANY = "array", "number", "mapping", "any"


class OutputError(ValueError):
    """A backend's output lacks a key, has one too many, or a value of the wrong kind."""


def _kind_ok(value, kind: str) -> bool:
    if kind == ARRAY:
        return isinstance(value, np.ndarray)
    if kind == NUMBER:
        return isinstance(value, (numbers.Real, np.ndarray)) and not isinstance(value, bool) and np.ndim(value) == 0
    if kind == ANY:
        return value is not None
    return isinstance(value, Mapping)


def check_outputs(backend: str, method: str, out, spec: OutputKeys):
    """`out` itself when it has `spec`'s keys, each of the right kind; else OutputError naming every
    missing, extra or mistyped key and what was expected."""
    expected = {**spec.required, **spec.optional}
    if not isinstance(out, Mapping):
        raise OutputError(
            f"{backend}.{method}: returned {type(out).__name__}, expected a mapping with keys "
            f"{sorted(spec.required)}" + (f" (optional {sorted(spec.optional)})" if spec.optional else "")
        )
    problems = [f"missing key {key!r} (expected {kind})" for key, kind in spec.required.items() if key not in out]
    problems += [f"extra key {key!r} (expected only {sorted(expected)})" for key in out if key not in expected]
    problems += [
        f"key {key!r} is {type(out[key]).__name__}, expected {kind}"
        for key, kind in expected.items()
        if key in out and not _kind_ok(out[key], kind)
    ]
    if problems:
        raise OutputError(f"{backend}.{method}: " + "; ".join(problems))
    return out


@dataclass
class BackendRun:
    """One backend's calls on one case (through its adapter), with its compute time per stage.

    `call` runs an adapter method every time it is asked; `once` keeps an input-free call's result
    (config, data, groups, scales, ...) for the case, so each backend computes it at most once per
    worker. audit.CachedRun also keeps the calls that take inputs, per distinct input."""

    adapter: Adapter
    inputs: object  # parity.case_context.CanonicalInputs
    timings: dict = field(default_factory=dict)  # stage -> seconds of backend compute
    _kept: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.adapter.name

    def call(self, stage: str, method: str, *args, outputs: OutputKeys | None = None):
        """adapter.<method>(*args), timed under `stage`; its output checked against `outputs` when given."""
        out = self.timed(stage, getattr(self.adapter, method), *args)
        return out if outputs is None else check_outputs(self.name, method, out, outputs)

    def timed(self, stage: str, fn, *args):
        """fn(*args), its time added to the backend's compute time of `stage`; on a variant case whose switch
        names this backend, with the switch set (Adapter.switched) for the call."""
        start = time.perf_counter()
        try:
            with self.switched():
                return fn(*args)
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def switched(self):
        """The context this backend's calls run in: its adapter switched to what the case's variant sets for
        it (parity.switches.Variant.settings), or nothing to do."""
        variant = self.inputs.case.variant
        settings = None if variant is None else variant.settings(self.name)
        return contextlib.nullcontext() if settings is None else self.adapter.switched(settings)

    def once(self, key: str, compute: Callable[[], object]):
        """compute() the first time `key` is asked for on this run, its result after (an exception is not
        kept: the next ask tries again, as a cached_property would)."""
        if key not in self._kept:
            self._kept[key] = compute()
        return self._kept[key]
