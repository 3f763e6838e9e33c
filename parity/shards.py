"""Shards: one CI job's share of a profile's cases (`--parity-shard I/N`), for a job matrix to spread a run.

The unit is a case: its stages share inputs and trained states (one xdist group, parity/plugin.py), so a
case is never split across shards. Cases go to shards longest first, each to the shard with the least
time so far (ties to the lowest index), so every job of a matrix computes the same assignment from the
same inputs. A case's time comes from `--parity-durations`: a hub (the seconds its timings/ record per
case, every backend and stage added up) or a JSON file {case id: seconds}. A case with no recorded time
counts as the mean of those recorded (1 s when none is): with no durations at all the shards get equal
numbers of cases. Each shard writes a full hub of its own; `python -m parity merge` joins them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SHARD = re.compile(r"(\d+)/(\d+)\Z")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'I/N' with 1 <= I <= N; a ValueError naming --parity-shard otherwise."""
    found = SHARD.match(str(text).strip())
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise ValueError(f"--parity-shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return Shard(int(found[1]), int(found[2]))


def case_seconds(source: str | Path) -> dict[str, float]:
    """Seconds per case from a hub's timings/*.json (or reports/latest) or a JSON file {case id: seconds}."""
    path = Path(source)
    if path.is_dir():
        files = sorted((path / "timings").glob("*.json"))
        if not files:
            raise ValueError(f"--parity-durations {source}: a hub with no timings/*.json")
        seconds: dict[str, float] = {}
        for file in files:
            for case, backends in _read_json(file).items():
                total = sum(float(s) for stages in backends.values() for s in stages.values())
                seconds[case] = seconds.get(case, 0.0) + total
        return seconds
    document = _read_json(path)
    if not isinstance(document, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and v >= 0 for k, v in document.items()
    ):
        raise ValueError(f"--parity-durations {source}: expected a JSON object {{case id: seconds >= 0}}")
    return {case: float(s) for case, s in document.items()}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"--parity-durations {path}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise ValueError(f"--parity-durations {path}: not JSON ({error})") from None


def assign(case_ids: Sequence[str], count: int, seconds: Mapping[str, float]) -> list[list[str]]:
    """The case ids of each of `count` shards (each list in the given order), balanced by `seconds`."""
    known = [seconds[c] for c in case_ids if c in seconds]
    default = sum(known) / len(known) if known else 1.0
    weight = {c: seconds.get(c, default) for c in case_ids}
    loads = [0.0] * count
    owner: dict[str, int] = {}
    for case in sorted(case_ids, key=lambda c: (-weight[c], case_ids.index(c))):
        shard = min(range(count), key=lambda i: (loads[i], i))
        owner[case] = shard
        loads[shard] += weight[case]
    return [[c for c in case_ids if owner[c] == i] for i in range(count)]


def select(cases: Iterable, shard: Shard, seconds: Mapping[str, float]) -> list:
    """The cases (ParityCase or anything with .id) of `shard`, in their order."""
    cases = list(cases)
    mine = set(assign([c.id for c in cases], shard.count, seconds)[shard.index - 1])
    return [c for c in cases if c.id in mine]
