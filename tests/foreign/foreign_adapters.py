"""Two adapters for code that is not ours: the worked example of docs/adding_a_backend.md.

The "foreign package" below (FOREIGN CODE) stands in for another team's implementation. It is
tiny numpy, built on adapters/referee.py's public functions as its library, but shaped the way
foreign code is: arrays channel-last (NHWC: batch, height, width, channel), group offsets with
the opposite sign (their offset is centre - position; ours, docs/spec.md, is position - centre),
float32 results, its own config names ("K", "grid") and defaults, a field of its own
(intensity_scale_trainable, which becomes "x.intensity_scale_trainable" in the harness), and
patch size N = 64 only. Everything it does differently is converted in the adapters (ADAPTERS),
the only part a team writes for the harness.

ForeignA does config, data, grouping, translation, forward and loss, plus the cheap numpy
stages optimizer and reconstruction (stitch only). ForeignB does the first six only. ForeignB's
factory defaults K to 6 where ours is 4: a planted split at the config stage. The environment
variable FOREIGN_B_DEFAULT_K changes that default (the tests use it to "fix" the split), and
FOREIGN_B_OFFSET_SIGN_BUG=1 makes ForeignB's adapter forget to flip the offset sign (a forward
bug, for the knock-on tests). Neither is something a real adapter would have.

Registered by tests/foreign/test_foreign_pair.py as entry points foreignA and foreignB
(`foreign_adapters:ForeignA`, with this folder on sys.path).
"""

from __future__ import annotations

import os

import numpy as np

from adapters import referee as lib
from adapters.base import Adapter
from backends.common.config import canonical_defaults

# ======================================================================================
# FOREIGN CODE: what the other team ships (channel-last, centre - position, N = 64 only)
# ======================================================================================

SUPPORTED_N = 64
RENAMED = {"neighbor_count": "K", "gridsize": "grid"}  # canonical name -> their name
OWN_FIELDS = {"intensity_scale_trainable": True}  # fields with no canonical counterpart


def require_n(n: int, what: str) -> None:
    if n != SUPPORTED_N:
        raise ValueError(f"{what}: this implementation supports patch size N = {SUPPORTED_N} only, got N = {n}")


def make_foreign_config(overrides: dict, defaults: dict) -> dict:
    """Their factory: their field names, their defaults, then the caller's overrides."""
    cfg = {RENAMED.get(k, k): v for k, v in canonical_defaults().items()}
    cfg["object_big"] = None  # resolved below, from the grid
    cfg.update(OWN_FIELDS)
    cfg.update(defaults)
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise KeyError(f"unknown config field(s) {unknown}")
    cfg.update(overrides)
    if cfg["object_big"] is None:
        cfg["object_big"] = cfg["grid"] > 1
    return cfg


def read_scan(path) -> dict:
    """Their reader: diffraction (M, N, N, 1) channel-last, coordinates, probe."""
    with np.load(path) as f:
        diff = np.asarray(f["diffraction"], np.float32)[..., None]
        out = {
            "diff": diff,
            "x": np.asarray(f["xcoords"], np.float64),
            "y": np.asarray(f["ycoords"], np.float64),
            "probe": np.asarray(f["probeGuess"], np.complex64),
        }
    require_n(diff.shape[1], "read_scan")
    return out


def make_groups(x, y, cfg: dict, inference: bool) -> dict:
    """Their grouping: offsets are centre - position."""
    canonical = {
        **{k: v for k, v in cfg.items() if k not in OWN_FIELDS and k not in RENAMED.values()},
        **{ours: cfg[theirs] for ours, theirs in RENAMED.items()},
    }
    g = lib.group_positions(x, y, canonical, inference)
    return {
        "idx": g["nn_indices"],
        "coords": g["coords_px"],
        "centre": g["center_px"],
        "offsets": g["center_px"][:, None, :] - g["coords_px"],
    }


def _nchw(a):
    return np.moveaxis(a, -1, 1)


def _nhwc(a):
    return np.moveaxis(a, 1, -1)


def shift_images(images_nhwc, shifts):
    require_n(images_nhwc.shape[1], "shift_images")
    return _nhwc(lib.translate(_nchw(images_nhwc), shifts)).astype(np.complex64)


def diffract(patches_nhwc, probe, offsets, merge: bool) -> dict:
    """Their forward model; `offsets` centre - position (their convention)."""
    require_n(patches_nhwc.shape[1], "diffract")
    obj = _nchw(np.asarray(patches_nhwc, np.complex128))
    ext = lib.extend_objects(obj, -np.asarray(offsets, np.float64)) if merge else obj
    psi = lib.far_field(ext, probe)
    return {"psi": _nhwc(psi).astype(np.complex64), "amp": _nhwc(np.abs(psi)).astype(np.float32)}


