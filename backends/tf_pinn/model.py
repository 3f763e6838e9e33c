"""The network (docs/spec.md §7), its scales (§5) and the PinnModel wrapper, in Keras 3.

Counterpart of backends/torch_pinn/model.py. Keras layers are named after the
canonical weights (`encoder.0.conv0`, `decoder_amp.head`, ...), and kernels are
converted between canonical (out, in, kh, kw) and Keras (kh, kw, in, out) in
this module only. Framework-specific, without a torch counterpart:
`to_keras_layout` / `to_canonical_layout` (torch's layout is the canonical one;
it renames `.weight` with `canonical_name` instead) and
`PinnModel.trainable_variables` (Keras's name; torch's nn.Module has `parameters()`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from backends.common.config import AMP_ACTIVATIONS, PinnConfig
from backends.common.validation import check_choice, check_scales_inputs
from backends.common.weights import (
    DECODER_LEVELS,
    DECODERS,
    ENCODER_LEVELS,
    LOG_INTENSITY_SCALE,
    check_canonical,
    conv_specs,
    starting_weights,
)
from backends.tf_pinn import physics

_ACTIVATIONS = {"sigmoid": tf.math.sigmoid, "softplus": tf.math.softplus}  # keys: AMP_ACTIVATIONS


def to_keras_layout(name: str, value) -> np.ndarray:
    """A canonical tensor in Keras layout: kernels (out, in, kh, kw) -> (kh, kw, in, out)."""
    value = np.asarray(value, dtype=np.float32)
    return np.ascontiguousarray(np.transpose(value, (2, 3, 1, 0))) if name.endswith(".kernel") else value.copy()


def to_canonical_layout(name: str, value) -> np.ndarray:
    """A Keras-layout tensor (weight or gradient) in canonical layout: kernels -> (out, in, kh, kw)."""
    value = np.asarray(value, dtype=np.float32)
    return np.ascontiguousarray(np.transpose(value, (3, 2, 0, 1))) if name.endswith(".kernel") else value.copy()


def amp_activation_at_zero(amp_activation: str) -> float:
    """a0 = amp_activation(0) in float64: 0.5 for sigmoid, ln 2 for softplus."""
    check_choice("amp_activation", amp_activation, AMP_ACTIVATIONS)
    return float(_ACTIVATIONS[amp_activation](tf.constant(0.0, tf.float64)))


def compute_scales(diffraction, probe, amp_activation: str) -> tuple[float, float]:
    """(input_scale r, log g0) from (M, N, N) raw amplitudes and the (N, N) probe, in float64 (§5)."""
    x = tf.cast(tf.convert_to_tensor(diffraction), tf.float64)
    p = tf.cast(tf.convert_to_tensor(probe), tf.complex128)
    n = check_scales_inputs(x.shape, p.shape)
    m = int(x.shape[0])
    mean_total = tf.reduce_sum(tf.square(x)) / m  # mean over patterns of sum X^2
    s = slice(n // 4, n // 4 + n // 2)
    support_power = tf.reduce_sum(tf.square(tf.math.real(p[s, s])) + tf.square(tf.math.imag(p[s, s])))
    if float(mean_total) <= 0.0:
        raise ValueError("diffraction is all zero: the input scale r = (N/2) / sqrt(mean sum X^2) is undefined")
    if float(support_power) <= 0.0:
        raise ValueError("probe has no power inside the support S: the intensity scale is undefined")
    a0 = amp_activation_at_zero(amp_activation)
    input_scale = (n / 2) / tf.sqrt(mean_total)
    log_g0 = 0.5 * tf.math.log(mean_total / (a0 * a0 * support_power))
    return float(input_scale), float(log_g0)


def _conv(filters: int, name: str, activation=None):
    return keras.layers.Conv2D(filters, 3, strides=1, padding="same", use_bias=True, activation=activation, name=name)


def build_network(n_filters_scale: int, amp_activation: str) -> keras.Model:
    """Encoder and two decoders: (P, N, N, 1) scaled amplitudes -> amplitude and phase (P, N/2, N/2, 1)."""
    check_choice("amp_activation", amp_activation, AMP_ACTIVATIONS)
    f = 16 * n_filters_scale
    inputs = keras.Input(shape=(None, None, 1), name="scaled_diffraction")
    x = inputs
    for level in range(ENCODER_LEVELS):
        width = f * 2**level
        x = _conv(width, f"encoder.{level}.conv0", "relu")(x)
        x = _conv(width, f"encoder.{level}.conv1", "relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"encoder.{level}.pool")(x)
    bottleneck = x
    heads = {}
    for decoder in DECODERS:
        x = bottleneck
        for level in range(DECODER_LEVELS):
            width = f * 2 ** (1 - level)
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{decoder}.{level}.upsample")(x)
            x = _conv(width, f"{decoder}.{level}.conv0", "relu")(x)
            x = _conv(width, f"{decoder}.{level}.conv1", "relu")(x)
        heads[decoder] = _conv(1, f"{decoder}.head")(x)
    amplitude = keras.layers.Activation(amp_activation, name="decoder_amp.activation")(heads["decoder_amp"])
    phase = keras.layers.Lambda(lambda t: math.pi * keras.ops.tanh(t), name="decoder_phase.pi_tanh")(
        heads["decoder_phase"]
    )
    return keras.Model(inputs, [amplitude, phase], name="pinn_network")


class PinnModel:
    """The network with the probe and the two scales: raw amplitudes in, object patches and far field out."""

    def __init__(self, config: PinnConfig, network: keras.Model, probe, input_scale: float, log_intensity_scale: float):
        self.config = config  # effective PinnConfig
        self.network = network  # keras.Model from build_network
        self.probe = tf.constant(np.asarray(probe), dtype=tf.complex64)  # (N, N)
        self.input_scale = float(input_scale)  # r: the network sees r * X
        self.log_intensity_scale = tf.Variable(
            np.float32(log_intensity_scale), trainable=True, name=LOG_INTENSITY_SCALE
        )  # log g, trainable
        self._convs = {spec.name: network.get_layer(spec.name) for spec in conv_specs(config.n_filters_scale)}

    @property
    def n(self) -> int:
        """N, the patch size (the probe's side)."""
        return int(self.probe.shape[0])

    def canonical_variables(self) -> dict:
        """Canonical name -> trainable variable, in canonical (initializer) order, log g last."""
        variables = {}
        for name, layer in self._convs.items():
            variables[f"{name}.kernel"] = layer.kernel
            variables[f"{name}.bias"] = layer.bias
        variables[LOG_INTENSITY_SCALE] = self.log_intensity_scale
        return variables

    @property
    def trainable_variables(self) -> list:
        return list(self.canonical_variables().values())

    def object_patches(self, diffraction):
        """O = pad(A exp(i phi)) by N/4 per side: complex64 (B, N, N, C) from raw amplitudes."""
        x = tf.convert_to_tensor(diffraction, dtype=tf.float32) * tf.constant(self.input_scale, tf.float32)
        b, c, n = tf.shape(x)[0], tf.shape(x)[3], self.n
        # Each member on its own (§7): (B, N, N, C) -> (B*C, N, N, 1); the C patterns meet only in the merge.
        members = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [b * c, n, n, 1])
        amplitude, phase = (
            tf.transpose(tf.reshape(t, [b, c, n // 2, n // 2]), [0, 2, 3, 1]) for t in self.network(members)
        )
        obj = tf.complex(amplitude * tf.math.cos(phase), amplitude * tf.math.sin(phase))
        pad = self.n // 4
        return tf.pad(obj, [[0, 0], [pad, pad], [pad, pad], [0, 0]])

    def object_ext(self, diffraction, offsets_px):
        """O_ext: the patches merged per group when object_big, else the patches themselves."""
        obj = self.object_patches(diffraction)
        return physics.extend_objects(obj, offsets_px) if self.config.object_big else obj

    def far_field(self, diffraction, offsets_px):
        """Psi of every member, complex64 (B, N, N, C)."""
        return physics.far_field(self.object_ext(diffraction, offsets_px), self.probe)

    def get_canonical_weights(self) -> dict:
        return {
            name: to_canonical_layout(name, variable.numpy()) for name, variable in self.canonical_variables().items()
        }

    def set_canonical_weights(self, weights: dict) -> None:
        check_canonical(weights, self.config.n_filters_scale, source="set_canonical_weights")
        for name, variable in self.canonical_variables().items():
            variable.assign(to_keras_layout(name, weights[name]))


def create_model(
    config: PinnConfig, probe, input_scale: float, log_intensity_scale: float, weights: dict | None = None
) -> PinnModel:
    """A PinnModel with `weights` (canonical), or the shared initializer's weights for config.seed.

    A `log_intensity_scale` inside `weights` wins over the argument (backends.common.weights.starting_weights).
    """
    network = build_network(config.n_filters_scale, config.amp_activation)
    model = PinnModel(config, network, probe, input_scale, log_intensity_scale)
    model.set_canonical_weights(starting_weights(config, log_intensity_scale, weights))
    return model


def model_for_data(config: PinnConfig, data) -> PinnModel:
    """Scales from `data` (a Dataset), initial weights from the shared initializer."""
    input_scale, log_g0 = compute_scales(data.diffraction, data.probe, config.amp_activation)
    return create_model(config, data.probe, input_scale, log_g0)
