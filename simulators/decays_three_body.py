"""Three- and four-body decays used when every two-body channel is closed (GeV).

Approximations (stated once, used throughout):

- Gluino -> q q' chi through off-shell squarks: the squark (q~) and antisquark
  (q~'*) exchange diagrams are squared separately and added; their interference is
  neglected (it is of order m_chi / m_gluino times the smaller diagram). The
  interference between the two mass states of one squark flavour is kept, and all
  quark masses (top included) enter the kinematics and the chirality-flip terms.
- Neutralino and chargino -> chi f f': off-shell W or Z (factorised, exact for
  massless fermions), sfermion exchange (as for the gluino) and, for neutralinos,
  off-shell h, H and A exchange, added without their mutual interference.
  Charged-Higgs exchange in chargino decays is neglected.
- Chargino - neutralino splittings below 1.5 GeV: the quark channels are replaced by
  chi+ -> chi0 pi+ (Chen, Drees, Gunion, Phys. Rev. D55 (1997) 330); a splitting
  below the one-loop wino value (tree-level degeneracy) is raised to that value.
- Stop with t~ -> t chi0 and t~ -> b chi+ closed: t~ -> b W chi0 through an off-shell
  top treated as a particle of mass sqrt(q^2) (spin correlations and the off-shell
  numerator neglected; chargino and sbottom exchange neglected), the four-body
  t~ -> b f f' chi0 when the W is off shell too, and the flavour-changing
  t~ -> c chi0 with the leading-logarithm mixing of Hikasa and Kobayashi, Phys. Rev.
  D36 (1987) 724, the logarithm running from the 1 TeV input scale to m_W.
- The gluino -> g chi0 loop decay is omitted.
"""

from __future__ import annotations

import numpy as np

from simulators import decays_widths as w
from simulators.decays_couplings import (
    CHARGINOS,
    FERMION_QUANTUM_NUMBERS,
    NEUTRALINOS,
    SQRT2,
    Couplings,
    chargino_sfermion,
    chargino_z,
    gluino_sfermion,
    neutralino_higgs,
    neutralino_sfermion,
    neutralino_w,
    neutralino_z,
)
from simulators.decays_partial import (
    GLUINO_COLOUR,
    HIGGS_FERMIONS,
    NEUTRAL_HIGGS,
    Channels,
    higgs_fermion_couplings,
)

#: Total widths (GeV) of W, Z and top used in off-shell propagators (PDG 2022).
WIDTH_W_GEV = 2.085
WIDTH_Z_GEV = 2.4952
WIDTH_TOP_GEV = 1.42
#: Widths used in off-shell Higgs propagators: h (SM, 4.1 MeV) and, for H and A, a
#: nominal 1 % of the mass (the propagators are far off shell where they are used).
WIDTH_H_GEV = 0.0041
HEAVY_HIGGS_WIDTH_FRACTION = 0.01
#: Fermi constant (GeV^-2), pion decay constant (GeV, f_pi = 130 MeV convention),
#: charged pion mass (GeV) and |V_ud| (PDG 2022).
G_FERMI = 1.1663788e-5
F_PION_GEV = 0.1302
M_PION_GEV = 0.13957
V_UD = 0.974
#: |V_tb V_cb| for the flavour-changing stop decay (PDG 2022 CKM fit).
V_TB_V_CB = 0.0410
#: Input scale (GeV) of the soft parameters (SPA convention).
INPUT_SCALE_GEV = 1000.0
#: Below this chargino-neutralino splitting (GeV) quark channels become pions.
PION_REGIME_GEV = 1.5
#: Smallest chargino - neutralino_1 splitting assumed (GeV): the one-loop
#: electroweak splitting of a pure wino, about 164 MeV (Ibe, Matsumoto, Sato, Phys.
#: Lett. B721 (2013) 252). A tree-level spectrum leaves the two degenerate.
RADIATIVE_SPLITTING_GEV = 0.164

