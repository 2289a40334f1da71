"""Tests of the priors: gaps respected, and the Gaussian prior of paper Sect. 2.

The paper (Sect. 2 and footnote 1) puts the maximum of the Gaussian at one fourth
and its standard deviation at one half of the parameter range, mirrored around zero
for ranges that allow negative values. Here the range of the magnitude ``|x|`` is
``[a, b]``, the maximum sits at ``a + (b - a) / 4`` and the width is ``(b - a) / 2``.
The expected distributions below are built with ``scipy.stats.truncnorm`` from
those numbers typed in by hand, and the samples are fitted by maximum likelihood.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from sampler.errors import SpaceError
from sampler.priors import GaussianPrior, UniformPrior, make_prior
from sampler.space import pmssm11, pmssm19

N = 100_000

#: Per parameter: magnitude range [a, b] (GeV), expected mode, width, mirrored.
#: Worked out by hand from paper Table 1.
EXPECTED = {
    "M1": (0.0, 4000.0, 1000.0, 2000.0, True),
    "M2": (100.0, 4000.0, 1075.0, 1950.0, False),
    "M3": (400.0, 4000.0, 1300.0, 1800.0, True),
    "mQ12": (300.0, 5000.0, 1475.0, 2350.0, False),
    "mA": (0.0, 4000.0, 1000.0, 2000.0, False),
    "A": (0.0, 5000.0, 1250.0, 2500.0, True),
    "mu": (100.0, 5000.0, 1325.0, 2450.0, True),
    "tanb": (1.0, 60.0, 15.75, 29.5, False),
}


@pytest.fixture(scope="module")
def gaussian_samples():
    space = pmssm11()
    return space, GaussianPrior(space).sample(N, np.random.default_rng(7))


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_samples_avoid_the_gaps(kind):
    space = pmssm11()

    X = make_prior(kind, space).sample(N, np.random.default_rng(1))

    assert X.shape == (N, 11)
    assert space.contains(X).all()
    assert np.abs(X[:, space.names.index("M3")]).min() >= 400.0
    assert np.abs(X[:, space.names.index("mu")]).min() >= 100.0


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_sampling_is_seeded(kind):
    prior = make_prior(kind, pmssm19())

    a = prior.sample(100, np.random.default_rng(3))
    b = prior.sample(100, np.random.default_rng(3))

    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, prior.sample(100, np.random.default_rng(4)))


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_sample_unit_lies_in_cube(kind):
    space = pmssm11()

    U = make_prior(kind, space).sample_unit(1000, np.random.default_rng(2))

    assert U.shape == (1000, 11)
    assert ((U >= 0) & (U <= 1)).all()
    assert space.contains(space.from_unit(U)).all()


def test_uniform_prior_is_flat_across_the_mu_gap():
    space = pmssm11()
    mu = UniformPrior(space).sample(N, np.random.default_rng(5))[
        :, space.names.index("mu")
    ]

    # Both sides are 4900 GeV long: half the points on each, flat in |mu|.
    assert np.mean(mu < 0) == pytest.approx(0.5, abs=0.01)
    result = stats.kstest(np.abs(mu), stats.uniform(loc=100.0, scale=4900.0).cdf)
    assert result.pvalue > 1e-3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gaussian_magnitude_follows_truncated_normal(gaussian_samples, name):
    space, X = gaussian_samples
    a, b, mode, width, _ = EXPECTED[name]
    magnitude = np.abs(X[:, space.names.index(name)])
    expected = stats.truncnorm(
        (a - mode) / width, (b - mode) / width, loc=mode, scale=width
    )

    result = stats.kstest(magnitude, expected.cdf)

    assert result.pvalue > 1e-3
    assert magnitude.mean() == pytest.approx(expected.mean(), rel=0.01)
    assert magnitude.std() == pytest.approx(expected.std(), rel=0.01)


@pytest.mark.parametrize("name", ["M1", "M3", "tanb"])
def test_gaussian_fitted_mode_and_width_match_paper(gaussian_samples, name):
    space, X = gaussian_samples
    a, b, mode, width, _ = EXPECTED[name]
    magnitude = np.abs(X[:, space.names.index(name)])

    fit_mode, fit_width = _fit_truncated_normal(
        magnitude, a, b, x0=(a + (b - a) / 2, b - a)
    )

    assert fit_mode == pytest.approx(mode, abs=0.02 * (b - a))
    assert fit_width == pytest.approx(width, rel=0.05)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gaussian_sign_is_mirrored_for_signed_ranges(gaussian_samples, name):
    space, X = gaussian_samples
    mirrored = EXPECTED[name][4]
    negative = np.mean(X[:, space.names.index(name)] < 0)

    if mirrored:
        assert negative == pytest.approx(0.5, abs=0.01)
    else:
        assert negative == 0.0


def test_gaussian_mode_and_width_reported():
    space = pmssm11()

    mode, width = GaussianPrior(space).mode_and_width()

    for name, (_, _, m, w, _) in EXPECTED.items():
        j = space.names.index(name)
        assert (mode[j], width[j]) == pytest.approx((m, w))


def test_unknown_prior_is_refused():
    with pytest.raises(SpaceError, match="unknown prior"):
        make_prior("jeffreys", pmssm11())


def _fit_truncated_normal(x, a, b, x0):
    """Maximum-likelihood (mode, width) of a normal truncated to [a, b]."""

    def nll(theta):
        mode, width = theta
        if width <= 0:
            return np.inf
        z = (x - mode) / width
        mass = special.ndtr((b - mode) / width) - special.ndtr((a - mode) / width)
        return np.sum(0.5 * z**2) + x.size * np.log(width * mass)

    fit = optimize.minimize(
        nll, x0, method="Nelder-Mead", options={"xatol": 1e-3 * (b - a)}
    )
    return fit.x
