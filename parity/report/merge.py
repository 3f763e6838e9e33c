"""`python -m parity merge HUB...`: the hubs of a sharded run (--parity-shard) joined into one hub.

Each shard's parts (its comparisons, notes and artifacts, as its workers wrote them) are copied into a new
hub and finalized there as one run's are, with the baseline the shards classified against: results.json
then equals an unsharded run's apart from timings, creation times and log. Hubs of different commits,
profiles, backends or harness versions are refused unless `force`, and so are two hubs that ran one case
(a case counted twice) and a hub that did not complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from parity.baseline import BASELINE_SCHEMA, BASELINE_SCHEMA_VERSION, parse_baseline
from parity.report import hub as hubs

SAME = ("commit", "dirty", "profile", "backends")
"""env keys every merged hub must share (and the harness version, env['packages']['pinn-parity'])."""


class MergeError(hubs.HubError):
    """Hubs that cannot be merged; the message names the hub and what differs."""


def _harness(env) -> str | None:
    return (env.get("packages") or {}).get("pinn-parity")


def _check(loaded: Sequence[tuple[Path, dict]], force: bool) -> None:
    first_path, first = loaded[0]
    seen: dict[str, Path] = {}
    for path, results in loaded:
        if not results.get("complete"):
            raise MergeError(f"{path}: an incomplete run (interrupted or crashed); rerun that shard")
        env = results["env"]
        for case in env.get("configs", []):
            if case in seen:
                raise MergeError(f"{path}: case {case!r} also ran in {seen[case]}; each case belongs to one shard")
            seen[case] = path
        if force:
            continue
        for key in SAME:
            if env.get(key) != first["env"].get(key):
                raise MergeError(
                    f"{path}: env {key} {env.get(key)!r} differs from {first_path}'s {first['env'].get(key)!r} "
                    "(--force merges anyway)"
                )
        if _harness(env) != _harness(first["env"]):
            raise MergeError(
                f"{path}: harness pinn-parity {_harness(env)!r} differs from {first_path}'s "
                f"{_harness(first['env'])!r} (--force merges anyway)"
            )


def _copy_parts(source: Path, target: Path, prefix: str) -> None:
    """source's parts/ into target's, every worker id prefixed (artifact paths rewritten to match)."""
    parts = source / hubs.PARTS_DIR
    for folder in sorted(p for p in parts.iterdir() if p.is_dir()):
        shutil.copytree(folder, target / hubs.PARTS_DIR / f"{prefix}{folder.name}")
    for part in sorted(parts.glob("*.jsonl")):
        lines = []
        for line in part.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else None
            if record and record.get("record") == "artifact":
                head = f"{hubs.PARTS_DIR}/"
                record["file"] = head + prefix + record["file"][len(head) :]
                line = json.dumps(record)
            lines.append(line)
        (target / hubs.PARTS_DIR / f"{prefix}{part.name}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for timing in sorted((source / "timings").glob("*.json")):
        (target / "timings").mkdir(exist_ok=True)
        shutil.copyfile(timing, target / "timings" / f"{prefix}{timing.name}")


def merge_hubs(sources: Sequence[str | Path], root: str | Path = "reports", *, force: bool = False) -> Path:
    """A new hub under `root` holding every source hub's results, finalized; its path."""
    if len(sources) < 2:
        raise MergeError("merge needs at least two hubs")
    loaded = [(hubs.resolve_hub(path), hubs.load_results(path)) for path in sources]
    _check(loaded, force)
    first = loaded[0][1]
    env = dict(first["env"])
    shard = env.pop("shard", None)
    ran = [case for _, results in loaded for case in results["env"].get("configs", [])]
    order = shard["configs"] if shard else ran  # the unsharded run's order
    env["configs"] = [case for case in order if case in ran] + [case for case in ran if case not in order]
    env["exitstatus"] = max(int(results["env"].get("exitstatus", 0)) for _, results in loaded)
    env["merged"] = [path.name for path, _ in loaded]
    recorded = first.get("baseline") or {}
    baseline = parse_baseline(
        {"schema": BASELINE_SCHEMA, "schema_version": BASELINE_SCHEMA_VERSION, "entries": recorded.get("entries", [])},
        Path(recorded["file"]) if recorded.get("file") else None,
    )
    target = hubs.new_hub(root)
    for number, (path, _) in enumerate(loaded, 1):
        _copy_parts(path, target, f"s{number}-")
    log = "".join(
        f"== {path.name}\n"
        + ((path / hubs.LOG_NAME).read_text(encoding="utf-8") if (path / hubs.LOG_NAME).is_file() else "")
        for path, _ in loaded
    )
    hubs.finalize(target, env, log, complete=True, baseline=baseline)
    return target
