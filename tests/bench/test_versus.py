"""bench.versus: where PtychoPINN's tree is found, and the medians and ratio it reports."""

from bench import proc, versus


def _result(wall, cpu=1.0, rss=100.0, rc=0):
    return proc.ProcResult(argv=["x"], rc=rc, wall_s=wall, maxrss_mib=rss, cpu_s=cpu, load_before=[], load_after=[])


def test_no_upstream_environment_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(versus, "UPSTREAM_PYTHON", tmp_path / "missing" / "python")
    assert versus.upstream_source() is None
    assert "make upstream" in versus.versus(tmp_path, repeat=1)["skipped"]


def test_the_source_file_names_a_tree_with_their_torch_tests(tmp_path, monkeypatch):
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    record = tmp_path / "venv" / ".pinn-parity-source"
    monkeypatch.setattr(versus, "UPSTREAM_PYTHON", python)
    monkeypatch.setattr(versus, "UPSTREAM_SOURCE", record)
    record.write_text(str(tmp_path / "src") + "\n")
    assert versus.upstream_source() is None  # no tests/torch there
    (tmp_path / "src" / "tests" / "torch").mkdir(parents=True)
    assert versus.upstream_source() == tmp_path / "src"


def test_summary_takes_medians_and_the_largest_peak():
    summary = versus._summary([_result(60.0, 100.0, 1500.0), _result(70.0, 110.0, 1400.0), _result(64.0, 90.0, 1450.0)])
    assert summary["median_wall_s"] == 64.0
    assert summary["median_cpu_s"] == 100.0
    assert summary["peak_mib_largest_process"] == 1500.0
    assert summary["exit_codes"] == [0, 0, 0]


def test_ratio_is_ours_over_theirs(tmp_path, monkeypatch):
    monkeypatch.setattr(versus, "upstream_source", lambda: tmp_path)
    monkeypatch.setattr(versus, "_ours", lambda work, tag: _result(60.0))
    monkeypatch.setattr(versus, "_theirs", lambda source, work, tag: _result(24.0))
    result = versus.versus(tmp_path, repeat=2)
    assert result["ratio_wall"] == 2.5
    assert result["ours"]["wall_s"] == [60.0, 60.0]  # the warm-up turn is not counted
