"""index.html of a hub: the stage table with margins, the failures table, then per config its
plots and failure messages.

A single static page with relative links to plots/, so a hub can be copied,
zipped or served as it is. Every text from results.json is HTML-escaped. Links
inside the page: a FAIL cell goes to its first row in the failures table
(numbers.stage_anchor), a row's check to its full message (msg-<index>), a
config to its section.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from parity.baseline import entry_text, known_rows
from parity.report.numbers import failure_rows, first_rows, fmt_ratio, stage_anchor, stage_margins
from parity.report.summary import (
    COULD_NOT_RUN_ANCHOR,
    FAILURE_COLUMNS,
    FAILURES_NOTE,
    INCOMPLETE_NOTE,
    MARGIN_NOTE,
    ORIGIN_HEADINGS,
    could_not_run,
    could_not_run_text,
    environment_line,
    failure_cells,
    new_failure_rows,
    notes_lines,
    stage_notes,
    stage_totals_text,
    status_cell,
)
from parity.stages import STAGES, description
from parity.status import Status

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: center; }
th.config, td.config { text-align: left; }
td.pass { background: #d9f2d9; } td.fail { background: #f6caca; font-weight: bold; }
td.none { color: #999; }
td.na { background: #e6e6e6; color: #666; }
td.known { background: #f6e7b8; }
td a { color: inherit; }
.margin { display: block; font-weight: normal; font-size: 0.85em; color: #555; }
table.failures td { text-align: left; vertical-align: top; }
table.failures td.number { text-align: right; white-space: nowrap; }
tr:target { outline: 2px solid #c00; }
.note { font-size: 0.85em; color: #555; max-width: 60em; }
.incomplete { background: #fff2cc; border: 1px solid #e0b000; padding: 0.6em; }
pre { background: #f4f4f4; padding: 0.6em; font-size: 0.8em; white-space: pre-wrap; overflow-wrap: anywhere; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
figure { margin: 0.5em 0; }
"""


def _table(results: Mapping) -> list[str]:
    if not results["configs"]:
        return ["<p>No comparison was recorded.</p>"]
    margins = stage_margins(results["comparisons"])
    head = "".join(f'<th title="{escape(description(s))}">{escape(s)}</th>' for s in STAGES)
    rows = ['<table class="stages">', f'<tr><th class="config">config id</th>{head}</tr>']
    for config_id in results["configs"]:
        cells = []
        for stage in STAGES:
            status = status_cell(results, config_id, stage)
            css, text = {
                Status.PASS: ("pass", "pass"),
                Status.FAIL: ("fail", "FAIL"),
                Status.KNOWN: ("known", "known"),
                Status.NA: ("na", "n/a"),
                Status.ADAPTER: ("fail", "adapter error"),
                Status.HARNESS: ("fail", "harness error"),
            }.get(status, ("none", "-"))
            if status == Status.FAIL:
                text = f'<a href="#{escape(stage_anchor(config_id, stage))}">FAIL</a>'
            elif status == Status.KNOWN:
                text = '<a href="#known-splits">known</a>'
            elif status in (Status.ADAPTER, Status.HARNESS):
                text = f'<a href="#{COULD_NOT_RUN_ANCHOR}">{escape(status)}</a>'
            text += "".join(
                f'<span class="margin" title="{escape(note["text"])}">{escape(note["kind"])}</span>'
                for note in stage_notes(results, config_id, stage)
                if note["kind"] != status
            )
            margin = margins.get((config_id, stage)) if status != "-" else None
            if margin is None:
                cells.append(f'<td class="{css}">{text}</td>')
            else:
                cells.append(
                    f'<td class="{css}" title="margin from {escape(margin.source)}">{text}'
                    f'<span class="margin">{escape(fmt_ratio(margin.value))}</span></td>'
                )
        rows.append(
            f'<tr><td class="config"><a href="#{escape(config_id)}">{escape(config_id)}</a></td>{"".join(cells)}</tr>'
        )
    rows.append("</table>")
    return (
        rows
        + [f'<p class="note">{escape(MARGIN_NOTE)}</p>']
        + [f'<p class="note">{escape(line)}</p>' for line in notes_lines(results)]
    )


def _baseline(results: Mapping) -> list[str]:
    """Known splits (failures the profile's baseline accepts, with reason and link) and fixed entries."""
    info = results.get("baseline") or {}
    parts = []
    rows = known_rows(results)
    if rows:
        parts += [
            '<h2 id="known-splits">Known splits</h2>',
            f'<p class="note">Failures accepted by the baseline {escape(str(info.get("file")))}; '
            "they do not fail their test.</p>",
            '<table class="failures">',
            "<tr><th>config</th><th>stage</th><th>check</th><th>metric</th><th>reason</th><th>link</th></tr>",
        ]
        for record, entry in rows:
            link = entry.get("link") or ""
            cell = (
                f'<a href="{escape(link)}">{escape(link)}</a>'
                if link.startswith(("http://", "https://"))
                else escape(link or "-")
            )
            parts.append(
                f"<tr><td>{escape(record['config_id'])}</td><td>{escape(record['stage'])}</td>"
                f'<td><a href="#msg-{results["comparisons"].index(record)}">{escape(record["check"])}</a>'
                f"</td><td>{escape(record['metric'])}</td><td>{escape(entry['reason'])}</td>"
                f"<td>{cell}</td></tr>"
            )
        parts.append("</table>")
    if info.get("fixed"):
        parts += [
            '<h2 id="fixed-baseline">Fixed baseline entries</h2>',
            '<p class="note">Entries that matched no failure although their stage ran: remove them '
            "(--parity-strict-baseline fails the run on these).</p>",
            "<ul>",
        ]
        parts += [f"<li>entry {index}: {escape(entry_text(info['entries'][index]))}</li>" for index in info["fixed"]]
        parts.append("</ul>")
    return parts


