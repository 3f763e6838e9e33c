"""Compare two report hubs: what broke, what was fixed, which metrics moved.

Comparisons are matched by identity (config_id, stage, check, metric). A
metric "moved" when its measured value changed by more than the limit of
its tolerance, even if both runs pass: that is the early warning of a
refactor drifting towards a split.

Everything is listed in pipeline order (parity.stages), and each comparison at most once:
a failure is a new failure, still failing, or fixed; "moved" holds only comparisons that
pass in both runs. The text starts each config with its first divergence before -> after.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from parity.baseline import KNOWN, entry_text
from parity.report.hub import failure_status, load_results, resolve_hub, summarize_configs
from parity.report.numbers import CHECK_ORDER, check_category
from parity.stages import stage_index
from parity.status import Status
from parity.verdict import check_of, from_jsonable

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
    divergence: tuple[tuple[str, str | None, str | None], ...] = ()
    """(config_id, first divergence in A, in B), configs in name order; None: no failure,
    or the config is absent from that run (see absent_a / absent_b)."""
    absent_a: tuple[str, ...] = ()
    """Configs with no comparison in A."""
    absent_b: tuple[str, ...] = ()
    known: tuple[DiffEntry, ...] = ()
    """Failing in B as a known split of B's baseline (neither new nor still failing)."""
    baseline_fixed: tuple[str, ...] = ()
    """B's baseline entries that matched nothing in B's stages (parity.baseline.entry_text)."""
    errors: tuple[DiffEntry, ...] = ()
    """Failing in B because an adapter or the harness raised (parity.origin): listed apart from splits,
    headed by the status ("adapter error", "harness error")."""
    new_errors: int = 0
    """How many of `errors` passed in A or were absent from it."""

    @property
    def has_new_failures(self) -> bool:
        return bool(self.new_failures) or self.new_errors > 0


def _by_identity(results: Mapping) -> dict[Identity, dict]:
    """One entry per identity; duplicates merge to failed if any failed (the failing one kept)."""
    merged: dict[Identity, dict] = {}
    for item in results["comparisons"]:
        key = (item["config_id"], item["stage"], str(check_of(item)), item["metric"])
        if key not in merged or (merged[key]["passed"] and not item["passed"]):
            merged[key] = item
    return merged


def _headline(item: Mapping) -> str:
    return (
        item.get("message", "").splitlines()[0]
        if item.get("message")
        else " ".join((item["config_id"], item["stage"], item["check"], item["metric"]))
    )


def _order(key: Identity, item: Mapping) -> tuple:
    """Config, pipeline stage, kind of check (numbers.CHECK_ORDER), check, metric."""
    return (key[0], stage_index(key[1]), CHECK_ORDER.index(check_category(check_of(item))), key[2], key[3])


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
    new_failures, fixed, still, moved, known, errors, new_errors = [], [], [], [], [], [], 0
    for key in sorted(set(old) | set(new), key=lambda k: _order(k, new.get(k) or old[k])):
        before, after = old.get(key), new.get(key)
        if after is not None and not after["passed"] and after.get("baseline") == KNOWN:
            known.append(DiffEntry(key, _headline(after)))
        elif after is not None and not after["passed"] and failure_status(after) != Status.FAIL:
            errors.append(DiffEntry(key, f"{failure_status(after)}: {_headline(after)}"))
            new_errors += before is None or before["passed"]
        elif after is not None and not after["passed"]:
            if before is None or before["passed"]:
                new_failures.append(DiffEntry(key, _headline(after)))
            else:
                still.append(DiffEntry(key, _headline(after)))
        elif after is not None and before is not None and not before["passed"]:
            fixed.append(DiffEntry(key, _headline(before)))
        if before is not None and after is not None and before["passed"] and after["passed"]:
            move = _moved(key, before, after)
            if move:
                moved.append(move)
    stages_a = {(k[0], k[1]) for k in old}
    stages_b = {(k[0], k[1]) for k in new}
    configs_a = summarize_configs(list(old.values()))
    configs_b = summarize_configs(list(new.values()))
    by_stage = lambda pair: (pair[0], stage_index(pair[1]))  # noqa: E731
    return DiffReport(
        hub_a=str(resolve_hub(a)),
        hub_b=str(resolve_hub(b)),
        complete_a=bool(results_a["complete"]),
        complete_b=bool(results_b["complete"]),
        new_failures=tuple(new_failures),
        fixed=tuple(fixed),
        still_failing=tuple(still),
        moved=tuple(moved),
        only_in_a=tuple(sorted(stages_a - stages_b, key=by_stage)),
        only_in_b=tuple(sorted(stages_b - stages_a, key=by_stage)),
        divergence=tuple(
            (c, (configs_a.get(c) or {}).get("first_divergence"), (configs_b.get(c) or {}).get("first_divergence"))
            for c in sorted(set(configs_a) | set(configs_b))
        ),
        absent_a=tuple(sorted(set(configs_b) - set(configs_a))),
        absent_b=tuple(sorted(set(configs_a) - set(configs_b))),
        known=tuple(known),
        baseline_fixed=_baseline_fixed(results_b),
        errors=tuple(errors),
        new_errors=new_errors,
    )


