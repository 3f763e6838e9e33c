"""Canonical weight names, shapes and the shared initializer (docs/spec.md §7).

Canonical weights are a flat mapping name -> float32 numpy array: kernels in
(out, in, kh, kw) layout, biases (out,), and the scalar `log_intensity_scale`.
Each backend converts to and from its own layout. Listing order is the
initializer's draw order, so it is part of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_INTENSITY_SCALE = "log_intensity_scale"
ENCODER_LEVELS = 3
DECODER_LEVELS = 2
DECODERS = ("decoder_amp", "decoder_phase")


@dataclass(frozen=True)
class ConvSpec:
    """One 3x3 convolution of the network."""

    name: str  # canonical prefix, e.g. "encoder.0.conv1"; weights are name.kernel and name.bias
    in_channels: int
    out_channels: int

    @property
    def kernel_shape(self) -> tuple:
        return (self.out_channels, self.in_channels, 3, 3)


def conv_specs(n_filters_scale: int) -> list[ConvSpec]:
    """Every convolution in initializer order: encoder levels, amplitude decoder, phase decoder.

    The network sees one pattern at a time (one channel in, one per head out), so no shape depends
    on the gridsize (contract v3, docs/spec.md §7).
    """
    f = 16 * n_filters_scale
    specs, width = [], 1
    for level in range(ENCODER_LEVELS):
        out = f * 2**level
        specs += [ConvSpec(f"encoder.{level}.conv0", width, out), ConvSpec(f"encoder.{level}.conv1", out, out)]
        width = out
    bottleneck = width
    for decoder in DECODERS:
        width = bottleneck
        for level in range(DECODER_LEVELS):
            out = f * 2 ** (1 - level)
            specs += [ConvSpec(f"{decoder}.{level}.conv0", width, out), ConvSpec(f"{decoder}.{level}.conv1", out, out)]
            width = out
        specs.append(ConvSpec(f"{decoder}.head", width, 1))
    return specs


def canonical_shapes(n_filters_scale: int) -> dict[str, tuple]:
    """name -> shape of every canonical weight, log_intensity_scale last."""
    shapes = {}
    for spec in conv_specs(n_filters_scale):
        shapes[f"{spec.name}.kernel"] = spec.kernel_shape
        shapes[f"{spec.name}.bias"] = (spec.out_channels,)
    shapes[LOG_INTENSITY_SCALE] = ()
    return shapes


def initial_weights(seed: int, n_filters_scale: int, log_intensity_scale: float) -> dict:
    """Glorot-uniform kernels from `default_rng(seed)` (its own stream), zero biases."""
    rng = np.random.default_rng(seed)
    weights = {}
    for spec in conv_specs(n_filters_scale):
        lim = np.sqrt(6.0 / (9 * (spec.in_channels + spec.out_channels)))
        weights[f"{spec.name}.kernel"] = rng.uniform(-lim, lim, spec.kernel_shape).astype(np.float32)
        weights[f"{spec.name}.bias"] = np.zeros(spec.out_channels, dtype=np.float32)
    weights[LOG_INTENSITY_SCALE] = np.asarray(log_intensity_scale, dtype=np.float32)
    return weights


def check_canonical(weights: dict, n_filters_scale: int, *, source: str = "weights") -> None:
    """Raise ValueError naming the first missing, extra or misshapen tensor."""
    want = canonical_shapes(n_filters_scale)
    missing = [k for k in want if k not in weights]
    extra = [k for k in weights if k not in want]
    if missing or extra:
        raise ValueError(
            f"{source}: canonical weights do not match the network "
            f"(n_filters_scale={n_filters_scale}); missing {missing[:5]}, extra {extra[:5]}"
        )
    for name, shape in want.items():
        got = tuple(np.shape(weights[name]))
        if got != shape:
            raise ValueError(f"{source}: weight '{name}' has shape {got}, expected {shape}")


def starting_weights(config, log_intensity_scale: float, weights: dict | None = None) -> dict:
    """The canonical weights create_model sets: `weights`, else the initializer's for config.seed.

    A `log_intensity_scale` inside `weights` wins over the argument; the caller's dict is left alone.
    """
    if weights is None:
        return initial_weights(config.seed, config.n_filters_scale, log_intensity_scale)
    if LOG_INTENSITY_SCALE not in weights:
        return {**weights, LOG_INTENSITY_SCALE: np.float32(log_intensity_scale)}
    return weights
