"""Combination of signal-region chi-squares into one chi-square per energy (Sect. 2.2).

Per analysis and disjoint group the signal region with the largest expected
sensitivity ``N_S / S95_exp`` is chosen; the chi-squares of the chosen regions are
summed per analysis and over analyses, and the total is capped (paper: at 100).

A region whose expected signal is exactly zero contributes the small-signal limit
:func:`~simulators.likelihood.chi2_background_only`, not the ``q = 0`` of an
unidentified ``μ``: a spectrum with no event passing any cut is the limit of ever
heavier spectra, whose chi-square tends to the background-only deviance. So a
decoupled spectrum lands on the catalogue's zero-signal chi-square, continuously
with heavy spectra. When every signal of a group is zero the region chosen is the one
an infinitesimal equal signal would pick: the smallest ``S95_exp``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from simulators.errors import CatalogueError
from simulators.likelihood import chi2_background_only, chi2_signal_region

if TYPE_CHECKING:
    from simulators.catalogue import Analysis, Catalogue

logger = logging.getLogger(__name__)

#: Signal of one analysis: SR name to ``(n_signal, sigma_signal_stat)`` in events.
AnalysisSignal = Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class CombinedChi2:
    """Outcome of :func:`combine`.

    Attributes:
        total: Sum over analyses, capped.
        uncapped: The same sum before the cap.
        per_analysis: Analysis name to its chi-square (sum over its chosen SRs).
        chosen: Analysis name to the chosen SR names, one per disjoint group.
        per_region: Analysis name to SR name to the chi-square of every SR, chosen
            or not (the small-signal limit where the signal is zero).
    """

    total: float
    uncapped: float
    per_analysis: dict[str, float]
    chosen: dict[str, list[str]]
    per_region: dict[str, dict[str, float]]


def combine(
    catalogue: Catalogue,
    signal: Mapping[str, AnalysisSignal],
    *,
    cap: float = 100.0,
    signal_systematic: float = 0.0,
) -> CombinedChi2:
    """Combined chi-square of one spectrum over a catalogue.

    Args:
        catalogue: The analyses to combine (usually one energy).
        signal: Analysis name (or alias) to SR name to ``(n_signal,
            sigma_signal_stat)``, expected events and their Monte Carlo statistical
            error. Analyses or SRs left out have zero signal.
        cap: Upper bound of the total (paper: 100); ``math.inf`` for none.
        signal_systematic: Relative signal systematic uncertainty, added in
            quadrature to the statistical error (0.2 = 20 %).

    Returns:
        The :class:`CombinedChi2`.

    Raises:
        CatalogueError: ``signal`` names an unknown analysis or SR, or holds a
            negative or non-finite number.
    """
    if not signal_systematic >= 0 or not math.isfinite(signal_systematic):
        raise CatalogueError(
            f"signal_systematic must be finite and >= 0, got {signal_systematic!r}"
        )
    by_name = dict(zip(catalogue.resolve(list(signal)), signal.values(), strict=True))

    per_region, per_analysis, chosen = {}, {}, {}
    for name, analysis in catalogue.analyses.items():
        s, sigma = _signal_arrays(analysis, by_name.get(name, {}), signal_systematic)
        q = _region_chi2(analysis, s, sigma)
        picks = _choose(analysis, s)
        per_region[name] = dict(zip(analysis.region_names, q.tolist(), strict=True))
        chosen[name] = [analysis.region_names[i] for i in picks]
        per_analysis[name] = float(np.sum(q[picks]))

    uncapped = float(sum(per_analysis.values()))
    logger.debug("combined chi2 %.3f over %d analyses", uncapped, len(per_analysis))
    return CombinedChi2(
        total=min(uncapped, cap),
        uncapped=uncapped,
        per_analysis=per_analysis,
        chosen=chosen,
        per_region=per_region,
    )


@dataclass(frozen=True)
class CombinedChi2Batch:
    """Outcome of :func:`combine_many` for ``m`` spectra.

    Attributes:
        total: Capped totals, shape ``(m,)``.
        uncapped: Totals before the cap, ``(m,)``.
        per_analysis: Analysis name to its chi-square, ``(m,)``.
        chosen: Analysis name to the index (catalogue order of its SRs) of the chosen
            SR per disjoint group, ``(m, n_groups)``.
    """

    total: np.ndarray
    uncapped: np.ndarray
    per_analysis: dict[str, np.ndarray]
    chosen: dict[str, np.ndarray]


def combine_many(
    catalogue: Catalogue,
    signal: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    cap: float = 100.0,
    signal_systematic: float = 0.0,
) -> CombinedChi2Batch:
    """:func:`combine` for many spectra at once (e.g. Monte Carlo replicas).

    Args:
        catalogue: The analyses to combine.
        signal: Analysis name (or alias) to ``(n_signal, sigma_signal_stat)``, each of
            shape ``(m, n_SR)`` with the SRs in catalogue order (events). Analyses
            left out have zero signal.
        cap: Upper bound of each total.
        signal_systematic: Relative signal systematic, added in quadrature.

    Returns:
        The :class:`CombinedChi2Batch`; row ``i`` equals ``combine`` of spectrum ``i``.

    Raises:
        CatalogueError: Unknown analysis, wrong shape, or a negative or non-finite
            number.
    """
    by_name = dict(zip(catalogue.resolve(list(signal)), signal.values(), strict=True))
    m = _batch_size(by_name)
    per_analysis, chosen = {}, {}
    for name, analysis in catalogue.analyses.items():
        s, sigma = _batch_arrays(analysis, by_name.get(name), m, signal_systematic)
        q = _region_chi2(analysis, s, sigma)
        picks = np.stack(
            [_choose_rows(analysis, group, s) for group in analysis.groups], 1
        )
        chosen[name] = picks
        per_analysis[name] = np.take_along_axis(q, picks, axis=1).sum(axis=1)
    uncapped = (
        np.sum(list(per_analysis.values()), axis=0) if per_analysis else np.zeros(m)
    )
    return CombinedChi2Batch(np.minimum(uncapped, cap), uncapped, per_analysis, chosen)


def _batch_size(by_name: Mapping[str, tuple[ArrayLike, ArrayLike]]) -> int:
    sizes = {np.shape(pair[0])[0] for pair in by_name.values() if np.ndim(pair[0]) == 2}
    if len(sizes) > 1:
        raise CatalogueError(
            f"signal arrays disagree on the number of spectra: {sorted(sizes)}"
        )
    return sizes.pop() if sizes else 1


def _batch_arrays(analysis: Analysis, pair, m: int, systematic: float):
    """``(m, n_SR)`` signal and total error of ``analysis`` (zeros when absent)."""
    k = len(analysis.signal_regions)
    if pair is None:
        return np.zeros((m, k)), np.zeros((m, k))
    s, stat = (np.asarray(v, dtype=np.float64) for v in pair)
    if s.shape != (m, k) or stat.shape != (m, k):
        raise CatalogueError(
            f"analysis {analysis.name}: signal arrays must have shape {(m, k)}, got {s.shape} and {stat.shape}"
        )
    bad = ~np.isfinite(s) | ~np.isfinite(stat) | (s < 0) | (stat < 0)
    if np.any(bad):
        sr = analysis.region_names[int(np.argwhere(bad)[0][1])]
        raise CatalogueError(
            f"analysis {analysis.name}, SR {sr}: signal must be finite and >= 0"
        )
    return s, np.hypot(stat, systematic * s)


def _choose_rows(
    analysis: Analysis, group: tuple[str, ...], s: np.ndarray
) -> np.ndarray:
    """Per row of ``s`` ``(m, n_SR)``, the index of the chosen SR of ``group``."""
    members = np.array([analysis.region_names.index(sr) for sr in group])
    s95_exp = np.array([analysis.signal_regions[sr].s95_exp for sr in group])
    ratio = s[:, members] / s95_exp
    best = np.argmax(ratio, axis=1)
    none = np.max(ratio, axis=1) <= 0
    return members[np.where(none, np.argmin(s95_exp), best)]


def _signal_arrays(
    analysis: Analysis, signal: AnalysisSignal, systematic: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signal and its total error per SR of ``analysis``, in catalogue order."""
    unknown = sorted(set(signal) - set(analysis.signal_regions))
    if unknown:
        raise CatalogueError(
            f"analysis {analysis.name}: unknown signal regions {unknown}"
        )
    s = np.zeros(len(analysis.signal_regions))
    stat = np.zeros_like(s)
    for i, sr in enumerate(analysis.region_names):
        if sr in signal:
            s[i], stat[i] = _checked_pair(signal[sr], analysis.name, sr)
    return s, np.hypot(stat, systematic * s)


