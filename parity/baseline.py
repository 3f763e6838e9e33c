"""Baselines of known splits: failures a profile has accepted, each with its reason.

A baseline file (JSON, schema "pinn-parity-baseline" version 1) lists entries

    {"config": "gs2-*", "stage": "forward", "check": "torch_pinn~tf_pinn", "metric": "max_abs*",
     "reason": "known FFT padding difference", "link": "https://..."}

config, check (the printed label, str(Check)) and metric are fnmatch globs; stage is one
stage name or a glob; reason is required. A failed comparison matching an entry is
"known" (the first matching entry is recorded); any other failure is "new". A (config,
stage) test whose failures are all known passes. An entry that matched no failure although
its stage ran for a config it names is "fixed": the hub and the terminal summary list it,
and --parity-strict-baseline fails the session, so the file is kept current.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from backends.common.fileio import VersionedJsonError, atomic_write_json, read_versioned_json
from parity.stages import STAGES
from parity.status import Status
from parity.verdict import Comparison, check_of

BASELINE_SCHEMA = "pinn-parity-baseline"
BASELINE_SCHEMA_VERSION = 1
PATTERN_KEYS = ("config", "stage", "check", "metric")
KNOWN, NEW = Status.KNOWN, "new"  # a failure's verdict: a split the baseline lists, or not


class BaselineError(ValueError):
    """A baseline file is unreadable, of another schema, or an entry is malformed."""


@dataclass(frozen=True)
class BaselineEntry:
    config: str
    stage: str
    check: str
    metric: str
    reason: str
    link: str = ""

    def matches(self, config_id: str, stage: str, check: str, metric: str) -> bool:
        return all(
            fnmatch.fnmatchcase(value, pattern)
            for value, pattern in (
                (config_id, self.config),
                (stage, self.stage),
                (check, self.check),
                (metric, self.metric),
            )
        )

    def covers_stage(self, config_id: str, stage: str) -> bool:
        """Whether a run of (config, stage) could have shown this split."""
        return fnmatch.fnmatchcase(config_id, self.config) and fnmatch.fnmatchcase(stage, self.stage)

    def to_dict(self) -> dict:
        out = {key: getattr(self, key) for key in (*PATTERN_KEYS, "reason")}
        if self.link:
            out["link"] = self.link
        return out


@dataclass(frozen=True)
class Baseline:
    path: Path | None
    entries: tuple[BaselineEntry, ...] = ()

    def match(self, config_id: str, stage: str, check: str, metric: str) -> int | None:
        """Index of the first entry matching a comparison's identity, None when none does."""
        for index, entry in enumerate(self.entries):
            if entry.matches(config_id, stage, check, metric):
                return index
        return None

    def match_record(self, record: Mapping) -> int | None:
        return self.match(record["config_id"], record["stage"], str(check_of(record)), record["metric"])


EMPTY = Baseline(path=None)


