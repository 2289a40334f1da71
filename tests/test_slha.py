"""SLHA reading of SPheno output and writing of cards for Pythia 8."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pyslha
import pytest

from simulators.errors import SLHAError
from simulators.slha import read_decays, read_spectrum, read_spheno_info, write_card
from simulators.spectrum import compute_spectrum
from tests.spheno_fixtures import fixtures_dir, point


@pytest.fixture
def light_gluino_spc() -> Path:
    return fixtures_dir() / "light_gluino" / "SPheno.spc"


def test_read_spectrum_keeps_slha_signs_and_blocks(light_gluino_spc: Path) -> None:
    s = read_spectrum(light_gluino_spc)
    # Values copied from the file by eye.
    assert s.masses[1000025] == pytest.approx(-1.51473565e03)
    assert s.masses[1000021] == pytest.approx(1.35102734e03)
    assert s.N[0, 0] == pytest.approx(9.99484467e-01)
    assert s.N[3, 3] == pytest.approx(-7.06286520e-01)
    assert s.U[0, 0] == pytest.approx(-9.95966583e-01)
    assert s.V[1, 0] == pytest.approx(4.07788920e-02)
    assert s.stop_mix[0, 1] == pytest.approx(7.09636957e-01)
    assert s.sbottom_mix[1, 0] == pytest.approx(-6.95866782e-01)
    assert s.stau_mix[0, 0] == pytest.approx(6.91766127e-01)
    assert s.alpha == pytest.approx(-5.01924540e-02)
    assert (s.mu, s.tan_beta) == (1500.0, 20.0)
    assert s.couplings["g3"] == pytest.approx(1.04498058)
    assert s.couplings["yt"] == pytest.approx(8.50587950e-01)
    assert s.couplings["v"] == pytest.approx(2.44584495e02)
    assert s.source == "spheno" and s.tachyons == []


def test_read_spectrum_fills_low_energy_and_parameters(light_gluino_spc: Path) -> None:
    s = read_spectrum(light_gluino_spc)
    assert s.low_energy["BR(b->s gamma)"] == pytest.approx(3.16666607e-04)
    assert s.low_energy["BR(Bs->mu mu)"] == pytest.approx(3.00614935e-09)
    assert s.low_energy["BR(Bu->tau nu)"] == pytest.approx(9.64750465e-05)
    assert s.low_energy["DeltaM_Bs"] == pytest.approx(1.93488159e01)
    assert s.low_energy["m_W"] == pytest.approx(8.03551756e01)
    assert s.parameters["mQ3"] == 2000.0 and s.parameters["At"] == -3000.0
    assert s.parameters["tanb"] == 20.0


def test_mixing_matrices_are_orthogonal(light_gluino_spc: Path) -> None:
    s = read_spectrum(light_gluino_spc)
    for matrix in (s.N, s.U, s.V, s.stop_mix, s.sbottom_mix, s.stau_mix):
        assert np.allclose(matrix @ matrix.T, np.eye(len(matrix)), atol=1e-6)


def test_read_decays(light_gluino_spc: Path) -> None:
    decays = read_decays(light_gluino_spc)
    gluino = decays[1000021]
    assert gluino.width == pytest.approx(3.72181613e-03)
    assert (pytest.approx(1.24214288e-01), (1000024, 5, -6)) == gluino.channels[0]
    # SPheno lists ratios above 1e-4 only, so the sum falls short of 1 by less.
    for pdg, decay in decays.items():
        if decay.channels:
            total = sum(br for br, _ in decay.channels)
            assert total == pytest.approx(1.0, abs=2e-3), pdg
    assert decays[23].channels == [] and decays[23].width == pytest.approx(2.4952)


def test_failed_run_is_reported_by_spinfo() -> None:
    path = fixtures_dir() / "stau_lsp" / "SPheno.spc"
    info = read_spheno_info(path)
    assert info[1] == ["SPheno"] and 4 in info
    with pytest.raises(SLHAError, match="stau_lsp"):
        read_spectrum(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SLHAError, match=r"nowhere\.spc"):
        read_spectrum(tmp_path / "nowhere.spc")


@pytest.mark.parametrize("block", ["NMIX", "ALPHA", "MASS", "STAUMIX"])
def test_missing_block_names_file_and_block(
    tmp_path: Path, light_gluino_spc: Path, block: str
) -> None:
    lines = light_gluino_spc.read_text().splitlines()
    kept, skipping = [], False
    for line in lines:
        if line.upper().startswith(("BLOCK", "DECAY")):
            skipping = line.split()[1].upper() == block
        if not skipping:
            kept.append(line)
    path = tmp_path / "cut.spc"
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(SLHAError, match=rf"cut.spc.*{block}"):
        read_spectrum(path)


def test_written_card_round_trips(tmp_path: Path, light_gluino_spc: Path) -> None:
    built = compute_spectrum(point("light_gluino"), "pmssm11")
    decays = read_decays(light_gluino_spc)
    card = write_card(tmp_path / "card.slha", built, decays)
    doc = pyslha.read(str(card))
    for block in ("MODSEL", "SMINPUTS", "MINPAR", "EXTPAR", "MSOFT", "GAUGE", "YU",
                  "HMIX", "MASS", "ALPHA", "NMIX", "UMIX", "VMIX", "STOPMIX",
                  "SBOTMIX", "STAUMIX", "AU"):  # fmt: skip
        assert block in doc.blocks, block
    assert doc.blocks["EXTPAR"][0] == 1000.0
    assert doc.blocks["EXTPAR"][43] == 2000.0  # M_Q3 as a mass, not a square
    assert doc.blocks["EXTPAR"][11] == -3000.0
    assert doc.blocks["MSOFT"][41] == 2500.0
    assert doc.blocks["MASS"][1000025] == pytest.approx(built.masses[1000025])
    assert doc.blocks["MASS"][1000025] < 0.0
    assert doc.decays[1000021].totalwidth == pytest.approx(3.72181613e-03)
    again = read_spectrum(card)
    assert again.source == "builtin"
    assert np.allclose(again.N, built.N) and again.alpha == pytest.approx(built.alpha)
    assert again.parameters["mQ12"] == 2500.0


def test_card_refuses_non_finite_numbers(tmp_path: Path) -> None:
    built = compute_spectrum(point("light_gluino"), "pmssm11")
    built.masses[1000022] = math.nan
    with pytest.raises(SLHAError, match="MASS"):
        write_card(tmp_path / "bad.slha", built, {})


def _pythia_problems(
    card: Path, workdir: Path, capfd: pytest.CaptureFixture[str]
) -> str:
    """Initialise Pythia 8 with SUSY:all on the card; return its log."""
    pythia8mc = pytest.importorskip("pythia8mc")
    pythia = pythia8mc.Pythia("", False)
    for setting in (
        "SUSY:all = on",
        f"SLHA:file = {card}",
        "Beams:eCM = 13000.",
        "Init:showProcesses = off",
        "Init:showMultipartonInteractions = off",
        "Init:showChangedSettings = off",
        "Init:showChangedParticleData = off",
        "Next:numberCount = 0",
        "PartonLevel:all = off",
        "HadronLevel:all = off",
    ):
        assert pythia.readString(setting), setting
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        assert pythia.init()
    finally:
        os.chdir(cwd)
    return capfd.readouterr().out


def _problems(log: str) -> list[str]:
    """Errors, aborts, and warnings about the card, its decays or channels.

    Left out: Pythia's "PhaseSpace::trialKin123: negative cross section" warning
    for q g -> ~b_2bar gluino, which SPheno's own SPheno.spc of light_stop gives as
    well (a sampling artefact of Pythia's cross-section search, not a card problem).
    """
    bad = ("PYTHIA Error", "PYTHIA Abort", "SLHA", "channel", "DECAY", "width")
    lines = [line for line in log.splitlines() if "PYTHIA" in line]
    return [
        line
        for line in lines
        if any(b in line for b in bad)
        and ("Error" in line or "Warning" in line or "Abort" in line)
    ]


def test_pythia_initialises_with_spheno_decays(
    tmp_path: Path, light_gluino_spc: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    built = compute_spectrum(point("light_gluino"), "pmssm11")
    card = write_card(tmp_path / "card.slha", built, read_decays(light_gluino_spc))
    log = _pythia_problems(card, tmp_path, capfd)
    assert _problems(log) == []
    assert "importing DECAY tables" in log


@pytest.mark.parametrize("name", ["light_gluino", "light_stop", "negative_signs"])
def test_pythia_initialises_with_builtin_decays(
    tmp_path: Path, name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    decays = pytest.importorskip("simulators.decays")
    built = compute_spectrum(point(name), "pmssm11")
    card = write_card(tmp_path / "card.slha", built, decays.compute_decays(built))
    log = _pythia_problems(card, tmp_path, capfd)
    assert _problems(log) == []
    assert "importing DECAY tables" in log
