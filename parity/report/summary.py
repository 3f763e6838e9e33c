"""summary.md of a hub: the config x stage table, first divergences, failure messages.

Built from results.json alone, so `python -m parity report HUB` can redo it.
"""

from __future__ import annotations

from collections.abc import Mapping

from parity.stages import DESCRIPTIONS, STAGES

CELL = {"pass": "pass", "fail": "**FAIL**"}
INCOMPLETE_NOTE = ("**INCOMPLETE RUN**: the run was interrupted or a worker was lost; the "
                   "table covers only the checks that finished, and a `-` may hide a failure.")


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
    """"pass", "fail" or "-" (no check of this stage ran for this config)."""
    return results["configs"][config_id]["stages"].get(stage, "-")


def render_summary(results: Mapping) -> str:
    lines = [f"# Parity report {results.get('hub', '')}".rstrip(), ""]
    if not results["complete"]:
        lines += [INCOMPLETE_NOTE, ""]
    totals = results.get("totals", {})
    lines += [f"Created {results['created']}. {environment_line(results.get('env', {}))}.", "",
              f"{totals.get('comparisons', 0)} comparisons, {totals.get('failed', 0)} failed, "
              f"{len(results['configs'])} configs.", "", "## Stages", ""]
    if results["configs"]:
        lines.append("| config id | " + " | ".join(STAGES) + " |")
        lines.append("|---|" + "|".join(":-:" for _ in STAGES) + "|")
        for config_id in results["configs"]:
            cells = [CELL.get(status_cell(results, config_id, s), "-") for s in STAGES]
            lines.append(f"| {config_id} | " + " | ".join(cells) + " |")
    else:
        lines.append("No comparison was recorded.")
    lines += ["", "## First divergence", ""]
    for config_id, entry in results["configs"].items():
        stage = entry["first_divergence"]
        lines.append(f"- {config_id}: " + (f"**{stage}** ({DESCRIPTIONS[stage]})" if stage
                                           else "none"))
    failures = [c for c in results["comparisons"] if not c["passed"]]
    if failures:
        lines += ["", "## Failures", ""]
        for item in failures:
            lines += [f"### {item['config_id']} / {item['stage']} / {item['check']} "
                      f"{item['metric']}", "", "```", item["message"], "```", ""]
    if results.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in results["warnings"]]
    return "\n".join(lines).rstrip() + "\n"
