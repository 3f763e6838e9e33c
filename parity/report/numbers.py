"""The numbers a hub shows beside its verdicts: ratios, stage margins, the failures table.

All of it is computed from results.json records (Comparison.to_dict()), so summary.md,
index.html and a re-render of an old hub show the same figures. Checks are read by their
fields (`check_of`), never by parsing their printed label.

Ratio of one comparison (how far it came towards, or went past, its tolerance; 1 is the
edge, above 1 it failed):

- upper bounds (max_abs, rel_error, loss band, ...): measured / limit;
- lower bounds (SSIM, FRC: 1 is perfect agreement): (1 - measured) / (1 - limit), the
  shortfall from perfect over the shortfall allowed;
- exact, invariant and error checks: none (they either match or not).

The margin of a stage is the largest ratio over its comparisons (every check: cross-backend,
given, referee, spec, golden), and names the comparison it came from.

The failures table lists the failed comparisons by config (results order), stage (pipeline
order) and then kind of check, in CHECK_ORDER: a check that raised first (nothing could be
compared), then backend against backend (their split is what the run is about; bundle
cross-loads included), then against the values a case gives (a setting not honoured), then
against the float64 referee (which one is wrong), then against
the spec (the contract's exact facts), then against the stored golden last (a golden
failure alone may only mean the golden is stale); within a kind by check label and metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from parity.stages import stage_index
from parity.verdict import (
    GIVEN,
    GOLDEN,
    REFEREE,
    SPEC,
    Check,
    check_of,
    fmt_error,
    fmt_index,
    fmt_value,
    from_jsonable,
    referee_distance,
)

CHECK_ORDER = ("error", "cross-backend", "given", "referee", "spec", "golden")
"""Order of the kinds of check within one (config, stage) of the failures table."""


def check_category(check: Check) -> str:
    """One of CHECK_ORDER: what `check` compared its left side with."""
    if not check.right:
        return "error"
    return {GIVEN: "given", REFEREE: "referee", SPEC: "spec", GOLDEN: "golden"}.get(check.right, "cross-backend")


def _number(value) -> float | None:
    value = from_jsonable(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ratio(item: Mapping) -> float | None:
    """measured / tolerance of one comparison record (see the module docstring); None for
    checks without a numeric tolerance, or a record whose measure is missing."""
    tolerance = item.get("tolerance") or {}
    measure = tolerance.get("measure")
    limit = _number(tolerance.get("limit"))
    measured = _number((item.get("measured") or {}).get(measure)) if measure else None
    if limit is None or measured is None or item.get("kind") in ("exact", "invariant", "error"):
        return None
    if math.isnan(measured):
        return math.inf
    if tolerance.get("bound") == "lower":
        found, allowed = 1.0 - measured, 1.0 - limit
    else:
        found, allowed = abs(measured), limit
    if allowed <= 0:
        return math.inf if found > 0 else 0.0
    return max(found, 0.0) / allowed


def fmt_ratio(value: float | None) -> str:
    """A ratio or margin for a table: two significant digits, "-" when there is none."""
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2g}"


@dataclass(frozen=True)
class Margin:
    """How close one stage of one config came to failing."""

    value: float
    """Largest ratio over the stage's comparisons."""
    source: str
    """The comparison it came from, "<check> <metric>"."""


def stage_margins(comparisons: list[Mapping]) -> dict[tuple[str, str], Margin]:
    """{(config_id, stage): Margin} for every stage with at least one ratio."""
    margins: dict[tuple[str, str], Margin] = {}
    for item in comparisons:
        value = ratio(item)
        if value is None:
            continue
        key = (item["config_id"], item["stage"])
        if key not in margins or value > margins[key].value:
            margins[key] = Margin(value, f"{check_of(item)} {item['metric']}")
    return margins


def stage_anchor(config_id: str, stage: str) -> str:
    """The id of the first failures-table row of (config, stage): what a FAIL cell links to."""
    return f"fail-{config_id}-{stage}"


@dataclass(frozen=True)
class FailureRow:
    """One row of the failures table, every cell already text."""

    config_id: str
    stage: str
    check: Check
    metric: str
    measured: str
    tolerance: str
    ratio: str
    worst: str
    fix: str
    """The backend to fix first, or "-" when the results do not say."""
    index: int
    """Position of the comparison in results["comparisons"] (its message's anchor: msg-<index>)."""


