"""How far a campaign is: counts, per-region errors, trend and the work still needed.

:func:`campaign_status` opens the store read-only (SWMR), so it is safe while the
daemon writes; it imports neither torch nor Dask. Its dict is the stable JSON
interface of ``scynet-al status --json``:

- ``counts``: status -> number of points;
- ``origins``: origin -> {region -> number of ok points}, by simulated chi-square at
  the first configured energy;
- ``round``: the store's current round;
- ``refits``: one object per refit, oldest first: ``time`` (Unix seconds),
  ``round``, ``n_train``, ``overall`` (mean |dchi2| on the validation points at the
  first energy) and ``regions`` (region -> mean |dchi2|);
- ``regions``: energy (string) -> region -> ``{mean_abs_error, count, interval,
  judged}`` from the latest refit; ``judged`` is false for a region with fewer
  validation points than ``campaign.min_validation_count``, which the stop rule
  does not judge;
- ``sigma``: energy (string) -> how honest the latest refit's sigma is on its
  validation points: ``within_1sigma`` and ``within_2sigma`` (shares of points
  whose error is below one and two sigma once rescaled, each measured on points
  that did not set the factor; a Gaussian gives 0.683 and 0.954; ``null`` until
  each half of the validation points can set a factor for the other),
  ``sigma_scale`` (the factor on the ensemble spread, ``null`` when there were too
  few points) and ``raw`` (the same shares for the unscaled spread);
- ``estimated_remaining``: simulations still needed to meet the stop rule (int),
  0 when it holds, or ``null`` when no estimate can be made;
- ``estimate``: how that number was obtained (see :func:`estimate_remaining`),
  with ``min_validation_count``, the points a region needs to be judged;
- ``stopped``: the final summary when the last run has ended, else ``null``;
- ``running``: the process id of the campaign writing the store now, or ``null``
  (no ``stopped`` and no ``running`` after a run has started: the last run was
  killed or crashed, and ``resume`` continues it);
- ``failures``: the most frequent reasons of failed points, ``{reason, count}``
  each, most frequent first (empty when none failed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scynet_al.metrics import MIN_CALIBRATION_POINTS

#: Most frequent reasons of failed points shown (a campaign whose simulator is
#: misconfigured fails every point for one reason).
FAILURE_REASONS = 3

#: Refits used for the learning-curve fit of the estimate.
TREND_REFITS = 5

#: A learning curve is not extrapolated beyond this multiple of the training set.
MAX_EXTRAPOLATION = 100.0


def campaign_status(path: str | Path) -> dict[str, Any]:
    """Read a campaign store and summarise it.

    Args:
        path: The campaign store (HDF5).

    Returns:
        The status dict described in the module docstring.

    Raises:
        StoreError: The file is not a campaign store.
    """
    from scynet_al.config import parse_config
    from scynet_al.store import CampaignStore, writer_pid

    with CampaignStore.open(path, mode="r") as store:
        config = parse_config(store.config_text, source=f"{path} (stored config)")
        rows = store.metrics()
        energy = int(config.campaign.energies_tev[0])
        regions = _regions_from_rows(rows, config, energy)
        counts = dict(store.counts())
        failures = store.reasons("failed")[:FAILURE_REASONS]
        origins = store.origin_region_counts(energy, regions)
        round_ = int(store.current_round)

    refits = [
        r for r in rows if r.get("kind", "refit") == "refit" and not r.get("final")
    ]
    target = float(config.campaign.target_mean_abs_error)
    min_count = int(config.campaign.min_validation_count)
    estimate = estimate_remaining(refits, counts, target=target, min_count=min_count)
    return {
        "counts": counts,
        "origins": _plain(origins),
        "round": round_,
        "refits": [_refit_entry(r, str(energy)) for r in refits],
        "regions": _latest_regions(refits, min_count),
        "sigma": _latest_sigma(refits),
        "estimated_remaining": estimate["simulations"],
        "estimate": estimate,
        "stopped": rows[-1] if rows and rows[-1].get("final") else None,
        "running": writer_pid(path),
        "failures": [{"reason": text, "count": n} for text, n in failures],
    }


def _regions_from_rows(
    rows: Sequence[Mapping[str, Any]], config: Any, energy: int
) -> Any:
    """The regions the daemon used (stored with each refit), else the config's."""
    from sampler.regions import ChiSquareRegions

    for row in reversed(rows):
        edges = row.get("region_edges", {}).get(str(energy))
        if edges:
            return ChiSquareRegions(tuple(edges))
    if config.regions.centre_on_catalogue:
        return ChiSquareRegions.paper(energy)
    return config.regions.build(energy)


def _refit_entry(row: Mapping[str, Any], energy: str) -> dict[str, Any]:
    ens = (row.get("energies", {}).get(energy) or {}).get("ensemble") or {}
    return {
        "time": row.get("time"),
        "round": row.get("round"),
        "n_train": row.get("n_train"),
        "overall": (ens.get("overall") or {}).get("mean_abs_error"),
        "regions": {
            name: r["mean_abs_error"]
            for name, r in (ens.get("regions") or {}).items()
            if r.get("count")
        },
    }


