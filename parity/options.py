"""The parity suite's own pytest options, in one table: the plugin (parity/plugin.py) adds them,
`python -m parity run --help` lists them, and the plugin validates their values before anything runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParityOption:
    """One `--parity-*` option of the suite."""

    flag: str  # the option as typed, e.g. --parity-config
    default: str | None  # None: not set
    help: str  # one line, for pytest's help and `python -m parity run --help`
    metavar: str = "LIST"  # what the value is, in the help
    switch: bool = False  # a flag without a value (store_true)


OPTIONS = (
    ParityOption("--parity-config", None, "comma-separated config ids of parity/matrix.py to run (default: all)"),
    ParityOption(
        "--parity-backends",
        "tf_pinn,torch_pinn",
        "comma-separated adapter names; the first is the reference (default: tf_pinn,torch_pinn)",
    ),
    ParityOption(
        "--parity-stage", None, "comma-separated stages to run (default: all; upstream outputs are computed as needed)"
    ),
    ParityOption(
        "--parity-reports", "reports", "folder of report hubs (default: reports/ under the current folder)", "DIR"
    ),
    ParityOption("--parity-golden", None, "folder of goldens (default: the profile's; golden/ for bundled)", "DIR"),
    ParityOption(
        "--parity-profile",
        None,
        "profile: a name (bundled) or a folder with profile.json (default: the adapters' default_profile, "
        "else bundled)",
        "NAME|PATH",
    ),
    ParityOption(
        "--parity-coverage",
        False,
        "record which functions of the code under test each (config, stage) runs: <hub>/coverage.md",
        "",
        switch=True,
    ),
    ParityOption(
        "--parity-shard",
        None,
        "run shard I of N: an even share of the cases, balanced by --parity-durations (parity/shards.py)",
        "I/N",
    ),
    ParityOption(
        "--parity-durations",
        None,
        "seconds per case for --parity-shard: a hub (its timings/) or a JSON file {case id: seconds}",
        "HUB|FILE",
    ),
    ParityOption(
        "--parity-strict-baseline",
        False,
        "fail the session (exit 1) when a baseline entry matched nothing in the stages that ran",
        "",
        switch=True,
    ),
)


def add_options(group) -> None:
    """Add the table's options to a pytest option group (or anything with argparse's addoption)."""
    for option in OPTIONS:
        if option.switch:
            group.addoption(option.flag, action="store_true", default=False, help=option.help)
        else:
            group.addoption(option.flag, default=option.default, metavar=option.metavar, help=option.help)


def split_names(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def check_names(flag: str, given: list[str], known, *, what: str) -> None:
    """ValueError naming the unknown or repeated names of `flag` and listing the known ones."""
    known = list(known)
    unknown = [name for name in given if name not in known]
    if unknown:
        raise ValueError(f"{flag}: unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    repeated = sorted({name for name in given if given.count(name) > 1})
    if repeated:
        raise ValueError(f"{flag}: {what} {', '.join(map(repr, repeated))} listed more than once")
