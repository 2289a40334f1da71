"""Surrogate accuracy per chi2 region (paper Table 4, Fig. 5), kNN baseline, calibration.

An ensemble's spread is not its error. Trained on 4 060 built-in chain labels
(13 TeV prior draws, ten splits), five direct networks put only 34-41 % of the
held-out points within one spread of their mean and 66-72 % within two, against
68 % and 95 % for an honest Gaussian sigma: the members agree with each other more
than with the simulation. :func:`sigma_scale` finds the factor that makes the
spread cover 68 % of the validation errors (1.9-2.1 there), and
:func:`cross_fitted_calibration` measures how well such a factor holds on points it
was not learned from (there: 68-69 % within one sigma, 89-92 % within two;
``benchmarks/bench_knn_builtin.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sampler.regions import REGION_NAMES, ChiSquareRegions
from scynet_al.errors import ModelError

logger = logging.getLogger(__name__)

#: Central share covered by the bootstrap interval of a mean error (one sigma).
INTERVAL_COVERAGE = 0.68

#: The paper's baseline is a nearest-neighbour interpolator (Sect. 3.2, Fig. 5).
KNN_NEIGHBOURS = 1

#: Share of a normal distribution within one standard deviation of its mean.
ONE_SIGMA_SHARE = 0.6827

#: Validation points (with a spread above zero) needed before sigma is rescaled:
#: the 68 % quantile of fewer is too noisy to trust, and the spread stays as it is.
MIN_CALIBRATION_POINTS = 20


def region_errors(
    chi2_true: np.ndarray,
    chi2_pred: np.ndarray,
    regions: ChiSquareRegions,
    std: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean |chi2_pred - chi2_true| overall and per region, with bootstrap intervals.

    Points are assigned to regions by their true chi2. Each interval is the central
    68 % of the mean error over ``n_boot`` resamples of that group's points. Empty
    regions report ``mean_abs_error`` and ``interval`` as None, so the result is
    JSON-able as it stands.

    Args:
        chi2_true: Simulated chi2, shape ``(n,)``.
        chi2_pred: Surrogate chi2, shape ``(n,)``.
        regions: The chi2 regions (I, zero, II, III, cap).
        std: Predicted standard deviation, shape ``(n,)``; adds ``calibration``, the
            shares of points with |dchi2| below one and two sigma.
        n_boot: Bootstrap resamples per group.
        seed: Seed of the resampling.

    Returns:
        ``{"overall": {...}, "regions": {name: {...}}, "calibration": {...}}`` with
        ``mean_abs_error``, ``count`` and ``interval`` ``[lo, hi]`` per group.
    """
    chi2_true, chi2_pred = _matched(chi2_true, chi2_pred)
    abs_error = np.abs(chi2_pred - chi2_true)
    names = regions.classify(chi2_true)
    rng = np.random.default_rng(seed)

    result: dict[str, Any] = {
        "overall": _summary(abs_error, n_boot, rng),
        "regions": {
            name: _summary(abs_error[names == name], n_boot, rng)
            for name in REGION_NAMES
        },
    }
    if std is not None:
        result["calibration"] = calibration(chi2_true, chi2_pred, std)
    return result


def calibration(
    chi2_true: np.ndarray, chi2_pred: np.ndarray, std: np.ndarray
) -> dict[str, float | None]:
    """Shares of points with |dchi2| < sigma and < 2 sigma (Gaussian: 0.683, 0.954)."""
    chi2_true, chi2_pred = _matched(chi2_true, chi2_pred)
    std = _matched_std(std, chi2_true)
    if chi2_true.size == 0:
        return {"within_1sigma": None, "within_2sigma": None}
    delta = np.abs(chi2_pred - chi2_true)
    return {
        "within_1sigma": float(np.mean(delta < std)),
        "within_2sigma": float(np.mean(delta < 2.0 * std)),
    }


def sigma_scale(
    chi2_true: np.ndarray, chi2_pred: np.ndarray, std: np.ndarray
) -> float | None:
    """The factor by which ``std`` must grow so that it covers 68.27 % of the errors.

    It is the 68.27 % quantile of ``|dchi2| / std`` over the points with
    ``std > 0``: multiplied by it, sigma has a Gaussian's one-sigma coverage on
    these points. Points with zero spread (a single member) tell nothing and are
    left out.

    Args:
        chi2_true: Simulated chi2, shape ``(n,)``.
        chi2_pred: Predicted chi2, shape ``(n,)``.
        std: Predicted spread, shape ``(n,)``.

    Returns:
        The factor, or None when fewer than :data:`MIN_CALIBRATION_POINTS` points
        have a spread or every error is zero.
    """
    chi2_true, chi2_pred = _matched(chi2_true, chi2_pred)
    std = _matched_std(std, chi2_true)
    spread = std > 0.0
    if int(spread.sum()) < MIN_CALIBRATION_POINTS:
        return None
    ratios = np.abs(chi2_pred - chi2_true)[spread] / std[spread]
    factor = float(np.quantile(ratios, ONE_SIGMA_SHARE))
    return factor if factor > 0.0 else None


