"""Partial widths of the open two-body channels of every MSSM particle (GeV).

Each function returns a list of ``(width, daughters)`` with signed PDG daughters for
the particle (not its charge conjugate). Couplings come from ``decays_couplings``;
the width formulas from ``decays_widths``. Channels that are kinematically closed or
have a vanishing coupling are left out.

Not included: loop-induced channels (g~ -> g chi0, H/A -> g g, gamma gamma) and
heavy Higgs decays into other Higgs bosons except H -> h h, A -> Z h, H+ -> W h.
"""

from __future__ import annotations

import numpy as np

from simulators import decays_widths as w
from simulators.decays_couplings import (
    CHARGINOS,
    DOUBLET_PARTNER,
    FERMION_QUANTUM_NUMBERS,
    GLUINO,
    NEUTRALINOS,
    SQRT2,
    Couplings,
    chargino_higgs,
    chargino_sfermion,
    chargino_z,
    gluino_sfermion,
    heavy_higgs_to_light_pair,
    neutralino_chargino_hplus,
    neutralino_higgs,
    neutralino_sfermion,
    neutralino_w,
    neutralino_z,
    sfermion_charged_higgs,
    sfermion_higgs,
)

Channels = list[tuple[float, tuple[int, ...]]]

#: Colour factor of a squark decaying into quark + gluino (C_F).
CF = 4.0 / 3.0
#: Colour factor of a gluino decaying into quark + squark (Tr(T^a T^a) / 8).
GLUINO_COLOUR = 0.5
NEUTRAL_HIGGS = (25, 35, 36)
#: Fermions whose Higgs couplings are kept (the others are below 1e-4 relative).
HIGGS_FERMIONS = (6, 5, 4, 3, 15, 13)


def sfermion_channels(cp: Couplings, fermion: int, i: int) -> Channels:
    """Two-body channels of sfermion state ``i`` of the family of ``fermion``."""
    fam = cp.families[fermion]
    m = fam.masses[i]
    m_f = cp.mass(fermion)
    out: Channels = []
    a, b = neutralino_sfermion(cp, fermion)
    for k, pdg in enumerate(NEUTRALINOS):
        width = w.scalar_to_fermions(m, m_f, cp.m_neutralino[k], a[i, k], b[i, k])
        out.append((width, (pdg, fermion)))
    out += _sfermion_to_chargino(cp, fermion, i)
    if FERMION_QUANTUM_NUMBERS[fermion][2] == 3:
        ag, bg = gluino_sfermion(cp, fermion)
        width = w.scalar_to_fermions(m, m_f, cp.m_gluino, ag[i], bg[i], CF)
        out.append((width, (GLUINO, fermion)))
    out += _sfermion_to_sfermion(cp, fermion, i)
    return out


def _sfermion_to_chargino(cp: Couplings, fermion: int, i: int) -> Channels:
    """f~ -> f' chi+- (u~ -> d chi+, d~ -> u chi-)."""
    partner = DOUBLET_PARTNER[fermion]
    up = FERMION_QUANTUM_NUMBERS[fermion][0] > 0
    l_c, k_c = chargino_sfermion(cp, fermion)
    m = cp.families[fermion].masses[i]
    out: Channels = []
    for k, pdg in enumerate(CHARGINOS):
        width = w.scalar_to_fermions(
            m, cp.mass(partner), cp.m_chargino[k], l_c[i, k], k_c[i, k]
        )
        out.append((width, (pdg if up else -pdg, partner)))
    return out


