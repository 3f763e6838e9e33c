"""The structured result every comparator returns, and its message helpers.

A Comparison is data first (so the report hub and `python -m parity diff` can
read every number) and a readable failure second: `message` is built as lines
and its first line always reads

    [<config_id>] stage <stage> <check> <metric>: <what was found>

so a failing pytest line, summary.md and the hub all name the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from parity.stages import STAGES

KINDS = ("exact", "allclose", "invariant", "reconstruction", "band", "error")
""""error" marks a check that could not run (a backend raised): it fails its stage."""

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass(frozen=True)
class Comparison:
    """One (config, stage, check, metric) verdict with everything needed to explain it."""

    config_id: str
    stage: str
    """One of parity.stages.STAGES."""
    check: str
    """What was compared with what: "tf~torch", "tf~golden", "torch~spec", ..."""
    metric: str
    """Name of the quantity checked, unique within (config, stage, check)."""
    passed: bool
    kind: str
    """One of KINDS."""
    measured: Mapping[str, float]
    """Numbers found: max_abs, mean_abs, median_abs, max_rel, n_bad, n_total, ..."""
    tolerance: Mapping | None
    """Ledger entry used (key, value, rtol, bound, provenance) plus the effective
    "limit" applied to measured[tolerance["measure"]]; None for exact checks."""
    worst: Mapping | None
    """Worst element: {"index": [...], "key": ..., "value_a": ..., "value_b": ...}."""
    message: str
    """Multi-line explanation; the first line is the headline."""
    extra: Mapping = field(default_factory=dict)
    """Series for plots (FRC curve, loss trajectories); never needed to judge pass/fail."""

    def __post_init__(self) -> None:
        if not isinstance(self.config_id, str) or not self.config_id:
            raise ValueError(f"Comparison.config_id must be a non-empty string, got {self.config_id!r}")
        if self.stage not in STAGES:
            raise ValueError(f"Comparison.stage {self.stage!r} is not one of {STAGES}")
        if self.kind not in KINDS:
            raise ValueError(f"Comparison.kind {self.kind!r} is not one of {KINDS}")
        if not isinstance(self.passed, (bool, np.bool_)):
            raise ValueError(f"Comparison.passed must be a bool, got {self.passed!r}")
        object.__setattr__(self, "passed", bool(self.passed))

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(config_id, stage, check, metric): how reports and diffs match comparisons."""
        return (self.config_id, self.stage, self.check, self.metric)

    @property
    def headline(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_dict(self) -> dict:
        """JSON-ready: numpy scalars become numbers, complex [re, im], NaN/inf strings."""
        return {
            "config_id": self.config_id, "stage": self.stage, "check": self.check,
            "metric": self.metric, "passed": self.passed, "kind": self.kind,
            "measured": to_jsonable(self.measured),
            "tolerance": to_jsonable(self.tolerance),
            "worst": to_jsonable(self.worst),
            "message": self.message,
            "extra": to_jsonable(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "Comparison":
        """Inverse of to_dict (complex values stay [re, im] lists)."""
        return cls(config_id=data["config_id"], stage=data["stage"], check=data["check"],
                   metric=data["metric"], passed=data["passed"], kind=data["kind"],
                   measured=from_jsonable(data.get("measured") or {}),
                   tolerance=from_jsonable(data.get("tolerance")),
                   worst=from_jsonable(data.get("worst")), message=data.get("message", ""),
                   extra=from_jsonable(data.get("extra") or {}))


def to_jsonable(value):
    """Plain JSON types only. Non-finite floats become "nan"/"inf"/"-inf" strings,
    because JSON has no NaN and results.json must stay readable by any parser."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, complex):
        return [to_jsonable(value.real), to_jsonable(value.imag)]
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, int):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a report: {value!r}")


def from_jsonable(value):
    """Turn the "nan"/"inf"/"-inf" strings of to_jsonable back into floats."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, Mapping):
        return {key: from_jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_jsonable(item) for item in value]
    return value


def assert_passed(comparisons: Iterable[Comparison]) -> None:
    """Raise one AssertionError holding the message of every failed comparison."""
    items = list(comparisons)
    if not items:
        raise AssertionError("no comparison was made: a check that compares nothing cannot pass")
    failed = [item for item in items if not item.passed]
    if failed:
        raise AssertionError("\n\n".join(item.message for item in failed))


# ---- message helpers shared by the comparators -------------------------------------------

def labels_of(check: str) -> tuple[str, str]:
    """"tf~torch" -> ("tf", "torch"): the names printed beside value_a and value_b."""
    left, sep, right = check.partition("~")
    return (left or "a", right or "b") if sep else (check or "a", "reference")


def headline(config_id: str, stage: str, check: str, metric: str, text: str) -> str:
    return f"[{config_id}] stage {stage} {check} {metric}: {text}"


def closing_line(config_id: str, check: str, key: str | None) -> str:
    """The last line of a failure: the command that regenerates, or where the bound is explained."""
    if "golden" in check:
        return (f"  regenerate: python -m parity regen --parity-config {config_id}"
                "  (only once the backends agree; see docs/tolerances.md)")
    if key:
        return f"  explain: see docs/tolerances.md (ledger key {key})"
    return "  explain: this check requires an exact match; see docs/tolerances.md"


def fmt_value(value) -> str:
    """An element value, short but exact enough to see the difference."""
    if isinstance(value, (complex, np.complexfloating)):
        return f"{value.real:.7g}{value.imag:+.7g}j"
    if isinstance(value, (float, np.floating)):
        return f"{value:.7g}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def fmt_error(value: float) -> str:
    return f"{value:.3e}"


def fmt_index(index) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "n/a"
