"""ATLAS stop search with one isolated lepton, jets and E_T^miss at 8 TeV, 20.3 fb⁻¹.

ATLAS, JHEP 11 (2014) 118, arXiv:1407.0583. Cuts follow the publication's
signal-region tables; the shape-fit SRs (tN_diag, bCb_med2, bCd_bulk, threeBody)
are split into the four bins a-d the catalogue lists.

Objects: signal jets pT > 25 GeV, |η| < 2.5 (soft-lepton SRs count jets above 20
GeV for H_T,2); hard-lepton SRs take exactly one lepton above 10 GeV (e |η| <
2.47, μ |η| < 2.4) and it above 25 GeV; soft-lepton SRs exactly one lepton above
7 (e) / 6 (μ) GeV and it below 25 GeV. m_T uses the lepton and E_T^miss; H_T in
E_T^miss/√H_T is the scalar sum of the four leading jets; m_eff = lepton pT +
E_T^miss + the four leading jets. H_T,sig^miss = (|H_T^miss| − 100 GeV)/σ with
H_T^miss minus the vector sum of lepton and jets and σ the quadrature sum of the
jet pT resolutions of :mod:`simulators.detector`. am_T2 and m_T2^τ come from
:mod:`simulators.mt2`: am_T2 takes the two leading b-tagged jets (the leading
non-tagged jet stands in for a missing second one), m_T2^τ the lepton and the
leading non-b-tagged jet with massless invisibles.

Hadronic top (tN_diag, tN_med, tN_high): one of the two b candidates and a pair of
the other jets, chosen by the smallest
χ² = ((m_jj − m_W)/10 GeV)² + ((m_jjj − m_jj − (m_t − m_W))/15 GeV)²,
with m_W = 80.4 and m_t = 172.5 GeV; its m_jjj must lie in the published window.
tNbC_mix's m_jjj: the closest-in-ΔR jet pair with mass above 60 GeV plus the jet
closest to that pair.

What is left out or approximated, in plain words:

* The isolated-track veto (bCb_med2, bCd_bulk, bCd_high1/2) is not applied: the
  detector provides no tracks.
* The topness requirement (bCb_med2, tNbC_mix) is not applied.
* The τ veto rejects events with a τ-tagged jet of charge opposite to the
  lepton's, at the detector's single (medium) τ working point; the publication
  used loose and tight working points by SR.
* b-tagging uses the detector's single 77 % working point; the publication used
  the MV1 tagger at 70 % (and 80 % where two tags are needed, 60 % for the soft
  SRs) and chose the am_T2 jets by the b-tag weight, which does not exist here.
* Triggers (single lepton, or E_T^miss for the soft-lepton SRs) are taken as
  fully efficient above the offline cuts; data-quality losses are not modelled.
* The hadronic-top χ² is a simplified one with fixed resolutions; the published
  one used per-jet resolutions and b-tag weights.
* tN_boost needs a trimmed anti-kt R = 1.0 jet; here the R = 0.4 jets are
  reclustered with anti-kt R = 1.0. Its thresholds (jets 75, 65, 40, 25 GeV,
  large-R jet pT > 270 GeV and mass > 140 GeV, E_T^miss > 315 GeV, m_T > 175
  GeV, am_T2 > 145 GeV, m_T2^τ > 120 GeV) are recalled from the publication's
  table and could not be checked against its text here; treat this SR as the
  least reliable one.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    multiplicity,
    nth,
    sorted_by_pt,
    transverse_mass,
)
from simulators.detector import (
    JET_RESOLUTION_C,
    JET_RESOLUTION_N_GEV,
    JET_RESOLUTION_S,
    PhysicsObjects,
)
from simulators.jets import delta_phi
from simulators.mt2 import amt2, mt2

SIGNAL_REGIONS = (
    "bCa_low",
    "bCa_med",
    "bCb_high",
    "bCb_med1",
    "bCb_med2_a",
    "bCb_med2_b",
    "bCb_med2_c",
    "bCb_med2_d",
    "bCc_diag",
    "bCd_bulk_a",
    "bCd_bulk_b",
    "bCd_bulk_c",
    "bCd_bulk_d",
    "bCd_high1",
    "bCd_high2",
    "tN_boost",
    "tN_diag_a",
    "tN_diag_b",
    "tN_diag_c",
    "tN_diag_d",
    "tN_high",
    "tN_med",
    "tNbC_mix",
    "threeBody_a",
    "threeBody_b",
    "threeBody_c",
    "threeBody_d",
)

#: Masses (GeV) of the hadronic-top χ²: W (PDG 2014) and top (tt̄ MC value).
W_MASS_GEV = 80.4
TOP_MASS_GEV = 172.5
#: Widths (GeV) of the χ² terms: m_jj and m_jjj − m_jj (typical resolutions).
SIGMA_W_GEV = 10.0
SIGMA_TOP_W_GEV = 15.0
#: Offset (GeV) of the H_T^miss significance (publication's definition).
HT_MISS_OFFSET_GEV = 100.0
#: Radius of the reclustered large-R jets of tN_boost.
LARGE_R = 1.0

_FOUR = ("px", "py", "pz", "e")


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    n = len(objects)
    met, met_phi = objects.met, objects.met_phi
    all_jets = objects.jets[np.abs(objects.jets.eta) < 2.5]
    jets = all_jets[all_jets.pt > 25.0]
    n_jets = multiplicity(jets)
    pt = [nth(jets.pt, k) for k in range(4)]
    n_b = multiplicity(jets[jets.btag])

    lepton, one_hard, one_soft = _lepton(objects)
    lep_pt = _value(lepton, "pt")
    lep_eta = _value(lepton, "eta")
    lep_phi = _value(lepton, "phi")
    lep_four = tuple(_value(lepton, name) for name in _FOUR)
    mt = transverse_mass(lep_pt, lep_phi, met, met_phi)

    ht4 = sum(pt)
    met_sig = met / np.sqrt(np.maximum(ht4, 1.0))
    meff = lep_pt + met + ht4
    jet_phi = [nth(jets.phi, k, np.nan) for k in range(2)]
    jet_eta = [nth(jets.eta, k, np.nan) for k in range(2)]
    dphi = [np.nan_to_num(delta_phi(p, met_phi), nan=0.0) for p in jet_phi]
    dr_lep = [
        _delta_r(lep_eta, lep_phi, e, p) for e, p in zip(jet_eta, jet_phi, strict=True)
    ]
    dphi_lep = delta_phi(lep_phi, met_phi)

    tagged, untagged = jets[jets.btag], jets[~jets.btag]
    first_b = _first(tagged, untagged, 0)
    second_b = _second_b(tagged, untagged)
    b_pt = [nth(tagged.pt, k) for k in range(2)]
    tau_ok = _no_opposite_tau(all_jets, _value(lepton, "charge"))

    hard4 = one_hard & (n_jets >= 4)
    # Derived quantities with costly minimisations, only where a selection needs them.
    need_amt2 = one_hard & (n_jets >= 4) & (n_b >= 1) & (met > 125.0) & (mt > 90.0)
    amt2_hard = _on(
        need_amt2,
        n,
        lambda m: amt2(
            _pick(lep_four, m),
            _pick(first_b, m),
            _pick(second_b, m),
            objects.met_x[m],
            objects.met_y[m],
        ),
    )
    lead_untagged = tuple(nth(untagged[name], 0) for name in _FOUR)
    need_tau = need_amt2 & (met > 300.0) & (mt > 175.0)
    mt2_tau = _on(
        need_tau,
        n,
        lambda m: mt2(
            lead_untagged[0][m],
            lead_untagged[1][m],
            0.0,
            lep_four[0][m],
            lep_four[1][m],
            0.0,
            objects.met_x[m],
            objects.met_y[m],
        ),
    )
    need_top = need_amt2 & (mt > 120.0)
    m_top = _on(need_top, n, lambda m: _hadronic_top_mass(jets[m]), fill=0.0)
    ht_sig = _ht_miss_significance(jets, lep_four[:2])

    def jets_above(*thresholds: float) -> np.ndarray:
        mask = n_jets >= len(thresholds)
        for k, cut in enumerate(thresholds):
            mask &= pt[k] > cut
        return mask

    both_dphi = lambda cut: (dphi[0] > cut) & (dphi[1] > cut)  # noqa: E731
    masks: dict[str, np.ndarray] = {}

    # tN_diag: shape fit in E_T^miss (125-150, >150) x m_T (120-140, >140).
    diag = (
        hard4
        & jets_above(60.0, 60.0, 40.0, 25.0)
        & (n_b >= 1)
        & both_dphi(0.8)
        & (met > 125.0)
        & (met_sig > 5.0)
        & (mt > 120.0)
        & (m_top > 130.0)
        & (m_top < 205.0)
        & tau_ok
    )
    low_met, low_mt = met < 150.0, mt < 140.0
    masks["tN_diag_a"] = diag & low_met & low_mt
    masks["tN_diag_b"] = diag & low_met & ~low_mt
    masks["tN_diag_c"] = diag & ~low_met & low_mt
    masks["tN_diag_d"] = diag & ~low_met & ~low_mt

    masks["tN_med"] = (
        hard4
        & jets_above(80.0, 60.0, 40.0, 25.0)
        & (n_b >= 1)
        & (dphi[1] > 0.8)
        & (met > 200.0)
        & (ht_sig > 12.5)
        & (mt > 140.0)
        & (m_top > 130.0)
        & (m_top < 195.0)
        & (amt2_hard > 170.0)
    )
    dr_lep_b = _delta_r(
        lep_eta, lep_phi, nth(tagged.eta, 0, np.nan), nth(tagged.phi, 0, np.nan)
    )
    masks["tN_high"] = (
        hard4
        & jets_above(100.0, 80.0, 40.0, 25.0)
        & (n_b >= 1)
        & (dr_lep_b < 3.0)
        & (met > 320.0)
        & (ht_sig > 12.5)
        & (mt > 200.0)
        & (m_top > 130.0)
        & (m_top < 250.0)
        & (amt2_hard > 170.0)
        & (mt2_tau > 120.0)
    )
    boost = (
        hard4
        & jets_above(75.0, 65.0, 40.0, 25.0)
        & (n_b >= 1)
        & (met > 315.0)
        & (mt > 175.0)
        & (amt2_hard > 145.0)
        & (mt2_tau > 120.0)
    )
    large_pt, large_mass = _on_pair(boost, n, lambda m: _large_r_jet(jets[m]))
    masks["tN_boost"] = boost & (large_pt > 270.0) & (large_mass > 140.0)

    masks["bCc_diag"] = (
        one_hard
        & jets_above(80.0, 40.0, 30.0)
        & (n_b == 0)
        & (np.abs(lep_eta) < 1.2)
        & both_dphi(2.0)
        & (dr_lep[0] > 0.8)
        & (dr_lep[0] < 2.4)
        & (met > 140.0)
        & (met_sig > 5.0)
        & (mt > 120.0)
    )

    bulk = (
        hard4
        & jets_above(80.0, 60.0, 40.0, 25.0)
        & (n_b >= 1)
        & both_dphi(0.8)
        & (met > 150.0)
        & (met_sig > 7.0)
        & (mt > 90.0)
        & (amt2_hard > 175.0)
        & tau_ok
    )
    masks.update(_amt2_mt_bins("bCd_bulk", bulk, amt2_hard, mt))

    three = (
        hard4
        & jets_above(80.0, 25.0, 25.0, 25.0)
        & (n_b >= 1)
        & both_dphi(0.2)
        & (dphi_lep > 1.25)
        & (dr_lep[0] > 1.25)
        & (dr_lep[1] > 2.0)
        & (met > 150.0)
        & (met_sig > 5.0)
        & (mt > 90.0)
        & (amt2_hard > 80.0)
        & (amt2_hard < 100.0)
        & tau_ok
    )
    low_amt2, high_mt = amt2_hard < 90.0, mt > 120.0
    masks["threeBody_a"] = three & low_amt2 & ~high_mt
    masks["threeBody_b"] = three & low_amt2 & high_mt
    masks["threeBody_c"] = three & ~low_amt2 & ~high_mt
    masks["threeBody_d"] = three & ~low_amt2 & high_mt

    mix = (
        hard4
        & jets_above(80.0, 70.0, 50.0, 25.0)
        & (n_b >= 1)
        & (b_pt[0] > 60.0)
        & both_dphi(0.6)
        & (dphi_lep > 0.6)
        & (dr_lep[0] < 2.75)
        & (dr_lep_b < 3.0)
        & (met > 270.0)
        & (met_sig > 9.0)
        & (mt > 130.0)
        & (amt2_hard > 190.0)
        & tau_ok
    )
    m_jjj = _on(mix, n, lambda m: _closest_trijet_mass(jets[m]), fill=np.inf)
    masks["tNbC_mix"] = mix & (m_jjj < 360.0)

    two_b = hard4 & (n_b >= 2) & both_dphi(0.8) & (mt > 90.0) & tau_ok
    m_bb = _pair_mass(first_b, second_b)
    med2 = (
        two_b
        & jets_above(80.0, 60.0, 40.0, 25.0)
        & (b_pt[0] > 140.0)
        & (b_pt[1] > 75.0)
        & (met > 170.0)
        & (met_sig > 6.0)
        & (m_bb > 150.0)
        & (amt2_hard > 175.0)
    )
    masks.update(_amt2_mt_bins("bCb_med2", med2, amt2_hard, mt))
    masks["bCd_high1"] = (
        two_b
        & jets_above(80.0, 60.0, 40.0, 25.0)
        & (b_pt[0] > 75.0)
        & (b_pt[1] > 75.0)
        & (met > 150.0)
        & (met_sig > 9.0)
        & (mt > 120.0)
        & (meff > 600.0)
        & (amt2_hard > 200.0)
    )
    masks["bCd_high2"] = (
        two_b
        & jets_above(80.0, 80.0, 40.0, 25.0)
        & (b_pt[0] > 170.0)
        & (b_pt[1] > 80.0)
        & (met > 160.0)
        & (met_sig > 8.0)
        & (mt > 120.0)
        & (amt2_hard > 250.0)
    )

    masks.update(_soft_regions(objects, all_jets, jets, one_soft, lep_four, mt, meff))
    return {sr: masks[sr] for sr in SIGNAL_REGIONS}


def _soft_regions(objects, all_jets, jets, one_soft, lep_four, mt, meff):
    """bCa and bCb: one soft lepton, E_T^miss-triggered."""
    n = len(objects)
    met, met_phi = objects.met, objects.met_phi
    n_jets = multiplicity(jets)
    lead_pt = nth(jets.pt, 0)
    lead_tagged = nth(ak.values_astype(jets.btag, np.float64), 0) > 0.5
    n_b = multiplicity(jets[jets.btag])
    ratio = met / np.maximum(meff, 1.0)
    bca = one_soft & (lead_pt > 180.0) & (n_b >= 1) & ~lead_tagged
    masks = {
        "bCa_low": bca & (n_jets >= 2) & (met > 370.0) & (mt > 90.0) & (ratio > 0.35),
        "bCa_med": bca & (n_jets >= 3) & (met > 300.0) & (mt > 100.0) & (ratio > 0.3),
    }

    soft_jets = all_jets[all_jets.pt > 20.0]
    first = tuple(nth(soft_jets[name], 0) for name in _FOUR)
    second = tuple(nth(soft_jets[name], 1) for name in _FOUR)
    tags = ak.values_astype(soft_jets.btag, np.float64)
    both_tagged = (nth(tags, 0) > 0.5) & (nth(tags, 1) > 0.5)
    dphi = [delta_phi(nth(soft_jets.phi, k), met_phi) for k in range(2)]
    ht2 = nth(soft_jets.pt, 2) + nth(soft_jets.pt, 3)
    bcb = (
        one_soft
        & (multiplicity(soft_jets) >= 2)
        & (_pt(first) > 60.0)
        & (_pt(second) > 60.0)
        & both_tagged
        & (dphi[0] > 0.4)
        & (dphi[1] > 0.4)
        & (met > 150.0)
        & (_pair_mass(first, second) > 150.0)
    )
    value = _on(
        bcb,
        n,
        lambda m: amt2(
            _pick(lep_four, m),
            _pick(first, m),
            _pick(second, m),
            objects.met_x[m],
            objects.met_y[m],
        ),
    )
    masks["bCb_med1"] = bcb & (ht2 < 50.0) & (value > 170.0)
    masks["bCb_high"] = bcb & (met > 250.0) & (value > 200.0)
    return masks


def _pt(four: tuple[np.ndarray, ...]) -> np.ndarray:
    """Transverse momentum (GeV) of per-event (px, py, pz, e) arrays."""
    return np.hypot(four[0], four[1])


def _amt2_mt_bins(prefix, mask, amt2_value, mt) -> dict[str, np.ndarray]:
    """Bins a-d: am_T2 175-250 / > 250 GeV crossed with m_T 90-120 / > 120 GeV."""
    low_amt2, low_mt = amt2_value < 250.0, mt < 120.0
    return {
        f"{prefix}_a": mask & low_amt2 & low_mt,
        f"{prefix}_b": mask & low_amt2 & ~low_mt,
        f"{prefix}_c": mask & ~low_amt2 & low_mt,
        f"{prefix}_d": mask & ~low_amt2 & ~low_mt,
    }


def _lepton(objects: PhysicsObjects):
    """The event's lepton and the exactly-one-hard / exactly-one-soft masks."""
    electrons = objects.electrons
    muons = objects.muons
    electrons = electrons[(electrons.pt > 7.0) & (np.abs(electrons.eta) < 2.47)]
    muons = muons[(muons.pt > 6.0) & (np.abs(muons.eta) < 2.4)]
    fields = ("pt", "eta", "phi", *_FOUR, "charge")
    merged = sorted_by_pt(
        ak.concatenate(
            [
                ak.zip({name: electrons[name] for name in fields}),
                ak.zip({name: muons[name] for name in fields}),
            ],
            axis=1,
        )
    )
    n_soft = multiplicity(merged)
    n_ten = multiplicity(merged[merged.pt > 10.0])
    lead_pt = nth(merged.pt, 0)
    one_hard = (n_ten == 1) & (lead_pt > 25.0)
    one_soft = (n_soft == 1) & (lead_pt < 25.0)
    return merged, one_hard, one_soft