#: Fermion doublets as (up-type, down-type).
DOUBLETS = ((2, 1), (4, 3), (6, 5), (12, 11), (14, 13), (16, 15))
ALL_FERMIONS = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)


def _offshell(
    cp: Couplings, families: tuple[int, ...], m_line1: float, m0: float
) -> list:
    """Drop exchanged sfermion states that could be produced on shell."""
    return [
        fam for fam in families if np.all(cp.families[fam].masses > abs(m0) - m_line1)
    ]


def gluino_three_body(cp: Couplings) -> Channels:
    """g~ -> q qbar chi0_k and q qbar' chi+-_k through off-shell squarks."""
    out: Channels = []
    mg = cp.m_gluino
    for q in (1, 2, 3, 4, 5, 6):
        mq = cp.mass(q)
        fam = cp.families[q]
        ag, bg = gluino_sfermion(cp, q)
        a, b = neutralino_sfermion(cp, q)
        for k, pdg in enumerate(NEUTRALINOS):
            width = 2.0 * w.three_body_scalar_exchange(
                mg,
                mq,
                mq,
                cp.m_neutralino[k],
                fam.masses,
                (ag, bg),
                (a[:, k], b[:, k]),
                GLUINO_COLOUR,
            )
            out.append((width, (pdg, q, -q)))
    for up, down in DOUBLETS[:3]:
        for k, pdg in enumerate(CHARGINOS):
            width = _gluino_to_chargino(cp, up, down, k)
            out += [(width, (pdg, down, -up)), (width, (-pdg, -down, up))]
    return out


def _gluino_to_chargino(cp: Couplings, up: int, down: int, k: int) -> float:
    """Width of g~ -> d ubar chi+_k (u~ and d~* exchange)."""
    mg, mu_, md = cp.m_gluino, cp.mass(up), cp.mass(down)
    mc = cp.m_chargino[k]
    ag, bg = gluino_sfermion(cp, up)
    lu, ku = chargino_sfermion(cp, up)
    width = w.three_body_scalar_exchange(
        mg,
        mu_,
        md,
        mc,
        cp.families[up].masses,
        (ag, bg),
        (lu[:, k], ku[:, k]),
        GLUINO_COLOUR,
    )
    ag, bg = gluino_sfermion(cp, down)
    ld, kd = chargino_sfermion(cp, down)
    width += w.three_body_scalar_exchange(
        mg,
        md,
        mu_,
        mc,
        cp.families[down].masses,
        (ag, bg),
        (ld[:, k], kd[:, k]),
        GLUINO_COLOUR,
    )
    return width


def _z_couplings(cp: Couplings, f: int) -> tuple[float, float]:
    """Left and right Z couplings of fermion f."""
    t3, e, _ = FERMION_QUANTUM_NUMBERS[f]
    gz = cp.g / np.sqrt(1.0 - cp.sw2)
    return gz * (t3 - e * cp.sw2), -gz * e * cp.sw2


def neutralino_three_body(cp: Couplings, k: int) -> Channels:
    """chi0_k -> chi0_j f fbar and chi+-_j f f' (lighter j)."""
    m = cp.m_neutralino[k]
    zl, zr = neutralino_z(cp)
    out: Channels = []
    for j in range(k):
        mj = cp.m_neutralino[j]
        for f in ALL_FERMIONS:
            mf, colour = cp.mass(f), FERMION_QUANTUM_NUMBERS[f][2]
            cl, cr = _z_couplings(cp, f)
            width = w.fermion_to_fermion_vector_offshell(
                m, mj, zl[k, j], zr[k, j], cp.m_z, WIDTH_Z_GEV, (mf, mf, cl, cr, colour)
            )
            width += 2.0 * _sfermion_exchange_neutral(cp, f, k, j)
            if f in HIGGS_FERMIONS:
                width += _higgs_exchange_neutral(cp, f, k, j)
            out.append((width, (NEUTRALINOS[j], f, -f)))
    wl, wr = neutralino_w(cp)
    for j, pdg in enumerate(CHARGINOS):
        if abs(cp.m_chargino[j]) >= abs(m):
            continue
        for up, down in DOUBLETS:
            width = _neutralino_to_chargino_ff(cp, k, j, up, down, (wl[k, j], wr[k, j]))
            out += [(width, (pdg, down, -up)), (width, (-pdg, -down, up))]
    return out


