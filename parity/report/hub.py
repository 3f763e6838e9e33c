"""Report hubs: reports/<UTC timestamp>/ with every result of one run.

Life of a hub (schema: docs/results_schema.md; contents: reports/README.md):

1. The controller calls `new_hub()` once: the folder exists from the start
   with an INCOMPLETE marker, so a run killed at any point leaves a hub that
   says so.
2. Every worker (xdist or not) calls `write_part(hub, worker_id, records)`,
   appending JSON lines to parts/<worker_id>.jsonl. One file per worker means
   no locking and nothing lost when another worker dies.
   The worker then draws the plots those records allow into plots/
   (parity.report.plots.draw_missing), while the other workers still run.
3. The controller calls `finalize(...)` at session end: parts are merged
   into results.json, summary.md / index.html are rendered, the workers'
   plots linked (any missing one drawn), the INCOMPLETE marker is removed
   only for a complete run, and reports/latest is pointed at the hub.

`render(hub)` redoes step 3's rendering from results.json alone (plus saved
artifacts, from which it draws any plot that is missing), so a report can be
regenerated after the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from backends.common.fileio import (
    VersionedJsonError,
    atomic_write_json,
    atomic_write_text,
    read_versioned_json,
    save_npz,
)
from parity import baseline as baselines
from parity.envinfo import check_name, utc_now
from parity.origin import Origin
from parity.report import html, plots, summary
from parity.stages import STAGES, first_divergence, stage_index
from parity.status import NoteKind, Status
from parity.verdict import Comparison, to_jsonable

RESULTS_SCHEMA = "pinn-parity-results"
RESULTS_SCHEMA_VERSION = 1
INCOMPLETE_MARKER = "INCOMPLETE"
PARTS_DIR = "parts"
LATEST_NAME = "latest"
LOG_NAME = "run.log"
WORKERINPUT_KEY = "parity_hub"
"""Suggested key under which the controller passes the hub path to xdist workers."""


class HubError(ValueError):
    """A hub is missing or unusable."""


class ResultsSchemaError(HubError):
    """results.json is of another schema or version than this harness reads."""


@dataclass(frozen=True)
class Artifact:
    """Arrays kept beside the results for plots (not judged)."""

    config_id: str
    kind: str
    """The stage that kept it; that stage's plots (Stage.plots) draw it. "reconstruction": arrays maps each
    backend label to its complex object (plotted as amplitude, phase and difference)."""
    arrays: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class StageNote:
    """A fact about one stage of one config that is not a comparison, shown beside its cell."""

    config_id: str
    stage: str
    kind: NoteKind
    """What the note says (parity.status.NoteKind; a plain string naming one is taken too)."""
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", NoteKind(self.kind))  # ValueError naming an unknown kind

    def to_dict(self) -> dict:
        return {"config_id": self.config_id, "stage": self.stage, "kind": str(self.kind), "text": self.text}


def _write_json(path: Path, data) -> None:
    atomic_write_json(path, to_jsonable(data), sort_keys=False)


def new_hub(root: str | os.PathLike = "reports", *, now: datetime | None = None) -> Path:
    """Create reports/<2026-11-29T124501Z>[-N]/ with an INCOMPLETE marker and parts/."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    for attempt in range(1, 1000):
        hub = base / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            hub.mkdir()  # exist_ok=False: two runs started in one second get distinct hubs
        except FileExistsError:
            continue
        (hub / PARTS_DIR).mkdir()
        (hub / INCOMPLETE_MARKER).write_text(
            f"run started {utc_now()}; finalize() removes this file when the run completes.\n", encoding="utf-8"
        )
        return hub
    raise HubError(f"could not create a new hub under {base} for {stamp}")


