"""Tests of the signal-region chi-square against pyhf, closed forms and its invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import lambertw

from simulators.likelihood import chi2_background_only, chi2_signal_region

pyhf = pytest.importorskip("pyhf")

#: Nuisance bounds for the pyhf fits: wide enough that no fit below ends on them
#: (pyhf suggests ±5; the profile reaches ν_S ≈ −44 when N_S ≫ N_E, e.g. 8703 signal
#: events with 4 % error against 403 observed).
NUISANCE_BOUND = 200.0


def pyhf_q(
    s: float,
    sigma_s: float,
    b: float,
    sigma_b: float,
    n: float,
    starts: tuple[tuple[float, float], ...] = ((0.0, 0.0),),
) -> float:
    """Two-sided ``−2 ln λ(μ=1)`` of the one-bin model with exponential normsys.

    The μ = 1 fit is started from each ``(α_signal, α_bkg)`` in ``starts`` and the
    lowest minimum kept (with an excess and large uncertainties the fixed-μ
    likelihood can have two maxima, and a single fit may end on the lower one).
    """
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [s],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            _normsys("signal_unc", sigma_s / s),
                        ],
                    },
                    {
                        "name": "background",
                        "data": [b],
                        "modifiers": [_normsys("bkg_unc", sigma_b / b)],
                    },
                ],
            }
        ]
    }
    model = pyhf.Model(
        spec, poi_name="mu", modifier_settings={"normsys": {"interpcode": "code1"}}
    )
    data = [n, *model.config.auxdata]
    poi = model.config.poi_index
    bounds = [(-NUISANCE_BOUND, NUISANCE_BOUND)] * len(model.config.suggested_bounds())
    mu_range = 1e3 * max(1.0, b / s, n / s)
    bounds[poi] = (-mu_range, mu_range)
    order = model.config.par_order
    fixed = []
    for alpha_signal, alpha_bkg in starts:
        init = list(model.config.suggested_init())
        init[order.index("signal_unc")] = alpha_signal
        init[order.index("bkg_unc")] = alpha_bkg
        try:
            _, twice_nll = pyhf.infer.mle.fixed_poi_fit(
                1.0, data, model, init, bounds, return_fitted_val=True
            )
        except pyhf.exceptions.FailedMinimization:
            continue  # SLSQP gives up from some far starts; the others decide
        fixed.append(float(twice_nll))
    init = list(model.config.suggested_init())
    init[poi] = (n - b) / s
    _, twice_nll_free = pyhf.infer.mle.fit(
        data, model, init, bounds, return_fitted_val=True
    )
    return min(fixed) - float(twice_nll_free)


#: Extra starting points (α_signal, α_bkg) of the μ = 1 fit where one start
#: disagrees: towards raising the signal, the background, or both.
EXTRA_STARTS = (
    (0.0, 0.0),
    (10.0, 0.0),
    (0.0, 10.0),
    (5.0, 5.0),
    (20.0, 2.0),
    (2.0, 20.0),
)


def compare_with_pyhf(cases: np.ndarray) -> np.ndarray:
    """Rows of ``cases`` where ours and pyhf disagree beyond 1e-3 and 1e-4 relative.

    A disagreement is fitted again in pyhf from several starting points before it
    counts.
    """
    ours = chi2_signal_region(*cases.T)
    with warnings.catch_warnings():
        # The minimiser may probe steps where the Poisson rate is negative or zero,
        # for which pyhf's log-pdf emits numpy RuntimeWarnings; the fit recovers and
        # its final value is what is compared.
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = np.array([pyhf_q(*row) for row in cases])
        bad = _disagree(ours, theirs)
        for i in np.flatnonzero(bad):
            theirs[i] = pyhf_q(*cases[i], starts=EXTRA_STARTS)
    return cases[_disagree(ours, theirs)]


def _disagree(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    deviation = np.abs(ours - theirs)
    return (deviation >= 1e-3) & (deviation >= 1e-4 * np.abs(theirs))


def _normsys(name: str, relative: float) -> dict:
    """Normsys with ``hi = exp(σ/N)``, ``lo = exp(−σ/N)``: ``κ^α = exp(σ/N·α)``."""
    return {
        "name": name,
        "type": "normsys",
        "data": {"hi": float(np.exp(relative)), "lo": float(np.exp(-relative))},
    }


def random_cases(n_cases: int, seed: int) -> np.ndarray:
    """Rows ``(s, σ_s, b, σ_b, n)``: counts 0.01-10⁴, uncertainties 1-100 %, N_E ≥ 1."""
    rng = np.random.default_rng(seed)
    s = 10 ** rng.uniform(-2, 4, n_cases)
    b = 10 ** rng.uniform(-2, 4, n_cases)
    sigma_s = s * 10 ** rng.uniform(-2, 0, n_cases)
    sigma_b = b * 10 ** rng.uniform(-2, 0, n_cases)
    n = np.maximum(1, rng.poisson(b + rng.uniform(0, 1.5, n_cases) * s))
    return np.column_stack([s, sigma_s, b, sigma_b, n.astype(float)])


@pytest.fixture(scope="module")
def pyhf_numpy():
    """pyhf on its numpy backend with a tight scipy minimiser."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12))
    return pyhf