def _higgs_exchange_neutral(cp: Couplings, f: int, k: int, j: int) -> float:
    """chi0_k -> chi0_j f fbar through off-shell h, H and A (no interference).

    A scalar propagator carries no spin, so ``dGamma/dq^2 = Gamma(chi0_k -> chi0_j
    phi(q)) sqrt(q^2) Gamma(phi(q) -> f fbar) / (pi |q^2 - m_phi^2 + i m Gamma|^2)``
    is exact for each Higgs boson.
    """
    m, mj, mf = cp.m_neutralino[k], cp.m_neutralino[j], cp.mass(f)
    colour = FERMION_QUANTUM_NUMBERS[f][2]
    lo, hi = (2 * mf) ** 2, (abs(m) - abs(mj)) ** 2
    if hi <= lo:
        return 0.0
    total = 0.0
    for pdg in NEUTRAL_HIGGS:
        m_phi = cp.mass(pdg)
        width_phi = WIDTH_H_GEV if pdg == 25 else HEAVY_HIGGS_WIDTH_FRACTION * m_phi
        C = neutralino_higgs(cp)[pdg][k, j]
        sign = -1.0 if pdg == 36 else 1.0
        a, b = higgs_fermion_couplings(cp, pdg, f)
        q2, wq = w._nodes_mapped(lo, hi, m_phi, width_phi)
        q = np.sqrt(q2)
        lam = np.clip(
            (m * m - (abs(mj) + q) ** 2) * (m * m - (abs(mj) - q) ** 2), 0, None
        )
        amp = C * C * ((1 + sign**2) * (m * m + mj * mj - q2) + 4 * sign * m * mj)
        produce = (
            np.sqrt(lam) / (2 * abs(m)) * np.clip(amp, 0, None) / (16 * np.pi * m * m)
        )
        amp = (a * a + b * b) * (q2 - 2 * mf * mf) - 4 * a * b * mf * mf
        decay = (
            colour
            * w._momentum_array(q, mf, mf)
            * np.clip(amp, 0, None)
            / (8 * np.pi * q2)
        )
        shape = q / (np.pi * ((q2 - m_phi**2) ** 2 + (m_phi * width_phi) ** 2))
        total += float(np.sum(wq * produce * decay * shape))
    return total


def _sfermion_exchange_neutral(cp: Couplings, f: int, k: int, j: int) -> float:
    """One sfermion-exchange diagram of chi0_k -> chi0_j f fbar."""
    m, mj, mf = cp.m_neutralino[k], cp.m_neutralino[j], cp.mass(f)
    if not _offshell(cp, (f,), mf, m):
        return 0.0
    a, b = neutralino_sfermion(cp, f)
    return w.three_body_scalar_exchange(
        m,
        mf,
        mf,
        mj,
        cp.families[f].masses,
        (a[:, k], b[:, k]),
        (a[:, j], b[:, j]),
        FERMION_QUANTUM_NUMBERS[f][2],
    )


