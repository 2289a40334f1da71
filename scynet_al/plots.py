"""Campaign plots: learning curves per region, the chi2 distribution, mass planes.

Written as PNG files with matplotlib's Agg backend (no display needed), each one
rendered in memory and written whole or not at all
(:func:`scynet_al.files.write_atomically`): a failed write (a full disk) names the
file and leaves an older plot of that name as it was.

- ``learning_curves_<E>TeV.png``: mean |dchi2| on the validation points against
  the number of training points, one panel per chi2 region, ensemble and kNN
  baseline, with the 68 % bootstrap interval and the target;
- ``chi2_distribution_<E>TeV.png``: histogram of simulated chi2 by origin with the
  region edges (paper Fig. 4);
- ``mass_plane_<E>TeV.png``: simulated chi2, the network's chi2 and their
  difference on the validation points in the m(gluino)-m(neutralino1) plane
  (paper Figs 7-9); the network is the latest checkpoint of that energy, and
  without a readable one (removed, damaged) only the simulated chi2 is drawn.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: PDG codes of the gluino and the lightest neutralino (SLHA).
PDG_GLUINO, PDG_NEUTRALINO1 = 1000021, 1000022


def plot_campaign(store_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every campaign plot of a store into ``out_dir``.

    Args:
        store_path: The campaign store (opened read-only; safe while it runs).
        out_dir: Directory for the PNG files (created).

    Returns:
        The files written.

    Raises:
        StoreError: The store cannot be read or is damaged.
        FileWriteError: ``out_dir`` cannot be created or a PNG cannot be written;
            names the directory or the file.
    """
    import matplotlib

    matplotlib.use("Agg")
    from scynet_al.config import parse_config
    from scynet_al.store import CampaignStore

    out = Path(out_dir)
    with CampaignStore.open(store_path, mode="r") as store:
        config = parse_config(store.config_text, source=f"{store_path} (stored config)")
        table = store.table()
        all_rows = store.metrics()
        energies = list(store.energies)
        mass_pdgs = list(store.mass_pdgs)
        space = store.space
    _make_directory(out)
    rows = [r for r in all_rows if r.get("kind", "refit") == "refit"]
    target = float(config.campaign.target_mean_abs_error)
    written = []
    for k, energy in enumerate(energies):
        regions = _regions(all_rows, config, energy)
        written.append(plot_learning_curves(rows, energy, target, out))
        written.append(plot_chi2_distribution(table, k, energy, regions, out))
        predicted = _network_chi2(rows, table, k, energy, space, store_path)
        written.append(plot_mass_plane(table, k, energy, mass_pdgs, predicted, out))
    for path in written:
        logger.info("wrote %s", path)
    return written