def cross_fitted_calibration(
    chi2_true: np.ndarray, chi2_pred: np.ndarray, std: np.ndarray
) -> dict[str, Any]:
    """Coverage of the rescaled sigma on points its factor was not learned from.

    The points are dealt alternately into two halves; each half's spread is
    rescaled by the :func:`sigma_scale` of the other half, and the shares within
    one and two sigma are counted over both halves. Where a half is too small to
    learn a factor from, these shares are None: the coverage of the rescaled sigma
    cannot be measured yet, even though all points together may already set the
    factor. That factor, the one a calibrated ensemble uses, is reported beside
    them, and so are the shares of the unscaled spread.

    Args:
        chi2_true: Simulated chi2, shape ``(n,)``.
        chi2_pred: Predicted chi2, shape ``(n,)``.
        std: The ensemble's unscaled spread, shape ``(n,)``.

    Returns:
        ``{"within_1sigma", "within_2sigma", "sigma_scale", "raw": {"within_1sigma",
        "within_2sigma"}}``; ``sigma_scale`` is None when it cannot be learned.
    """
    chi2_true, chi2_pred = _matched(chi2_true, chi2_pred)
    std = _matched_std(std, chi2_true)
    halves = [slice(0, None, 2), slice(1, None, 2)]
    # Each half's factor, lent to the other half.
    lent = [sigma_scale(chi2_true[h], chi2_pred[h], std[h]) for h in halves[::-1]]
    if None in lent:
        shares: dict[str, float | None] = {"within_1sigma": None, "within_2sigma": None}
    else:
        scaled = std.copy()
        for half, factor in zip(halves, lent, strict=True):
            scaled[half] *= factor
        shares = calibration(chi2_true, chi2_pred, scaled)
    return {
        **shares,
        "sigma_scale": sigma_scale(chi2_true, chi2_pred, std),
        "raw": calibration(chi2_true, chi2_pred, std),
    }


def knn_baseline(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    regions: ChiSquareRegions,
    n_neighbors: int = KNN_NEIGHBOURS,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The same error summary for a k-nearest-neighbour regressor (scikit-learn).

    Args:
        X_train: Training inputs, shape ``(n_train, d)`` (same coordinates the
            network sees, e.g. unit-cube points).
        y_train: Training chi2, shape ``(n_train,)``.
        X_val: Validation inputs, shape ``(n_val, d)``.
        y_val: Validation chi2, shape ``(n_val,)``.
        regions: The chi2 regions.
        n_neighbors: Neighbours averaged (1: the paper's nearest-neighbour
            interpolator).

    Returns:
        As :func:`region_errors`, without calibration.
    """
    from sklearn.neighbors import KNeighborsRegressor

    X_train = np.asarray(X_train, dtype=float)
    k = min(int(n_neighbors), len(X_train))
    if k < 1:
        raise ModelError("the kNN baseline needs at least one training point")
    knn = KNeighborsRegressor(n_neighbors=k).fit(
        X_train, np.asarray(y_train, dtype=float)
    )
    prediction = knn.predict(np.asarray(X_val, dtype=float))
    return region_errors(y_val, prediction, regions, n_boot=n_boot, seed=seed)


def _summary(
    abs_error: np.ndarray, n_boot: int, rng: np.random.Generator
) -> dict[str, Any]:
    count = int(abs_error.size)
    if count == 0:
        return {"mean_abs_error": None, "count": 0, "interval": None}
    means = abs_error[rng.integers(0, count, size=(int(n_boot), count))].mean(axis=1)
    tail = 50.0 * (1.0 - INTERVAL_COVERAGE)
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return {
        "mean_abs_error": float(abs_error.mean()),
        "count": count,
        "interval": [float(lo), float(hi)],
    }


def _matched(
    chi2_true: np.ndarray, chi2_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    chi2_true = np.asarray(chi2_true, dtype=float).ravel()
    chi2_pred = np.asarray(chi2_pred, dtype=float).ravel()
    if chi2_true.shape != chi2_pred.shape:
        raise ModelError(
            f"true and predicted chi2 differ in length: {chi2_true.size} vs {chi2_pred.size}"
        )
    return chi2_true, chi2_pred


def _matched_std(std: np.ndarray, chi2_true: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=float).ravel()
    if std.shape != chi2_true.shape:
        raise ModelError(f"std has shape {std.shape}, expected {chi2_true.shape}")
    return std
