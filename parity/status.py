"""The words the harness writes into results: a stage cell's status and a note's kind.

Both are str enums, so they are written to JSON, compared with what a results.json holds and
printed as the plain strings below; code names them by member, never by string.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A (config, stage) cell of results.json (configs.<id>.stages)."""

    PASS = "pass"
    FAIL = "fail"
    KNOWN = "known"
    """Every failure is a known split of the profile's baseline: green, listed apart."""
    NA = "n/a"
    """Fewer than two backends can do the stage here (or its input has no producer): neither pass nor fail."""
    ADAPTER = "adapter error"
    """Its failures are checks that could not run because an adapter raised (it fell behind the code under
    test: an entry point moved, a signature changed): red, but not a split, so never the first divergence."""
    HARNESS = "harness error"
    """Its failures are checks the harness itself could not run (a ledger without the entry, a bug of ours)."""


class NoteKind(StrEnum):
    """What a StageNote (a fact beside a stage's comparisons, not a verdict) says."""

    NA = "n/a"
    """A backend lacks the stage (compared between the others); on a stage with no comparison the whole
    stage is n/a for the config, the note's text the reason."""
    SHARED = "shared"
    """Every backend runs one implementation here, so the stage cannot tell them apart."""
    OPTIONAL = "optional"
    """An optional output some backend does not give: compared only where both give it."""
    NATIVE = "native"
    """A pair without canonical weights: the stage compares what such a pair can share."""
    OWN_FIELD = "own field"
    """A backend's own config field that another backend lacks: not compared."""
    FIRST_SEEN = "first seen"
    """A split here that the config stage already showed (a default that carried forward)."""
    WARNING = "warning"
    """A warning the code under test or its adapter emitted during the stage (a DeprecationWarning from an API
    the adapter calls is the first sign the adapter will break)."""
    KINK = "kink"
    """Gradients that disagree at one batch and agree at the next (float32 rounding at a ReLU or max-pool)."""
    FINGERPRINT = "fingerprint"
    """The stage's golden was written on a machine whose fingerprint (device, ISA level, kernel variables,
    framework versions: parity.envinfo.fingerprint) differs from this run's; the note lists how."""
