"""A synthetic chi-square landscape with known rare ranges, for proposer tests only.

The landscape depends on four unit-cube coordinates and ignores the others, so it
works for pMSSM-11 and pMSSM-19 alike. With ``t = u0 + u1`` (think: gluino and
squark mass coordinates; small t is a light, excluded spectrum):

- heavy spectra, ``t >= EDGE``: the zero-signal plateau ``ZERO_CHI2`` (inside the
  13 TeV zero-signal window 53.5-56 of paper Table 4), except for a Gaussian dip of
  depth ``DIP_DEPTH`` and width ``DIP_WIDTH`` around ``(u2, u3) = DIP_CENTRE``,
  a signal-like excess that lands in range I;
- light spectra, ``t < EDGE``: ``ZERO_CHI2 + SLOPE * (EDGE - t)``, capped at 100,
  which crosses ranges II and III in a thin band and then sits at the cap.

Rare-range rates under the uniform prior, worked out by hand (13 TeV regions):

- band (II and III, 56 <= chi2 < 95): ``t`` in ``(EDGE - 40.2/600, EDGE - 1.2/600)
  = (0.733, 0.798)``; for ``t < 1`` the density of ``u0 + u1`` is ``t``, so the
  probability is ``(0.798**2 - 0.733**2) / 2 = 0.0498``;
- dip (I, chi2 < 53.5): the dip exceeds ``ZERO_CHI2 - 53.5 = 1.3`` inside the disc
  ``r**2 < 2 DIP_WIDTH**2 ln(30 / 1.3)``, ``r = 0.1253``, of area ``pi r**2 =
  0.0493``, times ``P(t >= 0.8) = 1 - 0.8**2 / 2 = 0.68``: 0.0335;
- total: ``RARE_RATE_UNIFORM = 0.0833``.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor

#: Plateau chi-square of heavy spectra (zero-signal window at 13 TeV).
ZERO_CHI2 = 54.8
#: Where the signal sets in, in ``t = u0 + u1``.
EDGE = 0.8
#: Rise of chi-square per unit of ``t`` below the edge.
SLOPE = 600.0
#: Depth, width and centre (in ``(u2, u3)``) of the range-I dip.
DIP_DEPTH = 30.0
DIP_WIDTH = 0.05
DIP_CENTRE = (0.8, 0.8)
#: Hand-computed share of uniform prior points in ranges I-III (module docstring).
RARE_RATE_UNIFORM = 0.0833
#: Same for ranges II-III only (the band) and I only (the dip).
BAND_RATE_UNIFORM = 0.0498
DIP_RATE_UNIFORM = 0.0335


def chi2(U: np.ndarray) -> np.ndarray:
    """Landscape chi-square at unit-cube points ``U`` ``(n, dim >= 4)``, shape ``(n,)``."""
    U = np.atleast_2d(U)
    t = U[:, 0] + U[:, 1]
    r_sq = (U[:, 2] - DIP_CENTRE[0]) ** 2 + (U[:, 3] - DIP_CENTRE[1]) ** 2
    dip = DIP_DEPTH * np.exp(-r_sq / (2.0 * DIP_WIDTH**2)) * (t >= EDGE)
    rise = SLOPE * np.clip(EDGE - t, 0.0, None)
    return np.clip(ZERO_CHI2 + rise - dip, 0.0, 100.0)


class OracleSurrogate:
    """Knows the landscape up to a fixed noise: mean = chi2 + N(0, noise), std fixed."""

    def __init__(self, std: float = 3.0, noise: float = 1.0, seed: int = 0) -> None:
        self.std = std
        self.noise = noise
        self.seed = seed

    def predict(self, U: np.ndarray, return_std: bool = False):
        noise = np.random.default_rng(self.seed).normal(0.0, self.noise, len(U))
        mean = chi2(U) + noise
        return (mean, np.full(len(U), self.std)) if return_std else mean


class TreeEnsemble:
    """A learned stand-in: extremely randomised trees fitted to landscape points.

    The spread over trees plays the ensemble standard deviation: large near the band
    and the dip, where neighbouring training points disagree, small elsewhere.
    """

    def __init__(self, n_trees: int = 20, seed: int = 0) -> None:
        self.n_trees = n_trees
        self.seed = seed

    def fit(self, U: np.ndarray, y: np.ndarray) -> TreeEnsemble:
        self.model_ = ExtraTreesRegressor(
            n_estimators=self.n_trees, min_samples_leaf=3, random_state=self.seed
        ).fit(U, y)
        return self

    def predict(self, U: np.ndarray, return_std: bool = False):
        values = np.stack([tree.predict(U) for tree in self.model_.estimators_])
        mean = values.mean(axis=0)
        return (mean, values.std(axis=0)) if return_std else mean
