"""`python -m parity VERB ...`: run the suite, regenerate goldens, render and diff hubs.

Verbs live in one explicit table (VERBS); adding one is one function and one
row. Bad input (a missing hub, a results.json of another schema, an unknown
mutant) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.registry import available as available_backends
from backends.common.config import ArgumentParser, int_at_least
from backends.common.threads import pin_threads
from parity.baseline import BaselineError
from parity.golden import GoldenError
from parity.history import HistoryError
from parity.options import OPTIONS, check_names, split_names
from parity.profiles import ProfileError
from parity.report.diff import diff_hubs, render_diff_text
from parity.report.hub import HubError, render, resolve_hub
from parity.stages import STAGES
from parity.tolerances import LedgerError

EXIT_BAD_INPUT = 2


def pytest_command(extra: Sequence[str], *, regen: bool = False) -> list[str]:
    """The suite's command line: `pytest parity/ -n auto`, extra arguments last (so they win)."""
    command = [sys.executable, "-m", "pytest", str(Path(__file__).resolve().parent), "-n", "auto"]
    if regen:
        command.append("--force-regen")  # pytest-regressions' option; the suite's plugin reads it
    return command + list(extra)


def suite_help(verb: str, *, regen: bool) -> str:
    """The short help of `run` / `regen`: the parity options (parity/options.py), the rest goes to pytest."""
    what = (
        "Regenerate goldens: the parity suite with --force-regen (refused on a split)."
        if regen
        else "Run the parity suite: pytest parity/ -n auto, then a report hub under reports/."
    )
    spelled = [f"{option.flag} {option.metavar}".rstrip() for option in OPTIONS]
    width = max(map(len, spelled))
    rows = "\n".join(f"  {flag.ljust(width)}  {option.help}" for flag, option in zip(spelled, OPTIONS))
    return (
        f"usage: python -m parity {verb} [--parity-... VALUE] [PYTEST ARGS]\n\n{what}\n\n"
        f"parity options:\n{rows}\n\n"
        "Every other argument goes to pytest, after the defaults (so it wins): e.g. -k forward, -x, -n 2,\n"
        "-v (one line per test). pytest's own options: python -m pytest --help.\n"
        f"\nadapters (python -m adapters), with the stages each supports:\n{adapter_lines()}"
    )


def adapter_lines() -> str:
    """One line per adapter: its name and supported stages (a stage fewer than two support is n/a)."""
    from adapters.registry import capabilities

    return "".join(f"  {name:10s} {capabilities(name)}\n" for name in available_backends())


def _check_profile_argument(argv: Sequence[str]) -> None:
    """A bad --parity-profile is one ProfileError (exit 2) before pytest starts."""
    from parity.profiles import load_profile

    for position, arg in enumerate(argv):
        value = (
            arg.partition("=")[2]
            if arg.startswith("--parity-profile=")
            else (argv[position + 1] if arg == "--parity-profile" and position + 1 < len(argv) else None)
        )
        if value is not None:
            load_profile(value)


def _run_suite(verb: str, argv: Sequence[str], *, regen: bool) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        sys.stdout.write(suite_help(verb, regen=regen))
        return 0
    _check_profile_argument(argv)
    return subprocess.run(pytest_command(argv, regen=regen), check=False).returncode  # hubs under the caller's folder


def verb_run(argv: Sequence[str]) -> int:
    """Run the parity suite; every argument but -h/--help goes to pytest."""
    return _run_suite("run", argv, regen=False)


def verb_regen(argv: Sequence[str]) -> int:
    """Run the suite with --force-regen; pass --parity-config ID to limit it to configs."""
    return _run_suite("regen", argv, regen=True)


def verb_report(argv: Sequence[str]) -> int:
    parser = ArgumentParser(
        prog="python -m parity report", description="Re-render summary.md, index.html and plots of a hub."
    )
    parser.add_argument(
        "hub", nargs="?", default=str(Path("reports") / "latest"), help="hub folder (default: reports/latest)"
    )
    args = parser.parse_args(argv)
    hub = resolve_hub(args.hub)
    render(hub)
    print(f"report: {hub / 'index.html'}")
    return 0


