"""One test per (config, stage): both backends, compared with each other and the goldens.

The (config, stage) pairs come from parity/conftest.py's pytest_generate_tests:
the profile's matrix (parity/profiles.py; bundled: parity/matrix.py) times parity.stages.STAGES, each config in one
xdist group so its backend runs happen once, in one worker.
"""


def test_stage(parity_case, stage, parity_session):
    parity_session.assert_passed(parity_session.run(parity_case, stage))  # known splits of the baseline pass
