"""The canonical configuration (docs/spec.md §3) and its command-line flags."""

from __future__ import annotations

import argparse

import pytest

from backends.common.config import (
    ConfigError,
    PinnConfig,
    add_config_arguments,
    canonical_defaults,
    config_from_args,
    config_from_json,
    make_config,
)


def test_defaults_match_the_spec_table():
    assert canonical_defaults() == {
        "gridsize": 1,
        "neighbor_count": 4,
        "n_groups": None,
        "seed": 42,
        "n_filters_scale": 2,
        "amp_activation": "sigmoid",
        "batch_size": 16,
        "epochs": 50,
        "learning_rate": 1e-3,
        "adam_epsilon": 1e-7,
        "loss": "poisson",
        "object_big": False,
    }


def test_object_big_follows_gridsize_unless_given():
    assert make_config({"gridsize": 2}).object_big is True
    assert make_config({"gridsize": 2, "object_big": False}).object_big is False
    assert make_config({"gridsize": 1, "object_big": True}).object_big is True
    assert make_config({"gridsize": 3, "neighbor_count": 9}).n_channels == 9


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"gridsize": 0}, "gridsize"),
        ({"gridsize": 2, "neighbor_count": 3}, "neighbor_count"),
        ({"neighbor_count": 0}, "neighbor_count"),
        ({"loss": "mse"}, "loss"),
        ({"amp_activation": "relu"}, "amp_activation"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"adam_epsilon": -1e-8}, "adam_epsilon"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"n_groups": 0}, "n_groups"),
        ({"seed": 1.5}, "seed"),
        ({"gridsize": True}, "gridsize"),
        ({"object_big": "yes"}, "object_big"),
        ({"seed": -1}, "seed"),
    ],
)
def test_validation_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        make_config(overrides)


def test_unknown_field():
    with pytest.raises(ConfigError, match="nepochs"):
        make_config({"nepochs": 3})


def test_errors_that_need_the_data():
    make_config({"n_groups": 10}).check_against_data(10)
    with pytest.raises(ConfigError, match="n_groups=11"):
        make_config({"n_groups": 11}).check_against_data(10)
    with pytest.raises(ConfigError, match="neighbor_count=10"):
        make_config({"gridsize": 2, "neighbor_count": 10}).check_against_data(10)
    make_config({"neighbor_count": 10}).check_against_data(10)  # K is unused at gridsize 1


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_no_flags_give_the_canonical_defaults():
    assert _parse([]).to_dict() == canonical_defaults()


@pytest.mark.parametrize(
    "argv, field, value",
    [
        (["--n-groups", "7"], "n_groups", 7),
        (["--n_groups", "7"], "n_groups", 7),
        (["--n_images", "7"], "n_groups", 7),
        (["--n-images", "7"], "n_groups", 7),
        (["--epochs", "3"], "epochs", 3),
        (["--nepochs", "3"], "epochs", 3),
        (["--n-epochs", "3"], "epochs", 3),
        (["--batch_size", "5"], "batch_size", 5),
        (["--batch-size", "5"], "batch_size", 5),
        (["--learning_rate", "0.01"], "learning_rate", 0.01),
        (["--lr", "0.01"], "learning_rate", 0.01),
        (["--neighbor_count", "6"], "neighbor_count", 6),
        (["--K", "6"], "neighbor_count", 6),
        (["--n_filters_scale", "1"], "n_filters_scale", 1),
        (["--amp_activation", "softplus"], "amp_activation", "softplus"),
        (["--adam_epsilon", "1e-8"], "adam_epsilon", 1e-8),
        (["--object_big", "true"], "object_big", True),
        (["--object-big", "no"], "object_big", False),
        (["--loss", "mae"], "loss", "mae"),
        (["--seed", "9"], "seed", 9),
    ],
)
def test_flag_spellings(argv, field, value):
    cfg = _parse(argv)
    expected = dict(canonical_defaults(), **{field: value})
    assert cfg.to_dict() == expected


def test_bad_flag_values_exit_with_usage_error():
    with pytest.raises(SystemExit):
        _parse(["--loss", "mse"])
    with pytest.raises(SystemExit):
        _parse(["--object-big", "maybe"])


def test_config_from_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"gridsize": 2, "epochs": 3}')
    assert config_from_json(path) == PinnConfig(gridsize=2, epochs=3)
    path.write_text("[1]")
    with pytest.raises(ConfigError, match="object"):
        config_from_json(path)
    path.write_text('{"loss": "l2"}')
    with pytest.raises(ConfigError, match="c.json.*loss"):
        config_from_json(path)
