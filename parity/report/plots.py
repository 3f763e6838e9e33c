"""PNG plots of a hub: reconstructions, loss curves, FRC curves (matplotlib Agg).

Each pytest worker draws its configs' plots into hub/plots/ right after the stage
whose records allow them (`draw_missing`, called by parity.session); the controller
only links them (`make_plots`), drawing just those still missing, which is also how
`python -m parity report` rebuilds a hub's plots from results.json and the saved
artifacts. Names are `<config_id>-<plot>.png`, so workers never write the same file.

Figures are built with matplotlib's object API (Figure + FigureCanvasAgg), not
pyplot: no global state, no display backend, safe in any process. matplotlib is
imported on the first drawing, so a process that draws nothing never loads it.
A plot is written atomically (a file that exists is whole), and one that cannot
be made is reported in the page instead of failing the whole report.

Flat content is said in words, not drawn as a flat line: an FRC curve equal at every
frequency becomes a sentence in the page (no PNG), a difference map that is zero
everywhere or a loss gap that is zero at every step becomes text inside its panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backends.common.archive import load_npz
from backends.common.fileio import atomic_write
from backends.common.imagemetrics import HALF_NYQUIST, align_global_phase_scale
from parity.stages import pipeline
from parity.verdict import check_of, from_jsonable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 72  # small files: the hub should stay light enough to attach to a CI run
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class PlotRef:
    """One plot of a config for index.html: its file, or why it is missing."""

    title: str
    path: str | None
    error: str | None = None
    note: str | None = None
    """In place of a plot whose content is flat: what it would have shown, in words."""


@dataclass(frozen=True)
class Flat:
    """A plan entry with nothing worth drawing: the sentence the page shows instead."""

    note: str


def _flat_note(values, what: str) -> str | None:
    """A sentence when every finite value of `values` is the same (and there is one), else None."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0 or not np.all(np.isfinite(data)) or np.ptp(data) > 1e-12 * max(1.0, float(np.max(np.abs(data)))):
        return None
    return f"{what} is {data[0]:.6g} at all {data.size} points, so it is not drawn"


def _say_flat(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True, transform=ax.transAxes)


def _figure(**kwargs) -> Figure:
    from matplotlib.figure import Figure  # here, not at import: only a process that draws pays for it

    return Figure(**kwargs)


