"""Plain numpy float64 references for the torch backend's tests (docs/spec.md §6-8, §11).

Written from the spec's formulas, loop by loop, independently of the backend
code; tests compare the backend against these, never against its own output.
"""

from __future__ import annotations

import math

import numpy as np


def translate(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """T(img, d)(y, x) = img(y - dy, x - dx), bilinear, zero outside (one 2-D image)."""
    h, w = img.shape
    ix, fx = math.floor(dx), dx - math.floor(dx)
    iy, fy = math.floor(dy), dy - math.floor(dy)

    def at(r, c):
        return img[r, c] if 0 <= r < h and 0 <= c < w else 0.0

    out = np.zeros((h, w), dtype=np.complex128 if np.iscomplexobj(img) else np.float64)
    for y in range(h):
        for x in range(w):
            out[y, x] = ((1 - fy) * (1 - fx) * at(y - iy, x - ix) + (1 - fy) * fx * at(y - iy, x - ix - 1)
                         + fy * (1 - fx) * at(y - iy - 1, x - ix) + fy * fx * at(y - iy - 1, x - ix - 1))
    return out


def support(n: int) -> np.ndarray:
    s = np.zeros((n, n))
    s[n // 4:3 * n // 4, n // 4:3 * n // 4] = 1.0
    return s


def extend_objects(patches: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """§8 object_big for one group: patches (C, N, N), offsets (C, 2) as (x, y)."""
    c, n, _ = patches.shape
    p = n // 4
    big = np.zeros((c, n + 2 * p, n + 2 * p), dtype=np.complex128)
    big[:, p:p + n, p:p + n] = patches
    mask = np.zeros((n + 2 * p, n + 2 * p))
    mask[p:p + n, p:p + n] = support(n)
    num = sum(translate(big[k], *offsets[k]) for k in range(c))
    den = sum(translate(mask, *offsets[k]) for k in range(c)) + 1e-3
    merged = num / den
    return np.stack([translate(merged, -offsets[k][0], -offsets[k][1])[p:p + n, p:p + n] for k in range(c)])


def far_field(obj: np.ndarray, probe: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(probe * obj, norm="ortho"), axes=(-2, -1))


def conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x (Cin, H, W), kernel (Cout, Cin, 3, 3): cross-correlation, zero padding 1, plus bias."""
    cin, h, w = x.shape
    padded = np.zeros((cin, h + 2, w + 2))
    padded[:, 1:-1, 1:-1] = x
    out = np.zeros((kernel.shape[0], h, w))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,chw->ohw", kernel[:, :, i, j], padded[:, i:i + h, j:j + w])
    return out + bias[:, None, None]


def network(x: np.ndarray, weights: dict, amp_activation: str) -> tuple[np.ndarray, np.ndarray]:
    """§7 on one sample x (C, N, N) with canonical weights; returns amplitude and phase (C, N/2, N/2)."""
    def conv(name, v):
        return conv3x3(v, weights[f"{name}.kernel"].astype(np.float64), weights[f"{name}.bias"].astype(np.float64))

    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
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


def stitch(patches: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, tuple]:
    """§11 written out: canvas from floor(min), (N+1)-tiles shifted by frac(p), sum / mask sum."""
    p_count, n, _ = patches.shape
    fx, fy = np.floor(x), np.floor(y)
    x0, y0 = fx.min(), fy.min()
    height, width = int(fy.max() - y0) + n + 1, int(fx.max() - x0) + n + 1
    total = np.zeros((height, width), dtype=np.complex128)
    weight = np.zeros((height, width))
    s = support(n)
    for k in range(p_count):
        tile = np.zeros((n + 1, n + 1), dtype=np.complex128)
        tile[:n, :n] = patches[k] * s
        tile_mask = np.zeros((n + 1, n + 1))
        tile_mask[:n, :n] = s
        r, c = int(fy[k] - y0), int(fx[k] - x0)
        total[r:r + n + 1, c:c + n + 1] += translate(tile, x[k] - fx[k], y[k] - fy[k])
        weight[r:r + n + 1, c:c + n + 1] += translate(tile_mask, x[k] - fx[k], y[k] - fy[k])
    obj = np.where(weight >= 1e-3, total / np.where(weight >= 1e-3, weight, 1.0), 0)
    return obj, (x0 - n // 2, y0 - n // 2)