def _value(lepton: ak.Array, name: str) -> np.ndarray:
    return nth(lepton[name], 0)


def _delta_r(eta_a, phi_a, eta_b, phi_b) -> np.ndarray:
    """ΔR, +inf where an object is absent (NaN input)."""
    value = np.hypot(eta_a - eta_b, delta_phi(phi_a, phi_b))
    return np.where(np.isnan(value), np.inf, value)


def _first(primary: ak.Array, fallback: ak.Array, index: int):
    """(px, py, pz, e) of ``primary[index]``, else of ``fallback[0]``."""
    has = multiplicity(primary) > index
    return tuple(
        np.where(has, nth(primary[name], index), nth(fallback[name], 0))
        for name in _FOUR
    )


def _second_b(tagged: ak.Array, untagged: ak.Array):
    """Second b candidate: the second tagged jet, else the leading (or next) other."""
    n_tagged = multiplicity(tagged)
    fallback_index = np.where(n_tagged == 0, 1, 0)
    result = []
    for name in _FOUR:
        other = np.where(
            fallback_index == 1, nth(untagged[name], 1), nth(untagged[name], 0)
        )
        result.append(np.where(n_tagged >= 2, nth(tagged[name], 1), other))
    return tuple(result)


def _pick(four, mask):
    return tuple(x[mask] for x in four)