def _save(fig: Figure, path: Path, **margins) -> None:
    """Write `fig` as PNG with fixed `margins` (Figure.subplots_adjust's): tight_layout measured every
    tick label and took half of a plot's time, which is harness overhead paid per config."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=DPI, format="png"))


def plot_reconstruction(path: Path, objects: Mapping[str, np.ndarray], title: str) -> None:
    """Amplitude and phase of each backend's object; with two, also their difference
    after fitting the second onto the first (global phase and scale removed)."""
    labels = list(objects)
    first = np.asarray(objects[labels[0]], dtype=np.complex128)
    shown = {labels[0]: first}
    if len(labels) > 1:
        aligned, _ = align_global_phase_scale(first, objects[labels[1]])
        shown[f"{labels[1]} (aligned)"] = aligned
    columns = len(shown) + (1 if len(shown) > 1 else 0)
    fig = _figure(figsize=(3.2 * columns, 6))
    axes = fig.subplots(2, columns, squeeze=False)
    for col, (label, obj) in enumerate(shown.items()):
        for row, (name, image, cmap) in enumerate(
            (("amplitude", np.abs(obj), "gray"), ("phase", np.angle(obj), "twilight"))
        ):
            mappable = axes[row][col].imshow(image, cmap=cmap)
            axes[row][col].set_title(f"{label} {name}", fontsize=9)
            fig.colorbar(mappable, ax=axes[row][col], shrink=0.8)
    if len(shown) > 1:
        other = list(shown.values())[1]
        differences = (
            ("|amp| difference", np.abs(first) - np.abs(other)),
            ("phase difference", np.angle(first * np.conj(other))),
        )
        for row, (name, image) in enumerate(differences):
            limit = float(np.max(np.abs(image)))
            axes[row][-1].set_title(name, fontsize=9)
            if limit == 0.0:
                _say_flat(axes[row][-1], "zero everywhere:\nidentical after alignment")
                continue
            mappable = axes[row][-1].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
            fig.colorbar(mappable, ax=axes[row][-1], shrink=0.8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    _save(fig, path, left=0.02, right=0.95, bottom=0.03, top=0.88, wspace=0.3, hspace=0.3)


def plot_loss_curves(path: Path, bands: list[Mapping], title: str) -> None:
    """Loss trajectories of both backends (top) and their relative gap per step (bottom)."""
    fig = _figure(figsize=(7, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    gaps = []
    for band in bands:
        extra = from_jsonable(band["extra"])
        la, lb = extra.get("labels", ["a", "b"])
        a = np.asarray(extra["trajectory_a"], dtype=np.float64)
        b = np.asarray(extra["trajectory_b"], dtype=np.float64)
        suffix = f" ({band['metric']})" if len(bands) > 1 else ""
        top.plot(a, label=f"{la}{suffix}")
        top.plot(b, "--", label=f"{lb}{suffix}")
        if a.shape == b.shape:
            gaps.append((band, np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)))
    if gaps and all(not np.any(gap) for _, gap in gaps):
        _say_flat(bottom, "the trajectories are identical: relative gap 0 at every step")
    else:
        for band, gap in gaps:
            bottom.semilogy(np.maximum(gap, 1e-16), label=f"{band['metric']}")
        for band in bands:
            limit = (band.get("tolerance") or {}).get("limit")
            if isinstance(limit, (int, float)):
                bottom.axhline(limit, color="red", linewidth=0.8, linestyle=":")
    values = np.concatenate(
        [
            np.asarray(from_jsonable(b["extra"])[k], dtype=np.float64)
            for b in bands
            for k in ("trajectory_a", "trajectory_b")
        ]
    )
    if values.size and np.all(values[np.isfinite(values)] > 0):
        top.set_yscale("log")
    top.set_ylabel("loss per step")
    top.legend(fontsize=8)
    bottom.set_ylabel("relative gap")
    bottom.set_xlabel("step")
    fig.suptitle(title, fontsize=10)
    _save(fig, path, left=0.17, right=0.97, bottom=0.09, top=0.9, hspace=0.08)


def plot_frc(path: Path, comparison: Mapping, title: str) -> None:
    extra = from_jsonable(comparison["extra"])
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(extra["frc_frequency"], extra["frc"], marker=".")
    ax.axvline(HALF_NYQUIST, color="gray", linestyle=":", label="half Nyquist")
    limit = (comparison.get("tolerance") or {}).get("limit")
    if isinstance(limit, (int, float)):
        ax.axhline(limit, color="red", linestyle=":", label="tolerance on the mean")
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("FRC")
    ax.set_ylim(min(0.0, float(np.nanmin(extra["frc"]))), 1.05)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    _save(fig, path, left=0.12, right=0.97, bottom=0.13, top=0.9)


def loss_plots(hub: Path, comparisons: list[Mapping], artifacts: list[Mapping]) -> list[tuple[str, object]]:
    """The training stage's plot: every loss trajectory of its band comparisons, in one figure."""
    bands = [c for c in comparisons if c["kind"] == "band" and "trajectory_a" in c.get("extra", {})]
    return [("loss", lambda p, t: plot_loss_curves(p, bands, t))] if bands else []