def verb_diff(argv: Sequence[str]) -> int:
    parser = ArgumentParser(
        prog="python -m parity diff", description="What changed from hub A to hub B; exit 1 on new failures."
    )
    parser.add_argument("hub_a", metavar="HUB_A", help="the earlier hub folder (reports/<timestamp>)")
    parser.add_argument("hub_b", metavar="HUB_B", help="the later hub folder; new failures are those of B")
    args = parser.parse_args(argv)
    report = diff_hubs(args.hub_a, args.hub_b)
    sys.stdout.write(render_diff_text(report))
    return 1 if report.has_new_failures else 0


def verb_merge(argv: Sequence[str]) -> int:
    """Join the hubs of a sharded run (--parity-shard) into one hub."""
    from parity.report.merge import merge_hubs

    parser = ArgumentParser(prog="python -m parity merge", description=verb_merge.__doc__)
    parser.add_argument("hubs", metavar="HUB", nargs="+", help="the shards' hub folders")
    parser.add_argument(
        "--output", default="reports", metavar="DIR", help="folder of the merged hub (default: reports)"
    )
    parser.add_argument(
        "--force", action="store_true", help="merge hubs of different commits, profiles, backends or harness versions"
    )
    args = parser.parse_args(argv)
    merged = merge_hubs(args.hubs, args.output, force=args.force)
    print(f"merged {len(args.hubs)} hubs into {merged}")
    return 0


def verb_baseline(argv: Sequence[str]) -> int:
    """Write a baseline of known splits from a hub's failures; every entry needs a reason."""
    from parity import baseline as baselines
    from parity.report.hub import load_results

    parser = ArgumentParser(
        prog="python -m parity baseline",
        description="Write a baseline (known splits) from the failures of a hub. Entries "
        "already in FILE are kept; failures they do not accept are added.",
    )
    parser.add_argument("hub", metavar="HUB", help="hub folder whose failures become known splits")
    parser.add_argument("--output", required=True, metavar="FILE", help="the baseline file to write")
    parser.add_argument("--reason", default=None, help="why these splits are accepted (required, non-empty)")
    parser.add_argument("--link", default="", help="an issue or discussion URL recorded with each entry")
    args = parser.parse_args(argv)
    if not (args.reason or "").strip():
        sys.stderr.write(
            'parity: error: every baseline entry needs a reason: pass --reason "why this split is accepted"\n'
        )
        return EXIT_BAD_INPUT
    results = load_results(args.hub)
    existing = baselines.load_baseline(args.output) if Path(args.output).exists() else baselines.EMPTY
    entries = baselines.entries_from_failures(results["comparisons"], args.reason, args.link, existing)
    path = baselines.save_baseline(args.output, entries)
    print(f"wrote {path}: {len(entries)} entries ({len(entries) - len(existing.entries)} new)")
    return 0


def verb_tolerances(argv: Sequence[str]) -> int:
    """Measure errors over seeds beside the ledger; exit 1 where one exceeds its tolerance."""
    parser = ArgumentParser(
        prog="python -m parity tolerances", description="Show the ledger, or measure errors over seeds beside it."
    )
    parser.add_argument("--measure", action="store_true", help="rerun every stage check over --seeds seeds")
    parser.add_argument("--seeds", type=int_at_least(1), default=3, help="number of data seeds (default: 3)")
    parser.add_argument(
        "--write", action="store_true", help="set measured entries to worst x headroom, with provenance"
    )
    parser.add_argument(
        "--parity-config", default=None, help="with --measure: comma-separated config ids (default: all)"
    )
    parser.add_argument(
        "--parity-backends",
        default="tf_pinn,torch_pinn",
        help="with --measure: comma-separated adapter names, the first the reference (default: tf_pinn,torch_pinn)",
    )
    parser.add_argument("--parity-stage", default=None, help="with --measure: comma-separated stages (default: all)")
    parser.add_argument(
        "--parity-profile",
        default=None,
        help="profile name or folder whose cases, ledger and "
        "baseline are used (default: the adapters' default_profile, else bundled)",
    )
    args = parser.parse_args(argv)
    backends = split_names(args.parity_backends)
    stages = split_names(args.parity_stage) if args.parity_stage else list(STAGES)
    try:
        check_names("--parity-backends", backends, available_backends(), what="backend")
        check_names("--parity-stage", stages, STAGES, what="stage")
    except ValueError as exc:
        parser.error(str(exc))
    from adapters.registry import get_adapter
    from parity import baseline as baselines
    from parity import profiles
    from parity import tolerance_measure as measuring
    from parity.matrix import select
    from parity.tolerances import load_ledger

    profile = profiles.resolve(args.parity_profile, [] if args.parity_profile else [get_adapter(b) for b in backends])
    ledger = load_ledger(profile.ledger)
    if not args.measure:
        for key, entry in sorted(ledger.entries.items()):
            print(f"{key:34s} {entry.value:11.3g}  {entry.summary()}")
        return 0
    try:
        cases = select(args.parity_config, profile.cases)
    except ValueError as exc:
        raise LedgerError(str(exc)) from exc
    found = measuring.measure(
        range(args.seeds),
        backends,
        cases,
        stages=stages,
        profile=profile,
        baseline=baselines.load_baseline(profile.baseline),
    )
    lines, ok = measuring.report(found, ledger)
    print("\n".join(lines))
    if args.write:
        measuring.write_ledger(found, ledger.path)
        print(f"wrote {ledger.path}")
        return 0
    return 0 if ok else 1


