"""Tests of the chi-square regions against paper Table 4 and Sect. 3.2."""

from __future__ import annotations

import numpy as np
import pytest

from sampler.errors import SamplerError
from sampler.regions import RARE_REGIONS, REGION_NAMES, ChiSquareRegions

#: Paper Table 4 ranges (chi-square units), typed in from the paper.
TABLE4 = {
    8: {
        "I": [0, 38],
        "zero": [38, 42],
        "II": [42, 70],
        "III": [70, 95],
        "cap": [95, 100],
    },
    13: {
        "I": [0, 53.5],
        "zero": [53.5, 56],
        "II": [56, 70],
        "III": [70, 95],
        "cap": [95, 100],
    },
}


def test_names_and_rare_regions():
    assert REGION_NAMES == ("I", "zero", "II", "III", "cap")
    assert RARE_REGIONS == ("I", "II", "III")


@pytest.mark.parametrize("energy", [8, 13])
def test_paper_regions_are_table4(energy):
    regions = ChiSquareRegions.paper(energy)

    assert regions.as_dict() == {
        k: [float(a), float(b)] for k, (a, b) in TABLE4[energy].items()
    }


@pytest.mark.parametrize(
    ("energy", "chi2", "name"),
    [
        (8, 12.0, "I"),
        (8, 40.0, "zero"),
        (8, 55.0, "II"),
        (8, 80.0, "III"),
        (8, 99.0, "cap"),
        (13, 30.0, "I"),
        (13, 54.5, "zero"),
        (13, 60.0, "II"),
        (13, 94.0, "III"),
        (13, 97.0, "cap"),
        (13, 100.0, "cap"),  # every chi2 is capped at 100
        (13, 130.0, "cap"),  # clipped into the last region
        (13, -1.0, "I"),  # clipped into the first region
    ],
)
def test_classify_inside_regions(energy, chi2, name):
    regions = ChiSquareRegions.paper(energy)

    assert regions.classify(np.array([chi2]))[0] == name
    assert regions.index(np.array([chi2]))[0] == REGION_NAMES.index(name)
    assert regions.is_rare(np.array([chi2]))[0] == (name in RARE_REGIONS)


# Paper Sect. 3.2 closes the ranges on the right: I: 0 < chi2 <= 38,
# II: 42 < chi2 <= 70, III: 70 < chi2 <= 95.
@pytest.mark.parametrize(
    ("chi2", "name"), [(38.0, "I"), (42.0, "zero"), (70.0, "II"), (95.0, "III")]
)
def test_edges_belong_to_the_lower_range_as_in_the_paper(chi2, name):
    assert ChiSquareRegions.paper(8).classify(np.array([chi2]))[0] == name


def test_classify_keeps_shape():
    chi2 = np.array([[10.0, 40.0], [80.0, 99.0]])

    names = ChiSquareRegions.paper(8).classify(chi2)

    assert names.shape == (2, 2)
    assert names.tolist() == [["I", "zero"], ["III", "cap"]]


def test_centred_on_reproduces_the_8tev_window():
    # Paper: the 8 TeV zero-signal peak at about 40 with the window 38-42.
    assert ChiSquareRegions.centred_on(40.0) == ChiSquareRegions.paper(8)


def test_centred_on_refuses_a_window_that_does_not_fit():
    with pytest.raises(SamplerError):
        ChiSquareRegions.centred_on(1.0)
    with pytest.raises(SamplerError):
        ChiSquareRegions.centred_on(69.0)


def test_from_mapping_round_trip_and_gaps():
    regions = ChiSquareRegions.from_mapping(TABLE4[13])

    assert regions == ChiSquareRegions.paper(13)
    broken = dict(TABLE4[13], zero=[54.0, 56.0])
    with pytest.raises(SamplerError, match="zero starts at 54"):
        ChiSquareRegions.from_mapping(broken)


@pytest.mark.parametrize("edges", [(0, 1, 2), (0, 40, 38, 70, 95, 100)])
def test_bad_edges_are_refused(edges):
    with pytest.raises(SamplerError):
        ChiSquareRegions(edges)


def test_unknown_energy_is_refused():
    with pytest.raises(SamplerError, match="7 TeV"):
        ChiSquareRegions.paper(7)
