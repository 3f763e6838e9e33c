"""ParitySession.release: a finished case's state goes, its timings stay for the hub."""

import json

from adapters.referee import Float64Referee
from parity.matrix import ParityCase, SimulatedData
from parity.report import hub as hubs

from .factories import session_with

CASE = ParityCase("gs1-k4-poisson-n32-release", SimulatedData(seed=3, n_positions=20), {})


class Float32Referee(Float64Referee):
    """A second referee under another name: a pair that agrees, numpy only."""


def test_release_drops_the_context_and_keeps_its_timings(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports")
    session = session_with(tmp_path, hub, {"f64": Float64Referee(), "f32": Float32Referee()}, worker="gw0")
    session.run(CASE, "grouping")
    first = session.contexts[CASE.id]
    session.release(CASE.id)
    assert CASE.id not in session.contexts
    session.release(CASE.id)  # a second release of the same case is harmless
    session.write_timings()
    timings = json.loads((hub / "timings" / "gw0.json").read_text())
    assert set(timings[CASE.id]) >= {"f64", "f32"}
    assert timings[CASE.id]["f32"]["grouping"] > 0
    session.run(CASE, "grouping")  # a case that comes back gets a fresh context
    assert session.contexts[CASE.id] is not first
