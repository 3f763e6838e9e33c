"""The tolerance ledger: every tolerance the suite uses, with where it came from.

Tests never write a tolerance literal; they ask `tolerance(stage, metric,
dtype)`. Each ledger entry (parity/tolerances.json) records the largest error
measured over several seeds, the headroom factor applied, the environment it
was measured in and the date, so a reader can tell a measured bound from a
guess. Entries not measured yet carry `"provisional": true` and
`measured_max: null`. Policy: docs/tolerances.md.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common.fileio import VersionedJsonError, atomic_write_json, read_versioned_json
from parity.stages import STAGES

LEDGER_SCHEMA = "pinn-parity-tolerances"
LEDGER_SCHEMA_VERSION = 1
DEFAULT_LEDGER_PATH = Path(__file__).resolve().with_name("tolerances.json")

REQUIRED_FIELDS = (
    "stage",
    "metric",
    "dtype",
    "value",
    "rtol",
    "measured_max",
    "seeds",
    "headroom",
    "environment",
    "date",
)
REQUIRED_ENVIRONMENT = ("versions", "platform", "threads")
BOUNDS = ("upper", "lower")


class LedgerError(ValueError):
    """The ledger file is malformed, an entry lacks provenance, or a key is unknown."""


@dataclass(frozen=True)
class Tolerance:
    """One ledger entry, resolved."""

    key: str
    """Ledger key "stage.metric.dtype", e.g. "translation.max_abs.float32"."""
    stage: str
    metric: str
    dtype: str
    """Precision the entry applies to; complex64 data uses the float32 entries."""
    value: float
    """atol for allclose checks; the limit itself for band and reconstruction metrics."""
    rtol: float
    """Relative part of an allclose check (0 where it does not apply)."""
    bound: str
    """"upper": measured must be <= value; "lower" (SSIM, FRC): measured must be >= value."""
    measured_max: float | None
    """Worst error measured over `seeds` (lowest value for lower bounds); None if never measured."""
    seeds: tuple[int, ...]
    headroom: float
    """Factor between measured_max and value."""
    environment: Mapping = field(default_factory=dict)
    """versions, platform and thread settings of the measurement."""
    date: str = ""
    provisional: bool = False
    """True while the value is a placeholder, not a measurement."""
    note: str = ""

    def summary(self) -> str:
        """One line of provenance for failure messages and reports."""
        versions = self.environment.get("versions", {})
        env = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        threads = self.environment.get("threads", "?")
        where = f"{env}; {self.environment.get('platform', '?')}; threads {threads}"
        if self.provisional or self.measured_max is None:
            return f"PROVISIONAL placeholder, not measured ({where}; {self.date})"
        seeds = ",".join(str(seed) for seed in self.seeds)
        return (
            f"measured_max {self.measured_max:.3g} over seeds [{seeds}] x headroom "
            f"{self.headroom:g} ({where}; {self.date})"
        )

    def to_dict(self) -> dict:
        """What a Comparison records about the tolerance it used."""
        return {
            "key": self.key,
            "value": self.value,
            "rtol": self.rtol,
            "bound": self.bound,
            "provisional": self.provisional,
            "provenance": self.summary(),
        }


@dataclass(frozen=True)
class Ledger:
    """All entries of one ledger file."""

    path: Path
    entries: Mapping[str, Tolerance]


def precision_name(dtype) -> str:
    """The ledger's dtype word: complex types map to their real part's precision."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise LedgerError(f"not a numpy dtype: {dtype!r}") from None
    if resolved.kind == "c":
        resolved = np.dtype(f"float{resolved.itemsize * 4}")
    return resolved.name


def ledger_key(stage: str, metric: str, dtype) -> str:
    return f"{stage}.{metric}.{precision_name(dtype)}"


def _number(key: str, name: str, raw, *, allow_none: bool = False) -> float | None:
    if raw is None and allow_none:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise LedgerError(f"ledger entry {key!r}: {name} must be a finite number, got {raw!r}")
    return float(raw)


