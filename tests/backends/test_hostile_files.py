"""Crafted bundles and NPZ files are refused at the cost of their headers (docs/spec.md §1, §12).

Memory: the real `infer` / `train` command lines run in a subprocess, once on a genuine file and once on a
crafted one (a bundle whose weights inflate to 1 GiB of zeros; an NPZ whose diffraction declares 200000
patterns beside 24 coordinates), and the crafted run's peak RSS (os.wait4 on the child) may exceed the
genuine run's by at most 50 MB. Then every new refusal, in-process, on a small file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from backends.common import archive, dataset
from backends.common.archive import ArchiveError, open_archive, read_member
from backends.common.bundle_io import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MAX_MEMBERS,
    PROBE,
    WEIGHTS,
    BundleError,
    read_bundle,
    write_bundle,
)
from backends.common.config import make_config
from backends.common.dataset import DatasetError, load_dataset, save_dataset
from backends.common.simulate import simulate
from backends.common.weights import initial_weights

REPO = Path(__file__).resolve().parents[2]
MB = 1 << 20
SLACK = 50 * MB  # what a refusal may cost beyond the genuine run, peak RSS
CFG = make_config({"n_filters_scale": 1})


def _deflated(data: bytes = b"", zeros: int = 0) -> tuple[int, int, bytes]:
    """(crc32, size, raw deflate stream) of `data` then `zeros` zero bytes, built in well under a second:
    after a full flush deflate forgets its history, so every MiB of zeros compresses to the same ~1 KB."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = squeeze.compress(data) + squeeze.flush(zlib.Z_FULL_FLUSH)
    crc, mib = zlib.crc32(data), bytes(MB)
    if zeros >= MB:
        block = squeeze.compress(mib) + squeeze.flush(zlib.Z_FULL_FLUSH)
        stream += block * (zeros // MB)
        for _ in range(zeros // MB):
            crc = zlib.crc32(mib, crc)
    stream += squeeze.compress(bytes(zeros % MB)) + squeeze.flush()
    return zlib.crc32(bytes(zeros % MB), crc), len(data) + zeros, stream


def _write_zip(path, members: dict) -> Path:
    """A zip of deflated members, name -> (crc32, size the directory gives, deflate stream), written the way
    a hostile tool would: the directory says what it is told (sizes under 4 GiB, so no zip64)."""
    with open(path, "wb") as fh:
        directory = b""
        for name, (crc, size, stream) in members.items():
            offset, raw = fh.tell(), name.encode()
            fields = (20, 0, 8, 0, 0x21, crc, len(stream), size, len(raw))
            fh.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + raw + stream)
            directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, offset) + raw
        start = fh.tell()
        fh.write(directory)
        fh.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), start, 0))
    return Path(path)