def write_part(
    hub: str | os.PathLike,
    worker_id: str,
    records: Iterable,
    artifacts: Iterable[Artifact] = (),
    notes: Iterable[StageNote] = (),
) -> list[dict]:
    """Append comparisons (Comparison or its to_dict()), artifacts and stage notes of one worker;
    returns the artifacts' records (config_id, kind, labels, file), as results.json lists them."""
    hub = Path(hub)
    check_name("worker id", worker_id)
    if not (hub / PARTS_DIR).is_dir():
        raise HubError(f"{hub} is not a hub (no {PARTS_DIR}/ folder); create it with new_hub()")
    lines, written = [], []
    for record in records:
        comparison = record if isinstance(record, Comparison) else Comparison.from_dict(record)
        lines.append(json.dumps({"record": "comparison", **comparison.to_dict()}, allow_nan=False))
    for artifact in artifacts:
        check_name("config id", artifact.config_id)
        check_name("artifact kind", artifact.kind)
        folder = hub / PARTS_DIR / worker_id
        folder.mkdir(exist_ok=True)
        target = folder / f"{artifact.config_id}.{artifact.kind}.npz"
        save_npz(target, {k: np.asarray(v) for k, v in artifact.arrays.items()}, compress=True)
        written.append(
            {
                "config_id": artifact.config_id,
                "kind": artifact.kind,
                "labels": list(artifact.arrays),
                "file": target.relative_to(hub).as_posix(),
            }
        )
        lines.append(json.dumps({"record": "artifact", **written[-1]}))
    for note in notes:
        stage_index(note.stage)
        lines.append(json.dumps({"record": "note", **note.to_dict()}))
    if lines:
        # One write of whole lines: a worker killed mid-run leaves at most one torn last line.
        with open(hub / PARTS_DIR / f"{worker_id}.jsonl", "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return written


def read_parts(hub: Path) -> tuple[list[dict], list[dict], list[dict], list[str]]:
    """(comparisons, artifacts, notes, warnings) from every parts/*.jsonl; bad lines become warnings."""
    comparisons, artifacts, notes, warnings = [], [], [], []
    for part in sorted((hub / PARTS_DIR).glob("*.jsonl")):
        for number, line in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record.get("record") == "artifact":
                    artifacts.append({k: record[k] for k in ("config_id", "kind", "labels", "file")})
                elif record.get("record") == "note":
                    note = StageNote(**{k: record[k] for k in ("config_id", "stage", "kind", "text")}).to_dict()
                    if note not in notes:  # every worker that ran the stage may say it
                        notes.append(note)
                else:
                    record.pop("record", None)
                    comparisons.append(Comparison.from_dict(record).to_dict())
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                warnings.append(
                    f"{part.relative_to(hub)}:{number}: unreadable record skipped ({type(error).__name__}: {error})"
                )
    return comparisons, artifacts, notes, warnings


# A stage's status is the worst of its comparisons': a split outranks an error of ours or of an adapter,
# which outranks a known split; only "fail" (a new split) counts for the first divergence.
_RANK = {Status.PASS: 0, Status.KNOWN: 1, Status.ADAPTER: 2, Status.HARNESS: 3, Status.FAIL: 4}


def failure_status(record: Mapping) -> Status:
    """The status a failed comparison gives its stage: KNOWN (a split the baseline lists), ADAPTER or HARNESS
    (a check that could not run because an adapter, or the harness, raised; parity.origin), else FAIL."""
    if record.get("baseline") == Status.KNOWN:
        return Status.KNOWN
    origin = (record.get("error") or {}).get("origin")
    return {Origin.ADAPTER: Status.ADAPTER, Origin.HARNESS: Status.HARNESS}.get(origin, Status.FAIL)


def summarize_configs(comparisons: list[dict], notes: Iterable[Mapping] = ()) -> dict:
    """{config_id: {"first_divergence": stage | None, "stages": {stage: status}, "notes": {stage: [note, ...]}}},
    a status being one of parity.status.Status. A stage with an "n/a" note and no comparison is "n/a"; one
    whose failures are all known splits (comparisons marked by baseline.classify) is "known"; one whose
    failures could not run because an adapter (or the harness) raised is "adapter error" ("harness error");
    only "fail" stages (new splits) count for the first divergence."""
    status: dict[str, dict[str, str]] = {}
    notes = list(notes)
    for item in comparisons:
        stages = status.setdefault(item["config_id"], {})
        found = Status.PASS if item["passed"] else failure_status(item)
        if _RANK[found] >= _RANK[stages.get(item["stage"], Status.PASS)]:
            stages[item["stage"]] = found
    by_config: dict[str, dict[str, list]] = {}
    for note in notes:
        by_config.setdefault(note["config_id"], {}).setdefault(note["stage"], []).append(note)
        if note["kind"] == NoteKind.NA:
            status.setdefault(note["config_id"], {}).setdefault(note["stage"], Status.NA)
    return {
        config_id: {
            "first_divergence": first_divergence([s for s, v in stages.items() if v == Status.FAIL]),
            "stages": {s: stages[s] for s in STAGES if s in stages},
            "notes": {s: by_config.get(config_id, {})[s] for s in STAGES if s in by_config.get(config_id, {})},
        }
        for config_id, stages in sorted(status.items())
    }


def stage_totals(configs: Mapping) -> dict:
    """{status: n} for every parity.status.Status: (config, stage) cells per status."""
    cells = [status for entry in configs.values() for status in entry["stages"].values()]
    return {str(status): cells.count(status) for status in Status}


def build_results(hub: Path, env: Mapping, complete: bool, baseline: baselines.Baseline | None = None) -> dict:
    comparisons, artifacts, notes, warnings = read_parts(hub)
    comparisons.sort(key=lambda c: (c["config_id"], stage_index(c["stage"]), c["check"], c["metric"]))
    # artifacts and notes in a fixed order, not the order the workers (or shards) finished in
    artifacts.sort(key=lambda a: (a["config_id"], a["kind"]))
    notes.sort(key=lambda n: (n["config_id"], stage_index(n["stage"]), n["kind"], n["text"]))
    known = baselines.classify(comparisons, baseline or baselines.EMPTY)  # marks each failure known or new
    configs = summarize_configs(comparisons, notes)
    return {
        "schema": RESULTS_SCHEMA,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "created": utc_now(),
        "hub": hub.name,
        "env": dict(env),
        "complete": bool(complete),
        "totals": {
            "comparisons": len(comparisons),
            "failed": sum(1 for c in comparisons if not c["passed"]),
            "stages": stage_totals(configs),
        },
        "configs": configs,
        "comparisons": comparisons,
        "artifacts": artifacts,
        "notes": notes,
        "warnings": warnings,
        "baseline": known,
    }


def finalize(
    hub: str | os.PathLike, env: Mapping, log_text: str, complete: bool, baseline: baselines.Baseline | None = None
) -> dict:
    """Merge the parts, write results.json, env.json, the log and the rendered report;
    drop INCOMPLETE only when `complete`; point reports/latest here. Returns the results."""
    hub = Path(hub)
    if not (hub / PARTS_DIR).is_dir():
        raise HubError(f"{hub} is not a hub (no {PARTS_DIR}/ folder)")
    results = build_results(hub, env, complete, baseline)
    _write_json(hub / "results.json", results)
    _write_json(hub / "env.json", env)
    atomic_write_text(hub / LOG_NAME, log_text)
    render(hub)
    if complete:
        (hub / INCOMPLETE_MARKER).unlink(missing_ok=True)
    update_latest(hub)
    return results


def load_results(hub: str | os.PathLike) -> dict:
    """results.json of a hub, after checking it is a schema this harness reads."""
    path = resolve_hub(hub) / "results.json"
    if not path.is_file():
        raise HubError(f"{path} does not exist (an interrupted run that never finalized?)")
    try:
        results = read_versioned_json(path, kind=RESULTS_SCHEMA, version=RESULTS_SCHEMA_VERSION, what="results file")
    except VersionedJsonError as error:
        raise ResultsSchemaError(f"{error} (docs/results_schema.md)") from None
    check_results(results, path)
    return results


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value) -> bool:
    """A list of non-empty strings (case ids)."""
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


