"""The SPheno adapter against recorded SPheno 4.0.5 runs, through a real subprocess.

Every run goes through ``subprocess.run`` of an executable: the replaying double
``tests/data/fake_spheno.py`` always, and a real SPheno binary as well when
``$SCYNET_SPHENO`` names one.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pyslha
import pytest

from simulators.backends import make_simulator
from simulators.errors import SimulatorConfigError
from simulators.spheno import SPHENO_ENV, SPhenoSimulator, leshouches_input, run_spheno
from tests.spheno_fixtures import (
    FAKE_SPHENO,
    all_names,
    fixtures_dir,
    point,
    spheno_masses,
)

#: Outcome of each recorded run: status and a phrase of the reason.
OUTCOMES = {
    "light_gluino": ("ok", ""),
    "compressed_gluino": ("ok", ""),
    "light_stop": ("ok", ""),
    "negative_signs": ("ok", ""),
    "light_electroweakinos": ("ok", ""),
    "decoupled": ("rejected", "the LSP is ~nu_mu"),
    "stau_lsp_valid": ("rejected", "the LSP is ~tau_1"),
    "light_chargino": ("rejected", "m(~chi_1+) = 59.8 GeV"),
    "light_higgs": ("rejected", "m(h0) = 72.6 GeV"),
    "tachyonic_stop": ("failed", "exit code 99): tachyonic state"),
    "stau_lsp": ("failed", "exit code 99): tachyonic state"),
    "large_mixing": ("failed", "exit code 99): loop correction above 100 %"),
}

_BINARIES = [pytest.param(str(FAKE_SPHENO), id="fake")]
if os.environ.get(SPHENO_ENV):
    _BINARIES.append(pytest.param(os.environ[SPHENO_ENV], id="real"))


@pytest.fixture(params=_BINARIES)
def binary(request: pytest.FixtureRequest) -> str:
    fixtures_dir()
    return request.param


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> str:
    fixtures_dir()
    monkeypatch.delenv("FAKE_SPHENO_FAULT", raising=False)
    return str(FAKE_SPHENO)


def _entries(text: str) -> dict[tuple[str, int], float]:
    """(block, index) -> value of a LesHouches.in, comments dropped."""
    entries, block = {}, ""
    for line in text.splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        if fields[0].lower() == "block":
            block = fields[1].upper()
        else:
            entries[(block, int(fields[0]))] = float(fields[1])
    return entries


@pytest.mark.parametrize("name", all_names())
def test_input_card_matches_the_recorded_one(name: str) -> None:
    recorded = (fixtures_dir() / name / "LesHouches.in").read_text()
    assert _entries(leshouches_input(point(name), "pmssm11")) == _entries(recorded)


def test_pmssm19_card_has_every_parameter_as_a_mass() -> None:
    p19 = {
        "M1": 1.0, "M2": 2.0, "M3": 3.0, "mL12": 31.0, "mE12": 34.0, "mL3": 33.0,
        "mE3": 36.0, "mQ12": 41.0, "mU12": 44.0, "mD12": 47.0, "mQ3": 43.0,
        "mU3": 46.0, "mD3": 49.0, "At": 11.0, "Ab": 12.0, "Atau": 13.0, "mu": 23.0,
        "mA": 26.0, "tanb": 25.0,
    }  # fmt: skip
    entries = _entries(leshouches_input(p19, "pmssm19"))
    extpar = {k: v for (block, k), v in entries.items() if block == "EXTPAR"}
    expected = {int(v): v for v in p19.values()}
    expected.update({32: 31.0, 35: 34.0, 42: 41.0, 45: 44.0, 48: 47.0, 0: 1000.0})
    assert extpar == expected
    assert entries[("MINPAR", 3)] == 25.0 and entries[("MODSEL", 1)] == 0
    assert entries[("SPHENOINPUT", 80)] == 1 and entries[("SPHENOINPUT", 2)] == 1
    assert entries[("SPHENOINPUT", 11)] == 1


@pytest.mark.parametrize("name", all_names())
def test_recorded_outcomes(binary: str, name: str, tmp_path: Path) -> None:
    sim = SPhenoSimulator(spheno_binary=binary)
    result = sim.simulate(point(name), seed=7, workdir=tmp_path)
    status, phrase = OUTCOMES[name]
    assert result.status == status, result.reason
    assert phrase in result.reason
    assert result.simulator == "spheno"
    if (fixtures_dir() / name / "SPheno.spc").read_text().count("Block MASS"):
        reference = spheno_masses(name)
        assert result.masses[1000021] == pytest.approx(reference[1000021], rel=1e-3)
        assert result.masses[1000022] == pytest.approx(reference[1000022], rel=1e-3)
        assert result.version == "v4.0.5" or binary != str(FAKE_SPHENO)


def test_run_spheno_hands_over_spectrum_and_card(fake: str, tmp_path: Path) -> None:
    spectrum, outcome, spc = run_spheno(
        point("light_stop"), "pmssm11", {"spheno_binary": fake}, tmp_path
    )
    assert outcome is None and spectrum is not None
    assert spc == tmp_path / "spheno" / "SPheno.spc"
    assert spectrum.parameters == point("light_stop")
    assert spectrum.low_energy["BR(b->s gamma)"] == pytest.approx(3.1464989e-04)
    assert pyslha.read(str(spc)).decays[1000021].totalwidth > 0


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        ("crash", "crashed with exit code 139"),
        ("exit99", "exit code 99"),
        ("nospc", "wrote no SPheno.spc"),
        ("garbage", "SPheno.spc unreadable"),
    ],
)
def test_faults_give_failed_results(
    fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, phrase: str
) -> None:
    monkeypatch.setenv("FAKE_SPHENO_FAULT", fault)
    result = SPhenoSimulator(spheno_binary=fake).simulate(
        point("light_gluino"), seed=0, workdir=tmp_path
    )
    assert result.status == "failed"
    assert phrase in result.reason
    assert "stderr_tail" in result.extra


def test_timeout_gives_a_failed_result(
    fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SPHENO_FAULT", "sleep")
    sim = SPhenoSimulator(spheno_binary=fake, timeout_s=1.0)
    result = sim.simulate(point("light_gluino"), seed=0, workdir=tmp_path)
    assert result.status == "failed"
    assert "timed out after 1 s" in result.reason


def test_unrecorded_point_fails_with_the_exit_code(fake: str, tmp_path: Path) -> None:
    p = dict(point("light_gluino"), M1=333.0)
    result = SPhenoSimulator(spheno_binary=fake).simulate(p, seed=0, workdir=tmp_path)
    assert result.status == "failed" and "exit code 3" in result.reason
    assert "no recorded run" in result.extra["stderr_tail"]


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("fault", ["", "crash", "garbage", "nospc"])
def test_nothing_is_written_outside_the_scratch_directory(
    fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    monkeypatch.setenv("FAKE_SPHENO_FAULT", fault)
    job, caller = tmp_path / "job", tmp_path / "caller"
    job.mkdir()
    caller.mkdir()
    monkeypatch.chdir(caller)
    (tmp_path / "neighbour.txt").write_text("untouched")
    before = _tree(tmp_path)
    SPhenoSimulator(spheno_binary=fake).simulate(
        point("light_gluino"), seed=0, workdir=job
    )
    new = _tree(tmp_path) - before
    assert new and all(p.parts[:2] == ("job", "spheno") for p in new)
    assert list(caller.iterdir()) == []
    assert (tmp_path / "neighbour.txt").read_text() == "untouched"


def test_check_reports_a_missing_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SPHENO_ENV, raising=False)
    with pytest.raises(SimulatorConfigError, match="no SPheno binary configured"):
        SPhenoSimulator().check()
    with pytest.raises(SimulatorConfigError, match="not found"):
        SPhenoSimulator(spheno_binary=str(tmp_path / "SPheno")).check()
    with pytest.raises(SimulatorConfigError, match="unknown model"):
        SPhenoSimulator(spheno_binary=str(FAKE_SPHENO), model="nmssm").check()


def test_missing_binary_at_run_time_is_a_failed_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SPHENO_ENV, raising=False)
    result = SPhenoSimulator(spheno_binary=str(tmp_path / "gone")).simulate(
        point("light_gluino"), seed=0, workdir=tmp_path
    )
    assert result.status == "failed" and "not found" in result.reason


def test_environment_variable_names_the_binary(
    fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SPHENO_ENV, fake)
    sim = make_simulator("spheno", {"timeout_s": 30})
    sim.check()
    clone = pickle.loads(pickle.dumps(sim))
    assert (
        clone.simulate(point("light_gluino"), seed=0, workdir=tmp_path).status == "ok"
    )
    assert sim.describe()["n_features"] == 56


@pytest.mark.parametrize("name", ["tachyonic_stop", "stau_lsp", "large_mixing"])
def test_physics_stop_is_failed_but_not_worth_retrying(
    fake: str, name: str, tmp_path: Path
) -> None:
    result = SPhenoSimulator(spheno_binary=fake).simulate(
        point(name), seed=7, workdir=tmp_path
    )
    assert result.status == "failed"
    assert result.extra["exit_code"] == 99
    assert result.extra["retryable"] is False
