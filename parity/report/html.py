"""index.html of a hub: the summary table, then per config its plots and failures.

A single static page with relative links to plots/, so a hub can be copied,
zipped or served as it is. Every text from results.json is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from parity.report.summary import INCOMPLETE_NOTE, environment_line, status_cell
from parity.stages import DESCRIPTIONS, STAGES

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: center; }
th.config, td.config { text-align: left; }
td.pass { background: #d9f2d9; } td.fail { background: #f6caca; font-weight: bold; }
td.none { color: #999; }
.incomplete { background: #fff2cc; border: 1px solid #e0b000; padding: 0.6em; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
"""


def _table(results: Mapping) -> list[str]:
    if not results["configs"]:
        return ["<p>No comparison was recorded.</p>"]
    head = "".join(f'<th title="{escape(DESCRIPTIONS[s])}">{escape(s)}</th>' for s in STAGES)
    rows = ['<table>', f'<tr><th class="config">config id</th>{head}</tr>']
    for config_id in results["configs"]:
        cells = []
        for stage in STAGES:
            status = status_cell(results, config_id, stage)
            css, text = {"pass": ("pass", "pass"), "fail": ("fail", "FAIL")}.get(
                status, ("none", "-"))
            cells.append(f'<td class="{css}">{text}</td>')
        rows.append(f'<tr><td class="config"><a href="#{escape(config_id)}">'
                    f'{escape(config_id)}</a></td>{"".join(cells)}</tr>')
    rows.append("</table>")
    return rows


def render_index(results: Mapping, figures: Mapping[str, list]) -> str:
    """The page; `figures` is plots.make_plots' {config_id: [PlotRef]}."""
    title = f"Parity report {results.get('hub', '')}".strip()
    totals = results.get("totals", {})
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{escape(title)}</h1>"]
    if not results["complete"]:
        parts.append(f'<p class="incomplete">{escape(INCOMPLETE_NOTE.replace("**", ""))}</p>')
    parts += [f"<p>Created {escape(results['created'])}. "
              f"{escape(environment_line(results.get('env', {})))}.</p>",
              f"<p>{totals.get('comparisons', 0)} comparisons, {totals.get('failed', 0)} failed, "
              f"{len(results['configs'])} configs. Details: <a href=\"summary.md\">summary.md</a>, "
              "<a href=\"results.json\">results.json</a>, <a href=\"env.json\">env.json</a>, "
              "<a href=\"run.log\">run.log</a>.</p>",
              "<h2>Stages</h2>", *_table(results)]
    for config_id, entry in results["configs"].items():
        stage = entry["first_divergence"]
        divergence = (f"first divergence: <strong>{escape(stage)}</strong> "
                      f"({escape(DESCRIPTIONS[stage])})" if stage else "no divergence")
        parts += [f'<h2 id="{escape(config_id)}">{escape(config_id)}</h2>', f"<p>{divergence}</p>"]
        for plot in figures.get(config_id, []):
            if plot.path:
                parts.append(f'<figure><img src="{escape(plot.path)}" alt="{escape(plot.title)}">'
                             f"<figcaption>{escape(plot.title)}</figcaption></figure>")
            else:
                parts.append(f"<p>plot {escape(plot.title)} could not be made: "
                             f"{escape(plot.error or '')}</p>")
        for item in results["comparisons"]:
            if item["config_id"] == config_id and not item["passed"]:
                parts.append(f"<pre>{escape(item['message'])}</pre>")
    if results.get("warnings"):
        parts += ["<h2>Warnings</h2>", "<ul>"]
        parts += [f"<li>{escape(w)}</li>" for w in results["warnings"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
