"""An analytic chi2-like landscape over the 11-dim unit cube, for surrogate tests only.

It mimics the shape of the paper's 13 TeV chi2 (Fig. 4b): a zero-signal plateau at
54, a shallow excess dip below it (range I), a smooth rise through II and III where
light coloured sparticles and a light LSP make a signal, and the cap at 100.
"""

from __future__ import annotations

import numpy as np

ZERO_SIGNAL_CHI2 = 54.0
CAP = 100.0


def standin_chi2(U: np.ndarray) -> np.ndarray:
    """Chi2 of unit-cube points ``U`` (shape ``(n, 11)``, pMSSM-11 order)."""
    U = np.asarray(U, dtype=float)
    gluino = np.abs(2.0 * U[:, 2] - 1.0)  # |M3| in the unit map with its gap
    squark = U[:, 3]
    lsp = np.abs(2.0 * U[:, 0] - 1.0)
    sensitivity = (
        2.2 * np.exp(-3.0 * gluino)
        + 1.6 * np.exp(-2.5 * squark)
        - 1.4 * lsp
        + 0.4 * U[:, 10]
        - 0.3 * U[:, 9]
        - 0.6
    )
    rise = np.logaddexp(0.0, 6.0 * sensitivity) / 6.0
    dip = 6.0 * np.exp(-(((sensitivity + 0.15) / 0.12) ** 2))
    chi2 = ZERO_SIGNAL_CHI2 + 70.0 * rise - dip
    chi2 = np.where(sensitivity < -0.6, ZERO_SIGNAL_CHI2, chi2)
    return np.clip(chi2, 0.0, CAP)


def standin_dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform unit-cube points and their chi2."""
    U = np.random.default_rng(seed).random((n, 11))
    return U, standin_chi2(U)
