"""Hypothesis strategies that damage genuine files structurally, and the one check every loader must pass.

Every fuzz test starts from a file the project's own writers made (or one of the repository's own files)
and damages it the way real files get damaged: keys dropped, renamed or re-typed, deep nesting, huge
numbers, NaN, non-UTF-8 bytes, truncation, flipped bytes; for NPZ and zip archives also members with
another dtype, shape or memory order, an .npy header declaring far more data than the member holds,
missing, extra, duplicated or misnamed members. `check_loader` then asks of the loader what a user
needs: the file loads, or ONE exception of the loader's own error class whose single-line message
names the file, and never more memory than the small file justifies.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import math
import struct
import tempfile
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

MEMORY_CAP = 64 * 1024 * 1024
"""Peak traced allocation (Python and numpy) allowed while loading one generated file. The files are
kilobytes; a loader that goes past this trusts a size a file declares rather than the data it holds."""

# ---- JSON documents -------------------------------------------------------------------------------

DEEP = "\x00fuzz-deep\x00"
"""A placeholder value replaced, after json.dumps, by 100 000 nested arrays (json.loads: RecursionError)."""
HUGE_INT = "\x00fuzz-huge-int\x00"
"""A placeholder replaced by a 5 000-digit integer literal (json.loads: ValueError past 4 300 digits)."""
_EXPANSIONS = {DEEP: "[" * 100_000 + "]" * 100_000, HUGE_INT: "9" * 5000}

SPECIAL_VALUES = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    -(2**64),
    10**400,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "nan",
    "inf",
    "*",
    "\x00",
    "../../etc",
    [],
    {},
    [[]],
    {"": None},
    DEEP,
    HUGE_INT,
)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.recursive(
        json_leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=8,
    ),
)


def json_paths(document, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (keys and indices from the root) to a value in `document`, the root first."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from json_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from json_paths(value, (*prefix, index))


def _at(document, path: tuple):
    for step in path:
        document = document[step]
    return document


JSON_OPERATIONS = ("replace", "delete", "rename", "duplicate", "wrap", "stringify", "empty")


def mutate_json(data, document, *, label: str = "mutation", max_mutations: int = 3):
    """A structurally damaged deep copy of `document`: 1 to `max_mutations` operations, each on a path drawn
    from the current document: replace the value (any JSON value, NaN, huge numbers, deep nesting), delete
    it, rename its key, duplicate it in its list, wrap it in a list or object, turn it into its JSON text,
    or empty it."""
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, max_mutations), label=f"{label}: count")):
        paths = list(json_paths(document))
        path = data.draw(st.sampled_from(paths), label=f"{label}: path")
        operation = data.draw(st.sampled_from(JSON_OPERATIONS), label=f"{label}: operation")
        value = _at(document, path)
        if operation == "replace":
            new = copy.deepcopy(data.draw(json_values, label=f"{label}: value"))  # SPECIAL_VALUES stay intact
        elif operation == "wrap":
            new = data.draw(st.sampled_from([[value], {"value": value}]), label=f"{label}: wrapper")
        elif operation == "stringify":
            new = json.dumps(value)
        elif operation == "empty":
            new = type(value)() if isinstance(value, (dict, list, str)) else None
        else:
            new = value
        if not path:  # the root: replaced whole (delete, rename and duplicate have no parent to act in)
            document = new if operation not in ("delete", "rename", "duplicate") else [document]
            continue
        parent, step = _at(document, path[:-1]), path[-1]
        if operation == "delete":
            del parent[step]
        elif operation == "rename" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10), label=f"{label}: new key")] = parent.pop(step)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.insert(step, copy.deepcopy(value))
        elif operation in ("rename", "duplicate"):
            parent[step] = [value]
        else:
            parent[step] = new
    return document


def json_text(document) -> str:
    """json.dumps, NaN and infinities allowed (the loaders meet them in hand-edited files), with the
    DEEP and HUGE_INT placeholders expanded."""
    text = json.dumps(document, allow_nan=True)
    for placeholder, expansion in _EXPANSIONS.items():
        text = text.replace(json.dumps(placeholder), expansion)
    return text


def mutate_text(data, text: str, *, label: str = "text") -> bytes:
    """The document's bytes, sometimes damaged as bytes: truncated, a byte flipped, invalid UTF-8 put in,
    another encoding (UTF-16, a BOM), a top-level key repeated (json.loads keeps the last one), or empty."""
    raw = text.encode("utf-8")
    how = data.draw(
        st.sampled_from(("as is",) * 21 + ("truncate", "flip", "invalid utf-8", "utf-16", "bom", "dup", "dup", "")),
        label=f"{label}: bytes",
    )  # three in four examples keep valid JSON, so most reach the loader's checks of the document itself
    if how == "truncate" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1), label=f"{label}: cut at")]
    if how == "flip" and raw:
        at = data.draw(st.integers(0, len(raw) - 1), label=f"{label}: flip at")
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255), label=f"{label}: xor")]) + raw[at + 1 :]
    if how == "invalid utf-8":
        at = data.draw(st.integers(0, len(raw)), label=f"{label}: insert at")
        return raw[:at] + b"\xff\xfe\xc3" + raw[at:]
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "dup" and text.rstrip().endswith("}") and text.lstrip().startswith("{"):
        key = data.draw(st.sampled_from(("schema", "schema_version", "entries", "cases", "format", "comparisons")))
        value = json_text(data.draw(json_values, label=f"{label}: repeated value"))
        head = text.rstrip()[:-1].rstrip()
        return (head + ("," if not head.endswith("{") else "") + f" {json.dumps(key)}: {value}}}").encode("utf-8")
    if how == "":
        return b""
    return raw


def damaged_json(data, document, *, label: str = "json", max_mutations: int = 3) -> bytes:
    """`document` damaged structurally, then (sometimes) as bytes."""
    return mutate_text(data, json_text(mutate_json(data, document, label=label, max_mutations=max_mutations)))


# ---- .npy members and zip archives ------------------------------------------------------------------

_MAGIC = b"\x93NUMPY"


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy bytes of `array`; object arrays pickled (what a hostile or careless writer can do)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_with_header(header: str, payload: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy file with a header text of our choosing (padded as numpy pads it) and `payload` after it."""
    text = header.encode("latin1")
    size_format = "<H" if version[0] == 1 else "<I"
    prefix = len(_MAGIC) + 2 + struct.calcsize(size_format)
    padding = (64 - (prefix + len(text) + 1) % 64) % 64
    text = text + b" " * padding + b"\n"
    return _MAGIC + bytes(version) + struct.pack(size_format, len(text)) + text + payload


