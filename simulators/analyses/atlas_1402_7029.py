"""ATLAS three leptons (e, μ, hadronic τ) + E_T^miss at 8 TeV, 20.3 fb⁻¹.

arXiv:1402.7029 (electroweak charginos and neutralinos), Tables 2-4. Leptons: e and
μ above 10 GeV (|η| < 2.47 / 2.4), τ-tagged jets above 20 GeV within |η| < 2.5;
exactly three leptons with at least one e or μ, pairwise ΔR > 0.3; a b-tagged jet
(pT > 20 GeV, |η| < 2.5) vetoes every SR. SR0τa: bins of the same-flavour
opposite-sign mass closest to the Z, E_T^miss and m_T of the third lepton;
SR0τb: no SFOS pair; SR1τ: same-sign light leptons plus an opposite-sign τ;
SR2τa/b: two τ. The trigger is modelled by requiring one e or μ above 25 GeV or
two above 14 GeV. Deviations: low-mass resonance veto and charge of fake τ are
simplified (fake τ carry no charge and fail opposite-sign requirements).

The three-lepton events are rare, so after a vectorised preselection the few
candidates are classified event by event.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
from scipy.optimize import minimize

from simulators.analyses.common import Analysis, multiplicity, transverse_mass
from simulators.detector import PhysicsObjects
from simulators.jets import sorted_by_pt

SIGNAL_REGIONS = (
    *(f"SR0taua{k:02d}" for k in range(1, 21)),
    "SR0taub",
    "SR1tau",
    "SR2taua",
    "SR2taub",
)
Z_WINDOW = (81.2, 101.2)
#: SR0τa bins: (m_SFOS range, E_T^miss range, m_T range, Z veto on m_3l), GeV.
SR0TAUA = {
    1: ((12, 40), (50, 90), (0, 80), False),
    2: ((12, 40), (90, np.inf), (0, 80), False),
    3: ((12, 40), (50, 75), (80, np.inf), False),
    4: ((12, 40), (75, np.inf), (80, np.inf), False),
    5: ((40, 60), (50, 75), (0, 80), True),
    6: ((40, 60), (75, np.inf), (0, 80), False),
    7: ((40, 60), (50, 135), (80, np.inf), False),
    8: ((40, 60), (135, np.inf), (80, np.inf), False),
    9: ((60, 81.2), (50, 75), (0, 80), True),
    10: ((60, 81.2), (50, 75), (80, np.inf), False),
    11: ((60, 81.2), (75, np.inf), (0, 110), False),
    12: ((60, 81.2), (75, np.inf), (110, np.inf), False),
    13: ((81.2, 101.2), (50, 90), (0, 110), True),
    14: ((81.2, 101.2), (90, np.inf), (0, 110), False),
    15: ((81.2, 101.2), (50, 135), (110, np.inf), False),
    16: ((81.2, 101.2), (135, np.inf), (110, np.inf), False),
    17: ((101.2, np.inf), (50, 210), (0, 180), False),
    18: ((101.2, np.inf), (50, 210), (180, np.inf), False),
    19: ((101.2, np.inf), (210, np.inf), (0, 120), False),
    20: ((101.2, np.inf), (210, np.inf), (120, np.inf), False),
}


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    n = len(objects)
    masks = {sr: np.zeros(n, dtype=bool) for sr in SIGNAL_REGIONS}
    leptons = _leptons(objects)
    light = leptons[leptons.flavour != 15]
    jets = objects.jets[(objects.jets.pt > 20.0) & (np.abs(objects.jets.eta) < 2.5)]
    b_veto = multiplicity(jets[jets.btag]) == 0
    light_pt = ak.to_numpy(ak.fill_none(ak.pad_none(light.pt, 2, axis=1)[:, :2], 0.0))
    trigger = (light_pt[:, 0] > 25.0) | (light_pt[:, 1] > 14.0)
    candidates = np.flatnonzero(
        (multiplicity(leptons) == 3) & (multiplicity(light) >= 1) & b_veto & trigger
    )
    met, met_phi = objects.met, objects.met_phi
    for index in candidates:
        event = ak.to_list(leptons[index])
        for sr in _classify(event, met[index], met_phi[index]):
            masks[sr][index] = True
    return masks


def _leptons(objects: PhysicsObjects) -> ak.Array:
    fields = ["pt", "eta", "phi", "px", "py", "pz", "e", "charge"]
    electrons = objects.electrons[
        (objects.electrons.pt > 10.0) & (np.abs(objects.electrons.eta) < 2.47)
    ][fields]
    muons = objects.muons[
        (objects.muons.pt > 10.0) & (np.abs(objects.muons.eta) < 2.4)
    ][fields]
    jets = objects.jets
    taus = jets[jets.tautag & ~jets.btag & (jets.pt > 20.0) & (np.abs(jets.eta) < 2.5)]
    tau_charge = ak.where(taus.flavour == 15, _tau_charge(taus), 0)
    taus = ak.with_field(taus[fields[:-1]], tau_charge, "charge")
    parts = []
    for collection, flavour in ((electrons, 11), (muons, 13), (taus, 15)):
        parts.append(
            ak.with_field(collection, ak.zeros_like(collection.pt) + flavour, "flavour")
        )
    return sorted_by_pt(ak.concatenate(parts, axis=1))


def _tau_charge(taus: ak.Array) -> ak.Array:
    """Charge of true hadronic τ jets when the detector recorded it, else +1."""
    if "charge" in ak.fields(taus):
        return taus.charge
    return ak.ones_like(taus.pt)


def _classify(leptons: list[dict], met: float, met_phi: float) -> list[str]:
    """SRs passed by one event with exactly three leptons (list of records)."""
    if _too_close(leptons):
        return []
    taus = [lep for lep in leptons if lep["flavour"] == 15]
    light = [lep for lep in leptons if lep["flavour"] != 15]
    if len(taus) == 0:
        return _no_tau(light, met, met_phi)
    if len(taus) == 1:
        return _one_tau(light, taus[0], met)
    return _two_taus(leptons, taus, met, met_phi)


def _too_close(leptons: list[dict]) -> bool:
    for i in range(3):
        for j in range(i + 1, 3):
            d_phi = abs(
                (leptons[i]["phi"] - leptons[j]["phi"] + np.pi) % (2 * np.pi) - np.pi
            )
            if np.hypot(leptons[i]["eta"] - leptons[j]["eta"], d_phi) < 0.3:
                return True
    return False


def _mass(*parts: dict) -> float:
    e, px, py, pz = (sum(p[k] for p in parts) for k in ("e", "px", "py", "pz"))
    return float(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)))


def _no_tau(light: list[dict], met: float, met_phi: float) -> list[str]:
    pairs = [
        (i, j)
        for i in range(3)
        for j in range(i + 1, 3)
        if light[i]["flavour"] == light[j]["flavour"]
        and light[i]["charge"] != light[j]["charge"]
    ]
    if met < 50.0:
        return []
    if not pairs:
        return _no_sfos(light)
    i, j = min(pairs, key=lambda p: abs(_mass(light[p[0]], light[p[1]]) - 92.0))
    m_sfos = _mass(light[i], light[j])
    third = light[3 - i - j]
    m_t = float(transverse_mass(third["pt"], third["phi"], met, met_phi))
    m_3l = _mass(*light)
    passed = []
    for k, (m_range, met_range, mt_range, z_veto) in SR0TAUA.items():
        if not (
            m_range[0] < m_sfos < m_range[1] and met_range[0] <= met < met_range[1]
        ):
            continue
        if not mt_range[0] <= m_t < mt_range[1]:
            continue
        if z_veto and Z_WINDOW[0] < m_3l < Z_WINDOW[1]:
            continue
        passed.append(f"SR0taua{k:02d}")
    return passed


def _no_sfos(light: list[dict]) -> list[str]:
    flavours = {lep["flavour"] for lep in light}
    charges = {lep["charge"] for lep in light}
    if len(flavours) < 2 or len(charges) < 2 or min(lep["pt"] for lep in light) < 20.0:
        return []
    # the pairs of different flavour: the odd one out against the other two
    odd = next(
        lep for lep in light if sum(o["flavour"] == lep["flavour"] for o in light) == 1
    )
    d_phi = min(
        abs((odd["phi"] - lep["phi"] + np.pi) % (2 * np.pi) - np.pi)
        for lep in light
        if lep is not odd
    )
    return ["SR0taub"] if d_phi < 1.0 else []


def _one_tau(light: list[dict], tau: dict, met: float) -> list[str]:
    first, second = light
    if (
        first["charge"] != second["charge"]
        or tau["charge"] == first["charge"]
        or tau["charge"] == 0
    ):
        return []
    if (
        first["flavour"] == second["flavour"] == 11
        and Z_WINDOW[0] < _mass(first, second) < Z_WINDOW[1]
    ):
        return []
    if (
        met < 50.0
        or first["pt"] + second["pt"] < 70.0
        or min(first["pt"], second["pt"]) < 30.0
    ):
        return []
    m_tl = min((_mass(lep, tau) for lep in light), key=lambda m: abs(m - 125.0))
    return ["SR1tau"] if m_tl <= 120.0 else []


def _two_taus(
    leptons: list[dict], taus: list[dict], met: float, met_phi: float
) -> list[str]:
    passed = []
    met_x, met_y = met * np.cos(met_phi), met * np.sin(met_phi)
    if met >= 50.0:
        mt2 = max(
            _mt2(leptons[i], leptons[j], met_x, met_y)
            for i in range(3)
            for j in range(i + 1, 3)
        )
        if mt2 >= 100.0:
            passed.append("SR2taua")
    first, second = taus
    opposite = first["charge"] * second["charge"] < 0
    m_tautau = _mass(first, second)
    if (
        opposite
        and met >= 60.0
        and 70.0 <= m_tautau <= 120.0
        and first["pt"] + second["pt"] >= 110.0
    ):
        passed.append("SR2taub")
    return passed


def _mt2(a: dict, b: dict, met_x: float, met_y: float) -> float:
    """m_T2 with massless invisible particles, by numerical minimisation (GeV)."""

    def mt(p: dict, qx: float, qy: float) -> float:
        q = np.hypot(qx, qy)
        return np.sqrt(max(2.0 * (p["pt"] * q - p["px"] * qx - p["py"] * qy), 0.0))

    def objective(q: np.ndarray) -> float:
        return max(mt(a, q[0], q[1]), mt(b, met_x - q[0], met_y - q[1]))

    start = np.array([met_x / 2.0, met_y / 2.0])
    best = minimize(
        objective, start, method="Nelder-Mead", options={"xatol": 0.1, "fatol": 0.1}
    )
    return float(best.fun)


ANALYSIS = Analysis(
    name="atlas_1402_7029",
    energy_tev=8.0,
    luminosity_fb=20.3,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="ATLAS, arXiv:1402.7029",
)