def _baseline_fixed(results: Mapping) -> tuple[str, ...]:
    info = results.get("baseline") or {}
    return tuple(f"entry {index}: {entry_text(info['entries'][index])}" for index in info.get("fixed", ()))


def render_diff_text(report: DiffReport) -> str:
    """A/B lines, the counts, then per config a first line "<config>: first divergence: <A> -> <B>"
    and its changes in pipeline order, one line each: "new failure", "still failing", "fixed"
    (with the headline of the run where it failed), "moved", "checked only in A/B"."""

    def state(complete: bool) -> str:
        return "complete" if complete else "INCOMPLETE"

    def divergence(stage: str | None, absent: bool) -> str:
        return "(not run)" if absent else stage or "none"

    lines = [
        f"A: {report.hub_a} ({state(report.complete_a)})",
        f"B: {report.hub_b} ({state(report.complete_b)})",
        f"{len(report.new_failures)} new failures, {len(report.still_failing)} still failing, "
        f"{len(report.fixed)} fixed, {len(report.moved)} moved more than their tolerance"
        + (f", {len(report.known)} known splits (B's baseline)" if report.known else "")
        + (
            f", {len(report.errors)} checks that could not run because an adapter or the harness raised "
            f"({report.new_errors} new; not splits)"
            if report.errors
            else ""
        ),
    ]
    entries: dict[str, list[tuple[int, int, str]]] = {}

    def add(config_id: str, stage: str, text: str) -> None:
        entries.setdefault(config_id, []).append((stage_index(stage), len(entries.get(config_id, [])), text))

    for title, found in (
        ("new failure", report.new_failures),
        ("still failing", report.still_failing),
        ("fixed", report.fixed),
        ("known split", report.known),
        ("could not run", report.errors),
    ):
        for entry in found:
            add(entry.identity[0], entry.identity[1], f"{title}: {entry.headline}")
    for move in report.moved:
        config_id, stage, check, metric = move.identity
        add(
            config_id,
            stage,
            f"moved: [{config_id}] stage {stage} {check} {metric}: {move.measure} "
            f"{move.value_a:.3e} -> {move.value_b:.3e} (limit {move.limit:.3e})",
        )
    for side, pairs in (("A", report.only_in_a), ("B", report.only_in_b)):
        for config_id, stage in pairs:
            if config_id not in (report.absent_b if side == "A" else report.absent_a):  # said by its first line
                add(config_id, stage, f"checked only in {side}: stage {stage}")
    for config_id, before, after in report.divergence:
        lines.append(
            f"{config_id}: first divergence: {divergence(before, config_id in report.absent_a)} -> "
            f"{divergence(after, config_id in report.absent_b)}"
        )
        lines.extend(f"  {text}" for _, _, text in sorted(entries.get(config_id, [])))
    lines.extend(f"baseline entry fixed in B (matched nothing): {text}" for text in report.baseline_fixed)
    return "\n".join(lines) + "\n"
