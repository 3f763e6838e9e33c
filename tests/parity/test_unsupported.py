"""Unsupported is not failed: capabilities, n/a stages, where inputs come from, and outputs
checked key by key. The backends are the numpy referee rounded to float32 and variants of it
that declare fewer stages: real adapters, no framework.
"""

import numpy as np
import pytest

from adapters.base import STAGE_METHODS, Adapter
from adapters.mutants import Mutant
from adapters.referee import Float64Referee
from adapters.registry import get_adapter
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.report import hub as hubs
from parity.stage_runner import run_stage
from parity.stages import STAGES

CASE = ParityCase("gs2-k4-poisson-n32-na", SimulatedData(seed=3, n_positions=20), {"gridsize": 2})
REFEREE_STAGES = ("config", "data", "grouping", "translation", "forward", "loss", "optimizer", "reconstruction")


class Float32Referee(Float64Referee):
    """The referee's outputs rounded to float32, like a framework backend's."""

    def translate(self, images, shifts_px):
        return super().translate(images, shifts_px).astype(np.complex64)

    def forward(self, object_patches, probe, offsets_px, object_big):
        out = super().forward(object_patches, probe, offsets_px, object_big)
        return {"far_field": out["far_field"].astype(np.complex64), "amplitude": out["amplitude"].astype(np.float32)}

    def optimizer_steps(self, config, weights, grads_per_step):
        return {
            k: np.asarray(v, np.float32) for k, v in super().optimizer_steps(config, weights, grads_per_step).items()
        }

    def stitch(self, patches, xcoords, ycoords):
        out = super().stitch(patches, xcoords, ycoords)
        return {"object": out["object"].astype(np.complex64), "origin_px": out["origin_px"]}


class Partial(Float32Referee):
    """Says it does config, data, translation, forward and loss only: no grouping, no optimizer,
    no reconstruction (it has the methods, but the declaration is what counts)."""

    declared_stages = ("config", "data", "translation", "forward", "loss")


class AmplitudeOnly(Float32Referee):
    def forward(self, object_patches, probe, offsets_px, object_big):
        return {"amplitude": super().forward(object_patches, probe, offsets_px, object_big)["amplitude"]}


def _context(tmp_path, *adapters, referee=True):
    named = {}
    for index, adapter in enumerate(adapters):
        adapter.name = f"{type(adapter).__name__.lower()}{index}"
        named[adapter.name] = adapter
    return make_context(CASE, named, tmp_path, referee=Float64Referee() if referee else None)


def _failed(result):
    return [c for c in result.comparisons if not c.passed]


# --- capabilities --------------------------------------------------------------


def test_stage_methods_cover_every_stage_in_pipeline_order():
    assert tuple(STAGE_METHODS) == STAGES


def test_bundled_adapters_support_every_stage_and_the_referee_its_contract_stages():
    assert get_adapter("tf_pinn").supported_stages() == STAGES
    assert get_adapter("torch_pinn").supported_stages() == STAGES
    assert get_adapter("referee").supported_stages() == REFEREE_STAGES


def test_a_mutant_reports_its_inner_adapters_stages():
    assert Mutant(inner=Partial()).supported_stages() == Partial.declared_stages


def test_declared_stages_override_and_unknown_names_raise():
    assert Partial().supported_stages() == Partial.declared_stages

    class Typo(Float64Referee):
        declared_stages = ("forwrd",)

    with pytest.raises(ValueError, match="unknown stage"):
        Typo().supported_stages()


class PartialWithReasons(Partial):
    unsupported_stages = {
        "grouping": "its grouping draws from a global random stream",
        "optimizer": "its optimiser is built inside its training loop only",
    }


def test_unsupported_stages_give_one_line_reasons_for_stages_not_supported():
    assert PartialWithReasons().unsupported_reason("grouping") == "its grouping draws from a global random stream"
    assert PartialWithReasons().unsupported_reason("model") is None
    assert Mutant(inner=PartialWithReasons()).unsupported_reason("optimizer").startswith("its optimiser")

    for stages, message in [
        ({"forwrd": "typo"}, "unknown stage"),
        ({"forward": "but it declares it"}, "which it supports"),
        ({"grouping": "two\nlines"}, "one-line reason"),
        ({"grouping": " "}, "one-line reason"),
    ]:
        bad = type("Bad", (Partial,), {"unsupported_stages": stages})
        with pytest.raises(ValueError, match=message):
            bad().supported_stages()


def test_an_na_note_and_skip_reason_give_the_lacking_backends_reason(tmp_path):
    result = run_stage(_context(tmp_path, Float32Referee(), PartialWithReasons()), "grouping")
    assert (
        "lacking grouping: partialwithreasons1 (its grouping draws from a global random stream)" in result.unsupported
    )
    assert result.notes[0].text == result.unsupported
    three = run_stage(_context(tmp_path, PartialWithReasons(), Float32Referee(), Float32Referee()), "optimizer")
    assert [n.text for n in three.notes] == [
        "lacking optimizer: partialwithreasons0 (its optimiser is built inside its training loop only): "
        "compared float32referee1, float32referee2"
    ]
    both = run_stage(_context(tmp_path, PartialWithReasons(), PartialWithReasons(), Float32Referee()), "grouping")
    assert (
        "lacking grouping: partialwithreasons0, partialwithreasons1 (its grouping draws from a global random "
        "stream)" in both.unsupported
    )


