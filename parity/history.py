"""`python -m parity history`: the suite at each revision of the code under test, in order, and one hub
that says where each split appears and where it is gone.

A revision is a source folder, a source archive (.tar.gz), or a commit of a git checkout (`--git DIR
--range A..B`). For each, in the environment this runs in: its requirements are installed when they
differ from the last ones installed (`--requirements`, default requirements-ci.txt), then the code
under test alone (`pip install --no-deps -e`, seconds); a revision whose code under test does not import
is a "skip", as git bisect says (the code is broken there, which is not a split per stage); otherwise
the suite runs as a team's CI runs it (`pytest --pyargs parity`, the arguments after `--`), its hub
kept under the history hub. A split the baseline lists is "known" wherever it occurs and "fixed" where
its stage ran and it did not occur: no baseline per revision is needed.

`--bisect CHECK` looks for the first revision where one check (config/stage, or config/stage/check/
metric as results.json names it) has another status than at the first revision, in log2(n) runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import requires
from pathlib import Path

from backends.common.fileio import atomic_write_json, atomic_write_text
from parity.baseline import NEW
from parity.code_coverage import COVERAGE_JSON, diff_coverage
from parity.envinfo import utc_now
from parity.options import OPTIONS, split_names
from parity.status import Status

SCHEMA = "pinn-parity-history"
SCHEMA_VERSION = 1
SKIP = "skip"
REQUIREMENTS_RECORD = ".pinn-parity-requirements"  # in the environment's prefix: the sha256 last installed
SOURCE_RECORD = ".pinn-parity-source"  # in the environment's prefix: the source last installed (make upstream)


class HistoryError(ValueError):
    """A source that is neither a folder, an archive nor a commit; a bad --range or --bisect."""


@dataclass(frozen=True)
class Revision:
    label: str
    """How the table names it: an archive's or folder's name, or a commit's short sha."""
    folder: Path
    """Its source tree, as pip installs it."""


@dataclass
class RevisionRun:
    """One revision's run: its stage statuses and failures (from its hub), or why it was skipped."""

    revision: Revision
    skipped: str | None = None
    hub: str | None = None
    exit_code: int | None = None
    switch_s: float = 0.0
    wall_s: float = 0.0
    requirements_installed: bool = False
    stages: dict = field(default_factory=dict)  # "config/stage" -> status
    failures: dict = field(default_factory=dict)  # "config/stage/check/metric" -> "new" | "known"


