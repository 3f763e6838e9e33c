"""The tolerance ledger: every tolerance the suite uses, with where it came from.

Tests never write a tolerance literal; they ask `tolerance(stage, metric,
dtype)`. Each ledger entry (parity/tolerances.json) records the largest error
measured over several seeds, the headroom factor applied, the environment it
was measured in and the date, so a reader can tell a measured bound from a
guess. Entries not measured yet carry `"provisional": true` and
`measured_max: null`. Policy: docs/tolerances.md.

Tolerance classes (parity.envinfo.TOLERANCE_CLASSES, "cpu" and "gpu"): an entry's own fields are the
"cpu" class; an optional `"classes": {"gpu": {...}}` holds another class's value and provenance, so a GPU
class is added without touching the CPU entries. tolerance() picks the class of the running device
(parity.envinfo.device, PINN_PARITY_DEVICE) unless told; a class without its own entry falls back to the
cpu fields, and the Tolerance says which class it is (`tolerance_class`).
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
from parity.envinfo import DEFAULT_TOLERANCE_CLASS, TOLERANCE_CLASSES, device
from parity.envinfo import tolerance_class as class_of_device
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
INHERITED_FIELDS = ("stage", "metric", "dtype", "bound")
"""A class entry (`classes.<class>`) takes these from its entry and may not restate them."""
CLASS_FIELDS = tuple(name for name in REQUIRED_FIELDS if name not in INHERITED_FIELDS) + ("provisional", "note")


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
    tolerance_class: str = DEFAULT_TOLERANCE_CLASS
    """The class whose value this is: "cpu" (the entry's own fields) or one of its `classes`."""

    def summary(self) -> str:
        """One line of provenance for failure messages and reports."""
        versions = self.environment.get("versions", {})
        env = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        threads = self.environment.get("threads", "?")
        where = f"{env}; {self.environment.get('platform', '?')}; threads {threads}"
        if self.tolerance_class != DEFAULT_TOLERANCE_CLASS:  # the cpu class is every entry's own
            where = f"class {self.tolerance_class}; {where}"
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
            "class": self.tolerance_class,
            "provenance": self.summary(),
        }


@dataclass(frozen=True)
class Ledger:
    """All entries of one ledger file."""

    path: Path
    entries: Mapping[str, Tolerance]
    """key -> the entry's own (cpu class) tolerance."""
    classes: Mapping[str, Mapping[str, Tolerance]] = field(default_factory=dict)
    """key -> {class: tolerance} for the entries with a `classes` object."""

    def resolve(self, key: str, tolerance_class: str) -> Tolerance:
        """The entry `key` (present) for `tolerance_class`: its class entry, else its own (cpu) fields."""
        return self.classes.get(key, {}).get(tolerance_class, self.entries[key])


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
    try:
        number = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else math.nan
    except OverflowError:  # an integer past float's range
        number = math.inf
    if not math.isfinite(number):
        raise LedgerError(f"ledger entry {key!r}: {name} must be a finite number, got {raw!r}")
    return number


def _entry(key: str, raw, tolerance_class: str = DEFAULT_TOLERANCE_CLASS) -> Tolerance:
    if not isinstance(raw, Mapping):
        raise LedgerError(f"ledger entry {key!r} must be an object")
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise LedgerError(f"ledger entry {key!r} lacks provenance field(s): {', '.join(missing)}")
    env = raw["environment"]
    if not isinstance(env, Mapping) or any(name not in env for name in REQUIRED_ENVIRONMENT):
        raise LedgerError(f"ledger entry {key!r}: environment must hold {', '.join(REQUIRED_ENVIRONMENT)}")
    _check_fingerprint(key, env.get("fingerprint"), tolerance_class)
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
        tolerance_class=tolerance_class,
    )


def _check_fingerprint(key: str, fingerprint, tolerance_class: str) -> None:
    """environment.fingerprint is optional (entries measured before fingerprints lack it); when present it
    must be an object whose tolerance_class is the class the entry is filed under."""
    if fingerprint is None:
        return
    if not isinstance(fingerprint, Mapping):
        raise LedgerError(f"ledger entry {key!r}: environment.fingerprint must be an object")
    measured_class = fingerprint.get("tolerance_class")
    if measured_class != tolerance_class:
        where = "its own fields" if tolerance_class == DEFAULT_TOLERANCE_CLASS else f"classes.{tolerance_class}"
        raise LedgerError(
            f"ledger entry {key!r}: {where} (class {tolerance_class!r}) were measured on a machine of class "
            f"{measured_class!r} (environment.fingerprint.tolerance_class); file them under that class"
        )


