"""Stage cli: each backend's own train command line, its effective_config.json against the contract.

The command line gets the case's flags only (ParityCase.cli_flags), so its own defaults carry forward;
a field whose resolve_config values already split at the config stage is noted (first seen). On cases
with `cli_sweep` it also runs once per field, that field's flag left out and every other flag set to a
non-default value (parity.matrix.CLI_ALTERNATIVES, `--epochs 0`), and the left-out field must take the
contract's default beside non-default neighbours it may depend on.
"""

from __future__ import annotations

import json

from parity.case_context import CaseContext, StageResult
from parity.matrix import CLI_ALTERNATIVES, CLI_SWEEP_FIELDS
from parity.stages.config import effective_configs, first_seen_notes
from parity.stages.kit import Stage, shared_note


def _train_cli(run, given: dict, label: str) -> dict:
    """The train CLI on the cli scan with a flag for each of `given` (field -> value) only."""
    out = run.inputs.workdir / f"cli-{run.name}-{run.inputs.case.id}{label}"
    argv = ["--train-data-file", str(run.inputs.cli_data_path), "--output-dir", str(out)]
    for key, value in sorted(given.items()):
        argv += ["--" + key.replace("_", "-"), json.dumps(value) if isinstance(value, bool) else str(value)]
    return run.call("cli", "run_train_cli", argv)


def cli_config(run) -> dict:
    """Only the case's own overrides become flags: everything else must come out as the default.

    Training adds nothing to this check (effective_config.json is written before it), so only cli_sweep
    cases train (their run leaves every flag out, epochs too); the others add `--epochs 0` when the case
    does not set epochs, and the contract then expects 0."""
    return run.once("cli", lambda: _train_cli(run, run.inputs.case.cli_flags, ""))


def cli_without(run, name: str) -> dict:
    """Effective config of the train CLI with `name`'s flag left out, the others from CLI_ALTERNATIVES."""
    return _train_cli(run, {k: v for k, v in CLI_ALTERNATIVES.items() if k != name}, f"-without-{name}")


def check(ctx: CaseContext) -> StageResult:
    result = StageResult(notes=shared_note(ctx, "cli"))
    result.golden_by_backend = effective_configs(ctx, "cli", cli_config, "effective_config", ctx.case.cli_flags, result)
    result.notes.extend(first_seen_notes(ctx, "cli", result.golden_by_backend))
    if ctx.case.cli_sweep:
        for name in CLI_SWEEP_FIELDS:
            given = {k: v for k, v in CLI_ALTERNATIVES.items() if k != name}
            effective_configs(
                ctx,
                "cli",
                lambda run, name=name: cli_without(run, name),
                "effective_config",
                given,
                result,
                variant=f"without --{name.replace('_', '-')}",
            )
    return result


STAGE = Stage("cli", "train CLI with flags left out yields the canonical defaults", check)