def _failures(results: Mapping) -> list[str]:
    rows = new_failure_rows(results)
    if not rows:
        return []
    firsts = first_rows(rows)
    head = "".join(f"<th>{escape(column)}</th>" for column in FAILURE_COLUMNS)
    parts = [
        '<h2 id="failures">Failures</h2>',
        f'<p class="note">{escape(FAILURES_NOTE)}</p>',
        '<table class="failures">',
        f"<tr>{head}</tr>",
    ]
    for position, row in enumerate(rows):
        config, stage, check, metric, measured, tolerance, ratio, worst, fix = map(escape, failure_cells(row))
        anchor = f' id="{escape(stage_anchor(row.config_id, row.stage))}"' if position in firsts else ""
        parts.append(
            f'<tr{anchor}><td><a href="#{config}">{config}</a></td><td>{stage}</td>'
            f'<td><a href="#msg-{row.index}">{check}</a></td><td>{metric}</td>'
            f'<td class="number">{measured}</td><td class="number">{tolerance}</td>'
            f'<td class="number">{ratio}</td><td>{worst}</td><td>{fix}</td></tr>'
        )
    parts.append("</table>")
    return parts


def _could_not_run(results: Mapping) -> list[str]:
    """Checks that could not run, by where they raised: an adapter's errors apart from splits."""
    grouped = could_not_run(results)
    if not grouped:
        return []
    parts = [f'<h2 id="{COULD_NOT_RUN_ANCHOR}">Could not run</h2>']
    for origin, records in grouped.items():
        parts += [f"<h3>{escape(ORIGIN_HEADINGS[origin])}</h3>", "<ul>"]
        parts += [f"<li>{escape(could_not_run_text(record))}</li>" for record in records] + ["</ul>"]
    return parts


def render_index(results: Mapping, figures: Mapping[str, list]) -> str:
    """The page; `figures` is plots.make_plots' {config_id: [PlotRef]}."""
    title = f"Parity report {results.get('hub', '')}".strip()
    totals = results.get("totals", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if not results["complete"]:
        parts.append(f'<p class="incomplete">{escape(INCOMPLETE_NOTE.replace("**", ""))}</p>')
    parts += [
        f"<p>Created {escape(results['created'])}. {escape(environment_line(results.get('env', {})))}.</p>",
        f"<p>{totals.get('comparisons', 0)} comparisons, {totals.get('failed', 0)} failed, "
        f"{len(results['configs'])} configs.{escape(stage_totals_text(totals))} "
        'Details: <a href="summary.md">summary.md</a>, '
        '<a href="results.json">results.json</a>, <a href="env.json">env.json</a>, '
        '<a href="run.log">run.log</a>.</p>',
        "<h2>Stages</h2>",
        *_table(results),
        *_failures(results),
        *_could_not_run(results),
        *_baseline(results),
    ]
    failed = failure_rows(results)
    for config_id, entry in results["configs"].items():
        stage = entry["first_divergence"]
        divergence = (
            f"first divergence: <strong>{escape(stage)}</strong> ({escape(description(stage))})"
            if stage
            else "no divergence"
        )
        parts += [f'<h2 id="{escape(config_id)}">{escape(config_id)}</h2>', f"<p>{divergence}</p>"]
        for plot in figures.get(config_id, []):
            if plot.path:  # the figure carries its title: no caption repeating it
                parts.append(f'<figure><img src="{escape(plot.path)}" alt="{escape(plot.title)}"></figure>')
            elif plot.note:
                parts.append(f'<p class="flat">{escape(plot.title)}: {escape(plot.note)}</p>')
            else:
                parts.append(f"<p>plot {escape(plot.title)} could not be made: {escape(plot.error or '')}</p>")
        for row in (row for row in failed if row.config_id == config_id):
            record = results["comparisons"][row.index]
            parts.append(f'<pre id="msg-{row.index}">{escape(record["message"])}</pre>')
            if (record.get("error") or {}).get("traceback"):
                parts.append(
                    f"<details><summary>traceback</summary><pre>{escape(record['error']['traceback'])}</pre></details>"
                )
    if results.get("warnings"):
        parts += ["<h2>Warnings</h2>", "<ul>"]
        parts += [f"<li>{escape(w)}</li>" for w in results["warnings"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