def test_stitch_alone_supports_reconstruction():
    class StitchOnly(Adapter):
        def stitch(self, patches, xcoords, ycoords):
            return {}

    assert StitchOnly().supported_stages() == ("reconstruction",)


# --- n/a -------------------------------------------------------------------------


def test_a_pair_lacking_stages_is_na_and_green(tmp_path):
    ctx = _context(tmp_path, Float32Referee(), Partial())
    hub = hubs.new_hub(tmp_path / "reports")
    for stage in STAGES:
        result = run_stage(ctx, stage)
        assert not _failed(result), (stage, [c.message for c in _failed(result)])
        assert bool(result.unsupported) == (stage not in Partial.declared_stages), stage
        hubs.write_part(hub, "main", result.comparisons, notes=result.notes)
    results = hubs.finalize(hub, {}, "", complete=True)
    entry = results["configs"][CASE.id]
    assert entry["first_divergence"] is None
    assert [s for s, v in entry["stages"].items() if v == "pass"] == list(Partial.declared_stages)
    assert results["totals"]["stages"] == {
        "pass": 5,
        "fail": 0,
        "known": 0,
        "n/a": len(STAGES) - 5,
        "adapter error": 0,
        "harness error": 0,
    }
    assert "| n/a |" in (hub / "summary.md").read_text()
    assert f"5 passed / 0 failed / 0 known splits / {len(STAGES) - 5} n/a" in (hub / "summary.md").read_text()
    assert '<td class="na">n/a' in (hub / "index.html").read_text()


def test_a_stage_only_one_backend_supports_is_na_naming_the_one_lacking_it(tmp_path):
    result = run_stage(_context(tmp_path, Float32Referee(), Partial()), "grouping")
    assert result.comparisons == []
    assert "lacking grouping: partial1" in result.unsupported
    assert [note.kind for note in result.notes] == ["n/a"]


def test_three_backends_one_lacking_a_stage_compares_the_other_two_and_notes_it(tmp_path):
    ctx = _context(tmp_path, Partial(), Float32Referee(), Float32Referee())
    result = run_stage(ctx, "grouping")
    assert result.unsupported is None and result.reference == "float32referee1"
    checks = {str(c.check) for c in result.comparisons}
    assert "float32referee2~float32referee1" in checks and not any("partial0" in c for c in checks)
    assert all(c.passed for c in result.comparisons)
    assert [(n.kind, n.text) for n in result.notes] == [
        ("n/a", "lacking grouping: partial0: compared float32referee1, float32referee2")
    ]


def test_a_stage_named_in_declared_stages_that_raises_not_implemented_fails_as_a_lie(tmp_path):
    class Liar(Float32Referee):
        declared_stages = ("translation", "forward")

        def translate(self, images, shifts_px):
            raise NotImplementedError("not really")

    failed = _failed(run_stage(_context(tmp_path, Float32Referee(), Liar()), "translation"))
    assert [(str(c.check), c.metric) for c in failed] == [("liar1", "declared")]
    assert "liar1 names stage 'translation' in declared_stages but raised NotImplementedError" in failed[0].message
    assert "declaration lied" in failed[0].message
    assert failed[0].error["origin"] == "adapter"


def test_an_overridden_stage_method_raising_not_implemented_is_na_with_the_remedy(tmp_path):
    """A team subclasses an adapter and drops one stage by raising NotImplementedError: Python's word for
    "not implemented", so that backend lacks the stage; the others are still compared."""

    class DropsTranslation(Float32Referee):
        def translate(self, images, shifts_px):
            raise NotImplementedError("we do not translate")

    three = run_stage(_context(tmp_path, Float32Referee(), DropsTranslation(), Float32Referee()), "translation")
    assert three.unsupported is None and not _failed(three)
    assert {c.check.left for c in three.comparisons} == {"float32referee0", "float32referee2"}
    (note,) = [n for n in three.notes if n.kind == "n/a"]
    assert note.text == (
        "dropstranslation1 raised NotImplementedError at stage translation (we do not translate): n/a for it; "
        "say so in its adapter's unsupported_stages, with a reason"
    )
    two = run_stage(_context(tmp_path, Float32Referee(), DropsTranslation()), "translation")
    assert two.unsupported == "stage translation n/a: fewer than two backends implement it" and not two.comparisons


# --- where inputs come from --------------------------------------------------------


class NoGrouping(Float32Referee):
    """Lacks grouping and scales (the referee has `scales` but not the model stage)."""

    declared_stages = ("config", "data", "translation", "forward", "loss", "optimizer", "reconstruction")


def test_without_grouping_and_scales_the_other_stages_still_pass(tmp_path):
    # Offsets for forward and loss come from the referee's contract grouping.
    ctx = _context(tmp_path, NoGrouping(), NoGrouping())
    for stage in NoGrouping.declared_stages:
        result = run_stage(ctx, stage)
        assert result.unsupported is None and result.comparisons and not _failed(result), stage
    for stage in ("grouping", "model", "gradients", "training", "bundle"):
        assert run_stage(ctx, stage).unsupported


