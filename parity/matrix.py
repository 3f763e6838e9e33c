"""The config matrix: identical configurations every backend runs, as data.

Each case names a simulated dataset and the configuration overrides; its id
is derived from its content and checked, so an id never lies about what it
runs. Sizes are chosen so the whole matrix fits CI: small scans, few steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

from backends.common.config import make_config
from parity.stages import STAGES
from parity.switches import VARIANT_MARK, Variant


@dataclass(frozen=True)
class SimulatedData:
    """Arguments of backends.common.simulate.simulate for one case."""

    seed: int = 7
    n_positions: int = 48
    n: int = 32
    nphotons: float = 1e5
    jitter: float | None = None  # max raster jitter in px; None = the simulator's default (step / 4), 0 = exact raster


@dataclass(frozen=True)
class ParityCase:
    """One configuration of the matrix."""

    id: str  # gs{gridsize}-k{neighbor_count}-{loss}-n{N}[-suffix][+switch=value]; checked against the content
    data: SimulatedData
    overrides: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # config fields set
    train_steps: int = 6  # optimiser steps of the training stage
    stage_groups: int = 2  # groups fed to the isolated translation/forward/model/gradient stages
    cli_sweep: bool = False  # the cli stage also leaves out each flag in turn (CLI_ALTERNATIVES)
    cli_data: SimulatedData | None = None  # the cli stage's scan; None: the tiny one (case_context.CLI_DATA)
    skip_stages: tuple = ()  # stages not run on this case (n/a, noted): a profile keeps costly stages to few cases
    variant: Variant | None = None  # a switch set on this case (parity.switches): it runs the switch's stages only

    def __post_init__(self):
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        object.__setattr__(self, "skip_stages", tuple(self.skip_stages))
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"parity case id must be a non-empty string, got {self.id!r}")
        suffix = "" if self.variant is None else VARIANT_MARK + self.variant.label
        if VARIANT_MARK in self.id.removesuffix(suffix) or not self.id.endswith(suffix):
            raise ValueError(
                f"parity case id {self.id!r}: {VARIANT_MARK!r} marks the case's variant only, at the end "
                f"({'expected ' + repr(suffix) if suffix else 'this case has none'})"
            )
        unknown = sorted(set(self.skip_stages) - set(STAGES))
        if unknown:
            raise ValueError(
                f"parity case {self.id}: skip_stages names unknown stage(s) {unknown}; stages are {', '.join(STAGES)}"
            )
        if not 1 <= self.stage_groups <= self.data.n_positions:
            raise ValueError(
                f"parity case {self.id}: stage_groups={self.stage_groups} must be between 1 and the "
                f"{self.data.n_positions} scan positions"
            )
        cfg, base = self.config, self.id.removesuffix(suffix)
        stem = f"gs{cfg.gridsize}-k{cfg.neighbor_count}-{cfg.loss}-n{self.data.n}"
        if base != stem and not base.startswith(stem + "-"):
            raise ValueError(f"parity case id {self.id!r} does not describe its content: expected {stem!r}[-suffix]")
        cfg.check_against_data(self.data.n_positions, source=f"parity case {self.id}")

    @property
    def config(self):
        return make_config(dict(self.overrides))

    def skip_reason(self, stage: str, backends) -> str | None:
        """Why `stage` is not run on this case with `backends` (the run's): its skip_stages, or a stage its
        variant's switch cannot affect or is set on none of them; None where it runs."""
        if stage in self.skip_stages:
            return f"stage {stage} n/a: not run on this case (its profile's skip_stages)"
        return None if self.variant is None else self.variant.skip_reason(stage, backends)

    def variants(self, switches) -> tuple:
        """This case's variant cases: one per value of each of `switches` (Switch records), in order, each
        running the switch's stages only (and none of this case's skip_stages)."""
        return tuple(
            replace(self, id=f"{self.id}{VARIANT_MARK}{variant.label}", variant=variant)
            for switch in switches
            for variant in (Variant(switch, value) for value in switch.values)
        )

    @property
    def cli_flags(self) -> dict:
        """The config fields the cli stage's own run gives as flags (see BackendRun.cli_config)."""
        return dict(self.overrides) if self.cli_sweep else {"epochs": 0, **self.overrides}


# The cli stage's sweep: one train CLI run per config field, that field's flag left out and every
# other flag given the value below (none of them a default), so each default is seen on its own,
# beside non-default neighbours it may depend on (object_big's default follows gridsize). epochs 0
# keeps every run free of training; the run that leaves out epochs is the cli stage's own run with
# all flags left out, so the sweep skips it.
CLI_ALTERNATIVES = MappingProxyType(
    {
        "gridsize": 2,
        "neighbor_count": 5,
        "n_groups": 8,
        "seed": 7,
        "n_filters_scale": 1,
        "amp_activation": "softplus",
        "batch_size": 8,
        "epochs": 0,
        "learning_rate": 2e-3,
        "adam_epsilon": 1e-6,
        "loss": "mae",
        "object_big": False,
    }
)
CLI_SWEEP_FIELDS = tuple(name for name in CLI_ALTERNATIVES if name != "epochs")


def _check_cli_alternatives() -> None:
    defaults = make_config({}).to_dict()
    if set(CLI_ALTERNATIVES) != set(defaults):
        raise ValueError(
            f"CLI_ALTERNATIVES must name every config field: missing "
            f"{sorted(set(defaults) - set(CLI_ALTERNATIVES))}, unknown "
            f"{sorted(set(CLI_ALTERNATIVES) - set(defaults))}"
        )
    for name in CLI_SWEEP_FIELDS:
        given = {k: v for k, v in CLI_ALTERNATIVES.items() if k != name}
        if make_config(given).to_dict() == make_config(dict(CLI_ALTERNATIVES)).to_dict():
            raise ValueError(
                f"CLI_ALTERNATIVES[{name!r}] = {CLI_ALTERNATIVES[name]!r} is that field's default "
                "beside the others: leaving the flag out would show nothing"
            )


MATRIX = (
    ParityCase("gs1-k4-poisson-n32", SimulatedData(seed=7), cli_sweep=True),
    ParityCase("gs2-k4-poisson-n32", SimulatedData(seed=8), {"gridsize": 2}),
    ParityCase("gs2-k7-mae-n32", SimulatedData(seed=9), {"gridsize": 2, "neighbor_count": 7, "loss": "mae"}),
    # Non-default optimiser settings: the optimizer stage checks each backend uses them.
    ParityCase(
        "gs1-k4-mae-n64-adam",
        SimulatedData(seed=10, n_positions=24, n=64),
        {"loss": "mae", "n_filters_scale": 1, "learning_rate": 5e-4, "adam_epsilon": 1e-6},
    ),
    ParityCase(
        "gs2-k6-poisson-n64",
        SimulatedData(seed=11, n_positions=24, n=64),
        {"gridsize": 2, "neighbor_count": 6, "n_filters_scale": 1},
    ),
)


def _check_unique(cases) -> None:
    seen = set()
    for case in cases:
        if case.id in seen:
            raise ValueError(f"parity case id {case.id!r} appears twice in the matrix")
        seen.add(case.id)


# The audit's cases (`python -m parity audit`, parity/audit.py): not part of the suite. Chosen so that
# every bug class of adapters/mutants.py is observable, and small enough that the whole audit runs in
# about two minutes on two cores:
# - gridsize 2 (C = 4): channel order and group offsets matter;
# - jitter 0: an exact raster, so distances tie (ties broken by index, spec §4);
# - 20 groups in batches of 8 (8, 8, 4) and 4 training steps: a full epoch and its partial batch,
#   then the next epoch's first batch;
# - adam_epsilon 1e-2: far from the 1e-8 of a framework default, so using it changes the update;
# - neighbor_count (and, in the second case, gridsize) left unset: a wrong default shows;
# - epochs 2: the CLI stage trains a few steps, not 50 epochs.
AUDIT = (
    ParityCase(
        "gs2-k4-poisson-n32-audit",
        SimulatedData(seed=21, n_positions=20, jitter=0.0),
        {"gridsize": 2, "batch_size": 8, "epochs": 2, "adam_epsilon": 1e-2},
        train_steps=4,
        cli_sweep=True,
    ),
    ParityCase(
        "gs1-k4-poisson-n16-audit",
        SimulatedData(seed=22, n_positions=12, n=16, jitter=0.0),
        {"batch_size": 8, "epochs": 2, "adam_epsilon": 1e-2},
        train_steps=2,
        stage_groups=1,
    ),
)

_check_cli_alternatives()
_check_unique(MATRIX)
_check_unique(AUDIT)


def select(ids: str | None, cases=MATRIX) -> tuple:
    """Cases named in a comma-separated `ids` (all when empty); unknown ids are an error."""
    if not ids:
        return tuple(cases)
    wanted = [s.strip() for s in ids.split(",") if s.strip()]
    known = {c.id: c for c in cases}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"--parity-config: unknown config id(s) {unknown}; known: {', '.join(known)}")
    return tuple(known[w] for w in wanted)