def _npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _members(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rezip(dst, members: dict, method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(dst, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return Path(dst)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Genuine bundle and NPZ (N=16), and the two crafted ones built from them."""
    folder = tmp_path_factory.mktemp("hostile")
    data = simulate(seed=21, n_positions=20, n=16)
    npz = save_dataset(data, folder / "tiny.npz")
    bundle = write_bundle(
        folder / "bundle.zip",
        backend="numpy-test",
        framework_versions={},
        config=CFG,
        weights=initial_weights(0, CFG.n_filters_scale, 1.0),
        probe=data.probe,
        input_scale=1.0,
    )
    members = _members(bundle)
    crafted_bundle = _write_zip(  # weights: 1 GiB of zeros, about 1 MB deflated
        folder / "crafted.zip",
        {MANIFEST: _deflated(members[MANIFEST]), WEIGHTS: _deflated(zeros=1 << 30), PROBE: _deflated(members[PROBE])},
    )
    crafted_npz = _write_zip(  # diffraction declares 200000 x 32 x 32 float32, beside 24 coordinates
        folder / "crafted.npz",
        {
            "diffraction.npy": _deflated(_npy_header((200000, 32, 32)), zeros=200000 * 32 * 32 * 4),
            "xcoords.npy": _deflated(_npy_bytes(np.arange(24.0))),
            "ycoords.npy": _deflated(_npy_bytes(np.arange(24.0))),
            "probeGuess.npy": _deflated(_npy_bytes(np.ones((32, 32), np.complex64))),
        },
    )
    assert crafted_bundle.stat().st_size < 2 * MB and crafted_npz.stat().st_size < 2 * MB
    return {"bundle": bundle, "npz": npz, "crafted_bundle": crafted_bundle, "crafted_npz": crafted_npz}


def _run(args: list[str], cwd: Path) -> tuple[int, str, str, int]:
    """(exit status, stdout, stderr, peak RSS in bytes) of `python args` in its own process."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out, "w") as out_fh, open(err, "w") as err_fh:
        child = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out_fh, stderr=err_fh)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            child.wait()
            raise
        child.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text(), err.read_text()
    out.unlink()
    err.unlink()
    return child.returncode, *text, usage.ru_maxrss * 1024  # Linux gives kilobytes


def _check_refusal(found, crafted: Path, member: str, genuine_peak: int, out: Path) -> None:
    status, stdout, stderr, peak = found
    lines = stderr.strip().splitlines()
    assert status == 2, stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert str(crafted) in lines[0] and member in lines[0], lines[0]
    assert not out.exists() and not list(out.parent.glob(f"{out.name}.incomplete-*")), "output written"
    assert peak <= genuine_peak + SLACK, f"crafted peak {peak / MB:.0f} MB, genuine {genuine_peak / MB:.0f} MB"


@pytest.mark.slow
def test_infer_refuses_a_weights_bomb_in_bounded_memory(backend, tmp_path, files):
    infer = ["-m", f"backends.{backend.name}.infer", "--data-file", str(files["npz"])]
    status, _, stderr, genuine_peak = _run([*infer, "--bundle", str(files["bundle"]), "--output-dir", "ok"], tmp_path)
    assert status == 0, stderr[-2000:]
    found = _run([*infer, "--bundle", str(files["crafted_bundle"]), "--output-dir", "refused"], tmp_path)
    _check_refusal(found, files["crafted_bundle"], f"[member '{WEIGHTS}']", genuine_peak, tmp_path / "refused")


@pytest.mark.slow
def test_train_refuses_a_declared_diffraction_bomb_in_bounded_memory(backend, tmp_path, files):
    train = ["-m", f"backends.{backend.name}.train", "--epochs", "1", "--n-filters-scale", "1"]
    status, _, stderr, genuine_peak = _run(
        [*train, "--train-data-file", str(files["npz"]), "--output-dir", "ok"], tmp_path
    )
    assert status == 0, stderr[-2000:]
    found = _run([*train, "--train-data-file", str(files["crafted_npz"]), "--output-dir", "refused"], tmp_path)
    _check_refusal(found, files["crafted_npz"], "[key 'xcoords']", genuine_peak, tmp_path / "refused")
    assert "expected shape (200000,)" in found[2]


def _peak_traced(call) -> tuple[Exception, int]:
    """The exception `call` raises and the peak of Python and numpy allocations meanwhile (bytes)."""
    tracemalloc.start()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError("no refusal")


# ---- bundles ------------------------------------------------------------------------------------


def test_weights_bomb_is_refused_from_the_directory_alone(files):
    error, peak = _peak_traced(lambda: read_bundle(files["crafted_bundle"]))
    assert isinstance(error, BundleError), error
    assert f"[member '{WEIGHTS}']" in str(error) and "the manifest records" in str(error)
    assert peak < 4 * MB


def test_bundle_without_recorded_sizes_loads_and_is_capped(tmp_path, files):
    """A manifest written before `sizes` existed: read as before, members bounded by the caps alone."""
    members = _members(files["bundle"])
    manifest = json.loads(members[MANIFEST])
    del manifest["sizes"]
    members[MANIFEST] = json.dumps(manifest).encode()
    old = _rezip(tmp_path / "old.zip", members)
    assert read_bundle(old).config == CFG
    bomb = _write_zip(
        tmp_path / "old-bomb.zip",
        {MANIFEST: _deflated(members[MANIFEST]), WEIGHTS: _deflated(zeros=64 * MB), PROBE: _deflated(members[PROBE])},
    )
    error, peak = _peak_traced(lambda: read_bundle(bomb))
    assert isinstance(error, BundleError) and "over the cap of" in str(error) and WEIGHTS in str(error)
    assert peak < 4 * MB


@pytest.mark.parametrize(
    "sizes, needle",
    [
        ({WEIGHTS: 1, PROBE: 1}, "the manifest records 1"),
        ({WEIGHTS: "big", PROBE: 1}, "manifest sizes must give a byte count"),
        ([], "manifest sizes must give a byte count"),
    ],
)
def test_manifest_sizes_must_match_the_directory(tmp_path, files, sizes, needle):
    members = _members(files["bundle"])
    manifest = json.loads(members[MANIFEST])
    manifest["sizes"] = sizes
    members[MANIFEST] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match=needle):
        read_bundle(_rezip(tmp_path / "t.zip", members))


def test_manifest_over_its_cap_is_refused_unread(tmp_path, files):
    members = _members(files["bundle"])
    manifest = json.loads(members[MANIFEST])
    manifest["padding"] = " " * MAX_MANIFEST_BYTES
    members[MANIFEST] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match=rf"\[member '{MANIFEST}'\].*over the cap of {MAX_MANIFEST_BYTES}"):
        read_bundle(_rezip(tmp_path / "t.zip", members))


