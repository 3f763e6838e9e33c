"""`python -m parity tolerances --measure` on a foreign profile: its cases and ledger, its contract checks
only, and no measurement of a split its baseline knows (a split must never widen a tolerance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from foreign_adapters import ForeignA, ForeignB

from parity import profiles, tolerance_measure
from parity.baseline import Baseline, BaselineEntry
from parity.tolerances import load_ledger

PROFILE = Path(__file__).resolve().parent / "profile"


class ShiftedB(ForeignB):
    """ForeignB with a translation that errs by 1e-3: a split, far above float32 noise."""

    def translate(self, images, shifts_px):
        return super().translate(images, shifts_px) + np.complex64(1e-3)


def _measure(profile, baseline, b=ForeignB):
    a, other = ForeignA(), b()
    a.name, other.name = "foreignA", "foreignB"
    gs1 = tuple(c for c in profile.cases if c.config.gridsize == 1)
    return tolerance_measure.measure(
        [0],
        cases=gs1,
        stages=("translation",),
        profile=profile,
        baseline=baseline,
        adapters={"foreignA": a, "foreignB": other},
        log=lambda line: None,
    )


def test_measure_uses_the_profiles_ledger_and_its_contract_checks():
    profile = profiles.load_profile(str(PROFILE))
    found = _measure(profile, Baseline(path=None))
    assert set(found) == {"translation.max_abs.float32"}
    # foreignB~foreignA, foreignA~referee and foreignB~referee: the profile counts the referee at translation
    assert found["translation.max_abs.float32"]["n"] == 3
    lines, ok = tolerance_measure.report(found, load_ledger(profile.ledger))
    assert ok and any(line.startswith("translation.max_abs.float32") for line in lines)


def test_a_known_split_is_not_measured_and_an_unknown_one_is():
    profile = profiles.load_profile(str(PROFILE))
    unknown = _measure(profile, Baseline(path=None), ShiftedB)
    assert unknown["translation.max_abs.float32"]["worst"] >= 1e-3  # an unbaselined split shows, and fails
    assert not tolerance_measure.report(unknown, load_ledger(profile.ledger))[1]
    known = Baseline(path=None, entries=(BaselineEntry("*", "translation", "*", "translated", "planted"),))
    measured = _measure(profile, known, ShiftedB)
    assert measured["translation.max_abs.float32"]["worst"] < 1e-5  # only foreignA~referee, which passes
    assert measured["translation.max_abs.float32"]["n"] == 1


def test_the_verb_reads_the_profiles_ledger_and_refuses_a_bad_profile_in_one_line(tmp_path, capsys):
    from parity.__main__ import main

    assert main(["tolerances", "--parity-profile", str(PROFILE)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(load_ledger(PROFILE / "ledger.json").entries)
    assert main(["tolerances", "--parity-profile", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("parity: error: --parity-profile: no profile") and len(err.splitlines()) == 1