def _pair_mass(first, second) -> np.ndarray:
    e, px, py, pz = (
        first[3] + second[3],
        first[0] + second[0],
        first[1] + second[1],
        first[2] + second[2],
    )
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def _on(mask: np.ndarray, n: int, compute, fill: float = 0.0) -> np.ndarray:
    """``compute(mask)`` on the selected events, ``fill`` elsewhere."""
    out = np.full(n, fill)
    if mask.any():
        out[mask] = compute(mask)
    return out


def _on_pair(mask: np.ndarray, n: int, compute):
    first, second = np.zeros(n), np.zeros(n)
    if mask.any():
        first[mask], second[mask] = compute(mask)
    return first, second


def _no_opposite_tau(jets: ak.Array, lepton_charge: np.ndarray) -> np.ndarray:
    """True unless a τ-tagged jet has charge opposite to the lepton's."""
    opposite = jets.tautag & (jets.charge * lepton_charge < 0)
    return ~ak.to_numpy(ak.any(opposite, axis=1))


def _ht_miss_significance(jets: ak.Array, lepton_xy) -> np.ndarray:
    """(|H_T^miss| − 100 GeV) / σ, σ from the detector's jet resolution."""
    hx = -lepton_xy[0] - ak.to_numpy(ak.sum(jets.px, axis=1))
    hy = -lepton_xy[1] - ak.to_numpy(ak.sum(jets.py, axis=1))
    pt = jets.pt
    relative2 = (
        (JET_RESOLUTION_N_GEV / pt) ** 2
        + JET_RESOLUTION_S**2 / pt
        + JET_RESOLUTION_C**2
    )
    sigma = np.sqrt(ak.to_numpy(ak.sum(relative2 * pt**2, axis=1)))
    return (np.hypot(hx, hy) - HT_MISS_OFFSET_GEV) / np.maximum(sigma, 1e-6)