def _sfermion_to_sfermion(cp: Couplings, fermion: int, i: int) -> Channels:
    """f~_2 -> f~_1 Z / h / H / A and f~_i -> f~'_j W / H+-."""
    fam = cp.families[fermion]
    t3 = FERMION_QUANTUM_NUMBERS[fermion][0]
    m = fam.masses[i]
    out: Channels = []
    light_boson = min(cp.m_z, cp.mass(25))
    if i == 1 and len(fam.pdgs) == 2 and m > fam.masses[0] + light_boson:
        gz = cp.g / np.sqrt(1.0 - cp.sw2) * t3 * fam.R[1, 0] * fam.R[0, 0]
        out.append(
            (w.scalar_to_scalar_vector(m, fam.masses[0], cp.m_z, gz), (fam.pdgs[0], 23))
        )
        for pdg, G in sfermion_higgs(cp, fermion).items():
            width = w.scalar_to_scalars(m, fam.masses[0], cp.mass(pdg), G[0, 1])
            out.append((width, (fam.pdgs[0], pdg)))
    partner = cp.families[DOUBLET_PARTNER[fermion]]
    w_pdg = 24 if t3 > 0 else -24
    if m <= partner.masses.min() + cp.m_w:
        return out
    if m > partner.masses.min() + cp.mass(37):
        G = sfermion_charged_higgs(cp, fermion if t3 > 0 else DOUBLET_PARTNER[fermion])
        G = G if t3 > 0 else G.T
        for j, pdg in enumerate(partner.pdgs):
            width = w.scalar_to_scalars(m, partner.masses[j], cp.mass(37), G[i, j])
            out.append((width, (pdg, 37 if t3 > 0 else -37)))
    for j, pdg in enumerate(partner.pdgs):
        gw = cp.g / SQRT2 * fam.R[i, 0] * partner.R[j, 0]
        out.append(
            (w.scalar_to_scalar_vector(m, partner.masses[j], cp.m_w, gw), (pdg, w_pdg))
        )
    return out


def gluino_channels(cp: Couplings) -> Channels:
    """g~ -> q~ qbar and q~* q for every squark."""
    out: Channels = []
    for q in (1, 2, 3, 4, 5, 6):
        fam = cp.families[q]
        ag, bg = gluino_sfermion(cp, q)
        for i, pdg in enumerate(fam.pdgs):
            width = w.fermion_to_fermion_scalar(
                cp.m_gluino, cp.mass(q), fam.masses[i], ag[i], bg[i], GLUINO_COLOUR
            )
            out += [(width, (pdg, -q)), (width, (-pdg, q))]
    return out


def neutralino_channels(cp: Couplings, k: int) -> Channels:
    """Two-body channels of neutralino ``k`` (0-based)."""
    m = cp.m_neutralino[k]
    out: Channels = []
    zl, zr = neutralino_z(cp)
    for j in range(4):
        if j == k:
            continue
        mj = cp.m_neutralino[j]
        width = w.fermion_to_fermion_vector(m, mj, cp.m_z, zl[k, j], zr[k, j])
        out.append((width, (NEUTRALINOS[j], 23)))
        for pdg, C in neutralino_higgs(cp).items():
            sign = -1.0 if pdg == 36 else 1.0
            width = w.fermion_to_fermion_scalar(
                m, mj, cp.mass(pdg), C[k, j], sign * C[k, j]
            )
            out.append((width, (NEUTRALINOS[j], pdg)))
    out += _neutralino_to_chargino(cp, k)
    out += _ino_to_sfermions(cp, m, "neutralino", k)
    return out


def _neutralino_to_chargino(cp: Couplings, k: int) -> Channels:
    """chi0_k -> chi+-_j W-+ and chi+-_j H-+ (both charges)."""
    m = cp.m_neutralino[k]
    wl, wr = neutralino_w(cp)
    hl, hr = neutralino_chargino_hplus(cp)
    out: Channels = []
    for j, pdg in enumerate(CHARGINOS):
        mc = cp.m_chargino[j]
        width = w.fermion_to_fermion_vector(m, mc, cp.m_w, wl[k, j], wr[k, j])
        out += [(width, (pdg, -24)), (width, (-pdg, 24))]
        width = w.fermion_to_fermion_scalar(m, mc, cp.mass(37), hl[k, j], hr[k, j])
        out += [(width, (pdg, -37)), (width, (-pdg, 37))]
    return out


def _ino_to_sfermions(cp: Couplings, m: float, kind: str, k: int) -> Channels:
    """Neutralino or chargino -> sfermion + fermion, every family."""
    out: Channels = []
    for fermion, fam in cp.families.items():
        t3, _, colour = FERMION_QUANTUM_NUMBERS[fermion]
        if kind == "neutralino":
            a, b = neutralino_sfermion(cp, fermion)
            m_f = cp.mass(fermion)
            for i, pdg in enumerate(fam.pdgs):
                width = w.fermion_to_fermion_scalar(
                    m, m_f, fam.masses[i], a[i, k], b[i, k], colour
                )
                out += [(width, (pdg, -fermion)), (width, (-pdg, fermion))]
            continue
        partner = DOUBLET_PARTNER[fermion]
        l_c, k_c = chargino_sfermion(cp, fermion)
        for i, pdg in enumerate(fam.pdgs):
            width = w.fermion_to_fermion_scalar(
                m, cp.mass(partner), fam.masses[i], l_c[i, k], k_c[i, k], colour
            )
            daughters = (pdg, -partner) if t3 > 0 else (-pdg, partner)
            out.append((width, daughters))
    return out


