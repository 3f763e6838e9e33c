"""The canonical configuration (docs/spec.md §3): the one source of defaults.

Every entry point of both backends (Python API, CLI, harness adapters) builds
its configuration here, so a field left unset always gets the same default.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

LOSSES = ("poisson", "mae")
AMP_ACTIVATIONS = ("sigmoid", "softplus")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


@dataclass(frozen=True)
class PinnConfig:
    """Training and model settings shared by both backends."""

    gridsize: int = 1  # groups hold gridsize**2 scan positions
    neighbor_count: int = 4  # K: candidate neighbours a group's members are drawn from
    n_groups: int | None = None  # groups drawn for training; None = one per scan position (M)
    seed: int = 42  # grouping, batch order and initial weights all derive from it
    n_filters_scale: int = 2  # base filter count f = 16 * n_filters_scale
    amp_activation: str = "sigmoid"  # amplitude head activation: sigmoid or softplus
    batch_size: int = 16  # groups per optimiser step; the last partial batch is kept
    epochs: int = 50  # passes over the groups
    learning_rate: float = 1e-3  # Adam, constant
    adam_epsilon: float = 1e-7  # Adam epsilon (torch's own default 1e-8 differs)
    loss: str = "poisson"  # poisson (deviance) or mae
    object_big: bool | None = None  # merge a group's patches on one canvas; None = gridsize > 1

    def __post_init__(self):
        if self.object_big is None:  # a gridsize that is no integer is _validate's to name
            object.__setattr__(self, "object_big", isinstance(self.gridsize, int) and self.gridsize > 1)
        _validate(self)

    @property
    def n_channels(self) -> int:
        """C: scan positions per group."""
        return self.gridsize * self.gridsize

    def to_dict(self) -> dict:
        return asdict(self)

    def check_against_data(self, n_positions: int, *, source: str = "dataset") -> None:
        """Errors that need M, the number of scan positions."""
        if self.n_groups is not None and self.n_groups > n_positions:
            raise ConfigError(f"n_groups={self.n_groups} exceeds the {n_positions} scan positions of {source}")
        if self.gridsize > 1 and self.neighbor_count >= n_positions:
            raise ConfigError(
                f"neighbor_count={self.neighbor_count} must be below the {n_positions} scan positions of {source}"
            )


def _require(cond, name, value, why):
    if not cond:
        raise ConfigError(f"config field '{name}'={value!r}: {why}")


def _validate(c: PinnConfig) -> None:
    for name, kind in (
        ("gridsize", int),
        ("neighbor_count", int),
        ("seed", int),
        ("n_filters_scale", int),
        ("batch_size", int),
        ("epochs", int),
    ):
        value = getattr(c, name)
        _require(isinstance(value, kind) and not isinstance(value, bool), name, value, "must be an integer")
    _require(c.gridsize >= 1, "gridsize", c.gridsize, "must be >= 1")
    _require(c.n_filters_scale >= 1, "n_filters_scale", c.n_filters_scale, "must be >= 1")
    _require(c.batch_size >= 1, "batch_size", c.batch_size, "must be >= 1")
    _require(c.epochs >= 0, "epochs", c.epochs, "must be >= 0")
    _require(c.seed >= 0, "seed", c.seed, "must be >= 0")
    if c.gridsize > 1:
        _require(
            c.neighbor_count >= c.n_channels,
            "neighbor_count",
            c.neighbor_count,
            f"must be >= gridsize**2 = {c.n_channels} (members are drawn from the K nearest)",
        )
    else:
        _require(c.neighbor_count >= 1, "neighbor_count", c.neighbor_count, "must be >= 1")
    if c.n_groups is not None:
        _require(
            isinstance(c.n_groups, int) and c.n_groups >= 1,
            "n_groups",
            c.n_groups,
            "must be a positive integer or None (all positions)",
        )
    for name in ("learning_rate", "adam_epsilon"):
        value = getattr(c, name)
        _require(isinstance(value, (int, float)) and value > 0, name, value, "must be a positive number")
    _require(c.loss in LOSSES, "loss", c.loss, f"unknown loss; choose one of {', '.join(LOSSES)}")
    _require(
        c.amp_activation in AMP_ACTIVATIONS,
        "amp_activation",
        c.amp_activation,
        f"unknown activation; choose one of {', '.join(AMP_ACTIVATIONS)}",
    )
    _require(isinstance(c.object_big, bool), "object_big", c.object_big, "must be true or false")


FIELD_NAMES = tuple(f.name for f in fields(PinnConfig))


def canonical_defaults() -> dict:
    """Every field at its default, resolved (object_big filled in)."""
    return PinnConfig().to_dict()


def make_config(overrides: dict | None = None) -> PinnConfig:
    """The configuration for `overrides`; fields left out take the canonical default."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; known: {', '.join(FIELD_NAMES)}")
    return PinnConfig(**overrides)