def _masses(e, px, py, pz):
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def _hadronic_top_mass(jets: ak.Array) -> np.ndarray:
    """m_jjj of the best χ² hadronic top (0 when no combination exists)."""
    tagged_first = ak.argsort(
        ak.values_astype(jets.btag, np.int64) * 1e6 + jets.pt, axis=1, ascending=False
    )
    ordered = jets[tagged_first]
    candidates = ordered[:, :2]
    others = ordered[:, 2:]
    pairs = ak.combinations(others, 2, fields=["a", "b"])
    w = {name: pairs.a[name] + pairs.b[name] for name in _FOUR}
    m_jj = _masses(w["e"], w["px"], w["py"], w["pz"])
    best_chi2, best_mass = [], []
    for k in range(2):
        b = {name: nth(candidates[name], k, np.nan) for name in _FOUR}
        top = {name: w[name] + b[name] for name in _FOUR}
        m_jjj = _masses(top["e"], top["px"], top["py"], top["pz"])
        chi2 = ((m_jj - W_MASS_GEV) / SIGMA_W_GEV) ** 2 + (
            (m_jjj - m_jj - (TOP_MASS_GEV - W_MASS_GEV)) / SIGMA_TOP_W_GEV
        ) ** 2
        chi2 = ak.where(np.isnan(chi2), np.inf, chi2)
        index = ak.argmin(chi2, axis=1, keepdims=True)
        best_chi2.append(ak.to_numpy(ak.fill_none(ak.firsts(chi2[index]), np.inf)))
        best_mass.append(ak.to_numpy(ak.fill_none(ak.firsts(m_jjj[index]), 0.0)))
    use_second = best_chi2[1] < best_chi2[0]
    mass = np.where(use_second, best_mass[1], best_mass[0])
    finite = np.isfinite(np.minimum(best_chi2[0], best_chi2[1]))
    return np.where(finite, np.nan_to_num(mass, nan=0.0), 0.0)


