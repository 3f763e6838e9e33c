"""Thread settings read from the environment (backends/common/threads.py), shared by both runtimes."""

from __future__ import annotations

import pytest

from backends.common.threads import FRAMEWORK_ENV, pin_threads, threads_from_env


def test_pin_threads_sets_only_what_is_unset():
    environ = {"OMP_NUM_THREADS": "3"}
    pin_threads(environ)
    assert environ == {**FRAMEWORK_ENV, "OMP_NUM_THREADS": "3"}


def test_the_first_variable_set_gives_the_count():
    assert threads_from_env(("A", "B"), {"B": " 2 "}) == 2
    assert threads_from_env(("A", "B"), {"A": "4", "B": "2"}) == 4
    assert threads_from_env(("A", "B"), {"A": "", "B": ""}) is None


@pytest.mark.parametrize("value, why", [("two", "must be an integer thread count"), ("0", "must be >= 1")])
def test_a_bad_count_names_its_variable(value, why):
    with pytest.raises(ValueError, match=f"^environment variable B='{value}' {why}$"):
        threads_from_env(("A", "B"), {"B": value})