def chargino_channels(cp: Couplings, k: int) -> Channels:
    """Two-body channels of the positive chargino ``k`` (0-based)."""
    m = cp.m_chargino[k]
    wl, wr = neutralino_w(cp)
    hl, hr = neutralino_chargino_hplus(cp)
    out: Channels = []
    for j, pdg in enumerate(NEUTRALINOS):
        mn = cp.m_neutralino[j]
        out.append(
            (w.fermion_to_fermion_vector(m, mn, cp.m_w, wl[j, k], wr[j, k]), (pdg, 24))
        )
        out.append(
            (
                w.fermion_to_fermion_scalar(m, mn, cp.mass(37), hl[j, k], hr[j, k]),
                (pdg, 37),
            )
        )
    if k == 1:
        zl, zr = chargino_z(cp)
        m1 = cp.m_chargino[0]
        out.append(
            (
                w.fermion_to_fermion_vector(m, m1, cp.m_z, zl[0, 1], zr[0, 1]),
                (CHARGINOS[0], 23),
            )
        )
        for pdg, C in chargino_higgs(cp).items():
            sign = -1.0 if pdg == 36 else 1.0
            width = w.fermion_to_fermion_scalar(
                m, m1, cp.mass(pdg), C[0, 1], sign * C[1, 0]
            )
            out.append((width, (CHARGINOS[0], pdg)))
    out += _ino_to_sfermions(cp, m, "chargino", k)
    return out


def higgs_channels(cp: Couplings, pdg: int) -> Channels:
    """Two-body channels of H (35), A (36) or H+ (37)."""
    if pdg == 37:
        return _charged_higgs_channels(cp)
    m = cp.mass(pdg)
    out = _neutral_higgs_to_fermions(cp, pdg, m)
    out += _neutral_higgs_to_inos(cp, pdg, m)
    out += _neutral_higgs_to_sfermions(cp, pdg, m)
    cos_ba = cp.cos_beta * cp.cos_alpha + cp.sin_beta * cp.sin_alpha
    if pdg == 35:
        g_hhh = heavy_higgs_to_light_pair(cp)
        width = 0.5 * w.scalar_to_scalars(m, cp.mass(25), cp.mass(25), g_hhh)
        out.append((width, (25, 25)))
        for v_pdg, mv, delta in ((24, cp.m_w, 2.0), (23, cp.m_z, 1.0)):
            out.append(
                (
                    cos_ba**2 * _higgs_to_vv(cp, m, mv, delta),
                    (v_pdg, -v_pdg if v_pdg == 24 else v_pdg),
                )
            )
    else:
        gz = cp.g / (2.0 * np.sqrt(1.0 - cp.sw2)) * cos_ba
        out.append((w.scalar_to_scalar_vector(m, cp.mass(25), cp.m_z, gz), (23, 25)))
    return out


def _higgs_to_vv(cp: Couplings, m: float, mv: float, delta: float) -> float:
    """SM-like width of a scalar of mass m into V V (delta 2 for W, 1 for Z)."""
    x = (mv / m) ** 2
    if x >= 0.25:
        return 0.0
    g_fermi = cp.g**2 / (4.0 * SQRT2 * cp.m_w**2)
    return (
        delta
        * g_fermi
        * m**3
        / (16 * SQRT2 * np.pi)
        * np.sqrt(1 - 4 * x)
        * (1 - 4 * x + 12 * x * x)
    )


def higgs_fermion_couplings(cp: Couplings, pdg: int, f: int) -> tuple[float, float]:
    """``(a, b)`` of a neutral Higgs (25, 35, 36) to ``f fbar`` (a = -b for A)."""
    up = FERMION_QUANTUM_NUMBERS[f][0] > 0
    factors = {
        25: (cp.cos_alpha, -cp.sin_alpha),
        35: (cp.sin_alpha, cp.cos_alpha),
        36: (cp.cos_beta, cp.sin_beta),
    }
    y = cp.yukawa[f] * factors[pdg][0 if up else 1] / SQRT2
    return y, (-y if pdg == 36 else y)


