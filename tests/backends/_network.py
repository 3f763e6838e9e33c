"""The §7 network in numpy float64, written from docs/spec.md loop by loop, for tests/backends/test_model.py.

The float64 referee (adapters/referee.py) does not run the network, so this is
the one numpy reference of it; everything else the tests compare against is
the referee's.
"""

from __future__ import annotations

import math

import numpy as np


def conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x (Cin, H, W), kernel (Cout, Cin, 3, 3): cross-correlation, zero padding 1, plus bias."""
    cin, h, w = x.shape
    padded = np.zeros((cin, h + 2, w + 2))
    padded[:, 1:-1, 1:-1] = x
    out = np.zeros((kernel.shape[0], h, w))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,chw->ohw", kernel[:, :, i, j], padded[:, i : i + h, j : j + w])
    return out + bias[:, None, None]


def network(x: np.ndarray, weights: dict, amp_activation: str) -> tuple[np.ndarray, np.ndarray]:
    """§7 on one group x (C, N, N) with canonical weights, each member pattern on its own;
    returns amplitude and phase (C, N/2, N/2)."""
    members = [_one_pattern(x[c : c + 1], weights, amp_activation) for c in range(x.shape[0])]
    return np.concatenate([m[0] for m in members]), np.concatenate([m[1] for m in members])


def _one_pattern(x: np.ndarray, weights: dict, amp_activation: str) -> tuple[np.ndarray, np.ndarray]:
    """x (1, N, N) -> amplitude and phase (1, N/2, N/2)."""

    def conv(name, v):
        return conv3x3(v, weights[f"{name}.kernel"].astype(np.float64), weights[f"{name}.bias"].astype(np.float64))

    def relu(v):
        return np.maximum(v, 0.0)

    v = x.astype(np.float64)
    for level in range(3):
        v = relu(conv(f"encoder.{level}.conv1", relu(conv(f"encoder.{level}.conv0", v))))
        c, h, w = v.shape
        v = v.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    heads = {}
    for decoder in ("decoder_amp", "decoder_phase"):
        u = v
        for level in range(2):
            u = u.repeat(2, axis=1).repeat(2, axis=2)
            u = relu(conv(f"{decoder}.{level}.conv1", relu(conv(f"{decoder}.{level}.conv0", u))))
        heads[decoder] = conv(f"{decoder}.head", u)
    raw = heads["decoder_amp"]
    amp = 1 / (1 + np.exp(-raw)) if amp_activation == "sigmoid" else np.log1p(np.exp(raw))
    return amp, math.pi * np.tanh(heads["decoder_phase"])