_WORDS = {bool: "true or false", str: "a string", Mapping: "an object", list: "a list"}


class _Fields:
    """The checks of one results.json, each a ResultsSchemaError naming the file and the key at fault."""

    def __init__(self, path):
        self.path = path

    def need(self, key: str, ok: bool, wanted: str, found) -> None:
        if not ok:
            text = repr(found)
            text = text if len(text) <= 80 else text[:77] + "..."
            raise ResultsSchemaError(f"{self.path}: key {key!r}: {wanted}, got {text} (docs/results_schema.md)")

    def types(self, document: Mapping, prefix: str, fields, *, required: bool = False, null: bool = False) -> None:
        """fields: (name, type, words). A field may be absent unless `required`, and null only where `null`
        (readers take an absent field's default, `.get(name, default)`, but would take a null as it is)."""
        for name, kind, wanted in fields:
            value = document.get(name)
            ok = isinstance(value, kind) or (name not in document and not required) or (value is None and null)
            self.need(prefix + name, ok, wanted, value)


def check_results(results: Mapping, path) -> None:
    """Every field of results.json the readers (report, diff, merge, baseline, history) take apart, of the
    type docs/results_schema.md gives; else one ResultsSchemaError naming the file and the key. Fields added
    during version 1 (totals, notes, baseline, check_parts) may be absent, and env's keys too."""
    fields = _Fields(path)
    top = (("complete", bool), ("created", str), ("env", Mapping), ("configs", Mapping), ("comparisons", list))
    fields.types(results, "", [(name, kind, _WORDS[kind]) for name, kind in top], required=True)
    optional = (("artifacts", list), ("notes", list), ("warnings", list), ("totals", Mapping), ("baseline", Mapping))
    fields.types(results, "", [(name, kind, _WORDS[kind]) for name, kind in optional])
    warnings = results.get("warnings", [])
    fields.need("warnings", all(isinstance(w, str) for w in warnings), "a list of strings", warnings)
    env = results["env"]
    fields.types(env, "env.", [(name, Mapping, "an object") for name in ("packages", "frameworks", "threads", "shard")])
    fields.types(env, "env.", (("exitstatus", int, "an integer"),))
    fields.need("env.configs", _names(env.get("configs", [])), "a list of case ids", env.get("configs"))
    shard = env.get("shard", {})
    fields.need(
        "env.shard.configs", "shard" not in env or _names(shard.get("configs")), "case ids", shard.get("configs")
    )
    for config_id, entry in results["configs"].items():
        where = f"configs.{config_id}"
        fields.need(where, isinstance(entry, Mapping), "an object", entry)
        fields.need(f"{where}.stages", isinstance(entry.get("stages"), Mapping), "an object", entry.get("stages"))
        found = entry.get("first_divergence")
        fields.need(f"{where}.first_divergence", found is None or found in STAGES, "a stage or null", found)
    info = results.get("baseline", {})
    entries = info.get("entries", [])
    fields.need("baseline.entries", isinstance(entries, list), "a list of entries", entries)
    for index, entry in enumerate(entries):
        try:
            baselines.parse_entry(entry, f"{path}: key 'baseline.entries[{index}]'")
        except baselines.BaselineError as error:
            raise ResultsSchemaError(f"{error} (docs/results_schema.md)") from None
    indices = f"entry indices (0 to {len(entries) - 1})"
    fixed = info.get("fixed", [])
    ok = isinstance(fixed, list) and all(_is_int(i) and 0 <= i < len(entries) for i in fixed)
    fields.need("baseline.fixed", ok, f"a list of {indices}", fixed)
    for index, record in enumerate(results["comparisons"]):
        _check_comparison(fields, record, f"comparisons[{index}]", len(entries))