def config_from_json(path) -> PinnConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8; RecursionError: deep nesting
        raise ConfigError(f"{path}: cannot read config JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config JSON must be an object")
    try:
        return make_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


# --- command-line flags ---------------------------------------------------
# The one place flag types are defined. Each raises argparse.ArgumentTypeError,
# which argparse prefixes with the flag: "argument --seed: expected an integer >= 0, got '-1'".


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with a one-line error: `PROG: error: MESSAGE (see --help)`, exit status 2.

    argparse prints the whole usage block before the error; a flag's error is one line here,
    and --help still prints the usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def int_at_least(minimum: int):
    """An argparse type: an integer >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in some messages
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# field -> (type, extra spellings PtychoPINN users type, help)
_FLAGS = {
    "gridsize": (int_at_least(1), ["--gridsize"], "positions per group side"),
    "neighbor_count": (int_at_least(1), ["--neighbor_count", "--K"], "K nearest neighbours to draw members from"),
    "n_groups": (int_at_least(1), ["--n_groups", "--n_images", "--n-images"], "groups drawn for training"),
    "seed": (int_at_least(0), [], "seed of grouping, batch order and initial weights"),
    "n_filters_scale": (int_at_least(1), ["--n_filters_scale"], "filter count multiplier"),
    "amp_activation": (str, ["--amp_activation"], "amplitude activation"),
    "batch_size": (int_at_least(1), ["--batch_size"], "groups per step"),
    "epochs": (int_at_least(0), ["--nepochs", "--n-epochs"], "training epochs; 0 writes the untrained initial weights"),
    "learning_rate": (positive_float, ["--learning_rate", "--lr"], "Adam learning rate"),
    "adam_epsilon": (positive_float, ["--adam_epsilon"], "Adam epsilon"),
    "loss": (str, [], "poisson or mae"),
    "object_big": (None, ["--object_big"], "merge group patches on one canvas (true/false)"),
}


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per config field; every default is None so the dataclass decides."""
    group = parser.add_argument_group("model and training configuration (defaults: docs/spec.md §3)")
    for name, (kind, aliases, help_text) in _FLAGS.items():
        dashed = "--" + name.replace("_", "-")
        spellings = [dashed] + [a for a in aliases if a != dashed]
        choices = LOSSES if name == "loss" else AMP_ACTIVATIONS if name == "amp_activation" else None
        default = {"n_groups": "all positions", "object_big": "gridsize > 1"}.get(name, getattr(PinnConfig(), name))
        group.add_argument(
            *spellings,
            dest=name,
            type=kind or _parse_bool,
            default=None,
            choices=choices,
            help=f"{help_text} (default: {default})",
        )


def add_path_argument(parser, name: str, **kwargs) -> None:
    """A path flag with its dashed name and its underscore alias (`--train-data-file`, `--train_data_file`);
    a name without an underscore (`--bundle`) has no alias."""
    dashed = "--" + name.replace("_", "-")
    spellings = [dashed] if dashed == "--" + name else [dashed, "--" + name]
    parser.add_argument(*spellings, dest=name, metavar=kwargs.pop("metavar", "PATH"), **kwargs)


def config_from_args(args: argparse.Namespace) -> PinnConfig:
    """The configuration for parsed flags; a flag left out takes the canonical default."""
    given = {name: getattr(args, name) for name in _FLAGS if getattr(args, name, None) is not None}
    return make_config(given)
