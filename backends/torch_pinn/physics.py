"""Physics of the forward model (docs/spec.md §6-§8) in torch, channels-first.

Counterpart of backends/tf_pinn/physics.py. Images are (B, C, H, W); shifts
and offsets are (B, C, 2) as (x, y) in pixels, one per image. Translation is
written as explicit 4-tap bilinear gathers (no grid_sample), so an integer
shift is exact and the zero fill is explicit.
"""

from __future__ import annotations

import torch

from backends.common.contract import MERGE_EPSILON
from backends.common.geometry import check_offsets  # a shape check, not numerics: shared, re-exported here
from backends.common.validation import check_translate_inputs


def _taps(shift: torch.Tensor, size: int) -> tuple[list, list]:
    """Source indices and weights along one axis: out(x) = (1-f) img(x-i) + f img(x-i-1).

    shift (B, C) float; returns for tap t in {0, 1} an index (B, C, size) int64
    (clamped into range) and a float64 weight (B, C, size) that is zero where the
    source lies outside the image.
    """
    d = shift.to(torch.float64)
    whole = torch.floor(d)
    frac = d - whole
    dest = torch.arange(size, dtype=torch.float64, device=shift.device)
    indices, weights = [], []
    for tap, weight in ((0, 1.0 - frac), (1, frac)):
        src = dest - whole[..., None] - tap  # exact: small integers in float64
        inside = (src >= 0) & (src <= size - 1)
        indices.append(src.clamp(0, size - 1).to(torch.int64))
        weights.append(torch.where(inside, weight[..., None], torch.zeros((), dtype=torch.float64)))
    return indices, weights


def _translate_real(images: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    rows, wrow = _taps(shifts_px[..., 1], h)
    cols, wcol = _taps(shifts_px[..., 0], w)
    out = None
    for ri, wr in zip(rows, wrow):
        gathered_rows = torch.gather(images, 2, ri[..., :, None].expand(b, c, h, w))
        for ci, wc in zip(cols, wcol):
            value = torch.gather(gathered_rows, 3, ci[..., None, :].expand(b, c, h, w))
            weight = (wr[..., :, None] * wc[..., None, :]).to(images.dtype)
            term = weight * value
            out = term if out is None else out + term
    return out


def translate(images: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """T(img, d)(y, x) = img(y - d_y, x - d_x), bilinear, zero outside.

    images (B, C, H, W) float32 or complex64; shifts_px (B, C, 2) float32 as (x, y) pixels.
    Complex images are shifted by real and imaginary part.
    """
    check_translate_inputs(
        images.shape, shifts_px.shape, _dtype_name(images), _dtype_name(shifts_px), channels_last=False
    )
    if images.is_complex():
        return torch.complex(_translate_real(images.real, shifts_px), _translate_real(images.imag, shifts_px))
    return _translate_real(images, shifts_px)


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def weight_window(n: int) -> torch.Tensor:
    """(n, n) float32 W: 1 out to radius N/4 - 1.5 from pixel (N/2, N/2), falling linearly to 0 at N/4 - 0.5.

    Where the default probe has power (docs/spec.md §2, §8): patches are weighted by W when a group
    is merged and when the object is stitched, so output the data never constrains is never averaged in.
    """
    offset = torch.arange(n, dtype=torch.float64) - n / 2
    r = torch.hypot(offset[:, None], offset[None, :])
    return torch.clamp(n / 4 - 0.5 - r, 0.0, 1.0).to(torch.float32)


def _pad(images: torch.Tensor, p: int) -> torch.Tensor:
    """Zero-pad the last two axes by p on each side (real or complex)."""
    h, w = images.shape[-2:]
    out = torch.zeros((*images.shape[:-2], h + 2 * p, w + 2 * p), dtype=images.dtype, device=images.device)
    out[..., p : p + h, p : p + w] = images
    return out


def extend_objects(object_patches: torch.Tensor, offsets_px: torch.Tensor) -> torch.Tensor:
    """object_big: merge a group's patches on one 3N/2 canvas and cut each member's view back out.

    M = sum_c T(W O_c, +d_c) / (sum_c T(W, +d_c) + 1e-3); O_ext_c = centre N x N of T(M, -d_c).
    object_patches (B, C, N, N) complex; offsets_px (B, C, 2). A group whose offsets
    exceed N/2 in x or y would leave the canvas and is refused.
    """
    b, c, n, _ = object_patches.shape
    check_offsets(offsets_px.detach().cpu().numpy(), n)
    pad = n // 4
    window = weight_window(n).to(object_patches.device)
    big = _pad(object_patches * window, pad)
    mask = _pad(window, pad).expand(b, c, n + 2 * pad, n + 2 * pad)
    numerator = translate(big, offsets_px).sum(dim=1, keepdim=True)
    denominator = translate(mask, offsets_px).sum(dim=1, keepdim=True) + MERGE_EPSILON
    merged = numerator / denominator
    views = translate(merged.expand(b, c, *merged.shape[-2:]), -offsets_px)
    return views[..., pad : pad + n, pad : pad + n]


def far_field(object_ext: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Psi = fftshift(F_ortho(P * O_ext)) over the last two axes, complex64 (B, C, N, N)."""
    exit_wave = probe.to(torch.complex64) * object_ext.to(torch.complex64)
    return torch.fft.fftshift(torch.fft.fft2(exit_wave, norm="ortho"), dim=(-2, -1))


def forward_model(
    object_patches: torch.Tensor, probe: torch.Tensor, offsets_px: torch.Tensor, object_big: bool
) -> torch.Tensor:
    """|Psi| as float32 (B, C, N, N); patches are merged first when object_big."""
    ext = extend_objects(object_patches, offsets_px) if object_big else object_patches
    return far_field(ext, probe).abs()
