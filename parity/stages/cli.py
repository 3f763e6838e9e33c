"""Stage cli: each backend's own train command line, its effective_config.json against the contract; then
each backend's inference command line on the bundle its own train command line wrote (run_infer_cli, where
the adapter has it): it must run, and write what the reference's writes.

The command line gets the case's flags only (ParityCase.cli_flags), so its own defaults carry forward;
a field whose resolve_config values already split at the config stage is noted (first seen). On cases
with `cli_sweep` it also runs once per field, that field's flag left out and every other flag set to a
non-default value (parity.matrix.CLI_ALTERNATIVES, `--epochs 0`), and the left-out field must take the
contract's default beside non-default neighbours it may depend on.
"""

from __future__ import annotations

import json

from adapters.base import overrides
from parity.backend_run import ANY, OutputKeys
from parity.case_context import CaseContext, StageResult
from parity.matrix import CLI_ALTERNATIVES, CLI_SWEEP_FIELDS
from parity.report.hub import StageNote
from parity.stages.config import effective_configs, first_seen_notes
from parity.stages.kit import Stage, each_backend, exact_pairs, shared_note
from parity.status import NoteKind

OUTPUTS = {"run_infer_cli": OutputKeys({"files": ANY})}


def _train_output(run, label: str = ""):
    return run.inputs.workdir / f"cli-{run.name}-{run.inputs.case.id}{label}"


def _train_cli(run, given: dict, label: str) -> dict:
    """The train CLI on the cli scan with a flag for each of `given` (field -> value) only."""
    out = _train_output(run, label)
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


def inferred(run) -> dict:
    """The inference CLI on the bundle cli_config's train CLI wrote, reconstructing the cli scan."""
    cli_config(run)  # its bundle
    out = run.inputs.workdir / f"cli-infer-{run.name}-{run.inputs.case.id}"
    return run.call(
        "cli", "run_infer_cli", _train_output(run), run.inputs.cli_data_path, out, outputs=OUTPUTS["run_infer_cli"]
    )


def check(ctx: CaseContext) -> StageResult:
    result = StageResult(notes=shared_note(ctx, "cli"))
    result.golden_by_backend = effective_configs(ctx, "cli", cli_config, "effective_config", ctx.case.cli_flags, result)
    inferring = [name for name, run in ctx.runs.items() if overrides(run.adapter, "run_infer_cli")]
    if len(inferring) >= 2:
        written = each_backend(ctx.only(inferring), "cli", inferred, result)
        exact_pairs(ctx.only(inferring), "cli", written, "infer.files", result)
    elif inferring:
        result.notes.append(
            StageNote(ctx.case_id, "cli", NoteKind.NA, f"inference part n/a: only {inferring[0]} has run_infer_cli")
        )
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


STAGE = Stage(
    "cli",
    "train CLI with flags left out yields the canonical defaults; inference CLI runs on its bundle",
    check,
    outputs=OUTPUTS,
)
