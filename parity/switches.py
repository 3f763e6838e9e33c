"""Switches: flags of the code under test that select another implementation of some stages, and the
variants of a case that set them (profile.json "switches", and a case's "variants").

A Switch is an environment variable (`env`) or an adapter option (`option`, adapters.base.Adapter.options)
of the backends it names, with the stages it can affect and the values it is checked at. A case that names
it in "variants" gets one more case per value, id "<case id>+<switch>=<value>", which runs those stages
only (the others are n/a there, noted) with the switch set around every call of the backends it names:
the environment variable in os.environ, the option in the adapter's `switches` (Adapter.switched). The
case itself still runs with the switch as the environment leaves it. One switch per variant: a variant
sets one value of one switch, never a combination.

An environment variable takes effect only where the code under test reads it when called. One read at
import time cannot be switched per case; one read when a function is traced and compiled (a
tf.function) is read once per trace, which the adapter has to see to (its docstring says how).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from adapters.base import Switches
from parity.stages import STAGES

VARIANT_MARK = "+"
"""Between a case's id and its variant's label: "gs1-k4-poisson-n64+xla_translate=0"."""
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
"""A switch's name (it becomes part of case ids, golden folders and test ids)."""
VALUE = re.compile(r"[A-Za-z0-9_.-]+\Z")
"""A switch's value, as a string (environment variables are strings; an adapter parses its options)."""


@dataclass(frozen=True)
class Switch:
    """A flag of the code under test that selects another implementation of some stages."""

    name: str
    """Its label in variant ids ("<case id>+<name>=<value>"): a letter, then letters, digits, '_'."""
    backends: tuple[str, ...]
    """The backends (registered names) whose calls it is set around; the others run unswitched."""
    stages: tuple[str, ...]
    """The stages it can affect: its variant cases run these only."""
    values: tuple[str, ...]
    """The values it is checked at, one variant case each (strings: letters, digits, '_', '.', '-')."""
    env: str | None = None
    """An environment variable the code under test reads when called, set in os.environ around each call."""
    option: str | None = None
    """Or an option of those backends' adapters (Adapter.options), in Adapter.switches around each call."""

    def __post_init__(self):
        for name in ("backends", "stages", "values"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if not isinstance(self.name, str) or not NAME.match(self.name):
            problems.append(f"name {self.name!r}: a letter, then letters, digits or '_'")
        if (self.env is None) == (self.option is None):
            problems.append(f"exactly one of env and option, got env={self.env!r}, option={self.option!r}")
        for given in (self.env, self.option):
            if given is not None and (not isinstance(given, str) or not given.strip()):
                problems.append(f"env or option must be a non-empty string, got {given!r}")
        if not self.backends or not all(isinstance(b, str) and b for b in self.backends):
            problems.append(f"backends must name at least one backend, got {list(self.backends)!r}")
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if not self.stages or unknown:
            problems.append(f"stages must name stages among {', '.join(STAGES)}; got {list(self.stages)!r}")
        bad = [v for v in self.values if not isinstance(v, str) or not VALUE.match(v)]
        if not self.values or bad or len(set(self.values)) != len(self.values):
            problems.append(
                f"values must be distinct strings of letters, digits, '_', '.', '-'; got {list(self.values)!r}"
            )
        if problems:
            raise ValueError(f"switch {self.name!r}: " + "; ".join(problems))

    @property
    def what(self) -> str:
        """How it is set, in words: "env USE_XLA_TRANSLATE" or "option physics_forward_mode"."""
        return f"env {self.env}" if self.env is not None else f"option {self.option}"


@dataclass(frozen=True)
class Variant:
    """One value of one switch, set on a case (ParityCase.variant)."""

    switch: Switch
    value: str

    def __post_init__(self):
        if self.value not in self.switch.values:
            raise ValueError(f"switch {self.switch.name!r} has no value {self.value!r}; values: {self.switch.values}")

    @property
    def label(self) -> str:
        """ "<switch>=<value>", the part of the case id after VARIANT_MARK."""
        return f"{self.switch.name}={self.value}"

    def settings(self, backend: str) -> Switches | None:
        """What `backend`'s calls are switched to; None for a backend the switch does not name."""
        if backend not in self.switch.backends:
            return None
        if self.switch.env is not None:
            return Switches(env=MappingProxyType({self.switch.env: self.value}))
        return Switches(options=MappingProxyType({self.switch.option: self.value}))

    def skip_reason(self, stage: str, backends) -> str | None:
        """Why `stage` does not run on this variant among `backends` (the run's), or None where it does."""
        if stage not in self.switch.stages:
            return (
                f"stage {stage} n/a: variant {self.label} runs the stages switch {self.switch.name} can "
                f"affect only ({', '.join(self.switch.stages)})"
            )
        if not set(self.switch.backends) & set(backends):
            return (
                f"stage {stage} n/a: switch {self.switch.name} ({self.switch.what}) is set on "
                f"{', '.join(self.switch.backends)}, none of this run's backends"
            )
        return None