def verb_audit(argv: Sequence[str]) -> int:
    """Mutant adapters against the clean other backend; exit 1 when one is not caught where declared."""
    pin_threads()  # the suite's thread settings, before an adapter loads a framework (main does it too)
    parser = ArgumentParser(
        prog="python -m parity audit",
        description="Prove the harness can fail: run mutant adapters (one known bug each) against the clean "
        "other backend and report the first stage that fails for each.",
    )
    parser.add_argument("--mutants", default=None, help="comma-separated mutant names (default: all)")
    parser.add_argument(
        "--base",
        default="torch_pinn",
        choices=("torch_pinn", "tf_pinn"),
        help="backend the mutants wrap; the other is the clean reference (default: torch_pinn)",
    )
    parser.add_argument("--cases", default=None, help="comma-separated ids of parity.matrix.AUDIT (default: all)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the table as JSON")
    parser.add_argument(
        "--sensitivity",
        action="store_true",
        help="then bisect the smallest perturbation of translation, forward and loss detected",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    from adapters.mutants import MutantError, available, get_mutant
    from parity import audit
    from parity.matrix import AUDIT, select

    try:
        if args.list:
            for name in available():
                cls = get_mutant(name)
                print(f"{name:26s} {cls.expected_stage or '-':15s} {cls.description}")
            return 0
        names = None if not args.mutants else [n.strip() for n in args.mutants.split(",") if n.strip()]
        audit.resolve_mutants(names, args.base)
        cases = select(args.cases, AUDIT)
    except (MutantError, ValueError) as exc:
        sys.stderr.write(f"parity: error: {exc}\n")
        return EXIT_BAD_INPUT
    # The backends' CLIs print what they wrote: to stderr with the progress, so stdout is the table alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = audit.run_audit(
            names,
            base=args.base,
            cases=cases,
            sensitivity=args.sensitivity,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    sys.stdout.write(audit.render_table(result))
    sys.stdout.write(audit.render_sensitivity(result))
    if args.json:
        print(f"wrote {audit.write_json(result, args.json)}")
    return audit.exit_status(result)


def verb_history(argv: Sequence[str]) -> int:
    """The suite at each revision of the code under test, in order; one history hub (parity/history.py)."""
    from parity import history

    ours, _, suite = _split_at_double_dash(argv)
    parser = ArgumentParser(
        prog="python -m parity history",
        description="Run the suite at each revision of the code under test (archives, folders, or --git DIR "
        "--range A..B), in this environment, and write one history hub. Arguments after -- go to the suite.",
    )
    parser.add_argument("sources", nargs="*", help="source folders or archives (.tar.gz), oldest first")
    parser.add_argument("--git", help="a git checkout of the code under test")
    parser.add_argument("--range", dest="span", help="with --git: A..B, the commits after A up to B")
    parser.add_argument("--output", default=str(Path("reports") / "history"), help="the history hub's folder")
    parser.add_argument("--constraints", help="a pip constraints file for the requirements (e.g. torch==2.13.0)")
    parser.add_argument("--requirements", default="requirements-ci.txt", help="the code's requirements file")
    parser.add_argument(
        "--bisect",
        metavar="CHECK",
        help="config/stage or config/stage/check/metric: find the "
        "first revision where its status changes, in log2(n) runs",
    )
    args = parser.parse_args(ours)
    out = Path(args.output)
    revisions = history.materialize(args.sources, out, git=args.git, span=args.span)

    def run_one(revision):
        found = history.run_revision(revision, out, suite, constraints=args.constraints, requirements=args.requirements)
        what = found.skipped or f"exit {found.exit_code}, {len(found.failures)} failing checks"
        print(f"history: {revision.label}: {what} (switch {found.switch_s:.1f} s, run {found.wall_s:.1f} s)")
        return found

    if args.bisect:
        first, runs = history.bisect(revisions, args.bisect, run_one)
        history.write_history(out, runs, history.code_packages(suite))
        print(
            f"history: {args.bisect} first changes at {first}"
            if first
            else f"history: {args.bisect} keeps its status over {revisions[0].label}..{revisions[-1].label}"
        )
    else:
        history.write_history(out, [run_one(revision) for revision in revisions], history.code_packages(suite))
    print(f"history hub: {out / 'history.md'}")
    return 0


def verb_switch_source(argv: Sequence[str]) -> int:
    """Install another revision of the code under test into this environment (what history does per revision)."""
    from parity import history

    parser = ArgumentParser(prog="python -m parity switch-source", description=verb_switch_source.__doc__)
    parser.add_argument("source", help="a source folder or archive (.tar.gz)")
    parser.add_argument("--workdir", default=".upstream", help="where archives are extracted")
    parser.add_argument("--constraints")
    parser.add_argument("--requirements", default="requirements-ci.txt")
    args = parser.parse_args(argv)
    (revision,) = history.materialize([args.source], Path(args.workdir))
    seconds, installed = history.switch_source(
        revision.folder,
        constraints=args.constraints,
        requirements=args.requirements,
        source=str(Path(args.source).resolve()),  # what make upstream compares with PTYCHOPINN_SRC
    )
    print(
        f"switch-source: {revision.label} from {revision.folder} in {seconds:.1f} s"
        + (" (requirements installed: they changed)" if installed else " (requirements unchanged)")
    )
    return 0


def _split_at_double_dash(argv: Sequence[str]) -> tuple[list[str], str, list[str]]:
    argv = list(argv)
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], "--", argv[at + 1 :]
    return argv, "", []