def deviance(psi_nhwc, observed_nhwc, log_scale, name) -> np.float32:
    require_n(psi_nhwc.shape[1], "deviance")
    return np.float32(lib.compute_loss(psi_nhwc, observed_nhwc, log_scale, name))


def adam(weights, grads_per_step, lr, eps) -> dict:
    return {k: v.astype(np.float32) for k, v in lib.adam_steps(weights, grads_per_step, lr, eps).items()}


def stitch(patches, x, y) -> dict:
    require_n(np.shape(patches)[-1], "stitch")
    obj, origin = lib.stitch_patches(patches, x, y)
    return {"obj": obj.astype(np.complex64), "origin": origin}


# ======================================================================================
# ADAPTERS: the part a team writes for the harness (canonical layout in and out)
# ======================================================================================


class _ForeignAdapter(Adapter):
    factory_defaults: dict = {}

    def versions(self) -> dict:
        return {"numpy": np.__version__, "foreign": "0.1"}

    def defaults(self) -> dict:
        return dict(self.factory_defaults)

    # config: their names and defaults -> canonical names, their own fields under "x."
    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        if data_path is not None:  # their factory needs the data: it refuses N != 64 up front
            with np.load(data_path) as f:
                require_n(f["diffraction"].shape[-1], f"{self.name}.resolve_config")
        cfg = make_foreign_config({RENAMED.get(k, k): v for k, v in overrides.items()}, self.defaults())
        theirs = {v: k for k, v in RENAMED.items()}
        return {(f"x.{k}" if k in OWN_FIELDS else theirs.get(k, k)): v for k, v in cfg.items()}

    def load_dataset(self, path) -> dict:
        scan = read_scan(path)
        return {"diffraction": scan["diff"][..., 0], "xcoords": scan["x"], "ycoords": scan["y"], "probe": scan["probe"]}

    def group(self, xcoords, ycoords, config, inference=False) -> dict:
        cfg = {RENAMED.get(k, k): v for k, v in config.items()}
        g = make_groups(xcoords, ycoords, cfg, inference)
        return {
            "nn_indices": g["idx"],
            "coords_px": g["coords"],
            "center_px": g["centre"],
            "offsets_px": -g["offsets"],
        }  # theirs: centre - position; ours: position - centre

    def translate(self, images, shifts_px):
        return _nchw(shift_images(_nhwc(np.asarray(images)), shifts_px))  # (B,C,H,W) <-> (B,H,W,C)

    def _their_offsets(self, offsets_px):
        return -np.asarray(offsets_px)

    def forward(self, object_patches, probe, offsets_px, object_big) -> dict:
        out = diffract(_nhwc(np.asarray(object_patches)), probe, self._their_offsets(offsets_px), object_big)
        return {"far_field": _nchw(out["psi"]), "amplitude": _nchw(out["amp"])}

    def loss(self, far_field, observed_amplitude, log_intensity_scale, loss_name) -> float:
        return deviance(
            _nhwc(np.asarray(far_field)), _nhwc(np.asarray(observed_amplitude)), log_intensity_scale, loss_name
        )


class ForeignA(_ForeignAdapter):
    """Six stages plus optimizer and reconstruction (stitch)."""

    name = "foreignA"
    factory_defaults = {"K": 4}

    def optimizer_steps(self, config, weights, grads_per_step) -> dict:
        return adam(weights, grads_per_step, config["learning_rate"], config["adam_epsilon"])

    def stitch(self, patches, xcoords, ycoords) -> dict:
        out = stitch(patches, xcoords, ycoords)
        return {"object": out["obj"], "origin_px": out["origin"]}


class ForeignB(_ForeignAdapter):
    """Config, data, grouping, translation, forward and loss only; its factory defaults K to 6."""

    name = "foreignB"

    def defaults(self) -> dict:
        return {"K": int(os.environ.get("FOREIGN_B_DEFAULT_K", "6"))}

    def resolve_config(self, overrides: dict, data_path=None) -> dict:
        # a field of ForeignB's own that ForeignA lacks: noted by the harness, not compared
        return {**super().resolve_config(overrides, data_path), "x.fft_planner": "estimate"}

    def _their_offsets(self, offsets_px):
        if os.environ.get("FOREIGN_B_OFFSET_SIGN_BUG") == "1":
            return np.asarray(offsets_px)  # the bug: passes ours through unflipped
        return super()._their_offsets(offsets_px)
