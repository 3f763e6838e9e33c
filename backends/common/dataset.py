"""The NPZ dataset contract (docs/spec.md §1): read, validate, write.

Shared by both backends: it is I/O, not numerics. Every problem with a file
raises DatasetError naming the file, the key and what is wrong. What each key's
.npy header declares (shape, dtype) is checked against the other keys and the
caps before any array is read (backends.common.archive), so a file whose
declarations disagree costs a few headers, not its inflated size.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from backends.common.archive import ArchiveError, load_npz, npz_headers, npz_key
from backends.common.fileio import save_npz

MAX_DATASET_BYTES = 16 << 30  # declared array bytes of one NPZ file, all keys together (docs/spec.md §1)
PER_POSITION_KEYS = ("xcoords", "ycoords", "xcoords_start", "ycoords_start")


class DatasetError(ValueError):
    """A dataset file breaks the contract; the message names file and key."""

    def __init__(self, path, key, problem):
        self.path, self.key, self.problem = str(path), key, problem
        where = f"{self.path}" + (f" [key '{key}']" if key else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Dataset:
    """Arrays of one ptychography scan, in the canonical dtypes."""

    diffraction: np.ndarray  # (M, N, N) float32 measured amplitude, DC at (N/2, N/2)
    xcoords: np.ndarray  # (M,) float64 probe centre column, object pixels
    ycoords: np.ndarray  # (M,) float64 probe centre row, object pixels
    probe: np.ndarray  # (N, N) complex64
    object: np.ndarray | None = None  # (H, W) complex64 ground truth, optional
    xcoords_start: np.ndarray | None = None  # (M,) float64 nominal positions, optional
    ycoords_start: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)  # nphotons, seed, provenance, ...
    source: str = "<memory>"  # file it was read from, for error messages

    @property
    def n_positions(self) -> int:
        return int(self.diffraction.shape[0])

    @property
    def N(self) -> int:
        return int(self.diffraction.shape[1])

    def subset(self, indices) -> Dataset:
        """The same scan restricted to `indices`, each pattern with its own coordinates."""
        idx = np.asarray(indices, dtype=np.int64)
        per_pos = {k: getattr(self, k)[idx] for k in PER_POSITION_KEYS if getattr(self, k) is not None}
        return replace(self, diffraction=self.diffraction[idx], **per_pos)


# key -> (canonical dtype, kind of values allowed when casting)
_DTYPES = {
    "diffraction": np.float32,
    "xcoords": np.float64,
    "ycoords": np.float64,
    "xcoords_start": np.float64,
    "ycoords_start": np.float64,
    "probeGuess": np.complex64,
    "objectGuess": np.complex64,
}


def _check_dtype(path, key, dtype) -> np.dtype:
    """The canonical dtype of `key` when `dtype` casts to it losing nothing essential, else refuse."""
    want = np.dtype(_DTYPES[key])
    if dtype == want or (dtype.kind in "biuf" and want.kind in "fc") or (dtype.kind == "c" and want.kind == "c"):
        return want
    raise DatasetError(path, key, f"dtype {dtype} cannot be safely cast to {want}")


def _cast(path, key, arr):
    """Cast to the canonical dtype when it loses nothing essential, else refuse."""
    want = _check_dtype(path, key, arr.dtype)
    return arr if arr.dtype == want else arr.astype(want)


def _check_finite(path, key, arr):
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DatasetError(path, key, f"{bad} non-finite value(s) (NaN or Inf)")


def _check_shapes(path, shapes: dict) -> None:
    """Shapes against each other: key -> shape of diffraction and probeGuess, and of whichever of the
    per-position keys and objectGuess are present. Read from arrays or from the file's headers alone."""
    d = shapes["diffraction"]
    if len(d) != 3:
        raise DatasetError(path, "diffraction", f"expected 3 dimensions (M, N, N), got shape {d}")
    m, n1, n2 = d
    if n1 != n2:
        # (N, N, M) files from older tools land here rather than being transposed by guess.
        raise DatasetError(
            path,
            "diffraction",
            f"patterns must be square (M, N, N); got shape {d}. "
            "A (N, N, M) layout is not accepted: transpose it explicitly",
        )
    if n1 < 16 or n1 % 8:
        raise DatasetError(
            path,
            "diffraction",
            f"pattern size N={n1} must be a multiple of 8 and >= 16 (the network pools three times)",
        )
    if m < 1:
        raise DatasetError(path, "diffraction", "holds no patterns (M = 0)")
    for key in PER_POSITION_KEYS:
        if key in shapes and shapes[key] != (m,):
            raise DatasetError(path, key, f"expected shape ({m},) to match diffraction's M={m}, got {shapes[key]}")
    if shapes["probeGuess"] != (n1, n1):
        raise DatasetError(
            path, "probeGuess", f"expected shape ({n1}, {n1}) to match N={n1}, got {shapes['probeGuess']}"
        )
    if "objectGuess" in shapes and len(shapes["objectGuess"]) != 2:
        raise DatasetError(path, "objectGuess", f"expected 2 dimensions (H, W), got shape {shapes['objectGuess']}")


