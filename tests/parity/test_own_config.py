"""The backend's own configuration: resolve_config gets the case's data file when it accepts one,
and own fields ("x.<field>") are compared where two backends have them, noted where one has."""

import pytest

from adapters.base import OWN_FIELD_PREFIX, call_resolve_config
from adapters.mutants import Mutant
from adapters.referee import Float64Referee
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.stage_runner import run_stage
from parity.status import NoteKind

CASE = ParityCase("gs1-k4-poisson-n32-own", SimulatedData(seed=3, n_positions=20), {})


class Recording(Float64Referee):
    def resolve_config(self, overrides, data_path=None):
        self.seen = data_path
        return super().resolve_config(overrides, data_path)


class OldStyle(Float64Referee):
    def resolve_config(self, overrides):  # written before data_path existed
        return super().resolve_config(overrides)


class Own(Float64Referee):
    own = {}

    def resolve_config(self, overrides, data_path=None):
        return {**super().resolve_config(overrides, data_path), **self.own}


def named(**adapters):
    for name, adapter in adapters.items():
        adapter.name = name
    return adapters


def test_the_harness_passes_the_data_file_and_still_calls_overrides_only_adapters(tmp_path):
    recording = Recording()
    ctx = make_context(CASE, named(rec=recording, old=OldStyle()), tmp_path)
    result = run_stage(ctx, "config")
    assert result.comparisons and all(c.passed for c in result.comparisons)
    assert recording.seen == ctx.inputs.data_path and recording.seen.is_file()
    assert call_resolve_config(OldStyle(), {"gridsize": 2}, "ignored")["gridsize"] == 2


def test_a_mutant_passes_the_data_file_through():
    inner = Recording()
    Mutant(inner=inner).resolve_config({}, data_path="scan.npz")
    assert inner.seen == "scan.npz"


@pytest.mark.parametrize(
    "a, b, passed",
    [
        ({"x.scale_trainable": True}, {"x.scale_trainable": True}, True),
        ({"x.scale_trainable": True}, {"x.scale_trainable": False}, False),
    ],
)
def test_own_fields_both_backends_have_are_compared(tmp_path, a, b, passed):
    left, right = Own(), Own()
    left.own, right.own = a, b
    result = run_stage(make_context(CASE, named(a=left, b=right), tmp_path), "config")
    by_metric = {c.metric: c for c in result.comparisons if str(c.check) == "b~a"}
    assert by_metric["fields"].passed and by_metric["fields.own"].passed is passed
    assert all(c.passed for c in result.comparisons if c.check.right == "spec")  # own fields are not the spec's
    if not passed:
        assert "x.scale_trainable: b=False, a=True" in by_metric["fields.own"].message


def test_an_own_field_only_one_backend_has_is_noted_not_failed(tmp_path):
    mine = Own()
    mine.own = {OWN_FIELD_PREFIX + "planner": "fftw"}
    result = run_stage(make_context(CASE, named(ref=Float64Referee(), mine=mine), tmp_path), "config")
    assert all(c.passed for c in result.comparisons)
    assert "fields.own" not in {c.metric for c in result.comparisons}
    assert [(n.kind, n.text) for n in result.notes if n.kind != "shared"] == [
        (NoteKind.OWN_FIELD, "x.planner is mine's own field (= 'fftw'); ref has none: not compared")
    ]


class CliDefaults(Float64Referee):
    """A backend whose own factory and train CLI fill `defaults` where the caller is silent."""

    defaults = {}

    def resolve_config(self, overrides, data_path=None):
        from backends.common.config import make_config

        return make_config({**self.defaults, **overrides}).to_dict()

    def run_train_cli(self, argv):
        import argparse

        from backends.common.config import FIELD_NAMES, add_config_arguments

        parser = argparse.ArgumentParser()
        add_config_arguments(parser)
        known, _ = parser.parse_known_args(argv)
        given = {k: v for k, v in vars(known).items() if v is not None and k in FIELD_NAMES}
        return self.resolve_config(given)


def test_a_default_split_carried_to_the_cli_says_it_was_first_seen_at_config(tmp_path):

    class Six(CliDefaults):
        defaults = {"neighbor_count": 6}

    ctx = make_context(CASE, named(ref=CliDefaults(), six=Six()), tmp_path)
    assert {c.metric for c in run_stage(ctx, "config").comparisons if not c.passed} == {"fields"}
    cli = run_stage(ctx, "cli")
    assert any(not c.passed and str(c.check) == "six~ref" for c in cli.comparisons)
    assert [n.text for n in cli.notes if n.kind == NoteKind.FIRST_SEEN] == [
        "default split first seen at stage config: neighbor_count (six=6, ref=4)"
    ]
    same = make_context(CASE, named(ref=CliDefaults(), other=CliDefaults()), tmp_path / "b")
    assert not [n for n in run_stage(same, "cli").notes if n.kind == NoteKind.FIRST_SEEN]


class Infers(CliDefaults):
    """An inference command line that writes `writes` into its output folder (or raises `fails`)."""

    writes = ("reconstruction.npz", "reconstruction.png")
    fails = None

    def run_infer_cli(self, train_output_dir, data_path, output_dir):
        if self.fails is not None:
            raise self.fails
        output_dir.mkdir(parents=True, exist_ok=True)
        for name in self.writes:
            (output_dir / name).write_bytes(b"")
        return {"files": sorted(p.name for p in output_dir.iterdir())}


def _infer_comparisons(ctx):
    return [c for c in run_stage(ctx, "cli").comparisons if c.metric == "infer.files" or c.kind == "error"]


def test_the_inference_command_lines_must_run_and_write_the_same_files(tmp_path):
    class PngOnly(Infers):
        writes = ("reconstruction.png",)

    class Broken(Infers):
        fails = RuntimeError("cannot load its own bundle")

    same = _infer_comparisons(make_context(CASE, named(ref=Infers(), other=Infers()), tmp_path / "a"))
    assert [(str(c.check), c.passed) for c in same] == [("other~ref", True)]
    fewer = _infer_comparisons(make_context(CASE, named(ref=Infers(), png=PngOnly()), tmp_path / "b"))
    assert [(str(c.check), c.passed) for c in fewer] == [("png~ref", False)]
    broken = _infer_comparisons(make_context(CASE, named(ref=Infers(), broken=Broken()), tmp_path / "c"))
    assert [(str(c.check), c.passed) for c in broken] == [("broken", False)]
    assert "cannot load its own bundle" in broken[0].message


def test_without_two_inference_command_lines_that_part_is_noted_not_run(tmp_path):
    result = run_stage(make_context(CASE, named(ref=Infers(), plain=CliDefaults()), tmp_path), "cli")
    assert not [c for c in result.comparisons if c.metric == "infer.files"]
    assert any("inference part n/a" in n.text for n in result.notes if n.kind == NoteKind.NA)
