"""Report hubs: parts from workers merged, interrupted runs, schema checks, latest."""

import json
import os
from datetime import UTC, datetime

import numpy as np
import pytest

from parity.comparators import RECONSTRUCTION_METRICS, compare_band, compare_reconstruction
from parity.report import hub as hubs
from parity.report import plots

from .factories import make_comparison

ENV = {
    "frameworks": {"tensorflow": "2.21.0", "torch": "2.13.0"},
    "commit": "0123abc",
    "platform": "test",
    "threads": {"OMP_NUM_THREADS": "1"},
}
WHEN = datetime(2026, 11, 29, 12, 45, 1, tzinfo=UTC)


def test_new_hub_is_timestamped_marked_incomplete_and_never_reused(tmp_path):
    first = hubs.new_hub(tmp_path / "reports", now=WHEN)
    second = hubs.new_hub(tmp_path / "reports", now=WHEN)
    assert first.name == "2026-11-29T124501Z" and second.name == "2026-11-29T124501Z-2"
    assert (first / "INCOMPLETE").is_file() and (first / "parts").is_dir()


def test_parts_of_two_workers_are_merged(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    hubs.write_part(
        hub,
        "gw0",
        [make_comparison("gs1", "forward", True), make_comparison("gs1", "training", False, metric="loss_band")],
    )
    hubs.write_part(hub, "gw1", [make_comparison("gs2", "config", True, kind="exact").to_dict()])
    hubs.write_part(hub, "gw0", [make_comparison("gs1", "translation", False)])
    results = hubs.finalize(hub, ENV, "the log\n", complete=True)

    assert results["schema"] == "pinn-parity-results" and results["schema_version"] == 1
    assert results["complete"] is True and not (hub / "INCOMPLETE").exists()
    assert results["configs"] == {
        "gs1": {
            "first_divergence": "translation",
            "stages": {"translation": "fail", "forward": "pass", "training": "fail"},
            "notes": {},
        },
        "gs2": {"first_divergence": None, "stages": {"config": "pass"}, "notes": {}},
    }
    assert [c["stage"] for c in results["comparisons"]] == ["translation", "forward", "training", "config"]
    assert json.loads((hub / "results.json").read_text()) == results
    assert json.loads((hub / "env.json").read_text()) == ENV
    assert (hub / "run.log").read_text() == "the log\n"
    summary = (hub / "summary.md").read_text()
    assert (
        "| gs1 | - | - | - | - | [**FAIL**](#fail-gs1-translation) | pass | - | - | - "
        "| - | - | [**FAIL**](#fail-gs1-training) | - | - | - |"
    ) in summary
    assert "- gs1: **translation** (sub-pixel bilinear translation" in summary
    assert "- gs2: none" in summary
    assert "[gs1] stage training tf_pinn~torch_pinn loss_band: exceeds" in summary
    assert "INCOMPLETE" not in summary
    html = (hub / "index.html").read_text()
    assert '<td class="fail"><a href="#fail-gs1-translation">FAIL</a></td>' in html and 'id="gs2"' in html
    assert '<tr id="fail-gs1-translation">' in html and '<tr id="fail-gs1-training">' in html


def test_an_interrupted_run_keeps_its_marker_and_says_so(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    hubs.write_part(hub, "gw0", [make_comparison("gs1", "forward", True)])
    # A worker killed mid-write leaves a torn last line: it becomes a warning, not a crash.
    with open(hub / "parts" / "gw1.jsonl", "a") as handle:
        handle.write('{"record": "comparison", "config_id": "gs')
    results = hubs.finalize(hub, ENV, "", complete=False)
    assert results["complete"] is False and (hub / "INCOMPLETE").exists()
    assert results["warnings"][0].startswith("parts/gw1.jsonl:1: unreadable record skipped")
    summary = (hub / "summary.md").read_text().splitlines()
    assert summary[2].startswith("**INCOMPLETE RUN**")
    assert "INCOMPLETE RUN" in (hub / "index.html").read_text()


def test_render_refuses_another_schema_or_version(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    hubs.finalize(hub, ENV, "", complete=True)
    results = json.loads((hub / "results.json").read_text())
    (hub / "results.json").write_text(json.dumps(dict(results, schema_version=2)))
    with pytest.raises(
        hubs.ResultsSchemaError,
        match="expected schema 'pinn-parity-results' schema_version 1, found 'pinn-parity-results' 2",
    ):
        hubs.render(hub)
    (hub / "results.json").write_text(json.dumps(dict(results, schema="something-else")))
    with pytest.raises(hubs.ResultsSchemaError, match="'something-else'"):
        hubs.render(hub)
    with pytest.raises(hubs.HubError, match="no hub at"):
        hubs.render(tmp_path / "nowhere")


def test_latest_points_at_the_newest_hub_with_a_text_fallback(tmp_path, monkeypatch):
    root = tmp_path / "reports"
    old = hubs.new_hub(root, now=WHEN)
    hubs.finalize(old, ENV, "", complete=True)
    assert os.readlink(root / "latest") == old.name
    new = hubs.new_hub(root)
    hubs.finalize(new, ENV, "", complete=True)
    assert hubs.resolve_hub(root / "latest") == new.resolve()

    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported here")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    hubs.update_latest(old)
    assert (root / "latest").read_text().strip() == old.name
    assert hubs.resolve_hub(root / "latest") == old.resolve()


def test_artifacts_and_series_become_plots(tmp_path, tol, rng):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    obj = (0.5 + rng.random((24, 28))) * np.exp(1j * rng.random((24, 28)))
    tols = {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}
    noisy = obj * 1.1 + 0.05 * rng.standard_normal(obj.shape)
    records = [
        *compare_reconstruction(obj, noisy, tols, config_id="gs1"),
        compare_band([1.0, 0.5, 0.4], [1.0, 0.51, 0.4], tol("training", "loss_band"), config_id="gs1"),
    ]
    artifact = hubs.Artifact(
        "gs1", "reconstruction", {"tf_pinn": obj.astype(np.complex64), "torch_pinn": obj.astype(np.complex64)}
    )
    hubs.write_part(hub, "gw0", records, [artifact])
    results = hubs.finalize(hub, ENV, "", complete=True)
    assert results["artifacts"] == [
        {
            "config_id": "gs1",
            "kind": "reconstruction",
            "labels": ["tf_pinn", "torch_pinn"],
            "file": "parts/gw0/gs1.reconstruction.npz",
        }
    ]
    plots = sorted(p.name for p in (hub / "plots").iterdir())
    assert plots == ["gs1-frc-tf_pinn-torch_pinn.png", "gs1-loss.png", "gs1-reconstruction.png"]
    assert all((hub / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in plots)
    html = (hub / "index.html").read_text()
    assert all(f'src="plots/{name}"' in html for name in plots)
    assert "<figcaption>" not in html  # the figure's own title says it once
    # Re-rendering from results.json alone gives the same page.
    hubs.render(hub)
    assert (hub / "index.html").read_text() == html


def test_plots_a_worker_drew_are_linked_not_redrawn_and_missing_ones_are_drawn(tmp_path, tol, rng, monkeypatch):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    obj = ((0.5 + rng.random((24, 28))) * np.exp(1j * rng.random((24, 28)))).astype(np.complex64)
    noisy = (obj * 1.1 + 0.05 * rng.standard_normal(obj.shape)).astype(np.complex64)
    records = compare_reconstruction(
        obj, noisy, {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}, config_id="gs1"
    )
    artifact = hubs.Artifact("gs1", "reconstruction", {"tf_pinn": obj, "torch_pinn": obj})
    artifacts = hubs.write_part(hub, "gw0", records, [artifact])
    # What a worker does after the stage: its plots are in place before the session ends.
    drawn = plots.draw_missing(hub, [c.to_dict() for c in records], artifacts)
    assert sorted(p.name for p in drawn) == ["gs1-frc-tf_pinn-torch_pinn.png", "gs1-reconstruction.png"]
    stamps = {p.name: p.stat().st_mtime_ns for p in drawn}
    assert plots.draw_missing(hub, [c.to_dict() for c in records], artifacts) == []

    draws = []
    for name in ("plot_reconstruction", "plot_frc", "plot_loss_curves"):
        original = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, original=original, name=name: (draws.append(name), original(*a)))
    hubs.finalize(hub, ENV, "", complete=True)
    assert draws == [] and {p.name: p.stat().st_mtime_ns for p in drawn} == stamps
    html = (hub / "index.html").read_text()
    assert all(f'src="plots/{name}"' in html for name in stamps)
    # `python -m parity report` draws what is missing, from the saved artifact.
    (hub / "plots" / "gs1-reconstruction.png").unlink()
    hubs.render(hub)
    assert draws == ["plot_reconstruction"] and (hub / "plots" / "gs1-reconstruction.png").is_file()


def test_flat_plots_are_said_in_words(tmp_path, tol, rng):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    obj = (0.5 + rng.random((24, 28))) * np.exp(1j * rng.random((24, 28)))
    # Equal after removing the global factor: the FRC is 1 everywhere.
    records = compare_reconstruction(
        obj, obj * 1.1, {m: tol("reconstruction", m) for m in RECONSTRUCTION_METRICS}, config_id="gs1"
    )
    assert plots.draw_missing(hub, [c.to_dict() for c in records], []) == []
    hubs.write_part(hub, "gw0", records)
    hubs.finalize(hub, ENV, "", complete=True)
    assert not (hub / "plots" / "gs1-frc-tf_pinn-torch_pinn.png").exists()
    assert (
        '<p class="flat">gs1: frc-tf_pinn-torch_pinn: the FRC is 1 at all 12 points, so it is not drawn</p>'
        in (hub / "index.html").read_text()
    )


def test_a_broken_artifact_costs_only_its_plot(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    artifact = hubs.Artifact("gs1", "reconstruction", {"tf_pinn": np.ones((8, 8), np.complex64)})
    hubs.write_part(hub, "gw0", [make_comparison("gs1", "forward", True)], [artifact])
    (hub / "parts" / "gw0" / "gs1.reconstruction.npz").write_bytes(b"garbage")
    hubs.finalize(hub, ENV, "", complete=True)
    assert "plot gs1: reconstruction could not be made" in (hub / "index.html").read_text()


def test_write_part_validates_its_input(tmp_path):
    hub = hubs.new_hub(tmp_path / "reports", now=WHEN)
    with pytest.raises(ValueError, match="worker id '../gw0' is not a safe file name"):
        hubs.write_part(hub, "../gw0", [])
    with pytest.raises(ValueError, match="stage 'nope' is not one of"):
        hubs.write_part(hub, "gw0", [dict(make_comparison("gs1", "forward", True).to_dict(), stage="nope")])
    with pytest.raises(hubs.HubError, match="is not a hub"):
        hubs.write_part(tmp_path, "gw0", [])


def test_a_stage_note_is_shown_beside_its_cell_and_listed_once(tmp_path):
    hub = hubs.new_hub(tmp_path)
    note = hubs.StageNote("gs1", "config", "shared", "shared by construction: both run make_config")
    hubs.write_part(hub, "gw0", [make_comparison("gs1", "config", True, kind="exact")], notes=[note])
    hubs.write_part(hub, "gw1", [make_comparison("gs2", "config", True, kind="exact")], notes=[note])
    results = hubs.finalize(hub, ENV, "", complete=True)
    assert results["notes"] == [note.to_dict()]
    assert results["configs"]["gs1"]["notes"] == {"config": [note.to_dict()]}
    assert results["configs"]["gs2"]["notes"] == {}
    summary = (hub / "summary.md").read_text()
    assert "| gs1 | pass (shared) |" in summary and "| gs2 | pass |" in summary
    assert summary.count("shared by construction: both run make_config (gs1 config)") == 1
    assert 'title="shared by construction: both run make_config">shared</span>' in (hub / "index.html").read_text()
    with pytest.raises(ValueError):
        hubs.write_part(hub, "gw0", [], notes=[hubs.StageNote("gs1", "nosuchstage", "shared", "x")])