# pyhf 0.7 validates model specs through jsonschema.RefResolver, deprecated since
# jsonschema 4.18; the warning concerns pyhf's dependency, not the model built here.
@pytest.mark.filterwarnings(
    "ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"
)
def test_agrees_with_pyhf_on_random_cases(pyhf_numpy) -> None:
    cases = random_cases(520, seed=20260603)
    assert compare_with_pyhf(cases).size == 0


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"
)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_agrees_with_pyhf_on_more_random_cases(pyhf_numpy, seed) -> None:
    assert compare_with_pyhf(random_cases(1000, seed=seed)).size == 0


#: Excesses with several local minima of the constrained fit (s, a, b, c, n with
#: a = σ_S/N_S, c = σ_SM/N_SM): a fit from ν = 0 stops near 0 or on the wrong route.
MULTIMODAL = [
    (0.16375, 0.064189, 5.6312, 0.0049254, 3298.0),
    (0.0014499, 0.11148, 6459.3, 0.0043504, 256822.0),
    (0.0016869, 0.22681, 1.2967, 0.098937, 5195.0),
    (1.7920, 0.015825, 0.0076761, 3.2741, 7.0),
    (30308.0, 0.046844, 0.0018711, 0.58979, 245641.0),
    (6639.1, 0.015974, 14.065, 0.50438, 8478.0),
]


@pytest.mark.parametrize(("s", "a", "b", "c", "n"), MULTIMODAL)
def test_global_minimum_where_the_fit_has_several(s, a, b, c, n) -> None:
    def g(nu):
        lam = s * np.exp(a * nu[0]) + b * np.exp(c * nu[1])
        return lam - n - n * np.log(lam / n) + 0.5 * (nu @ nu)

    radius = np.sqrt(2 * g(np.zeros(2)))
    grid = np.linspace(-radius, radius, 9)
    best = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # far corners overflow
        for start in [(x, y) for x in grid for y in grid if x * x + y * y <= radius**2]:
            fit = minimize(g, start, method="BFGS", options={"gtol": 1e-9})
            if np.isfinite(fit.fun):
                best = min(best, fit.fun)
    assert chi2_signal_region(s, a * s, b, c * b, n) == pytest.approx(
        2 * best, rel=1e-6
    )


