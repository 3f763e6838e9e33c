"""One test per (config, stage): both backends, compared with each other and the goldens.

The (config, stage) pairs come from parity/plugin.py's pytest_generate_tests:
the profile's matrix (parity/profiles.py; bundled: parity/matrix.py) times parity.stages.STAGES, each config in one
xdist group so its backend runs happen once, in one worker.
"""

import pytest

from parity.case_context import Unsupported


def test_stage(parity_case, stage, parity_session):
    try:
        comparisons = parity_session.run(parity_case, stage)
    except Unsupported as exc:  # n/a: fewer than two backends can do this stage here; not a pass
        pytest.skip(str(exc))
    parity_session.assert_passed(comparisons)  # known splits of the baseline pass
