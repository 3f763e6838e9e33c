"""Stage hyperparameters: one exact check per optimiser setting, numbers at float32, between backends and
with docs/spec.md §10. The backends are framework-free adapters that say their settings from the config."""

import numpy as np
import pytest

from adapters.base import Adapter
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.stage_runner import run_stage
from parity.stages.hyperparameters import FIELDS
from parity.verdict import SPEC

CASE = ParityCase("gs1-k4-poisson-n32-hp", SimulatedData(seed=3, n_positions=20), {"adam_epsilon": 1e-6})


class Textbook(Adapter):
    """§10's optimiser, its settings as a framework keeping Python floats reports them."""

    def optimizer_settings(self, config, data_path):
        return {
            "name": "adam",
            "learning_rate": config["learning_rate"],
            "beta1": 0.9,
            "beta2": 0.999,
            "epsilon": config["adam_epsilon"],
            "weight_decay": 0.0,
            "schedule": "constant",
        }


class Float32Rate(Textbook):
    """Keeps its learning rate in a float32 variable, as a Keras optimiser does."""

    def optimizer_settings(self, config, data_path):
        out = super().optimizer_settings(config, data_path)
        return {**out, "learning_rate": float(np.float32(out["learning_rate"]))}


class EpsilonDefault(Textbook):
    """Builds its Adam with the framework's default epsilon, ignoring the configured one."""

    def optimizer_settings(self, config, data_path):
        return {**super().optimizer_settings(config, data_path), "epsilon": 1e-8}


class Plateau(Textbook):
    def optimizer_settings(self, config, data_path):
        out = super().optimizer_settings(config, data_path)
        return {**out, "schedule": "ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.0001)"}


class NoSchedule(Textbook):
    def optimizer_settings(self, config, data_path):
        return {k: v for k, v in super().optimizer_settings(config, data_path).items() if k != "schedule"}


def _stage(tmp_path, *adapters):
    named = {}
    for index, adapter in enumerate(adapters):
        adapter.name = f"{type(adapter).__name__.lower()}{index}"
        named[adapter.name] = adapter
    return run_stage(make_context(CASE, named, tmp_path), "hyperparameters")


def _failed(result):
    return [c for c in result.comparisons if not c.passed]


def test_settings_stored_at_float32_agree_field_by_field(tmp_path):
    result = _stage(tmp_path, Float32Rate(), Textbook())
    assert not _failed(result), [c.message for c in _failed(result)]
    pair = [c for c in result.comparisons if c.check.right != SPEC]
    assert [c.metric for c in pair] == list(FIELDS)
    assert len(result.comparisons) == 3 * len(FIELDS)  # the pair, and each backend with the spec
    assert result.golden_by_backend["float32rate0"]["learning_rate"] == float(np.float32(1e-3))


def test_a_wrong_epsilon_is_one_failure_named_epsilon(tmp_path):
    result = _stage(tmp_path, Textbook(), EpsilonDefault())
    assert [(str(c.check), c.metric) for c in _failed(result)] == [
        ("epsilondefault1~textbook0", "epsilon"),
        ("epsilondefault1~spec", "epsilon"),
    ]
    message = _failed(result)[0].message
    assert message.startswith(
        "[gs1-k4-poisson-n32-hp] stage hyperparameters epsilondefault1~textbook0 epsilon: "
        "1 / 1 elements (100.00%) differ, exact match required"
    )
    assert "worst at (): epsilondefault1=1e-08 textbook0=1e-06" in message


def test_a_bug_both_backends_share_fails_against_the_spec_only(tmp_path):
    result = _stage(tmp_path, EpsilonDefault(), EpsilonDefault())
    assert sorted((str(c.check), c.metric) for c in _failed(result)) == [
        ("epsilondefault0~spec", "epsilon"),
        ("epsilondefault1~spec", "epsilon"),
    ]


def test_a_schedule_split_names_both_schedules(tmp_path):
    (failed,) = [c for c in _failed(_stage(tmp_path, Textbook(), Plateau())) if c.check.right != SPEC]
    assert failed.metric == "schedule"
    assert (
        "value: plateau1='ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.0001)', textbook0='constant'"
        in failed.message
    )


@pytest.mark.parametrize("missing_first", [False, True])
def test_a_missing_setting_is_the_adapters_failure_naming_the_key(tmp_path, missing_first):
    adapters = (NoSchedule(), Textbook()) if missing_first else (Textbook(), NoSchedule())
    failed = _failed(_stage(tmp_path, *adapters))
    assert [c.metric for c in failed] == ["outputs"]
    assert "missing key 'schedule'" in failed[0].message
