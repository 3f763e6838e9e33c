"""The mutation audit: mutant adapters, their registry, and `python -m parity audit`.

Framework-free tests use a recording fake adapter; the tests marked slow run the
real audit in-process on the cheap mutants (caught at config, grouping, forward
and loss) against tf_pinn (TensorFlow), with torch_pinn as the wrapped base.
"""

import inspect
import json
import sys
import types
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from adapters import mutants as mutants_module
from adapters import referee
from adapters.base import Adapter, Batch, ModelState
from adapters.mutants import (
    MUTANTS,
    PERTURBATIONS,
    Harmless,
    Mutant,
    MutantError,
    NeighborCountDefault,
    available,
    config_flag_given,
    get_mutant,
    patched,
    seed_among_neighbors,
    ties_to_higher_index,
    transpose_kernels,
)
from adapters.registry import get_adapter
from backends.common.config import make_config
from backends.common.simulate import simulate
from parity import audit
from parity.__main__ import main
from parity.case_context import make_context
from parity.matrix import AUDIT, MATRIX, select
from parity.stage_runner import run_stage
from parity.stages import STAGES

CHEAP = (
    "neighbor_count_default",
    "gridsize_default",
    "grouping_seed_included",
    "grouping_ties_high",
    "offset_sign",
    "fftshift_missing",
    "fft_norm_backward",
    "loss_sum",
)
EARLY_STAGES = STAGES[: STAGES.index("loss") + 1]


class HarmlessProbe(Mutant):
    """Claims a bug at the loss stage but changes nothing: the audit must call it uncaught."""

    name = "harmless_probe"
    expected_stage = "loss"
    description = "changes nothing (a test of the audit itself)"


class NotAMutant:
    name = "not_a_mutant"