def _header_of(array: np.ndarray) -> dict:
    return {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}


# Declared shapes: far more data than the member holds (a loader must not allocate what is declared), sizes
# numpy cannot even represent, and malformed ones. 2**26 float32 elements (256 MiB) is allocated lazily by
# numpy, so a loader that trusts it is caught by the memory cap without touching that much memory.
DECLARED_SHAPES = (
    (2**26,),
    (2**13, 2**13),
    (2**24, 16, 16),
    (2**62,),
    (2**31, 2**31, 2**31),
    (-1,),
    (0,),
    (0, 16, 16),
    (),
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (10**30,),
)
DECLARED_DESCRS = ("|O", "<U8", "|S4", "|V8", "<M8[s]", "<m8[D]", ">f4", "<c16", "|b1", "<f2", "|u1", "bogus", "")


def damaged_npy(data, array: np.ndarray, *, label: str = "npy") -> bytes:
    """The .npy bytes of `array`, damaged: another dtype (object, strings, structured, big-endian,
    datetime), shape (0-d, flattened, transposed, empty, an extra axis) or memory order; non-finite or
    negative values; or an edited header: a declared shape or dtype the data does not back, a header
    that is no dict, a bad magic or version; or the data truncated."""
    how = data.draw(
        st.sampled_from(
            ("dtype", "shape", "fortran", "values", "declared shape", "declared descr", "header", "truncate", "magic")
        ),
        label=f"{label}: how",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how == "dtype":
            target = data.draw(
                st.sampled_from(
                    (
                        "int8",
                        "uint16",
                        "int64",
                        "bool",
                        "float16",
                        "float64",
                        "complex128",
                        ">f4",
                        "<U3",
                        "S3",
                        "object",
                    )
                    + ("datetime64[s]", "timedelta64[ms]", "structured")
                ),
                label=f"{label}: dtype",
            )
            if target == "structured":
                out = np.zeros(array.shape, dtype=[("a", "<f4"), ("b", "<i2")])
            elif target == "object":
                out = np.empty(array.shape, dtype=object)
                out.flat[:] = [None] * out.size
            elif target.startswith(("datetime", "timedelta")):
                out = np.zeros(array.shape, dtype=target)
            else:
                source = np.real(array) if array.dtype.kind == "c" and target != "complex128" else array
                try:
                    out = source.astype(target)
                except (ValueError, TypeError):  # text that is no number
                    out = np.zeros(array.shape, dtype=target)
            return npy_bytes(out)
        if how == "shape":
            shaped = data.draw(
                st.sampled_from(("0-d", "flat", "transpose", "empty", "extra axis", "first")), label=f"{label}: shape"
            )
            out = {
                "0-d": lambda a: np.asarray(a.flat[0] if a.size else 0, dtype=a.dtype),
                "flat": np.ravel,
                "transpose": np.transpose,
                "empty": lambda a: a[:0] if a.ndim else np.empty((0,), a.dtype),
                "extra axis": lambda a: a[np.newaxis],
                "first": lambda a: a[:1] if a.ndim else a,
            }[shaped](array)
            return npy_bytes(np.ascontiguousarray(out) if shaped != "transpose" else out)
        if how == "fortran":
            return npy_bytes(np.asfortranarray(array if array.ndim >= 2 else array.reshape(1, -1)))
        if how == "values":
            out = np.array(array, copy=True)
            if out.size and out.dtype.kind in "fc":
                out.flat[data.draw(st.integers(0, out.size - 1), label=f"{label}: at")] = data.draw(
                    st.sampled_from((np.nan, np.inf, -np.inf, -1.0, 1e38)), label=f"{label}: value"
                )
            return npy_bytes(out)
        payload = np.ascontiguousarray(array).tobytes()
        header = _header_of(array)
        if how == "declared shape":
            header["shape"] = data.draw(st.sampled_from(DECLARED_SHAPES), label=f"{label}: declared shape")
            return npy_with_header(repr(header), payload)
        if how == "declared descr":
            header["descr"] = data.draw(st.sampled_from(DECLARED_DESCRS), label=f"{label}: declared descr")
            return npy_with_header(repr(header), payload)
        if how == "header":
            text = data.draw(
                st.sampled_from(
                    (
                        "{}",
                        "[1, 2]",
                        "{'descr': '<f4'}",
                        repr({**header, "fortran_order": "yes"}),
                        repr({**header, "shape": [1, 2]}),
                        repr({**header, "shape": (1.5,)}),
                        repr({**header, "extra": 1}),
                        "{'descr': " + "[" * 200 + "]" * 200 + "}",
                        "not python",
                        "",
                    )
                ),
                label=f"{label}: header text",
            )
            version = data.draw(st.sampled_from(((1, 0), (2, 0), (3, 0))), label=f"{label}: version")
            return npy_with_header(text, payload, version)
        raw = npy_bytes(array)
        if how == "truncate":
            return raw[: data.draw(st.integers(0, len(raw) - 1), label=f"{label}: cut at")]
        return data.draw(st.sampled_from((b"\x93NUMPZ", b"PK\x03\x04xx", b"\x80\x04K")), label="magic") + raw[6:]


BOMB_BYTES = 80 * 1024 * 1024
"""An .npy member of this many bytes of zeros, deflated to about 80 KiB: more than MEMORY_CAP, so a loader
that inflates a member it has no use for (an unknown name) is caught."""


@functools.cache
def bomb_npy() -> bytes:
    return npy_bytes(np.zeros(BOMB_BYTES // 4, np.float32))


def zip_bytes(members: list[tuple[str, bytes]], *, compress: bool = False) -> bytes:
    """A zip archive of (name, bytes) members, in order; repeated names allowed (zipfile warns). Members of
    a megabyte or more are deflated whatever `compress` says, so the file stays small."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
            for name, payload in members:
                deflate = compress or len(payload) >= 1 << 20
                archive.writestr(name, payload, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buffer.getvalue()


def damaged_bytes(data, raw: bytes, *, label: str = "archive") -> bytes:
    """A whole file damaged as bytes (sometimes left as is): truncated, bytes flipped, garbage before or
    after, or emptied."""
    how = data.draw(
        st.sampled_from(("as is",) * 15 + ("truncate", "flip", "flip", "prepend", "append", "empty")),
        label=f"{label}: bytes",
    )  # three in four examples keep the archive whole, so most reach the members' checks
    if how == "truncate":
        return raw[: data.draw(st.integers(0, len(raw) - 1), label=f"{label}: cut at")]
    if how == "flip":
        out = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8), label=f"{label}: flips")):
            at = data.draw(st.integers(0, len(out) - 1), label=f"{label}: flip at")
            out[at] ^= data.draw(st.integers(1, 255), label=f"{label}: xor")
        return bytes(out)
    if how == "prepend":
        return data.draw(st.binary(min_size=1, max_size=64), label=f"{label}: prefix") + raw
    if how == "append":
        return raw + data.draw(st.binary(min_size=1, max_size=64), label=f"{label}: suffix")
    if how == "empty":
        return b""
    return raw


# ---- the check ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder for one example (tmp_path is per test, not per example)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def check_loader(load: Callable, errors, names: tuple, *, cap: int = MEMORY_CAP):
    """Run `load()`: it returns (its value is returned), or raises one of `errors` whose message is one line
    naming the file (any of `names`, str() of a path). Anything else (a bare KeyError, TypeError,
    RecursionError, MemoryError, ...) propagates and fails the test. The peak of traced allocations while it
    runs must stay under `cap`."""
    tracemalloc.start()
    try:
        found = load()
    except errors as error:
        found = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < cap, f"loading a small file peaked at {peak / 2**20:.0f} MiB of traced memory"
    if currently_in_test_context():  # the plain tests of tests/fuzz/test_found.py call this too
        event(f"loaded: {type(found).__name__}" if not isinstance(found, BaseException) else _reason(found, names))
    if isinstance(found, BaseException):
        message = str(found)
        assert "\n" not in message.strip(), f"a multi-line error message: {message!r}"
        assert any(str(name) in message for name in names), f"the message names no file of {names}: {message!r}"
    return found


def _reason(error: BaseException, names) -> str:
    """The error's class and the start of its message, the file's name left out, for
    --hypothesis-show-statistics: which checks the examples reached."""
    text = str(error)
    for name in names:
        text = text.replace(str(name), "<file>")
    return f"{type(error).__name__}: {text[:60]}"
