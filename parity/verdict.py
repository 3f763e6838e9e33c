"""The structured result every comparator returns, its check label, and message helpers.

A Comparison is data first (so the report hub and `python -m parity diff` can
read every number) and a readable failure second: `message` is built as lines
and its first line always reads

    [<config_id>] stage <stage> <check> <metric>: <what was found>

so a failing pytest line, summary.md and the hub all name the same thing.

What was compared with what is a `Check` (left, right, variant, via): code reads
its fields; it becomes the familiar "torch_pinn~tf_pinn", "tf_pinn~spec[inference]",
"torch_pinn(tf_pinn bundle)~tf_pinn" only in messages and reports (`str(check)`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from parity.stages import STAGES

KINDS = ("exact", "allclose", "invariant", "reconstruction", "band", "error", "refusal")
""""error" marks a check that could not run (a backend raised): it fails its stage. "refusal" is such an error
the profile accepts as a legitimate answer (a backend refusing another's bundle cleanly): it passes."""

COULD_NOT_RUN = "could not run: "
"""What a check that could not run says after its headline's metric: the error's text follows."""


def error_text(headline: str) -> str:
    """The error's text in the headline of a check that could not run ("" for any other)."""
    return headline.partition(COULD_NOT_RUN)[2]


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

SPEC = "spec"
"""Check.right of a comparison with what the contract says (docs/spec.md)."""
REFEREE = "referee"
"""Check.right of a comparison with the float64 referee (adapters/referee.py; also its registry name)."""
GOLDEN = "golden"
"""Check.right of a comparison with the stored golden."""
GIVEN = "given"
"""Check.right of a comparison of the config fields a case sets (overrides, command-line flags) with the
values set: no contract is needed to say a setting must be honoured, so it counts for every profile."""


def referee_distance(kind: str, measured: Mapping) -> float:
    """How far a Check(backend, REFEREE) comparison found the backend: max |error| of an
    allclose, the number of differing elements of an exact check, infinite when it could not
    compare at all. The farther of two backends is the one to fix first."""
    if kind == "allclose" and isinstance(measured.get("max_abs"), (int, float)):
        return abs(float(measured["max_abs"]))
    if kind == "exact" and isinstance(measured.get("n_bad"), (int, float)):
        return float(measured["n_bad"])
    return math.inf


@dataclass(frozen=True)
class Check:
    """What a comparison compares with what. Formatted "left~right" only for people."""

    left: str
    """The side judged (value_a): a backend name; alone (right empty) when nothing could be
    compared: the backend that raised, the reference that could not feed a stage, "ledger"."""
    right: str = ""
    """What it is judged against (value_b, the side relative tolerances scale with): the
    reference backend, SPEC, REFEREE or GOLDEN; empty when nothing was compared."""
    variant: str = ""
    """A second form of the same check, e.g. "inference" grouping; printed as "[inference]"."""
    via: str = ""
    """Bundle stage: the backend whose bundle `left` loaded ("torch_pinn(tf_pinn bundle)~tf_pinn")."""

    def __post_init__(self) -> None:
        for name in ("left", "right", "variant", "via"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"Check.{name} must be a string, got {getattr(self, name)!r}")
        if not self.left:
            raise ValueError("Check.left must name what was checked")

    def __str__(self) -> str:
        text = self.side_a + (f"~{self.right}" if self.right else "")
        return text + (f"[{self.variant}]" if self.variant else "")

    @property
    def side_a(self) -> str:
        """The name printed beside value_a."""
        return f"{self.left}({self.via} bundle)" if self.via else self.left

    @property
    def side_b(self) -> str:
        """The name printed beside value_b."""
        return self.right or "reference"

    @property
    def slug(self) -> str:
        """For file names: the parts joined by "-" ("tf_pinn-torch_pinn")."""
        return "-".join(part for part in (self.left, self.via, self.right, self.variant) if part)

    def renamed(self, old: str, new: str) -> Check:
        """Every side named `old` renamed `new` (the audit matches a mutant's checks with the control's)."""
        return Check(
            *(new if part == old else part for part in (self.left, self.right)),
            variant=self.variant,
            via=new if self.via == old else self.via,
        )

    def to_dict(self) -> dict:
        return {"left": self.left, "right": self.right, "variant": self.variant, "via": self.via}

    @classmethod
    def from_dict(cls, data: Mapping) -> Check:
        return cls(**{key: data.get(key, "") for key in ("left", "right", "variant", "via")})

    @classmethod
    def from_text(cls, text: str) -> Check:
        """The inverse of str(): only for records written before "check_parts" existed."""
        match = _LEGACY_CHECK.match(text)
        if match is None:
            raise ValueError(f"not a check label: {text!r}")
        return cls(match["left"], match["right"] or "", variant=match["variant"] or "", via=match["via"] or "")


_LEGACY_CHECK = re.compile(
    r"^(?P<left>[^~\[(]+)(?:\((?P<via>[^ )]+) bundle\))?(?:~(?P<right>[^~\[]+))?"
    r"(?:\[(?P<variant>[^\]]*)\])?$"
)


def check_of(record: Mapping) -> Check:
    """The Check of a comparison record (Comparison.to_dict(), a results.json entry)."""
    parts = record.get("check_parts")
    return Check.from_dict(parts) if isinstance(parts, Mapping) else Check.from_text(record["check"])


@dataclass(frozen=True)
class Comparison:
    """One (config, stage, check, metric) verdict with everything needed to explain it."""

    config_id: str
    stage: str
    """One of parity.stages.STAGES."""
    check: Check
    """What was compared with what; printed "torch_pinn~tf_pinn", "tf_pinn~golden", "torch_pinn~spec", ..."""
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
    error: Mapping | None = None
    """For a check that could not run (kind "error"): the exception's "type", its "origin" (parity.origin:
    code under test, adapter or harness), where it was "raised_at" and its whole "traceback"."""

    def __post_init__(self) -> None:
        if not isinstance(self.check, Check):
            raise ValueError(f"Comparison.check must be a Check, got {self.check!r}")
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
    def headline(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_dict(self) -> dict:
        """JSON-ready: numpy scalars become numbers, complex [re, im], NaN/inf strings."""
        return {
            "config_id": self.config_id,
            "stage": self.stage,
            "check": str(self.check),
            "check_parts": self.check.to_dict(),
            "metric": self.metric,
            "passed": self.passed,
            "kind": self.kind,
            "measured": to_jsonable(self.measured),
            "tolerance": to_jsonable(self.tolerance),
            "worst": to_jsonable(self.worst),
            "message": self.message,
            "extra": to_jsonable(self.extra),
            **({"error": dict(self.error)} if self.error else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Comparison:
        """Inverse of to_dict (complex values stay [re, im] lists)."""
        return cls(
            config_id=data["config_id"],
            stage=data["stage"],
            check=check_of(data),
            metric=data["metric"],
            passed=data["passed"],
            kind=data["kind"],
            measured=from_jsonable(data.get("measured") or {}),
            tolerance=from_jsonable(data.get("tolerance")),
            worst=from_jsonable(data.get("worst")),
            message=data.get("message", ""),
            extra=from_jsonable(data.get("extra") or {}),
            error=data.get("error"),
        )


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


def headline(config_id: str, stage: str, check: Check, metric: str, text: str) -> str:
    return f"[{config_id}] stage {stage} {check} {metric}: {text}"


def closing_line(config_id: str, check: Check, key: str | None) -> str:
    """The last line of a failure: the command that regenerates, or where the bound is explained."""
    if check.right == GOLDEN:
        return (
            f"  regenerate: python -m parity regen --parity-config {config_id}"
            "  (only once the backends agree; see docs/tolerances.md)"
        )
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