def _measured_text(item: Mapping) -> str:
    measured = item.get("measured") or {}
    tolerance = item.get("tolerance") or {}
    measure = tolerance.get("measure")
    if item["kind"] == "error":
        return "could not run"
    if measure and measure in measured:
        value = _number(measured[measure])
        return f"{measure} {fmt_error(value) if value is not None else measured[measure]}"
    if "n_bad" in measured and "n_total" in measured:
        return f"{_number(measured['n_bad']):g} / {_number(measured['n_total']):g} differ"
    return "-"


def _tolerance_text(item: Mapping) -> str:
    tolerance = item.get("tolerance") or {}
    limit = _number(tolerance.get("limit"))
    if limit is None:
        return {"exact": "exact", "invariant": "exact"}.get(item["kind"], "-")
    return f"{'>=' if tolerance.get('bound') == 'lower' else '<='} {limit:.3g}"


def _value(value) -> str:
    if isinstance(value, list) and len(value) == 2 and all(_number(v) is not None for v in value):
        value = complex(_number(value[0]), _number(value[1]))  # complex values are stored [re, im]
    return fmt_value(value)


def _worst_text(item: Mapping, check: Check) -> str:
    worst = item.get("worst") or {}
    if not worst or "value_a" not in worst:
        return "-"
    where = " ".join(
        part
        for part in (worst.get("key") or "", fmt_index(worst["index"]) if worst.get("index") is not None else "")
        if part
    )
    values = f"{check.side_a}={_value(worst['value_a'])} {check.side_b}={_value(worst.get('value_b'))}"
    return f"{where}: {values}" if where else values


def _distance(item: Mapping | None) -> float | None:
    """parity.verdict.referee_distance of a <backend>~referee record; None when there is none."""
    if item is None:
        return None
    measured = {key: _number(value) for key, value in (item.get("measured") or {}).items()}
    return referee_distance(item["kind"], {key: value for key, value in measured.items() if value is not None})


def fix_first(item: Mapping, by_identity: Mapping[tuple, Mapping]) -> str:
    """The backend to fix first for one failed record, or "-".

    Backend against backend (no bundle): the side farther from the float64 referee, from
    the <backend>~referee records of the same config, stage, variant and metric; "both"
    when they are equally far; "-" without both referee records. Against the values given, the
    referee or the spec: the side judged. Against a golden: "-" (the golden may be what is stale)."""
    check = check_of(item)
    category = check_category(check)
    if category in ("given", "referee", "spec"):
        return check.left
    if category != "cross-backend" or check.via:
        return "-"
    distances = [
        _distance(
            by_identity.get((item["config_id"], item["stage"], Check(name, REFEREE, check.variant), item["metric"]))
        )
        for name in (check.left, check.right)
    ]
    if any(d is None for d in distances):
        return "-"
    if distances[0] == distances[1]:
        return "both"
    return check.left if distances[0] > distances[1] else check.right


def failure_rows(results: Mapping) -> list[FailureRow]:
    """The failures table: every failed comparison, in the order the module docstring gives."""
    comparisons = results["comparisons"]
    by_identity = {(c["config_id"], c["stage"], check_of(c), c["metric"]): c for c in comparisons}
    config_order = {config_id: n for n, config_id in enumerate(results.get("configs", {}))}
    failed = [(n, c, check_of(c)) for n, c in enumerate(comparisons) if not c["passed"]]
    failed.sort(
        key=lambda entry: (
            config_order.get(entry[1]["config_id"], len(config_order)),
            entry[1]["config_id"],
            stage_index(entry[1]["stage"]),
            CHECK_ORDER.index(check_category(entry[2])),
            str(entry[2]),
            entry[1]["metric"],
        )
    )
    return [
        FailureRow(
            config_id=item["config_id"],
            stage=item["stage"],
            check=check,
            metric=item["metric"],
            measured=_measured_text(item),
            tolerance=_tolerance_text(item),
            ratio=fmt_ratio(ratio(item)),
            worst=_worst_text(item, check),
            fix=fix_first(item, by_identity),
            index=n,
        )
        for n, item, check in failed
    ]


def first_rows(rows: list[FailureRow]) -> set[int]:
    """Indices (into rows) of the first row of each (config, stage): the ones carrying its anchor."""
    seen, firsts = set(), set()
    for position, row in enumerate(rows):
        if (row.config_id, row.stage) not in seen:
            seen.add((row.config_id, row.stage))
            firsts.add(position)
    return firsts