def _latest_regions(
    refits: Sequence[Mapping[str, Any]], min_count: int
) -> dict[str, Any]:
    """Per energy and region, the latest refit's error and whether it is judged."""
    if not refits:
        return {}
    out = {}
    for energy, entry in refits[-1].get("energies", {}).items():
        ens = (entry or {}).get("ensemble")
        if ens:
            out[energy] = {
                name: _region_entry(r, min_count) for name, r in ens["regions"].items()
            }
    return out


def _region_entry(region: Mapping[str, Any], min_count: int) -> dict[str, Any]:
    entry = {k: region.get(k) for k in ("mean_abs_error", "count", "interval")}
    entry["judged"] = _judged(region, min_count)
    return entry


def _judged(region: Mapping[str, Any], min_count: int) -> bool:
    """Whether the stop rule judges a region: it has an error and enough points."""
    count = region.get("count") or 0
    return region.get("mean_abs_error") is not None and count >= min_count


def _latest_sigma(refits: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Coverage of sigma per energy in the latest refit (refits written before sigma
    was calibrated carry only the unscaled shares, under the same names)."""
    if not refits:
        return {}
    out = {}
    for energy, entry in refits[-1].get("energies", {}).items():
        shares = ((entry or {}).get("ensemble") or {}).get("calibration")
        if shares:
            out[energy] = {
                "within_1sigma": shares.get("within_1sigma"),
                "within_2sigma": shares.get("within_2sigma"),
                "sigma_scale": shares.get("sigma_scale"),
                "raw": shares.get("raw"),
            }
    return out


def estimate_remaining(
    refits: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    *,
    target: float,
    min_count: int,
) -> dict[str, Any]:
    """Simulations still needed before every judged region meets the target.

    Method: for each energy and each region holding at least ``min_count``
    validation points, fit a learning curve ``error = c * n_train ** -alpha`` by
    least squares in log-log over the last :data:`TREND_REFITS` refits; the region
    needs ``n = n_train * (error / target) ** (1 / alpha)`` training points. The
    largest shortfall over regions is divided by the share of simulations that
    end ``ok`` (rejected and failed points do not train the network). No estimate
    when fewer than three refits carry the region, its error does not fall
    (``alpha <= 0.05``), or the curve would need more than
    :data:`MAX_EXTRAPOLATION` times the current training set (a fit over a few
    noisy refits says nothing that far out).

    Args:
        refits: Metrics rows of the refits, oldest first.
        counts: Points by status.
        target: The stop rule's mean |dchi2|.
        min_count: Validation points a region needs to be judged.

    Returns:
        ``{"simulations": int | None, "method": str, "per_region": {...},
        "reason": str, "min_validation_count": int}``.
    """
    out: dict[str, Any] = {
        "simulations": None,
        "method": "power-law learning curve per region over the last refits",
        "per_region": {},
        "reason": "",
        "min_validation_count": int(min_count),
    }
    if not refits:
        out["reason"] = "no refit yet"
        return out
    shortfalls = []
    for energy, entry in refits[-1].get("energies", {}).items():
        ens = (entry or {}).get("ensemble")
        if not ens:
            out["reason"] = f"no validation points at {energy} TeV"
            return out
        for name, region in ens["regions"].items():
            if not _judged(region, min_count):
                continue
            need = _training_points_needed(refits, energy, name, target)
            out["per_region"][f"{energy}/{name}"] = need
            shortfalls.append(need)
    if not shortfalls:
        out["reason"] = "no region holds enough validation points yet"
        return out
    if any(s is None for s in shortfalls):
        out["reason"] = (
            "an unmet region has no falling learning curve yet, or one that would"
            f" need over {MAX_EXTRAPOLATION:g}x the current training set"
        )
        return out
    finished = sum(counts.get(k, 0) for k in ("ok", "rejected", "failed"))
    ok_share = counts.get("ok", 0) / finished if finished else 1.0
    out["simulations"] = math.ceil(max(shortfalls) / max(ok_share, 1e-3))
    return out


def _training_points_needed(
    refits: Sequence[Mapping[str, Any]], energy: str, region: str, target: float
) -> int | None:
    """Extra training points a region needs (0 when met), or None when unknown."""
    n, err = [], []
    for row in refits[-TREND_REFITS:]:
        ens = (row.get("energies", {}).get(energy) or {}).get("ensemble") or {}
        r = (ens.get("regions") or {}).get(region)
        if r and r.get("count") and r.get("mean_abs_error") and row.get("n_train"):
            n.append(float(row["n_train"]))
            err.append(float(r["mean_abs_error"]))
    if err and err[-1] < target:
        return 0
    if len(n) < 3 or len(set(n)) < 2:
        return None
    slope, _ = np.polyfit(np.log(n), np.log(err), 1)
    alpha = -float(slope)
    if alpha <= 0.05:
        return None
    growth = (err[-1] / target) ** (1.0 / alpha)
    if growth > MAX_EXTRAPOLATION:
        return None
    return math.ceil(n[-1] * growth - n[-1])


def format_status(status: Mapping[str, Any], *, recent: int = 5) -> str:
    """Human-readable status text for the terminal."""
    lines = [
        f"round {status['round']}; points: "
        + ", ".join(f"{k} {v}" for k, v in status["counts"].items())
    ]
    for failure in status.get("failures", []):
        lines.append(f"  failed {failure['count']} x: {failure['reason']}")
    # With several energies, the origin table and the trend are the first's.
    energies = list(status["regions"])
    at_first = f" at {energies[0]} TeV" if len(energies) > 1 else ""
    if at_first and status["origins"]:
        lines.append(f"ok points by origin and chi2 region{at_first}:")
    for origin, regions in status["origins"].items():
        cells = ", ".join(f"{name} {n}" for name, n in regions.items())
        lines.append(f"  {origin:<12} {cells}")
    min_count = status.get("estimate", {}).get("min_validation_count")
    for energy, regions in status["regions"].items():
        lines.append(f"mean |dchi2| at {energy} TeV (latest refit, 68% interval):")
        for name, r in regions.items():
            lines.append(_region_line(name, r, min_count))
        sigma = status.get("sigma", {}).get(energy)
        if sigma and (sigma.get("raw") or sigma.get("within_1sigma") is not None):
            lines.append(_sigma_line(sigma))
    if recent > 0:
        lines.extend(_trend_lines(status["refits"][-recent:], at_first))
    lines.append(_estimate_line(status))
    if status.get("running") is not None:
        pid = status["running"]
        lines.append(
            f"a campaign is running on this store{f' (pid {pid})' if pid else ''}"
        )
    elif status.get("stopped"):
        stop = status["stopped"]
        lines.append(
            f"last run stopped: {stop.get('stop_reason')} (converged: {stop.get('converged')})"
        )
    elif "running" in status and sum(status.get("counts", {}).values()):
        lines.append(
            "last run ended without stopping (killed, or its machine went down);"
            " resume continues it"
        )
    return "\n".join(lines)


def _region_line(name: str, r: Mapping[str, Any], min_count: int | None) -> str:
    """One region's error; marked when the stop rule does not judge it."""
    if not r.get("count") or r.get("mean_abs_error") is None:
        return f"  {name:<5} no validation points"
    lo, hi = (r.get("interval") or [float("nan")] * 2)[:2]
    line = (
        f"  {name:<5} {r['mean_abs_error']:7.2f}  [{lo:.2f}, {hi:.2f}]  n={r['count']}"
    )
    if r.get("judged", True):
        return line
    fewer = "too few" if min_count is None else f"fewer than {min_count}"
    return f"{line}  ({fewer} validation points: not judged)"


def _sigma_line(sigma: Mapping[str, Any]) -> str:
    raw = sigma.get("raw") or {}
    scale = sigma.get("sigma_scale")
    if sigma.get("within_1sigma") is None:
        # The rescaled sigma's coverage needs MIN_CALIBRATION_POINTS points in each
        # half of the validation points; until then only the plain spread's is
        # known, whether or not all points together already set the factor.
        text = (
            f"  sigma: the plain ensemble spread covers {raw['within_1sigma']:.2f} of"
            f" validation points within 1 sigma, {raw['within_2sigma']:.2f} within 2"
            f" (Gaussian 0.68, 0.95)"
        )
        if scale is None:
            return f"{text}; not yet rescaled (that needs {MIN_CALIBRATION_POINTS})"
        return (
            f"{text}; sigma is that spread x {scale:.2f}; how well it covers is"
            f" measured once there are {2 * MIN_CALIBRATION_POINTS} validation points"
        )
    shares = (
        f"  sigma: {sigma['within_1sigma']:.2f} of validation points within 1 sigma,"
        f" {sigma['within_2sigma']:.2f} within 2 (Gaussian 0.68, 0.95"
    )
    if scale is not None and raw.get("within_1sigma") is not None:
        return (
            f"{shares}; each half of them checked with the factor the other half"
            f" sets); ensemble spread x {scale:.2f}, unscaled"
            f" {raw['within_1sigma']:.2f} and {raw['within_2sigma']:.2f}"
        )
    if raw:
        # Refits recorded before the coverage was left unmeasured on few points.
        return (
            f"{shares}); the plain ensemble spread, not yet rescaled (that needs"
            f" {MIN_CALIBRATION_POINTS} validation points)"
        )
    return f"{shares})"


def _trend_lines(refits: Sequence[Mapping[str, Any]], at: str = "") -> list[str]:
    if not refits:
        return ["no refit yet"]
    lines = [f"recent refits (round, training points, overall mean |dchi2|{at}):"]
    for r in refits:
        overall = "n/a" if r["overall"] is None else f"{r['overall']:.2f}"
        lines.append(f"  {r['round']:>4} {r['n_train']:>7} {overall:>8}")
    return lines


def _estimate_line(status: Mapping[str, Any]) -> str:
    remaining = status["estimated_remaining"]
    if remaining is None:
        return f"simulations still needed: unknown ({status['estimate']['reason']})"
    return (
        f"simulations still needed: about {remaining} ({status['estimate']['method']})"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value