def reconstruction_plots(hub: Path, comparisons: list[Mapping], artifacts: list[Mapping]) -> list[tuple[str, object]]:
    """The reconstruction stage's plots: the trained objects (amplitude, phase, difference), then each FRC
    curve (said in words where it is flat)."""
    jobs = [("reconstruction", _reconstruction_job(hub, a)) for a in artifacts if a["kind"] == "reconstruction"]
    for frc in (c for c in comparisons if "frc" in c.get("extra", {})):
        note = _flat_note(from_jsonable(frc["extra"]["frc"]), "the FRC")
        jobs.append((f"frc-{check_of(frc).slug}", Flat(note) if note else lambda p, t, frc=frc: plot_frc(p, frc, t)))
    return jobs


def plan(hub: Path, comparisons: list[Mapping], artifacts: list[Mapping]) -> dict[str, list[tuple[str, object]]]:
    """{config_id: [(plot name, job(path, title) or Flat)]}: every plot these records allow, each stage's
    own (its Stage.plots, given that stage's records of one config), in pipeline order.

    The records are results.json's (or Comparison.to_dict() and write_part's artifact
    records, the same thing before the merge), so a worker and the controller plan the
    same plots under the same names."""
    jobs: dict[str, list] = {}
    configs = dict.fromkeys([c["config_id"] for c in comparisons] + [a["config_id"] for a in artifacts])
    for config_id in configs:
        for stage in pipeline():
            if stage.plots is None:
                continue
            mine = [c for c in comparisons if c["config_id"] == config_id and c["stage"] == stage.name]
            kept = [a for a in artifacts if a["config_id"] == config_id and a["kind"] == stage.name]
            jobs.setdefault(config_id, []).extend(stage.plots(hub, mine, kept))
    return {config_id: entries for config_id, entries in jobs.items() if entries}


def plot_path(hub: Path, config_id: str, name: str) -> Path:
    return hub / PLOTS_DIR / f"{config_id}-{name}.png"


def draw_missing(hub: Path, comparisons: list[Mapping], artifacts: list[Mapping]) -> list[Path]:
    """Draw the plots these records allow that hub/plots/ does not hold yet: what a worker
    calls after each stage. A plot that fails is left missing (make_plots tries again and
    reports why); matplotlib is imported only when there is something to draw."""
    drawn = []
    for config_id, entries in plan(hub, comparisons, artifacts).items():
        for name, job in entries:
            path = plot_path(hub, config_id, name)
            if isinstance(job, Flat) or path.exists():
                continue
            try:
                job(path, f"{config_id}: {name}")
                drawn.append(path)
            except Exception:  # noqa: BLE001 - the controller redraws it and puts the error in the page
                pass
    return drawn


def make_plots(hub: Path, results: Mapping) -> dict[str, list[PlotRef]]:
    """Every plot the results allow, in hub/plots/; {config_id: [PlotRef]}.

    Plots the workers drew are linked as they are; only missing ones are drawn here
    (after an interrupted run, or for a hub re-rendered by `python -m parity report`)."""
    (hub / PLOTS_DIR).mkdir(exist_ok=True)
    jobs = plan(hub, results["comparisons"], results.get("artifacts", []))
    figures: dict[str, list[PlotRef]] = {}
    for config_id in results["configs"]:
        figures[config_id] = []
        for name, job in jobs.get(config_id, []):
            path = plot_path(hub, config_id, name)
            title = f"{config_id}: {name}"
            if isinstance(job, Flat):
                figures[config_id].append(PlotRef(title, None, note=job.note))
                continue
            try:
                if not path.exists():
                    job(path, title)
                figures[config_id].append(PlotRef(title, f"{PLOTS_DIR}/{path.name}"))
            except Exception as error:  # a broken artifact must not cost the rest of the report
                figures[config_id].append(PlotRef(title, None, f"{type(error).__name__}: {error}"))
    return figures


def _reconstruction_job(hub: Path, artifact: Mapping):
    def job(path: Path, title: str) -> None:
        objects = load_npz(hub / artifact["file"], artifact["labels"])  # headers checked before a byte is inflated
        plot_reconstruction(path, objects, title)

    return job
