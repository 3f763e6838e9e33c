"""The network and the model around it (docs/spec.md §5, §7): torch, channels-first.

Counterpart of backends/tf_pinn/model.py. Submodule names follow the
canonical weight names (`encoder.0.conv0`, `decoder_amp.head`, ...), so the
only conversion is `.weight` <-> `.kernel`: canonical kernels are already
(out, in, kh, kw), torch's own layout. Framework-specific, without a TF
counterpart: `canonical_name` (TF converts layouts with `to_keras_layout` /
`to_canonical_layout` instead) and the nn.Module pieces `ConvBlock`,
`Decoder`, `PinnNetwork` (Keras builds the same graph functionally).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from backends.common.config import AMP_ACTIVATIONS, PinnConfig
from backends.common.dataset import Dataset
from backends.common.validation import check_choice, check_scales_inputs
from backends.common.weights import (
    DECODER_LEVELS,
    ENCODER_LEVELS,
    LOG_INTENSITY_SCALE,
    check_canonical,
    starting_weights,
)
from backends.torch_pinn import physics

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "softplus": nn.functional.softplus}  # keys: AMP_ACTIVATIONS


def amp_activation_at_zero(amp_activation: str) -> float:
    """a0 = amp_activation(0) in float64: 0.5 for sigmoid, ln 2 for softplus."""
    check_choice("amp_activation", amp_activation, AMP_ACTIVATIONS)
    return float(_ACTIVATIONS[amp_activation](torch.zeros((), dtype=torch.float64)))


def compute_scales(diffraction, probe, amp_activation: str) -> tuple[float, float]:
    """(input_scale r, log g0), float64: r = (N/2)/sqrt(mean_m sum X_m^2);
    log g0 = 1/2 log(mean_m sum X_m^2 / (a0^2 sum_S |P|^2))."""
    x = _to_tensor(diffraction, torch.float64)
    p = _to_tensor(probe, torch.complex128)
    n = check_scales_inputs(x.shape, p.shape)
    mean_power = (x * x).sum(dim=(-2, -1)).mean()
    s = slice(n // 4, n // 4 + n // 2)
    probe_power = (p.real * p.real + p.imag * p.imag)[s, s].sum()
    if float(mean_power) <= 0.0:
        raise ValueError("diffraction is all zero: the input scale r = (N/2) / sqrt(mean sum X^2) is undefined")
    if float(probe_power) <= 0.0:
        raise ValueError("probe has no power inside the support S: the intensity scale is undefined")
    a0 = amp_activation_at_zero(amp_activation)
    input_scale = (n / 2) / torch.sqrt(mean_power)
    log_scale = 0.5 * torch.log(mean_power / (a0 * a0 * probe_power))
    return float(input_scale), float(log_scale)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with ReLU: `conv0`, `conv1`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv1(torch.relu(self.conv0(x))))


class Decoder(nn.Module):
    """Levels `0`, `1` (nearest x2 upsample then a ConvBlock) and a `head` convolution."""

    def __init__(self, in_channels: int, f: int):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        width = in_channels
        for level in range(DECODER_LEVELS):
            out = f * 2 ** (1 - level)
            self.add_module(str(level), ConvBlock(width, out))
            width = out
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x):
        for level in range(DECODER_LEVELS):
            x = getattr(self, str(level))(self.upsample(x))
        return self.head(x)


class PinnNetwork(nn.Module):
    """Encoder (N -> N/8) and amplitude / phase decoders (N/8 -> N/2), one pattern per batch row."""

    def __init__(self, n_filters_scale: int, amp_activation: str):
        super().__init__()
        f = 16 * n_filters_scale
        self.amp_activation = amp_activation
        blocks, width = [], 1
        for level in range(ENCODER_LEVELS):
            blocks.append(ConvBlock(width, f * 2**level))
            width = f * 2**level
        self.encoder = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.decoder_amp = Decoder(width, f)
        self.decoder_phase = Decoder(width, f)

    def forward(self, x):
        """x (P, 1, N, N) scaled amplitudes -> amplitude, phase, each (P, 1, N/2, N/2)."""
        for block in self.encoder:
            x = self.pool(block(x))
        amp = self.decoder_amp(x)
        amp = torch.sigmoid(amp) if self.amp_activation == "sigmoid" else nn.functional.softplus(amp)
        phase = math.pi * torch.tanh(self.decoder_phase(x))
        return amp, phase


def build_network(n_filters_scale: int, amp_activation: str) -> PinnNetwork:
    """Encoder and two decoders: (P, 1, N, N) scaled amplitudes -> amplitude and phase (P, 1, N/2, N/2)."""
    check_choice("amp_activation", amp_activation, AMP_ACTIVATIONS)
    return PinnNetwork(n_filters_scale, amp_activation)


def _to_tensor(value, dtype) -> torch.Tensor:
    if torch.is_tensor(value):
        return value.to(dtype)
    return torch.from_numpy(np.ascontiguousarray(value)).to(dtype)


class PinnModel(nn.Module):
    """Network, probe, input scale r and the trainable log intensity scale log g."""

    def __init__(self, config: PinnConfig, network: PinnNetwork, probe, input_scale: float, log_intensity_scale: float):
        super().__init__()
        self.config = config  # effective PinnConfig
        self.network = network  # PinnNetwork from build_network
        self.register_buffer("probe", _to_tensor(probe, torch.complex64).clone())  # (N, N)
        self.input_scale = float(input_scale)  # r: the network sees r * X
        self.log_intensity_scale = nn.Parameter(torch.tensor(float(log_intensity_scale), dtype=torch.float32))

    @property
    def n(self) -> int:
        """N, the patch size (the probe's side)."""
        return int(self.probe.shape[-1])

    def object_patches(self, diffraction: torch.Tensor) -> torch.Tensor:
        """O_c = A_c exp(i phi_c) zero-padded by N/4 to N x N: complex64 (B, C, N, N)."""
        x = _to_tensor(diffraction, torch.float32)
        b, c, n, _ = x.shape
        # Each member on its own (§7): the C patterns of a group meet only in the merge.
        amp, phase = self.network(x.reshape(b * c, 1, n, n) * torch.tensor(self.input_scale, dtype=torch.float32))
        amp, phase = amp.reshape(b, c, n // 2, n // 2), phase.reshape(b, c, n // 2, n // 2)
        pad = self.n // 4
        amp = nn.functional.pad(amp, (pad, pad, pad, pad))
        phase = nn.functional.pad(phase, (pad, pad, pad, pad))
        return torch.complex(amp * torch.cos(phase), amp * torch.sin(phase))

    def object_ext(self, diffraction: torch.Tensor, offsets_px: torch.Tensor) -> torch.Tensor:
        """O_ext: the patches merged per group when config.object_big, else the patches."""
        patches = self.object_patches(diffraction)
        if self.config.object_big:
            return physics.extend_objects(patches, _to_tensor(offsets_px, torch.float32))
        return patches

    def far_field(self, diffraction: torch.Tensor, offsets_px: torch.Tensor) -> torch.Tensor:
        """Psi = fftshift(F_ortho(P * O_ext)): complex64 (B, C, N, N)."""
        return physics.far_field(self.object_ext(diffraction, offsets_px), self.probe)

    def canonical_variables(self) -> dict:
        """Canonical name -> trainable parameter, in canonical (initializer) order, log g last."""
        variables = {canonical_name(name): param for name, param in self.network.named_parameters()}
        variables[LOG_INTENSITY_SCALE] = self.log_intensity_scale
        return variables

    def get_canonical_weights(self) -> dict:
        """name -> float32 numpy copy, canonical names and layout."""
        return {
            name: param.detach().cpu().numpy().astype(np.float32, copy=True)
            for name, param in self.canonical_variables().items()
        }

    def set_canonical_weights(self, weights: dict) -> None:
        """Copy canonical weights in; names and shapes are checked first."""
        check_canonical(weights, self.config.n_filters_scale, source="set_canonical_weights")
        with torch.no_grad():
            for name, param in self.canonical_variables().items():
                param.copy_(torch.from_numpy(np.asarray(weights[name], dtype=np.float32)))


def canonical_name(torch_name: str) -> str:
    """`encoder.0.conv0.weight` -> `encoder.0.conv0.kernel`; biases keep their name."""
    prefix, _, kind = torch_name.rpartition(".")
    return f"{prefix}.{'kernel' if kind == 'weight' else kind}"


def create_model(
    config: PinnConfig, probe, input_scale: float, log_intensity_scale: float, weights: dict | None = None
) -> PinnModel:
    """A model with `weights` (canonical), or the shared initial weights of config.seed.

    A `log_intensity_scale` inside `weights` wins over the argument (backends.common.weights.starting_weights).
    """
    network = build_network(config.n_filters_scale, config.amp_activation)
    model = PinnModel(config, network, probe, input_scale, log_intensity_scale)
    model.set_canonical_weights(starting_weights(config, log_intensity_scale, weights))
    return model


def model_for_data(config: PinnConfig, data: Dataset) -> PinnModel:
    """Scales from `data`, initial weights from config.seed (backends.common.weights)."""
    input_scale, log_scale = compute_scales(data.diffraction, data.probe, config.amp_activation)
    return create_model(config, data.probe, input_scale, log_scale)
