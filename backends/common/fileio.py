"""File writing and reading done once for the whole project.

Every file the project writes goes through `atomic_write`: a temporary file in
the target's folder, fsync, then `os.replace`, so a reader (or a run killed
half-way) sees the old file or the new one, never a torn one; on any error the
temporary file is removed. `write_npz` writes NPZ archives whose bytes depend
on the arrays only (sorted members, fixed timestamps), so equal data gives
equal files and equal sha256 digests. A folder of outputs is written the same
way: `staging_folder` makes a sibling `<name>.incomplete-XXXX`, the writer fills
it, `publish_folder` moves it into place (its `last` file moved last), so a
folder holding that last file is a finished one. `read_versioned_json` is the one reader
of the project's versioned JSON documents (golden manifests, result hubs, the
tolerance ledger). `installed_versions` reads package versions from metadata,
without importing a framework.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import BinaryIO

import numpy as np

FRAMEWORK_DISTRIBUTIONS = ("tensorflow-cpu", "keras", "torch", "lightning", "numpy")
_NPZ_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip member can carry


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then move it into place.

    Creates the parent folder. The file gets the usual permissions (0666 less the
    umask), not mkstemp's 0600, so reports and outputs stay readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def ensure_folder(path, *, label: str | None = None) -> Path:
    """Create `path` (and its parents) or raise OutputFolderError, in one line that starts
    with `label` (default: the path) and says why."""
    path = Path(path)
    label = str(path) if label is None else label
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputFolderError(f"{label}: {blocker} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{label}: cannot create the folder ({exc.strerror or exc})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{label}: folder {path} is not writable")
    return path


class OutputFolderError(ValueError):
    """An output folder cannot be created or written; the message names it and why."""


def staging_folder(target, *, label: str | None = None) -> Path:
    """A new empty folder `<target>.incomplete-XXXX` beside `target`, with the usual permissions.

    Checks up front that `target` can be published later: its parent is created,
    and `target` must be neither a file nor an unwritable folder. Errors are one
    OutputFolderError line starting with `label` (default: the target's path).
    """
    label = str(target) if label is None else label
    target = Path(os.path.abspath(target))
    if target.exists() and not target.is_dir():
        raise OutputFolderError(f"{label}: {target} is a file, not a folder")
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{label}: folder {target} is not writable")
    ensure_folder(target.parent, label=label)
    try:
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{target.name}.incomplete-"))
    except OSError as exc:
        raise OutputFolderError(f"{label}: cannot write in {target.parent} ({exc.strerror or exc})") from exc
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would survive the rename
    return staging


def publish_folder(staging, target, *, last: str) -> Path:
    """Move what `staging` holds to `target`, `last` moved last; then remove `staging`.

    A missing `target` is the renamed `staging` (one atomic step). An existing
    one first loses its old `last` file, then receives the files one by one, so
    at no moment does it hold the new `last` with older companions.
    """
    staging, target = Path(staging), Path(target)
    try:
        os.rename(staging, target)
        return target
    except OSError:
        if not target.is_dir():
            raise
    (target / last).unlink(missing_ok=True)
    names = sorted(p.name for p in staging.iterdir())
    for name in [n for n in names if n != last] + [n for n in names if n == last]:
        os.replace(staging / name, target / name)
    staging.rmdir()
    return target


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(data, *, sort_keys: bool = True, indent: int | None = 2, default=None) -> str:
    """The project's JSON style: indented, NaN refused, one trailing newline."""
    return json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=False, default=default) + "\n"


def atomic_write_json(path, data, *, sort_keys: bool = True, indent: int | None = 2, default=None) -> Path:
    return atomic_write_text(path, json_text(data, sort_keys=sort_keys, indent=indent, default=default))


def write_npz(handle: BinaryIO, arrays: Mapping[str, np.ndarray], *, compress: bool = False) -> None:
    """Like np.savez(_compressed), but byte-for-byte reproducible: members sorted, fixed timestamps,
    no pickles."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(handle, "w", compression=compression) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_NPZ_TIMESTAMP)
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arrays[key]), allow_pickle=False)


def save_npz(path, arrays: Mapping[str, np.ndarray], *, compress: bool = False) -> Path:
    """write_npz into `path`, atomically."""
    return atomic_write(path, lambda handle: write_npz(handle, arrays, compress=compress))


class VersionedJsonError(ValueError):
    """A versioned JSON document is missing, unreadable, or of another kind or version."""


def read_versioned_json(
    path,
    *,
    kind: str,
    version: int | Iterable[int],
    kind_key: str = "schema",
    version_key: str = "schema_version",
    what: str = "document",
) -> dict:
    """The JSON object in `path`, after checking `doc[kind_key] == kind` and its version.

    `version` is the one version this reader understands, or several. Every failure
    is one VersionedJsonError naming the file and what is wrong with it; callers
    that have their own error type catch it and re-raise theirs.
    """
    path = Path(path)
    accepted = (version,) if isinstance(version, int) else tuple(version)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VersionedJsonError(f"{path}: no such {what}") from None
    except (OSError, ValueError, RecursionError) as error:
        # ValueError: bad JSON, bytes that are no UTF-8, an integer past Python's 4300 digits;
        # RecursionError: arrays or objects nested too deep for the parser.
        raise VersionedJsonError(f"{path}: unreadable {what} ({type(error).__name__}: {error})") from None
    if not isinstance(document, dict):
        raise VersionedJsonError(f"{path}: a {what} is a JSON object, found {type(document).__name__}")
    found = (document.get(kind_key), document.get(version_key))
    if found[0] != kind or found[1] not in accepted:
        wanted = " or ".join(str(v) for v in accepted)
        raise VersionedJsonError(
            f"{path}: expected {kind_key} {kind!r} {version_key} {wanted}, found {found[0]!r} {found[1]!r}"
        )
    return document


def installed_versions(distributions: Iterable[str] = FRAMEWORK_DISTRIBUTIONS) -> dict:
    """distribution -> installed version, from package metadata (no import); absent ones left out."""
    found = {}
    for dist in distributions:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found