def _neutralino_to_chargino_ff(
    cp: Couplings, k: int, j: int, up: int, down: int, wc: tuple[float, float]
) -> float:
    """Width of chi0_k -> chi+_j d ubar (W*, u~ and d~* exchange)."""
    m, mc = cp.m_neutralino[k], cp.m_chargino[j]
    mu_, md = cp.mass(up), cp.mass(down)
    colour = FERMION_QUANTUM_NUMBERS[up][2]
    if colour == 3 and abs(m) - abs(mc) < PION_REGIME_GEV:
        return 0.0
    width = w.fermion_to_fermion_vector_offshell(
        m, mc, wc[0], wc[1], cp.m_w, WIDTH_W_GEV, (md, mu_, cp.g / SQRT2, 0.0, colour)
    )
    for sf, m1, m2 in ((up, mu_, md), (down, md, mu_)):
        if not _offshell(cp, (sf,), m1, m):
            continue
        a, b = neutralino_sfermion(cp, sf)
        lc, kc = chargino_sfermion(cp, sf)
        width += w.three_body_scalar_exchange(
            m,
            m1,
            m2,
            mc,
            cp.families[sf].masses,
            (a[:, k], b[:, k]),
            (lc[:, j], kc[:, j]),
            colour,
        )
    return width


def chargino_three_body(cp: Couplings, k: int) -> Channels:
    """chi+_k -> chi0_j f' fbar (and chi+_2 -> chi+_1 f fbar through Z*)."""
    m = cp.m_chargino[k]
    wl, wr = neutralino_w(cp)
    out: Channels = []
    for j, pdg in enumerate(NEUTRALINOS):
        mn = cp.m_neutralino[j]
        if m - abs(mn) < PION_REGIME_GEV and j == 0:
            out.append((_chargino_to_pion(cp, k, j), (pdg, 211)))
        if abs(mn) >= m:
            continue
        for up, down in DOUBLETS:
            width = _chargino_to_neutralino_ff(cp, k, j, up, down, (wl[j, k], wr[j, k]))
            out.append((width, (pdg, -down, up)))
    if k == 1:
        zl, zr = chargino_z(cp)
        for f in ALL_FERMIONS:
            mf, colour = cp.mass(f), FERMION_QUANTUM_NUMBERS[f][2]
            cl, cr = _z_couplings(cp, f)
            width = w.fermion_to_fermion_vector_offshell(
                m,
                cp.m_chargino[0],
                zl[0, 1],
                zr[0, 1],
                cp.m_z,
                WIDTH_Z_GEV,
                (mf, mf, cl, cr, colour),
            )
            out.append((width, (CHARGINOS[0], f, -f)))
    return out


def _chargino_to_neutralino_ff(
    cp: Couplings, k: int, j: int, up: int, down: int, wc: tuple[float, float]
) -> float:
    """Width of chi+_k -> chi0_j u dbar (W*, u~ and d~* exchange)."""
    m, mn = cp.m_chargino[k], cp.m_neutralino[j]
    mu_, md = cp.mass(up), cp.mass(down)
    colour = FERMION_QUANTUM_NUMBERS[up][2]
    if colour == 3 and m - abs(mn) < PION_REGIME_GEV:
        return 0.0
    width = w.fermion_to_fermion_vector_offshell(
        m, mn, wc[0], wc[1], cp.m_w, WIDTH_W_GEV, (mu_, md, cp.g / SQRT2, 0.0, colour)
    )
    for sf, m1, m2 in ((up, md, mu_), (down, mu_, md)):
        if not _offshell(cp, (sf,), m1, m):
            continue
        lc, kc = chargino_sfermion(cp, sf)
        a, b = neutralino_sfermion(cp, sf)
        width += w.three_body_scalar_exchange(
            m,
            m1,
            m2,
            mn,
            cp.families[sf].masses,
            (lc[:, k], kc[:, k]),
            (a[:, j], b[:, j]),
            colour,
        )
    return width


def _chargino_to_pion(cp: Couplings, k: int, j: int) -> float:
    """chi+_k -> chi0_j pi+ for a splitting of a few hundred MeV."""
    dm = max(cp.m_chargino[k] - abs(cp.m_neutralino[j]), RADIATIVE_SPLITTING_GEV)
    if dm <= M_PION_GEV:
        return 0.0
    wl, wr = neutralino_w(cp)
    o2 = (wl[j, k] ** 2 + wr[j, k] ** 2) / cp.g**2
    phase = np.sqrt(1.0 - (M_PION_GEV / dm) ** 2)
    return G_FERMI**2 / np.pi * V_UD**2 * F_PION_GEV**2 * dm**3 * phase * o2


