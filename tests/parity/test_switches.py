"""Switches and variant cases (parity/switches.py): profile.json's "switches" and a case's "variants",
their expansion into cases "<id>+<switch>=<value>", and the switch set around the calls of the backends
it names, only those, only on the stages it can affect. The backends are the numpy referee and
variants of it: no framework needed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from adapters.base import Switches
from adapters.referee import Float64Referee
from parity import profiles
from parity.case_context import make_context
from parity.matrix import ParityCase, SimulatedData
from parity.stage_runner import run_stage
from parity.switches import Switch, Variant

from .factories import ledger_document, ledger_entry

ENV = "PINN_PARITY_TEST_SWITCH"
SWITCH = {"env": ENV, "backends": ["probe"], "stages": ["translation"], "values": ["0", "on"]}
MODE = {"option": "mode", "backends": ["probe"], "stages": ["translation"], "values": ["rect"]}
BASE = {"id": "gs1-k4-poisson-n32", "data": {"n_positions": 12}, "variants": ["xla", "mode"]}


def profile(root: Path, cases=(BASE,), switches=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ledger.json").write_text(json.dumps(ledger_document([ledger_entry("translation", "max_abs", 1e-5)])))
    document = {
        "schema": "pinn-parity-profile",
        "schema_version": 1,
        "name": "switched",
        "cases": list(cases),
        "switches": {"xla": SWITCH, "mode": MODE} if switches is None else switches,
        "ledger": "ledger.json",
        "golden": "goldens",
    }
    (root / "profile.json").write_text(json.dumps(document))
    return root


def test_a_case_with_variants_is_followed_by_one_case_per_switch_value(tmp_path):
    cases = profiles.load_profile(str(profile(tmp_path))).cases
    assert [c.id for c in cases] == [
        "gs1-k4-poisson-n32",
        "gs1-k4-poisson-n32+xla=0",
        "gs1-k4-poisson-n32+xla=on",
        "gs1-k4-poisson-n32+mode=rect",
    ]
    base, off, _, mode = cases
    assert base.variant is None and off.data == base.data and off.overrides == base.overrides
    assert (off.variant.switch.env, off.variant.value, off.variant.label) == (ENV, "0", "xla=0")
    assert off.variant.settings("probe") == Switches(env=MappingProxyType({ENV: "0"}))
    assert off.variant.settings("ref32") is None
    assert mode.variant.settings("probe") == Switches(options=MappingProxyType({"mode": "rect"}))
    assert mode.variant.switch.what == "option mode"


def test_a_variant_runs_the_stages_its_switch_can_affect_on_the_backends_it_names_only(tmp_path):
    off = profiles.load_profile(str(profile(tmp_path))).cases[1]
    assert off.skip_reason("translation", ["ref32", "probe"]) is None
    assert off.skip_reason("forward", ["ref32", "probe"]) == (
        "stage forward n/a: variant xla=0 runs the stages switch xla can affect only (translation)"
    )
    assert off.skip_reason("translation", ["ref32", "other"]) == (
        f"stage translation n/a: switch xla (env {ENV}) is set on probe, none of this run's backends"
    )
    skipped = ParityCase("gs1-k4-poisson-n32", SimulatedData(), skip_stages=("translation",))
    assert "skip_stages" in skipped.variants([off.variant.switch])[0].skip_reason("translation", ["probe"])


@pytest.mark.parametrize(
    "cases, switches, key",
    [
        ((BASE,), [SWITCH], "'switches'"),
        ((BASE,), {"xla": [1]}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "colour": 1}, "mode": MODE}, "'switches.xla.colour'"),
        ((BASE,), {"xla": {**SWITCH, "option": "o"}, "mode": MODE}, "'switches.xla'"),  # env and option
        ((BASE,), {"xla": {k: v for k, v in SWITCH.items() if k != "env"}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "stages": ["translaton"]}, "mode": MODE}, "'switches.xla.stages'"),
        ((BASE,), {"xla": {**SWITCH, "stages": "translation"}, "mode": MODE}, "'switches.xla.stages'"),
        ((BASE,), {"xla": {**SWITCH, "stages": []}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "values": []}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "values": ["a b"]}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "values": ["0", "0"]}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "values": [0]}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"xla": {**SWITCH, "backends": []}, "mode": MODE}, "'switches.xla'"),
        ((BASE,), {"x-la": SWITCH, "mode": MODE}, "'switches.x-la'"),  # a name becomes part of case ids
        (({**BASE, "variants": ["nosuch"]},), None, "'cases[0].variants'"),
        (({**BASE, "variants": ["xla", "xla"]},), None, "'cases[0].variants'"),
        (({**BASE, "variants": "xla"},), None, "'cases[0].variants'"),
        (({**BASE, "variants": ["xla"]},), {}, "'cases[0].variants'"),
        (({**BASE, "id": "gs1-k4-poisson-n32+xla=0", "variants": []},), None, "'cases[0]'"),
        ((BASE, {**BASE, "id": "gs1-k4-poisson-n32+xla=0", "variants": []}), None, "'cases[1]'"),
    ],
)
def test_a_bad_switch_or_variant_is_one_error_naming_the_file_and_key(tmp_path, cases, switches, key):
    profile(tmp_path, cases, switches)
    with pytest.raises(profiles.ProfileError) as error:
        profiles.load_profile(str(tmp_path))
    assert str(tmp_path / "profile.json") in str(error.value) and key in str(error.value)


def test_an_id_names_its_variant_and_nothing_else_after_the_mark():
    switch = Switch("xla", backends=("probe",), stages=("translation",), values=("0",), env=ENV)
    with pytest.raises(ValueError, match="marks the case's variant only"):
        ParityCase("gs1-k4-poisson-n32+xla=1", SimulatedData(), variant=Variant(switch, "0"))
    with pytest.raises(ValueError, match="no value '1'"):
        Variant(switch, "1")
    with pytest.raises(ValueError, match="does not describe its content"):
        ParityCase("gs2-k4-poisson-n32+xla=0", SimulatedData(), variant=Variant(switch, "0"))


class Probe(Float64Referee):
    """The referee rounded to float32 (its translate), recording the switches in force at each call."""

    name = "probe"
    options = MappingProxyType({"mode": "what the probe's translate computes: rect, or the default"})
    seen: list

    def translate(self, images, shifts_px):
        self.seen.append((os.environ.get(ENV), self.switches.options.get("mode")))
        return super().translate(images, shifts_px).astype(np.complex64)


class Ref32(Probe):
    name = "ref32"
    options = MappingProxyType({})


def _variant_context(tmp_path, index: int):
    case = profiles.load_profile(str(profile(tmp_path / "profile"))).cases[index]
    adapters = {"ref32": Ref32(), "probe": Probe()}
    for adapter in adapters.values():
        adapter.seen = []
    return make_context(case, adapters, tmp_path), adapters


def test_an_environment_switch_is_set_around_the_calls_of_the_backends_it_names_only(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "as the user left it")
    ctx, adapters = _variant_context(tmp_path, 1)
    result = run_stage(ctx, "translation")
    assert result.comparisons and all(c.passed for c in result.comparisons)
    assert adapters["probe"].seen == [("0", None)]
    assert adapters["ref32"].seen == [("as the user left it", None)]
    assert os.environ[ENV] == "as the user left it"  # restored after the call
    monkeypatch.delenv(ENV)
    ctx, adapters = _variant_context(tmp_path, 2)
    run_stage(ctx, "translation")
    assert adapters["probe"].seen == [("on", None)] and ENV not in os.environ
    assert run_stage(ctx, "forward").unsupported.startswith("stage forward n/a: variant xla=on runs the stages")


def test_an_option_switch_is_in_the_adapters_switches_during_its_calls_only(tmp_path):
    ctx, adapters = _variant_context(tmp_path, 3)
    run_stage(ctx, "translation")
    assert adapters["probe"].seen == [(None, "rect")] and adapters["ref32"].seen == [(None, None)]
    assert adapters["probe"].switches.options == {}


def test_an_option_the_adapter_does_not_honour_fails_its_stage_naming_it(tmp_path):
    ctx, adapters = _variant_context(tmp_path, 3)
    adapters["probe"].options = MappingProxyType({})
    failed = [c for c in run_stage(ctx, "translation").comparisons if not c.passed]
    assert [str(c.check) for c in failed] == ["probe"]
    assert "probe: no option switch ['mode']; its Adapter.options: none" in failed[0].message