def _class_entries(key: str, raw: Mapping) -> dict[str, Tolerance]:
    """An entry's optional `classes` object: {class: {value, rtol, measured_max, seeds, headroom, environment,
    date, provisional?, note?}}, each validated like an entry, stage/metric/dtype/bound taken from the entry."""
    classes = raw.get("classes", {})
    if not isinstance(classes, Mapping):
        raise LedgerError(f"ledger entry {key!r}: classes must be an object keyed by tolerance class")
    out = {}
    others = [name for name in TOLERANCE_CLASSES if name != DEFAULT_TOLERANCE_CLASS]
    for name, fields in classes.items():
        if name == DEFAULT_TOLERANCE_CLASS:
            raise LedgerError(
                f"ledger entry {key!r}: classes.{name}: the entry's own fields are class {name!r}; "
                f"classes holds only {', '.join(others)}"
            )
        if name not in TOLERANCE_CLASSES:
            raise LedgerError(
                f"ledger entry {key!r}: unknown tolerance class {name!r} in classes (known: {', '.join(others)})"
            )
        if not isinstance(fields, Mapping):
            raise LedgerError(f"ledger entry {key!r}: classes.{name} must be an object")
        restated = [f for f in fields if f in INHERITED_FIELDS]
        unknown = [f for f in fields if f not in CLASS_FIELDS and f not in INHERITED_FIELDS]
        if restated or unknown:
            raise LedgerError(
                f"ledger entry {key!r}: classes.{name} may hold only {', '.join(CLASS_FIELDS)}"
                f" ({', '.join(restated + unknown)} given; {', '.join(INHERITED_FIELDS)} come from the entry)"
            )
        merged = {**{f: raw[f] for f in INHERITED_FIELDS if f in raw}, **fields}
        try:
            out[name] = _entry(key, merged, name)
        except LedgerError as error:
            text = str(error).replace(f"ledger entry {key!r}", f"ledger entry {key!r} classes.{name}", 1)
            raise LedgerError(text) from None
    return out


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
    try:
        parsed = {key: _entry(key, raw) for key, raw in entries.items()}
        classes = {key: found for key, raw in entries.items() if (found := _class_entries(key, raw))}
        return Ledger(path=path, entries=parsed, classes=classes)
    except LedgerError as error:
        raise LedgerError(f"{path}: {error}") from None


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


def running_class() -> str:
    """The tolerance class of this process's device (PINN_PARITY_DEVICE; "cpu" when unset)."""
    try:
        return class_of_device(device())
    except ValueError as error:
        raise LedgerError(str(error)) from None


def tolerance(
    stage: str, metric: str, dtype, *, ledger: Ledger | None = None, tolerance_class: str | None = None
) -> Tolerance:
    """The entry for (stage, metric, dtype) of `ledger`, or of the active ledger (use_ledger), for
    `tolerance_class` (default: the running device's, running_class()); LedgerError when there is none."""
    wanted = running_class() if tolerance_class is None else tolerance_class
    if wanted not in TOLERANCE_CLASSES:
        raise LedgerError(f"unknown tolerance class {wanted!r} (known: {', '.join(TOLERANCE_CLASSES)})")
    book = ledger if ledger is not None else load_ledger(_active_ledger)
    key = ledger_key(stage, metric, dtype)
    if key not in book.entries:
        same_stage = sorted(k for k in book.entries if k.startswith(f"{stage}."))
        known = ", ".join(same_stage) if same_stage else "none"
        raise LedgerError(
            f"no tolerance {key!r} in {book.path} (entries for stage "
            f"{stage!r}: {known}); measure it and add it, see docs/tolerances.md"
        )
    return book.resolve(key, wanted)


def save_ledger_document(document: Mapping, path: str | os.PathLike = DEFAULT_LEDGER_PATH) -> None:
    """Validate, then write a ledger atomically (`python -m parity tolerances --measure --write`)."""
    target = Path(path)
    parse_ledger(document, target)
    atomic_write_json(target, document, sort_keys=False)
