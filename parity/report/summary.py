"""summary.md of a hub: the config x stage table with margins, the failures table, first
divergences, failure messages. The numbers and the row order come from parity.report.numbers.

Built from results.json alone, so `python -m parity report HUB` can redo it.
"""

from __future__ import annotations

from collections.abc import Mapping

from parity.baseline import KNOWN, entry_text, known_rows
from parity.report.numbers import FailureRow, failure_rows, first_rows, fmt_ratio, stage_anchor, stage_margins
from parity.stages import STAGES, description
from parity.status import Status
from parity.verdict import error_text

# n/a: fewer than two backends support the stage; known: its failures are all known splits of the baseline
CELL = {
    Status.PASS: "pass",
    Status.FAIL: "**FAIL**",
    Status.KNOWN: "known",
    Status.NA: "n/a",
    Status.ADAPTER: "**adapter error**",
    Status.HARNESS: "**harness error**",
}
COULD_NOT_RUN_ANCHOR = "could-not-run"
ORIGIN_HEADINGS = {
    "adapter": "raised in an adapter: it fell behind the code under test (fix the adapter; not a split)",
    "harness": "raised in the harness (a bug of ours, or a profile without the ledger entry; not a split)",
    "code under test": "raised in the code under test",
    "unknown": "raised where no traceback says",
}
MARGIN_NOTE = (
    "Beside pass/FAIL: the stage's margin, its largest measured / tolerance "
    "((1 - measured) / (1 - tolerance) for lower bounds such as SSIM and FRC); "
    "above 1 fails. Stages with exact checks only have none."
)
FAILURES_NOTE = (
    "Ordered by config, stage, then: checks that raised, backend against backend, "
    "against the values given, against the float64 referee, against the spec, against the golden. "
    'fix first: the backend farther from the referee ("-": the results do not say).'
)
FAILURE_COLUMNS = ("config", "stage", "check", "metric", "measured", "tolerance", "ratio", "worst element", "fix first")
INCOMPLETE_NOTE = (
    "**INCOMPLETE RUN**: the run was interrupted or a worker was lost; the "
    "table covers only the checks that finished, and a `-` may hide a failure."
)


def environment_line(env: Mapping) -> str:
    """One line naming what was under test: frameworks, commit, platform, threads."""
    parts = []
    frameworks = env.get("frameworks") or {}
    if frameworks:
        parts.append("frameworks " + ", ".join(f"{k} {v}" for k, v in sorted(frameworks.items())))
    if env.get("commit"):
        parts.append(f"commit {str(env['commit'])[:12]}{' (dirty)' if env.get('dirty') else ''}")
    if env.get("platform"):
        parts.append(f"platform {env['platform']}")
    threads = {k: v for k, v in (env.get("threads") or {}).items() if v is not None}
    if threads:
        parts.append("threads " + ", ".join(f"{k}={v}" for k, v in sorted(threads.items())))
    return "; ".join(parts) if parts else "environment not recorded"


def status_cell(results: Mapping, config_id: str, stage: str) -> str:
    """ "pass", "fail", "known" (known splits only), "n/a" (unsupported here) or "-" (no check ran)."""
    return results["configs"][config_id]["stages"].get(stage, "-")


def stage_notes(results: Mapping, config_id: str, stage: str) -> list[Mapping]:
    """The notes (hub.StageNote records) of one stage cell; older results have none."""
    return results["configs"][config_id].get("notes", {}).get(stage, [])


def notes_lines(results: Mapping) -> list[str]:
    """One line per distinct note text, naming the cells it applies to."""
    cells: dict[str, list[str]] = {}
    for config_id, entry in results["configs"].items():
        for stage, notes in entry.get("notes", {}).items():
            for note in notes:
                cells.setdefault(note["text"], []).append(f"{config_id} {stage}")
    return [f"{text} ({', '.join(where)})" for text, where in cells.items()]


def stage_totals_text(totals: Mapping) -> str:
    """ " Stages: P passed / F failed / K known splits / N n/a." (errors of adapters or of the harness where
    there are any), or "" for older results."""
    stages = totals.get("stages")
    if not stages:
        return ""
    errors = "".join(
        f" / {stages[status]} {status}s" for status in (Status.ADAPTER, Status.HARNESS) if stages.get(status)
    )
    return (
        f" Stages: {stages.get('pass', 0)} passed / {stages.get('fail', 0)} failed / "
        f"{stages.get('known', 0)} known splits / {stages.get('n/a', 0)} n/a{errors}."
    )


def could_not_run(results: Mapping) -> dict[str, list[Mapping]]:
    """origin -> the new failures that could not run (kind "error"), in the results' order: adapter errors
    are listed apart from splits, each with where it was raised and its traceback."""
    grouped: dict[str, list[Mapping]] = {}
    for row in new_failure_rows(results):
        record = results["comparisons"][row.index]
        if record["kind"] == "error":
            origin = (record.get("error") or {}).get("origin", "unknown")
            grouped.setdefault(origin, []).append(record)
    return {origin: grouped[origin] for origin in ORIGIN_HEADINGS if origin in grouped}


def could_not_run_text(record: Mapping) -> str:
    """One line: which check could not run, what it raised and where."""
    raised_at = (record.get("error") or {}).get("raised_at") or "unknown"
    what = error_text(record["message"].splitlines()[0])
    return f"{record['config_id']} / {record['stage']} / {record['check']} {record['metric']}: {what}" + (
        f" (at {raised_at})" if raised_at != "unknown" else ""
    )


