"""The parity suite's pytest plugin: options, a hub per run, one context per case.

Installed with the harness and found by pytest through the `pytest11` entry point, so `pytest --pyargs
parity` and `python -m parity run` work from any folder. It adds its options to every pytest run of the
environment, but does its work only when the run targets the suite (parity/ or its test file, by path or
with --pyargs): a team's own tests in the same environment are left alone. Then, before anything can
import a framework, it pins the thread settings (results do not depend on the machine, and xdist
workers do not fight over cores) and asks xdist for `--dist loadgroup` (a case's tests in one worker)
where the caller's configuration does not already say so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from adapters.registry import available as available_backends
from backends.common.fileio import installed_versions
from backends.common.threads import pin_threads
from parity import baseline as baselines
from parity import code_coverage, heap, profiles, shards
from parity.envinfo import collect_environment
from parity.matrix import select
from parity.options import add_options, check_names, split_names
from parity.report import hub as hubs
from parity.session import ParitySession
from parity.stages import STAGES
from parity.status import Status
from parity.tolerances import use_ledger

PARITY_DIR = Path(__file__).resolve().parent


def runs_the_suite(config) -> bool:
    """Whether this pytest run targets the parity suite: an argument that is parity/ (or inside it), or with
    --pyargs the package `parity` (or one of its modules); on an xdist worker, what the controller said."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return hubs.WORKERINPUT_KEY in workerinput
    invoked = Path(config.invocation_params.dir)
    for arg in config.args:
        target = str(arg).split("::")[0]
        if config.option.pyargs and (target == "parity" or target.startswith("parity.")):
            return True
        path = (invoked / target).resolve()
        if path == PARITY_DIR or PARITY_DIR in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    if not runs_the_suite(config):
        return
    pin_threads()
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") in ("no", "load"):
        config.option.dist = "loadgroup"  # run from any folder, the caller's ini may not say it


def pytest_addoption(parser):
    group = parser.getgroup("parity", "dual-backend parity suite")
    add_options(group)


def _active(config) -> bool:
    """Set by pytest_configure: this run targets the suite, so the hooks below do their work."""
    return getattr(config, "parity_active", False)


def pytest_report_header(config):
    if not _active(config):
        return None
    backends = config.getoption("--parity-backends")
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"))
    versions = ", ".join(f"{k} {v}" for k, v in installed_versions().items())
    hub = config.parity_hub or "none (no test runs)"
    return [
        f"parity: backends {backends} (reference first); {versions}",
        f"parity: threads {threads}; deterministic kernels on in every backend",
        f"parity: hub {hub}",
    ]


def _check_options(config) -> None:
    """Every parity option's value, checked before anything runs: one UsageError listing the known names."""
    try:
        config.parity_backends = split_names(config.getoption("--parity-backends"))
        check_names("--parity-backends", config.parity_backends, available_backends(), what="backend")
        _check_profile(config)
        config.parity_cases = select(config.getoption("--parity-config"), config.parity_profile.cases)
        config.parity_all_cases = [c.id for c in config.parity_cases]
        config.parity_shard = _shard(config)
        stages = split_names(config.getoption("--parity-stage"))
        check_names("--parity-stage", stages, STAGES, what="stage")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.parity_stages = [s for s in STAGES if s in stages] if stages else list(STAGES)
    if len(config.parity_backends) < 2:
        raise pytest.UsageError(f"--parity-backends needs at least two names, got {config.parity_backends}")


def _shard(config) -> shards.Shard | None:
    """--parity-shard: parity_cases narrowed to this shard's share; None when the run is not sharded."""
    text, durations = config.getoption("--parity-shard"), config.getoption("--parity-durations")
    if text is None:
        if durations is not None:
            raise ValueError("--parity-durations: only used with --parity-shard")
        return None
    shard = shards.parse_shard(text)
    seconds = shards.case_seconds(durations) if durations is not None else {}
    config.parity_cases = shards.select(config.parity_cases, shard, seconds)
    return shard


