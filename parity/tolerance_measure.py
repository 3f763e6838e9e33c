"""Measure the errors behind the tolerance ledger over several seeds.

    python -m parity tolerances --measure --seeds N [--write] [--parity-config IDS]
        [--parity-backends A,B] [--parity-profile NAME|PATH]

Runs every stage check of the profile's cases (cross-backend only, no goldens;
contract checks where the profile counts them) with the data seed of each case
shifted N times, keeps the worst value measured for each ledger key and prints
it beside the profile's ledger. A failure the profile's baseline lists is a
known split, not float32 noise: it is counted apart and never measured, so a
split cannot widen a tolerance. It fails when a measured error
exceeds its tolerance, and flags entries with headroom over 100x (candidates to
tighten). `--write` sets each measured entry to worst x headroom, with its
provenance (seeds, environment, date); it never loosens an entry without
saying so on the terminal.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from adapters.registry import get_adapter
from backends.common.fileio import installed_versions
from parity.baseline import EMPTY, Baseline
from parity.case_context import make_context
from parity.envinfo import DEFAULT_TOLERANCE_CLASS, collect_environment, utc_now
from parity.matrix import MATRIX
from parity.profiles import BUNDLED, Profile
from parity.stage_runner import run_stage
from parity.stages import STAGES
from parity.tolerances import (
    DEFAULT_LEDGER_PATH,
    load_ledger,
    read_ledger_document,
    running_class,
    save_ledger_document,
    use_ledger,
)
from parity.verdict import REFEREE

HEADROOM = 10.0
SEED_STRIDE = 1000  # measurement seed s uses data seed case.seed + s * SEED_STRIDE
ULPS_FLOOR = 8  # below 8 ulps of the largest magnitude, a difference is rounding, whatever was measured


def shifted_cases(seeds, cases=MATRIX):
    for seed in seeds:
        for case in cases:
            yield seed, replace(case, data=replace(case.data, seed=case.data.seed + seed * SEED_STRIDE))


def _observed(comparison) -> tuple[str, float, float] | None:
    """(ledger key, value measured, reference magnitude) of a comparison that used the ledger."""
    tol = comparison.tolerance or {}
    key, measure = tol.get("key"), tol.get("measure")
    if not key or measure not in comparison.measured:
        return None
    return key, float(comparison.measured[measure]), float(comparison.measured.get("max_ref", 1.0))


def measure(
    seeds,
    backends=("tf_pinn", "torch_pinn"),
    cases=None,
    log=print,
    stages=STAGES,
    profile: Profile = BUNDLED,
    baseline: Baseline = EMPTY,
    adapters=None,
) -> dict:
    """ledger key -> {"worst": value, "max_ref": magnitude, "seeds": [...], "n": count}, over the profile's
    cases (or `cases`), judged with the profile's ledger; comparisons of contract checks the profile leaves
    out, and failures `baseline` knows (splits, not noise), are not measured. `adapters` (name -> Adapter)
    stands in for the registered `backends` where given."""
    adapters = adapters if adapters is not None else {name: get_adapter(name) for name in backends}
    # "<backend>~referee" comparisons use the same ledger entries: measured too, where the profile counts them
    uses_referee = any(profile.applies(REFEREE, stage) for stage in stages)
    referee = get_adapter(REFEREE) if uses_referee else None
    ledger = load_ledger(profile.ledger)
    previous = use_ledger(profile.ledger)  # the checks' tolerance() reads the profile's ledger
    found, known = {}, 0
    try:
        with tempfile.TemporaryDirectory(prefix="parity-measure-") as workdir:
            for seed, case in shifted_cases(seeds, profile.cases if cases is None else cases):
                ctx = make_context(case, adapters, Path(workdir), referee=referee)
                for stage in stages:
                    for comparison in run_stage(ctx, stage).comparisons:
                        if not profile.applies(comparison.check.right, stage):
                            continue
                        if (
                            not comparison.passed
                            and baseline.match(case.id, stage, str(comparison.check), comparison.metric) is not None
                        ):
                            known += 1  # seed-shifted cases keep their id, so the baseline still matches
                            continue
                        if comparison.kind == "error":
                            log(f"  seed {seed} {case.id} {stage}: {comparison.headline}")
                        got = _observed(comparison)
                        if got is not None:
                            _keep_worst(found, ledger, seed, *got)
                log(f"seed {seed} {case.id}: done")
    finally:
        use_ledger(previous)
    if known:
        log(f"{known} failed comparison(s) are known splits of the baseline: not measured")
    return found


def _keep_worst(found: dict, ledger, seed: int, key: str, value: float, ref: float) -> None:
    """Fold one measurement into found[key]: the worst value (lowest for lower bounds), the
    largest magnitude compared, the seeds seen and the count."""
    lower = ledger.entries[key].bound == "lower" if key in ledger.entries else False
    slot = found.setdefault(key, {"worst": value, "max_ref": ref, "seeds": [], "n": 0})
    worse = value < slot["worst"] if lower else value > slot["worst"]
    slot["worst"] = value if worse else slot["worst"]
    slot["max_ref"] = max(slot["max_ref"], ref)
    slot["n"] += 1
    if seed not in slot["seeds"]:
        slot["seeds"].append(seed)


def proposed_value(entry_bound: str, worst: float, max_ref: float, headroom: float, dtype: str) -> float:
    """max(worst x headroom, floor); for lower bounds (SSIM, FRC) on the deficit from 1.

    The floor is a few ulps (of the entry's dtype) of the largest magnitude compared:
    where two backends happened to agree bit for bit on these seeds, a bound of zero
    would fail on the next machine's rounding. It is not multiplied by the headroom."""
    floor = ULPS_FLOOR * float(np.finfo(np.dtype(dtype)).eps)
    if entry_bound == "lower":
        deficit = max(headroom * (1.0 - worst), floor)
        return 1.0 - float(f"{deficit:.3g}")
    return float(f"{max(headroom * worst, floor * max(max_ref, 1.0)):.3g}")


def report(found: dict, ledger) -> tuple[list[str], bool]:
    """Table lines, and whether every measurement is within its current tolerance."""
    lines = [f"{'ledger key':34s} {'measured':>11s} {'tolerance':>11s} {'headroom':>9s}  verdict"]
    ok = True
    cls = running_class()  # a measurement on a GPU is judged against (and written to) the gpu class
    for key in sorted(set(found) | set(ledger.entries)):
        entry, got = (ledger.resolve(key, cls) if key in ledger.entries else None), found.get(key)
        if got is None:
            lines.append(f"{key:34s} {'-':>11s} {entry.value:11.3g} {'':>9s}  not exercised")
            continue
        if entry is None:
            ok = False
            lines.append(f"{key:34s} {got['worst']:11.3g} {'-':>11s} {'':>9s}  NO LEDGER ENTRY")
            continue
        if entry.bound == "lower":
            fails = got["worst"] < entry.value
            room = (1 - entry.value) / max(1 - got["worst"], 1e-300)
        else:
            fails = got["worst"] > entry.value
            room = entry.value / max(got["worst"], 1e-300)
        verdict = "EXCEEDS TOLERANCE" if fails else ("headroom > 100x: tighten?" if room > 100 else "ok")
        ok &= not fails
        lines.append(f"{key:34s} {got['worst']:11.3g} {entry.value:11.3g} {room:9.3g}  {verdict}")
    return lines, ok


def write_ledger(found: dict, path=DEFAULT_LEDGER_PATH, log=print) -> None:
    """Replace measured entries' values and provenance; other entries stay as they are.

    Each entry keeps its own headroom factor: 10 for deterministic stages, less where
    the metric is chaotic by nature (training), so that the band still means something.
    On a machine of another tolerance class than "cpu" (PINN_PARITY_DEVICE) the values go to the entry's
    `classes.<class>` (created from the entry's headroom), never over its cpu fields."""
    document = read_ledger_document(path)
    env = collect_environment()
    threads = ", ".join(f"{k}={v}" for k, v in sorted(env.get("threads", {}).items()))
    environment = {
        "versions": installed_versions(),
        "platform": env.get("platform", "?"),
        "threads": threads,
        "fingerprint": env["fingerprint"],
    }
    cls = env["fingerprint"]["tolerance_class"]
    for key, got in sorted(found.items()):
        base = document["entries"].get(key)
        if base is None:
            log(f"  {key}: measured {got['worst']:.3g} but the ledger has no entry; add one by hand first")
            continue
        if cls == DEFAULT_TOLERANCE_CLASS:
            entry = base
        else:
            classes = base.setdefault("classes", {})
            entry = classes.setdefault(
                cls, {"value": base["value"], "headroom": base.get("headroom", HEADROOM), "provisional": True}
            )
        bound = base.get("bound", "upper")  # a class entry takes bound and dtype from its entry
        headroom = float(entry.get("headroom", HEADROOM))
        value = proposed_value(bound, got["worst"], got["max_ref"], headroom, base["dtype"])
        if value > entry["value"] and not entry.get("provisional"):
            log(f"  {key}: LOOSENED {entry['value']:.3g} -> {value:.3g} (measured {got['worst']:.3g})")
        entry.update(
            value=value,
            rtol=0.0,
            measured_max=got["worst"],
            seeds=got["seeds"],
            headroom=headroom,
            environment=environment,
            date=utc_now()[:10],
            provisional=False,
            note=f"{got['n']} comparisons; value = {'1 - ' if bound == 'lower' else ''}"
            f"worst{' deficit' if bound == 'lower' else ''} x headroom",
        )
        if not math.isfinite(entry["value"]):
            raise ValueError(f"{key}: non-finite proposed tolerance")
    save_ledger_document(document, path)