def _label(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.rpartition("-")[2] if "-" in name else name


def materialize(sources: Sequence[str], workdir: Path, *, git: str | None = None, span: str | None = None):
    """The revisions to run, in order: archives extracted once under `workdir`/sources, folders as they
    are, or the commits of `span` ("A..B", oldest first) of the checkout `git`, each exported by git archive."""
    out = workdir / "sources"
    revisions = []
    if git is not None:
        if not span or ".." not in span:
            raise HistoryError(f"--range: expected A..B, got {span!r}")
        listed = subprocess.run(["git", "-C", git, "rev-list", "--reverse", span], capture_output=True, text=True)
        if listed.returncode != 0:
            raise HistoryError(f"--git {git} --range {span}: {listed.stderr.strip()}")
        for sha in listed.stdout.split():
            folder = out / sha[:12]
            if not folder.is_dir():
                folder.mkdir(parents=True)
                archive = subprocess.run(["git", "-C", git, "archive", sha], capture_output=True, check=True).stdout
                subprocess.run(["tar", "x", "-C", str(folder)], input=archive, check=True)
            revisions.append(Revision(sha[:7], folder))
    for source in sources:
        path = Path(source).resolve()
        if path.is_dir():
            revisions.append(Revision(_label(path), path))
        elif path.is_file() and tarfile.is_tarfile(path):
            folder = out / _label(path)
            if not folder.is_dir():
                folder.mkdir(parents=True)
                with tarfile.open(path) as archive:
                    top = os.path.commonpath([m.name for m in archive.getmembers()])
                    for member in archive.getmembers():
                        member.name = os.path.relpath(member.name, top) if top else member.name
                    archive.extractall(folder, filter="data")
            revisions.append(Revision(_label(path), folder))
        else:
            raise HistoryError(f"{source}: neither a folder nor a source archive (.tar.gz)")
    if not revisions:
        raise HistoryError("no revision given: name source folders or archives, or --git DIR --range A..B")
    return revisions


def _pip(python: str, *args: str) -> None:
    """pip install, its chatter kept out of the run's output unless it fails (HistoryError with its tail)."""
    env = dict(os.environ, SETUPTOOLS_SCM_PRETEND_VERSION="0.0.0")  # an archive has no .git to read a version from
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise HistoryError(f"pip install {' '.join(args)} failed (exit {done.returncode}):\n{tail}")


def switch_source(
    folder: Path,
    *,
    python: str = sys.executable,
    constraints: str | None = None,
    requirements: str = "requirements-ci.txt",
    source: str | None = None,
) -> tuple[float, bool]:
    """Install the code under test at `folder` into the environment of `python`: its requirements first when
    they differ from the last installed (then the harness's own requirements again, which win), then the code
    alone, editable and without dependencies. (seconds, whether requirements were installed)."""
    start = time.perf_counter()
    prefix = Path(
        subprocess.run(
            [python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    record = prefix / REQUIREMENTS_RECORD
    wanted = folder / requirements
    installed = False
    if wanted.is_file():
        digest = hashlib.sha256(wanted.read_bytes()).hexdigest()
        if not record.is_file() or record.read_text().strip() != digest:
            pinned = ["-c", constraints] if constraints else []
            _pip(python, "-r", str(wanted), *pinned)
            _pip(python, *(requires("pinn-parity") or []), *pinned)  # e.g. its pytest over theirs
            record.write_text(digest + "\n")
            installed = True
    _pip(python, "--no-deps", "-e", str(folder))
    (prefix / SOURCE_RECORD).write_text(f"{source or folder}\n")
    return time.perf_counter() - start, installed


def preflight(python: str, backends: Sequence[str]) -> str | None:
    """None when the code under test of every adapter named imports; else the error's last line."""
    code = (
        "import importlib, sys\n"
        "from adapters.registry import get_adapter\n"
        f"for name in {list(backends)!r}:\n"
        "    for module in get_adapter(name).code_under_test:\n"
        "        importlib.import_module(module)\n"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def code_packages(suite_args: Sequence[str]) -> list[str]:
    """The source folders of the adapters' code under test ("ptycho", "ptycho_torch"), for diff coverage."""
    from adapters.registry import get_adapter

    names = [m for name in _backends(suite_args) for m in get_adapter(name).code_under_test]
    return sorted({name.replace(".", "/") for name in names})


def _backends(suite_args: Sequence[str]) -> list[str]:
    for position, arg in enumerate(suite_args):
        if arg.startswith("--parity-backends="):
            return arg.partition("=")[2].split(",")
        if arg == "--parity-backends" and position + 1 < len(suite_args):
            return suite_args[position + 1].split(",")
    return split_names(next(o.default for o in OPTIONS if o.flag == "--parity-backends"))


def run_revision(
    revision: Revision,
    out: Path,
    suite_args: Sequence[str],
    *,
    python: str = sys.executable,
    constraints: str | None = None,
    requirements: str = "requirements-ci.txt",
) -> RevisionRun:
    """Switch to `revision`, check that its code imports, run the suite; its hub under `out`/<label>."""
    run = RevisionRun(revision)
    # (the environment is left at the last revision run: `make upstream` switches back to PTYCHOPINN_SRC's)
    run.switch_s, run.requirements_installed = switch_source(
        revision.folder, python=python, constraints=constraints, requirements=requirements
    )
    broken = preflight(python, _backends(suite_args))
    if broken is not None:
        run.skipped = f"the code under test does not import: {broken}"
        return run
    reports = (out / "revisions" / revision.label).resolve()  # the suite runs there: a relative path would nest
    reports.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [python, "-m", "pytest", "--pyargs", "parity", "--parity-reports", str(reports), *suite_args],
        cwd=reports,
        capture_output=True,
        text=True,
    )
    run.wall_s, run.exit_code = time.perf_counter() - start, done.returncode
    (reports / "pytest.log").write_text(done.stdout + done.stderr)
    results_path = reports / "latest" / "results.json"
    if not results_path.is_file():
        run.skipped = f"the suite wrote no hub (exit {done.returncode}); see {reports / 'pytest.log'}"
        return run
    run.hub = str(results_path.parent.resolve())
    read_results(run, json.loads(results_path.read_text()))
    return run


def read_results(run: RevisionRun, results: dict) -> None:
    """A revision's stage statuses and failing checks from its results.json."""
    for config_id, entry in results["configs"].items():
        for stage, status in entry["stages"].items():
            run.stages[f"{config_id}/{stage}"] = str(status)
    for record in results["comparisons"]:
        if not record["passed"]:
            key = "/".join((record["config_id"], record["stage"], record["check"], record["metric"]))
            run.failures[key] = Status.KNOWN if record.get("baseline") == Status.KNOWN else NEW


def diff_steps(runs: Sequence[RevisionRun], packages: Sequence[str]) -> list[dict]:
    """Per step between consecutive revisions that ran: of the statements it added or changed in `packages`
    (folders of the source tree, e.g. "ptycho"), how many the suite ran at the newer one (its hub's
    coverage.json, written with --parity-coverage); steps without a measurement are left out."""
    ran = [r for r in runs if r.skipped is None and r.hub is not None]
    steps = []
    for old, new in zip(ran, ran[1:]):
        measured = Path(new.hub) / COVERAGE_JSON
        if not measured.is_file():
            continue
        found = diff_coverage(old.revision.folder, new.revision.folder, measured, packages)
        steps.append({"from": old.revision.label, "to": new.revision.label, **found})
    return steps


def history_table(runs: Sequence[RevisionRun], steps: Sequence[dict] = ()) -> dict:
    """The history hub's data: each revision's row, and for every failing check the first revision where it
    appears and the first later one where it is gone (stage ran, check passed or absent), or null."""
    ran = [r for r in runs if r.skipped is None]
    splits = {}
    for key in sorted({k for r in ran for k in r.failures}):
        stage_key = key.rsplit("/", 2)[0]
        appears = gone = None
        for r in ran:
            if key in r.failures and appears is None:
                appears = r.revision.label
            elif appears is not None and gone is None and key not in r.failures and stage_key in r.stages:
                gone = r.revision.label
            elif gone is not None and key in r.failures:
                gone = None  # it came back: gone only where it stays gone
        splits[key] = {"appears": appears, "gone": gone, "known": any(r.failures.get(key) == Status.KNOWN for r in ran)}
    cells = sorted({k for r in ran for k in r.stages})
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": utc_now(),
        "revisions": [
            {
                "label": r.revision.label,
                "folder": str(r.revision.folder),
                "skipped": r.skipped,
                "hub": r.hub,
                "exit_code": r.exit_code,
                "switch_s": round(r.switch_s, 1),
                "wall_s": round(r.wall_s, 1),
                "requirements_installed": r.requirements_installed,
                "stages": r.stages,
                "failures": {
                    "new": sum(v == NEW for v in r.failures.values()),
                    "known": sum(v == Status.KNOWN for v in r.failures.values()),
                },
            }
            for r in runs
        ],
        "cells": cells,
        "splits": splits,
        "steps": list(steps),
    }


def render_history(table: dict) -> str:
    """history.md: revisions with their times, the revision x (config, stage) table, and every split."""
    revs = table["revisions"]
    lines = [
        "# Parity history",
        "",
        f"Created {table['created']}.",
        "",
        "## Revisions",
        "",
        "| revision | status | new failures | known splits | switch s | run s |",
        "|---|---|---|---|---|---|",
    ]
    for r in revs:
        status = f"{SKIP}: {r['skipped']}" if r["skipped"] else ("green" if r["exit_code"] == 0 else "red")
        lines.append(
            f"| {r['label']} | {status.replace('|', '/')} | {r['failures']['new']} | "
            f"{r['failures']['known']} | {r['switch_s']} | {r['wall_s']} |"
        )
    lines += [
        "",
        "## Stages (config/stage x revision)",
        "",
        "| config/stage | " + " | ".join(r["label"] for r in revs) + " |",
        "|---|" + "---|" * len(revs),
    ]
    for cell in table["cells"]:
        row = [SKIP if r["skipped"] else r["stages"].get(cell, "-") for r in revs]
        if len(set(row) - {SKIP}) > 1 or any(v not in (Status.PASS, Status.KNOWN, Status.NA, SKIP, "-") for v in row):
            lines.append(f"| {cell} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Rows whose status is the same at every revision that ran, and not red, are left out.",
        "",
        "## Splits",
        "",
        "| check | appears | gone | baseline |",
        "|---|---|---|---|",
    ]
    for key, info in table["splits"].items():
        lines.append(f"| {key} | {info['appears']} | {info['gone'] or '-'} | {'known' if info['known'] else 'new'} |")
    if table.get("steps"):
        lines += [
            "",
            "## What the suite ran of each step (diff coverage, --parity-coverage)",
            "",
            "| step | statements changed | run by the suite | share |",
            "|---|---|---|---|",
        ]
        for step in table["steps"]:
            share = f"{100 * step['run'] / step['changed']:.0f} %" if step["changed"] else "-"
            lines.append(f"| {step['from']} -> {step['to']} | {step['changed']} | {step['run']} | {share} |")
        for step in table["steps"]:
            if step["changed"] and not step["run"]:
                lines.append(
                    f"\nThe suite ran none of the {step['changed']} statements changed from {step['from']} "
                    f"to {step['to']}: the gate cannot vouch for that step."
                )
        lines += ["", "Least run, per file (statements changed, run):", ""]
        for step in table["steps"]:
            worst = sorted(
                step["files"].items(), key=lambda item: (item[1]["run"] / item[1]["changed"], -item[1]["changed"])
            )[:8]
            lines.append(
                f"- {step['from']} -> {step['to']}: "
                + ", ".join(f"{name} ({info['changed']}, {info['run']})" for name, info in worst)
            )
    return "\n".join(lines) + "\n"


def write_history(out: Path, runs: Sequence[RevisionRun], packages: Sequence[str] = ()) -> dict:
    table = history_table(runs, diff_steps(runs, packages) if packages else ())
    atomic_write_json(out / "history.json", table, indent=1)
    atomic_write_text(out / "history.md", render_history(table))
    return table


def status_of(run: RevisionRun, check: str) -> str:
    """A check's status at a revision: a config/stage cell's status, or a config/stage/check/metric's
    "pass", "new" or "known" (absent: "-")."""
    if run.skipped is not None:
        return SKIP
    if check.count("/") == 1:
        return run.stages.get(check, "-")
    if check in run.failures:
        return run.failures[check]
    return "pass" if check.rsplit("/", 2)[0] in run.stages else "-"


def bisect(revisions: Sequence[Revision], check: str, run_one) -> tuple[str | None, list[RevisionRun]]:
    """The first revision where `check`'s status differs from the first revision's, running as few as
    log2(n) (a skipped revision is stepped over, as git bisect skip does); (label or None, runs made)."""
    if check.count("/") not in (1, 3):
        raise HistoryError(f"--bisect {check!r}: expected config/stage or config/stage/check/metric")
    made: dict[int, RevisionRun] = {}

    def status(index: int) -> str:
        if index not in made:
            made[index] = run_one(revisions[index])
        return status_of(made[index], check)

    first = status(0)
    if first == SKIP:
        raise HistoryError(f"the first revision ({revisions[0].label}) is a skip: nothing to compare with")
    low, high = 0, len(revisions) - 1
    if status(high) in (first, SKIP):
        return None, [made[i] for i in sorted(made)]
    while high - low > 1:  # status(low) == first, status(high) != first
        middle = (low + high) // 2
        probe = middle
        while probe < high and status(probe) == SKIP:
            probe += 1
        if probe == high:  # everything between is a skip: the change lies somewhere in there
            break
        if status(probe) == first:
            low = probe
        else:
            high = probe
    return revisions[high].label, [made[i] for i in sorted(made)]
