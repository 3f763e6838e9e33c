"""The history run's bookkeeping (parity/history.py): revisions from archives, folders and a git range; where
each split appears and where it is gone; a broken revision as a skip; bisect in log2(n) runs. The suite
itself is not run here (make parity-upstream and the history over PtychoPINN's snapshots do that)."""

import subprocess
import tarfile
from pathlib import Path

import pytest

from parity import history
from parity.history import HistoryError, Revision, RevisionRun


def _run(label, stages=None, failures=None, skipped=None):
    found = RevisionRun(Revision(label, Path(label)), skipped=skipped, exit_code=0 if skipped is None else None)
    found.stages = dict(stages or {})
    found.failures = dict(failures or {})
    return found


SPLIT = "gs1/forward/b~a/amplitude"
KNOWN = "gs1/config/b~a/fields"


def test_a_split_is_dated_by_the_first_revision_it_appears_at_and_the_first_it_is_gone_at():
    cells = {"gs1/forward": "pass", "gs1/config": "known"}
    runs = [
        _run("r1", cells, {KNOWN: "known"}),
        _run("r2", skipped="the code under test does not import: ModuleNotFoundError: x"),
        _run("r3", {**cells, "gs1/forward": "fail"}, {KNOWN: "known", SPLIT: "new"}),
        _run("r4", cells, {KNOWN: "known"}),
    ]
    table = history.history_table(runs)
    assert table["splits"][SPLIT] == {"appears": "r3", "gone": "r4", "known": False}
    assert table["splits"][KNOWN] == {"appears": "r1", "gone": None, "known": True}
    assert [r["skipped"] is not None for r in table["revisions"]] == [False, True, False, False]
    text = history.render_history(table)
    assert "| r2 | skip: the code under test does not import: ModuleNotFoundError: x |" in text
    assert "| gs1/forward | pass | skip | fail | pass |" in text
    assert "| gs1/config |" not in text  # the same, and not red, at every revision that ran


def test_a_split_that_comes_back_is_not_gone():
    cells = {"gs1/forward": "fail"}
    runs = [_run("r1", cells, {SPLIT: "new"}), _run("r2", {"gs1/forward": "pass"}), _run("r3", cells, {SPLIT: "new"})]
    assert history.history_table(runs)["splits"][SPLIT]["gone"] is None


def test_bisect_finds_the_first_changed_revision_in_log2_runs_and_steps_over_skips():
    labels = [f"r{i}" for i in range(16)]
    revisions = [Revision(label, Path(label)) for label in labels]
    asked = []

    def run_one(revision):
        asked.append(revision.label)
        index = labels.index(revision.label)
        if index == 9:
            return _run(revision.label, skipped="broken")
        return _run(revision.label, {"gs1/forward": "fail" if index >= 11 else "pass"})

    first, runs = history.bisect(revisions, "gs1/forward", run_one)
    assert first == "r11"
    assert len(asked) <= 2 + 4 + 2  # the ends, log2(16) steps, and the skip stepped over
    assert [r.revision.label for r in runs] == sorted(set(asked), key=labels.index)


def test_bisect_with_no_change_says_so_and_refuses_a_bad_check():
    revisions = [Revision(f"r{i}", Path(".")) for i in range(4)]
    assert history.bisect(revisions, "gs1/forward", lambda r: _run(r.label, {"gs1/forward": "pass"}))[0] is None
    with pytest.raises(HistoryError, match="expected config/stage or config/stage/check/metric"):
        history.bisect(revisions, "gs1", lambda r: _run(r.label))


def test_revisions_come_from_archives_folders_and_a_git_range(tmp_path):
    source = tmp_path / "ptychopinn-abc1234"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("X = 1\n")
    archive = tmp_path / "ptychopinn-def5678.tar.gz"
    with tarfile.open(archive, "w:gz") as out:
        out.add(source, arcname="PtychoPINN-def5678")
    found = history.materialize([str(source), str(archive)], tmp_path / "work")
    assert [r.label for r in found] == ["abc1234", "def5678"]
    assert (found[1].folder / "pkg" / "__init__.py").read_text() == "X = 1\n"

    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    shas = []
    for value in (1, 2, 3):
        (repo / "v.py").write_text(f"V = {value}\n")
        git("add", "v.py")
        git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", f"v{value}")
        shas.append(git("rev-parse", "HEAD").strip())
    ranged = history.materialize([], tmp_path / "work", git=str(repo), span=f"{shas[0]}..{shas[2]}")
    assert [r.label for r in ranged] == [shas[1][:7], shas[2][:7]]
    assert (ranged[1].folder / "v.py").read_text() == "V = 3\n"
    with pytest.raises(HistoryError, match="neither a folder nor a source archive"):
        history.materialize([str(tmp_path / "missing")], tmp_path / "work")


def test_diff_coverage_counts_the_changed_statements_the_suite_ran(tmp_path):
    import json

    from parity.code_coverage import changed_lines, diff_coverage

    assert changed_lines("a\nb\nc\n", "a\nB\nc\nd\n") == {2, 4}
    old, new = tmp_path / "old" / "pkg", tmp_path / "new" / "pkg"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    (old / "m.py").write_text("def f():\n    return 1\n")
    (new / "m.py").write_text("def f():\n    return 2\n\n\ndef g():\n    return 3\n")
    (new / "n.py").write_text("X = 1\n")  # a new file nothing imported
    measured = tmp_path / "coverage.json"
    measured.write_text(json.dumps({"files": {str(new / "m.py"): {"statements": [1, 2, 5, 6], "executed": [1, 2]}}}))
    found = diff_coverage(tmp_path / "old", tmp_path / "new", measured, ["pkg"])
    # changed statements: line 2 (run), 5 and 6 (g, never run); n.py's line never imported
    assert found["files"] == {"pkg/m.py": {"changed": 3, "run": 1}, "pkg/n.py": {"changed": 1, "run": 0}}
    assert (found["changed"], found["run"]) == (4, 1)
    runs = [_run("r1", {"gs1/forward": "pass"}), _run("r2", {"gs1/forward": "pass"})]
    table = history.history_table(runs, [{"from": "r1", "to": "r2", **found}])
    text = history.render_history(table)
    assert "| r1 -> r2 | 4 | 1 | 25 % |" in text and "pkg/n.py (1, 0)" in text
    nothing = history.render_history(
        history.history_table(runs, [{"from": "r1", "to": "r2", "changed": 2, "run": 0, "files": {}}])
    )
    assert "the gate cannot vouch for that step" in nothing
