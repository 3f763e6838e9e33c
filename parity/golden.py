"""Blessed reference outputs, one folder per matrix config: golden/<config_id>/.

Each stage is one small file: `<stage>.npz` for arrays (read with
allow_pickle=False) or `<stage>.json` for plain data such as a config, plus
`manifest.json` (config, framework versions, platform, commit, times, the
sha256 of every stage file and the environment fingerprint of the machine that
wrote it: parity.envinfo.fingerprint; manifests written before fingerprints
lack it and are read as "unknown", never as different).

Rules (docs/tolerances.md, STYLE.md 7): a missing golden fails and says how
to create it; regeneration is explicit (`--force-regen`, the option
pytest-regressions already registers, or `python -m parity regen`); `bless`
refuses to write when the backends disagree with each other; every write is
atomic (backends.common.fileio: temp file + os.replace), npz files are
byte-reproducible, and nothing of another config or stage is ever deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from backends.common.archive import ArchiveError, load_npz
from backends.common.fileio import (
    VersionedJsonError,
    atomic_write_bytes,
    installed_versions,
    json_text,
    read_versioned_json,
    write_npz,
)
from parity.comparators import compare_allclose, compare_exact, error_comparison
from parity.envinfo import (
    TOLERANCE_CLASSES,
    check_name,
    collect_environment,
    fingerprint,
    fingerprint_differences,
    utc_now,
)
from parity.stages import stage_index
from parity.stages.kit import POINT_MARK
from parity.tolerances import Tolerance
from parity.verdict import GOLDEN, Check, Comparison, closing_line, headline

GOLDEN_FORMAT = "pinn-parity-golden"
GOLDEN_FORMAT_VERSION = 1
GOLDEN_MAX_BYTES = 1 << 28  # declared array bytes one stage file may hold
MANIFEST_NAME = "manifest.json"
MAX_FILE_BYTES = 2 * 1024 * 1024  # one stage file; the whole tree must stay a few MB

ToleranceLookup = Callable[[str, str, object], Tolerance]


class GoldenError(ValueError):
    """A golden file or manifest is unusable, or a write was refused for its content."""


class GoldenRefused(GoldenError):
    """bless() was asked to store outputs the backends do not agree on."""


def regen_hint(config_id: str) -> str:
    return (
        f"pytest parity/ --force-regen --parity-config {config_id}  or  "
        f"python -m parity regen --parity-config {config_id}"
    )


def _normalized(data):
    """What `data` reads back as from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(data, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be stored in a JSON golden: {value!r}")


def _is_array_data(data: Mapping) -> bool:
    return any(isinstance(value, np.ndarray) for value in data.values())


def _golden_array(name, value) -> np.ndarray:
    array = np.asarray(value)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise GoldenError(f"golden array name {name!r} must be a plain non-empty string")
    if array.dtype.kind not in "biufcU":
        raise GoldenError(f"golden array {name!r} has dtype {array.dtype}, which cannot be stored without pickle")
    return array


def _npz_bytes(data: Mapping) -> bytes:
    """The deterministic npz of `data` (fileio.write_npz, deflated); every array checked first."""
    arrays = {name: _golden_array(name, value) for name, value in data.items()}
    buffer = io.BytesIO()
    write_npz(buffer, arrays, compress=True)
    return buffer.getvalue()


def _json_bytes(data) -> bytes:
    return json_text(data, default=_json_default).encode("utf-8")


def _store(target: Path, content: bytes) -> str:
    """Write `content` to `target` atomically, after the size check; return its sha256.

    The bytes are built in memory first, so a value that fails to serialise, or a file
    over the limit, leaves `target` as it was and no temporary file behind."""
    if len(content) > MAX_FILE_BYTES:
        raise GoldenError(
            f"{target}: {len(content)} bytes exceeds the {MAX_FILE_BYTES}-byte limit of "
            "one golden file; store fewer or smaller (float32/complex64) arrays"
        )
    atomic_write_bytes(target, content)
    return hashlib.sha256(content).hexdigest()


def _before_last_line(message: str, line: str) -> str:
    """`line` inserted before the message's closing line (what to do next stays last)."""
    *body, last = message.splitlines()
    return "\n".join([*body, line, last]) if body else f"{message}\n{line}"


def _later_points(name: str, keys) -> list[str]:
    """`name@1`, `name@2`, ... while present in `keys` (POINT_MARK)."""
    out = []
    while f"{name}{POINT_MARK}{len(out) + 1}" in keys:
        out.append(f"{name}{POINT_MARK}{len(out) + 1}")
    return out


def _first_agreeing(points, tol, **where) -> Comparison:
    """allclose at the first point that agrees (points: [(candidate, golden), ...], the stage's own first);
    with more than one point, measured["point"] says which was judged and the message lists every point's
    max_abs up to it. None agrees: the first point's failure, every point's figure added."""
    results = []
    for candidate, golden in points:
        results.append(compare_allclose(candidate, golden, tol, **where))
        if results[-1].passed:
            break
    if len(points) == 1:
        return results[0]
    judged = results[-1] if results[-1].passed else results[0]
    figures = ", ".join(f"{r.measured.get('max_abs', float('nan')):.3g}" for r in results)
    if judged is results[0] and judged.passed:
        line = f"  judged at point 0 of {len(points)}"
    elif judged.passed:
        line = (
            f"  max_abs at points 0..{len(results) - 1}: {figures}; judged at point {len(results) - 1}, the first "
            "that agrees: the earlier ones hold a kink at float32 rounding (docs/tolerances.md, gradients)"
        )
    else:
        line = f"  max_abs at points 0..{len(results) - 1}: {figures}; none agrees: judged at point 0"
    point = len(results) - 1 if judged.passed else 0
    message = _before_last_line(judged.message, line)
    return replace(judged, measured={**judged.measured, "point": point}, message=message)


class GoldenStore:
    """The golden/ tree: check outputs against it, write and bless new references."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def folder(self, config_id: str) -> Path:
        return self.root / check_name("config id", config_id)

    def manifest_path(self, config_id: str) -> Path:
        return self.folder(config_id) / MANIFEST_NAME

    def stage_file(self, config_id: str, stage: str) -> Path | None:
        """The existing golden file of a stage, or None."""
        stage_index(stage)
        found = [
            path
            for path in (self.folder(config_id) / f"{stage}.npz", self.folder(config_id) / f"{stage}.json")
            if path.exists()
        ]
        if len(found) > 1:
            raise GoldenError(f"both {found[0]} and {found[1]} exist; remove the stale one")
        return found[0] if found else None

    def read_manifest(self, config_id: str) -> dict | None:
        """The validated manifest, None when there is none; GoldenError names a bad one."""
        path = self.manifest_path(config_id)
        if not path.exists():
            return None
        try:
            manifest = read_versioned_json(
                path,
                kind=GOLDEN_FORMAT,
                version=GOLDEN_FORMAT_VERSION,
                kind_key="format",
                version_key="format_version",
                what="golden manifest",
            )
        except VersionedJsonError as error:
            raise GoldenError(str(error)) from None
        if manifest.get("config_id") != config_id:
            raise GoldenError(
                f"{path}: manifest is for config {manifest.get('config_id')!r} but lives in the folder of {config_id!r}"
            )
        config = manifest.get("config")
        if not isinstance(config, dict):
            raise GoldenError(f"{path}: manifest has no config object")
        named = config.get("config_id", config.get("id"))
        if named is not None and named != config_id:
            raise GoldenError(f"{path}: manifest config names {named!r}, not the folder's {config_id!r}")
        if not isinstance(manifest.get("stages"), dict):
            raise GoldenError(f"{path}: manifest has no stages object")
        recorded = manifest.get("fingerprint")
        if recorded is not None and (
            not isinstance(recorded, dict) or recorded.get("tolerance_class") not in TOLERANCE_CLASSES
        ):
            raise GoldenError(
                f"{path}: manifest fingerprint must be an object whose tolerance_class is one of "
                f"{', '.join(TOLERANCE_CLASSES)} (parity.envinfo.fingerprint), got {recorded!r}"
            )
        return manifest

    def running_fingerprint(self) -> dict:
        """The fingerprint of this process's machine, computed once per store."""
        if not hasattr(self, "_running"):
            self._running = fingerprint()
        return self._running

    def fingerprint_differences(self, config_id: str) -> list[str]:
        """How the fingerprint of the machine that wrote the config's golden differs from this one's
        ('cpu.isa: avx512 -> avx2', ...); [] when equal, when there is no manifest or it has no fingerprint."""
        try:
            manifest = self.read_manifest(config_id)
        except GoldenError:
            return []  # the check itself reports it
        return fingerprint_differences((manifest or {}).get("fingerprint"), self.running_fingerprint())

    def load(self, config_id: str, stage: str) -> dict:
        """The stored golden of a stage; GoldenError naming the file when missing or corrupt."""
        path = self.stage_file(config_id, stage)
        if path is None:
            raise GoldenError(
                f"no golden for {config_id}/{stage} under {self.root}; create it with {regen_hint(config_id)}"
            )
        if path.suffix == ".npz" and not zipfile.is_zipfile(path):
            # np.load would try the bytes as a pickle and complain about allow_pickle instead.
            raise GoldenError(f"{path}: corrupt golden file (not an npz archive)")
        try:
            if path.suffix == ".json":
                return json.loads(path.read_text(encoding="utf-8"))
            # Headers first: shapes against the zip directory, no pickles, at most GOLDEN_MAX_BYTES.
            return load_npz(path, max_bytes=GOLDEN_MAX_BYTES)
        except ArchiveError as error:
            member = f"{error.member}: " if error.member else ""
            raise GoldenError(f"{path}: corrupt golden file ({member}{error.problem})") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as error:
            raise GoldenError(f"{path}: corrupt golden file ({type(error).__name__}: {error})") from None

    # ---- checking ---------------------------------------------------------------------------

    def _failure(self, config_id, stage, check, metric, text, details=()) -> Comparison:
        lines = [headline(config_id, stage, check, metric, text), *details, closing_line(config_id, check, None)]
        return Comparison(
            config_id=config_id,
            stage=stage,
            check=check,
            metric=metric,
            passed=False,
            kind="exact",
            measured={},
            tolerance=None,
            worst=None,
            message="\n".join(lines),
        )

    def check(
        self,
        config_id: str,
        stage: str,
        data,
        tol_lookup: ToleranceLookup | None,
        *,
        label: str = "run",
        metric: str = "max_abs",
        config: Mapping | None = None,
    ) -> list[Comparison]:
        """Compare `data` with the stored golden of (config, stage); one Comparison per key.

        `data` is a mapping of arrays (golden .npz) or a JSON-able mapping (golden .json).
        Float and complex arrays use allclose with tol_lookup(stage, metric, dtype) (pass
        parity.tolerances.tolerance); integer, bool and string arrays, JSON data, and every
        array when tol_lookup is None, must match exactly. When `config` is given, a golden
        made from another config fails as stale. A missing golden never passes.
        """
        check = Check(label, GOLDEN)
        manifest = self.read_manifest(config_id)
        path = self.stage_file(config_id, stage)
        if path is None:
            return [
                self._failure(
                    config_id,
                    stage,
                    check,
                    "golden",
                    f"no golden file {self.folder(config_id) / stage}.npz|.json",
                    [f"  create it with: {regen_hint(config_id)}"],
                )
            ]
        entry = (manifest or {}).get("stages", {}).get(stage)
        if entry is None:
            return [
                self._failure(
                    config_id,
                    stage,
                    check,
                    "golden",
                    f"{path} has no entry in {self.manifest_path(config_id)}",
                    ["  a golden is written only with its manifest entry"],
                )
            ]
        if config is not None and _normalized(config) != manifest["config"]:
            return [
                self._failure(
                    config_id,
                    stage,
                    check,
                    "golden",
                    f"{path} was made from another config (stale golden)",
                    [f"  manifest: {manifest['config']}", f"  this run: {_normalized(config)}"],
                )
            ]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.get("sha256"):
            return [
                self._failure(
                    config_id,
                    stage,
                    check,
                    "golden",
                    f"{path} does not match the sha256 in its manifest (edited by hand or corrupt)",
                )
            ]
        try:
            stored = self.load(config_id, stage)
        except GoldenError as error:
            return [self._failure(config_id, stage, check, "golden", str(error))]
        if path.suffix == ".json":
            if not isinstance(data, Mapping) or _is_array_data(data):
                return [
                    self._failure(config_id, stage, check, "golden", f"{path} holds JSON data but arrays were given")
                ]
            return [
                compare_exact(_normalized(data), stored, config_id=config_id, stage=stage, check=check, metric="fields")
            ]
        if not isinstance(data, Mapping):
            return [
                self._failure(config_id, stage, check, "golden", f"{path} holds named arrays; pass a mapping of arrays")
            ]
        results = self._check_arrays(config_id, stage, check, metric, data, stored, tol_lookup)
        differences = self.fingerprint_differences(config_id) if any(not r.passed for r in results) else []
        if differences:  # a failure on another machine's golden says so, before its closing line
            line = f"  golden written on another machine: {'; '.join(differences)}"
            results = [r if r.passed else replace(r, message=_before_last_line(r.message, line)) for r in results]
        return results

    def _check_arrays(self, config_id, stage, check, metric, data, stored, tol_lookup):
        results = []
        only_run = sorted(set(data) - set(stored))
        only_golden = sorted(set(stored) - set(data))
        if only_run or only_golden:
            results.append(
                self._failure(
                    config_id,
                    stage,
                    check,
                    "keys",
                    "keys differ",
                    [f"  only in this run: {only_run}", f"  only in the golden: {only_golden}"],
                )
            )
        common = set(data) & set(stored)
        for name in sorted(n for n in common if POINT_MARK not in n):
            candidate, golden = np.asarray(data[name]), stored[name]
            if tol_lookup is not None and golden.dtype.kind in "fc":
                points = [(np.asarray(data[k]), stored[k]) for k in _later_points(name, common)]
                results.append(
                    _first_agreeing(
                        [(candidate, golden), *points],
                        tol_lookup(stage, metric, golden.dtype),
                        config_id=config_id,
                        stage=stage,
                        check=check,
                        metric=f"{metric}[{name}]",
                    )
                )
            else:
                results.append(
                    compare_exact(
                        candidate, golden, config_id=config_id, stage=stage, check=check, metric=f"exact[{name}]"
                    )
                )
        return results

    # ---- writing ----------------------------------------------------------------------------

    def write(self, config_id: str, stage: str, data: Mapping, manifest_info: Mapping) -> Path:
        """Store `data` as the golden of (config, stage) and update the manifest, atomically.

        manifest_info: "config" (the effective config, required), "framework_versions"
        (required), optional "platform" and "commit" (collected here when absent), optional
        "reference_backend" (recorded: which backend's outputs the golden holds), optional
        "fingerprint" (parity.envinfo.fingerprint of this machine when absent).
        Refuses (GoldenError) when the folder's manifest holds another config.
        """
        stage_index(stage)
        if not isinstance(data, Mapping) or not data:
            raise GoldenError(f"golden data for {config_id}/{stage} must be a non-empty mapping")
        for field_name in ("config", "framework_versions"):
            if not isinstance(manifest_info.get(field_name), Mapping):
                raise GoldenError(f"manifest_info needs a {field_name!r} mapping")
        folder = self.folder(config_id)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = self.read_manifest(config_id)
        config = _normalized(dict(manifest_info["config"]))
        if manifest is not None and manifest["config"] != config:
            raise GoldenError(
                f"{self.manifest_path(config_id)} holds another config for "
                f"{config_id!r}; a config id must not change meaning. Give the "
                "new config a new id, or delete this folder and regenerate it"
            )
        named = config.get("config_id", config.get("id"))
        if named is not None and named != config_id:
            raise GoldenError(f"config names {named!r} but is written under {config_id!r}")
        fmt, content = ("npz", _npz_bytes(data)) if _is_array_data(data) else ("json", _json_bytes(data))
        target = folder / f"{stage}.{fmt}"
        digest = _store(target, content)
        # The same stage in the other format is replaced, not kept beside (it would be stale).
        (folder / f"{stage}.{'json' if fmt == 'npz' else 'npz'}").unlink(missing_ok=True)
        now = utc_now()
        env = None if {"platform", "commit"} <= set(manifest_info) else collect_environment()
        updated = dict(manifest or {"created": now, "stages": {}})
        updated.update(
            {
                "format": GOLDEN_FORMAT,
                "format_version": GOLDEN_FORMAT_VERSION,
                "config_id": config_id,
                "config": config,
                "framework_versions": _normalized(dict(manifest_info["framework_versions"])),
                "platform": manifest_info.get("platform") or env["platform"],
                "commit": manifest_info.get("commit") or env["commit"],
                "fingerprint": _normalized(
                    dict(manifest_info.get("fingerprint") or fingerprint(manifest_info["framework_versions"]))
                ),
                "updated": now,
            }
        )
        if manifest_info.get("reference_backend"):  # the backend whose outputs the golden holds
            updated["reference_backend"] = str(manifest_info["reference_backend"])
        updated["stages"] = dict(
            updated["stages"], **{stage: {"file": target.name, "sha256": digest, "written": now, "keys": sorted(data)}}
        )
        _store(self.manifest_path(config_id), _json_bytes(updated))
        return target

    def bless(
        self,
        config_id: str,
        stage: str,
        data: Mapping,
        cross_backend_comparisons: Iterable[Comparison],
        manifest_info: Mapping,
    ) -> Path:
        """write() only if the backends agree: every given cross-backend comparison of this
        config passed. GoldenRefused lists the failing ones otherwise."""
        comparisons = list(cross_backend_comparisons)
        if not comparisons:
            raise GoldenRefused(
                f"refusing to bless {config_id}/{stage}: no cross-backend comparison was given, so agreement is unknown"
            )
        foreign = [c for c in comparisons if c.config_id != config_id or c.check.right == GOLDEN]
        if foreign:
            raise GoldenRefused(
                f"refusing to bless {config_id}/{stage}: comparisons of another "
                "config or against a golden are not cross-backend evidence:\n"
                + "\n".join(f"  {c.headline}" for c in foreign)
            )
        failed = [c for c in comparisons if not c.passed]
        if failed:
            raise GoldenRefused(
                f"refusing to bless {config_id}/{stage}: {len(failed)} of "
                f"{len(comparisons)} cross-backend comparisons failed:\n" + "\n".join(f"  {c.headline}" for c in failed)
            )
        return self.write(config_id, stage, data, manifest_info)

    def judge(
        self,
        config_id: str,
        stage: str,
        by_backend: Mapping[str, Mapping],
        reference: str,
        *,
        metric: str,
        config: Mapping,
        cross_backend_comparisons: Iterable[Comparison],
        regen: bool,
        tol_lookup: ToleranceLookup | None,
    ) -> list[Comparison]:
        """A stage's golden verdicts, in one visit: under `regen` the reference's data is blessed first
        (refused, as a failed comparison, while the backends disagree), then every backend's data is
        checked against the stored golden. No reference data (a stage without a golden): nothing."""
        golden = by_backend.get(reference)
        if golden is None:
            return []
        out = []
        if regen:
            check = Check(reference, GOLDEN)
            info = {"config": config, "framework_versions": installed_versions(), "reference_backend": reference}
            try:
                path = self.bless(config_id, stage, golden, cross_backend_comparisons, info)
            except GoldenError as exc:
                return [error_comparison(config_id=config_id, stage=stage, check=check, metric="regen", error=exc)]
            out.append(
                Comparison(
                    config_id=config_id,
                    stage=stage,
                    check=check,
                    metric="regenerated",
                    passed=True,
                    kind="exact",
                    measured={},
                    tolerance=None,
                    worst=None,
                    message=f"[{config_id}] stage {stage}: golden written to {path}",
                )
            )
        for name, data in by_backend.items():
            out += self.check(config_id, stage, data, tol_lookup, label=name, metric=metric, config=config)
        return out
