"""Profiles (matrix, ledger, goldens, contract checks, baseline per backend family) and baselines of
known splits: loading, validation, matching, known/new/fixed, the baseline verb, summary and diff."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.registry import get_adapter
from backends.common.dataset import load_dataset
from parity import baseline as baselines
from parity import profiles
from parity.__main__ import main
from parity.golden import GoldenStore
from parity.matrix import MATRIX, SimulatedData
from parity.report import hub as hubs
from parity.report.diff import diff_hubs, render_diff_text
from parity.stages import STAGES
from parity.tolerances import DEFAULT_LEDGER_PATH, tolerance, use_ledger
from parity.verdict import GOLDEN, REFEREE, SPEC, Check

from .factories import HUB_ENV, ledger_document, ledger_entry, make_comparison

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def baseline_doc(entries):
    return {"schema": "pinn-parity-baseline", "schema_version": 1, "entries": entries}


ENTRY = {
    "config": "gs2-*",
    "stage": "forward",
    "check": "torch_pinn~*",
    "metric": "max_abs*",
    "reason": "FFT padding differs",
    "link": "https://example.org/issue/1",
}


def profile_folder(root: Path, **changes) -> Path:
    write_json(root / "ledger.json", ledger_document([ledger_entry("forward", "max_abs", 1e-5)]))
    write_json(root / "baseline.json", baseline_doc([ENTRY]))
    document = {
        "schema": "pinn-parity-profile",
        "schema_version": 1,
        "name": "foreign",
        "cases": [
            {
                "id": "gs2-k4-poisson-n128",
                "data": {"seed": 3, "n_positions": 48, "n": 128},
                "overrides": {"gridsize": 2},
                "train_steps": 2,
                "stage_groups": 16,
            },
            {"id": "gs1-k4-poisson-n16", "data": {"n": 16, "n_positions": 24}},
        ],
        "contract_checks": {"referee": ["translation", "forward"], "spec": True},
        "ledger": "ledger.json",
        "golden": "goldens",
        "baseline": "baseline.json",
    }
    document.update(changes)
    write_json(root / "profile.json", {k: v for k, v in document.items() if v is not None})
    return root


# ---- profiles ---------------------------------------------------------------------------------


def test_the_bundled_profile_is_todays_matrix_ledger_goldens_and_every_contract_check():
    bundled = profiles.load_profile("bundled")
    assert bundled.cases == MATRIX and bundled.ledger == DEFAULT_LEDGER_PATH
    assert bundled.golden_root == REPO / "golden" and bundled.baseline is None
    assert all(bundled.applies(kind, stage) for kind in (SPEC, REFEREE, GOLDEN, "tf_pinn") for stage in STAGES)
    assert profiles.resolve(None, []) is bundled


def test_a_profile_folder_gives_cases_paths_and_contract_checks(tmp_path):
    profile = profiles.load_profile(str(profile_folder(tmp_path)))
    assert profile.name == "foreign" and [c.id for c in profile.cases] == ["gs2-k4-poisson-n128", "gs1-k4-poisson-n16"]
    big = profile.cases[0]
    assert (big.data.n, big.stage_groups, big.train_steps, big.config.gridsize) == (128, 16, 2, 2)
    assert profile.ledger == tmp_path / "ledger.json" and profile.golden_root == tmp_path / "goldens"
    assert profile.baseline == tmp_path / "baseline.json"
    assert profile.applies(REFEREE, "forward") and not profile.applies(REFEREE, "loss")
    assert profile.applies(SPEC, "config") and not profile.applies(GOLDEN, "forward")
    assert profile.applies("torch_pinn", "loss")  # backend against backend always counts


def test_a_case_may_bring_its_cli_scan_and_skip_costly_stages(tmp_path):
    from parity.case_context import make_context
    from parity.stage_runner import run_stage

    case = {
        "id": "gs1-k4-poisson-n16",
        "data": {"n": 16, "n_positions": 24},
        "cli_data": {"n": 64, "n_positions": 9},
        "skip_stages": ["training", "cli"],
    }
    (loaded,) = profiles.load_profile(str(profile_folder(tmp_path / "p", cases=[case]))).cases
    assert loaded.cli_data.n == 64 and loaded.skip_stages == ("training", "cli")
    ctx = make_context(loaded, {"referee": get_adapter("referee")}, tmp_path)
    assert ctx.inputs.cli_data_path.name == f"cli-gs1-k4-poisson-n16-seed{loaded.cli_data.seed}.npz"
    assert load_dataset(ctx.inputs.cli_data_path).diffraction.shape == (9, 64, 64)
    result = run_stage(ctx, "cli")
    assert result.unsupported == "stage cli n/a: not run on this case (its profile's skip_stages)"
    assert [note.kind for note in result.notes] == ["n/a"]


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"ledger": None}, "'ledger'"),
        ({"ledger": "missing.json"}, "'ledger'"),
        ({"baseline": "missing.json"}, "'baseline'"),
        ({"contract_checks": {"referee": ["forwrd"]}}, "'contract_checks.referee'"),
        ({"contract_checks": {"judge": True}}, "'contract_checks'"),
        ({"cases": []}, "'cases'"),
        (
            {"cases": [{"id": "gs2-k4-poisson-n32", "overrides": {"gridsize": 2}, "stage_groups": 2}]},
            "'cases[0].stage_groups'",
        ),
        ({"cases": [{"id": "gs1-k4-poisson-n32", "colour": 1}]}, "'cases[0]'"),
        ({"cases": [{"id": "gs1-k4-mae-n32"}]}, "'cases[0]'"),  # the id does not describe the content
        ({"cases": [{"id": "gs1-k4-poisson-n32", "data": {"n_positions": 4}, "stage_groups": 8}]}, "'cases[0]'"),
        ({"extra": 1}, "'extra'"),
        ({"cases": [{"id": "gs1-k4-poisson-n32", "cli_data": {"size": 64}}]}, "'cases[0].cli_data'"),
        ({"cases": [{"id": "gs1-k4-poisson-n32", "skip_stages": "cli"}]}, "'cases[0].skip_stages'"),
        ({"cases": [{"id": "gs1-k4-poisson-n32", "skip_stages": ["clii"]}]}, "'cases[0]'"),
    ],
)
def test_a_bad_profile_file_is_one_error_naming_the_file_and_key(tmp_path, changes, key):
    profile_folder(tmp_path, **changes)
    with pytest.raises(profiles.ProfileError) as error:
        profiles.load_profile(str(tmp_path))
    assert str(tmp_path / "profile.json") in str(error.value) and key in str(error.value)


def test_a_profile_of_another_schema_or_an_unknown_name_is_refused(tmp_path):
    write_json(tmp_path / "profile.json", {"schema": "other", "schema_version": 1})
    with pytest.raises(profiles.ProfileError, match="profile.json"):
        profiles.load_profile(str(tmp_path))
    with pytest.raises(profiles.ProfileError, match="no profile 'nosuch'"):
        profiles.load_profile("nosuch")


class _Adapter:
    def __init__(self, name, default=None):
        self.name = name
        if default is not None:
            self.default_profile = default


def test_an_adapter_names_its_default_profile_and_the_option_wins(tmp_path):
    folder = profile_folder(tmp_path / "p")
    assert profiles.resolve(None, [_Adapter("tf_pinn"), _Adapter("x", str(folder))]).name == "foreign"
    assert profiles.resolve("bundled", [_Adapter("x", str(folder))]) is profiles.BUNDLED
    with pytest.raises(profiles.ProfileError, match="different default profiles"):
        profiles.resolve(None, [_Adapter("a", "bundled"), _Adapter("b", str(folder))])


def test_the_active_ledger_is_the_profiles(tmp_path):
    folder = profile_folder(tmp_path)
    previous = use_ledger(folder / "ledger.json")
    try:
        assert tolerance("forward", "max_abs", "float32").value == 1e-5
    finally:
        assert use_ledger(previous) == folder / "ledger.json"
    assert previous == DEFAULT_LEDGER_PATH
    assert tolerance("forward", "max_abs", "float32").value != 1e-5


def test_goldens_live_under_the_profiles_root_and_record_their_backend(tmp_path):
    profile = profiles.load_profile(str(profile_folder(tmp_path)))
    store = GoldenStore(profile.golden_root)
    path = store.write(
        "gs1-k4-poisson-n16",
        "config",
        {"gridsize": 1},
        {
            "config": {"gridsize": 1},
            "framework_versions": {},
            "platform": "test",
            "commit": "abc",
            "reference_backend": "ptychopinn_tf",
        },
    )
    assert path == tmp_path / "goldens" / "gs1-k4-poisson-n16" / "config.json"
    assert store.read_manifest("gs1-k4-poisson-n16")["reference_backend"] == "ptychopinn_tf"


def pytest_parity(tmp_path, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "parity/",
            "-p",
            "no:cacheprovider",
            "--parity-reports",
            str(tmp_path / "reports"),
            *args,
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_parity_profile_option_chooses_the_matrix_and_a_bad_one_is_one_usage_error(tmp_path):
    folder = profile_folder(tmp_path / "p")
    proc = pytest_parity(tmp_path, "--parity-profile", str(folder), "--parity-stage", "config", "--collect-only", "-q")
    assert [line for line in proc.stdout.splitlines() if "::" in line] == [
        "parity/test_parity.py::test_stage[gs2-k4-poisson-n128-config]",
        "parity/test_parity.py::test_stage[gs1-k4-poisson-n16-config]",
    ], proc.stdout + proc.stderr
    (folder / "profile.json").write_text("{", encoding="utf-8")
    proc = pytest_parity(tmp_path, "--parity-profile", str(folder), "--collect-only", "-q")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "profile.json" in errors[0], proc.stderr


def test_run_verb_refuses_a_bad_profile_with_exit_2(tmp_path, capsys):
    assert main(["run", "--parity-profile", str(tmp_path / "nothing")]) == 2
    assert "no profile" in capsys.readouterr().err


def test_the_simulator_makes_a_sensible_scan_for_every_patch_size():
    from backends.common.config import make_config
    from backends.common.simulate import simulate

    for n in (16, 32, 64, 128):
        data = SimulatedData(n=n)
        dataset = simulate(data.seed, data.n_positions, data.n, data.nphotons, jitter=data.jitter)
        assert (dataset.N, dataset.n_positions) == (n, data.n_positions)
        height, width = dataset.object.shape
        assert dataset.xcoords.min() >= n / 2 and dataset.xcoords.max() <= width - n / 2  # every patch inside
        assert dataset.ycoords.min() >= n / 2 and dataset.ycoords.max() <= height - n / 2
        make_config({"gridsize": 2}).check_against_data(data.n_positions)  # default n_groups: one per position


# ---- baselines --------------------------------------------------------------------------------


def test_a_baseline_loads_and_matches_globs(tmp_path):
    baseline = baselines.load_baseline(write_json(tmp_path / "b.json", baseline_doc([ENTRY])))
    assert baseline.match("gs2-k4-poisson-n32", "forward", "torch_pinn~tf_pinn", "max_abs") == 0
    assert baseline.match("gs2-k4-poisson-n32", "forward", "torch_pinn~tf_pinn", "max_abs[weights]") == 0
    assert baseline.match("gs1-k4-poisson-n32", "forward", "torch_pinn~tf_pinn", "max_abs") is None
    assert baseline.match("gs2-k4-poisson-n32", "forward", "tf_pinn~golden", "max_abs") is None
    assert baseline.match("gs2-k4-poisson-n32", "loss", "torch_pinn~tf_pinn", "max_abs") is None
    assert baselines.load_baseline(None).entries == ()


@pytest.mark.parametrize(
    "entry, key",
    [
        ({**ENTRY, "reason": ""}, "'reason'"),
        ({k: v for k, v in ENTRY.items() if k != "reason"}, "'reason'"),
        ({**ENTRY, "stage": "forwrd"}, "'stage'"),
        ({**ENTRY, "check": 3}, "'check'"),
        ({**ENTRY, "link": 3}, "'link'"),
        ({**ENTRY, "colour": "red"}, "'colour'"),
    ],
)
def test_a_bad_baseline_entry_is_one_error_naming_file_entry_and_key(tmp_path, entry, key):
    path = write_json(tmp_path / "b.json", baseline_doc([ENTRY, entry]))
    with pytest.raises(baselines.BaselineError) as error:
        baselines.load_baseline(path)
    assert f"{path}: entry 1" in str(error.value) and key in str(error.value)


def test_a_baseline_of_another_schema_is_refused(tmp_path):
    with pytest.raises(baselines.BaselineError, match="b.json"):
        baselines.load_baseline(write_json(tmp_path / "b.json", {"schema": "x", "schema_version": 1}))


def known_baseline():
    fixed_entry = {**ENTRY, "config": "gs1-*", "stage": "loss", "reason": "was a split"}
    not_run = {**ENTRY, "stage": "training", "reason": "stage not run"}
    return baselines.parse_baseline(baseline_doc([ENTRY, fixed_entry, not_run]), Path("b.json"))


def records():
    return [
        make_comparison("gs2-k4-poisson-n32", "forward", False, check=Check("torch_pinn", "tf_pinn")),
        make_comparison("gs2-k4-poisson-n32", "forward", False, check=Check("tf_pinn", GOLDEN)),
        make_comparison("gs1-k4-poisson-n32", "loss", True, check=Check("torch_pinn", "tf_pinn")),
    ]


def test_failures_are_known_or_new_and_unmatched_entries_of_stages_that_ran_fixed():
    items = [c.to_dict() for c in records()]
    info = baselines.classify(items, known_baseline())
    assert [c.get("baseline") for c in items] == ["known", "new", None]
    assert items[0]["baseline_entry"] == 0
    assert (info["known"], info["new"], info["fixed"]) == (1, 1, [1])  # entry 2's stage did not run
    assert baselines.strict_failure(info, True) and not baselines.strict_failure(info, False)
    assert not baselines.strict_failure({"fixed": []}, True)
    assert any("FIXED baseline entry 1" in line for line in baselines.summary_lines(info))


def test_a_test_whose_failures_are_all_known_passes():
    known, new, passed = records()
    baselines.assert_passed([known, passed], known_baseline())
    with pytest.raises(AssertionError, match="tf_pinn~golden"):
        baselines.assert_passed([known, new], known_baseline())
    with pytest.raises(AssertionError, match="no comparison"):
        baselines.assert_passed([], known_baseline())


def finalized_hub(root, baseline, comparisons=None):
    hub = hubs.new_hub(root)
    hubs.write_part(hub, "gw0", comparisons or records())
    hubs.finalize(hub, HUB_ENV, "", complete=True, baseline=baseline)
    return hub


def test_the_hub_and_summary_list_known_splits_apart_and_fixed_entries(tmp_path):
    hub = finalized_hub(tmp_path / "reports", known_baseline())
    results = hubs.load_results(hub)
    assert results["baseline"]["fixed"] == [1] and results["baseline"]["known"] == 1
    text = (hub / "summary.md").read_text(encoding="utf-8")
    known = text.split("## Known splits")[1].split("##")[0]
    assert "torch_pinn~tf_pinn" in known and "FFT padding differs" in known and "https://example.org/issue/1" in known
    failures = text.split("## Failures")[1].split("## Known splits")[0]
    assert "tf_pinn~golden" in failures and "torch_pinn~tf_pinn" not in failures
    assert "## Fixed baseline entries" in text and "entry 1: gs1-* loss" in text
    assert "(1 known splits of the baseline)" in text
    page = (hub / "index.html").read_text(encoding="utf-8")
    assert "Known splits" in page and "FFT padding differs" in page and "Fixed baseline entries" in page
    failures = page.split('id="failures"')[1].split('id="known-splits"')[0]
    assert "tf_pinn~golden" in failures and "torch_pinn~tf_pinn" not in failures


def test_a_stage_whose_failures_are_all_known_is_known_not_a_split(tmp_path):
    only_known = [records()[0], records()[2]]
    hub = finalized_hub(tmp_path / "reports", known_baseline(), only_known)
    results = hubs.load_results(hub)
    assert results["configs"]["gs2-k4-poisson-n32"] == {
        "first_divergence": None,
        "stages": {"forward": "known"},
        "notes": {},
    }
    assert results["totals"]["stages"] == {
        "pass": 1,
        "fail": 0,
        "known": 1,
        "n/a": 0,
        "adapter error": 0,
        "harness error": 0,
    }
    text = (hub / "summary.md").read_text(encoding="utf-8")
    assert "| gs2-k4-poisson-n32 | - | - | - | - | - | [known](#known-splits)" in text
    assert "- gs2-k4-poisson-n32: none" in text
    assert '<td class="known"><a href="#known-splits">known</a>' in (hub / "index.html").read_text(encoding="utf-8")
    with_new = finalized_hub(tmp_path / "again", known_baseline())  # a new failure in the same stage: a split
    assert hubs.load_results(with_new)["configs"]["gs2-k4-poisson-n32"]["stages"] == {"forward": "fail"}


def test_diff_shows_known_splits_and_fixed_entries_apart_from_new_failures(tmp_path):
    before = finalized_hub(tmp_path / "a", baselines.EMPTY, records()[2:])
    after = finalized_hub(tmp_path / "b", known_baseline())
    report = diff_hubs(before, after)
    assert [e.identity[2] for e in report.known] == ["torch_pinn~tf_pinn"]
    assert [e.identity[2] for e in report.new_failures] == ["tf_pinn~golden"]
    text = render_diff_text(report)
    assert "known split: [gs2-k4-poisson-n32] stage forward torch_pinn~tf_pinn" in text
    assert "baseline entry fixed in B (matched nothing): entry 1: gs1-* loss" in text


def test_the_baseline_verb_refuses_entries_without_a_reason_and_writes_one_per_failure(tmp_path, capsys):
    hub = finalized_hub(tmp_path / "reports", baselines.EMPTY)
    output = tmp_path / "baseline.json"
    assert main(["baseline", str(hub), "--output", str(output)]) == 2
    assert main(["baseline", str(hub), "--output", str(output), "--reason", "  "]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and all("needs a reason" in line for line in err) and not output.exists()
    assert main(["baseline", str(hub), "--output", str(output), "--reason", "accepted", "--link", "u"]) == 0
    written = baselines.load_baseline(output)
    assert sorted((e.check, e.reason, e.link) for e in written.entries) == [
        ("tf_pinn~golden", "accepted", "u"),
        ("torch_pinn~tf_pinn", "accepted", "u"),
    ]
    assert all(written.match_record(c.to_dict()) is not None for c in records()[:2])
    assert main(["baseline", str(hub), "--output", str(output), "--reason", "again"]) == 0  # nothing new
    assert len(baselines.load_baseline(output).entries) == 2


def test_literal_entries_match_metrics_with_brackets():
    entries = baselines.entries_from_failures(
        [make_comparison("gs1", "gradients", False, metric="max_abs[conv1.weight]").to_dict()], "why"
    )
    base = baselines.Baseline(path=None, entries=tuple(entries))
    assert base.match("gs1", "gradients", "tf_pinn~torch_pinn", "max_abs[conv1.weight]") == 0
    assert base.match("gs1", "gradients", "tf_pinn~torch_pinn", "max_abs[c]") is None


REFUSAL = {
    "stage": "bundle",
    "check": "theirs(mine bundle)~mine",
    "error": "ValueError: unsupported * manifest version*",
    "reason": "their loader refuses a foreign bundle with a clear message: a legitimate answer",
}


def _load_error(message: str, check: Check):
    from parity.comparators import error_comparison

    try:
        raise ValueError(message)
    except ValueError as exc:
        return error_comparison(config_id="gs1-k4-poisson-n16", stage="bundle", check=check, metric="load", error=exc)


def test_a_refusal_the_profile_accepts_passes_and_says_why(tmp_path):
    profile = profiles.load_profile(str(profile_folder(tmp_path, refusals=[REFUSAL])))
    refused = _load_error("unsupported wts.h5.zip manifest version '1.0'", Check("theirs", "mine", via="mine"))
    crashed = _load_error("bad zip file", Check("theirs", "mine", via="mine"))
    other = _load_error("unsupported wts.h5.zip manifest version '1.0'", Check("mine", "theirs", via="theirs"))
    accepted, kept, unmatched = profile.accept_refusals([refused, crashed, other])
    assert accepted.passed and accepted.kind == "refusal"
    assert accepted.message.splitlines()[-1] == f"  accepted by the profile: {REFUSAL['reason']}"
    assert kept is crashed and unmatched is other  # another error, or another check, is still a failure


@pytest.mark.parametrize(
    ("refusals", "key"),
    [
        ({"stage": "bundle"}, "'refusals'"),
        ([{**REFUSAL, "reason": " "}], "'refusals[0].reason'"),
        ([{**REFUSAL, "stage": "bundel"}], "'refusals[0].stage'"),
        ([{**REFUSAL, "why": "x"}], "'refusals[0].why'"),
    ],
)
def test_a_bad_refusal_entry_is_refused_naming_it(tmp_path, refusals, key):
    with pytest.raises(profiles.ProfileError, match=re.escape(f"key {key}")):
        profiles.load_profile(str(profile_folder(tmp_path, refusals=refusals)))