@dataclass(frozen=True)
class Verb:
    summary: str
    handler: Callable[[Sequence[str]], int]


VERBS: dict[str, Verb] = {
    "run": Verb("run the parity suite (pytest parity/ -n auto [ARGS]); run --help: its options", verb_run),
    "regen": Verb("regenerate goldens: the suite with --force-regen [--parity-config ID]", verb_regen),
    "report": Verb("re-render a hub's summary.md, index.html and plots: report [HUB]", verb_report),
    "diff": Verb("compare two hubs, exit 1 on new failures: diff HUB_A HUB_B", verb_diff),
    "merge": Verb("join the hubs of a sharded run: merge HUB... [--output DIR] [--force]", verb_merge),
    "baseline": Verb(
        "write known splits from a hub's failures: baseline HUB --output FILE --reason TEXT [--link URL]", verb_baseline
    ),
    "tolerances": Verb("ledger, or --measure --seeds N [--write]: errors over seeds beside it", verb_tolerances),
    "audit": Verb(
        "mutants with one known bug each must fail at their stage: audit [--mutants a,b] "
        "[--base torch_pinn|tf_pinn] [--json FILE] [--sensitivity]",
        verb_audit,
    ),
    "history": Verb(
        "the suite at each revision of the code under test: history SRC... | --git DIR --range A..B "
        "[--bisect CHECK] [-- SUITE ARGS]",
        verb_history,
    ),
    "switch-source": Verb(
        "install another revision of the code under test here: switch-source SRC", verb_switch_source
    ),
}


def usage() -> str:
    width = max(len(name) for name in VERBS)
    rows = "\n".join(f"  {name.ljust(width)}  {verb.summary}" for name, verb in VERBS.items())
    return f"usage: python -m parity VERB [ARGS]\n\nverbs:\n{rows}\n"


def main(argv: Sequence[str] | None = None) -> int:
    pin_threads()  # before any verb lets an adapter load a framework
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(usage())
        return EXIT_BAD_INPUT
    if args[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0
    verb = VERBS.get(args[0])
    if verb is None:
        sys.stderr.write(f"parity: error: unknown verb {args[0]!r}; one of {', '.join(VERBS)}\n")
        return EXIT_BAD_INPUT
    try:
        return verb.handler(args[1:])
    except (HubError, GoldenError, LedgerError, BaselineError, ProfileError, FileNotFoundError, HistoryError) as error:
        sys.stderr.write(f"parity: error: {error}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