def _closest_trijet_mass(jets: ak.Array) -> np.ndarray:
    """tNbC_mix's m_jjj: closest pair with m > 60 GeV plus the jet closest to it."""
    index = ak.local_index(jets.pt)
    pairs = ak.argcombinations(jets, 2, fields=["i", "j"])
    a, b = jets[pairs.i], jets[pairs.j]
    w = {name: a[name] + b[name] for name in _FOUR}
    m_jj = _masses(w["e"], w["px"], w["py"], w["pz"])
    dr = np.hypot(a.eta - b.eta, delta_phi(a.phi, b.phi))
    dr = ak.where(m_jj > 60.0, dr, np.inf)
    best = ak.argmin(dr, axis=1, keepdims=True)
    found = ak.to_numpy(ak.fill_none(ak.firsts(dr[best]), np.inf)) < np.inf
    i = ak.fill_none(ak.firsts(pairs.i[best]), -1)
    j = ak.fill_none(ak.firsts(pairs.j[best]), -1)
    wx = {name: ak.fill_none(ak.firsts(w[name][best]), 0.0) for name in _FOUR}
    w_pt = np.hypot(wx["px"], wx["py"])
    w_eta = np.arcsinh(wx["pz"] / np.maximum(w_pt, 1e-9))
    w_phi = np.arctan2(wx["py"], wx["px"])
    third_dr = np.hypot(jets.eta - w_eta, delta_phi(jets.phi, w_phi))
    third_dr = ak.where((index != i) & (index != j), third_dr, np.inf)
    third = ak.argmin(third_dr, axis=1, keepdims=True)
    has_third = ak.to_numpy(ak.fill_none(ak.firsts(third_dr[third]), np.inf)) < np.inf
    trijet = {
        name: ak.to_numpy(ak.fill_none(ak.firsts(jets[name][third]), 0.0) + wx[name])
        for name in _FOUR
    }
    mass = _masses(trijet["e"], trijet["px"], trijet["py"], trijet["pz"])
    return np.where(found & has_third, mass, np.inf)


def _large_r_jet(jets: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """pT and mass (GeV) of the leading anti-kt R = 1.0 jet built from the jets."""
    from simulators.jets import cluster

    large = cluster(ak.zip({name: jets[name] for name in _FOUR}), radius=LARGE_R)
    return nth(large.pt, 0), nth(large.m, 0)


ANALYSIS = Analysis(
    name="atlas_1407_0583",
    energy_tev=8.0,
    luminosity_fb=20.3,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="ATLAS, JHEP 11 (2014) 118, arXiv:1407.0583",
)
