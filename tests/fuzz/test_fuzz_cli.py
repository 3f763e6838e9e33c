"""The fuzzed files through the commands users run: exit status 2, one line on stderr (the loader's own
message, as the in-process loader gives it), no traceback.

One command per kind of file: `python -m parity run --parity-profile` (profile), `diff` (results.json),
`baseline --output` (an existing baseline), `tolerances --parity-profile` (the profile's ledger), and the
bundled backends' `train` (dataset NPZ) and `infer` (bundle). Each example is a subprocess (seconds), so
each test runs a handful: examples whose file loads in process are discarded (assume), since a command
given a good file would go on and run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backends.common.bundle_io import BundleError, read_bundle
from backends.common.dataset import DatasetError, load_dataset
from parity.baseline import BaselineError, load_baseline
from parity.profiles import ProfileError, load_profile
from parity.report.hub import HubError, load_results
from parity.tolerances import LedgerError, load_ledger

from .genuine import LEDGER_FILE, PROFILE_FOLDER, REPO, copy_hub, copy_profile, read_json
from .mutations import check_loader, damaged_bytes, damaged_json, scratch, zip_bytes
from .test_fuzz_archives import _members, damaged_members

FUZZING = settings().max_examples > 100  # the "fuzz" profile (make fuzz), not "default" (make test)
CLI_EXAMPLES = 12 if FUZZING else 2
"""Examples per `python -m parity` command: a subprocess each (a second or two)."""
BACKEND_CLI_EXAMPLES = 4 if FUZZING else 1
"""Examples per backend command (train, infer): each imports torch, ten seconds or more on a busy machine."""
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

pytestmark = pytest.mark.slow


def one_error_line(args, error: Exception, cwd: Path) -> None:
    """`python args` exits 2 with one stderr line `PROG: error: <the loader's message>`, no traceback."""
    done = subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stderr.splitlines() if line.strip() and "RuntimeWarning" not in line]
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].endswith(f"error: {error}"), (lines[0], str(error))


def _refused(load, errors, names):
    """The loader's error on the damaged file; the example is discarded when the file loads."""
    found = check_loader(load, errors, names)
    assume(isinstance(found, errors))
    return found


@settings(max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_run_refuses_a_damaged_profile(data):
    with scratch() as folder:
        profile = copy_profile(folder / "profile")
        (profile / "profile.json").write_bytes(damaged_json(data, read_json(PROFILE_FOLDER / "profile.json")))
        error = _refused(lambda: load_profile(str(profile)), ProfileError, (profile / "profile.json",))
        one_error_line(["-m", "parity", "run", "--parity-profile", profile], error, folder)


@settings(max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_tolerances_refuses_a_damaged_ledger(data):
    with scratch() as folder:
        profile = copy_profile(folder / "profile")
        ledger = profile / read_json(profile / "profile.json")["ledger"]
        ledger.write_bytes(damaged_json(data, read_json(LEDGER_FILE)))
        error = _refused(lambda: load_ledger(ledger), LedgerError, (ledger.resolve(),))
        one_error_line(["-m", "parity", "tolerances", "--parity-profile", profile], error, folder)


@settings(max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_baseline_refuses_a_damaged_baseline(data, genuine_hubs):
    with scratch() as folder:
        path = folder / "baseline.json"
        path.write_bytes(damaged_json(data, read_json(PROFILE_FOLDER / "baseline.json")))
        error = _refused(lambda: load_baseline(path), BaselineError, (path,))
        args = ["-m", "parity", "baseline", genuine_hubs[0], "--output", path, "--reason", "fuzz"]
        one_error_line(args, error, folder)


@settings(max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_diff_refuses_a_damaged_results_json(data, genuine_hubs):
    first, second = genuine_hubs
    with scratch() as folder:
        hub = copy_hub(second, folder / "hub")
        (hub / "results.json").write_bytes(damaged_json(data, read_json(second / "results.json"), max_mutations=4))
        error = _refused(lambda: load_results(hub), HubError, (hub,))
        one_error_line(["-m", "parity", "diff", first, hub], error, folder)


@settings(max_examples=BACKEND_CLI_EXAMPLES)
@given(data=st.data())
def test_train_refuses_a_damaged_dataset(data, genuine_dataset):
    with scratch() as folder:
        path = folder / "scan.npz"
        members = damaged_members(data, _members(genuine_dataset), label="npz")
        path.write_bytes(damaged_bytes(data, zip_bytes(members)))
        error = _refused(lambda: load_dataset(path), DatasetError, (path,))
        args = ["-m", "backends.torch_pinn.train", "--train-data-file", path, "--output-dir", folder / "out"]
        one_error_line(args + ["--epochs", "0"], error, folder)
        assert not (folder / "out").exists()


@settings(max_examples=BACKEND_CLI_EXAMPLES)
@given(data=st.data())
def test_infer_refuses_a_damaged_bundle(data, genuine_bundle, genuine_dataset):
    with scratch() as folder:
        path = folder / "bundle.zip"
        members = damaged_members(data, _members(genuine_bundle), label="bundle")
        path.write_bytes(damaged_bytes(data, zip_bytes(members, compress=True)))
        error = _refused(lambda: read_bundle(path), BundleError, (path,))
        args = ["-m", "backends.torch_pinn.infer", "--bundle", path, "--data-file", genuine_dataset]
        one_error_line(args + ["--output-dir", folder / "out"], error, folder)
