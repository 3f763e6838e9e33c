"""Reading zip archives someone else made (bundles, NPZ files) with memory bounded by their format.

A zip archive says how big its members are before one of them is inflated: the
central directory records each member's uncompressed size, and an .npy member's
header records its shape and dtype. Everything here checks those declarations
first, against each other and against caps the caller sets, so that a small
crafted file (a member of zeros that inflates to a gigabyte, a header that
declares more than the archive holds) is refused at the cost of reading a few
headers. docs/spec.md §1 (datasets) and §12 (bundles) give the caps.

- `open_archive`: the central directory's size is read from its end record
  before zipfile parses it; then the number of members, their names (length,
  printable characters, no way out of the archive root, no duplicates) and
  their compression (stored or deflated: the two whose inflation zipfile
  bounds per read) are checked.
- `read_member`: a member streamed in chunks into a sha256 (or any hashlib
  object), refused as soon as it inflates past the size the caller expects.
- `npz_headers` / `load_npz`: every .npy member's header read with numpy's own
  format functions (shape, dtype, Fortran order); object dtypes (pickle) are
  refused, and each declared shape times itemsize must equal the member's size
  less its header, before any array is loaded.

Every refusal is an ArchiveError naming the file, the member and the problem in
one line; callers turn it into their own error class.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

MAX_NAME_LENGTH = 255  # characters in a member name
DIRECTORY_BYTES_PER_MEMBER = 1024  # central directory bytes allowed per member: name, fixed fields and extras
CHUNK = 1 << 20  # bytes inflated per read while streaming a member
MAX_NPZ_MEMBERS = 256
MAX_NPZ_BYTES = 4 << 30  # declared array bytes of one NPZ file, all members together (callers may set their own)
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}

# What zipfile raises on a damaged archive or member: bad CRC or headers (BadZipFile), a broken
# deflate stream (zlib.error), truncation (EOFError), an unknown compression method
# (NotImplementedError), encryption (RuntimeError), a read failure (OSError).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)

# The end of central directory record and its zip64 companions (APPNOTE 4.3.14-4.3.16).
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"


class ArchiveError(ValueError):
    """An archive, or one of its members, is refused; the message names file and member."""

    def __init__(self, path, member, problem):
        self.path, self.member, self.problem = str(path), member, problem
        where = self.path + (f" [member '{member}']" if member else "")
        super().__init__(f"{where}: {problem}")


def shown_name(name: str, limit: int = 80) -> str:
    """A member name safe to print on one line: escaped, and shortened past `limit` characters."""
    text = name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def _directory_extent(fh, size: int) -> tuple[int, int] | None:
    """(members, bytes) the central directory declares, found the way zipfile finds it: the end
    record at the very end, else the last one in the final 64 KiB; a zip64 record before it wins."""
    tail = min(size, (1 << 16) + _END.size)
    fh.seek(size - tail)
    data = fh.read(tail)
    if data[-_END.size : -_END.size + 4] == _END_SIGNATURE and data[-2:] == b"\x00\x00":
        start = len(data) - _END.size
    else:
        start = data.rfind(_END_SIGNATURE)
        if start < 0 or start + _END.size > len(data):
            return None
    fields = _END.unpack_from(data, start)
    members, length = fields[4], fields[5]
    at = size - tail + start  # the end record's offset in the file
    if at >= _END64_LOCATOR.size + _END64.size:
        fh.seek(at - _END64_LOCATOR.size)
        if fh.read(4) == _END64_LOCATOR_SIGNATURE:
            fh.seek(at - _END64_LOCATOR.size - _END64.size)
            record = fh.read(_END64.size)
            if len(record) == _END64.size and record[:4] == _END64_SIGNATURE:
                fields64 = _END64.unpack(record)
                members, length = fields64[7], fields64[8]
    return members, length


def _check_name(path, name: str, seen: set) -> None:
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ArchiveError(
            path,
            shown_name(name),
            f"member name of {len(name)} characters is too long or not printable (at most {MAX_NAME_LENGTH}, "
            "no control characters); refused",
        )
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
        raise ArchiveError(path, shown_name(name), "member name escapes the archive root; refused")
    if name in seen:
        raise ArchiveError(path, shown_name(name), "member appears twice in the archive; refused")
    seen.add(name)


def open_archive(path, *, max_members: int) -> zipfile.ZipFile:
    """The archive at `path`, opened after its central directory was found small enough to parse.

    The caller has checked that `path` is a zip file (zipfile.is_zipfile) and closes what it gets.
    """
    path = Path(path)
    max_directory = max_members * DIRECTORY_BYTES_PER_MEMBER
    try:
        with open(path, "rb") as fh:
            extent = _directory_extent(fh, path.stat().st_size)
    except OSError as exc:
        raise ArchiveError(path, None, f"cannot be read ({exc.strerror or exc})") from exc
    if extent is None:
        raise ArchiveError(path, None, "damaged zip archive: no end of central directory record")
    members, length = extent
    if members > max_members or length > max_directory:
        raise ArchiveError(
            path,
            None,
            f"the zip directory lists {members} member(s) in {length} bytes; "
            f"at most {max_members} member(s) in {max_directory} bytes are read",
        )
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise ArchiveError(path, None, f"damaged zip archive: {exc}") from exc
    try:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise ArchiveError(path, None, f"the zip directory holds {len(infos)} members; at most {max_members}")
        seen: set = set()
        for info in infos:
            _check_name(path, info.filename, seen)
            if info.compress_type not in _METHODS:
                raise ArchiveError(
                    path,
                    shown_name(info.filename),
                    f"compression method {info.compress_type} is not accepted (only stored or deflated)",
                )
    except BaseException:
        zf.close()
        raise
    return zf


def read_member(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, digest=None) -> bytes:
    """The bytes of member `info`, inflated chunk by chunk into `digest` (a hashlib object, optional).

    Refused as soon as more than `limit` bytes come out, whatever the zip directory says; the caller
    has already compared the directory's size (info.file_size) with what it expects.
    """
    name = shown_name(info.filename)
    data = bytearray()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(min(CHUNK, limit - len(data) + 1)):
                data += chunk
                if len(data) > limit:
                    raise ArchiveError(path, name, f"inflates past the {limit} bytes it may hold; refused")
                if digest is not None:
                    digest.update(chunk)
    except ZIP_ERRORS as exc:
        raise ArchiveError(path, name, f"damaged member, the archive is corrupt ({type(exc).__name__}: {exc})") from exc
    return bytes(data)


@dataclass(frozen=True)
class NpyHeader:
    """What an .npy member declares, read from its header alone."""

    member: str  # the zip member's name
    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    offset: int  # bytes of header before the data
    file_size: int  # the member's uncompressed size in the zip directory

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class _Counting:
    """A read-only stream that counts what is read from it (the .npy header's length)."""

    def __init__(self, fh):
        self.fh, self.count = fh, 0

    def read(self, n=-1):
        data = self.fh.read(n)
        self.count += len(data)
        return data


def read_npy_header(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyHeader:
    """The header of .npy member `info`, its data left uninflated; refuses pickles and sizes that disagree."""
    name = shown_name(info.filename)
    try:
        with zf.open(info) as raw:
            fh = _Counting(raw)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"npy format version {version[0]}.{version[1]} is not read (only 1.0 and 2.0)")
    except ZIP_ERRORS as exc:
        raise ArchiveError(path, name, f"damaged member, the archive is corrupt ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:  # numpy's format functions: no magic, a header that is not a dict, ...
        raise ArchiveError(path, name, f"not a readable .npy array: {exc}") from exc
    if dtype.hasobject:
        raise ArchiveError(path, name, f"holds a member that needs pickle (dtype {dtype}), refused")
    if any(extent < 0 for extent in shape):
        raise ArchiveError(path, name, f"header declares a negative extent, shape {tuple(shape)}")
    header = NpyHeader(info.filename, tuple(shape), dtype, bool(fortran_order), fh.count, info.file_size)
    if header.offset + header.nbytes != info.file_size:
        raise ArchiveError(
            path,
            name,
            f"header declares shape {header.shape} of {dtype} ({header.nbytes} bytes) but the zip directory "
            f"gives {info.file_size - header.offset} bytes after the {header.offset}-byte header",
        )
    return header


def npz_key(member: str) -> str:
    """The key np.load gives a member: its name less '.npy'."""
    return member[:-4] if member.endswith(".npy") else member


def npz_headers(path, *, max_bytes: int = MAX_NPZ_BYTES, max_members: int = MAX_NPZ_MEMBERS) -> dict[str, NpyHeader]:
    """key -> header of every member of the NPZ file at `path`, nothing inflated past the headers.

    Refuses members that are no .npy array, object dtypes, headers that disagree with the zip directory,
    and more than `max_bytes` of declared array data in all.
    """
    path = Path(path)
    headers = {}
    with open_archive(path, max_members=max_members) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ArchiveError(path, shown_name(info.filename), "is not an .npy array member")
            headers[npz_key(info.filename)] = read_npy_header(path, zf, info)
    total = sum(h.nbytes for h in headers.values())
    if total > max_bytes:
        raise ArchiveError(path, None, f"its arrays declare {total} bytes in all, over the cap of {max_bytes}")
    return headers


def load_npz(
    path, keys: Iterable[str] | None = None, *, headers: dict | None = None, max_bytes: int = MAX_NPZ_BYTES
) -> dict[str, np.ndarray]:
    """key -> array for `keys` (default: every member) of an NPZ file whose headers were checked first.

    `headers` are npz_headers' answer when the caller already has it. Arrays are read smallest first,
    so a member that does not deliver what its header declares is found before the big ones are inflated.
    """
    path = Path(path)
    headers = npz_headers(path, max_bytes=max_bytes) if headers is None else headers
    keys = list(headers) if keys is None else list(keys)
    for key in keys:
        if key not in headers:
            raise ArchiveError(path, f"{shown_name(key)}.npy", "no such array in the archive")
    arrays, key = {}, None
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in sorted(keys, key=lambda k: headers[k].nbytes):
                arrays[key] = npz[key]
    except (*ZIP_ERRORS, ValueError) as exc:
        member = shown_name(headers[key].member) if key is not None else None
        raise ArchiveError(path, member, f"damaged, cannot be read ({type(exc).__name__}: {exc})") from exc
    return {key: arrays[key] for key in keys}
