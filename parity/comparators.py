"""Comparators: two outputs in, one structured Comparison out.

Every comparator checks in a fixed order (keys, dtype, shape, non-finite
values, then values) and stops at the first kind of problem, because a dtype
or shape mismatch makes value statistics meaningless. A NaN or inf anywhere is
a failure: NaN compares false with everything, so letting it through would
turn "both broken" into "both equal".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from backends.common import imagemetrics
from parity.origin import UNKNOWN, Origin, Places, describe
from parity.tolerances import Tolerance
from parity.verdict import (
    COULD_NOT_RUN,
    Check,
    Comparison,
    closing_line,
    fmt_error,
    fmt_index,
    fmt_value,
    headline,
    percent,
)

WORST_ROWS = 5
RECONSTRUCTION_METRICS = ("rel_error", "ssim", "frc")
_TINY = np.finfo(np.float64).tiny
TF_TORCH = Check("tf_pinn", "torch_pinn")  # the comparators' default label


@dataclass(frozen=True)
class _Subject:
    """What is being compared; builds the Comparison and its message lines."""

    config_id: str
    stage: str
    check: Check
    metric: str

    @property
    def labels(self) -> tuple[str, str]:
        return self.check.side_a, self.check.side_b

    def result(
        self,
        *,
        passed,
        kind,
        text,
        details=(),
        measured=None,
        tol=None,
        tolerance=None,
        worst=None,
        extra=None,
        closing=None,
    ) -> Comparison:
        lines = [headline(self.config_id, self.stage, self.check, self.metric, text)]
        if not passed:
            lines.extend(details)
            if tol is not None:
                lines.append(f"  tolerance provenance: {tol.summary()}")
            lines.append(closing or closing_line(self.config_id, self.check, tol.key if tol else None))
        return Comparison(
            config_id=self.config_id,
            stage=self.stage,
            check=self.check,
            metric=self.metric,
            passed=passed,
            kind=kind,
            measured=measured or {},
            tolerance=tolerance,
            worst=worst,
            message="\n".join(lines),
            extra=extra or {},
        )


def _tol_text(tol: Tolerance) -> str:
    return f"atol={tol.value:g}, rtol={tol.rtol:g}" if tol.rtol else f"{tol.value:g}"


def _where(key: str, index) -> str:
    return f"{key} {fmt_index(index)}" if key else fmt_index(index)


# ---- structure: keys, dtype, shape, finiteness ----------------------------------------------


def _pairs(a, b, labels) -> tuple[dict, tuple[str, list[str]] | None]:
    """{key: (array_a, array_b)}; key "" for a single array. Or the keys problem."""
    la, lb = labels
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        kinds = {True: "a mapping", False: "an array"}
        return {}, (
            f"keys differ: {la} gave {kinds[isinstance(a, Mapping)]}, {lb} gave {kinds[isinstance(b, Mapping)]}",
            [],
        )
    if not isinstance(a, Mapping):
        return {"": (np.asarray(a), np.asarray(b))}, None
    only_a, only_b = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
    if only_a or only_b:
        return {}, ("keys differ", [f"  only in {la}: {only_a}", f"  only in {lb}: {only_b}"])
    if not a:
        return {}, ("nothing to compare: both mappings are empty", [])
    return {key: (np.asarray(a[key]), np.asarray(b[key])) for key in sorted(a, key=str)}, None


def _structure(pairs: dict, labels) -> tuple[str, list[str], dict] | None:
    """The first structural problem (dtype, shape, non-finite) over all keys, or None."""
    la, lb = labels
    single = list(pairs) == [""]
    for aspect in ("dtype", "shape"):
        bad = [
            (key, getattr(x, aspect), getattr(y, aspect))
            for key, (x, y) in pairs.items()
            if getattr(x, aspect) != getattr(y, aspect)
        ]
        if bad:
            if single:
                return f"{aspect} differs: {la} {bad[0][1]}, {lb} {bad[0][2]}", [], {}
            lines = [f"  {key}: {la} {va}, {lb} {vb}" for key, va, vb in bad]
            return f"{aspect} differs for {len(bad)} of {len(pairs)} arrays", lines, {}
    if sum(x.size for x, _ in pairs.values()) == 0:
        return "nothing to compare: the arrays are empty", [], {}
    for key, (x, _) in pairs.items():
        if x.dtype.kind not in "biufcUSM":
            return f"unsupported dtype {x.dtype} for {key or 'the array'}", [], {}
    lines, counts = [], {"n_nan_a": 0, "n_nan_b": 0, "n_inf_a": 0, "n_inf_b": 0}
    for key, (x, y) in pairs.items():
        if x.dtype.kind not in "fc":
            continue
        parts = []
        for side, label, arr in (("a", la, x), ("b", lb, y)):
            n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
            counts[f"n_nan_{side}"] += n_nan
            counts[f"n_inf_{side}"] += n_inf
            if n_nan or n_inf:
                first = np.argwhere(~np.isfinite(arr))[0]
                parts.append(f"{label} has {n_nan} NaN and {n_inf} inf of {arr.size} (first at {fmt_index(first)})")
        if parts:
            lines.append(f"  {key + ': ' if key else ''}{'; '.join(parts)}")
    if lines:
        total = sum(counts.values())
        return (
            f"{total} non-finite value(s) (NaN/inf never pass)",
            lines,
            {name: float(value) for name, value in counts.items()},
        )
    return None


def _worst_table(rows: list[tuple], labels) -> list[str]:
    """Rows (place, value_a, value_b, abs err[, rel err]) as an aligned text table."""
    la, lb = labels
    header = ("index", la, lb, "abs err", "rel err")[: len(rows[0])]
    cells = [header] + [
        (place, fmt_value(va), fmt_value(vb), *(fmt_error(e) if e == e else "-" for e in errors))
        for place, va, vb, *errors in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["    " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]


# ---- allclose -------------------------------------------------------------------------------


def compare_allclose(
    a,
    b,
    tol: Tolerance,
    *,
    config_id: str,
    stage: str | None = None,
    check: Check = TF_TORCH,
    metric: str | None = None,
) -> Comparison:
    """|a - b| <= atol + rtol·|b| elementwise (b is the reference); arrays, scalars or
    mappings of arrays (one verdict over all keys, e.g. per-tensor gradients)."""
    subject = _Subject(config_id, stage or tol.stage, check, metric or tol.metric)
    labels = subject.labels
    tol_info = dict(tol.to_dict(), atol=tol.value, measure="max_abs")
    pairs, problem = _pairs(a, b, labels)
    problem = problem or _structure(pairs, labels)
    if problem:
        text, details, *rest = problem
        return subject.result(
            passed=False,
            kind="allclose",
            text=text,
            details=details,
            measured=rest[0] if rest else {},
            tol=tol,
            tolerance=tol_info,
        )
    keys, diffs, refs = [], [], []
    for key, (x, y) in pairs.items():
        wide = np.complex128 if "c" in (x.dtype.kind, y.dtype.kind) else np.float64
        xa, yb = x.astype(wide).ravel(), y.astype(wide).ravel()
        keys.append((key, x.shape, xa.size))
        diffs.append(np.abs(xa - yb))
        refs.append(np.abs(yb))
    diff, ref = np.concatenate(diffs), np.concatenate(refs)
    allowed = tol.value + tol.rtol * ref
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
        rel = np.where(ref > _TINY, diff / ref, 0.0)
    bad = diff > allowed
    n_total, n_bad = int(diff.size), int(bad.sum())
    measured = {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "median_abs": float(np.median(diff)),
        "max_rel": float(rel.max()),
        "n_bad": float(n_bad),
        "n_total": float(n_total),
        "max_ref": float(ref.max()),
    }
    tol_info["limit"] = float(allowed.max())

    def locate(flat: int):
        for key, shape, size in keys:
            if flat < size:
                return key, np.unravel_index(flat, shape)
            flat -= size
        raise IndexError(flat)

    # The table lists only elements out of tolerance (at least the worst one, for `worst`).
    order = np.argsort(-ratio, kind="stable")[: max(1, min(WORST_ROWS, int(bad.sum())))]
    rows = []
    for flat in order:
        key, index = locate(int(flat))
        x, y = pairs[key]
        rows.append((_where(key, index), x[index], y[index], diff[flat], rel[flat]))
    worst_key, worst_index = locate(int(order[0]))
    worst = {
        "key": worst_key or None,
        "index": [int(i) for i in worst_index],
        "value_a": rows[0][1],
        "value_b": rows[0][2],
    }
    if n_bad == 0:
        return subject.result(
            passed=True,
            kind="allclose",
            measured=measured,
            tolerance=tol_info,
            worst=worst,
            text=f"{fmt_error(measured['max_abs'])} within tolerance {_tol_text(tol)} ({tol.key})",
        )
    la, lb = labels
    details = [f"  {n_bad} / {n_total} elements ({percent(n_bad, n_total)}) differ beyond atol + rtol*|{lb}|"]
    if len(keys) > 1:
        start = 0
        for key, _, size in keys:
            k_bad = int(bad[start : start + size].sum())
            if k_bad:
                details.append(
                    f"    {key}: {k_bad} / {size} ({percent(k_bad, size)}), "
                    f"max abs {fmt_error(diff[start : start + size].max())}"
                )
            start += size
    details += [
        f"  abs error: max {fmt_error(measured['max_abs'])}, mean "
        f"{fmt_error(measured['mean_abs'])}, median {fmt_error(measured['median_abs'])}",
        f"  rel error: max {fmt_error(measured['max_rel'])}",
        f"  worst at {rows[0][0]}: {la}={fmt_value(rows[0][1])} {lb}={fmt_value(rows[0][2])}",
        f"  {len(rows)} worst (by error / allowed error):",
    ]
    details += _worst_table(rows, labels)
    return subject.result(
        passed=False,
        kind="allclose",
        details=details,
        measured=measured,
        tol=tol,
        tolerance=tol_info,
        worst=worst,
        text=f"{fmt_error(measured['max_abs'])} exceeds tolerance {_tol_text(tol)} ({tol.key})",
    )


# ---- exact ----------------------------------------------------------------------------------


def _flatten(mapping: Mapping, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _same(x, y) -> bool:
    """Field equality for configs: NaN never equal, bool is not int, list == tuple."""
    if isinstance(x, (np.ndarray, np.generic)) or isinstance(y, (np.ndarray, np.generic)):
        x, y = np.asarray(x), np.asarray(y)
        return (
            x.dtype == y.dtype
            and x.shape == y.shape
            and not (x.dtype.kind in "fc" and not np.isfinite(x).all())
            and bool(np.array_equal(x, y))
        )
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(i, j) for i, j in zip(x, y))
    if isinstance(x, bool) != isinstance(y, bool) or (x is None) != (y is None):
        return False
    if any(isinstance(v, float) and v != v for v in (x, y)):
        return False
    if x != y:
        return False
    numbers = (int, float)
    return type(x) is type(y) or (isinstance(x, numbers) and isinstance(y, numbers))


def _compare_fields(a: Mapping, b: Mapping, subject: _Subject) -> Comparison:
    la, lb = subject.labels
    fa, fb = _flatten(a), _flatten(b)
    names = sorted(set(fa) | set(fb))
    details = []
    for name in names:
        if name not in fb:
            details.append(f"  {name}: only in {la} ({la}={fa[name]!r})")
        elif name not in fa:
            details.append(f"  {name}: only in {lb} ({lb}={fb[name]!r})")
        elif not _same(fa[name], fb[name]):
            details.append(f"  {name}: {la}={fa[name]!r}, {lb}={fb[name]!r}")
    measured = {"n_bad": float(len(details)), "n_total": float(len(names))}
    if not details:
        return subject.result(passed=True, kind="exact", measured=measured, text=f"all {len(names)} fields equal")
    return subject.result(
        passed=False,
        kind="exact",
        details=details,
        measured=measured,
        text=f"{len(details)} of {len(names)} fields differ",
    )


def compare_exact(a, b, *, config_id: str, stage: str, check: Check = TF_TORCH, metric: str = "exact") -> Comparison:
    """Exact equality. Mappings of non-arrays (configs) are compared field by field,
    reporting every differing key with both values; arrays (or mappings of arrays)
    by keys, dtype, shape and then every element."""
    subject = _Subject(config_id, stage, check, metric)
    arrays = (np.ndarray, np.generic)
    is_array_map = (
        isinstance(a, Mapping)
        and isinstance(b, Mapping)
        and (a or b)
        and all(isinstance(v, arrays) for v in (*a.values(), *b.values()))
    )
    if isinstance(a, Mapping) and isinstance(b, Mapping) and not is_array_map:
        return _compare_fields(a, b, subject)
    if not is_array_map and not isinstance(a, arrays) and not isinstance(b, arrays):
        return _compare_fields({"value": a}, {"value": b}, subject)
    labels = subject.labels
    pairs, problem = _pairs(a, b, labels)
    problem = problem or _structure(pairs, labels)
    if problem:
        text, details, *rest = problem
        return subject.result(passed=False, kind="exact", text=text, details=details, measured=rest[0] if rest else {})
    rows, n_bad, n_total, details = [], 0, 0, []
    for key, (x, y) in pairs.items():
        unequal = x != y
        n_bad += int(unequal.sum())
        n_total += x.size
        numeric = x.dtype.kind in "biufc"
        if unequal.any():
            where = np.argwhere(unequal) if unequal.ndim else np.zeros((1, 0), dtype=np.int64)
            if numeric:
                gap = np.abs(x.astype(np.complex128) - y.astype(np.complex128))[unequal]
                where = where[np.argsort(-gap, kind="stable")]
            for index in where[:WORST_ROWS]:
                idx = tuple(int(i) for i in index)
                d = abs(complex(x[idx]) - complex(y[idx])) if numeric else float("nan")
                rows.append((_where(key, idx), x[idx], y[idx], d, key, idx))
            if len(pairs) > 1:
                details.append(f"    {key}: {int(unequal.sum())} / {x.size} differ")
    measured = {"n_bad": float(n_bad), "n_total": float(n_total)}
    if n_bad == 0:
        return subject.result(passed=True, kind="exact", measured=measured, text=f"all {n_total} elements equal")
    la, lb = labels
    rows.sort(key=lambda row: -row[3] if row[3] == row[3] else 0)
    first = rows[0]
    worst = {"key": first[4] or None, "index": list(first[5]), "value_a": first[1], "value_b": first[2]}
    lines = [
        f"  worst at {first[0]}: {la}={fmt_value(first[1])} {lb}={fmt_value(first[2])}",
        f"  up to {WORST_ROWS} differing elements:",
    ]
    lines += _worst_table([row[:4] for row in rows[:WORST_ROWS]], labels)
    return subject.result(
        passed=False,
        kind="exact",
        details=details + lines,
        measured=measured,
        worst=worst,
        text=f"{n_bad} / {n_total} elements ({percent(n_bad, n_total)}) differ, exact match required",
    )


# ---- band (loss trajectories) ---------------------------------------------------------------


def compare_band(
    traj_a,
    traj_b,
    tol: Tolerance,
    *,
    config_id: str,
    stage: str | None = None,
    check: Check = TF_TORCH,
    metric: str | None = None,
) -> Comparison:
    """Two trajectories stay within a band: per step |a - b| / max(|a|, |b|) <= tol.value."""
    subject = _Subject(config_id, stage or tol.stage, check, metric or tol.metric)
    la, lb = subject.labels
    tol_info = dict(tol.to_dict(), limit=tol.value, measure="max_rel_gap")
    a = np.asarray(traj_a, dtype=np.float64)
    b = np.asarray(traj_b, dtype=np.float64)
    extra = {"labels": [la, lb], "trajectory_a": a.ravel(), "trajectory_b": b.ravel()}
    problem = None
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        problem = (f"shape differs: {la} {a.shape}, {lb} {b.shape} (one value per step)", [], {})
    elif a.size == 0:
        problem = ("nothing to compare: both trajectories are empty", [], {})
    else:
        problem = _structure({"": (a, b)}, (la, lb))
    if problem:
        text, details, *rest = problem
        return subject.result(
            passed=False,
            kind="band",
            text=text,
            details=details,
            measured=rest[0] if rest else {},
            tol=tol,
            tolerance=tol_info,
            extra=extra,
        )
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), _TINY)
    gap = np.abs(a - b) / scale
    bad = gap > tol.value
    step = int(np.argmax(gap))
    measured = {
        "max_rel_gap": float(gap[step]),
        "mean_rel_gap": float(gap.mean()),
        "final_rel_gap": float(gap[-1]),
        "worst_step": float(step),
        "n_bad": float(bad.sum()),
        "n_total": float(gap.size),
    }
    worst = {"key": None, "index": [step], "value_a": float(a[step]), "value_b": float(b[step])}
    if not bad.any():
        return subject.result(
            passed=True,
            kind="band",
            measured=measured,
            tolerance=tol_info,
            worst=worst,
            extra=extra,
            text=f"{fmt_error(gap[step])} within tolerance {tol.value:g} ({tol.key})",
        )
    first = int(np.argmax(bad))
    rows = [
        (f"step {int(i)}", a[i], b[i], abs(a[i] - b[i]), gap[i])
        for i in np.argsort(-gap, kind="stable")[: min(WORST_ROWS, int(bad.sum()))]
    ]
    details = [
        f"  {int(bad.sum())} / {gap.size} steps ({percent(int(bad.sum()), gap.size)}) "
        f"leave the band |{la} - {lb}| / max(|{la}|, |{lb}|) <= {tol.value:g}",
        f"  first at step {first}: {la}={fmt_value(a[first])} {lb}={fmt_value(b[first])}",
        f"  worst at step {step}: {la}={fmt_value(a[step])} {lb}={fmt_value(b[step])}",
        f"  final step gap {fmt_error(gap[-1])}, mean gap {fmt_error(gap.mean())}",
        f"  {len(rows)} worst steps:",
    ]
    details += _worst_table(rows, (la, lb))
    return subject.result(
        passed=False,
        kind="band",
        details=details,
        measured=measured,
        tol=tol,
        tolerance=tol_info,
        worst=worst,
        extra=extra,
        text=f"{fmt_error(gap[step])} exceeds tolerance {tol.value:g} ({tol.key})",
    )


# ---- reconstruction -------------------------------------------------------------------------


def compare_reconstruction(
    obj_a,
    obj_b,
    tols: Mapping[str, Tolerance],
    *,
    config_id: str,
    stage: str = "reconstruction",
    check: Check = TF_TORCH,
    mask=None,
) -> tuple[Comparison, Comparison, Comparison]:
    """Objects compared after fitting b onto a with one complex scalar (global phase and
    scale are not determined by ptychography). Returns one Comparison per metric in
    RECONSTRUCTION_METRICS: relative error (upper bound), amplitude SSIM and mean FRC up
    to half Nyquist (lower bounds; the FRC curve goes to `extra` for plots)."""
    missing = [name for name in RECONSTRUCTION_METRICS if name not in tols]
    if missing:
        raise ValueError(f"compare_reconstruction needs tolerances for {missing}")
    subjects = {name: _Subject(config_id, stage, check, name) for name in RECONSTRUCTION_METRICS}
    la, lb = check.side_a, check.side_b
    a, b = np.asarray(obj_a), np.asarray(obj_b)
    problem = None
    if a.ndim != 2 or a.shape != b.shape:
        problem = (f"shape differs: {la} {a.shape}, {lb} {b.shape} (2-D objects)", [], {})
    else:
        problem = _structure({"": (a, b)}, (la, lb))
    if problem is None:
        try:
            aligned, scale = imagemetrics.align_global_phase_scale(a, b, mask)
            rel = imagemetrics.relative_error(a, aligned, mask)
        except ValueError as error:
            problem = (str(error), [], {})
    if problem:
        text, details, *rest = problem
        return tuple(
            subjects[name].result(
                passed=False,
                kind="reconstruction",
                text=text,
                details=details,
                measured=rest[0] if rest else {},
                tol=tols[name],
                tolerance=dict(tols[name].to_dict(), limit=tols[name].value),
            )
            for name in RECONSTRUCTION_METRICS
        )
    common = {"scale_abs": abs(scale), "phase_offset_rad": float(np.angle(scale))}
    frequency, curve = imagemetrics.frc_curve(a, aligned)
    values = {
        "rel_error": rel,
        "ssim": imagemetrics.ssim(np.abs(a), np.abs(aligned)),
        "frc": imagemetrics.frc_mean(frequency, curve),
    }
    measure_names = {"rel_error": "rel_error", "ssim": "ssim", "frc": "frc_mean"}
    results = []
    for name in RECONSTRUCTION_METRICS:
        tol, value = tols[name], values[name]
        upper = tol.bound == "upper"
        passed = value <= tol.value if upper else value >= tol.value
        measured = {measure_names[name]: value, **common}
        extra = {}
        if name == "frc":
            measured["frc_min_half_nyquist"] = float(curve[frequency <= 0.25].min())
            extra = {"frc_frequency": frequency, "frc": curve, "labels": [la, lb]}
        verb = ("within" if passed else "exceeds") if upper else ("meets" if passed else "falls below")
        details = [
            f"  after fitting {lb} onto {la} with one complex scale: |c| = "
            f"{common['scale_abs']:.6g}, phase {common['phase_offset_rad']:+.6g} rad",
            f"  rel_error {fmt_error(values['rel_error'])}, amplitude SSIM "
            f"{values['ssim']:.6f}, mean FRC up to half Nyquist {values['frc']:.6f}",
        ]
        results.append(
            subjects[name].result(
                passed=passed,
                kind="reconstruction",
                details=details,
                measured=measured,
                tol=tol,
                tolerance=dict(tol.to_dict(), limit=tol.value, measure=measure_names[name]),
                extra=extra,
                text=f"{value:.6g} {verb} tolerance {tol.value:g} ({tol.key})",
            )
        )
    return tuple(results)


# ---- aggregate metrics ---------------------------------------------------------------------


def compare_update(
    init,
    a,
    b,
    tol: Tolerance,
    *,
    config_id: str,
    stage: str = "training",
    check: Check = TF_TORCH,
    metric: str | None = None,
) -> Comparison:
    """Weight updates from one start: ||(a - init) - (b - init)|| / ||b - init|| over every
    tensor at once. Adam's first steps move near-zero gradients by a whole learning rate
    in either direction, so single elements of two correct backends part; the whole
    update does not, unless an optimiser setting, a batch or a gradient differs."""
    subject = _Subject(config_id, stage, check, metric or tol.metric)
    la, lb = subject.labels
    tol_info = dict(tol.to_dict(), limit=tol.value, measure="update_rel_l2")
    keys = sorted(init)
    missing = [k for k in keys if k not in a or k not in b]
    if missing:
        return subject.result(
            passed=False,
            kind="band",
            tol=tol,
            tolerance=tol_info,
            text=f"weights missing from a backend: {missing[:5]}",
        )
    da = {k: np.asarray(a[k], np.float64) - np.asarray(init[k], np.float64) for k in keys}
    db = {k: np.asarray(b[k], np.float64) - np.asarray(init[k], np.float64) for k in keys}
    shapes = [k for k in keys if da[k].shape != db[k].shape]
    if shapes:
        return subject.result(
            passed=False, kind="band", tol=tol, tolerance=tol_info, text=f"weight shapes differ: {shapes[:5]}"
        )
    per = {k: float(np.sum((da[k] - db[k]) ** 2)) for k in keys}
    den = float(np.sqrt(sum(np.sum(db[k] ** 2) for k in keys)))
    value = float(np.sqrt(sum(per.values())) / max(den, _TINY))
    measured = {"update_rel_l2": value, "update_norm_b": den}
    if not np.isfinite(value):
        return subject.result(
            passed=False,
            kind="band",
            measured=measured,
            tol=tol,
            tolerance=tol_info,
            text="non-finite weights after training",
        )
    passed = value <= tol.value
    worst = sorted(keys, key=lambda k: -per[k])[:WORST_ROWS]
    details = [
        f"  ||update_{la} - update_{lb}|| / ||update_{lb}|| = {value:.6g} (||update_{lb}|| = {den:.6g})",
        "  tensors contributing most:",
    ]
    details += [f"    {k}: {np.sqrt(per[k]):.3e}" for k in worst]
    return subject.result(
        passed=passed,
        kind="band",
        details=details,
        measured=measured,
        tol=tol,
        tolerance=tol_info,
        worst={"key": worst[0], "index": [], "value_a": None, "value_b": None},
        text=f"{value:.6g} {'within' if passed else 'exceeds'} tolerance {tol.value:g} ({tol.key})",
    )


# ---- invariants and errors ------------------------------------------------------------------


def check_invariants(
    items: Iterable[tuple[str, bool, str]], *, config_id: str, stage: str, check: Check, metric: str = "invariants"
) -> Comparison:
    """One verdict over named properties (name, ok, detail), e.g. grouping invariants when
    a backend's random stream differs. An empty list fails: nothing was checked."""
    subject = _Subject(config_id, stage, check, metric)
    entries: Sequence = list(items)
    failed = [(name, detail) for name, ok, detail in entries if not ok]
    measured = {"n_bad": float(len(failed)), "n_total": float(len(entries))}
    if not entries:
        return subject.result(
            passed=False,
            kind="invariant",
            measured=measured,
            text="no invariant was checked",
            closing="  explain: an empty invariant list is a bug in the test",
        )
    if not failed:
        return subject.result(
            passed=True, kind="invariant", measured=measured, text=f"all {len(entries)} invariants hold"
        )
    details = [f"  {name}: {detail}" for name, detail in failed]
    return subject.result(
        passed=False,
        kind="invariant",
        details=details,
        measured=measured,
        text=f"{len(failed)} of {len(entries)} invariants violated",
        closing="  explain: each invariant is a property docs/spec.md requires",
    )


def error_comparison(
    *,
    config_id: str,
    stage: str,
    check: Check,
    metric: str,
    error: BaseException | str,
    places: Places | None = None,
    blame: Origin | None = None,
) -> Comparison:
    """A failed Comparison for a check that could not run (e.g. a backend raised), so the stage still shows
    as failed in the report instead of missing. An exception keeps its traceback and where it was raised
    (parity.origin: in the code under test, the adapter or the harness; `places` says which files are whose,
    `blame` overrides where the harness knows better)."""
    subject = _Subject(config_id, stage, check, metric)
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    first, *rest = text.splitlines() or [""]
    info = None
    if isinstance(error, BaseException):
        info = describe(error, places or Places.of(()), blame=blame)
        if info["raised_at"] != UNKNOWN:
            rest.append(f"raised in the {info['origin']}, at {info['raised_at']}")
    elif blame is not None:
        info = {"type": "", "origin": str(blame), "raised_at": "", "traceback": ""}
    found = subject.result(
        passed=False,
        kind="error",
        text=f"{COULD_NOT_RUN}{first}",
        details=[f"  {line}" for line in rest],
        closing="  explain: the check raised before comparing; its traceback is in results.json (error)",
    )
    return replace(found, error=info) if info else found
