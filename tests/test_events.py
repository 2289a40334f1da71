"""Tests of Pythia 8 event generation: cross sections, groups, seeds, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulators.events import (
    GenerationSettings,
    expected_events_needed,
    generate,
    generate_group,
    groups_for,
    pythia_settings,
)
from simulators.slha import read_spectrum

#: LO gluino-pair cross sections at 13 TeV with squarks decoupled (fb). Source: the
#: LHC SUSY cross-section working group NLO+NLL values (arXiv:1407.5066; 0.325 pb
#: at 1.0 TeV, 0.0141 pb at 1.5 TeV) divided by an NLO+NLL/LO K-factor of 2.0, the
#: approximate size of the gluino-pair K-factor at these masses in that paper. These
#: are derived LO values, not an independent LO calculation.
GLUINO_PAIR_LO_FB = {1000.0: 325.0 / 2.0, 1500.0: 14.1 / 2.0}

SMALL = GenerationSettings(probe_events=60, min_events=60, max_events=60)


@pytest.fixture
def fixture_card(shared_dir: Path):
    def card(name: str) -> Path:
        return shared_dir / "fixtures" / "spheno" / name / "SPheno.spc"

    return card


def _gluino_card(tmp_path: Path, m_gluino: float) -> Path:
    """A card with the gluino at ``m_gluino`` GeV, squarks at 5 TeV, χ̃⁰₁ light."""
    from simulators.decays import compute_decays
    from simulators.slha import write_card
    from simulators.spectrum import compute_spectrum

    point = dict(M1=200.0, M2=1500.0, M3=1000.0, mQ12=5000.0, mQ3=5000.0, mL12=3000.0)
    point.update(mL3=3000.0, mA=3000.0, A=0.0, mu=2000.0, tanb=10.0)
    spectrum = compute_spectrum(point, "pmssm11")
    spectrum.masses[1000021] = m_gluino
    return write_card(tmp_path / "gluino.slha", spectrum, compute_decays(spectrum))


@pytest.mark.parametrize("m_gluino", sorted(GLUINO_PAIR_LO_FB))
def test_gluino_pair_lo_cross_section(tmp_path: Path, m_gluino: float) -> None:
    card = _gluino_card(tmp_path, m_gluino)
    settings = GenerationSettings(probe_events=300, min_events=300, max_events=300)

    sample = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=5, settings=settings)

    reference = GLUINO_PAIR_LO_FB[m_gluino]
    assert sample is not None
    assert sample.sigma_fb == pytest.approx(reference, rel=0.30)
    assert sample.sigma_error_fb < 0.05 * sample.sigma_fb


def test_electroweak_groups_only_for_light_lsp_at_their_energies() -> None:
    settings = GenerationSettings()
    light, heavy = {1000022: 300.0}, {1000022: -600.0}

    assert "electroweak" in groups_for(light, 8.0, settings)
    assert "electroweak" not in groups_for(heavy, 8.0, settings)
    assert "electroweak" not in groups_for(light, 13.0, settings)
    assert groups_for(heavy, 13.0, settings) == [
        "gluino_gluino",
        "squark_gluino",
        "squark_squark",
        "third_generation",
    ]


@pytest.mark.parametrize(
    ("sigma_fb", "expected"),
    [(0.1, 100), (10.0, 500), (60.0, 960), (1000.0, 2500)],  # σ·L = 0.32, 32, 192, 3200
)
def test_event_numbers_follow_five_times_expected(
    sigma_fb: float, expected: int
) -> None:
    assert expected_events_needed(sigma_fb, 3.2, GenerationSettings()) == expected


def test_real_card_uses_our_decay_tables_without_complaints(fixture_card) -> None:
    card = fixture_card("light_gluino")

    sample = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=1, settings=SMALL)

    assert sample is not None and sample.n_events == 60
    about_decays = [
        m for m in sample.messages if "decay" in m.lower() or "width" in m.lower()
    ]
    assert about_decays == []
    # the hard process is gluino pairs, and every event ends with two neutralinos LSP
    assert np.all(sample.hard_pairs == 1000021)
    n_lsp = [int(np.sum(np.abs(np.asarray(e.id)) == 1000022)) for e in sample.events]
    assert set(n_lsp) == {2}


def test_same_seed_same_events_other_seed_other_events(fixture_card) -> None:
    card = fixture_card("light_gluino")

    first = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=11, settings=SMALL)
    again = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=11, settings=SMALL)
    other = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=12, settings=SMALL)

    assert first.events.px.tolist() == again.events.px.tolist()
    assert first.events.px.tolist() != other.events.px.tolist()


def test_heavy_spectrum_generates_nothing(fixture_card) -> None:
    card = fixture_card("decoupled")
    masses = read_spectrum(card).masses

    samples = generate(card, 13.0, 3.3, masses, seed=1, settings=SMALL)

    assert samples == []


def test_hadronisation_switch_gives_hadrons(fixture_card) -> None:
    card = fixture_card("light_gluino")
    settings = GenerationSettings(
        probe_events=30, min_events=30, max_events=30, hadronisation=True
    )

    parton = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=1, settings=SMALL)
    hadron = generate_group(card, 13.0, "gluino_gluino", 3.2, seed=1, settings=settings)

    def final_ids(sample) -> np.ndarray:
        events = sample.events[sample.events.status > 0]
        return np.abs(np.concatenate([np.asarray(e.id) for e in events]))

    assert 211 not in final_ids(parton) and 21 in final_ids(parton)
    assert 211 in final_ids(hadron) and 21 not in final_ids(hadron)


def test_parton_level_showers_stop_at_1_gev_unless_hadronising(tmp_path: Path) -> None:
    card = tmp_path / "card.slha"
    parton = pythia_settings(card, 13.0, "gluino_gluino", 1, GenerationSettings())
    hadron = pythia_settings(
        card, 13.0, "gluino_gluino", 1, GenerationSettings(hadronisation=True)
    )
    defaults = pythia_settings(
        card,
        13.0,
        "gluino_gluino",
        1,
        GenerationSettings(parton_shower_pt_min_gev=None),
    )

    assert "TimeShower:pTmin = 1.0" in parton
    assert "SpaceShower:pTmin = 1.0" in parton
    assert not any("pTmin" in line for line in hadron + defaults)
