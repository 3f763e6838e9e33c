"""The pipeline registry (parity/stages/): one module per stage, in order, consistent with itself and
with the adapter interface's own table of stage methods."""

from dataclasses import replace

import pytest

from adapters.base import STAGE_METHODS
from parity.stages import STAGES, description, pipeline, pipeline_problems, stage


def test_every_registered_stage_is_a_module_defining_its_stage():
    assert [found.name for found in pipeline()] == list(STAGES)
    assert all(description(name) for name in STAGES)


def test_the_adapter_interface_names_the_methods_of_exactly_these_stages_in_this_order():
    assert tuple(STAGE_METHODS) == STAGES


def test_the_real_pipeline_is_consistent():
    assert pipeline_problems(pipeline()) == []


def test_a_product_taken_before_it_is_made_is_reported():
    # bundle before training: the trained weights it needs are not made yet
    order = [stage(name) for name in STAGES if name != "bundle"]
    order.insert(order.index(stage("training")), stage("bundle"))
    assert pipeline_problems(order) == ["stage bundle needs 'trained weights', which no stage at or before it makes"]


def test_output_keys_for_a_method_the_stage_does_not_call_are_reported():
    bad = replace(stage("forward"), outputs={"predict": stage("model").outputs["predict"]})
    assert pipeline_problems([stage("config"), stage("grouping"), bad]) == [
        "stage forward: output keys for 'predict', not one of its adapter methods ('forward',)"
    ]


def test_an_unknown_stage_name_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown stage 'forwrd'"):
        stage("forwrd")