def _check_profile(config) -> None:
    """The profile (--parity-profile, else the adapters' default_profile, else bundled), its ledger made the
    one tolerance() reads in this process, its baseline loaded; a bad file is a ValueError naming it."""
    from adapters.registry import get_adapter

    option = config.getoption("--parity-profile")
    adapters = [] if option else [get_adapter(name) for name in config.parity_backends]
    config.parity_profile = profiles.resolve(option, adapters)
    use_ledger(config.parity_profile.ledger)
    config.parity_baseline = baselines.load_baseline(config.parity_profile.baseline)
    golden = config.getoption("--parity-golden")
    config.parity_golden = Path(golden) if golden else config.parity_profile.golden_root


def _runs_no_test(config) -> bool:
    """Invocations that never run a test get no hub: --help, --collect-only, --fixtures, --markers."""
    option = config.option
    return any(
        getattr(option, name, False) for name in ("help", "collectonly", "showfixtures", "markers", "fixtures_per_test")
    )


def pytest_configure(config):
    if not runs_the_suite(config):
        return
    config.parity_active = True
    config.addinivalue_line("markers", "parity_case(id): the config a parity test belongs to")
    config.parity_hub = None
    _check_options(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.parity_hub = Path(workerinput[hubs.WORKERINPUT_KEY])
        config.parity_worker = workerinput["workerid"]
    else:
        if not _runs_no_test(config):
            config.parity_hub = hubs.new_hub(config.getoption("--parity-reports"))
        config.parity_worker = "main"
        config.pluginmanager.register(_Progress(config), "parity-progress")


class _Progress:
    """In the controller: which config and stage each test is, one line as it starts.

    Only on a terminal and without -v (with -v pytest prints its own line per test): with
    `-n auto` pytest-xdist prints dots alone, which do not say where a long run is."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logstart(self, nodeid, location):
        _started.append(nodeid)
        if self.config.option.verbose > 0 or not sys.stdout.isatty():
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        param = nodeid.partition("@")[0].rpartition("[")[2].rstrip("]")  # "...[case-stage]@group"
        case_id, _, stage = param.rpartition("-")
        writer = self.config.get_terminal_writer()
        if writer.width_of_current_line:  # after xdist's dots
            writer.line()
        reporter.write_line(f"parity: {case_id} · {stage}" if stage in STAGES and case_id else f"parity: {nodeid}")


def _remove_unused_hub(config) -> None:
    """Remove the hub of a session that ran no test, if it holds nothing but its empty skeleton."""
    hub = config.parity_hub
    if hub is None or _started:
        return
    hub = Path(hub)
    parts = hub / hubs.PARTS_DIR
    extra = {p.name for p in hub.iterdir()} - {hubs.INCOMPLETE_MARKER, hubs.PARTS_DIR} if hub.is_dir() else set()
    if extra or not parts.is_dir() or any(parts.iterdir()):
        return
    parts.rmdir()
    (hub / hubs.INCOMPLETE_MARKER).unlink(missing_ok=True)
    hub.rmdir()
    config.parity_hub = None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    if not _active(node.config):
        return
    node.workerinput[hubs.WORKERINPUT_KEY] = str(node.config.parity_hub)


def pytest_generate_tests(metafunc):
    if {"parity_case", "stage"} <= set(metafunc.fixturenames):
        cases = metafunc.config.parity_cases
        params = [
            pytest.param(case, stage, id=f"{case.id}-{stage}", marks=pytest.mark.xdist_group(case.id))
            for case in cases
            for stage in metafunc.config.parity_stages
        ]
        metafunc.parametrize(("parity_case", "stage"), params)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """On an xdist worker, refuse to run if the config groups were not applied.

    Without them one config's backends would run in several workers, twice the work,
    and their golden manifests could be written concurrently. pytest 9.2 with
    pytest-xdist 3.8 drops the groups silently; this makes that loud."""
    if not _active(config) or not getattr(config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not apply --dist loadgroup groups (e.g. to {lost[0]}); "
            "check the pytest / pytest-xdist versions pinned in pyproject.toml"
        )


@pytest.fixture(scope="session")
def parity_session(request, tmp_path_factory):
    """Adapters, golden store and per-case contexts of this worker; each backend runs each case once."""
    config = request.config
    session = ParitySession(
        backends=config.parity_backends,
        workdir=tmp_path_factory.mktemp("parity"),
        golden_root=config.parity_golden,
        profile=config.parity_profile,
        baseline=config.parity_baseline,
        regen=bool(config.getoption("force_regen", False)),
        hub=config.parity_hub,
        worker=config.parity_worker,
    )
    if config.getoption("--parity-coverage"):
        modules = [m for adapter in session.adapters.values() for m in adapter.code_under_test]
        session.coverage = code_coverage.start(modules, config.parity_hub, config.parity_worker)
    yield session
    if session.coverage is not None:
        session.coverage.finish()
    session.write_timings()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    if not _active(item.config) or "parity_session" not in getattr(item, "funcargs", {}):
        return
    # A case's tests run one after another in one worker (loadgroup): after its last, its state can go.
    case = item.callspec.params["parity_case"]
    following = getattr(getattr(nextitem, "callspec", None), "params", {}).get("parity_case")
    if following is None or following.id != case.id:
        item.funcargs["parity_session"].release(case.id)
    heap.freeze_if_imported()


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _log_lines.append(f"{report.outcome.upper():7s} {report.nodeid} ({report.duration:.2f} s)")


_log_lines = []
_crashed = []
_started = []  # node ids whose run began (the controller hears of workers' tests too)


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    _crashed.append(crashitem)  # a worker died: its results are missing, so the hub is not complete


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not _active(config) or getattr(config, "workerinput", None) is not None:
        return  # workers wrote their parts; the controller merges them
    if not _started:
        _remove_unused_hub(config)  # a run that never started a test (usage error, -k matching nothing)
        if config.parity_hub is None:
            return
    interrupted = exitstatus in (
        pytest.ExitCode.INTERRUPTED,
        pytest.ExitCode.INTERNAL_ERROR,
        pytest.ExitCode.USAGE_ERROR,
    ) or bool(session.shouldfail or session.shouldstop)
    crashed = bool(_crashed)
    env = collect_environment(installed_versions())
    env["backends"] = config.parity_backends
    env["configs"] = [c.id for c in config.parity_cases]
    if config.parity_shard is not None:  # what `parity merge` checks and puts back together
        env["shard"] = {"shard": str(config.parity_shard), "configs": config.parity_all_cases}
    env["exitstatus"] = int(exitstatus)
    env["profile"] = config.parity_profile.name
    if config.getoption("--parity-coverage"):
        code_coverage.combine(config.parity_hub)  # the workers' measurements, before the hub is written
    config.parity_results = hubs.finalize(
        config.parity_hub,
        env,
        "\n".join(_log_lines) + "\n",
        complete=not (interrupted or crashed),
        baseline=config.parity_baseline,
    )
    if (
        baselines.strict_failure(config.parity_results.get("baseline"), config.getoption("--parity-strict-baseline"))
        and session.exitstatus == pytest.ExitCode.OK
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the baseline must be kept current


def pytest_terminal_summary(terminalreporter, config):
    results = getattr(config, "parity_results", None)
    if results is None:
        return
    terminalreporter.section("parity: first divergence per config")
    for config_id, info in results.get("configs", {}).items():
        first = info.get("first_divergence")  # n/a stages are neither splits nor passes
        stages = info.get("stages", {})
        side = [
            f"{status}: {', '.join(s for s, v in stages.items() if v == status)}"
            for status in (Status.KNOWN, Status.NA)
            if status in stages.values()
        ]
        terminalreporter.write_line(
            f"{config_id:24s} {'no split' if first is None else 'FIRST SPLIT AT ' + first}"
            + (f" ({'; '.join(side)})" if side else "")
        )
    for line in baselines.summary_lines(results.get("baseline") or {}, results.get("comparisons", ())):
        terminalreporter.write_line(line)
    if baselines.strict_failure(results.get("baseline"), config.getoption("--parity-strict-baseline")):
        terminalreporter.write_line("parity: FAILED by --parity-strict-baseline: remove the fixed entries above")


def pytest_unconfigure(config):
    if not _active(config) or getattr(config, "workerinput", None) is not None:
        return
    if getattr(config, "parity_hub", None) is not None:
        _remove_unused_hub(config)
    hub = getattr(config, "parity_hub", None)
    if hub is None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    state = "INCOMPLETE" if (Path(hub) / hubs.INCOMPLETE_MARKER).exists() else "complete"
    line = f"parity report hub ({state}): {hub}"
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)
