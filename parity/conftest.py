"""The parity suite's pytest wiring: options, hub per run, one context per case.

Thread settings come first, before anything can import a framework: results
then do not depend on the machine, and xdist workers do not fight over cores.
"""

from backends.common.threads import pin_threads

pin_threads()

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from parity.report import hub as hubs  # noqa: E402
from parity.envinfo import REPO_ROOT, collect_environment  # noqa: E402
from parity.matrix import select  # noqa: E402
from backends.common.fileio import installed_versions  # noqa: E402
from parity.session import ParitySession  # noqa: E402
from parity.stages import STAGES  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("parity", "dual-backend parity suite")
    group.addoption("--parity-config", default=None,
                    help="comma-separated config ids of parity/matrix.py to run (default: all)")
    group.addoption("--parity-backends", default="tf,torch",
                    help="comma-separated adapter names; the first is the reference (default: tf,torch)")
    group.addoption("--parity-reports", default=str(REPO_ROOT / "reports"), help="folder of report hubs")
    group.addoption("--parity-golden", default=str(REPO_ROOT / "golden"), help="folder of goldens")


def pytest_report_header(config):
    backends = config.getoption("--parity-backends")
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"))
    versions = ", ".join(f"{k} {v}" for k, v in installed_versions().items())
    return [f"parity: backends {backends} (reference first); {versions}",
            f"parity: threads {threads}; deterministic kernels on in every backend",
            f"parity: hub {config.parity_hub}"]


def pytest_configure(config):
    config.addinivalue_line("markers", "parity_case(id): the config a parity test belongs to")
    try:
        config.parity_cases = select(config.getoption("--parity-config"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.parity_backends = [b.strip() for b in config.getoption("--parity-backends").split(",") if b.strip()]
    if len(config.parity_backends) < 2:
        raise pytest.UsageError(f"--parity-backends needs at least two names, got {config.parity_backends}")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.parity_hub = Path(workerinput[hubs.WORKERINPUT_KEY])
        config.parity_worker = workerinput["workerid"]
    else:
        config.parity_hub = hubs.new_hub(config.getoption("--parity-reports"))
        config.parity_worker = "main"
    config.parity_log = []


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput[hubs.WORKERINPUT_KEY] = str(node.config.parity_hub)


def pytest_generate_tests(metafunc):
    if {"parity_case", "stage"} <= set(metafunc.fixturenames):
        cases = metafunc.config.parity_cases
        params = [pytest.param(case, stage, id=f"{case.id}-{stage}",
                               marks=pytest.mark.xdist_group(case.id)) for case in cases for stage in STAGES]
        metafunc.parametrize(("parity_case", "stage"), params)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """On an xdist worker, refuse to run if the config groups were not applied.

    Without them one config's backends would run in several workers, twice the work,
    and their golden manifests could be written concurrently. pytest 9.2 with
    pytest-xdist 3.8 drops the groups silently; this makes that loud."""
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist did not apply --dist loadgroup groups (e.g. to {lost[0]}); "
                                "check the pytest / pytest-xdist versions pinned in pyproject.toml")


@pytest.fixture(scope="session")
def parity_session(request, tmp_path_factory):
    """Adapters, golden store and per-case contexts of this worker; each backend runs each case once."""
    config = request.config
    session = ParitySession(backends=config.parity_backends, workdir=tmp_path_factory.mktemp("parity"),
                            golden_root=Path(config.getoption("--parity-golden")),
                            regen=bool(config.getoption("force_regen", False)),
                            hub=config.parity_hub, worker=config.parity_worker)
    yield session
    session.write_timings()


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _log_lines.append(f"{report.outcome.upper():7s} {report.nodeid} ({report.duration:.2f} s)")


_log_lines = []
_crashed = []


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    _crashed.append(crashitem)  # a worker died: its results are missing, so the hub is not complete


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if getattr(config, "workerinput", None) is not None:
        return  # workers wrote their parts; the controller merges them
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                                 pytest.ExitCode.USAGE_ERROR) or bool(session.shouldfail or session.shouldstop)
    crashed = bool(_crashed)
    env = collect_environment(installed_versions())
    env["backends"] = config.parity_backends
    env["configs"] = [c.id for c in config.parity_cases]
    env["exitstatus"] = int(exitstatus)
    config.parity_results = hubs.finalize(config.parity_hub, env, "\n".join(_log_lines) + "\n",
                                          complete=not (interrupted or crashed))


def pytest_terminal_summary(terminalreporter, config):
    results = getattr(config, "parity_results", None)
    if results is None:
        return
    terminalreporter.section("parity: first divergence per config")
    for config_id, info in results.get("configs", {}).items():
        first = info.get("first_divergence")
        terminalreporter.write_line(f"{config_id:24s} {'no split' if first is None else 'FIRST SPLIT AT ' + first}")


def pytest_unconfigure(config):
    hub = getattr(config, "parity_hub", None)
    if hub is None or getattr(config, "workerinput", None) is not None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    state = "INCOMPLETE" if (Path(hub) / hubs.INCOMPLETE_MARKER).exists() else "complete"
    line = f"parity report hub ({state}): {hub}"
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)