def parse_entry(raw, where: str) -> BaselineEntry:
    """One entry; BaselineError naming `where` (file and entry index) and the key at fault."""
    if not isinstance(raw, Mapping):
        raise BaselineError(f"{where}: an entry is a JSON object")
    unknown = sorted(set(raw) - {*PATTERN_KEYS, "reason", "link"})
    if unknown:
        raise BaselineError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    for key in (*PATTERN_KEYS, "reason"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BaselineError(f"{where}: key {key!r} must be a non-empty string, got {value!r}")
    if not any(fnmatch.fnmatchcase(stage, raw["stage"]) for stage in STAGES):
        raise BaselineError(f"{where}: key 'stage' {raw['stage']!r} names no stage; known: {', '.join(STAGES)}")
    link = raw.get("link", "")
    if not isinstance(link, str):
        raise BaselineError(f"{where}: key 'link' must be a string, got {link!r}")
    return BaselineEntry(**{key: raw[key] for key in (*PATTERN_KEYS, "reason")}, link=link)


def parse_baseline(document, path: Path | None) -> Baseline:
    entries = document.get("entries") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise BaselineError(f"{path}: key 'entries' must be a list of entries")
    return Baseline(
        path=path, entries=tuple(parse_entry(raw, f"{path}: entry {index}") for index, raw in enumerate(entries))
    )


def load_baseline(path: str | os.PathLike | None) -> Baseline:
    """The validated baseline at `path`; the empty baseline for None."""
    if path is None:
        return EMPTY
    path = Path(path)
    try:
        document = read_versioned_json(path, kind=BASELINE_SCHEMA, version=BASELINE_SCHEMA_VERSION, what="baseline")
    except VersionedJsonError as error:
        raise BaselineError(str(error)) from None
    return parse_baseline(document, path)


def document(entries: Iterable[BaselineEntry]) -> dict:
    return {
        "schema": BASELINE_SCHEMA,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "entries": [entry.to_dict() for entry in entries],
    }


def save_baseline(path: str | os.PathLike, entries: Iterable[BaselineEntry]) -> Path:
    """Validate, then write atomically."""
    doc = document(entries)
    parse_baseline(doc, Path(path))
    atomic_write_json(Path(path), doc, sort_keys=False)
    return Path(path)


def new_failures(comparisons: Iterable[Comparison], baseline: Baseline) -> list[Comparison]:
    """The failures no baseline entry accepts."""
    return [
        c for c in comparisons if not c.passed and baseline.match(c.config_id, c.stage, str(c.check), c.metric) is None
    ]


def assert_passed(comparisons: Iterable[Comparison], baseline: Baseline = EMPTY) -> None:
    """comparison.assert_passed, but failures the baseline knows do not fail the test."""
    items = list(comparisons)
    if not items:
        raise AssertionError("no comparison was made: a check that compares nothing cannot pass")
    failed = new_failures(items, baseline)
    if failed:
        raise AssertionError("\n\n".join(item.message for item in failed))


def classify(comparisons: list[dict], baseline: Baseline) -> dict:
    """Mark every failed record "baseline": "known" (with "baseline_entry": index) or "new", in place;
    return results.json's "baseline" object: file, entries, fixed entry indices, known and new counts."""
    matched, ran = set(), set()
    known = new = 0
    for record in comparisons:
        ran.add((record["config_id"], record["stage"]))
        if record["passed"]:
            continue
        index = baseline.match_record(record)
        if index is None:
            record["baseline"] = NEW
            new += 1
        else:
            record["baseline"], record["baseline_entry"] = KNOWN, index
            matched.add(index)
            known += 1
    fixed = [
        index
        for index, entry in enumerate(baseline.entries)
        if index not in matched and any(entry.covers_stage(config_id, stage) for config_id, stage in ran)
    ]
    return {
        "file": None if baseline.path is None else str(baseline.path),
        "entries": [entry.to_dict() for entry in baseline.entries],
        "fixed": fixed,
        "known": known,
        "new": new,
    }


def entries_from_failures(
    comparisons: Iterable[Mapping], reason: str, link: str = "", existing: Baseline = EMPTY
) -> list[BaselineEntry]:
    """Existing entries, then one exact entry per failure of a hub that they do not accept yet."""
    if not isinstance(reason, str) or not reason.strip():
        raise BaselineError('every baseline entry needs a reason: pass --reason "why this split is accepted"')
    entries = list(existing.entries)
    for record in comparisons:
        if record["passed"]:
            continue
        found = Baseline(path=None, entries=tuple(entries)).match_record(record)
        if found is None:
            entries.append(
                BaselineEntry(
                    config=_literal(record["config_id"]),
                    stage=record["stage"],
                    check=_literal(str(check_of(record))),
                    metric=_literal(record["metric"]),
                    reason=reason.strip(),
                    link=link,
                )
            )
    return entries


def _literal(text: str) -> str:
    """A glob matching `text` only ("[" escaped, as in max_abs[weights])."""
    return "".join(f"[{char}]" if char in "[]*?" else char for char in text)


def strict_failure(info: Mapping, strict: bool) -> bool:
    """--parity-strict-baseline: a session whose baseline has fixed entries fails (exit 1)."""
    return bool(strict and (info or {}).get("fixed"))


def known_rows(results: Mapping) -> list[tuple[dict, dict]]:
    """(failed comparison record, its baseline entry) of every known split of a results.json."""
    entries = (results.get("baseline") or {}).get("entries", [])
    return [
        (record, entries[record["baseline_entry"]])
        for record in results.get("comparisons", ())
        if record.get("baseline") == KNOWN and 0 <= record.get("baseline_entry", -1) < len(entries)
    ]


def summary_lines(info: Mapping, comparisons: Iterable[Mapping] = ()) -> list[str]:
    """The terminal summary's baseline lines: known splits counted, every fixed entry named."""
    if not info or not info.get("entries"):
        return []
    lines = [
        f"parity baseline {info.get('file')}: {info.get('known', 0)} known split(s), "
        f"{info.get('new', 0)} new failure(s), {len(info.get('fixed', ()))} fixed entr(y/ies)"
    ]
    for index in info.get("fixed", ()):
        entry = info["entries"][index]
        lines.append(
            f"  FIXED baseline entry {index}: {entry_text(entry)} matched nothing; remove it "
            "(--parity-strict-baseline fails the run on this)"
        )
    return lines


def entry_text(entry: Mapping) -> str:
    return f"{entry['config']} {entry['stage']} {entry['check']} {entry['metric']} ({entry['reason']})"
