"""What only the TF backend has: Keras layout and layer names, its hand-written Adam, block stitching,
the offset check in traced graphs and TF's own runtime switches. Everything both backends do is in tests/backends/."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.config import is_op_determinism_enabled

from backends.common.weights import conv_specs
from backends.tf_pinn.model import build_network, to_canonical_layout, to_keras_layout
from backends.tf_pinn.physics import extend_objects
from backends.tf_pinn.runtime import BACKEND_NAME, configure_determinism, framework_versions
from backends.tf_pinn.stitch import stitch_patches
from backends.tf_pinn.train import Adam

pytestmark = pytest.mark.tf


def test_layer_names_are_the_canonical_prefixes():
    net = build_network(1, "sigmoid")
    names = {layer.name for layer in net.layers}
    for spec in conv_specs(1):
        layer = net.get_layer(spec.name)
        assert tuple(layer.kernel.shape) == (3, 3, spec.in_channels, spec.out_channels)
        assert spec.name in names


def test_kernel_layout_conversion_round_trip(rng):
    k = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)  # (out, in, kh, kw)
    keras_k = to_keras_layout("a.kernel", k)
    assert keras_k.shape == (3, 3, 3, 5) and keras_k[1, 2, 0, 4] == k[4, 0, 1, 2]
    np.testing.assert_array_equal(to_canonical_layout("a.kernel", keras_k), k)
    b = rng.standard_normal(5).astype(np.float32)
    np.testing.assert_array_equal(to_keras_layout("a.bias", b), b)


def test_adam_matches_the_textbook_update(rng):
    start = rng.standard_normal((3, 4)).astype(np.float32)
    var = tf.Variable(start)
    adam = Adam([var], learning_rate=0.01, epsilon=1e-7)
    p, m, v = start.astype(np.float64), 0.0, 0.0
    for t in range(1, 6):
        g = rng.standard_normal((3, 4)).astype(np.float32) * 10.0 ** (-t)  # shrinking, so eps matters
        adam.apply([tf.constant(g)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        p = p - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-7)
        np.testing.assert_allclose(var.numpy(), p, rtol=1e-5, atol=1e-7)
    assert int(adam.step.numpy()) == 5


def test_adam_adds_epsilon_to_the_bias_corrected_root():
    # |g| = eps on step 1: the textbook update is lr * g / (|g| + eps) = lr / 2. Keras's form would add
    # eps to the uncorrected sqrt(v) = sqrt(0.001) |g|, an update of about lr / 32.6.
    var = tf.Variable(np.zeros(2, np.float32))
    Adam([var], learning_rate=0.1, epsilon=1e-7).apply([tf.constant([1e-7, -1e-7], tf.float32)])
    np.testing.assert_allclose(var.numpy(), [-0.05, 0.05], rtol=1e-4)


def test_block_size_does_not_change_the_result(rng, monkeypatch):
    import backends.tf_pinn.stitch as stitch_module

    patches = (rng.standard_normal((7, 16, 16)) + 1j * rng.standard_normal((7, 16, 16))).astype(np.complex64)
    x, y = rng.uniform(10, 20, 7), rng.uniform(10, 20, 7)
    whole, _ = stitch_patches(patches, x, y)
    monkeypatch.setattr(stitch_module, "_STITCH_BLOCK", 3)
    blocks, _ = stitch_patches(patches, x, y)
    np.testing.assert_allclose(blocks, whole, rtol=1e-6, atol=1e-7)


def test_extend_objects_refuses_far_offsets_when_traced_too():
    # Traced (a training step, a prediction) the check runs on the host; TF re-raises it as its own error.
    merge = tf.function(
        extend_objects,
        input_signature=[tf.TensorSpec((None, 16, 16, 2), tf.complex64), tf.TensorSpec((None, 2, 2), tf.float32)],
    )
    patches = tf.zeros((1, 16, 16, 2), tf.complex64)
    assert merge(patches, tf.constant([[[8.0, 0.0], [-8.0, 0.0]]])).shape == (1, 16, 16, 2)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="group 0 has an offset of 8.500 px, more than N/2 = 8: object_big cannot merge it",
    ):
        merge(patches, tf.constant([[[8.5, 0.0], [-8.5, 0.0]]]))


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