def _entry(key: str, raw) -> Tolerance:
    if not isinstance(raw, Mapping):
        raise LedgerError(f"ledger entry {key!r} must be an object")
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise LedgerError(f"ledger entry {key!r} lacks provenance field(s): {', '.join(missing)}")
    env = raw["environment"]
    if not isinstance(env, Mapping) or any(name not in env for name in REQUIRED_ENVIRONMENT):
        raise LedgerError(f"ledger entry {key!r}: environment must hold {', '.join(REQUIRED_ENVIRONMENT)}")
    stage, metric, dtype = raw["stage"], raw["metric"], raw["dtype"]
    if stage not in STAGES:
        raise LedgerError(f"ledger entry {key!r}: unknown stage {stage!r}")
    if key != f"{stage}.{metric}.{dtype}":
        raise LedgerError(f"ledger entry {key!r}: key must be '{stage}.{metric}.{dtype}'")
    value = _number(key, "value", raw["value"])
    rtol = _number(key, "rtol", raw["rtol"])
    headroom = _number(key, "headroom", raw["headroom"])
    measured = _number(key, "measured_max", raw["measured_max"], allow_none=True)
    if value < 0 or rtol < 0 or headroom <= 0:
        raise LedgerError(f"ledger entry {key!r}: value and rtol must be >= 0, headroom > 0")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise LedgerError(f"ledger entry {key!r}: seeds must be a list of integers")
    provisional = raw.get("provisional", False)
    if not isinstance(provisional, bool):
        raise LedgerError(f"ledger entry {key!r}: provisional must be true or false")
    # A bound without a measurement behind it must say so, or it would read as measured.
    if (measured is None or not seeds) and not provisional:
        raise LedgerError(
            f'ledger entry {key!r}: measured_max and seeds are required unless the entry is marked "provisional": true'
        )
    bound = raw.get("bound", "upper")
    if bound not in BOUNDS:
        raise LedgerError(f"ledger entry {key!r}: bound must be one of {BOUNDS}, got {bound!r}")
    if not isinstance(raw["date"], str) or not raw["date"]:
        raise LedgerError(f"ledger entry {key!r}: date must be an ISO date string")
    return Tolerance(
        key=key,
        stage=stage,
        metric=metric,
        dtype=dtype,
        value=value,
        rtol=rtol,
        bound=bound,
        measured_max=measured,
        seeds=tuple(seeds),
        headroom=headroom,
        environment=dict(env),
        date=raw["date"],
        provisional=provisional,
        note=str(raw.get("note", "")),
    )


def parse_ledger(document, path: Path) -> Ledger:
    """Validate a parsed ledger document; LedgerError names the key at fault."""
    if not isinstance(document, Mapping):
        raise LedgerError(f"{path}: a ledger is a JSON object")
    if (document.get("schema"), document.get("schema_version")) != (LEDGER_SCHEMA, LEDGER_SCHEMA_VERSION):
        raise LedgerError(
            f"{path}: expected schema {LEDGER_SCHEMA!r} version "
            f"{LEDGER_SCHEMA_VERSION}, got {document.get('schema')!r} "
            f"version {document.get('schema_version')!r}"
        )
    entries = document.get("entries")
    if not isinstance(entries, Mapping):
        raise LedgerError(f"{path}: 'entries' must be an object keyed stage.metric.dtype")
    return Ledger(path=path, entries={key: _entry(key, raw) for key, raw in entries.items()})


def read_ledger_document(path: str | os.PathLike = DEFAULT_LEDGER_PATH) -> dict:
    """The ledger file as a JSON object, its schema and version checked; LedgerError otherwise."""
    try:
        return read_versioned_json(path, kind=LEDGER_SCHEMA, version=LEDGER_SCHEMA_VERSION, what="tolerance ledger")
    except VersionedJsonError as error:
        raise LedgerError(str(error)) from None


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> Ledger:
    # Keyed on mtime and size so an edited ledger is re-read within one process.
    return parse_ledger(read_ledger_document(path), Path(path))


def load_ledger(path: str | os.PathLike = DEFAULT_LEDGER_PATH) -> Ledger:
    """Read and validate a ledger file (cached while the file is unchanged)."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise LedgerError(f"no tolerance ledger at {resolved}") from None
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size)


_active_ledger = DEFAULT_LEDGER_PATH
"""The ledger tolerance() reads: the active profile's (parity.profiles), set once per process by
the suite's plugin (use_ledger) before any check runs."""


def use_ledger(path: str | os.PathLike) -> Path:
    """Make `path` the ledger tolerance() reads in this process (validated now); returns the previous one."""
    global _active_ledger
    load_ledger(path)
    previous, _active_ledger = _active_ledger, Path(path)
    return previous


def tolerance(stage: str, metric: str, dtype, *, ledger: Ledger | None = None) -> Tolerance:
    """The entry for (stage, metric, dtype) of `ledger`, or of the active ledger (use_ledger);
    LedgerError when there is none."""
    book = ledger if ledger is not None else load_ledger(_active_ledger)
    key = ledger_key(stage, metric, dtype)
    if key not in book.entries:
        same_stage = sorted(k for k in book.entries if k.startswith(f"{stage}."))
        known = ", ".join(same_stage) if same_stage else "none"
        raise LedgerError(
            f"no tolerance {key!r} in {book.path} (entries for stage "
            f"{stage!r}: {known}); measure it and add it, see docs/tolerances.md"
        )
    return book.entries[key]


def save_ledger_document(document: Mapping, path: str | os.PathLike = DEFAULT_LEDGER_PATH) -> None:
    """Validate, then write a ledger atomically (`python -m parity tolerances --measure --write`)."""
    target = Path(path)
    parse_ledger(document, target)
    atomic_write_json(target, document, sort_keys=False)