def _checked_pair(
    value: tuple[float, float], analysis: str, sr: str
) -> tuple[float, float]:
    try:
        n_signal, sigma = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise CatalogueError(
            f"analysis {analysis}, SR {sr}: signal must be (n_signal, sigma), got {value!r}"
        ) from exc
    if not (
        math.isfinite(n_signal)
        and math.isfinite(sigma)
        and n_signal >= 0
        and sigma >= 0
    ):
        raise CatalogueError(
            f"analysis {analysis}, SR {sr}: signal must be finite and >= 0, got {value!r}"
        )
    return n_signal, sigma


def _region_chi2(analysis: Analysis, s: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Chi-square of every SR; the small-signal limit where ``s`` is zero."""
    regions = list(analysis.signal_regions.values())
    n_obs = np.array([r.n_obs for r in regions])
    n_bkg = np.array([r.n_bkg for r in regions])
    up = np.array([r.bkg_error_up for r in regions])
    down = np.array([r.bkg_error_down for r in regions])
    with_signal = chi2_signal_region(s, sigma, n_bkg, up, n_obs, sigma_bkg_down=down)
    limit = chi2_background_only(n_bkg, up, n_obs, sigma_bkg_down=down)
    return np.where(s > 0, with_signal, limit)


def _choose(analysis: Analysis, s: np.ndarray) -> list[int]:
    """Index of the most sensitive SR per disjoint group (largest ``s / S95_exp``)."""
    index = {sr: i for i, sr in enumerate(analysis.region_names)}
    s95_exp = np.array([r.s95_exp for r in analysis.signal_regions.values()])
    picks = []
    for group in analysis.groups:
        members = np.array([index[sr] for sr in group])
        ratio = s[members] / s95_exp[members]
        if np.max(ratio) > 0:
            picks.append(int(members[np.argmax(ratio)]))
        else:
            picks.append(int(members[np.argmin(s95_exp[members])]))
    return picks