def plot_learning_curves(
    rows: Sequence[Mapping[str, Any]], energy: int, target: float, out: Path
) -> Path:
    """Mean |dchi2| per region against training points, from the refit rows."""
    import matplotlib.pyplot as plt

    from sampler.regions import REGION_NAMES

    panels = ("overall", *REGION_NAMES)
    fig, grid = plt.subplots(2, 3, figsize=(12, 7.2), sharey=True)
    axes = grid.ravel()
    for ax, name in zip(axes, panels, strict=True):
        drawn = False
        for model, style in (("ensemble", "-o"), ("knn", "--s")):
            n, err, lo, hi = _curve(rows, str(energy), model, name)
            if len(n):
                ax.plot(n, err, style, ms=3, label=model)
                ax.fill_between(n, lo, hi, alpha=0.2)
                drawn = True
        if not drawn:
            ax.text(
                0.5, 0.5, "no validation points", transform=ax.transAxes, ha="center"
            )
        ax.axhline(target, color="k", lw=0.8, ls=":", label="target")
        ax.set_title("all regions" if name == "overall" else f"region {name}")
        ax.set_xlabel("training points")
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in grid[:, 0]:
        ax.set_ylabel(r"mean $|\Delta\chi^2|$ (validation)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"learning curves at {energy} TeV")
    return _save(fig, out / f"learning_curves_{energy}TeV.png")


def _curve(
    rows: Sequence[Mapping[str, Any]], energy: str, model: str, region: str
) -> tuple[np.ndarray, ...]:
    n, err, lo, hi = [], [], [], []
    for row in rows:
        entry = (row.get("energies", {}).get(energy) or {}).get(model) or {}
        if region == "overall":
            r = entry.get("overall") or {}
        else:
            r = (entry.get("regions") or {}).get(region) or {}
        if r.get("count") and r.get("mean_abs_error") is not None:
            interval = r.get("interval") or [r["mean_abs_error"]] * 2
            n.append(row["n_train"])
            err.append(r["mean_abs_error"])
            lo.append(interval[0])
            hi.append(interval[1])
    return tuple(np.asarray(v, dtype=float) for v in (n, err, lo, hi))


def plot_chi2_distribution(
    table: Mapping[str, Any], column: int, energy: int, regions: Any, out: Path
) -> Path:
    """Histogram of simulated chi2 by origin, with the region edges (paper Fig. 4)."""
    import matplotlib.pyplot as plt

    ok = (table["status"] == "ok") & np.isfinite(table["chi2"][:, column])
    chi2, origins = table["chi2"][ok, column], table["origin"][ok]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bins = np.linspace(0.0, 100.0, 101)
    for origin in sorted(set(origins)):
        ax.hist(
            chi2[origins == origin],
            bins=bins,
            histtype="step",
            label=f"{origin} ({np.sum(origins == origin)})",
        )
    for edge in regions.edges[1:-1]:
        ax.axvline(edge, color="grey", lw=0.8, ls="--")
    for name in regions.names:
        lo, hi = regions.bounds(name)
        ax.text(
            (lo + hi) / 2,
            1.02,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_xlabel(rf"$\chi^2$ at {energy} TeV (simulated)")
    ax.set_ylabel("points per bin")
    if ax.get_legend_handles_labels()[0]:  # an empty store draws no histogram
        ax.legend(fontsize=8)
    return _save(fig, out / f"chi2_distribution_{energy}TeV.png")


def plot_mass_plane(
    table: Mapping[str, Any],
    column: int,
    energy: int,
    mass_pdgs: Sequence[int],
    predicted: np.ndarray | None,
    out: Path,
) -> Path:
    """Simulated chi2, network chi2 and difference in the m(gluino)-m(chi10) plane.

    Args:
        table: The store's columns (``store.table()``).
        column: Column of ``energy`` in ``table["chi2"]``.
        energy: Centre-of-mass energy (TeV).
        mass_pdgs: PDG codes of the ``masses`` columns.
        predicted: Network chi2 of the validation ok points, or None (no network).
        out: Output directory.
    """
    import matplotlib.pyplot as plt

    keep = _validation_ok(table, column)
    masses = table["masses"][keep]
    m_gluino = np.abs(masses[:, list(mass_pdgs).index(PDG_GLUINO)])
    m_lsp = np.abs(masses[:, list(mass_pdgs).index(PDG_NEUTRALINO1)])
    simulated = table["chi2"][keep, column]
    panels = [(simulated, r"$\chi^2_\mathrm{sim}$", "viridis", (0, 100))]
    if predicted is not None:
        panels.append((predicted, r"$\chi^2_\mathrm{SN}$", "viridis", (0, 100)))
        panels.append(
            (
                predicted - simulated,
                r"$\chi^2_\mathrm{SN}-\chi^2_\mathrm{sim}$",
                "coolwarm",
                _symmetric_range(predicted - simulated),
            )
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False
    )
    for ax, (values, label, cmap, (vmin, vmax)) in zip(axes[0], panels, strict=True):
        points = ax.scatter(
            m_gluino, m_lsp, c=values, s=6, cmap=cmap, vmin=vmin, vmax=vmax
        )
        fig.colorbar(points, ax=ax, label=label)
        ax.set_xlabel(r"$m(\tilde g)$ [GeV]")
        ax.set_ylabel(r"$m(\tilde\chi^0_1)$ [GeV]")
    fig.suptitle(f"{int(keep.sum())} validation points at {energy} TeV")
    return _save(fig, out / f"mass_plane_{energy}TeV.png")


def _validation_ok(table: Mapping[str, Any], column: int) -> np.ndarray:
    return (
        (table["status"] == "ok")
        & (table["origin"] == "validation")
        & np.isfinite(table["chi2"][:, column])
    )


def _network_chi2(
    rows: Sequence[Mapping[str, Any]],
    table: Mapping[str, Any],
    column: int,
    energy: int,
    space: Any,
    store_path: str | Path,
) -> np.ndarray | None:
    """The latest checkpoint's chi2 on the validation ok points, or None."""
    from scynet_al.store import locate_checkpoint, missing_checkpoints

    paths = [r.get("checkpoints", {}).get(str(energy)) for r in rows]
    paths = [p for p in paths if p]
    if not paths:
        return None
    path = locate_checkpoint(store_path, paths[-1])
    if not path.exists():
        reason = missing_checkpoints(store_path, path)
        logger.warning(
            "%s; mass plane without the network",
            reason or f"checkpoint {path} is missing",
        )
        return None
    from scynet_al import checkpoint
    from scynet_al.errors import CheckpointReadError

    try:
        ensemble, _ = checkpoint.load(path)
    except CheckpointReadError as exc:
        # A resume refits and writes a new checkpoint; every other plot needs only
        # the store.
        logger.warning("%s; mass plane without the network", exc)
        return None
    keep = _validation_ok(table, column)
    return np.asarray(ensemble.predict(space.to_unit(table["parameters"][keep])))


def _make_directory(out: Path) -> None:
    """Create the output directory and its parents where missing."""
    from scynet_al.files import write_failure

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(out, "plot directory", exc) from exc


def _save(fig: Any, path: Path) -> Path:
    """Render ``fig`` as PNG in memory, close it, and write it to ``path`` whole."""
    import matplotlib.pyplot as plt

    from scynet_al.files import write_atomically

    png = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(png, format="png", dpi=110)
    finally:
        plt.close(fig)
    write_atomically(path, "plot", [png.getvalue()])
    return path


def _regions(rows: Sequence[Mapping[str, Any]], config: Any, energy: int) -> Any:
    from sampler.regions import ChiSquareRegions

    for row in reversed(rows):
        edges = row.get("region_edges", {}).get(str(energy))
        if edges:
            return ChiSquareRegions(tuple(edges))
    if config.regions.centre_on_catalogue:
        return ChiSquareRegions.paper(energy)
    return config.regions.build(energy)


def _symmetric_range(values: np.ndarray) -> tuple[float, float]:
    """Colour range +-r around zero holding 95 % of the values (at least +-1)."""
    finite = np.abs(values[np.isfinite(values)])
    r = max(1.0, float(np.percentile(finite, 95))) if finite.size else 1.0
    return -r, r
