"""The harness on a foreign-shaped pair (foreign_adapters.py): channel-last arrays, the opposite
offset sign and N = 64 only, converted in the adapters; one adapter with six stages; a planted
default split kept in the profile's baseline (profile/). In-process through ParitySession and
make_context, then the real `python -m pytest parity/` with the adapters registered as entry points.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from foreign_adapters import ForeignA, ForeignB, make_groups

from adapters.referee import group_positions, translate
from backends.common.dataset import save_dataset
from backends.common.simulate import simulate
from parity import baseline as baselines
from parity import profiles
from parity.case_context import Unsupported, make_context
from parity.report import hub as hubs
from parity.session import ParitySession
from parity.stage_runner import run_stage
from parity.stages import STAGES
from parity.stages.config import resolved_config
from parity.status import NoteKind
from parity.tolerances import use_ledger

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROFILE = HERE / "profile"
SIX = ("config", "data", "grouping", "translation", "forward", "loss")


@pytest.fixture
def profile():
    loaded = profiles.load_profile(str(PROFILE))
    previous = use_ledger(loaded.ledger)
    yield loaded
    use_ledger(previous)


def case(profile, gridsize):
    return next(c for c in profile.cases if c.config.gridsize == gridsize)


def pair():
    a, b = ForeignA(), ForeignB()
    a.name, b.name = "foreignA", "foreignB"
    return {"foreignA": a, "foreignB": b}


# --- the adapters -------------------------------------------------------------------------------


def test_capabilities_come_from_what_each_adapter_overrides():
    assert ForeignA().supported_stages() == (*SIX, "optimizer", "reconstruction")
    assert ForeignB().supported_stages() == SIX


def test_the_adapter_turns_their_layout_and_offset_sign_into_ours(tmp_path):
    data = simulate(seed=3, n_positions=20, n=64)
    config = {"gridsize": 2, "neighbor_count": 4, "seed": 1}
    ours = group_positions(data.xcoords, data.ycoords, config)
    theirs = make_groups(data.xcoords, data.ycoords, {"grid": 2, "K": 4, "seed": 1}, False)
    np.testing.assert_array_equal(theirs["offsets"], -ours["offsets_px"])  # centre - position
    adapted = ForeignA().group(data.xcoords, data.ycoords, config)
    np.testing.assert_array_equal(adapted["offsets_px"], ours["offsets_px"])
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 4, 64, 64)).astype(np.complex64)
    shifts = rng.uniform(-8, 8, (2, 4, 2))
    out = ForeignA().translate(images, shifts)
    assert out.shape == images.shape and out.dtype == np.complex64  # NCHW in, NCHW out
    np.testing.assert_allclose(out, translate(images, shifts), atol=1e-5)


def test_a_patch_size_other_than_64_is_refused_clearly(tmp_path):
    path = tmp_path / "n32.npz"
    save_dataset(simulate(seed=3, n_positions=20, n=32), path)
    with pytest.raises(ValueError, match=r"foreignA.resolve_config: .*N = 64 only, got N = 32"):
        ForeignA().resolve_config({}, data_path=path)
    with pytest.raises(ValueError, match="N = 64 only"):
        ForeignB().translate(np.zeros((1, 1, 32, 32), np.complex64), np.zeros((1, 1, 2)))


def test_own_fields_are_compared_where_both_have_them_and_noted_where_one_has(tmp_path, profile):
    ctx = make_context(case(profile, 1), pair(), tmp_path)
    result = run_stage(ctx, "config")
    by_metric = {(str(c.check), c.metric): c for c in result.comparisons}
    assert by_metric[("foreignB~foreignA", "fields.own")].passed  # x.intensity_scale_trainable, both True
    fields = by_metric[("foreignB~foreignA", "fields")]
    assert not fields.passed and "neighbor_count" in fields.message  # the planted split
    assert "x." not in fields.message  # own fields never reach the canonical comparison
    notes = [n.text for n in result.notes if n.kind == NoteKind.OWN_FIELD]
    assert notes == ["x.fft_planner is foreignB's own field (= 'estimate'); foreignA has none: not compared"]
    assert resolved_config(ctx.runs["foreignB"])["x.fft_planner"] == "estimate"


def test_a_setting_both_backends_drop_fails_against_the_value_given_though_they_agree(tmp_path, profile, monkeypatch):
    from foreign_adapters import _ForeignAdapter

    resolve = _ForeignAdapter.resolve_config
    monkeypatch.setattr(
        _ForeignAdapter,
        "resolve_config",  # the bug: the factory ignores gridsize
        lambda self, overrides, data_path=None: resolve(
            self, {k: v for k, v in overrides.items() if k != "gridsize"}, data_path
        ),
    )
    result = run_stage(make_context(case(profile, 2), pair(), tmp_path), "config")
    by_check = {str(c.check): c for c in result.comparisons if c.metric == "fields"}
    assert "gridsize" not in by_check["foreignB~foreignA"].message  # the pair agrees on it (its planted
    # neighbor_count split aside)...
    for name in ("foreignA", "foreignB"):  # ...and neither honours the case's gridsize 2
        assert not by_check[f"{name}~given"].passed and "gridsize" in by_check[f"{name}~given"].message


# --- native training: their own networks, compared by schedule and loss drop --------------------


def fit_mean_amplitude(config: dict, data_path, epochs: int = 3, learning_rate: float = 0.5) -> dict:
    """A stand-in network of one parameter (a constant amplitude), fitted to the scan by gradient
    descent: real arithmetic with a falling loss, as a foreign pair's own training would report it."""
    with np.load(data_path) as f:
        amplitudes = f["diffraction"].astype(np.float64)
    n_groups = int(config.get("n_groups") or len(amplitudes))
    batch = int(config.get("batch_size") or 16)
    guess, losses = 0.0, []
    for _ in range(epochs):
        losses.append(float(np.mean((guess - amplitudes) ** 2)))
        guess += learning_rate * float(np.mean(amplitudes - guess))
    return {
        "history": {"epoch_loss": losses, "steps_per_epoch": -(-n_groups // batch), "n_groups": n_groups},
        "state": guess,
    }


class TrainingA(ForeignA):
    declared_stages = SIX + ("training", "bundle")
    native_weights = True
    reload_rounding = None  # decimals a buggy loader rounds the saved state to; None: exact

    def train(self, config, data_path, init_weights, max_steps):
        assert init_weights is None  # no canonical weights: the harness asks for native training
        return fit_mean_amplitude(config, data_path)

    # bundle: the state is this network's own (its one parameter), saved and loaded by it alone
    def save_bundle(self, state, path):
        np.save(open(path, "wb"), np.float64(state))

    def load_bundle(self, path):
        value = float(np.load(open(path, "rb")))
        return value if self.reload_rounding is None else round(value, self.reload_rounding)

    def predict(self, state, batch):
        amplitude = np.full(np.shape(batch.diffraction), state, np.float32)
        return {"object_patches": amplitude.astype(np.complex64), "amplitude": amplitude}


class TrainingB(ForeignB):
    declared_stages = SIX + ("training",)
    native_weights = True
    learning_rate = 0.5

    def train(self, config, data_path, init_weights, max_steps):
        return fit_mean_amplitude({**config, "batch_size": 16}, data_path, learning_rate=self.learning_rate)


@pytest.mark.parametrize("change, failing", [({}, []), ({"learning_rate": 0.0}, ["loss_drop"])])
def test_a_pair_without_canonical_weights_trains_natively_and_compares_schedule_and_loss_drop(
    tmp_path, profile, change, failing
):
    a, b = TrainingA(), TrainingB()
    a.name, b.name = "foreignA", "foreignB"
    for key, value in change.items():
        setattr(b, key, value)  # the split: B's optimiser does not move
    result = run_stage(make_context(case(profile, 1), {"foreignA": a, "foreignB": b}, tmp_path), "training")
    assert sorted(c.metric for c in result.comparisons) == ["loss_drop", "schedule"]
    assert sorted(c.metric for c in result.comparisons if not c.passed) == failing
    assert any(n.kind == "native" for n in result.notes)


@pytest.mark.parametrize("rounding, failing", [(None, []), (2, ["predict"])])
def test_a_native_bundle_must_reproduce_its_own_prediction_exactly(tmp_path, profile, rounding, failing):
    a, b = TrainingA(), TrainingA()
    a.name, b.name = "foreignA", "foreignA2"
    b.reload_rounding = rounding  # the bug: its loader rounds what it saved
    result = run_stage(make_context(case(profile, 1), {"foreignA": a, "foreignA2": b}, tmp_path), "bundle")
    checks = {(str(c.check), c.metric): c.passed for c in result.comparisons}
    assert checks[("foreignA(foreignA bundle)~foreignA", "predict")]  # its own bundle, exactly
    assert ("foreignA(foreignA bundle)~foreignA", "contents") not in checks  # a native state has no canonical contents
    assert (
        sorted(m for (label, m), ok in checks.items() if not ok and label == "foreignA2(foreignA2 bundle)~foreignA2")
        == failing
    )


class ScalesA(TrainingA):
    declared_stages = SIX + ("model",)
    photons = 1e5

    def scales(self, diffraction, probe, amp_activation):
        mean_count = float(np.mean(np.sum(np.square(diffraction, dtype=np.float64), axis=(-2, -1))))
        return {
            "input_scale": np.sqrt(diffraction.shape[-1] ** 2 / 4 / mean_count),
            "log_intensity_scale": 0.5 * np.log(self.photons / mean_count),
        }


@pytest.mark.parametrize("photons, failing", [(1e5, []), (1e6, ["log_intensity_scale"])])
def test_a_native_pairs_model_stage_compares_the_scales_alone(tmp_path, profile, photons, failing):
    a, b = ScalesA(), ScalesA()
    a.name, b.name = "foreignA", "foreignA2"
    b.photons = photons  # the split: another photon count behind the intensity scale
    result = run_stage(make_context(case(profile, 1), {"foreignA": a, "foreignA2": b}, tmp_path), "model")
    assert sorted(c.metric for c in result.comparisons) == ["input_scale", "log_intensity_scale"]
    assert [c.metric for c in result.comparisons if not c.passed] == failing


def test_the_loss_drop_is_relative_and_sign_safe():
    from parity.stages.training import relative_loss_drop

    assert relative_loss_drop({"epoch_loss": [10.0, 8.0, 5.0]}) == 0.5
    assert relative_loss_drop({"epoch_loss": [-4.0, -5.0]}) == 0.25  # a constant-free likelihood falls too
    with pytest.raises(ValueError, match="two finite epoch losses"):
        relative_loss_drop({"epoch_loss": [3.0]})


def test_native_training_schedules_differ_when_a_backend_batches_differently(tmp_path, profile):
    a, b = TrainingA(), TrainingB()
    a.name, b.name = "foreignA", "foreignB"
    cfg_case = replace(case(profile, 1), overrides={"batch_size": 4})  # B keeps its own batch of 16
    result = run_stage(make_context(cfg_case, {"foreignA": a, "foreignB": b}, tmp_path), "training")
    schedule = next(c for c in result.comparisons if c.metric == "schedule")
    assert not schedule.passed and "steps_per_epoch" in schedule.message


# --- through the session: n/a, known, no knock-on ----------------------------------------------


def session(tmp_path, profile, baseline):
    hub = hubs.new_hub(tmp_path / "reports")
    s = ParitySession(
        backends=[],
        workdir=tmp_path,
        golden_root=profile.golden_root,
        regen=False,
        hub=hub,
        worker="main",
        profile=profile,
        baseline=baseline,
    )
    s.adapters = pair()
    return s


def run_all(s, the_case) -> dict:
    """stage -> "n/a", "pass" or the failing comparisons, as the pytest suite decides a test."""
    outcome = {}
    for stage in STAGES:
        try:
            comparisons = s.run(the_case, stage)
        except Unsupported:
            outcome[stage] = "n/a"
            continue
        try:
            s.assert_passed(comparisons)
            outcome[stage] = "pass"
        except AssertionError:
            outcome[stage] = [(str(c.check), c.metric) for c in baselines.new_failures(comparisons, s.baseline)]
    return outcome


def test_unsupported_stages_are_na_and_the_known_split_keeps_the_run_green(tmp_path, profile):
    s = session(tmp_path, profile, baselines.load_baseline(profile.baseline))
    outcome = run_all(s, case(profile, 1))
    assert outcome == {stage: "pass" if stage in SIX else "n/a" for stage in STAGES}
    results = hubs.finalize(s.hub, {}, "", complete=True, baseline=s.baseline)
    assert (results["baseline"]["known"], results["baseline"]["new"], results["baseline"]["fixed"]) == (1, 0, [])
    assert results["totals"]["stages"]["n/a"] == len(STAGES) - len(SIX)


def test_without_the_baseline_entry_the_split_is_a_new_failure_of_config_only(tmp_path, profile):
    s = session(tmp_path, profile, baselines.EMPTY)
    outcome = run_all(s, case(profile, 1))
    assert outcome["config"] == [("foreignB~foreignA", "fields")]
    assert all(outcome[stage] == "pass" for stage in SIX[1:])  # no knock-on: grouping gets the canonical config


def test_a_forward_bug_fails_forward_alone(tmp_path, profile, monkeypatch):
    # gridsize 2 (offsets non-zero): ForeignB forgets to flip the offset sign. Grouping and loss,
    # whose inputs are the harness's, still pass; so does translation (not run here: it is slow).
    monkeypatch.setenv("FOREIGN_B_OFFSET_SIGN_BUG", "1")
    ctx = make_context(case(profile, 2), pair(), tmp_path)
    failed = {
        stage: sorted({c.metric for c in run_stage(ctx, stage).comparisons if not c.passed})
        for stage in ("grouping", "forward", "loss")
    }
    assert failed == {"grouping": [], "forward": ["amplitude", "far_field"], "loss": []}


# --- the real suite, with the adapters installed as entry points --------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A dist-info folder declaring foreignA and foreignB, as `pip install` of their package would."""
    root = tmp_path_factory.mktemp("site")
    dist = root / "foreign_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: foreign-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[pinn_parity.adapters]\nforeignA = foreign_adapters:ForeignA\nforeignB = foreign_adapters:ForeignB\n"
    )
    return root


def suite(installed, reports: Path, profile_folder: Path, *args, **env):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (REPO, HERE, installed))), **env}
    environment.pop("FOREIGN_B_OFFSET_SIGN_BUG", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "parity/",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            "--parity-backends",
            "foreignA,foreignB",
            "--parity-profile",
            str(profile_folder),
            "--parity-reports",
            str(reports),
            *args,
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    hub = Path(proc.stdout.rpartition("parity report hub (complete): ")[2].strip())
    assert hub.parent == reports, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, hubs.load_results(hub), (hub / "summary.md").read_text(encoding="utf-8")


def test_the_parity_suite_on_the_foreign_pair(installed, tmp_path):
    # Green: every stage fewer than two support is n/a, the planted split is known.
    proc, results, summary = suite(installed, tmp_path / "green", PROFILE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = results["baseline"]
    assert (info["known"], info["new"], info["fixed"]) == (2, 0, [])  # one per case
    for config_id in ("gs1-k4-poisson-n64", "gs2-k4-poisson-n64"):
        stages = results["configs"][config_id]["stages"]
        assert [s for s in STAGES if stages.get(s) == "n/a"] == [s for s in STAGES if s not in SIX]
        assert all(stages[s] == "pass" for s in SIX[1:]), stages
    assert "## Known splits" in summary and "neighbor_count" in proc.stdout + json.dumps(results)
    print("GREEN summary.md\n" + summary)

    # Red: the same run with the entry removed from the baseline.
    folder = tmp_path / "profile"
    shutil.copytree(PROFILE, folder)
    (folder / "baseline.json").write_text(
        json.dumps({"schema": "pinn-parity-baseline", "schema_version": 1, "entries": []})
    )
    proc, results, summary = suite(installed, tmp_path / "red", folder, "--parity-stage", "config,data,grouping,loss")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert results["baseline"]["new"] == 2 and results["baseline"]["known"] == 0
    failed = {(c["config_id"], c["stage"], c["metric"]) for c in results["comparisons"] if not c["passed"]}
    assert failed == {("gs1-k4-poisson-n64", "config", "fields"), ("gs2-k4-poisson-n64", "config", "fields")}
    print("RED summary.md\n" + summary)

    # Fixed: ForeignB's default agrees now; the entry matches nothing. Strict mode fails the run.
    proc, results, _ = suite(
        installed, tmp_path / "fixed", PROFILE, "--parity-stage", "config", FOREIGN_B_DEFAULT_K="4"
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results["baseline"]["fixed"] == [0] and "FIXED baseline entry 0" in proc.stdout
    proc, results, _ = suite(
        installed,
        tmp_path / "strict",
        PROFILE,
        "--parity-stage",
        "config",
        "--parity-strict-baseline",
        FOREIGN_B_DEFAULT_K="4",
    )
    assert proc.returncode == 1 and "FAILED by --parity-strict-baseline" in proc.stdout, proc.stdout[-3000:]
