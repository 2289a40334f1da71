"""A parameterised ATLAS-like detector: from generated particles to physics objects.

Every number below carries its source. The detector works on whole batches of
events (awkward arrays), never particle by particle in Python.

Chain, per event:

1. Undecayed τ leptons (parton-level events) decay: e ν ν (17.8 %), μ ν ν (17.4 %),
   hadrons ν (64.8 %) (PDG 2016 branching ratios). The visible product carries a
   fraction z of the τ momentum (collinear approximation): for leptonic decays z
   follows the unpolarised spectrum f(z) = (5 − 9z² + 4z³)/3, for hadronic decays a
   flat spectrum (exact for τ → πν, an approximation for ρ and a₁).
2. Invisible particles (neutrinos, χ̃⁰₁, gravitino) and anything beyond |η| = 4.9
   (calorimeter acceptance) are not seen.
3. Electrons, muons and photons are identified with pT- and η-dependent
   efficiencies when isolated: the scalar pT sum of other visible particles within
   ΔR < 0.3 (0.2 for photons) is below 15 % (10 %) of their pT.
4. Everything else visible is clustered into anti-kt R = 0.4 jets (fastjet); jet
   pT is smeared with the ATLAS resolution; jets are labelled b, c, τ or light by
   ΔR < 0.3 to a b quark, c quark or hadronic τ of the event history and tagged
   with the efficiencies of the ATLAS 77 % b-tagging working point and of the
   ATLAS medium τ identification.
5. Missing transverse momentum is minus the vector sum of all visible particles,
   corrected for the jet mis-measurement, plus a Gaussian soft term.

An isolated electron, muon or photon that fails identification becomes a jet of
its own (its isolation leaves nothing else within ΔR = 0.3 to cluster with it).

Detector replicas: identification, jet smearing, b- and τ-tagging and the soft term
can be drawn ``replicas`` times per event on top of one τ decay and one clustering.
The objects then hold ``replicas × n`` events, replica-major (event ``i`` of replica
``k`` at row ``k·n + i``); a selection averaged over the replicas has the same
expectation and less of the detector's binomial and resolution noise.

Known shortcomings, stated plainly: no pile-up, no fake leptons from jets, no
charge mis-identification, no η dependence of the jet resolution, isolation uses
generator particles rather than tracks and calorimeter clusters, and the same
parameters serve 8 and 13 TeV (the 8 TeV analyses used somewhat different b-tagging
working points, e.g. 70 % with MV1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np

from simulators.jets import (
    cluster,
    delta_phi,
    delta_r_matrix,
    sorted_by_pt,
    with_kinematics,
)

logger = logging.getLogger(__name__)

#: Particles that leave no trace: neutrinos, χ̃⁰₁, sneutrinos, gravitino.
INVISIBLE_PDG = (12, 14, 16, 1000012, 1000014, 1000016, 1000022, 1000039)
#: Calorimeter coverage |η| (ATLAS, JINST 3 (2008) S08003).
CALORIMETER_ETA = 4.9

#: τ branching ratios (PDG 2016): e ν ν, μ ν ν; the rest is hadronic.
TAU_BR_ELECTRON = 0.1782
TAU_BR_MUON = 0.1739

#: Electron identification × reconstruction efficiency, medium likelihood, by pT
#: edges in GeV (ATLAS-CONF-2016-024, Fig. 9: about 0.80 at 10-25 GeV rising to
#: 0.88 above 40 GeV); acceptance |η| < 2.47 without the 1.37-1.52 crack.
ELECTRON_PT_EDGES = (7.0, 10.0, 25.0, 40.0)
ELECTRON_EFFICIENCY = (0.0, 0.70, 0.80, 0.85, 0.88)
ELECTRON_ETA = 2.47
#: Muon reconstruction and medium identification (ATLAS, EPJC 76 (2016) 292,
#: arXiv:1603.05598: 0.96-0.99 for pT > 6 GeV, |η| < 2.5).
MUON_PT_MIN = 6.0
MUON_EFFICIENCY = 0.96
MUON_ETA = 2.5
#: Photon identification, tight (ATLAS, EPJC 76 (2016) 666, arXiv:1606.01813:
#: 0.85 at 20-40 GeV rising to about 0.95 above 100 GeV; one value kept).
PHOTON_PT_MIN = 20.0
PHOTON_EFFICIENCY = 0.90
PHOTON_ETA = 2.37
#: Isolation: cone radius and largest relative pT sum.
LEPTON_ISOLATION = (0.3, 0.15)
PHOTON_ISOLATION = (0.2, 0.10)
#: Particles softer than this (GeV) do not enter isolation sums (track threshold).
ISOLATION_MIN_PT = 1.0

#: Jet pT resolution σ/pT = sqrt((N/pT)² + S²/pT + C²) (ATLAS, EPJC 73 (2013) 2306,
#: arXiv:1210.6210, central calorimeter): N = 3 GeV, S = 0.75 GeV^½, C = 0.03.
JET_RESOLUTION_N_GEV = 3.0
JET_RESOLUTION_S = 0.75
JET_RESOLUTION_C = 0.03
JET_PT_MIN = 20.0
#: Missing-ET soft term: σ(E_x,y) = 0.5 GeV^½ √ΣE_T of unclustered deposits
#: (ATLAS, EPJC 72 (2012) 1844, arXiv:1108.5602).
MET_SOFT_RESOLUTION = 0.5

#: b-tagging, MV2c20 at the 77 % working point in tt̄ (ATL-PHYS-PUB-2015-022,
#: Table 2): b 0.77, c rejection 4.5, light rejection 140; τ mis-tag taken as the
#: c rate's half (rejection about 10 for hadronic τ at this working point).
B_TAG_EFFICIENCY = {5: 0.77, 4: 1.0 / 4.5, 15: 0.10, 0: 1.0 / 140.0}
B_TAG_ETA = 2.5
#: Hadronic τ identification, medium working point (ATL-PHYS-PUB-2015-045):
#: about 0.55 for 1-prong and 0.40 for 3-prong τ (0.55 kept, 1-prong dominates);
#: light-jet mis-identification about 1 %.
TAU_TAG_EFFICIENCY = 0.55
TAU_MISTAG_RATE = 0.01
TAU_TAG_ETA = 2.5
FLAVOUR_MATCH_DR = 0.3
FLAVOUR_MIN_PT = 5.0


@dataclass
class PhysicsObjects:
    """Reconstructed objects of a batch of events.

    Attributes:
        jets: ``[event][jet]`` with ``pt``, ``eta``, ``phi``, ``m``, ``px``, ``py``,
            ``pz``, ``e`` (GeV), ``btag`` and ``tautag`` (bool); pT > 20 GeV,
            |η| < 4.9, sorted by pT; ``charge`` is that of a matched hadronic τ
            (0 for other jets).
        electrons: ``[event][e]`` with kinematics and ``charge`` (±1); isolated,
            identified, pT > 7 GeV, |η| < 2.47.
        muons: As electrons; pT > 6 GeV, |η| < 2.5.
        photons: Isolated identified photons, pT > 20 GeV.
        met_x: Missing transverse momentum x component per event, ``(n,)`` GeV.
        met_y: y component, ``(n,)`` GeV.
        replicas: Number of detector replicas of each generated event; the rows
            are replica-major (see the module docstring), 1 for none.
    """

    jets: ak.Array
    electrons: ak.Array
    muons: ak.Array
    photons: ak.Array
    met_x: np.ndarray
    met_y: np.ndarray
    replicas: int = 1

    @property
    def met(self) -> np.ndarray:
        """Missing transverse momentum magnitude per event, ``(n,)`` GeV."""
        return np.hypot(self.met_x, self.met_y)

    @property
    def met_phi(self) -> np.ndarray:
        """Azimuth of the missing transverse momentum, ``(n,)`` rad."""
        return np.arctan2(self.met_y, self.met_x)

    def __len__(self) -> int:
        return len(self.met_x)


def reconstruct(
    events: ak.Array, rng: np.random.Generator, replicas: int = 1
) -> PhysicsObjects:
    """Turn generated events into physics objects.

    Args:
        events: ``[event][particle]`` records with ``id``, ``status``, ``px``,
            ``py``, ``pz``, ``e`` (GeV) as written by :mod:`simulators.events`:
            final-state particles (status > 0) and b, c, τ of the history.
        rng: Random generator for decays, efficiencies and resolutions.
        replicas: Independent draws of jet smearing, tagging and the soft term
            per event (see the module docstring); 1 gives one object set per event.

    Returns:
        The physics objects, ``replicas × len(events)`` rows, replica-major.
    """
    if replicas < 1:
        raise ValueError(f"detector replicas must be >= 1, got {replicas}")
    final = with_kinematics(events[events.status > 0])
    final, hadronic_taus = _decay_taus(final, rng)
    visible = _visible(final)

    candidates, used = {}, ak.zeros_like(visible.pt, dtype=bool)
    for pdg in (11, 13, 22):
        candidates[pdg], isolated = _isolated_candidates(visible, pdg)
        used = used | isolated
    true_jets = cluster(visible[~used])
    visible_x = -ak.to_numpy(ak.sum(visible.px, axis=1))
    visible_y = -ak.to_numpy(ak.sum(visible.py, axis=1))
    heavy = _flavour_truth(events)
    if replicas > 1:
        rows = np.tile(np.arange(len(events)), replicas)
        true_jets, heavy, hadronic_taus = (
            true_jets[rows],
            heavy[rows],
            hadronic_taus[rows],
        )
        candidates = {pdg: c[rows] for pdg, c in candidates.items()}
        visible_x, visible_y = visible_x[rows], visible_y[rows]

    identified = {}
    for pdg in (11, 13, 22):
        identified[pdg], failed = _identified(candidates[pdg], pdg, rng)
        true_jets = ak.concatenate([true_jets, _as_jets(failed)], axis=1)
    electrons, muons, photons = identified[11], identified[13], identified[22]
    true_jets = sorted_by_pt(true_jets)

    jets = _smeared(true_jets, rng)
    met_x, met_y = _missing_momentum(visible_x, visible_y, true_jets, jets, rng)

    jets = jets[jets.pt > JET_PT_MIN]
    jets = _tagged(jets, heavy, hadronic_taus, rng)
    return PhysicsObjects(jets, electrons, muons, photons, met_x, met_y, replicas)


def _visible(final: ak.Array) -> ak.Array:
    abs_id = np.abs(final.id)
    invisible = np.zeros_like(abs_id, dtype=bool)
    for pdg in INVISIBLE_PDG:
        invisible = invisible | (abs_id == pdg)
    return final[~invisible & (np.abs(final.eta) < CALORIMETER_ETA) & (final.pt > 0.0)]


def _decay_taus(final: ak.Array, rng: np.random.Generator) -> tuple[ak.Array, ak.Array]:
    """Replace final-state τ by their visible decay product; return hadronic τ too."""
    counts = ak.num(final)
    flat = ak.flatten(final)
    ids = ak.to_numpy(flat.id).copy()
    is_tau = np.abs(ids) == 15
    scale = np.ones(len(ids))
    n_tau = int(is_tau.sum())
    if n_tau:
        mode = rng.random(n_tau)
        leptonic_z = _leptonic_tau_fraction(rng.random(n_tau))
        z = np.where(
            mode < TAU_BR_ELECTRON + TAU_BR_MUON, leptonic_z, rng.random(n_tau)
        )
        sign = np.sign(ids[is_tau])
        new_id = np.where(
            mode < TAU_BR_ELECTRON,
            11 * sign,
            np.where(mode < TAU_BR_ELECTRON + TAU_BR_MUON, 13 * sign, 15 * sign),
        )
        ids[is_tau] = new_id
        scale[is_tau] = z

    fields = {
        "id": ids,
        "status": ak.to_numpy(flat.status),
        **{name: ak.to_numpy(flat[name]) * scale for name in ("px", "py", "pz", "e")},
    }
    decayed = with_kinematics(ak.unflatten(ak.zip(fields), counts))
    return decayed, decayed[np.abs(decayed.id) == 15]


def _leptonic_tau_fraction(u: np.ndarray) -> np.ndarray:
    """Invert the CDF F(z) = (5z − 3z³ + z⁴)/3 of the leptonic τ energy fraction."""
    grid = np.linspace(0.0, 1.0, 513)
    cdf = (5.0 * grid - 3.0 * grid**3 + grid**4) / 3.0
    return np.interp(u, cdf, grid)


def _isolated_candidates(visible: ak.Array, pdg: int) -> tuple[ak.Array, ak.Array]:
    """Isolated candidates of one kind within acceptance, and their mask in
    ``visible``."""
    abs_id = np.abs(visible.id)
    if pdg == 11:
        pt_min, eta_max, cone = ELECTRON_PT_EDGES[0], ELECTRON_ETA, LEPTON_ISOLATION
    elif pdg == 13:
        pt_min, eta_max, cone = MUON_PT_MIN, MUON_ETA, LEPTON_ISOLATION
    else:
        pt_min, eta_max, cone = PHOTON_PT_MIN, PHOTON_ETA, PHOTON_ISOLATION
    candidate = (
        (abs_id == pdg) & (visible.pt > pt_min) & (np.abs(visible.eta) < eta_max)
    )
    if pdg == 11:
        crack = (np.abs(visible.eta) > 1.37) & (np.abs(visible.eta) < 1.52)
        candidate = candidate & ~crack

    counts = ak.num(visible)
    flat_candidate = ak.to_numpy(ak.flatten(candidate))
    isolated = ak.to_numpy(ak.flatten(_isolated(visible[candidate], visible, cone)))
    flat_used = np.zeros(len(flat_candidate), dtype=bool)
    flat_used[np.flatnonzero(flat_candidate)[isolated]] = True
    used = ak.unflatten(flat_used, counts)
    return visible[used], used


def _identified(
    candidates: ak.Array, pdg: int, rng: np.random.Generator
) -> tuple[ak.Array, ak.Array]:
    """Identified objects among isolated candidates, and the ones that failed."""
    counts = ak.num(candidates)
    flat_pt = ak.to_numpy(ak.flatten(candidates.pt))
    passed = ak.unflatten(rng.random(len(flat_pt)) < _efficiency(pdg, flat_pt), counts)
    objects = candidates[passed]
    charge = -np.sign(objects.id) if pdg != 22 else objects.id * 0
    objects = ak.with_field(objects, charge, "charge")
    return sorted_by_pt(objects), candidates[~passed]


def _as_jets(particles: ak.Array) -> ak.Array:
    """Particles as jet records (Cartesian momenta and kinematics)."""
    fields = {
        name: ak.values_astype(particles[name], np.float64)
        for name in ("px", "py", "pz", "e")
    }
    return with_kinematics(ak.zip(fields))


def _efficiency(pdg: int, pt: np.ndarray) -> np.ndarray:
    if pdg == 11:
        bins = np.digitize(pt, ELECTRON_PT_EDGES)
        return np.asarray(ELECTRON_EFFICIENCY)[bins]
    if pdg == 13:
        return np.full(len(pt), MUON_EFFICIENCY)
    return np.full(len(pt), PHOTON_EFFICIENCY)


def _isolated(
    candidates: ak.Array, visible: ak.Array, cone: tuple[float, float]
) -> ak.Array:
    """True where the pT sum of other visible particles in the cone is small."""
    radius, fraction = cone
    others = visible[visible.pt > ISOLATION_MIN_PT]
    delta_r = delta_r_matrix(candidates, others)
    other_pt = ak.broadcast_arrays(delta_r, others.pt[:, np.newaxis, :])[1]
    in_cone = (delta_r < radius) & (delta_r > 1e-9)
    activity = ak.sum(ak.where(in_cone, other_pt, 0.0), axis=2)
    return activity < fraction * candidates.pt


def _smeared(jets: ak.Array, rng: np.random.Generator) -> ak.Array:
    counts = ak.num(jets)
    pt = ak.to_numpy(ak.flatten(jets.pt))
    safe_pt = np.maximum(pt, 1.0)
    sigma = np.sqrt(
        (JET_RESOLUTION_N_GEV / safe_pt) ** 2
        + JET_RESOLUTION_S**2 / safe_pt
        + JET_RESOLUTION_C**2
    )
    factor = np.maximum(1.0 + sigma * rng.standard_normal(len(pt)), 0.0)
    fields = {
        name: ak.to_numpy(ak.flatten(jets[name])) * factor
        for name in ("px", "py", "pz", "e")
    }
    return sorted_by_pt(with_kinematics(ak.unflatten(ak.zip(fields), counts)))


def _missing_momentum(
    visible_x: np.ndarray,
    visible_y: np.ndarray,
    true_jets: ak.Array,
    jets: ak.Array,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """−Σ visible pT (given as ``visible_x``, ``visible_y``), corrected by the
    smearing of jets above threshold, plus soft term."""
    met_x = visible_x.copy()
    met_y = visible_y.copy()
    hard_true = true_jets[true_jets.pt > JET_PT_MIN]
    hard_smeared = jets[jets.pt > JET_PT_MIN]
    met_x -= ak.to_numpy(ak.sum(hard_smeared.px, axis=1) - ak.sum(hard_true.px, axis=1))
    met_y -= ak.to_numpy(ak.sum(hard_smeared.py, axis=1) - ak.sum(hard_true.py, axis=1))

    soft_sum = ak.to_numpy(ak.sum(true_jets.pt[true_jets.pt <= JET_PT_MIN], axis=1))
    sigma = MET_SOFT_RESOLUTION * np.sqrt(soft_sum)
    met_x = met_x + sigma * rng.standard_normal(len(met_x))
    met_y = met_y + sigma * rng.standard_normal(len(met_y))
    return met_x, met_y


def _flavour_truth(events: ak.Array) -> ak.Array:
    particles = with_kinematics(events)
    abs_id = np.abs(particles.id)
    heavy = ((abs_id == 4) | (abs_id == 5)) & (particles.pt > FLAVOUR_MIN_PT)
    return particles[heavy]


def _tagged(
    jets: ak.Array, heavy: ak.Array, hadronic_taus: ak.Array, rng: np.random.Generator
) -> ak.Array:
    """Label jets by truth flavour and apply b- and τ-tagging efficiencies."""
    label = ak.zeros_like(jets.pt, dtype=np.int64)
    taus = hadronic_taus[hadronic_taus.pt > JET_PT_MIN * 0.5]
    pairs = ak.cartesian({"jet": jets, "tau": taus}, axis=1, nested=True)
    tau_match = delta_r_matrix(jets, taus) < FLAVOUR_MATCH_DR
    charge = ak.sum(ak.where(tau_match, -np.sign(pairs.tau.id), 0), axis=2)
    for pdg, truth in (
        (15, taus),
        (4, heavy[np.abs(heavy.id) == 4]),
        (5, heavy[np.abs(heavy.id) == 5]),
    ):
        matched = ak.any(delta_r_matrix(jets, truth) < FLAVOUR_MATCH_DR, axis=2)
        label = ak.where(matched, pdg, label)

    counts = ak.num(jets)
    flat_label = ak.to_numpy(ak.flatten(label))
    flat_eta = np.abs(ak.to_numpy(ak.flatten(jets.eta)))
    b_efficiency = np.select(
        [flat_label == 5, flat_label == 4, flat_label == 15],
        [B_TAG_EFFICIENCY[5], B_TAG_EFFICIENCY[4], B_TAG_EFFICIENCY[15]],
        B_TAG_EFFICIENCY[0],
    )
    btag = (rng.random(len(flat_label)) < b_efficiency) & (flat_eta < B_TAG_ETA)
    tau_efficiency = np.where(flat_label == 15, TAU_TAG_EFFICIENCY, TAU_MISTAG_RATE)
    tautag = (rng.random(len(flat_label)) < tau_efficiency) & (flat_eta < TAU_TAG_ETA)

    jets = ak.with_field(jets, ak.unflatten(btag, counts), "btag")
    jets = ak.with_field(jets, ak.unflatten(tautag, counts), "tautag")
    charge = ak.where(charge > 0, 1, ak.where(charge < 0, -1, 0))
    jets = ak.with_field(jets, charge, "charge")
    return ak.with_field(jets, ak.unflatten(flat_label, counts), "flavour")


def transverse_mass(obj: ak.Array, met: np.ndarray, met_phi: np.ndarray) -> ak.Array:
    """m_T of each object with the missing momentum (GeV)."""
    return np.sqrt(2.0 * obj.pt * met * (1.0 - np.cos(delta_phi(obj.phi, met_phi))))