def test_manifest_nested_too_deep_is_refused(tmp_path, files):
    members = _members(files["bundle"])
    members[MANIFEST] = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BundleError, match="manifest is not JSON"):
        read_bundle(_rezip(tmp_path / "t.zip", members))


def test_directory_that_understates_a_member_is_refused(tmp_path, files):
    """The manifest and the directory agree, the deflate stream holds 8 MB more: read up to the
    directory's size only, then refused (the CRC covers the whole stream), with little memory."""
    members = _members(files["bundle"])
    crc, _, stream = _deflated(members[WEIGHTS], zeros=8 * MB)
    path = _write_zip(
        tmp_path / "lying.zip",
        {
            MANIFEST: _deflated(members[MANIFEST]),
            WEIGHTS: (crc, len(members[WEIGHTS]), stream),
            PROBE: _deflated(members[PROBE]),
        },
    )
    error, peak = _peak_traced(lambda: read_bundle(path))
    assert isinstance(error, BundleError) and f"[member '{WEIGHTS}']" in str(error), error
    assert "damaged member" in str(error) and "CRC" in str(error)
    assert peak < 4 * MB


def test_a_member_is_streamed_and_stopped_past_its_limit(tmp_path):
    path = _rezip(tmp_path / "a.zip", {"a": bytes(5 * MB)})
    with zipfile.ZipFile(path) as zf:
        tracemalloc.start()
        try:
            with pytest.raises(ArchiveError, match=r"\[member 'a'\]: inflates past the 1000 bytes"):
                read_member(path, zf, zf.getinfo("a"), limit=1000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 2 * MB


def test_too_many_members_are_refused_before_the_directory_is_parsed(tmp_path, files):
    members = _members(files["bundle"])
    members.update({f"x{i}": b"" for i in range(MAX_MEMBERS)})
    with pytest.raises(BundleError, match=f"lists {MAX_MEMBERS + 3} member.*at most {MAX_MEMBERS}"):
        read_bundle(_rezip(tmp_path / "t.zip", members))
    # An end record that claims 60000 entries is believed and refused: zipfile never parses them.
    data = bytearray(files["bundle"].read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 60000, 60000)
    (tmp_path / "claims.zip").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="lists 60000 member"):
        read_bundle(tmp_path / "claims.zip")


@pytest.mark.parametrize(
    "name, needle",
    [
        ("w" * 300, "300 characters is too long"),
        ("weights\n.safetensors", "not printable"),
        ("probe\x1b.npy", "not printable"),
        ("..\\evil", "escapes the archive root"),
    ],
    ids=["long", "newline", "escape", "backslash"],
)
def test_long_or_odd_member_names_are_refused_on_one_line(tmp_path, files, name, needle):
    members = _members(files["bundle"])
    members[name] = b"x"
    with pytest.raises(BundleError, match=needle) as info:
        read_bundle(_rezip(tmp_path / "t.zip", members))
    assert "\n" not in str(info.value) and "\x00" not in str(info.value) and len(str(info.value)) < 400


def test_duplicate_member_is_refused(tmp_path, files):
    members = _members(files["bundle"])
    path = _rezip(tmp_path / "t.zip", members)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr(PROBE, members[PROBE])
    with pytest.raises(BundleError, match=f"member '{PROBE}'.*appears twice"):
        read_bundle(path)


def test_compression_other_than_deflate_is_refused(tmp_path, files):
    with pytest.raises(BundleError, match="compression method 12 is not accepted"):
        read_bundle(_rezip(tmp_path / "t.zip", _members(files["bundle"]), method=zipfile.ZIP_BZIP2))


def _resigned(members: dict) -> dict:
    """The manifest's checksums and sizes made to follow the (altered) data members."""
    manifest = json.loads(members[MANIFEST])
    manifest["sha256"] = {m: hashlib.sha256(members[m]).hexdigest() for m in (WEIGHTS, PROBE)}
    manifest["sizes"] = {m: len(members[m]) for m in (WEIGHTS, PROBE)}
    return {**members, MANIFEST: json.dumps(manifest).encode()}


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda probe: _npy_header((2**26,), "<c8") + probe[128:], r"header declares shape \(67108864,\)"),
        (lambda probe: b"PK\x03\x04xx" + probe[6:], "not a readable .npy array"),
        (lambda probe: _npy_header((8, 32), "<c8") + probe[128:], r"probe shape \(8, 32\) does not match N=16"),
    ],
    ids=["declares 512 MiB", "a zip", "not N x N"],
)
def test_probe_header_is_checked_before_its_data(tmp_path, files, change, needle):
    members = _members(files["bundle"])
    members[PROBE] = change(members[PROBE])
    path = _rezip(tmp_path / "t.zip", _resigned(members))
    error, peak = _peak_traced(lambda: read_bundle(path))
    assert isinstance(error, BundleError) and f"[member '{PROBE}']" in str(error), error
    assert re.search(needle, str(error)), error
    assert peak < 4 * MB