def validate(ds: Dataset) -> Dataset:
    """Check shapes, lengths, finiteness and signs; return `ds` unchanged or raise."""
    path = ds.source
    arrays = {"diffraction": ds.diffraction, "probeGuess": ds.probe, "objectGuess": ds.object}
    arrays.update({key: getattr(ds, key) for key in PER_POSITION_KEYS})
    arrays = {key: arr for key, arr in arrays.items() if arr is not None}
    _check_shapes(path, {key: tuple(np.shape(arr)) for key, arr in arrays.items()})
    d = ds.diffraction
    _check_finite(path, "diffraction", d)
    if np.any(d < 0):
        raise DatasetError(
            path,
            "diffraction",
            f"{int(np.count_nonzero(d < 0))} negative amplitude(s); diffraction holds sqrt(counts) >= 0",
        )
    for key in (*PER_POSITION_KEYS, "probeGuess", "objectGuess"):
        if key in arrays:
            _check_finite(path, key, arrays[key])
    return ds


def _check_headers(path, headers: dict) -> list[str]:
    """What the file's .npy headers declare, checked before any array is read; the keys to read."""
    if "diffraction" in headers and "diff3d" in headers and headers["diffraction"].shape != headers["diff3d"].shape:
        raise DatasetError(path, "diff3d", "both 'diffraction' and its alias 'diff3d' are present and differ")
    shapes = {k: h.shape for k, h in headers.items() if k in _DTYPES}
    if "diffraction" not in shapes and "diff3d" in headers:
        shapes["diffraction"] = headers["diff3d"].shape
    for key in ("diffraction", "xcoords", "ycoords", "probeGuess"):
        if key not in shapes:
            raise DatasetError(path, key, f"required key is missing (present: {sorted(headers)})")
    for key in _DTYPES:
        header = headers.get(key, headers.get("diff3d") if key == "diffraction" else None)
        if header is not None:
            _check_dtype(path, key, header.dtype)
    _check_shapes(path, shapes)
    return [k for k in headers if k in _DTYPES or k in ("diff3d", "metadata")]


def load_dataset(path) -> Dataset:
    """Read and validate an NPZ file; `diff3d` is accepted as an alias of `diffraction`."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(path, None, "is a folder, not an NPZ file")
    if not path.exists():
        raise DatasetError(path, None, "file does not exist")
    if not zipfile.is_zipfile(path):
        raise DatasetError(path, None, "not an NPZ archive (numpy .npz zip file)")
    try:
        headers = npz_headers(path, max_bytes=MAX_DATASET_BYTES)
        raw = load_npz(path, _check_headers(path, headers), headers=headers)
    except ArchiveError as exc:
        raise DatasetError(path, exc.member and npz_key(exc.member), exc.problem) from exc
    if "diffraction" in raw and "diff3d" in raw:
        a, b = raw["diffraction"], raw["diff3d"]
        if a.shape != b.shape or not np.array_equal(a, b):
            raise DatasetError(path, "diff3d", "both 'diffraction' and its alias 'diff3d' are present and differ")
    if "diffraction" not in raw and "diff3d" in raw:
        raw["diffraction"] = raw["diff3d"]
    arrays = {k: _cast(path, k, raw[k]) for k in _DTYPES if k in raw}
    metadata = {}
    if "metadata" in raw:
        try:
            metadata = json.loads(str(raw["metadata"]))
        except (ValueError, RecursionError) as exc:  # bad JSON, a huge integer, too deep a nesting
            raise DatasetError(path, "metadata", f"is not a JSON string: {type(exc).__name__}: {exc}") from exc
        if not isinstance(metadata, dict):
            raise DatasetError(path, "metadata", "must be a JSON object")
    ds = Dataset(
        diffraction=arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
        object=arrays.get("objectGuess"),
        xcoords_start=arrays.get("xcoords_start"),
        ycoords_start=arrays.get("ycoords_start"),
        metadata=metadata,
        source=str(path),
    )
    return validate(ds)


def save_dataset(ds: Dataset, path) -> Path:
    """Validate, then write atomically (a temp file renamed into place)."""
    validate(ds)
    arrays = {
        "diffraction": ds.diffraction.astype(np.float32),
        "xcoords": ds.xcoords.astype(np.float64),
        "ycoords": ds.ycoords.astype(np.float64),
        "probeGuess": ds.probe.astype(np.complex64),
        "metadata": np.array(json.dumps(ds.metadata, sort_keys=True)),
    }
    if ds.object is not None:
        arrays["objectGuess"] = ds.object.astype(np.complex64)
    for key in ("xcoords_start", "ycoords_start"):
        if getattr(ds, key) is not None:
            arrays[key] = getattr(ds, key).astype(np.float64)
    return save_npz(path, arrays)