def stop_many_body(cp: Couplings, i: int) -> Channels:
    """t~_i -> b W chi0_k, b f f' chi0_k and c chi0_k when two-body channels close."""
    out: Channels = []
    a, b = neutralino_sfermion(cp, 6)
    m_st = cp.families[6].masses[i]
    mb, mw = cp.mass(5), cp.m_w
    for k, pdg in enumerate(NEUTRALINOS):
        mn = cp.m_neutralino[k]
        if abs(mn) >= m_st:
            continue
        coup = (a[i, k], b[i, k])
        if m_st > mb + mw + abs(mn):
            out.append((_stop_bw_chi(cp, m_st, mn, coup), (pdg, 24, 5)))
        else:
            out += _stop_four_body(cp, m_st, mn, coup, pdg)
        out.append((_stop_charm_chi(cp, i, k), (pdg, 4)))
    return out


def _top_offshell_weight(
    cp: Couplings, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in q_t^2 and Breit-Wigner weights of an off-shell top."""
    mt = cp.mass(6)
    q2, wt = w._nodes_mapped(lo, hi, mt, WIDTH_TOP_GEV)
    bw = np.sqrt(q2) / (np.pi * ((q2 - mt * mt) ** 2 + (mt * WIDTH_TOP_GEV) ** 2))
    return q2, wt * bw


def _stop_bw_chi(
    cp: Couplings,
    m_st: float,
    mn: float,
    coup: tuple[float, float],
    m_w: float | None = None,
) -> float:
    """t~ -> b W chi0 through an off-shell top, full spin-summed matrix element.

    With ``A = P_L (a q/ + b m_t)`` the sum over spins and W polarisations is
    ``2 p_b.K + 4 (p_b.k)(K.k) / m_W^2`` with ``K = (2 a^2 q.p_chi - 2 a b m_t
    m_chi) q + (b^2 m_t^2 - a^2 q^2) p_chi``, times ``g^2 / 2`` over the top
    propagator squared (the b mass drops out of the trace, not of the kinematics).
    """
    mw = cp.m_w if m_w is None else m_w
    mb, mt = cp.mass(5), cp.mass(6)
    q2, wq = w._nodes_mapped((mb + mw) ** 2, (m_st - abs(mn)) ** 2, mt, WIDTH_TOP_GEV)
    if q2.size == 0 or (m_st - abs(mn)) <= mb + mw:
        return 0.0
    s_lo, s_hi = _dalitz_limits(m_st, q2, mb, mw, abs(mn))
    x, wx = w._NODES, w._WEIGHTS
    s2 = 0.5 * (s_hi - s_lo)[:, None] * (x[None, :] + 1.0) + s_lo[:, None]
    ws = 0.5 * (s_hi - s_lo)[:, None] * wx[None, :]
    q2m = q2[:, None]
    pb_k = 0.5 * (q2m - mb * mb - mw * mw)
    q_pc = 0.5 * (m_st * m_st - q2m - mn * mn)
    k_pc = 0.5 * (s2 - mw * mw - mn * mn)
    pb_pc = q_pc - k_pc
    a, b = coup
    c1 = 2 * a * a * q_pc - 2 * a * b * mt * mn
    c2 = b * b * mt * mt - a * a * q2m
    pb_dot_k_vec = c1 * (mb * mb + pb_k) + c2 * pb_pc
    k_dot_k_vec = c1 * (mw * mw + pb_k) + c2 * k_pc
    amp2 = 2 * pb_dot_k_vec + 4 * pb_k * k_dot_k_vec / (mw * mw)
    prop = (q2m - mt * mt) ** 2 + (mt * WIDTH_TOP_GEV) ** 2
    integrand = 0.5 * cp.g**2 * np.clip(amp2, 0.0, None) / prop
    total = np.sum(wq[:, None] * ws * integrand)
    return float(total / ((2 * np.pi) ** 3 * 32 * m_st**3))


def _dalitz_limits(
    m0: float, s12: np.ndarray, m1: float, m2: float, m3: float
) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``s23`` at fixed ``s12`` for ``m0 -> 1 2 3`` (GeV^2)."""
    r = np.sqrt(s12)
    e2 = (s12 - m1 * m1 + m2 * m2) / (2 * r)
    e3 = (m0 * m0 - s12 - m3 * m3) / (2 * r)
    p2 = np.sqrt(np.clip(e2 * e2 - m2 * m2, 0, None))
    p3 = np.sqrt(np.clip(e3 * e3 - m3 * m3, 0, None))
    return (e2 + e3) ** 2 - (p2 + p3) ** 2, (e2 + e3) ** 2 - (p2 - p3) ** 2


def _stop_four_body(
    cp: Couplings, m_st: float, mn: float, coup: tuple[float, float], pdg: int
) -> Channels:
    """t~ -> b W* chi0, W* -> f f' (off-shell W folded over the three-body width)."""
    mb = cp.mass(5)
    hi = (m_st - abs(mn) - mb) ** 2
    if hi <= 0.0:
        return []
    qw2, ww = w._nodes_mapped(1e-2, hi, cp.m_w, WIDTH_W_GEV)
    three = np.array([_stop_bw_chi(cp, m_st, mn, coup, m_w=np.sqrt(x)) for x in qw2])
    modes = ((12, 11), (14, 13), (16, 15), (2, 1), (4, 3))
    out: Channels = []
    for up, down in modes:
        colour = FERMION_QUANTUM_NUMBERS[up][2]
        gw = w.vector_to_fermions(
            qw2, cp.mass(up), cp.mass(down), cp.g / SQRT2, 0.0, colour
        )
        shape = (
            np.sqrt(qw2)
            * gw
            / (np.pi * ((qw2 - cp.m_w**2) ** 2 + (cp.m_w * WIDTH_W_GEV) ** 2))
        )
        out.append((float(np.sum(ww * three * shape)), (pdg, 5, -down, up)))
    return out


def _stop_charm_chi(cp: Couplings, i: int, k: int) -> float:
    """Flavour-changing t~_i -> c chi0_k (Hikasa-Kobayashi leading logarithm)."""
    sb_fam = cp.families[5]
    st_fam = cp.families[6]
    m_lr_b = float(np.sum(sb_fam.masses**2 * sb_fam.R[:, 0] * sb_fam.R[:, 1]))
    m_ll_b = float(np.sum(sb_fam.masses**2 * sb_fam.R[:, 0] ** 2))
    m_rr_b = float(np.sum(sb_fam.masses**2 * sb_fam.R[:, 1] ** 2))
    y_b = cp.yukawa[5]
    v_d = cp.v * cp.cos_beta
    a_b = (SQRT2 * m_lr_b / y_b + cp.mu * cp.v * cp.sin_beta) / v_d
    m_hd2 = cp.mass(36) ** 2 * cp.sin_beta**2 - cp.mu**2
    log = np.log(INPUT_SCALE_GEV**2 / cp.m_w**2) / (16 * np.pi**2)
    pref = log * V_TB_V_CB * y_b**2
    delta_l = -pref * (m_ll_b + m_rr_b + m_hd2 + a_b**2)
    delta_r = pref * cp.mass(6) * a_b
    m_cl = cp.families[4].masses[0]
    m_st = st_fam.masses[i]
    eps = (delta_l * st_fam.R[i, 0] + delta_r * st_fam.R[i, 1]) / (m_st**2 - m_cl**2)
    a, b = neutralino_sfermion(cp, 4)
    return eps**2 * w.scalar_to_fermions(
        m_st, cp.mass(4), cp.m_neutralino[k], a[0, k], b[0, k]
    )
