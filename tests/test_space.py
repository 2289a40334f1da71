"""Tests of the pMSSM parameter spaces against paper Table 1 and the unit-cube map."""

from __future__ import annotations

import numpy as np
import pytest

from sampler.errors import SpaceError
from sampler.space import (
    PMSSM11_NAMES,
    PMSSM19_NAMES,
    ParameterSpace,
    make_space,
    pmssm11,
    pmssm19,
)

#: Paper Table 1, typed in from the paper (GeV; tanb dimensionless).
TABLE1 = {
    "M1": [(-4000, 4000)],
    "M2": [(100, 4000)],
    "M3": [(-4000, -400), (400, 4000)],
    "mQ12": [(300, 5000)],
    "mQ3": [(100, 5000)],
    "mL12": [(100, 3000)],
    "mL3": [(100, 4000)],
    "mA": [(0, 4000)],
    "A": [(-5000, 5000)],
    "mu": [(-5000, -100), (100, 5000)],
    "tanb": [(1, 60)],
}


def test_pmssm11_is_paper_table1():
    space = pmssm11()

    assert space.names == tuple(TABLE1)
    assert space.names == PMSSM11_NAMES
    for name, intervals in TABLE1.items():
        assert space.intervals[name] == tuple(
            (float(a), float(b)) for a, b in intervals
        )


def test_pmssm19_names_and_default_ranges():
    expected = [
        "M1",
        "M2",
        "M3",
        "mL12",
        "mE12",
        "mL3",
        "mE3",
        "mQ12",
        "mU12",
        "mD12",
        "mQ3",
        "mU3",
        "mD3",
        "At",
        "Ab",
        "Atau",
        "mu",
        "mA",
        "tanb",
    ]
    space = pmssm19()

    assert space.names == tuple(expected) == PMSSM19_NAMES
    assert space.dim == 19
    assert space.intervals["M3"] == ((-4000.0, -400.0), (400.0, 4000.0))
    assert space.intervals["mu"] == ((-5000.0, -100.0), (100.0, 5000.0))


def test_make_space_with_ranges_replaces_only_those():
    space = make_space("pmssm19", {"mU3": [(100.0, 2000.0)]})

    assert space.intervals["mU3"] == ((100.0, 2000.0),)
    assert space.intervals["mQ3"] == ((100.0, 5000.0),)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_space("cmssm"), "unknown model"),
        (lambda: pmssm11({"mE12": [(1.0, 2.0)]}), "unknown parameters"),
        (lambda: pmssm11({"M1": [(5.0, 1.0)]}), "empty or inverted"),
        (lambda: pmssm11({"M1": [(1.0, 1.0)]}), "empty or inverted"),
        (lambda: pmssm11({"M1": []}), "no allowed range"),
        (lambda: pmssm11({"M1": [(0.0, 2.0), (1.0, 3.0)]}), "overlap"),
    ],
)
def test_ill_defined_spaces_are_refused(call, match):
    with pytest.raises(SpaceError, match=match):
        call()


@pytest.mark.parametrize(
    ("u", "m3"),
    [
        # M3 lays [-4000, -400] and [400, 4000] end to end: 7200 GeV in total.
        (0.0, -4000.0),
        (0.25, -2200.0),
        (0.5, -400.0),
        (0.75, 2200.0),
        (1.0, 4000.0),
    ],
)
def test_from_unit_skips_the_m3_gap(u, m3):
    space = pmssm11()
    U = np.full((1, space.dim), 0.5)
    U[0, space.names.index("M3")] = u

    X = space.from_unit(U)

    assert X[0, space.names.index("M3")] == pytest.approx(m3)
    assert X[0, space.names.index("tanb")] == pytest.approx(30.5)


def test_unit_round_trip_from_cube(rng):
    space = pmssm11()
    U = rng.random((10_000, space.dim))

    X = space.from_unit(U)

    assert space.contains(X).all()
    np.testing.assert_allclose(space.to_unit(X), U, atol=1e-12)


@pytest.mark.parametrize("factory", [pmssm11, pmssm19])
def test_unit_round_trip_from_space(factory, rng):
    space = factory()
    X = space.from_unit(rng.random((5_000, space.dim)))

    U = space.to_unit(X)

    assert ((U >= 0) & (U <= 1)).all()
    np.testing.assert_allclose(space.from_unit(U), X, rtol=1e-12, atol=1e-9)


def test_from_unit_refuses_outside_cube():
    space = pmssm11()

    with pytest.raises(SpaceError):
        space.from_unit(np.full((1, space.dim), 1.5))


def test_contains_excludes_gaps_and_outside():
    space = pmssm11()
    inside = space.from_unit(np.full((1, space.dim), 0.3))[0]
    points = np.tile(inside, (4, 1))
    points[1, space.names.index("M3")] = 0.0  # in the gap
    points[2, space.names.index("mu")] = -99.0  # in the gap
    points[3, space.names.index("tanb")] = 61.0  # beyond the range

    assert space.contains(points).tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("M3", 0.0, "M3 = 0.0"),
        ("mu", 50.0, "mu = 50.0"),
        ("mQ12", 299.0, "mQ12 = 299.0"),
    ],
)
def test_check_names_parameter_and_value(name, value, shown):
    space = pmssm11()
    points = space.from_unit(np.full((3, space.dim), 0.6))
    points[2, space.names.index(name)] = value

    with pytest.raises(SpaceError) as info:
        space.check(points)

    assert "point 2" in str(info.value)
    assert shown in str(info.value)


def test_check_refuses_wrong_shape():
    with pytest.raises(SpaceError, match=r"shape \(n, 11\)"):
        pmssm11().check(np.zeros((2, 19)))


def test_points_and_arrays_convert_both_ways():
    space = pmssm11()
    X = space.from_unit(np.full((2, space.dim), 0.4))

    points = space.array_to_points(X)

    assert list(points[0]) == list(PMSSM11_NAMES)
    np.testing.assert_array_equal(space.points_to_array(points), X)
    with pytest.raises(SpaceError, match="missing parameters"):
        space.points_to_array([{"M1": 1.0}])


def test_dict_round_trip_keeps_gaps():
    space = pmssm11({"M1": [(-100.0, 100.0)]})

    again = ParameterSpace.from_dict(space.to_dict())

    assert again == space
    assert again.intervals["mu"] == ((-5000.0, -100.0), (100.0, 5000.0))
