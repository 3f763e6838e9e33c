"""The end-to-end path: each backend trains with its own resolved config, so a default that
splits at the config stage shows downstream, and the report says where it was first seen.
The backends are the numpy referee with a recording train(): real adapters, no framework."""

import numpy as np

from adapters.referee import Float64Referee
from backends.common.config import make_config
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.stage_runner import run_stage
from parity.status import NoteKind

CASE = ParityCase("gs2-k4-poisson-n32-own", SimulatedData(seed=3, n_positions=20), {"gridsize": 2}, train_steps=2)


class Recording(Float64Referee):
    """Trains nothing: records the config it was given and returns a history that depends on it."""

    def __init__(self, neighbor_count_default=4):
        self.neighbor_count_default = neighbor_count_default
        self.trained_with = []

    def resolve_config(self, overrides, data_path=None):
        return make_config({"neighbor_count": self.neighbor_count_default, **overrides}).to_dict()

    def train(self, config, data_path, init_weights, max_steps):
        self.trained_with.append(dict(config))
        loss = float(config["neighbor_count"])
        return {
            "history": {
                "step_loss": [loss] * max_steps,
                "epoch_loss": [loss],
                "steps_per_epoch": 1,
                "n_groups": 20,
                "test_loss": None,
                "backend": self.name,
            },
            "weights": {name: np.asarray(value) for name, value in init_weights.items()},
        }


def _run(tmp_path, own_default):
    a, b = Recording(), Recording(neighbor_count_default=own_default)
    a.name, b.name = "a", "b"
    ctx = make_context(CASE, {"a": a, "b": b}, tmp_path, referee=Float64Referee())  # its scales feed training
    return a, b, run_stage(ctx, "training")


def test_each_backend_trains_with_its_own_resolved_defaults_and_the_split_is_traced_to_config(tmp_path):
    a, b, result = _run(tmp_path, own_default=6)
    assert [c["neighbor_count"] for c in a.trained_with] == [4]
    assert [c["neighbor_count"] for c in b.trained_with] == [6]
    assert any(not c.passed and c.metric == "step_loss" for c in result.comparisons)  # the effect downstream
    (note,) = [n for n in result.notes if n.kind == NoteKind.FIRST_SEEN]
    assert note.text == "default split first seen at stage config: neighbor_count (b=6, a=4)"


def test_agreeing_defaults_train_with_the_cases_config_and_say_nothing(tmp_path):
    a, b, result = _run(tmp_path, own_default=4)
    assert a.trained_with == b.trained_with == [CASE.config.to_dict()]
    assert not result.notes and all(c.passed for c in result.comparisons)
