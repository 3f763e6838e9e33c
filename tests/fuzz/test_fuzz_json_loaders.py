"""Fuzzing the JSON loaders: profile, baseline, tolerance ledger, results.json (and what `python -m parity
diff / merge / baseline` do with it), golden manifest, config JSON.

Each example damages a genuine file (tests/fuzz/genuine.py) structurally and as bytes (mutations.py); the
loader must load it or raise its own error class in one line naming the file, within the memory cap.
"""

from __future__ import annotations

import shutil

from hypothesis import given
from hypothesis import strategies as st

from backends.common.config import ConfigError, config_from_json
from parity.baseline import BaselineError, entries_from_failures, known_rows, load_baseline, save_baseline
from parity.golden import GoldenError, GoldenStore
from parity.profiles import ProfileError, load_profile, load_profile_file
from parity.report.diff import diff_hubs, render_diff_text
from parity.report.hub import HubError, load_results
from parity.report.merge import merge_hubs
from parity.tolerances import LedgerError, load_ledger

from .genuine import GOLDEN_FOLDER, GOLDEN_ID, LEDGER_FILE, PROFILE_FOLDER, copy_hub, copy_profile, read_json
from .mutations import check_loader, damaged_json, scratch

PROFILE = read_json(PROFILE_FOLDER / "profile.json")
BASELINE = read_json(PROFILE_FOLDER / "baseline.json")
LEDGER = read_json(LEDGER_FILE)
MANIFEST = read_json(GOLDEN_FOLDER / "manifest.json")
CONFIG = read_json(GOLDEN_FOLDER / "config.json")


@given(data=st.data())
def test_profile(data):
    with scratch() as folder:
        path = copy_profile(folder / "profile") / "profile.json"
        path.write_bytes(damaged_json(data, PROFILE, label="profile.json"))
        check_loader(lambda: load_profile_file(path), ProfileError, (path,))
        check_loader(lambda: load_profile(str(path.parent)), ProfileError, (path,))


@given(data=st.data())
def test_baseline(data):
    with scratch() as folder:
        path = folder / "baseline.json"
        path.write_bytes(damaged_json(data, BASELINE, label="baseline.json"))
        check_loader(lambda: load_baseline(path), BaselineError, (path,))


@given(data=st.data())
def test_ledger(data):
    with scratch() as folder:
        path = folder / "tolerances.json"
        path.write_bytes(damaged_json(data, LEDGER, label="tolerances.json", max_mutations=4))
        check_loader(lambda: load_ledger(path), LedgerError, (path.resolve(),))


@given(data=st.data())
def test_golden_manifest(data):
    with scratch() as folder:
        path = folder / GOLDEN_ID / "manifest.json"
        path.parent.mkdir()
        path.write_bytes(damaged_json(data, MANIFEST, label="manifest.json"))
        check_loader(lambda: GoldenStore(folder).read_manifest(GOLDEN_ID), GoldenError, (path,))


@given(data=st.data())
def test_config_json(data):
    with scratch() as folder:
        path = folder / "config.json"
        path.write_bytes(damaged_json(data, CONFIG, label="config.json"))
        check_loader(lambda: config_from_json(path), ConfigError, (path,))


def _damaged_hub(data, genuine, folder):
    """A copy of the `genuine` hub under `folder` whose results.json is damaged; (hub, its results.json)."""
    hub = copy_hub(genuine, folder / "hub")
    path = hub / "results.json"
    path.write_bytes(damaged_json(data, read_json(genuine / "results.json"), label="results.json", max_mutations=4))
    return hub, path


def _results_readers(hub, genuine):
    """What the verbs do with a hub's results.json: load it, diff it against a genuine hub both ways
    (`python -m parity diff`), and build baseline entries from its failures (`python -m parity baseline`)."""
    results = load_results(hub)
    render_diff_text(diff_hubs(genuine, hub))
    render_diff_text(diff_hubs(hub, genuine))
    known_rows(results)
    entries = entries_from_failures(results["comparisons"], "fuzz")
    save_baseline(hub / "baseline.json", entries)


@given(data=st.data())
def test_results_json(data, genuine_hubs):
    first, second = genuine_hubs
    with scratch() as folder:
        hub, path = _damaged_hub(data, second, folder)
        check_loader(lambda: _results_readers(hub, first), (HubError, BaselineError), (path, hub))


@given(data=st.data())
def test_results_json_merge(data, genuine_hubs):
    """`python -m parity merge`: the damaged hub is the second shard of a run whose first shard is genuine."""
    first, second = genuine_hubs
    with scratch() as folder:
        hub, path = _damaged_hub(data, second, folder)
        check_loader(lambda: merge_hubs([first, hub], folder / "merged"), HubError, (path, hub))
        shutil.rmtree(folder / "merged", ignore_errors=True)