def test_an_input_no_backend_can_produce_makes_its_stage_na(tmp_path):
    ctx = _context(tmp_path, NoGrouping(), NoGrouping(), referee=False)
    result = run_stage(ctx, "forward")
    assert result.comparisons == []
    assert "no backend supports grouping, which produces the group offsets" in result.unsupported
    assert run_stage(ctx, "translation").unsupported is None


def test_offsets_come_from_the_first_backend_supporting_grouping(tmp_path):
    ctx = _context(tmp_path, Partial(), Float32Referee(), Partial())
    assert ctx.upstream.producer("grouping")[0] == "float32referee1"
    assert not _failed(run_stage(ctx, "forward"))


def test_reconstruction_without_reconstruct_compares_the_stitch_and_notes_the_rest(tmp_path):
    result = run_stage(_context(tmp_path, Float32Referee(), Float32Referee()), "reconstruction")
    assert {c.metric for c in result.comparisons} >= {"stitch.object", "stitch.origin_px"}
    assert not _failed(result)
    assert any(n.kind == "n/a" and n.text.startswith("trained-model part n/a") for n in result.notes)


def test_a_stitch_only_pair_needs_no_ledger_entries_of_the_trained_part(tmp_path):
    import json

    from parity.tolerances import use_ledger

    from .factories import ledger_document, ledger_entry

    path = tmp_path / "stitch-only.json"
    path.write_text(json.dumps(ledger_document([ledger_entry("reconstruction", "stitch", 1e-5)])))
    previous = use_ledger(path)
    try:
        result = run_stage(_context(tmp_path, Float32Referee(), Float32Referee(), referee=False), "reconstruction")
    finally:
        use_ledger(previous)
    assert {c.metric for c in result.comparisons} == {"stitch.object", "stitch.origin_px"}
    assert not _failed(result)


# --- outputs checked key by key -------------------------------------------------------


def test_an_optional_output_left_out_is_noted_not_failed(tmp_path):
    result = run_stage(_context(tmp_path, Float32Referee(), AmplitudeOnly()), "forward")
    assert not _failed(result)
    assert {c.metric for c in result.comparisons if c.check.right != "referee"} == {"amplitude"}
    assert [n.text for n in result.notes if n.kind == "optional"] == [
        "far_field (optional) not given by amplitudeonly1: compared nowhere"
    ]


@pytest.mark.parametrize(
    "output, expected",
    [
        (lambda out: {"far_field": out["far_field"]}, "missing key 'amplitude' (expected array)"),
        (lambda out: {**out, "phase": out["amplitude"]}, "extra key 'phase'"),
        (lambda out: {**out, "amplitude": out["amplitude"].tolist()}, "key 'amplitude' is list, expected array"),
        (lambda out: {**out, "amplitude": None}, "key 'amplitude' is NoneType, expected array"),
        (lambda out: None, "returned NoneType, expected a mapping with keys ['amplitude'] (optional ['far_field'])"),
    ],
)
def test_a_bad_output_fails_cleanly_naming_the_key(tmp_path, output, expected):
    class Bad(Float32Referee):
        def forward(self, object_patches, probe, offsets_px, object_big):
            return output(super().forward(object_patches, probe, offsets_px, object_big))

    failed = _failed(run_stage(_context(tmp_path, Float32Referee(), Bad()), "forward"))
    assert [(str(c.check), c.metric) for c in failed] == [("bad1", "outputs")]
    assert f"bad1.forward: {expected}" in failed[0].message


def test_a_wrong_layout_fails_naming_the_key(tmp_path):
    class Transposed(Float32Referee):
        def forward(self, object_patches, probe, offsets_px, object_big):
            out = super().forward(object_patches, probe, offsets_px, object_big)
            return {k: np.swapaxes(v, 0, 1) for k, v in out.items()}

    failed = _failed(run_stage(_context(tmp_path, Float32Referee(), Transposed()), "forward"))
    cross = [c for c in failed if str(c.check) == "transposed1~float32referee0"]
    assert {c.metric for c in cross} == {"amplitude", "far_field"}
    assert all("shape differs" in c.message for c in cross)


def test_the_session_records_an_na_stage_in_the_hub_and_raises_unsupported(tmp_path):
    from parity.case_context import Unsupported

    from .factories import session_with

    hub = hubs.new_hub(tmp_path / "reports")
    session = session_with(tmp_path, hub, {"full": Float32Referee(), "partial": Partial()})
    with pytest.raises(Unsupported, match="lacking grouping: partial"):
        session.run(CASE, "grouping")
    results = hubs.finalize(hub, {}, "", complete=True)
    assert results["configs"][CASE.id]["stages"] == {"grouping": "n/a"}
    assert results["totals"]["stages"] == {
        "pass": 0,
        "fail": 0,
        "known": 0,
        "n/a": 1,
        "adapter error": 0,
        "harness error": 0,
    }
