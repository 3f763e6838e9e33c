"""The bundle archive (docs/spec.md §12): a zip of manifest, canonical weights and probe.

Pure I/O of canonical numpy arrays, shared by both backends so that either can
read what the other wrote; each backend only converts its model to and from
the canonical weights. No pickle anywhere: weights are safetensors, the probe
is an .npy read with allow_pickle=False, the manifest is JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from backends.common.config import ConfigError, PinnConfig, make_config
from backends.common.fileio import atomic_write
from backends.common.weights import LOG_INTENSITY_SCALE, check_canonical

FORMAT_NAME = "pinn-parity-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PROBE = "probe.npy"
MEMBERS = (MANIFEST, WEIGHTS, PROBE)


class BundleError(ValueError):
    """A bundle is unreadable, tampered with or of another format; names file and member."""

    def __init__(self, path, problem, member=None):
        where = str(path) + (f" [member '{member}']" if member else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class BundleContents:
    """What a bundle holds, in canonical form."""

    config: PinnConfig
    weights: dict  # canonical name -> float32 array, log_intensity_scale included
    probe: np.ndarray  # (N, N) complex64
    input_scale: float  # r: the network sees r * X
    manifest: dict  # everything else the writer recorded (backend, versions, time)

    @property
    def log_intensity_scale(self) -> float:
        return float(self.weights[LOG_INTENSITY_SCALE])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    path,
    *,
    backend: str,
    framework_versions: dict,
    config: PinnConfig,
    weights: dict,
    probe: np.ndarray,
    input_scale: float,
) -> Path:
    """Write atomically: the zip is built in a temp file and renamed into place."""
    check_canonical(weights, config.n_filters_scale, source=f"bundle {path}")
    path = Path(path)
    # np.array, not ascontiguousarray: the latter turns the 0-d log_intensity_scale into shape (1,).
    weights_bytes = st_save({k: np.array(v, dtype=np.float32, order="C") for k, v in weights.items()})
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(probe, dtype=np.complex64), allow_pickle=False)
    probe_bytes = buf.getvalue()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backend": backend,
        "framework_versions": {"numpy": np.__version__, "python": platform.python_version(), **framework_versions},
        "config": config.to_dict(),
        "input_scale": float(input_scale),
        "log_intensity_scale": float(weights[LOG_INTENSITY_SCALE]),
        "intensity_scale": float(np.exp(np.float64(weights[LOG_INTENSITY_SCALE]))),
        "N": int(probe.shape[0]),
        "sha256": {WEIGHTS: _sha256(weights_bytes), PROBE: _sha256(probe_bytes)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def write(handle):
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            zf.writestr(WEIGHTS, weights_bytes)
            zf.writestr(PROBE, probe_bytes)

    atomic_write(path, write)
    return path


# What zipfile raises on a damaged archive or member: bad CRC or headers (BadZipFile), a broken
# deflate stream (zlib.error), truncation (EOFError), an unknown compression method
# (NotImplementedError), encryption (RuntimeError), a read failure (OSError).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


def _read_members(path: Path) -> dict:
    if path.is_dir():
        raise BundleError(path, "is a folder, not a bundle file (bundle.zip)")
    if not path.exists():
        raise BundleError(path, "file does not exist")
    if not zipfile.is_zipfile(path):
        raise BundleError(path, "not a zip archive")
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise BundleError(path, f"damaged zip archive: {exc}") from exc
    with zf:
        names = zf.namelist()
        for name in names:
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
                raise BundleError(path, "member name escapes the archive root; refused", member=name)
        unexpected = sorted(set(names) - set(MEMBERS))
        if unexpected:
            raise BundleError(
                path,
                f"unexpected member(s) {unexpected}; a bundle holds only {list(MEMBERS)} (no pickles, no code)",
                member=unexpected[0],
            )
        missing = [m for m in MEMBERS if m not in names]
        if missing:
            raise BundleError(path, "required member is missing", member=missing[0])
        members = {}
        for name in MEMBERS:
            try:
                members[name] = zf.read(name)
            except _ZIP_ERRORS as exc:
                raise BundleError(
                    path, f"damaged member, the archive is corrupt ({type(exc).__name__}: {exc})", member=name
                ) from exc
        return members


def read_bundle(path) -> BundleContents:
    """Verify format, version and checksums, then return canonical contents."""
    path = Path(path)
    members = _read_members(path)
    try:
        manifest = json.loads(members[MANIFEST])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(path, f"manifest is not JSON: {exc}", member=MANIFEST) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(
            path,
            f"not a {FORMAT_NAME} manifest (format={manifest.get('format')!r})"
            if isinstance(manifest, dict)
            else "manifest is not a JSON object",
            member=MANIFEST,
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            path,
            f"format_version {manifest.get('format_version')!r} is not supported "
            f"(this reader handles {FORMAT_VERSION})",
            member=MANIFEST,
        )
    sums = manifest.get("sha256", {})
    for member in (WEIGHTS, PROBE):
        if sums.get(member) != _sha256(members[member]):
            raise BundleError(path, "sha256 does not match the manifest: the member was altered", member=member)
    try:
        config = make_config(manifest["config"])
        input_scale = float(manifest["input_scale"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise BundleError(path, f"manifest config or input_scale is invalid: {exc}", member=MANIFEST) from exc
    try:
        weights = st_load(members[WEIGHTS])
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(path, f"cannot be read as safetensors: {exc}", member=WEIGHTS) from exc
    try:
        check_canonical(weights, config.n_filters_scale, source=str(path))
    except ValueError as exc:
        raise BundleError(path, str(exc), member=WEIGHTS) from exc
    try:
        probe = np.load(io.BytesIO(members[PROBE]), allow_pickle=False)
    except ValueError as exc:
        raise BundleError(path, f"cannot be read without pickle: {exc}", member=PROBE) from exc
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1] or probe.shape[0] != manifest.get("N"):
        raise BundleError(path, f"probe shape {probe.shape} does not match N={manifest.get('N')}", member=PROBE)
    return BundleContents(
        config=config, weights=weights, probe=probe.astype(np.complex64), input_scale=input_scale, manifest=manifest
    )
