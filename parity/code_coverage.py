"""What of the code under test each stage runs (`--parity-coverage`), and what of a change between two
revisions the suite ran (diff coverage).

Each process that runs tests measures the adapters' `code_under_test` with coverage.py, one context per
(config, stage), into `<hub>/coverage/<worker>`; the controller combines them into `<hub>/coverage.json`
(per file: its statements, the lines run, and per stage the functions run) and `<hub>/coverage.md` (a
table per module: function -> the stages that run it). A history run compares consecutive revisions:
of the statements a step changed, how many the suite ran there; a step whose changes it never ran is
one the gate cannot vouch for.
"""

from __future__ import annotations

import ast
import copy
import difflib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from backends.common.fileio import atomic_write_json, atomic_write_text

COVERAGE_DIR = "coverage"
COVERAGE_JSON = "coverage.json"


SUBPROCESS_CONFIG = "COVERAGE_PROCESS_CONFIG"
"""Read at start-up by the .pth file coverage.py installs: a Python process started with it set measures
itself with that configuration (coverage.process_startup)."""


class Measurement:
    """coverage.py measuring the code under test in this process and in the Python processes it starts (a
    stage's command lines): each line is recorded under the (config, stage) context that ran it."""

    def __init__(self, measured):
        self.measured = measured
        self._before = os.environ.get(SUBPROCESS_CONFIG)

    def switch(self, context: str) -> None:
        self.measured.switch_context(context)
        # a started process gets a static context (it cannot follow this one's switches) and its own data
        # file beside this one's (parallel: suffixed by host and pid), which combine() reads with the rest
        child = copy.copy(self.measured.config)
        child.context = context
        child.parallel = True
        os.environ[SUBPROCESS_CONFIG] = child.serialize()

    def finish(self) -> None:
        self.measured.stop()
        self.measured.save()
        if self._before is None:
            os.environ.pop(SUBPROCESS_CONFIG, None)
        else:
            os.environ[SUBPROCESS_CONFIG] = self._before


def start(modules: Iterable[str], hub: Path, worker: str) -> Measurement | None:
    """A running measurement of `modules` for this process and the processes it starts, or None when there
    is nothing to measure (no adapter names its code under test)."""
    modules = sorted(set(modules))
    if not modules:
        return None
    import coverage  # here: a run without --parity-coverage never loads it

    folder = Path(hub) / COVERAGE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    measured = coverage.Coverage(data_file=str(folder / worker), source=modules, branch=False, config_file=False)
    measured.start()
    return Measurement(measured)


def functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, last line) of every function and method of a source file."""
    found = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child.lineno, child.end_lineno or child.lineno))
                walk(child, name + ".")

    try:
        walk(ast.parse(path.read_text(encoding="utf-8")), "")
    except (OSError, SyntaxError, ValueError):
        return []
    return found


def combine(hub: Path) -> dict | None:
    """The workers' measurements of a hub as coverage.json's data (written beside coverage.md), or None."""
    folder = Path(hub) / COVERAGE_DIR
    parts = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    if not parts:
        return None
    import coverage

    data = coverage.CoverageData(basename=str(folder / "combined"))
    for part in parts:
        one = coverage.CoverageData(basename=str(part))
        one.read()
        data.update(one)
    analyser = coverage.Coverage(data_file=None, config_file=False)
    files = {}
    for filename in sorted(data.measured_files()):
        try:
            _, statements, _, _, _ = analyser.analysis2(filename)
        except Exception:  # noqa: BLE001 - a file gone since (a temporary module): nothing to report for it
            continue
        by_line = data.contexts_by_lineno(filename)
        stages: dict[str, set[str]] = {}
        for name, first, last in functions(Path(filename)):
            # the body only: importing the module runs every `def` line, which says nothing of a call
            for line in range(first + 1, last + 1):
                for context in by_line.get(line, ()):
                    if context:
                        stages.setdefault(context, set()).add(name)
        files[filename] = {
            "statements": sorted(statements),
            "executed": sorted(data.lines(filename) or ()),
            "functions_by_stage": {context: sorted(names) for context, names in sorted(stages.items())},
        }
    found = {"schema": "pinn-parity-coverage", "schema_version": 1, "files": files}
    atomic_write_json(Path(hub) / COVERAGE_JSON, found, indent=1)
    atomic_write_text(Path(hub) / "coverage.md", render(found))
    return found


def _module_name(filename: str) -> str:
    parts = Path(filename).with_suffix("").parts
    for top in ("ptycho_torch", "ptycho", "backends"):
        if top in parts:
            return ".".join(parts[len(parts) - 1 - parts[::-1].index(top) :])
    return filename


def render(found: Mapping) -> str:
    """coverage.md: per module, each function run by some stage and the stages (config/stage) that run it."""
    lines = ["# Code under test run by each stage", ""]
    for filename, info in found["files"].items():
        by_function: dict[str, list[str]] = {}
        for context, names in info["functions_by_stage"].items():
            for name in names:
                by_function.setdefault(name, []).append(context)
        total = len(info["statements"]) or 1
        ran = len(set(info["executed"]) & set(info["statements"]))
        lines += [
            f"## {_module_name(filename)} ({ran} of {len(info['statements'])} statements run, "
            f"{100 * ran / total:.0f} %)",
            "",
        ]
        if by_function:
            lines += ["| function | stages (config/stage) |", "|---|---|"]
            lines += [f"| {name} | {', '.join(sorted(contexts))} |" for name, contexts in sorted(by_function.items())]
        else:
            lines.append("No function of it ran.")
        lines.append("")
    return "\n".join(lines)


def _relative(filename: str, folder: Path) -> str | None:
    try:
        return Path(filename).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return None


def changed_lines(old: str, new: str) -> set[int]:
    """The lines (1-based) of `new` that a step from `old` added or replaced."""
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    return {
        line + 1
        for tag, _, _, j1, j2 in matcher.get_opcodes()
        if tag in ("replace", "insert")
        for line in range(j1, j2)
    }


def diff_coverage(old_folder: Path, new_folder: Path, coverage_json: Path, packages: Iterable[str]) -> dict:
    """Of the statements the step old -> new added or changed in `packages` (folders of new_folder), how
    many the suite ran at `new` (its hub's coverage.json): {"changed": n, "run": n, "files": {...}}."""
    measured = json.loads(Path(coverage_json).read_text())["files"] if Path(coverage_json).is_file() else {}
    by_relative = {_relative(name, new_folder): info for name, info in measured.items()}
    out = {"changed": 0, "run": 0, "files": {}}
    for package in packages:
        for path in sorted((new_folder / package).rglob("*.py")):
            relative = path.relative_to(new_folder).as_posix()
            before = old_folder / relative
            old_text = before.read_text(encoding="utf-8", errors="replace") if before.is_file() else ""
            changed = changed_lines(old_text, path.read_text(encoding="utf-8", errors="replace"))
            if not changed:
                continue
            info = by_relative.get(relative)
            if info is None:  # never imported under the suite: its statements are unknown, count its lines
                statements, executed = changed, set()
            else:
                statements, executed = set(info["statements"]) & changed, set(info["executed"])
            if statements:
                run = len(statements & executed)
                out["files"][relative] = {"changed": len(statements), "run": run}
                out["changed"] += len(statements)
                out["run"] += run
    return out
