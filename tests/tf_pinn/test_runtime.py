"""Runtime settings of the TF backend: versions and determinism."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf
from tensorflow.python.framework.config import is_op_determinism_enabled

from backends.tf_pinn.runtime import BACKEND_NAME, configure_determinism, framework_versions

pytestmark = pytest.mark.tf


def test_framework_versions():
    assert framework_versions() == {"tensorflow": tf.__version__, "keras": keras.__version__}
    assert BACKEND_NAME == "tf_pinn"


def test_configure_determinism_is_repeatable(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    first = configure_determinism(5)
    a = tf.random.uniform((3,)).numpy()
    second = configure_determinism(5)
    b = tf.random.uniform((3,)).numpy()
    assert is_op_determinism_enabled()
    assert (a == b).all()  # the seed is reset on every call
    assert first["intra_op_threads"].startswith("1") and second["inter_op_threads"].startswith("1")
    assert first["op_determinism"] is True and first["seed"] == 5


def test_bad_thread_variable_is_named(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "two")
    with pytest.raises(ValueError, match="TF_NUM_INTRAOP_THREADS"):
        configure_determinism(0)