def test_zero_observed_matches_lambert_closed_form() -> None:
    # q = 2 min_ν [N_S e^{aν_S} + N_SM e^{cν_SM} + ½|ν|²] separates; each term
    # min_ν N e^{kν} + ν²/2 = (w + w²/2)/k² with w = W(k² N).
    rng = np.random.default_rng(7)
    s = 10 ** rng.uniform(-2, 4, 300)
    b = 10 ** rng.uniform(-2, 4, 300)
    a = 10 ** rng.uniform(-2, 0.3, 300)
    c = 10 ** rng.uniform(-2, 0.3, 300)

    def term(count, k):
        w = lambertw(k * k * count).real
        return (w + 0.5 * w * w) / (k * k)

    expected = 2 * (term(s, a) + term(b, c))
    got = chi2_signal_region(s, a * s, b, c * b, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_zero_observed_without_uncertainty_is_twice_lambda() -> None:
    assert chi2_signal_region(3.0, 0.0, 2.0, 0.0, 0.0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("s", "b", "n"), [(10.0, 5.0, 12.0), (3.0, 0.5, 9.0), (40.0, 100.0, 90.0)]
)
def test_without_uncertainties_is_poisson_deviance(s, b, n) -> None:
    lam = s + b
    expected = 2 * (lam - n + n * np.log(n / lam))
    assert chi2_signal_region(s, 0.0, b, 0.0, n) == pytest.approx(expected, rel=1e-12)
    assert chi2_signal_region(s, 1e-9 * s, b, 1e-9 * b, n) == pytest.approx(
        expected, rel=1e-6
    )


def test_large_counts_approach_pearson_chi2() -> None:
    s, b, n = 2000.0, 1e6, 1e6
    pearson = (s + b - n) ** 2 / (s + b)
    assert chi2_signal_region(s, 0.0, b, 0.0, n) == pytest.approx(pearson, rel=2e-3)


def test_zero_signal_is_zero_and_small_signal_tends_to_background_only() -> None:
    assert chi2_signal_region(0.0, 0.0, 5.0, 1.0, 12.0) == 0.0
    limit = chi2_background_only(5.0, 1.0, 12.0)
    assert chi2_signal_region(1e-8, 1e-9, 5.0, 1.0, 12.0) == pytest.approx(
        limit, abs=1e-6
    )


def test_background_only_closed_forms() -> None:
    # σ = 0: 2 [b − n + n ln(n/b)]; n = 0: 2 (w + w²/2)/c² with w = W(c² b).
    assert chi2_background_only(5.0, 0.0, 12.0) == pytest.approx(
        2 * (5 - 12 + 12 * np.log(12 / 5))
    )
    w = lambertw(0.3**2 * 4.0).real
    assert chi2_background_only(4.0, 1.2, 0.0) == pytest.approx(
        2 * (w + w * w / 2) / 0.09
    )
    assert chi2_background_only(0.0, 0.0, 0.0) == 0.0
    assert chi2_background_only(0.0, 0.0, 3.0) == np.inf


def test_background_only_one_sigma_fluctuation_with_gaussian_limit() -> None:
    # Large counts, small relative error: q ≈ (n − b)² / (b + σ_b²).
    b, sigma_b = 1e6, 3e3
    n = b + np.sqrt(b + sigma_b**2)
    assert chi2_background_only(b, sigma_b, n) == pytest.approx(1.0, rel=2e-2)


def test_asymmetric_error_uses_side_of_the_pull() -> None:
    up, down = 3.0, 1.0
    excess = chi2_signal_region(2.0, 0.5, 10.0, up, 20.0, sigma_bkg_down=down)
    deficit = chi2_signal_region(2.0, 0.5, 10.0, up, 6.0, sigma_bkg_down=down)
    assert excess == pytest.approx(chi2_signal_region(2.0, 0.5, 10.0, up, 20.0))
    assert deficit == pytest.approx(chi2_signal_region(2.0, 0.5, 10.0, down, 6.0))


def test_broadcasts_and_keeps_shape() -> None:
    s = np.linspace(0.0, 50.0, 6).reshape(2, 3, 1)
    q = chi2_signal_region(s, 0.1 * s, np.array([3.0, 30.0]), 2.0, 10.0)
    assert q.shape == (2, 3, 2)
    assert q[0, 0, 0] == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_signal=-1.0),
        dict(sigma_bkg=np.nan),
        dict(n_obs=np.inf),
    ],
)
def test_rejects_negative_and_non_finite_input(bad) -> None:
    args = dict(n_signal=1.0, sigma_signal=0.1, n_bkg=2.0, sigma_bkg=0.2, n_obs=3.0)
    args.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        chi2_signal_region(**args)


def test_extreme_grid_is_finite_and_silent() -> None:
    # Warnings are errors here: the whole grid must run without a numpy warning.
    counts = np.array([0.0, 1e-9, 1e-3, 0.5, 1.0, 10.0, 1e3, 1e4, 1e6, 1e8])
    rel = np.array([0.0, 5e-324, 1e-12, 1e-3, 0.1, 1.0, 10.0, 100.0])
    s, rs, b, rb, n = np.meshgrid(counts, rel, counts[1:], rel, counts, indexing="ij")
    q = chi2_signal_region(s, rs * s, b, rb * b, n)
    assert np.all(np.isfinite(q))
    assert np.all(q >= 0)
    assert np.all(q[s == 0] == 0)
    limit = chi2_background_only(b, rb * b, n)
    assert np.all(np.isfinite(limit)) and np.all(limit >= 0)


counts = st.floats(min_value=1e-3, max_value=1e4)
relative = st.floats(min_value=0.0, max_value=1.0)
observed = st.integers(min_value=0, max_value=20000).map(float)


@settings(max_examples=200, deadline=None)
@given(s=counts, rs=relative, b=counts, rb=relative, n=observed)
def test_non_negative_and_symmetric_in_signal_and_background(s, rs, b, rb, n) -> None:
    q = chi2_signal_region(s, rs * s, b, rb * b, n)
    swapped = chi2_signal_region(b, rb * b, s, rs * s, n)
    assert q >= 0
    assert q == pytest.approx(swapped, rel=1e-7, abs=1e-8)


@settings(max_examples=150, deadline=None)
@given(s=counts, rs=relative, b=counts, rb=relative, n=observed)
def test_monotone_in_uncertainty_and_in_signal_without_excess(s, rs, b, rb, n) -> None:
    q = chi2_signal_region(s, rs * s, b, rb * b, n)
    wider = chi2_signal_region(s, (rs + 0.1) * s, b, (rb + 0.1) * b, n)
    assert wider <= q + 1e-8 * (1 + q)
    if n <= b:
        more = chi2_signal_region(1.5 * s, rs * 1.5 * s, b, rb * b, n)
        assert more >= q - 1e-8 * (1 + q)
