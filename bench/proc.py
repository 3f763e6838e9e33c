"""Measured subprocesses: wall time, peak RSS (os.wait4) and CPU time, in the benchmark environment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backends.common.threads import FRAMEWORK_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def measured_env(extra: dict | None = None, drop=()) -> dict:
    """The caller's environment without the variables in `drop`, plus FRAMEWORK_ENV, then `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env.update(FRAMEWORK_ENV)  # every measured process: one thread, quiet, oneDNN-free TensorFlow
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTEST_XDIST_AUTO_NUM_WORKERS", None)
    env.update(extra or {})
    return env


def load() -> list[float]:
    """1, 5 and 15 minute load averages (as `uptime` prints them)."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class ProcResult:
    argv: list
    rc: int
    wall_s: float
    maxrss_mib: float  # peak RSS of the process or of its largest waited-for descendant
    cpu_s: float  # user + system of the process and its waited-for descendants
    load_before: list
    load_after: list
    log: str | None = None
    tail: str = ""
    per_process_peak_mib: list = field(default_factory=list)  # (peak MiB, command) from /proc sampling

    def to_dict(self) -> dict:
        return asdict(self)


def _tree(root: int) -> list[int]:
    """PIDs of `root`'s descendants (from /proc/*/stat parent links)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


def _hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"


class _Sampler(threading.Thread):
    """Polls the peak RSS (VmHWM) of every descendant, so each worker's own peak is known."""

    def __init__(self, pid: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peaks: dict[int, tuple[float, str]] = {}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in [self.pid] + _tree(self.pid):
                hwm = _hwm_mib(pid)
                if hwm is not None:
                    old = self.peaks.get(pid)
                    self.peaks[pid] = (max(hwm, old[0] if old else 0.0), old[1] if old else _cmd(pid))
            self.done.wait(self.period)


def run(
    argv: list,
    *,
    log: Path | None = None,
    env: dict | None = None,
    cwd: Path = REPO_ROOT,
    sample_tree: bool = False,
    timeout: float | None = None,
) -> ProcResult:
    """Run `argv` to completion in the measured environment; stdout+stderr go to `log`."""
    env = measured_env() if env is None else env
    before = load()
    handle = open(log, "wb") if log is not None else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(a) for a in argv], cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        sampler = _Sampler(proc.pid) if sample_tree else None
        if sampler:
            sampler.start()
        killer = threading.Timer(timeout, proc.kill) if timeout else None
        if killer:
            killer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # blocks; rusage of the child and its waited-for tree
        wall = time.perf_counter() - start
        if killer:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.done.set()
            sampler.join()
    finally:
        if log is not None:
            handle.close()
    tail = ""
    if log is not None and proc.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-2000:]
    per_process = []
    if sampler:
        per_process = sorted(([round(mib, 1), cmd] for mib, cmd in sampler.peaks.values()), reverse=True)
    return ProcResult(
        argv=[str(a) for a in argv],
        rc=proc.returncode,
        wall_s=wall,
        maxrss_mib=usage.ru_maxrss / 1024.0,
        cpu_s=usage.ru_utime + usage.ru_stime,
        load_before=before,
        load_after=load(),
        log=None if log is None else str(log),
        tail=tail,
        per_process_peak_mib=per_process,
    )


def python(*args, **kwargs) -> ProcResult:
    return run([PYTHON, *args], **kwargs)