def test_written_manifest_records_member_sizes(files):
    members = _members(files["bundle"])
    sizes = json.loads(members[MANIFEST])["sizes"]
    assert sizes == {WEIGHTS: len(members[WEIGHTS]), PROBE: len(members[PROBE])}


# ---- NPZ files ----------------------------------------------------------------------------------


def _arrays(m=5, n=16) -> dict:
    rng = np.random.default_rng(0)
    return {
        "diffraction": rng.uniform(0, 3, (m, n, n)).astype(np.float32),
        "xcoords": rng.uniform(10, 20, m),
        "ycoords": rng.uniform(10, 20, m),
        "probeGuess": np.ones((n, n), np.complex64),
    }


def _npz(path, arrays: dict, raw: dict | None = None) -> Path:
    """np.savez of `arrays`, plus members given as raw bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, value, allow_pickle=True)
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return Path(path)


def test_diffraction_bomb_is_refused_from_its_header(files):
    error, peak = _peak_traced(lambda: load_dataset(files["crafted_npz"]))
    assert isinstance(error, DatasetError) and error.key == "xcoords", error
    assert "expected shape (200000,)" in error.problem
    assert peak < 4 * MB


def test_header_that_disagrees_with_the_member_size_is_refused(tmp_path):
    arrays = _arrays()
    short = _npy_header((5, 16, 16)) + arrays.pop("diffraction")[:4].tobytes()
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "d.npz", arrays, {"diffraction.npy": short}))
    assert err.value.key == "diffraction"
    assert "shape (5, 16, 16) of float32 (5120 bytes)" in err.value.problem and "gives 4096 bytes" in err.value.problem


@pytest.mark.parametrize("key", ["xcoords", "extra"])
def test_object_dtype_is_refused_from_its_header(tmp_path, key):
    arrays = _arrays()
    arrays[key] = np.array([{"a": 1}] * 5, dtype=object)
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "d.npz", arrays))
    assert err.value.key == key and "needs pickle" in err.value.problem


def test_member_that_is_no_npy_array_is_refused(tmp_path):
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "d.npz", _arrays(), {"notes.txt": b"hi"}))
    assert err.value.key == "notes.txt" and "not an .npy array" in err.value.problem


def test_declared_total_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "MAX_DATASET_BYTES", 4096)
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "d.npz", _arrays()))
    assert "declare" in err.value.problem and "over the cap of 4096" in err.value.problem


def test_header_dtype_and_shape_checks_come_before_loading(tmp_path, monkeypatch):
    """Uncastable dtypes and a probe of the wrong N are found in the headers: no array is loaded."""

    def no_load(*args, **kwargs):
        raise AssertionError("loaded")

    monkeypatch.setattr(dataset, "load_npz", no_load)
    arrays = _arrays()
    arrays["xcoords"] = arrays["xcoords"].astype(str)
    assert (
        "cannot be safely cast"
        in pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "a.npz", arrays)).value.problem
    )
    arrays = _arrays()
    arrays["probeGuess"] = np.ones((24, 24), np.complex64)
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "b.npz", arrays)).value
    assert err.key == "probeGuess" and "(16, 16)" in err.problem


def test_zip_directory_limits_apply_to_npz(tmp_path):
    arrays = _arrays()
    arrays.update({f"k{i}": np.zeros(1) for i in range(archive.MAX_NPZ_MEMBERS)})
    err = pytest.raises(DatasetError, load_dataset, _npz(tmp_path / "d.npz", arrays))
    assert f"at most {archive.MAX_NPZ_MEMBERS} member(s)" in err.value.problem


def test_open_archive_refuses_what_is_no_zip_end_record(tmp_path):
    path = tmp_path / "z.zip"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ArchiveError, match="no end of central directory record"):
        open_archive(path, max_members=4)


def test_npz_crc_damage_is_refused(tmp_path):
    path = save_dataset(simulate(seed=1, n_positions=8, n=16), tmp_path / "d.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("diffraction.npy")
    # A byte of the stored member's data, past its local header (30 bytes, name, extra) and the .npy header.
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_length + extra_length + 200] ^= 0xFF
    path.write_bytes(bytes(data))
    err = pytest.raises(DatasetError, load_dataset, path)
    assert err.value.key == "diffraction" and "CRC" in err.value.problem
