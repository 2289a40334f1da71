"""The CheckMATE 2 backend against recorded result files, through a real subprocess.

Every run goes through ``subprocess.run`` of an executable: the double
``tests/data/fake_checkmate.py`` (which writes the recorded files of
``shared/fixtures/checkmate/gluino_point``) always, and a real CheckMATE as well when
``$SCYNET_CHECKMATE`` names one (then only properties that hold for any run are
checked). SPheno is the replaying double of the SPheno tests.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from simulators.backends import make_simulator
from simulators.catalogue import load_catalogue
from simulators.checkmate import (
    CHECKMATE_ENV,
    CheckMateOutputError,
    CheckMateSimulator,
    Process,
    read_total_results,
    signal_from_results,
    write_run_card,
)
from simulators.errors import SimulatorConfigError
from simulators.likelihood import chi2_signal_region
from tests.spheno_fixtures import FAKE_SPHENO, fixtures_dir, point

FAKE_CHECKMATE = Path(__file__).resolve().parent / "data" / "fake_checkmate.py"
RECORDED = (
    Path(__file__).resolve().parents[1].parent
    / "shared/fixtures/checkmate/gluino_point"
)
#: The analyses present in the recorded run, in catalogue (Table 3) order.
RECORDED_ANALYSES = ["atlas_1605_03814", "atlas_1604_07773"]

_BINARIES = [pytest.param(str(FAKE_CHECKMATE), id="fake")]
if os.environ.get(CHECKMATE_ENV):
    _BINARIES.append(pytest.param(os.environ[CHECKMATE_ENV], id="real"))
else:
    _BINARIES.append(
        pytest.param(
            "",
            id="real",
            marks=pytest.mark.skip(
                reason=f"${CHECKMATE_ENV} does not name a CheckMATE 2"
            ),
        )
    )


@pytest.fixture(autouse=True)
def recorded_run(monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (RECORDED / "evaluation" / "total_results.txt").is_file():
        pytest.skip(f"CheckMATE fixture not found at {RECORDED}")
    fixtures_dir()
    monkeypatch.delenv("FAKE_CHECKMATE_FAULT", raising=False)
    return RECORDED


def simulator(binary: str, **settings) -> CheckMateSimulator:
    settings.setdefault("analyses", {13: RECORDED_ANALYSES})
    return CheckMateSimulator(
        checkmate_binary=binary, spheno_binary=str(FAKE_SPHENO), **settings
    )


def expected_chi2() -> tuple[float, dict[str, list[str]]]:
    """Worked from the recorded numbers: largest s/S95_exp per analysis.

    atlas_1605_03814: 4jt (9.4/6.3 = 1.49 beats 6jm 7.7/6.6 = 1.17);
    atlas_1604_07773: IM7 (4.4/48 = 0.092 beats IM6 4.1/84 = 0.049).
    """
    q_4jt = chi2_signal_region(9.4, 1.3, 4.6, 1.1, 7.0)
    q_im7 = chi2_signal_region(4.4, 0.4, 167.0, 20.0, 185.0)
    chosen = {"atlas_1604_07773": ["IM7"], "atlas_1605_03814": ["4jt"]}
    return float(q_4jt + q_im7), chosen


def test_run_card_has_parameters_and_processes(tmp_path: Path) -> None:
    card = write_run_card(
        tmp_path / "run.dat",
        name="point",
        analyses=["atlas_1605_03814", "atlas_1604_07773"],
        slha_file=tmp_path / "spectrum.slha",
        output_dir=tmp_path / "out",
        seed=42,
        processes=[Process("gluino_pair", "p p > go go", 5000)],
    )
    text = card.read_text()
    assert "[Parameters]\nName: point\n" in text
    assert "Analyses: atlas_1605_03814, atlas_1604_07773\n" in text
    assert f"SLHAFile: {tmp_path / 'spectrum.slha'}\n" in text
    assert "RandomSeed: 42\n" in text
    assert "[gluino_pair]\nPythia8Process: p p > go go\nMaxEvents: 5000\n" in text


def test_results_are_read_by_header(recorded_run: Path) -> None:
    rows = read_total_results(recorded_run / "evaluation" / "total_results.txt")
    assert len(rows) == 20
    by_region = {(r["analysis"], r["sr"]): r for r in rows}
    row = by_region[("atlas_1605_03814", "4jt")]
    assert (row["signal"], row["signal_error"], row["n_obs"], row["n_bkg"]) == (
        9.4, 1.3, 7.0, 4.6
    )  # fmt: skip


def test_checkmate_names_map_to_catalogue_names() -> None:
    catalogue = load_catalogue(energy_tev=8, analyses=["atlas_1403_5294"])
    rows = [
        {
            "analysis": "atlas_1403_5294_v2",
            "sr": "Zjets",
            "signal": 2.0,
            "signal_error": 0.5,
        }
    ]
    signal = signal_from_results(rows, catalogue)
    assert signal == {"atlas_1403_5294": {"Zjets": (2.0, 0.5)}}
    with pytest.raises(CheckMateOutputError, match="atlas_1403_5294"):
        signal_from_results([], catalogue)


@pytest.mark.parametrize("binary", _BINARIES)
def test_light_gluino_point_gives_labels(binary: str, tmp_path: Path) -> None:
    result = simulator(binary).simulate(point("light_gluino"), seed=7, workdir=tmp_path)

    assert result.status == "ok", result.reason
    assert result.simulator == "checkmate"
    assert 0 <= result.chi2[13] <= 100
    assert set(result.chi2_analysis[13]) == set(RECORDED_ANALYSES)
    assert result.masses[1000021] > 0
    if binary == str(FAKE_CHECKMATE):
        total, chosen = expected_chi2()
        assert result.chi2[13] == pytest.approx(total)
        assert result.chosen_regions[13] == chosen
        assert result.signal[13]["atlas_1605_03814/4jt"] == [9.4, 1.3]


def test_card_of_a_light_neutralino_point_has_electroweak_processes(tmp_path: Path):
    simulator(str(FAKE_CHECKMATE)).simulate(
        point("light_gluino"), seed=7, workdir=tmp_path
    )
    card = (tmp_path / "checkmate_13TeV" / "run.dat").read_text()
    assert "Pythia8Process: p p > go go" in card
    assert "Pythia8Process: p p > n2 x1+" in card  # m(chi_1^0) ~ 300 GeV < 500 GeV
    assert "RandomSeed: 7" in card
    assert "Analyses: atlas_1605_03814, atlas_1604_07773" in card


def test_renamed_columns_give_the_same_labels(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_CHECKMATE_FAULT", "renamed")
    result = simulator(str(FAKE_CHECKMATE)).simulate(
        point("light_gluino"), seed=1, workdir=tmp_path
    )
    assert result.status == "ok", result.reason
    assert result.chi2[13] == pytest.approx(expected_chi2()[0])


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        ("crash", "exited with code 1"),
        ("noresults", "cannot read"),
        ("garbage", "total_results.txt"),
        ("headeronly", "no header and rows"),
        ("badnumber", "is not a number"),
        ("dropanalysis", "no CheckMATE results for analyses ['atlas_1605_03814']"),
    ],
)
def test_faults_give_failed_results(monkeypatch, tmp_path, fault, phrase) -> None:
    monkeypatch.setenv("FAKE_CHECKMATE_FAULT", fault)
    result = simulator(str(FAKE_CHECKMATE)).simulate(
        point("light_gluino"), seed=1, workdir=tmp_path
    )
    assert result.status == "failed"
    assert phrase in result.reason
    assert "13 TeV" in result.reason
    assert result.masses  # the spectrum is kept with the failure


def test_timeout_gives_a_failed_result(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_CHECKMATE_FAULT", "sleep")
    sim = simulator(str(FAKE_CHECKMATE), timeout_s=1.0)
    result = sim.simulate(point("light_gluino"), seed=1, workdir=tmp_path)
    assert result.status == "failed"
    assert "timed out after 1 s" in result.reason


def test_spheno_rejection_passes_through(tmp_path: Path) -> None:
    result = simulator(str(FAKE_CHECKMATE)).simulate(
        point("decoupled"), seed=1, workdir=tmp_path
    )
    assert result.status == "rejected"
    assert "LSP" in result.reason
    assert not (tmp_path / "checkmate_13TeV").exists()


def test_missing_executable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CHECKMATE_ENV, raising=False)
    sim = CheckMateSimulator(spheno_binary=str(FAKE_SPHENO))
    with pytest.raises(SimulatorConfigError, match=CHECKMATE_ENV):
        sim.check()
    result = sim.simulate(point("light_gluino"), seed=1, workdir=tmp_path)
    assert result.status == "failed"
    assert "executable not found" in result.reason


def test_nothing_is_written_outside_the_scratch_directory(monkeypatch, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    simulator(str(FAKE_CHECKMATE)).simulate(
        point("light_gluino"), seed=1, workdir=tmp_path / "job"
    )
    assert list(outside.iterdir()) == []


def test_registry_settings_describe_and_pickle(tmp_path: Path) -> None:
    sim = make_simulator(
        "checkmate",
        {
            "checkmate_binary": str(FAKE_CHECKMATE),
            "spheno_binary": str(FAKE_SPHENO),
            "energies_tev": [8, 13],
            "analyses": {"13": RECORDED_ANALYSES},
        },
    )
    sim.check()
    described = sim.describe()
    assert described["energies"] == [8, 13]
    assert described["analyses"][13] == RECORDED_ANALYSES
    assert len(described["analyses"][8]) == 11
    assert pickle.loads(pickle.dumps(sim)).analyses == sim.analyses


def test_bad_settings_are_reported() -> None:
    with pytest.raises(SimulatorConfigError, match=r"7\.0 TeV"):
        simulator(str(FAKE_CHECKMATE), energies_tev=[7.0]).check()
    with pytest.raises(SimulatorConfigError, match="atlas_0000_0000"):
        simulator(str(FAKE_CHECKMATE), analyses={13: ["atlas_0000_0000"]}).check()
