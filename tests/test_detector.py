"""Tests of the parameterised detector on hand-built events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from simulators import detector
from simulators.detector import reconstruct


def _particle(pdg: int, pt: float, eta: float, phi: float, status: int = 1) -> dict:
    """A massless particle record (GeV)."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {
        "id": pdg,
        "status": status,
        "px": px,
        "py": py,
        "pz": pz,
        "e": pt * np.cosh(eta),
    }


def _events(event: list[dict], n: int) -> ak.Array:
    return ak.Array([event] * n)


def _binomial_ok(successes: float, n: int, p: float) -> bool:
    """Within four standard deviations of a binomial expectation."""
    return abs(successes - n * p) <= 4.0 * np.sqrt(n * p * (1.0 - p)) + 1.0


def test_isolated_electron_is_found_with_the_quoted_efficiency(rng) -> None:
    event = [_particle(11, 100.0, 0.5, 0.0), _particle(21, 100.0, -0.5, np.pi)]
    n = 2000

    objects = reconstruct(_events(event, n), rng)

    found = ak.num(objects.electrons)
    assert _binomial_ok(ak.sum(found), n, 0.88)  # ATLAS medium ID above 40 GeV
    assert np.all(objects.electrons.charge[found > 0][:, 0] == -1)  # e⁻ has PDG +11


def test_muon_inside_a_jet_is_not_isolated(rng) -> None:
    event = [_particle(13, 30.0, 0.0, 0.0), _particle(1, 200.0, 0.1, 0.05)]

    objects = reconstruct(_events(event, 200), rng)

    assert ak.sum(ak.num(objects.muons)) == 0
    assert np.all(ak.num(objects.jets) == 1)  # the muon ends up inside the jet


def test_neutrinos_make_missing_momentum(rng) -> None:
    event = [_particle(12, 300.0, 0.0, 0.0), _particle(2, 300.0, 0.0, np.pi)]

    objects = reconstruct(_events(event, 500), rng)

    # jet resolution at 300 GeV: sqrt((3/300)^2 + 0.75^2/300 + 0.03^2) = 5.4 %
    assert np.mean(objects.met) == pytest.approx(300.0, rel=0.02)
    assert np.std(objects.met) == pytest.approx(0.054 * 300.0, rel=0.2)
    assert np.all(np.abs(objects.met_phi) < 0.1)


def test_anti_kt_merges_close_partons_and_separates_distant_ones(rng) -> None:
    close = [_particle(21, 100.0, 0.0, 0.0), _particle(21, 50.0, 0.2, 0.0)]
    apart = [_particle(21, 100.0, 0.0, 0.0), _particle(21, 50.0, 1.0, 0.0)]

    merged = reconstruct(_events(close, 50), rng)
    separate = reconstruct(_events(apart, 50), rng)

    assert np.all(ak.num(merged.jets) == 1)
    assert np.all(ak.num(separate.jets) == 2)


@pytest.mark.parametrize(
    ("pdg", "rate"),
    [(5, 0.77), (4, 1.0 / 4.5), (1, 1.0 / 140.0)],
)
def test_b_tagging_rates_of_the_77_percent_working_point(
    rng, pdg: int, rate: float
) -> None:
    event = [_particle(pdg, 100.0, 0.3, 1.0)]
    n = 3000

    objects = reconstruct(_events(event, n), rng)

    assert np.all(ak.num(objects.jets) == 1)
    assert _binomial_ok(ak.sum(objects.jets.btag), n, rate)


def test_b_tag_needs_the_tracker(rng) -> None:
    event = [_particle(5, 100.0, 3.0, 1.0)]

    objects = reconstruct(_events(event, 300), rng)

    assert ak.sum(objects.jets.btag) == 0


def test_tau_decays_split_into_leptons_and_tagged_jets(rng) -> None:
    event = [_particle(15, 200.0, 0.0, 0.0), _particle(21, 200.0, 0.0, np.pi)]
    n = 4000

    objects = reconstruct(_events(event, n), rng)

    n_electrons = ak.sum(ak.num(objects.electrons))
    n_muons = ak.sum(ak.num(objects.muons))
    tau_jets = objects.jets[objects.jets.flavour == 15]
    leptonic = detector.TAU_BR_ELECTRON + detector.TAU_BR_MUON
    # leptons need z·200 GeV above threshold (z > 0.035) and pass ID: most do
    assert n_electrons < n * detector.TAU_BR_ELECTRON
    assert n_electrons > 0.75 * n * detector.TAU_BR_ELECTRON
    assert n_muons > 0.8 * n * detector.TAU_BR_MUON
    # hadronic τ with visible pT > 20 GeV: z > 0.1, 90 % of 64.8 %
    assert _binomial_ok(ak.sum(ak.num(tau_jets)), n, (1.0 - leptonic) * 0.9)
    tag_rate = ak.sum(tau_jets.tautag) / ak.sum(ak.num(tau_jets))
    assert tag_rate == pytest.approx(detector.TAU_TAG_EFFICIENCY, abs=0.05)


def test_invisible_lsp_and_forward_particles_are_not_seen(rng) -> None:
    # balanced in the transverse plane: LSP against a forward gluon and a quark
    event = [
        _particle(1000022, 150.0, 0.0, 0.0),
        _particle(21, 80.0, 5.5, np.pi),
        _particle(1, 70.0, 0.0, np.pi),
    ]

    objects = reconstruct(_events(event, 400), rng)

    assert np.all(ak.num(objects.jets) == 1)
    # only the quark is seen: E_T^miss = its 70 GeV, smeared by the 9 % resolution
    assert np.mean(objects.met) == pytest.approx(70.0, rel=0.03)


def test_replicas_redraw_identification_tagging_and_smearing(rng) -> None:
    # one b quark jet and one isolated 100 GeV electron per event
    event = [_particle(5, 100.0, 0.3, 1.0), _particle(11, 100.0, -0.5, -2.0)]
    n, replicas = 500, 4

    objects = reconstruct(_events(event, n), rng, replicas=replicas)

    assert len(objects) == n * replicas
    assert objects.replicas == replicas
    electrons = ak.to_numpy(ak.num(objects.electrons)).reshape(replicas, n)
    assert _binomial_ok(electrons.sum(), n * replicas, 0.88)  # medium ID > 40 GeV
    assert np.any(electrons != electrons[0])  # identification redrawn per replica
    # a failed electron is a jet of its own: two jets exactly where it failed
    jets = ak.to_numpy(ak.num(objects.jets)).reshape(replicas, n)
    assert np.all(jets == 2 - electrons)
    btag = ak.to_numpy(ak.sum(objects.jets.btag, axis=1)).reshape(replicas, n)
    assert np.any(btag != btag[0])  # b-tag redrawn per replica
    b_jets = objects.jets[objects.jets.flavour == 5]
    assert _binomial_ok(ak.sum(b_jets.btag), n * replicas, 0.77)
    pt = ak.to_numpy(b_jets.pt[:, 0]).reshape(replicas, n)
    assert np.all(np.std(pt, axis=0) > 0.0)  # independent jet smearing
    # 100 GeV jet: sqrt((3/100)^2 + 0.75^2/100 + 0.03^2) = 8.1 % resolution
    assert np.std(pt) == pytest.approx(8.1, rel=0.1)


def test_replicas_must_be_positive(rng) -> None:
    with pytest.raises(ValueError, match="replicas"):
        reconstruct(_events([_particle(1, 50.0, 0.0, 0.0)], 2), rng, replicas=0)