def _check_comparison(fields: _Fields, record, where: str, n_entries: int) -> None:
    """One comparisons[] record: what Comparison.from_dict takes, and the fields the readers read beside it."""
    fields.need(where, isinstance(record, Mapping), "an object", record)
    for name in ("check", "metric"):
        value = record.get(name)
        fields.need(f"{where}.{name}", isinstance(value, str) and bool(value), "a non-empty string", value)
    fields.types(record, f"{where}.", (("message", str, "a string"),))
    nullable = ("measured", "tolerance", "worst", "extra", "error")
    fields.types(record, f"{where}.", [(name, Mapping, "an object or null") for name in nullable], null=True)
    fields.types(record.get("tolerance") or {}, f"{where}.tolerance.", (("measure", str, "a string"),))
    error = record.get("error") or {}
    fields.types(error, f"{where}.error.", [(name, str, "a string") for name in ("type", "origin", "raised_at")])
    try:
        Comparison.from_dict(record)
    except KeyError as missing:
        raise ResultsSchemaError(f"{fields.path}: key '{where}.{missing.args[0]}' is missing") from None
    except (ValueError, TypeError) as problem:
        raise ResultsSchemaError(f"{fields.path}: key {where!r}: {problem} (docs/results_schema.md)") from None
    state = record.get("baseline")
    fields.need(f"{where}.baseline", state in (None, baselines.KNOWN, baselines.NEW), "'known' or 'new'", state)
    if state == baselines.KNOWN:
        found = record.get("baseline_entry")
        ok = _is_int(found) and 0 <= found < n_entries
        fields.need(f"{where}.baseline_entry", ok, f"an entry index (0 to {n_entries - 1})", found)


def render(hub: str | os.PathLike) -> None:
    """(Re)write summary.md and index.html from results.json; draw the plots/*.png missing."""

    hub = resolve_hub(hub)
    results = load_results(hub)
    atomic_write_text(hub / "summary.md", summary.render_summary(results))
    figures = plots.make_plots(hub, results)
    atomic_write_text(hub / "index.html", html.render_index(results, figures))


def update_latest(hub: Path) -> Path:
    """Point <root>/latest at `hub`: a relative symlink, or a text file with its name
    where the file system refuses symlinks."""
    link = hub.parent / LATEST_NAME
    tmp = hub.parent / f".{LATEST_NAME}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:  # a symlink cannot go through fileio.atomic_write: made beside, then swapped in
        os.symlink(hub.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):
        tmp.unlink(missing_ok=True)
        atomic_write_text(link, hub.name + "\n")
    return link


def resolve_hub(path: str | os.PathLike) -> Path:
    """A hub folder from its path, from a `latest` symlink, or from a `latest` text file."""
    path = Path(path)
    if path.is_file() and path.name == LATEST_NAME:
        path = path.parent / path.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise HubError(f"no hub at {path}")
    return path.resolve()