class Misnamed(Mutant):
    name = "some_other_name"
    expected_stage = "loss"


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Entry points of the group "pinn_parity.mutants" pointing into a module made here."""
    module = types.ModuleType("fake_mutant_plugin")
    module.HarmlessProbe, module.NotAMutant, module.Misnamed = HarmlessProbe, NotAMutant, Misnamed
    monkeypatch.setitem(sys.modules, module.__name__, module)
    points = [
        EntryPoint(name, f"{module.__name__}:{attr}", mutants_module.ENTRY_POINT_GROUP)
        for name, attr in (
            ("harmless_probe", "HarmlessProbe"),
            ("not_a_mutant", "NotAMutant"),
            ("misnamed", "Misnamed"),
            ("loss_sum", "HarmlessProbe"),
        )
    ]

    def entry_points(group=None):
        return [p for p in points if p.group == group]

    monkeypatch.setattr(mutants_module, "entry_points", entry_points)
    return points


class Recorder(Adapter):
    """Answers every stage with (method name, arguments), so delegation is visible."""

    name = "recorder"

    def __getattribute__(self, attr):
        if attr in _STAGE_METHODS:
            return lambda *args: (attr, args)
        return super().__getattribute__(attr)


_STAGE_METHODS = {name for name, value in vars(Adapter).items() if callable(value) and not name.startswith("_")}


# --- the table and the base class ------------------------------------------------


def test_every_mutant_is_listed_with_its_stage_and_description():
    assert len(MUTANTS) == 17
    for name, cls in MUTANTS.items():
        assert cls.name == name and issubclass(cls, Mutant)
        assert cls.expected_stage in STAGES, name
        assert cls.description and "\n" not in cls.description, name
    assert {cls.expected_stage for cls in MUTANTS.values()} >= {
        "config",
        "grouping",
        "translation",
        "forward",
        "loss",
        "model",
        "training",
        "reconstruction",
        "bundle",
    }


def test_the_base_mutant_delegates_every_stage():
    assert _STAGE_METHODS <= set(vars(Mutant)), "an Adapter method Mutant does not delegate"
    mutant = Harmless(Recorder())
    for name in sorted(_STAGE_METHODS):
        n_args = len(inspect.signature(getattr(Adapter, name)).parameters) - 1
        args = tuple(object() for _ in range(n_args))
        assert getattr(mutant, name)(*args) == (name, args), name


def test_a_mutant_wraps_the_adapter_it_is_named():
    mutant = get_mutant("loss_sum")("tf_pinn")
    assert mutant.inner.name == "tf_pinn" and mutant.label == "tf_pinn+loss_sum"


def test_patched_restores_the_attribute_even_when_the_block_raises():
    module = types.SimpleNamespace(batch_order="original")
    with pytest.raises(RuntimeError):
        with patched(module, "batch_order", "patched") as original:
            assert original == "original" and module.batch_order == "patched"
            raise RuntimeError("inside")
    assert module.batch_order == "original"


def test_the_partial_batch_mutant_needs_a_bundled_backend():
    with pytest.raises(NotImplementedError, match="bundled backend"):
        get_mutant("partial_batch_dropped")(Recorder()).train({}, "data.npz", {}, 1)


# --- config mutants: factory and CLI ---------------------------------------------


@pytest.mark.parametrize(
    "argv, given",
    [
        (["--train-data-file", "d.npz", "--output-dir", "o"], False),
        (["--train-data-file", "d.npz", "--neighbor-count", "4", "--output-dir", "o"], True),
        (["--neighbor_count=5"], True),
        (["--K", "7"], True),
        (["--gridsize", "2"], False),
    ],
)
def test_config_flag_given_knows_every_spelling(argv, given):
    assert config_flag_given(argv, "neighbor_count") is given


def test_a_wrong_factory_default_shows_in_config_and_cli_only_when_unset():
    mutant = NeighborCountDefault(Recorder())
    assert mutant.resolve_config({})["neighbor_count"] == 6
    assert mutant.resolve_config({"neighbor_count": 4}) == make_config({"neighbor_count": 4}).to_dict()
    argv = ["--train-data-file", "d.npz", "--output-dir", "o"]
    assert mutant.run_train_cli(argv) == ("run_train_cli", (argv + ["--neighbor-count", "6"],))
    assert mutant.run_train_cli(argv + ["--K", "5"]) == ("run_train_cli", (argv + ["--K", "5"],))
    gridsize = get_mutant("gridsize_default")(Recorder()).resolve_config({})
    assert gridsize["gridsize"] == 2 and gridsize["object_big"] is True


# --- numpy pre/post-processing ----------------------------------------------------


def test_each_grouping_mutant_changes_the_referees_groups():
    ds = simulate(seed=21, n_positions=20, n=32, jitter=0.0)  # an exact raster: distances tie
    cfg = make_config({"gridsize": 2}).to_dict()
    for name in ("grouping_seed_included", "grouping_ties_high", "grouping_unseeded"):
        mutant = get_mutant(name)(Recorder())  # the wrapped adapter is never asked to group
        for inference in (False, True):
            flawed = mutant.group(ds.xcoords, ds.ycoords, cfg, inference)
            reference = referee.group_positions(ds.xcoords, ds.ycoords, cfg, inference)
            assert flawed["nn_indices"].shape == reference["nn_indices"].shape == (20, 4)
            assert not np.array_equal(flawed["nn_indices"], reference["nn_indices"]), (name, inference)


def test_the_flawed_neighbour_rules_by_hand():
    # From 0: 3 at distance 0 (same place), then 1 and 2 tied at 1. From 4: 1 at 2, then 0 and 3 tied at 3.
    x, y = np.array([0.0, 1.0, -1.0, 0.0, 3.0]), np.zeros(5)
    seeds = np.array([0, 4])
    np.testing.assert_array_equal(referee.nearest_others(x, y, seeds, 3), [[3, 1, 2], [1, 0, 3]])
    np.testing.assert_array_equal(seed_among_neighbors(x, y, seeds, 3), [[0, 3, 1], [4, 1, 0]])
    np.testing.assert_array_equal(ties_to_higher_index(x, y, seeds, 3), [[3, 2, 1], [1, 3, 0]])


def test_kernel_transposition_swaps_height_and_width_of_kernels_only():
    weights = {
        "a.kernel": np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3),
        "a.bias": np.ones(1, np.float32),
        "log_intensity_scale": np.float32(0.5),
    }
    swapped = transpose_kernels(weights)
    np.testing.assert_array_equal(swapped["a.kernel"], np.swapaxes(weights["a.kernel"], 2, 3))
    assert swapped["a.bias"] is weights["a.bias"]
    np.testing.assert_array_equal(transpose_kernels(swapped)["a.kernel"], weights["a.kernel"])


def test_channel_order_mutant_reverses_diffraction_but_not_offsets():
    batch = Batch(
        np.arange(2 * 4 * 2 * 2, dtype=np.float32).reshape(2, 4, 2, 2), np.arange(16, dtype=np.float32).reshape(2, 4, 2)
    )
    state = ModelState({}, {}, np.ones((2, 2), np.complex64), 1.0)
    _, (_, seen) = get_mutant("channel_order")(Recorder()).predict(state, batch)
    np.testing.assert_array_equal(seen.diffraction, batch.diffraction[:, ::-1])
    np.testing.assert_array_equal(seen.offsets_px, batch.offsets_px)


# --- the registry ---------------------------------------------------------------


def test_mutants_are_found_through_entry_points(fake_entry_points):
    table = available()
    assert list(table)[: len(MUTANTS)] == list(MUTANTS)  # bundled first
    assert get_mutant("harmless_probe") is HarmlessProbe
    assert table["loss_sum"] is MUTANTS["loss_sum"]  # a bundled name is not replaced by a plugin
    with pytest.raises(MutantError, match="not a subclass"):
        get_mutant("not_a_mutant")
    with pytest.raises(MutantError, match="names itself"):
        get_mutant("misnamed")
    with pytest.raises(MutantError, match="pinn_parity.mutants"):
        get_mutant("no_such_mutant")


# --- bisection, verdicts, rendering, the verb ----------------------------------------


def test_smallest_detected_bisects_a_threshold():
    threshold = 3.3e-5
    found = audit.smallest_detected(lambda d: d >= threshold)
    assert threshold <= found <= threshold * 1.02
    assert audit.smallest_detected(lambda d: False) is None
    assert audit.smallest_detected(lambda d: True) == 1e-12


def _result(*rows, control_failed=()):
    control = audit.AuditRow("harmless (control)", "no bug", None, failed_stages=list(control_failed))
    return audit.AuditResult(
        base="torch_pinn",
        reference="tf_pinn",
        cases=["c"],
        stages=list(STAGES),
        control=control,
        rows=list(rows),
        noise=[f"c|{s}|<sut>~tf_pinn|x" for s in control_failed],
    )


def _row(name, expected, failed):
    failures = {
        s: [{"case": "c", "check": f"{name}~tf_pinn", "metric": "m", "headline": f"[c] stage {s} failed"}]
        for s in failed
    }
    return audit.AuditRow(name, "a bug", expected, failed_stages=list(failed), failures=failures)


def test_verdicts_and_exit_status():
    caught = _row("a", "grouping", ["grouping", "training"])
    assert caught.verdict == "caught" and caught.first_failed == "grouping"
    assert audit.exit_status(_result(caught)) == 0
    uncaught, late = _row("b", "loss", []), _row("c", "forward", ["model"])
    assert uncaught.verdict == "UNCAUGHT" and late.verdict == "WRONG STAGE"
    assert audit.exit_status(_result(caught, uncaught)) == 1
    assert audit.exit_status(_result(caught, late)) == 1
    assert audit.exit_status(_result(caught, control_failed=["reconstruction"])) == 1
    text = audit.render_table(_result(caught, uncaught, late, control_failed=["reconstruction"]))
    for word in ("caught", "UNCAUGHT", "WRONG STAGE", "FALSE ALARM", "c|reconstruction|<sut>~tf_pinn|x"):
        assert word in text


def test_the_audit_cases_are_apart_from_the_matrix_and_make_every_bug_observable():
    assert not {c.id for c in AUDIT} & {c.id for c in MATRIX}
    assert any(c.config.gridsize == 2 and c.data.jitter == 0 for c in AUDIT)  # channels, offsets, ties
    assert any("gridsize" not in c.overrides for c in AUDIT)  # a wrong gridsize default shows
    assert all("neighbor_count" not in c.overrides for c in AUDIT)
    for case in AUDIT:
        cfg = case.config
        groups = cfg.n_groups or case.data.n_positions
        steps_per_epoch = -(-groups // cfg.batch_size)
        assert groups % cfg.batch_size, case.id  # a partial last batch
        assert steps_per_epoch <= case.train_steps <= cfg.epochs * steps_per_epoch, case.id  # a full epoch
        assert cfg.adam_epsilon >= 1e-3, case.id


def test_the_audit_verb_refuses_unknown_mutants_and_lists_them(capsys):
    assert main(["audit", "--mutants", "no_such_mutant"]) == 2
    assert "no mutant named 'no_such_mutant'" in capsys.readouterr().err
    assert main(["audit", "--cases", "gs9-k4-poisson-n32"]) == 2
    assert "unknown config id" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not among the stages run"):
        audit.resolve_mutants(["loss_sum"], "torch_pinn", stages=("config", "grouping"))
    assert main(["audit", "--list"]) == 0
    assert "fft_norm_backward" in capsys.readouterr().out


def test_the_audit_verb_exits_1_on_an_uncaught_mutant_and_writes_json(monkeypatch, tmp_path, capsys):
    result = _result(_row("a", "grouping", ["grouping"]), _row("b", "loss", []))
    monkeypatch.setattr(audit, "run_audit", lambda *args, **kwargs: result)
    out = tmp_path / "audit.json"
    assert main(["audit", "--json", str(out)]) == 1
    document = json.loads(out.read_text())
    assert document["schema"] == audit.SCHEMA and not document["ok"]
    assert [r["verdict"] for r in document["rows"]] == ["caught", "UNCAUGHT"]
    assert "UNCAUGHT" in capsys.readouterr().out


def test_the_engine_cache_key_sees_array_contents():
    a = {"w": np.zeros(3, np.float32), "s": ModelState({}, {}, np.zeros(1, np.complex64), 1.0)}
    b = {"w": np.zeros(3, np.float32), "s": ModelState({}, {}, np.zeros(1, np.complex64), 1.0)}
    assert audit.fingerprint(a) == audit.fingerprint(b)
    b["w"][1] = 1.0
    assert audit.fingerprint(a) != audit.fingerprint(b)
    assert audit.fingerprint(np.zeros(2, np.float32)) != audit.fingerprint(np.zeros(2, np.float64))


# --- the real audit (tf_pinn reference, torch_pinn base) ------------------------------


@pytest.fixture(scope="module")
def early_audit():
    """The cheap mutants and a harmless one, through the stages up to loss, with sensitivity."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        module = types.ModuleType("fake_mutant_plugin")
        module.HarmlessProbe = HarmlessProbe
        monkeypatch.setitem(sys.modules, module.__name__, module)
        point = EntryPoint("harmless_probe", f"{module.__name__}:HarmlessProbe", mutants_module.ENTRY_POINT_GROUP)
        monkeypatch.setattr(mutants_module, "entry_points", lambda group=None: [point] if group == point.group else [])
        return audit.run_audit(
            [*CHEAP, "harmless_probe"],
            base="torch_pinn",
            cases=AUDIT,
            stages=EARLY_STAGES,
            sensitivity=True,
            log=lambda line: None,
        )


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
def test_cheap_mutants_are_caught_at_their_declared_stage(early_audit):
    rows = {row.mutant: row for row in early_audit.rows}
    assert early_audit.control.verdict == "clean", early_audit.control.failures
    for name in CHEAP:
        row = rows[name]
        assert (row.verdict, row.first_failed) == ("caught", MUTANTS[name].expected_stage), row.failures


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
def test_a_harmless_mutant_is_uncaught_and_fails_the_audit(early_audit):
    rows = {row.mutant: row for row in early_audit.rows}
    assert rows["harmless_probe"].verdict == "UNCAUGHT" and rows["harmless_probe"].failed_stages == []
    assert audit.exit_status(early_audit) == 1
    without = audit.AuditResult(
        **{**vars(early_audit), "rows": [r for r in early_audit.rows if r.mutant != "harmless_probe"]}
    )
    assert audit.exit_status(without) == 0
    assert "harmless_probe: no check failed" in audit.render_table(early_audit)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
