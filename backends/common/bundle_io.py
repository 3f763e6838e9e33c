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
import math
import platform
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from backends.common.archive import ArchiveError, open_archive, read_member, read_npy_header
from backends.common.config import PinnConfig, make_config
from backends.common.fileio import atomic_write
from backends.common.weights import LOG_INTENSITY_SCALE, canonical_shapes, check_canonical

FORMAT_NAME = "pinn-parity-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PROBE = "probe.npy"
MEMBERS = (MANIFEST, WEIGHTS, PROBE)
# Limits read before a byte is inflated (docs/spec.md §12).
MAX_MEMBERS = 16  # entries the zip directory may list (a bundle needs 3)
MAX_MANIFEST_BYTES = 1 << 20
MAX_MEMBER_BYTES = 1 << 30  # the plain cap on weights and probe, whatever the config and N ask for
SAFETENSORS_HEADER_BYTES = 1 << 16  # allowance for the safetensors JSON header (about 3 KB in practice)
NPY_HEADER_BYTES = 10_012  # numpy's own limit on an .npy header (10000) plus magic, version and length


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
        "sizes": {WEIGHTS: len(weights_bytes), PROBE: len(probe_bytes)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def write(handle):
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            zf.writestr(WEIGHTS, weights_bytes)
            zf.writestr(PROBE, probe_bytes)

    atomic_write(path, write)
    return path


def _member_caps(config: PinnConfig, n: int) -> dict:
    """The most bytes each data member may hold: what the config's canonical weights and an N x N
    complex64 probe need, plus their headers' allowance, and never more than MAX_MEMBER_BYTES."""
    weights = (
        8 + SAFETENSORS_HEADER_BYTES + 4 * sum(math.prod(s) for s in canonical_shapes(config.n_filters_scale).values())
    )
    probe = NPY_HEADER_BYTES + 8 * n * n
    return {WEIGHTS: min(weights, MAX_MEMBER_BYTES), PROBE: min(probe, MAX_MEMBER_BYTES)}


def _open(path: Path) -> zipfile.ZipFile:
    if path.is_dir():
        raise BundleError(path, "is a folder, not a bundle file (bundle.zip)")
    if not path.exists():
        raise BundleError(path, "file does not exist")
    if not zipfile.is_zipfile(path):
        raise BundleError(path, "not a zip archive")
    zf = open_archive(path, max_members=MAX_MEMBERS)
    try:
        names = zf.namelist()
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
    except BaseException:
        zf.close()
        raise
    return zf


def _read_manifest(path: Path, zf: zipfile.ZipFile) -> dict:
    info = zf.getinfo(MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleError(
            path, f"{info.file_size} bytes in the zip directory, over the cap of {MAX_MANIFEST_BYTES}", member=MANIFEST
        )
    data = read_member(path, zf, info, limit=info.file_size)
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a huge integer, too deep a nesting
        raise BundleError(path, f"manifest is not JSON: {type(exc).__name__}: {exc}", member=MANIFEST) from exc
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
    return manifest


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _declared_sizes(path: Path, manifest: dict, caps: dict) -> dict:
    """member -> the byte count it must have: the manifest's `sizes`, or, in a bundle written before
    they were recorded, nothing (None): then only the caps bound it."""
    if "sizes" not in manifest:
        return dict.fromkeys(caps)
    sizes = manifest["sizes"]
    if not isinstance(sizes, dict) or not all(_is_count(sizes.get(m)) for m in caps):
        raise BundleError(path, f"manifest sizes must give a byte count for {sorted(caps)}", member=MANIFEST)
    return {m: sizes[m] for m in caps}


def read_bundle(path) -> BundleContents:
    """Verify format, version, sizes and checksums, then return canonical contents.

    Sizes come first: the manifest is read within its cap, each data member's size in the zip
    directory is compared with the manifest's record and the format's cap, and the probe's .npy
    header with N, before a byte of their data is inflated; the members are then hashed while they
    are streamed (docs/spec.md §12).
    """
    path = Path(path)
    try:
        with _open(path) as zf:
            manifest = _read_manifest(path, zf)
            try:
                config = make_config(manifest["config"])
                input_scale = float(manifest["input_scale"])
            except (KeyError, TypeError, ValueError, OverflowError) as exc:  # ConfigError is a ValueError
                raise BundleError(path, f"manifest config or input_scale is invalid: {exc}", member=MANIFEST) from exc
            n = manifest.get("N")
            if not _is_count(n) or n < 1:
                raise BundleError(path, f"manifest N={n!r} is not a positive integer", member=MANIFEST)
            caps = _member_caps(config, n)
            declared = _declared_sizes(path, manifest, caps)
            infos = {m: zf.getinfo(m) for m in caps}
            for member, info in infos.items():
                if declared[member] is not None and info.file_size != declared[member]:
                    raise BundleError(
                        path,
                        f"{info.file_size} bytes in the zip directory, the manifest records {declared[member]}",
                        member=member,
                    )
                if info.file_size > caps[member]:
                    raise BundleError(
                        path,
                        f"{info.file_size} bytes in the zip directory, over the cap of {caps[member]} "
                        f"for n_filters_scale={config.n_filters_scale}, N={n}",
                        member=member,
                    )
            # The probe's .npy header, before its data: (N, N), no pickle, as long as the directory says.
            probe_header = read_npy_header(path, zf, infos[PROBE])
            if probe_header.shape != (n, n):
                raise BundleError(path, f"probe shape {probe_header.shape} does not match N={n}", member=PROBE)
            sums = manifest.get("sha256", {})
            members = {}
            for member, info in infos.items():
                digest = hashlib.sha256()
                members[member] = read_member(path, zf, info, limit=info.file_size, digest=digest)
                if not isinstance(sums, dict) or sums.get(member) != digest.hexdigest():
                    raise BundleError(path, "sha256 does not match the manifest: the member was altered", member=member)
    except ArchiveError as exc:
        raise BundleError(path, exc.problem, member=exc.member) from exc
    try:
        weights = st_load(members[WEIGHTS])
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(path, f"cannot be read as safetensors: {exc}", member=WEIGHTS) from exc
    try:
        check_canonical(weights, config.n_filters_scale, source=str(path))
    except ValueError as exc:
        raise BundleError(path, str(exc), member=WEIGHTS) from exc
    try:  # read_array, not np.load: the header was checked above, and nothing here is sniffed as a zip or pickle
        probe = np.lib.format.read_array(io.BytesIO(members[PROBE]), allow_pickle=False)
    except ValueError as exc:
        raise BundleError(path, f"cannot be read as .npy: {exc}", member=PROBE) from exc
    return BundleContents(
        config=config, weights=weights, probe=probe.astype(np.complex64), input_scale=input_scale, manifest=manifest
    )
