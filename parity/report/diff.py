"""Compare two report hubs: what broke, what was fixed, which metrics moved.

Comparisons are matched by identity (config_id, stage, check, metric). A
metric "moved" when its measured value changed by more than the limit of
its tolerance, even if both runs pass: that is the early warning of a
refactor drifting towards a split.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from parity.comparison import from_jsonable
from parity.report.hub import load_results, resolve_hub

Identity = tuple[str, str, str, str]


@dataclass(frozen=True)
class DiffEntry:
    """One comparison that changed status, with the headline of the run where it failed."""

    identity: Identity
    headline: str


@dataclass(frozen=True)
class MetricMove:
    """A measured value that changed by more than its tolerance's limit."""

    identity: Identity
    measure: str
    value_a: float
    value_b: float
    limit: float


@dataclass(frozen=True)
class DiffReport:
    hub_a: str
    hub_b: str
    complete_a: bool
    complete_b: bool
    new_failures: tuple[DiffEntry, ...]
    """Failing in B, and passing in A or absent from it."""
    fixed: tuple[DiffEntry, ...]
    """Failing in A, passing in B."""
    still_failing: tuple[DiffEntry, ...]
    moved: tuple[MetricMove, ...]
    only_in_a: tuple[tuple[str, str], ...]
    """(config_id, stage) pairs checked in A only."""
    only_in_b: tuple[tuple[str, str], ...]

    @property
    def has_new_failures(self) -> bool:
        return bool(self.new_failures)


def _by_identity(results: Mapping) -> dict[Identity, dict]:
    """One entry per identity; duplicates merge to failed if any failed (the failing one kept)."""
    merged: dict[Identity, dict] = {}
    for item in results["comparisons"]:
        key = (item["config_id"], item["stage"], item["check"], item["metric"])
        if key not in merged or (merged[key]["passed"] and not item["passed"]):
            merged[key] = item
    return merged


def _headline(item: Mapping) -> str:
    return item.get("message", "").splitlines()[0] if item.get("message") else " ".join(
        (item["config_id"], item["stage"], item["check"], item["metric"]))


def _moved(key: Identity, old: Mapping, new: Mapping) -> MetricMove | None:
    tolerance = new.get("tolerance") or {}
    measure, limit = tolerance.get("measure"), from_jsonable(tolerance.get("limit"))
    if not measure or not isinstance(limit, (int, float)):
        return None
    a = from_jsonable((old.get("measured") or {}).get(measure))
    b = from_jsonable((new.get("measured") or {}).get(measure))
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b)):
        return None
    return MetricMove(key, measure, float(a), float(b), float(limit)) if abs(b - a) > limit else None


def diff_hubs(a: str | os.PathLike, b: str | os.PathLike) -> DiffReport:
    """Differences from hub `a` (before) to hub `b` (after)."""
    results_a, results_b = load_results(a), load_results(b)
    old, new = _by_identity(results_a), _by_identity(results_b)
    new_failures, fixed, still, moved = [], [], [], []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if after is not None and not after["passed"]:
            if before is None or before["passed"]:
                new_failures.append(DiffEntry(key, _headline(after)))
            else:
                still.append(DiffEntry(key, _headline(after)))
        elif after is not None and before is not None and not before["passed"]:
            fixed.append(DiffEntry(key, _headline(before)))
        if before is not None and after is not None:
            move = _moved(key, before, after)
            if move:
                moved.append(move)
    stages_a = {(k[0], k[1]) for k in old}
    stages_b = {(k[0], k[1]) for k in new}
    return DiffReport(hub_a=str(resolve_hub(a)), hub_b=str(resolve_hub(b)),
                      complete_a=bool(results_a["complete"]),
                      complete_b=bool(results_b["complete"]),
                      new_failures=tuple(new_failures), fixed=tuple(fixed),
                      still_failing=tuple(still), moved=tuple(moved),
                      only_in_a=tuple(sorted(stages_a - stages_b)),
                      only_in_b=tuple(sorted(stages_b - stages_a)))


def render_diff_text(report: DiffReport) -> str:
    def state(complete: bool) -> str:
        return "complete" if complete else "INCOMPLETE"

    lines = [f"A: {report.hub_a} ({state(report.complete_a)})",
             f"B: {report.hub_b} ({state(report.complete_b)})"]
    sections = (("new failures", [e.headline for e in report.new_failures]),
                ("fixed", [e.headline for e in report.fixed]),
                ("still failing", [e.headline for e in report.still_failing]),
                ("metrics that moved more than their tolerance",
                 [f"{' '.join(m.identity)}: {m.measure} {m.value_a:.3e} -> {m.value_b:.3e} "
                  f"(limit {m.limit:.3e})" for m in report.moved]),
                ("checked only in A", [f"{c} / {s}" for c, s in report.only_in_a]),
                ("checked only in B", [f"{c} / {s}" for c, s in report.only_in_b]))
    for title, entries in sections:
        lines.append(f"{title} ({len(entries)})" + (":" if entries else ""))
        lines.extend(f"  {entry}" for entry in entries)
    return "\n".join(lines) + "\n"
