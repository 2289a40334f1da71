"""Built-in tree-level decay tables of the MSSM sparticles and heavy Higgs bosons.

``compute_decays(spectrum)`` returns widths and branching ratios of the gluino, all
squarks (incl. t~1,2 and b~1,2), sleptons, sneutrinos, tau~1,2, the neutralinos and
charginos that are not the lightest sparticle, and H, A, H+. Two-body channels cover
sfermion -> fermion + neutralino / chargino / gluino, sfermion -> sfermion + W / Z /
h / H / A, gluino -> squark + quark, ino -> ino + W / Z / h / H / A / H+,
ino -> sfermion + fermion, and for the heavy Higgs bosons the SM fermion pairs,
ino pairs, H -> W W / Z Z, A -> Z h and H+ -> W h. When a particle has no open
two-body channel, three-body (neutralinos and charginos through off-shell W, Z and
sfermions) and, for the stop, three- and four-body and flavour-changing decays are
computed instead. Gluino three-body decays through off-shell squarks are added to
its two-body ones unless those are wide (they matter when the only open two-body
channels are squeezed by phase space); squarks that can be produced on shell are
not exchanged.
The approximations are listed in ``decays_three_body``; the couplings (SLHA
conventions) in ``decays_couplings``.

Known differences from SPheno 4.0.5 (tests/test_decays.py compares all fixtures):
squark flavours do not mix here (only a leading-logarithm estimate of t~ -> c chi0
is made), so SPheno's flavour-changing t~1 -> c chi0 and g~ -> t~1 c, which reach
25 % on some points, are missing; gluino three-body widths come out 20-35 % low
because the interference of the squark and antisquark diagrams is left out (the
branching ratios agree within a few per cent); three-body quark channels of
neutralinos and charginos use pole masses for c and b, SPheno running ones.

The lightest sparticle (normally chi0_1) is stable: width 0, no channels. Channels
below ``MIN_BRANCHING_RATIO`` are dropped and the rest renormalised, so every
table with a positive width sums to 1. Light Higgs, top, W and Z decays are left to
the event generator (its SM tables are accurate) and are not in the table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np

from simulators import decays_partial as partial
from simulators import decays_three_body as many
from simulators.decays_couplings import (
    CHARGINOS,
    GLUINO,
    NEUTRALINOS,
    Couplings,
    build_couplings,
)
from simulators.errors import SimulatorError
from simulators.spectrum_types import Decay, DecayTable, Spectrum

logger = logging.getLogger(__name__)

#: Channels with a smaller branching ratio are dropped (the rest renormalised).
MIN_BRANCHING_RATIO = 1e-5

HEAVY_HIGGS = (35, 36, 37)
#: Gluino three-body decays are added when the two-body width is below this
#: fraction of the gluino mass; above it they are below 1e-2 of the total (a
#: three-body width is at most about alpha_s alpha / (96 pi) m_gluino ~ 1e-5 m).
GLUINO_THREE_BODY_BELOW = 1e-3
#: Chargino and neutralino masses closer than this (GeV) count as degenerate.
DEGENERACY_GEV = 0.01


class DecayError(SimulatorError, ValueError):
    """Raised when a spectrum lacks what the decay calculation needs."""


def compute_decays(spectrum: Spectrum) -> DecayTable:
    """Widths and branching ratios of every sparticle and of H, A, H+.

    Args:
        spectrum: A spectrum in SLHA conventions (masses in GeV).

    Returns:
        PDG code of the particle to its ``Decay``; daughters are signed PDG codes.

    Raises:
        DecayError: If the spectrum lacks a mass or mixing the formulas need.
    """
    try:
        cp = build_couplings(spectrum)
    except (KeyError, ValueError, IndexError) as exc:
        raise DecayError(
            f"spectrum incomplete for the decay calculation: {exc}"
        ) from exc

    lsp = _lightest_sparticle(cp.masses)
    table: DecayTable = {}
    for pdg, channels in _all_channels(cp, lsp):
        table[pdg] = _to_decay(pdg, channels)
    table[lsp] = Decay(0.0, [])
    return table


def _lightest_sparticle(masses: dict[int, float]) -> int:
    """PDG code of the lightest supersymmetric particle.

    A chargino degenerate with chi0_1 within ``DEGENERACY_GEV`` (a tree-level wino or
    higgsino pair) does not displace chi0_1: it decays to it through its
    loop-induced splitting.
    """
    susy = {p: abs(m) for p, m in masses.items() if abs(p) > 1000000}
    lightest = min(susy, key=susy.get)
    if (
        lightest == 1000024
        and susy.get(1000022, np.inf) - susy[lightest] < DEGENERACY_GEV
    ):
        return 1000022
    return lightest


def _all_channels(cp: Couplings, lsp: int) -> Iterator[tuple[int, partial.Channels]]:
    """Yield ``(pdg, channels)`` for every particle but the lightest sparticle."""
    yield from _sfermion_channels(cp, lsp)
    if lsp != GLUINO:
        yield GLUINO, _gluino_channels(cp)
    yield from _ino_channels(cp, lsp)
    for pdg in HEAVY_HIGGS:
        if pdg in cp.masses:
            yield pdg, partial.higgs_channels(cp, pdg)


def _sfermion_channels(
    cp: Couplings, lsp: int
) -> Iterator[tuple[int, partial.Channels]]:
    """Sfermions; a stop with no open two-body channel decays through many bodies."""
    for fermion, fam in cp.families.items():
        for i, pdg in enumerate(fam.pdgs):
            if pdg == lsp:
                continue
            channels = partial.sfermion_channels(cp, fermion, i)
            if fermion == 6 and _total(channels) == 0.0:
                channels = many.stop_many_body(cp, i)
            yield pdg, channels


def _gluino_channels(cp: Couplings) -> partial.Channels:
    """Gluino two-body channels, plus three-body ones when the former are narrow."""
    channels = partial.gluino_channels(cp)
    if _total(channels) < GLUINO_THREE_BODY_BELOW * abs(cp.m_gluino):
        channels += many.gluino_three_body(cp)
    return channels


def _ino_channels(cp: Couplings, lsp: int) -> Iterator[tuple[int, partial.Channels]]:
    """Neutralinos and charginos; three-body decays when no two-body one is open."""
    for k, pdg in enumerate(NEUTRALINOS):
        if pdg != lsp:
            channels = partial.neutralino_channels(cp, k)
            if _total(channels) == 0.0:
                channels = many.neutralino_three_body(cp, k)
            yield pdg, channels
    for k, pdg in enumerate(CHARGINOS):
        if pdg != lsp:
            channels = partial.chargino_channels(cp, k)
            if _total(channels) == 0.0:
                channels = many.chargino_three_body(cp, k)
            yield pdg, channels


def _total(channels: partial.Channels) -> float:
    """Sum of the partial widths (GeV)."""
    return float(sum(width for width, _ in channels))


def _to_decay(pdg: int, channels: partial.Channels) -> Decay:
    """Merge identical channels, drop tiny ones, normalise to branching ratios."""
    merged: dict[tuple[int, ...], float] = {}
    for width, daughters in channels:
        width = float(width)
        if math.isfinite(width) and width > 0.0:
            merged[daughters] = merged.get(daughters, 0.0) + width
    total = sum(merged.values())
    if total <= 0.0:
        logger.warning("no open decay channel found for PDG %s; listed as stable", pdg)
        return Decay(0.0, [])
    kept = {d: x for d, x in merged.items() if x / total >= MIN_BRANCHING_RATIO}
    kept_total = sum(kept.values())
    ordered = sorted(kept.items(), key=lambda item: -item[1])
    return Decay(total, [(x / kept_total, d) for d, x in ordered])
