"""Hub diffs on hand-made hubs, and the `python -m parity` verbs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import parity
from parity.__main__ import VERBS, main, pytest_command
from parity.report.diff import diff_hubs, render_diff_text

from .factories import make_comparison

REPO = Path(__file__).resolve().parents[2]
FORWARD_TOL = {"key": "forward.max_abs.float32", "measure": "max_abs", "limit": 1e-5}


def hand_made_hub(root: Path, name: str, comparisons, *, complete=True) -> Path:
    hub = root / name
    hub.mkdir(parents=True)
    items = [c.to_dict() for c in comparisons]
    configs = {}
    for item in items:
        stages = configs.setdefault(item["config_id"], {"first_divergence": None, "stages": {}})
        stages["stages"][item["stage"]] = "pass" if item["passed"] else "fail"
    (hub / "results.json").write_text(
        json.dumps(
            {
                "schema": "pinn-parity-results",
                "schema_version": 1,
                "created": "2026-11-29T12:00:00Z",
                "hub": name,
                "env": {},
                "complete": complete,
                "configs": configs,
                "comparisons": items,
                "artifacts": [],
                "warnings": [],
            }
        )
    )
    return hub


@pytest.fixture
def two_hubs(tmp_path):
    before = hand_made_hub(
        tmp_path,
        "A",
        [
            make_comparison("gs1", "forward", True, measured={"max_abs": 1e-7}, tolerance=FORWARD_TOL),
            make_comparison("gs1", "training", False, metric="loss_band"),
            make_comparison("gs1", "cli", True, kind="exact"),
            make_comparison("gs2", "loss", False),
        ],
    )
    after = hand_made_hub(
        tmp_path,
        "B",
        [
            make_comparison("gs1", "forward", True, measured={"max_abs": 5e-5}, tolerance=FORWARD_TOL),
            make_comparison("gs1", "training", True, metric="loss_band"),
            make_comparison("gs2", "loss", False),
            make_comparison("gs2", "model", False, metric="predict"),
            make_comparison("gs3", "config", False, kind="exact", metric="fields"),
        ],
        complete=False,
    )
    return before, after


def test_diff_sorts_changes_into_their_kinds(two_hubs):
    report = diff_hubs(*two_hubs)
    assert [e.identity for e in report.new_failures] == [
        ("gs2", "model", "tf_pinn~torch_pinn", "predict"),
        ("gs3", "config", "tf_pinn~torch_pinn", "fields"),
    ]
    assert [e.identity for e in report.fixed] == [("gs1", "training", "tf_pinn~torch_pinn", "loss_band")]
    assert [e.identity for e in report.still_failing] == [("gs2", "loss", "tf_pinn~torch_pinn", "max_abs")]
    [move] = report.moved
    assert move.identity[:2] == ("gs1", "forward") and move.measure == "max_abs"
    assert (move.value_a, move.value_b, move.limit) == (1e-7, 5e-5, 1e-5)
    assert report.only_in_a == (("gs1", "cli"),)
    assert report.only_in_b == (("gs2", "model"), ("gs3", "config"))
    assert report.has_new_failures and not report.complete_b
    assert report.divergence == (("gs1", "training", None), ("gs2", "loss", "loss"), ("gs3", None, "config"))
    assert report.absent_a == ("gs3",) and report.absent_b == ()
    text = render_diff_text(report).splitlines()
    assert text[1].endswith("/B (INCOMPLETE)")
    assert text[2:] == [
        "2 new failures, 1 still failing, 1 fixed, 1 moved more than their tolerance",
        "gs1: first divergence: training -> none",
        "  moved: [gs1] stage forward tf_pinn~torch_pinn max_abs: max_abs 1.000e-07 -> 5.000e-05 (limit 1.000e-05)",
        "  fixed: [gs1] stage training tf_pinn~torch_pinn loss_band: exceeds",
        "  checked only in A: stage cli",
        "gs2: first divergence: loss -> loss",
        "  still failing: [gs2] stage loss tf_pinn~torch_pinn max_abs: exceeds",
        "  new failure: [gs2] stage model tf_pinn~torch_pinn predict: exceeds",
        "  checked only in B: stage model",
        "gs3: first divergence: (not run) -> config",
        "  new failure: [gs3] stage config tf_pinn~torch_pinn fields: exceeds",
    ]


def test_diff_lists_stages_in_pipeline_order_and_each_failure_once(tmp_path):
    tol = {"key": "forward.max_abs.float32", "measure": "max_abs", "limit": 1e-5}
    before = hand_made_hub(
        tmp_path,
        "A",
        [
            make_comparison("gs1", stage, True, measured={"max_abs": 1e-7}, tolerance=tol)
            for stage in ("training", "forward", "loss", "cli")
        ],
    )
    after = hand_made_hub(
        tmp_path,
        "B",
        [
            make_comparison(
                "gs1", stage, stage != "cli", measured={"max_abs": 9e-5 if stage != "loss" else 2e-7}, tolerance=tol
            )
            for stage in ("training", "forward", "loss", "cli")
        ],
    )
    report = diff_hubs(before, after)
    # cli failed and moved: listed once, as a new failure; stages forward < loss < training < cli.
    assert [m.identity[1] for m in report.moved] == ["forward", "training"]
    text = render_diff_text(report).splitlines()
    assert text[3:] == [
        "gs1: first divergence: none -> cli",
        "  moved: [gs1] stage forward tf_pinn~torch_pinn max_abs: max_abs 1.000e-07 -> 9.000e-05 (limit 1.000e-05)",
        "  moved: [gs1] stage training tf_pinn~torch_pinn max_abs: max_abs 1.000e-07 -> 9.000e-05 (limit 1.000e-05)",
        "  new failure: [gs1] stage cli tf_pinn~torch_pinn max_abs: exceeds",
    ]


def test_hubs_written_before_check_parts_still_diff_and_render(two_hubs):
    before, after = two_hubs
    for hub in (before, after):
        results = json.loads((hub / "results.json").read_text())
        for item in results["comparisons"]:
            del item["check_parts"]
        (hub / "results.json").write_text(json.dumps(results))
    assert len(diff_hubs(before, after).new_failures) == 2
    assert main(["report", str(after)]) == 0


def test_diff_of_a_hub_with_itself_is_empty(two_hubs):
    report = diff_hubs(two_hubs[0], two_hubs[0])
    assert not report.has_new_failures and not report.fixed and not report.moved
    assert len(report.still_failing) == 2


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "parity", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cli_diff_exit_status_and_bad_input(two_hubs, tmp_path):
    before, after = two_hubs
    done = run_cli("diff", before, after)
    assert done.returncode == 1 and "\n2 new failures, " in done.stdout
    assert run_cli("diff", after, after).returncode == 0
    results = json.loads((after / "results.json").read_text())
    (after / "results.json").write_text(json.dumps(dict(results, schema_version=9)))
    done = run_cli("diff", before, after)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("parity: error: ")
    assert "expected schema 'pinn-parity-results' schema_version 1, found 'pinn-parity-results' 9" in done.stderr


def test_cli_report_renders_and_rejects_a_missing_hub(two_hubs, tmp_path):
    done = run_cli("report", two_hubs[0])
    assert done.returncode == 0, done.stderr
    assert (two_hubs[0] / "summary.md").exists() and (two_hubs[0] / "index.html").exists()
    done = run_cli("report", tmp_path / "missing")
    assert done.returncode == 2
    assert done.stderr == f"parity: error: no hub at {tmp_path / 'missing'}\n"


def test_unknown_verb_and_usage(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert all(f"\n  {verb} " in usage for verb in ("run", "regen", "report", "diff"))


def test_run_and_regen_build_the_pytest_command():
    assert list(VERBS) == [
        "run",
        "regen",
        "report",
        "diff",
        "merge",
        "baseline",
        "tolerances",
        "audit",
        "history",
        "switch-source",
    ]
    assert pytest_command(["-k", "forward"]) == [
        sys.executable,
        "-m",
        "pytest",
        str(Path(parity.__file__).resolve().parent),  # the installed package, from any folder
        "-n",
        "auto",
        "-k",
        "forward",
    ]
    assert pytest_command(["--parity-config", "gs1"], regen=True)[-3:] == ["--force-regen", "--parity-config", "gs1"]


@pytest.mark.slow
def test_coverage_says_which_functions_of_the_code_under_test_each_stage_ran(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "parity",
            "-n",
            "0",
            "-q",
            "-p",
            "no:cacheprovider",
            "--parity-config",
            "gs1-k4-poisson-n32",
            "--parity-stage",
            "grouping",
            "--parity-coverage",
            "--parity-reports",
            str(tmp_path / "hubs"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    text = (tmp_path / "hubs" / "latest" / "coverage.md").read_text()
    assert "## backends.tf_pinn.grouping" in text and "## backends.torch_pinn.grouping" in text
    tf_grouping = text.split("## backends.tf_pinn.grouping")[1].split("\n## ")[0]
    assert "| group_positions | gs1-k4-poisson-n32/grouping |" in tf_grouping
    assert (
        "backends.tf_pinn.train" in text
        and "| train |" not in text.split("## backends.tf_pinn.train")[1].split("\n## ")[0]
    )


def test_coverage_follows_a_stage_into_the_python_processes_it_starts(tmp_path, monkeypatch):
    """A stage's command line runs in a process of its own: its lines count for that stage too."""
    from parity import code_coverage

    package = tmp_path / "src" / "undertest"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def in_parent():\n    return 1\n\n\ndef in_child():\n    return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "src"))
    hub = tmp_path / "hub"
    measurement = code_coverage.start(["undertest"], hub, "gw0")
    try:
        measurement.switch("case/grouping")
        import undertest

        undertest.in_parent()
        measurement.switch("case/cli")
        subprocess.run([sys.executable, "-c", "import undertest; undertest.in_child()"], check=True, timeout=120)
    finally:
        measurement.finish()
    assert code_coverage.SUBPROCESS_CONFIG not in os.environ  # nothing left for later processes
    (found,) = code_coverage.combine(hub)["files"].values()
    assert found["functions_by_stage"] == {"case/cli": ["in_child"], "case/grouping": ["in_parent"]}