def _could_not_run_lines(results: Mapping) -> list[str]:
    grouped = could_not_run(results)
    if not grouped:
        return []
    lines = ["", f'<a id="{COULD_NOT_RUN_ANCHOR}"></a>', "## Could not run", ""]
    for origin, records in grouped.items():
        lines += [f"### {ORIGIN_HEADINGS[origin]}", ""]
        lines += [f"- {_md(could_not_run_text(record))}" for record in records] + [""]
    return lines


def failure_cells(row: FailureRow) -> list[str]:
    """The text cells of one failures-table row, in FAILURE_COLUMNS order."""
    return [
        row.config_id,
        row.stage,
        str(row.check),
        row.metric,
        row.measured,
        row.tolerance,
        row.ratio,
        row.worst,
        row.fix,
    ]


def _known_note(results: Mapping) -> str:
    known = (results.get("baseline") or {}).get("known", 0)
    return f" ({known} known splits of the baseline)" if known else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def new_failure_rows(results: Mapping) -> list[FailureRow]:
    """The failures table's rows: every failure but the known splits of the profile's baseline."""
    return [row for row in failure_rows(results) if results["comparisons"][row.index].get("baseline") != KNOWN]


def baseline_lines(results: Mapping) -> list[str]:
    """ "Known splits" (failures the baseline accepts, with reason and link) and "Fixed baseline entries"."""
    info = results.get("baseline") or {}
    lines = []
    rows = known_rows(results)
    if rows:
        lines += [
            "",
            "## Known splits",
            "",
            f"Failures accepted by the baseline {info.get('file')}; they do not fail their test.",
            "",
            "| config | stage | check | metric | entry | reason | link |",
            "|---|---|---|---|---|---|---|",
        ]
        for record, entry in rows:
            cells = [
                record["config_id"],
                record["stage"],
                record["check"],
                record["metric"],
                str(record["baseline_entry"]),
                entry["reason"],
                entry.get("link", "") or "-",
            ]
            lines.append("| " + " | ".join(_md(cell) for cell in cells) + " |")
    if info.get("fixed"):
        lines += [
            "",
            "## Fixed baseline entries",
            "",
            "Entries that matched no failure although their stage ran: "
            "remove them (`--parity-strict-baseline` fails the run on these).",
            "",
        ]
        lines += [f"- entry {index}: {_md(entry_text(info['entries'][index]))}" for index in info["fixed"]]
    return lines


def _failures_table(results: Mapping) -> list[str]:
    rows = new_failure_rows(results)
    if not rows:
        return []
    firsts = first_rows(rows)
    lines = [
        "",
        "## Failures",
        "",
        FAILURES_NOTE,
        "",
        "| " + " | ".join(FAILURE_COLUMNS) + " |",
        "|" + "---|" * len(FAILURE_COLUMNS),
    ]
    for position, row in enumerate(rows):
        cells = [_md(cell) for cell in failure_cells(row)]
        if position in firsts:
            cells[0] = f'<a id="{stage_anchor(row.config_id, row.stage)}"></a>{cells[0]}'
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_summary(results: Mapping) -> str:
    lines = [f"# Parity report {results.get('hub', '')}".rstrip(), ""]
    if not results["complete"]:
        lines += [INCOMPLETE_NOTE, ""]
    totals = results.get("totals", {})
    lines += [
        f"Created {results['created']}. {environment_line(results.get('env', {}))}.",
        "",
        f"{totals.get('comparisons', 0)} comparisons, {totals.get('failed', 0)} failed"
        f"{_known_note(results)}, "
        f"{len(results['configs'])} configs.{stage_totals_text(totals)}",
        "",
        "## Stages",
        "",
    ]
    if results["configs"]:
        margins = stage_margins(results["comparisons"])
        lines.append("| config id | " + " | ".join(STAGES) + " |")
        lines.append("|---|" + "|".join(":-:" for _ in STAGES) + "|")
        for config_id in results["configs"]:
            cells = []
            for stage in STAGES:
                status = status_cell(results, config_id, stage)
                cell = CELL.get(status, "-")
                if status == Status.FAIL:
                    cell = f"[{cell}](#{stage_anchor(config_id, stage)})"
                elif status in (Status.ADAPTER, Status.HARNESS):
                    cell = f"[{cell}](#{COULD_NOT_RUN_ANCHOR})"
                elif status == Status.KNOWN:
                    cell = f"[{cell}](#known-splits)"
                if status != "-" and (config_id, stage) in margins:
                    cell += f" {fmt_ratio(margins[config_id, stage].value)}"
                cell += "".join(
                    f" ({note['kind']})" for note in stage_notes(results, config_id, stage) if note["kind"] != status
                )
                cells.append(cell)
            lines.append(f"| {config_id} | " + " | ".join(cells) + " |")
        lines += ["", MARGIN_NOTE]
        lines += [f"- {_md(line)}" for line in notes_lines(results)]
        lines += _failures_table(results)
        lines += _could_not_run_lines(results)
        lines += baseline_lines(results)
    else:
        lines.append("No comparison was recorded.")
    lines += ["", "## First divergence", ""]
    for config_id, entry in results["configs"].items():
        stage = entry["first_divergence"]
        lines.append(f"- {config_id}: " + (f"**{stage}** ({description(stage)})" if stage else "none"))
    failures = [results["comparisons"][row.index] for row in new_failure_rows(results)]
    if failures:
        lines += ["", "## Failure messages", ""]
        for item in failures:
            lines += [
                f"### {item['config_id']} / {item['stage']} / {item['check']} {item['metric']}",
                "",
                "```",
                item["message"],
                "```",
                "",
            ]
            if (item.get("error") or {}).get("traceback"):
                lines += [
                    "<details><summary>traceback</summary>",
                    "",
                    "```",
                    item["error"]["traceback"],
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    if results.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in results["warnings"]]
    return "\n".join(lines).rstrip() + "\n"