def test_sensitivity_is_measured_for_translation_forward_and_loss(early_audit):
    found = {(item["stage"], item["case"]): item["smallest_detected"] for item in early_audit.sensitivity}
    assert set(found) == {(stage, case.id) for stage in PERTURBATIONS for case in AUDIT}
    for key, delta in found.items():
        assert delta is not None and 1e-12 < delta < 1e-2, (key, delta)
    assert "sensitivity:" in audit.render_sensitivity(early_audit)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
def test_adam_epsilon_at_the_framework_default_fails_the_matrix_at_the_optimizer_stage():
    """The bug the training stage's statistical bands let through on the matrix (whose cases
    keep the default adam_epsilon 1e-7): one Adam step on small gradients shows it."""
    case = select("gs1-k4-poisson-n32")
    result = audit.run_audit(
        ["adam_epsilon_1e-8"], base="torch_pinn", cases=case, stages=("optimizer",), log=lambda line: None
    )
    assert result.control.verdict == "clean", result.control.failures
    (row,) = result.rows
    assert (row.verdict, row.first_failed) == ("caught", "optimizer"), row.failures


@pytest.mark.tf
@pytest.mark.torch
def test_adam_epsilon_at_the_framework_default_is_named_by_the_hyperparameters_stage(tmp_path):
    """Where the optimizer stage says the steps part, the hyperparameters stage says which setting: epsilon,
    against the clean backend and against the spec, and nothing else."""
    mutant = get_mutant("adam_epsilon_1e-8")(inner="torch_pinn")
    (case,) = select("gs1-k4-poisson-n32")
    ctx = make_context(case, {"tf_pinn": get_adapter("tf_pinn"), mutant.name: mutant}, tmp_path)
    failed = [c for c in run_stage(ctx, "hyperparameters").comparisons if not c.passed]
    assert [(str(c.check), c.metric) for c in failed] == [
        (f"{mutant.name}~tf_pinn", "epsilon"),
        (f"{mutant.name}~spec", "epsilon"),
    ]