def _neutral_higgs_to_fermions(cp: Couplings, pdg: int, m: float) -> Channels:
    """H or A -> f fbar for the charged SM fermions with sizeable Yukawas."""
    out: Channels = []
    for f in HIGGS_FERMIONS:
        a, b = higgs_fermion_couplings(cp, pdg, f)
        m_f, colour = cp.mass(f), FERMION_QUANTUM_NUMBERS[f][2]
        out.append((w.scalar_to_fermions(m, m_f, m_f, a, b, colour), (f, -f)))
    return out


def _neutral_higgs_to_sfermions(cp: Couplings, pdg: int, m: float) -> Channels:
    """H or A -> f~_i f~_j* for every sfermion family."""
    out: Channels = []
    for fermion, fam in cp.families.items():
        if m <= 2 * fam.masses.min():
            continue
        colour = FERMION_QUANTUM_NUMBERS[fermion][2]
        G = sfermion_higgs(cp, fermion)[pdg]
        for i, p_i in enumerate(fam.pdgs):
            for j, p_j in enumerate(fam.pdgs):
                width = w.scalar_to_scalars(m, fam.masses[i], fam.masses[j], G[i, j])
                out.append((colour * width, (p_i, -p_j)))
    return out


def _neutral_higgs_to_inos(cp: Couplings, pdg: int, m: float) -> Channels:
    """H or A -> chi0 chi0 and chi+ chi-."""
    sign = -1.0 if pdg == 36 else 1.0
    C = neutralino_higgs(cp)[pdg]
    out: Channels = []
    for i in range(4):
        for j in range(i, 4):
            mi, mj = cp.m_neutralino[i], cp.m_neutralino[j]
            width = w.scalar_to_fermions(m, mi, mj, C[i, j], sign * C[i, j])
            out.append(
                (width * (0.5 if i == j else 1.0), (NEUTRALINOS[i], NEUTRALINOS[j]))
            )
    D = chargino_higgs(cp)[pdg]
    for i in range(2):
        for j in range(2):
            mi, mj = cp.m_chargino[i], cp.m_chargino[j]
            width = w.scalar_to_fermions(m, mi, mj, D[j, i], sign * D[i, j])
            out.append((width, (CHARGINOS[i], -CHARGINOS[j])))
    return out


def _charged_higgs_channels(cp: Couplings) -> Channels:
    """H+ -> u dbar, nu lbar, chi+ chi0, W+ h."""
    m = cp.mass(37)
    out: Channels = []
    for up, down in ((6, 5), (4, 3), (16, 15), (14, 13)):
        colour = FERMION_QUANTUM_NUMBERS[up][2]
        a = cp.yukawa[up] * cp.cos_beta
        b = cp.yukawa[down] * cp.sin_beta
        width = w.scalar_to_fermions(m, cp.mass(up), cp.mass(down), a, b, colour)
        out.append((width, (up, -down)))
    hl, hr = neutralino_chargino_hplus(cp)
    for k, c_pdg in enumerate(CHARGINOS):
        for j, n_pdg in enumerate(NEUTRALINOS):
            width = w.scalar_to_fermions(
                m, cp.m_chargino[k], cp.m_neutralino[j], hl[j, k], hr[j, k]
            )
            out.append((width, (c_pdg, n_pdg)))
    cos_ba = cp.cos_beta * cp.cos_alpha + cp.sin_beta * cp.sin_alpha
    out.append(
        (w.scalar_to_scalar_vector(m, cp.mass(25), cp.m_w, cp.g / 2 * cos_ba), (24, 25))
    )
    for up, down in ((2, 1), (4, 3), (6, 5), (12, 11), (14, 13), (16, 15)):
        ups, downs = cp.families[up], cp.families[down]
        if m <= ups.masses.min() + downs.masses.min():
            continue
        colour = FERMION_QUANTUM_NUMBERS[up][2]
        G = sfermion_charged_higgs(cp, up)
        for i, p_i in enumerate(ups.pdgs):
            for j, p_j in enumerate(downs.pdgs):
                width = w.scalar_to_scalars(m, ups.masses[i], downs.masses[j], G[i, j])
                out.append((colour * width, (p_i, -p_j)))
    return out
