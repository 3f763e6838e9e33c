"""Fuzzing the archive loaders: the dataset NPZ (backends.common.dataset.load_dataset) and the bundle
(backends.common.bundle_io.read_bundle).

Each example damages a genuine file its project writer made (save_dataset, write_bundle): members of
another dtype, shape or memory order, .npy headers that declare more than the member holds, members
missing, extra, duplicated or misnamed, a damaged manifest or safetensors header (re-signed, so the
damage gets past the checksums), then the zip itself truncated or flipped. The loader must load it or raise
DatasetError / BundleError in one line naming the file, within the memory cap.

The caps these loaders hold to (declared sizes and headers checked before any byte is inflated) are
backends/common/archive.py's; what the fuzzing found in them is kept in tests/fuzz/test_found.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from backends.common.bundle_io import MANIFEST, PROBE, WEIGHTS, BundleError, read_bundle
from backends.common.dataset import DatasetError, load_dataset

from .mutations import (
    bomb_npy,
    check_loader,
    damaged_bytes,
    damaged_npy,
    json_text,
    mutate_json,
    mutate_text,
    npy_bytes,
    scratch,
    zip_bytes,
)

NAME_CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
"""Anything a zip member or tensor name can hold: zipfile cuts a name at NUL, UTF-8 has no lone surrogates."""
MEMBER_NAMES = st.one_of(
    st.sampled_from(
        (
            "diffraction.npy",
            "diff3d.npy",
            "probeGuess.npy",
            "metadata.npy",
            "diffraction",
            "DIFFRACTION.npy",
            "sub/diffraction.npy",
            "../escape.npy",
            "/absolute.npy",
            "C:evil.npy",
            "folder/",
            ".npy",
            "manifest.json",
            "weights.safetensors",
            "probe.npy",
            "code.py",
        )
    ),
    st.text(NAME_CHARACTERS, min_size=1, max_size=12),
)
TENSOR_NAMES = st.text(NAME_CHARACTERS, min_size=1, max_size=12)

MEMBER_OPERATIONS = ("npy", "npy", "drop", "rename", "add", "repeat") * 2 + ("bomb",)
"""The bomb is rare: it costs a second (80 MiB deflated, then inflated or refused)."""


def _members(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def _array(payload: bytes) -> np.ndarray | None:
    """The array an .npy member holds; None for one an earlier operation damaged (it stays as it is)."""
    try:
        found = np.load(io.BytesIO(payload), allow_pickle=False)
    except Exception:  # any way numpy refuses damaged bytes
        return None
    return found if isinstance(found, np.ndarray) and found.nbytes < 1 << 20 else None


def damaged_members(data, members: list[tuple[str, bytes]], *, label: str) -> list[tuple[str, bytes]]:
    """The archive's members after 0 to 3 operations on whole members: damage one's .npy (damaged_npy), drop
    one, rename one, add one (an array or bytes, any name: an alias, a path that escapes, a folder), repeat
    one's name with other bytes, add an unknown member of zeros that inflates past the memory cap."""
    members = list(members)
    for _ in range(data.draw(st.integers(0, 3), label=f"{label}: member operations")):
        operation = data.draw(st.sampled_from(MEMBER_OPERATIONS), label=label)
        index = data.draw(st.integers(0, len(members) - 1), label=f"{label}: member") if members else None
        if operation == "npy" and index is not None and _array(members[index][1]) is not None:
            name, payload = members[index]
            members[index] = (name, damaged_npy(data, _array(payload), label=name))
        elif operation == "drop" and index is not None:
            members.pop(index)
        elif operation == "rename" and index is not None:
            members[index] = (data.draw(MEMBER_NAMES, label=f"{label}: new name"), members[index][1])
        elif operation == "add":
            name = data.draw(MEMBER_NAMES, label=f"{label}: added name")
            payload = data.draw(
                st.one_of(
                    st.binary(max_size=64),
                    st.sampled_from(
                        (
                            npy_bytes(np.zeros((2, 16, 16), np.float32)),
                            npy_bytes(np.arange(3.0)),
                            npy_bytes(np.array("text")),
                        )
                    ),
                ),
                label=f"{label}: added bytes",
            )
            members.append((name, payload))
        elif operation == "bomb":  # a member no loader needs, of zeros that inflate past the memory cap
            members.append((data.draw(st.sampled_from(("junk.npy", "extra.npy", "code.py")), label="bomb"), bomb_npy()))
        elif operation == "repeat" and index is not None:
            name, payload = members[index]
            members.append((name, data.draw(st.sampled_from((b"", payload[: len(payload) // 2], payload[::-1])))))
    return members


@given(data=st.data())
def test_dataset_npz(data, genuine_dataset):
    members = _members(genuine_dataset)
    if data.draw(st.booleans(), label="metadata damaged"):
        metadata = json.loads(str(np.load(io.BytesIO(dict(members)["metadata.npy"]))))
        text = json_text(mutate_json(data, metadata, label="metadata"))
        raw = mutate_text(data, text, label="metadata text")
        members = [
            (name, npy_bytes(np.array(raw.decode("utf-8", "replace"))) if name == "metadata.npy" else payload)
            for name, payload in members
        ]
    members = damaged_members(data, members, label="npz")
    archive = damaged_bytes(data, zip_bytes(members, compress=data.draw(st.booleans(), label="deflate")))
    with scratch() as folder:
        path = folder / "scan.npz"
        path.write_bytes(archive)
        check_loader(lambda: load_dataset(path), DatasetError, (path,))


def _damaged_weights(data, payload: bytes) -> bytes:
    """The safetensors member with one tensor dropped, renamed, re-shaped or re-typed, one added, or its
    header damaged (a declared length past the end, truncated JSON)."""
    weights = st_load(payload)
    names = sorted(weights)
    how = data.draw(st.sampled_from(("drop", "rename", "shape", "dtype", "add", "header", "truncate")), label="how")
    name = data.draw(st.sampled_from(names), label="weights: tensor")
    if how == "drop":
        weights.pop(name)
    elif how == "rename":
        weights[data.draw(TENSOR_NAMES, label="weights: new name")] = weights.pop(name)
    elif how == "shape":
        reshape = data.draw(st.sampled_from(("flat", "first", "extra axis")), label="weights: shape")
        found = weights[name]
        found = {"flat": found.ravel(), "first": found[..., :1] if found.ndim else found, "extra axis": found[None]}
        weights[name] = np.ascontiguousarray(found[reshape])
    elif how == "dtype":
        weights[name] = weights[name].astype(data.draw(st.sampled_from(("float16", "float64", "int32", "uint8"))))
    elif how == "add":
        weights[data.draw(TENSOR_NAMES, label="weights: added")] = np.zeros(3, np.float32)
    elif how == "header":
        size = data.draw(st.sampled_from((0, 2**40, 2**63 - 1, len(payload))), label="weights: header size")
        return size.to_bytes(8, "little") + payload[8:]
    else:
        return payload[: data.draw(st.integers(0, len(payload) - 1), label="weights: cut at")]
    return st_save(weights)


@given(data=st.data())
def test_bundle(data, genuine_bundle):
    members = dict(_members(genuine_bundle))
    manifest = json.loads(members[MANIFEST])
    if data.draw(st.booleans(), label="probe damaged"):
        members[PROBE] = damaged_npy(data, np.load(io.BytesIO(members[PROBE])), label="probe")
    if data.draw(st.booleans(), label="weights damaged"):
        members[WEIGHTS] = _damaged_weights(data, members[WEIGHTS])
    if data.draw(st.booleans(), label="re-signed"):  # the checksums follow the damage, so the loader reads on
        manifest["sha256"] = {name: hashlib.sha256(members[name]).hexdigest() for name in (WEIGHTS, PROBE)}
        if isinstance(manifest.get("sizes"), dict):  # member sizes, where the writer records them
            manifest["sizes"] = {name: len(members[name]) for name in (WEIGHTS, PROBE)}
    if data.draw(st.booleans(), label="manifest damaged"):
        members[MANIFEST] = mutate_text(data, json_text(mutate_json(data, manifest, label="manifest")))
    else:
        members[MANIFEST] = json.dumps(manifest).encode()
    ordered = damaged_members(data, list(members.items()), label="bundle")
    archive = damaged_bytes(data, zip_bytes(ordered, compress=True))
    with scratch() as folder:
        path = folder / "bundle.zip"
        path.write_bytes(archive)
        check_loader(lambda: read_bundle(path), BundleError, (path,))
