"""Tests of the signal-region catalogue: the shipped numbers, loading and validation."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from simulators.catalogue import (
    DEFAULT_CATALOGUE,
    catalogue_from_dict,
    load_catalogue,
)
from simulators.errors import CatalogueError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_REGIONS = SHARED / "data" / "lhc_signal_regions.json"

#: Paper Table 3: name → (energy TeV, number of SRs as printed there).
TABLE_3 = {
    "atlas_1402_7029": (8, 24),
    "atlas_1403_5294": (8, 9),
    "atlas_conf_2013_036": (8, 5),
    "atlas_1308_2631": (8, 6),
    "atlas_1403_4853": (8, 12),
    "atlas_1404_2500": (8, 5),
    "atlas_1405_7875": (8, 15),
    "atlas_1407_0583": (8, 27),
    "atlas_1407_0608": (8, 3),
    "atlas_1502_01518": (8, 9),
    "atlas_1503_03290": (8, 1),
    "atlas_conf_2015_076": (13, 6),
    "atlas_1602_09058": (13, 4),
    "atlas_1605_03814": (13, 7),
    "atlas_conf_2015_082": (13, 1),
    "atlas_1604_07773": (13, 13),
    "atlas_conf_2016_013": (13, 10),
    "atlas_conf_2015_067": (13, 3),
    "cms_pas_sus_15_011": (13, 47),
}

#: Where the reference data hold a different version than Table 3 lists:
#: atlas_1403_5294_v2 (13 SRs) and the journal version of ATLAS-CONF-2015-067 (8 SRs).
SR_COUNT_DIFFERENCES = {"atlas_1403_5294": 13, "atlas_conf_2015_067": 8}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.fixture
def raw() -> dict:
    return json.loads(DEFAULT_CATALOGUE.read_text())


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data))
    return path


def test_all_table_3_analyses_load(catalogue) -> None:
    assert list(catalogue.analyses) == list(TABLE_3)
    assert catalogue.n_regions == 216
    assert catalogue.energies == [8.0, 13.0]
    for name, (energy, n_regions) in TABLE_3.items():
        analysis = catalogue.analyses[name]
        assert analysis.sqrt_s_tev == energy
        assert len(analysis.signal_regions) == SR_COUNT_DIFFERENCES.get(name, n_regions)
        assert analysis.groups == (tuple(analysis.signal_regions),)


def test_energy_split(catalogue) -> None:
    assert len(catalogue.for_energy(8).analyses) == 11
    assert len(catalogue.for_energy(13).analyses) == 8
    assert load_catalogue(energy_tev=13).n_regions == 96


@pytest.mark.skipif(not SHARED_REGIONS.exists(), reason=f"{SHARED_REGIONS} not found")
def test_agrees_number_for_number_with_shared_reference(catalogue) -> None:
    reference = json.loads(SHARED_REGIONS.read_text())["analyses"]
    assert set(reference) == set(catalogue.analyses)
    for name, entry in reference.items():
        ours = catalogue.analyses[name]
        assert ours.luminosity_fb == entry["luminosity_fb"]
        assert ours.sqrt_s_tev == entry["sqrt_s_tev"]
        assert ours.checkmate_name == entry["checkmate_name"]
        assert set(ours.signal_regions) == set(entry["signal_regions"])
        for sr, numbers in entry["signal_regions"].items():
            region = ours.signal_regions[sr]
            assert region.n_obs == numbers["obs"], (name, sr)
            assert region.n_bkg == numbers["bkg"], (name, sr)
            assert region.s95_obs == numbers["S95_obs"], (name, sr)
            assert region.s95_exp == numbers["S95_exp"], (name, sr)
            up = numbers.get("bkg_errp", numbers.get("bkg_err", 0.0))
            down = numbers.get("bkg_errm", numbers.get("bkg_err", 0.0))
            assert (region.bkg_error_up, region.bkg_error_down) == (up, down)
            published = "bkg_err" in numbers or "bkg_errp" in numbers
            assert region.bkg_error_published == published


def test_asymmetric_and_missing_background_errors(catalogue) -> None:
    cms = catalogue.analyses["cms_pas_sus_15_011"].signal_regions["SRA_b0_a.lowMET"]
    assert (cms.bkg_error_up, cms.bkg_error_down, cms.symmetric) == (5.4, 4.8, False)
    ss = catalogue.analyses["atlas_1602_09058"].signal_regions["SR3b"]
    assert (ss.bkg_error_up, ss.bkg_error_published) == (0.0, False)


def test_references_and_aliases(catalogue) -> None:
    assert catalogue.analyses["atlas_1605_03814"].reference == "arXiv:1605.03814"
    assert catalogue.analyses["atlas_conf_2015_067"].reference == "ATLAS-CONF-2015-067"
    assert catalogue.analysis("atlas_1605_04285").name == "atlas_conf_2015_076"
    subset = catalogue.subset(["atlas_1605_09318", "atlas_1604_07773"])
    assert list(subset.analyses) == ["atlas_1604_07773", "atlas_conf_2015_067"]
    loaded = load_catalogue(analyses=["atlas_1605_04285"])
    assert list(loaded.analyses) == ["atlas_conf_2015_076"]


def test_unknown_analysis_is_named(catalogue) -> None:
    with pytest.raises(CatalogueError, match="atlas_9999_0001"):
        catalogue.subset(["atlas_9999_0001"])
    with pytest.raises(CatalogueError, match="atlas_9999_0001"):
        load_catalogue(analyses=["atlas_1605_03814", "atlas_9999_0001"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_obs", -1.0, "n_obs"),
        ("n_bkg", math.nan, "n_bkg"),
        ("s95_exp", "7", "s95_exp"),
        ("bkg_error", -0.5, "bkg_error"),
        ("bkg_error", {"up": 1.0}, "bkg_error"),
    ],
)
def test_bad_numbers_name_analysis_and_region(tmp_path, raw, field, value, message):
    raw["analyses"]["atlas_1605_03814"]["signal_regions"]["4jt"][field] = value
    with pytest.raises(CatalogueError) as info:
        load_catalogue(write(tmp_path, raw))
    assert "atlas_1605_03814" in str(info.value)
    assert "4jt" in str(info.value)
    assert message in str(info.value)


def test_missing_fields_are_named(tmp_path, raw) -> None:
    region = copy.deepcopy(raw)
    del region["analyses"]["atlas_1604_07773"]["signal_regions"]["EM3"]["s95_obs"]
    with pytest.raises(CatalogueError, match=r"atlas_1604_07773.*EM3.*s95_obs"):
        load_catalogue(write(tmp_path, region))
    del raw["analyses"]["atlas_1604_07773"]["luminosity_fb"]
    with pytest.raises(CatalogueError, match=r"atlas_1604_07773.*luminosity_fb"):
        catalogue_from_dict(raw)


def test_unreadable_file(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(CatalogueError, match=r"broken\.json"):
        load_catalogue(path)


def test_groups_must_partition_the_regions(raw) -> None:
    entry = raw["analyses"]["atlas_1605_03814"]
    entry["groups"] = [["2jl", "2jm"], ["2jt", "4jt", "5j", "6jm", "6jt"]]
    groups = catalogue_from_dict(raw).analyses["atlas_1605_03814"].groups
    assert groups == (("2jl", "2jm"), ("2jt", "4jt", "5j", "6jm", "6jt"))
    entry["groups"] = [["2jl", "2jm", "2jx"], ["2jm", "2jt", "4jt", "5j", "6jm"]]
    with pytest.raises(CatalogueError, match=r"atlas_1605_03814.*2jx.*2jm.*6jt"):
        catalogue_from_dict(raw)


def tiny_catalogue() -> dict:
    """Two SRs without background error, so the deviances have closed forms."""
    regions = {
        "A": {
            "n_obs": 12.0,
            "n_bkg": 5.0,
            "bkg_error": None,
            "s95_obs": 9.0,
            "s95_exp": 4.0,
        },
        "B": {
            "n_obs": 2.0,
            "n_bkg": 6.0,
            "bkg_error": None,
            "s95_obs": 3.0,
            "s95_exp": 6.0,
        },
    }
    common = {"luminosity_fb": 3.2, "reference": "test", "description": "test"}
    return {
        "analyses": {
            "one": {"sqrt_s_tev": 13.0, "signal_regions": regions, **common},
            "two": {
                "sqrt_s_tev": 8.0,
                "signal_regions": {"C": {**regions["B"], "s95_exp": 1.0}},
                **common,
            },
        }
    }


def test_zero_signal_chi2_of_a_hand_worked_catalogue() -> None:
    catalogue = catalogue_from_dict(tiny_catalogue())
    # Smallest S95_exp is A in "one": 2 (b − n + n ln(n/b)) with b = 5, n = 12.
    assert catalogue.zero_signal_chi2(13) == pytest.approx(
        2 * (5 - 12 + 12 * math.log(12 / 5))
    )
    assert catalogue.for_energy(8).zero_signal_chi2() == pytest.approx(
        2 * (6 - 2 + 2 * math.log(2 / 6))
    )
    with pytest.raises(CatalogueError, match="mixes energies"):
        catalogue.zero_signal_chi2()


def test_zero_signal_chi2_of_the_shipped_catalogues(catalogue) -> None:
    # Default grouping: one SR per analysis (11 at 8 TeV, 8 at 13 TeV), so far below
    # the paper's ≈40 / ≈54 from 47 / 65 disjoint SRs; each SR adds about 0.7-0.9.
    zero_8 = catalogue.zero_signal_chi2(8)
    zero_13 = catalogue.zero_signal_chi2(13)
    assert 5 < zero_8 < 40
    assert 5 < zero_13 < 54
