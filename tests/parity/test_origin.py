"""Where a check that could not run raised (parity.origin): in the code under test, in the adapter, or in
the harness; a red stage from an adapter that fell behind is an "adapter error", not a split, and the code
under test's warnings are listed per stage. Real modules, written to disk and imported."""

import sys
import textwrap

import pytest

from adapters.referee import Float64Referee
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.report import hub as hubs
from parity.report.summary import render_summary
from parity.stage_runner import run_stage
from parity.status import NoteKind

CASE = ParityCase("gs1-k4-poisson-n32-origin", SimulatedData(seed=3, n_positions=12), {})

TEAM_CODE = """
import warnings

import numpy as np


def shift(images, shifts_px):  # renamed from translate in this "revision"
    return np.asarray(images)


def translate_checked(images, shifts_px):
    raise ValueError("shifts must be integers")


def forward_old(*args):
    warnings.warn("forward_old is deprecated; use forward_new", DeprecationWarning, stacklevel=2)
    raise RuntimeError("stop here")
"""

TEAM_ADAPTER = '''
import origin_code
from adapters.referee import Float64Referee


class Team(Float64Referee):
    """Translates through the team's code, as a team adapter would."""

    code_under_test = ("origin_code",)

    def translate(self, images, shifts_px):
        return origin_code.translate(images, shifts_px)  # the entry point moved: an AttributeError here


class Crashing(Team):
    def translate(self, images, shifts_px):
        return origin_code.translate_checked(images, shifts_px)


class Deprecated(Team):
    def forward(self, object_patches, probe, offsets_px, object_big):
        return origin_code.forward_old(object_patches)
'''


@pytest.fixture
def team(tmp_path, monkeypatch):
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "origin_code.py").write_text(textwrap.dedent(TEAM_CODE))
    (folder / "origin_adapter.py").write_text(textwrap.dedent(TEAM_ADAPTER))
    monkeypatch.syspath_prepend(str(folder))
    import origin_adapter

    yield origin_adapter
    for name in ("origin_code", "origin_adapter"):
        sys.modules.pop(name, None)


def _context(tmp_path, other):
    reference, other.name = Float64Referee(), "team"
    reference.name = "clean"
    return make_context(CASE, {"clean": reference, "team": other}, tmp_path / "work")


def test_an_entry_point_that_moved_is_an_adapter_error_naming_it_not_a_split(tmp_path, team):
    result = run_stage(_context(tmp_path, team.Team()), "translation")
    (failed,) = [c for c in result.comparisons if not c.passed]
    assert failed.error["origin"] == "adapter" and failed.error["type"] == "AttributeError"
    assert "module 'origin_code' has no attribute 'translate'" in failed.message
    assert failed.error["raised_at"].endswith("origin_adapter.py:12 in translate")
    assert "Traceback (most recent call last)" in failed.error["traceback"]
    hub = hubs.new_hub(tmp_path / "reports")
    hubs.write_part(hub, "gw0", result.comparisons, notes=result.notes)
    results = hubs.finalize(hub, {}, "", complete=True)
    entry = results["configs"][CASE.id]
    assert entry["stages"] == {"translation": "adapter error"} and entry["first_divergence"] is None
    assert results["totals"]["stages"]["adapter error"] == 1
    summary = render_summary(results)
    assert "## Could not run" in summary and "raised in an adapter: it fell behind the code under test" in summary
    assert "has no attribute 'translate' (at " in summary


def test_a_crash_inside_the_code_under_test_is_the_codes_own_and_stays_a_failure(tmp_path, team):
    result = run_stage(_context(tmp_path, team.Crashing()), "translation")
    (failed,) = [c for c in result.comparisons if not c.passed]
    assert failed.error["origin"] == "code under test"
    assert failed.error["raised_at"].endswith("origin_code.py:12 in translate_checked")
    summary = hubs.summarize_configs([failed.to_dict()])
    assert summary[CASE.id]["stages"] == {"translation": "fail"}


def test_the_code_under_tests_warnings_are_listed_per_stage(tmp_path, team):
    result = run_stage(_context(tmp_path, team.Deprecated()), "forward")
    warned = [n.text for n in result.notes if n.kind == NoteKind.WARNING]
    assert len(warned) == 1 and warned[0].startswith("DeprecationWarning at ")
    assert "origin_adapter.py" in warned[0] and warned[0].endswith("forward_old is deprecated; use forward_new")


def test_an_error_the_harness_raises_itself_is_the_harness_s(tmp_path, team):
    from parity.comparators import error_comparison
    from parity.origin import Places
    from parity.tolerances import LedgerError, tolerance
    from parity.verdict import Check

    with pytest.raises(LedgerError) as raised:
        tolerance("loss", "no_such_metric", "float32")
    found = error_comparison(
        config_id=CASE.id,
        stage="loss",
        check=Check("ledger"),
        metric="tolerance",
        error=raised.value,
        places=Places.of([team.Team()]),
    )
    assert found.error["origin"] == "harness" and "parity/tolerances.py" in found.error["raised_at"]
    assert hubs.summarize_configs([found.to_dict()])[CASE.id]["stages"] == {"loss": "harness error"}
