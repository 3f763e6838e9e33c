"""Plain numpy float64 references of the contract's formulas, written from docs/spec.md, for the tests only."""

from __future__ import annotations

import math

import numpy as np


def translate_np(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """out(y, x) = sum over the 4 taps of img(y - iy - a, x - ix - b), zero outside (§6)."""
    h, w = img.shape
    ix, iy = math.floor(dx), math.floor(dy)
    fx, fy = dx - ix, dy - iy
    out = np.zeros(img.shape, dtype=np.result_type(img.dtype, np.float64))
    for y in range(h):
        for x in range(w):
            acc = 0.0
            for a, wa in ((0, 1 - fy), (1, fy)):
                for b, wb in ((0, 1 - fx), (1, fx)):
                    sy, sx = y - iy - a, x - ix - b
                    if 0 <= sy < h and 0 <= sx < w:
                        acc = acc + wa * wb * img[sy, sx]
            out[y, x] = acc
    return out


def support_np(n: int) -> np.ndarray:
    s = np.zeros((n, n))
    s[n // 4:n // 4 + n // 2, n // 4:n // 4 + n // 2] = 1.0
    return s


def extend_np(patches: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """object_big merge of one group (§8): patches (C, N, N) complex, offsets (C, 2) (x, y)."""
    c, n, _ = patches.shape
    pad = n // 4
    canvas = np.pad(patches.astype(np.complex128), ((0, 0), (pad, pad), (pad, pad)))
    mask = np.pad(support_np(n), pad)
    num = sum(translate_np(canvas[k], *offsets[k]) for k in range(c))
    den = sum(translate_np(mask, *offsets[k]) for k in range(c))
    merged = num / (den + 1e-3)
    return np.stack([translate_np(merged, -offsets[k][0], -offsets[k][1])[pad:pad + n, pad:pad + n]
                     for k in range(c)])


def far_field_np(obj: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """fftshift(F_ortho(P * O)) over the last two axes."""
    return np.fft.fftshift(np.fft.fft2(probe * obj.astype(np.complex128), norm="ortho"), axes=(-2, -1))


def conv3x3_np(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero padding 1: x (H, W, Cin), canonical kernel (out, in, 3, 3)."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[0])) + bias
    for i in range(3):
        for j in range(3):
            out += padded[i:i + h, j:j + w, :] @ kernel[:, :, i, j].T.astype(np.float64)
    return out


def network_np(x: np.ndarray, weights: dict, amp_activation: str):
    """The §7 network on one (N, N, C) input in float64: amplitude and phase (N/2, N/2, C)."""
    def conv(name, t, relu=True):
        out = conv3x3_np(t, weights[f"{name}.kernel"], weights[f"{name}.bias"])
        return np.maximum(out, 0) if relu else out

    t = x.astype(np.float64)
    for level in range(3):
        t = conv(f"encoder.{level}.conv1", conv(f"encoder.{level}.conv0", t))
        h, w, c = t.shape
        t = t.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    outs = {}
    for dec in ("decoder_amp", "decoder_phase"):
        u = t
        for level in range(2):
            u = u.repeat(2, axis=0).repeat(2, axis=1)
            u = conv(f"{dec}.{level}.conv1", conv(f"{dec}.{level}.conv0", u))
        outs[dec] = conv(f"{dec}.head", u, relu=False)
    a = outs["decoder_amp"]
    amp = 1 / (1 + np.exp(-a)) if amp_activation == "sigmoid" else np.log1p(np.exp(a))
    return amp, np.pi * np.tanh(outs["decoder_phase"])
