"""Shards of a run (--parity-shard I/N, parity/shards.py) and their merge (python -m parity merge)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from parity import shards
from parity.__main__ import main
from parity.baseline import BaselineEntry, save_baseline
from parity.report import hub as hubs
from parity.report.merge import MergeError, merge_hubs

from .factories import HUB_ENV, make_comparison

CASES = ["a", "b", "c", "d", "e"]


def test_a_shard_is_i_of_n():
    assert shards.parse_shard(" 2/4 ") == shards.Shard(2, 4)
    for bad in ("0/2", "3/2", "2", "1/0", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="--parity-shard"):
            shards.parse_shard(bad)


def test_cases_go_longest_first_to_the_least_loaded_shard_and_every_case_to_one_shard():
    seconds = {"a": 10.0, "b": 50.0, "c": 20.0, "d": 30.0, "e": 25.0}
    two = shards.assign(CASES, 2, seconds)
    assert two == [["b", "c"], ["a", "d", "e"]]  # 50 + 20 = 70 against 30 + 25 + 10 = 65
    assert sorted(sum(two, [])) == CASES
    for count in (1, 3, 5, 7):
        split = shards.assign(CASES, count, seconds)
        assert len(split) == count and sorted(sum(split, [])) == CASES


def test_without_durations_the_shards_get_equal_numbers_of_cases_and_unknown_cases_the_mean():
    assert [len(s) for s in shards.assign(CASES, 2, {})] == [3, 2]
    # c unknown: counted as the mean of the others (25), so it does not all pile onto one shard
    assert shards.assign(["a", "b", "c"], 2, {"a": 40.0, "b": 10.0}) == [["a"], ["b", "c"]]


def test_durations_come_from_a_hubs_timings_or_a_json_file(tmp_path):
    hub = tmp_path / "hub"
    (hub / "timings").mkdir(parents=True)
    (hub / "timings" / "gw0.json").write_text(json.dumps({"a": {"tf": {"config": 1.0, "training": 3.0}}}))
    (hub / "timings" / "gw1.json").write_text(json.dumps({"b": {"tf": {"config": 2.0}, "torch": {"config": 0.5}}}))
    assert shards.case_seconds(hub) == {"a": 4.0, "b": 2.5}
    (tmp_path / "d.json").write_text(json.dumps({"a": 3, "b": 1.5}))
    assert shards.case_seconds(tmp_path / "d.json") == {"a": 3.0, "b": 1.5}
    (tmp_path / "bad.json").write_text(json.dumps({"a": "slow"}))
    with pytest.raises(ValueError, match=r"--parity-durations .*bad.json: expected"):
        shards.case_seconds(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no timings"):
        shards.case_seconds(tmp_path)


def _hub(root, comparisons, cases, *, shard=None, env=None, baseline=None, artifact_of="a"):
    """A finalized hub holding `comparisons` of `cases`, as a (shard of a) run writes it."""
    hub = hubs.new_hub(root)
    hubs.write_part(hub, "gw0", comparisons)
    if artifact_of in cases:
        hubs.write_part(hub, "gw0", [], artifacts=[hubs.Artifact(artifact_of, "grouping", {"x": np.arange(3.0)})])
    run_env = {**HUB_ENV, **(env or {}), "configs": cases, "exitstatus": 0, "profile": "p", "backends": ["t", "u"]}
    if shard is not None:
        run_env["shard"] = {"shard": shard, "configs": CASES}
    hubs.finalize(hub, run_env, "log\n", complete=True, baseline=baseline)
    return hub


def _comparisons(cases):
    return [
        make_comparison(c, stage, passed) for c in cases for stage, passed in (("config", True), ("loss", c != "b"))
    ]


def _same_run(merged: dict, whole: dict) -> None:
    for key in ("comparisons", "configs", "totals", "notes", "artifacts", "baseline"):
        if key == "artifacts":  # the files move under the shards' worker ids; what they hold does not
            assert [{k: v for k, v in a.items() if k != "file"} for a in merged[key]] == [
                {k: v for k, v in a.items() if k != "file"} for a in whole[key]
            ]
        else:
            assert merged[key] == whole[key], key
    assert merged["env"]["configs"] == whole["env"]["configs"]


def test_merged_shards_equal_the_unsharded_run(tmp_path):
    baseline = save_baseline(
        tmp_path / "baseline.json",
        [
            BaselineEntry("b", "loss", "tf_pinn~torch_pinn", "max_abs", "a split"),
            BaselineEntry("d", "loss", "tf_pinn~torch_pinn", "max_abs", "gone: fixed in d"),
        ],
    )
    from parity.baseline import load_baseline

    known = load_baseline(baseline)
    whole = hubs.load_results(_hub(tmp_path / "whole", _comparisons(CASES), CASES, baseline=known))
    parts = [["b", "c"], ["a", "d", "e"]]
    shard_hubs = [
        _hub(tmp_path / f"s{i}", _comparisons(p), p, shard=f"{i}/2", baseline=known) for i, p in enumerate(parts, 1)
    ]
    merged = merge_hubs(shard_hubs, tmp_path / "merged")
    _same_run(hubs.load_results(merged), whole)
    assert hubs.load_results(merged)["baseline"]["fixed"] == [1]  # d's entry: fixed, judged over every shard
    assert (merged / "summary.md").is_file() and not (merged / hubs.INCOMPLETE_MARKER).exists()


def test_merge_refuses_other_commits_a_case_run_twice_and_an_incomplete_shard(tmp_path, capsys):
    one = _hub(tmp_path / "1", _comparisons(["a"]), ["a"], shard="1/2")
    other = _hub(tmp_path / "2", _comparisons(["b"]), ["b"], shard="2/2", env={"commit": "fedcba9"})
    with pytest.raises(MergeError, match=r"env commit 'fedcba9' differs .*--force"):
        merge_hubs([one, other], tmp_path / "m")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())  # nothing half-written
    assert merge_hubs([one, other], tmp_path / "m", force=True).is_dir()
    twice = _hub(tmp_path / "3", _comparisons(["a"]), ["a"], shard="2/2")
    with pytest.raises(MergeError, match="case 'a' also ran in"):
        merge_hubs([one, twice], tmp_path / "m2")
    (twice / hubs.INCOMPLETE_MARKER).write_text("")
    results = json.loads((twice / "results.json").read_text())
    results["complete"] = False
    (twice / "results.json").write_text(json.dumps(results))
    assert main(["merge", str(one), str(twice), "--output", str(tmp_path / "m3")]) == 2
    assert "an incomplete run" in capsys.readouterr().err


@pytest.mark.slow
def test_two_shards_of_the_bundled_suite_merge_into_the_unsharded_run(tmp_path):
    """The real suite, one cheap stage: shard 1/2 and 2/2 cover every case once, and their merge equals the
    unsharded run's results (timings and times apart)."""

    def run(name, *extra):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "parity", "-n", "0", "-q", "-p", "no:cacheprovider"]
            + ["--parity-stage", "config", "--parity-reports", str(tmp_path / name), *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:]
        return hubs.resolve_hub(tmp_path / name / "latest")

    whole = run("whole")
    parts = [run(f"s{i}", "--parity-shard", f"{i}/2") for i in (1, 2)]
    ran = [hubs.load_results(p)["env"]["configs"] for p in parts]
    assert ran[0] and ran[1] and sorted(ran[0] + ran[1]) == sorted(hubs.load_results(whole)["env"]["configs"])
    merged = merge_hubs(parts, tmp_path / "merged")
    _same_run(hubs.load_results(merged), hubs.load_results(whole))
