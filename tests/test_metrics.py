"""Tests of the accuracy summaries: per-region errors, intervals, kNN, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sampler.regions import REGION_NAMES, ChiSquareRegions
from scynet_al.errors import ModelError
from scynet_al.metrics import (
    MIN_CALIBRATION_POINTS,
    calibration,
    cross_fitted_calibration,
    knn_baseline,
    region_errors,
    sigma_scale,
)

REGIONS_13 = ChiSquareRegions.paper(13)


def test_hand_worked_errors_per_region():
    # One point per 13 TeV region (I < 53.5 <= zero < 56 <= II < 70 <= III < 95 <= cap).
    true = np.array([10.0, 55.0, 60.0, 80.0, 100.0])
    pred = np.array([12.0, 55.0, 57.0, 80.0, 99.0])
    result = region_errors(true, pred, REGIONS_13, n_boot=50)
    assert result["overall"]["mean_abs_error"] == pytest.approx(6.0 / 5.0)
    assert result["overall"]["count"] == 5
    expected = {"I": 2.0, "zero": 0.0, "II": 3.0, "III": 0.0, "cap": 1.0}
    for name, error in expected.items():
        region = result["regions"][name]
        assert region["count"] == 1
        assert region["mean_abs_error"] == pytest.approx(error)
        # A single point resamples to itself: a zero-width interval.
        assert region["interval"] == pytest.approx([error, error])
    assert "calibration" not in result


def test_regions_follow_the_true_chi2_and_empty_regions_are_none():
    true = np.array([60.0, 61.0, 62.0])
    pred = np.array([40.0, 61.0, 100.0])  # predictions elsewhere do not move points
    result = region_errors(true, pred, REGIONS_13, n_boot=20)
    assert result["regions"]["II"]["count"] == 3
    for name in ("I", "zero", "III", "cap"):
        assert result["regions"][name] == {
            "mean_abs_error": None, "count": 0, "interval": None,
        }  # fmt: skip
    assert set(result["regions"]) == set(REGION_NAMES)
    json.dumps(result)  # the store keeps it as JSON


def test_bootstrap_interval_matches_the_standard_error():
    # |errors| ~ Exp(1): mean 1, standard error 1 / sqrt(n) = 0.025 for n = 1600;
    # the central 68 % of bootstrap means spans about mean +- one standard error.
    rng = np.random.default_rng(4)
    errors = rng.exponential(1.0, size=1600)
    true = np.full(1600, 60.0)
    result = region_errors(true, true + errors, REGIONS_13, n_boot=2000, seed=1)
    lo, hi = result["overall"]["interval"]
    mean = result["overall"]["mean_abs_error"]
    assert lo < mean < hi
    assert (hi - lo) / 2 == pytest.approx(errors.std() / 40.0, rel=0.15)


def test_calibration_shares_by_hand():
    true = np.array([10.0, 55.0, 60.0, 80.0, 100.0])
    pred = np.array([12.0, 55.0, 57.0, 80.0, 99.0])  # |d| = 2, 0, 3, 0, 1
    std = np.array([1.5, 1.0, 4.0, 1.0, 0.5])
    # below sigma: no, yes, yes, yes, no; below 2 sigma: yes, yes, yes, yes, no
    assert calibration(true, pred, std) == {"within_1sigma": 0.6, "within_2sigma": 0.8}
    result = region_errors(true, pred, REGIONS_13, std=std, n_boot=10)
    assert result["calibration"] == {"within_1sigma": 0.6, "within_2sigma": 0.8}


def test_gaussian_errors_are_calibrated():
    rng = np.random.default_rng(7)
    sigma = rng.uniform(0.5, 3.0, size=20000)
    true = rng.uniform(0, 100, size=20000)
    pred = true + sigma * rng.normal(size=20000)
    shares = calibration(true, pred, sigma)
    assert shares["within_1sigma"] == pytest.approx(0.6827, abs=0.01)
    assert shares["within_2sigma"] == pytest.approx(0.9545, abs=0.005)


def test_sigma_scale_by_hand():
    # 25 points with sigma 1 and errors 1, 2, ..., 25: the 68.27 % quantile sits at
    # position 24 x 0.6827 = 16.3848 of the sorted ratios, between 17 and 18.
    true = np.zeros(25)
    pred = np.arange(1.0, 26.0)
    assert sigma_scale(true, pred, np.ones(25)) == pytest.approx(17.3848)
    # Halving every sigma doubles the factor; points without spread are left out.
    assert sigma_scale(true, pred, np.full(25, 0.5)) == pytest.approx(34.7696)
    with_flat = sigma_scale(
        np.zeros(26), np.append(pred, 1000.0), np.append(np.ones(25), 0.0)
    )
    assert with_flat == pytest.approx(17.3848)


def test_sigma_scale_needs_enough_points_with_spread():
    n = MIN_CALIBRATION_POINTS
    assert sigma_scale(np.zeros(n - 1), np.ones(n - 1), np.ones(n - 1)) is None
    assert sigma_scale(np.zeros(n), np.ones(n), np.zeros(n)) is None  # one member
    assert sigma_scale(np.zeros(n), np.zeros(n), np.ones(n)) is None  # no error
    assert sigma_scale(np.zeros(n), np.ones(n), np.ones(n)) == pytest.approx(1.0)


def test_cross_fitting_recovers_a_spread_half_the_error():
    # Errors drawn from N(0, sigma) with the model claiming sigma / 2: unscaled,
    # 38.3 % lie within the claimed sigma (|z| < 0.5) and 68.3 % within two; the
    # factor is 2 and the rescaled shares are the Gaussian 68.3 % and 95.4 %.
    rng = np.random.default_rng(11)
    sigma = rng.uniform(1.0, 5.0, size=40000)
    true = rng.uniform(0.0, 100.0, size=40000)
    pred = true + sigma * rng.normal(size=40000)
    result = cross_fitted_calibration(true, pred, sigma / 2.0)
    assert result["sigma_scale"] == pytest.approx(2.0, rel=0.02)
    assert result["within_1sigma"] == pytest.approx(0.6827, abs=0.01)
    assert result["within_2sigma"] == pytest.approx(0.9545, abs=0.005)
    assert result["raw"]["within_1sigma"] == pytest.approx(0.3829, abs=0.01)
    assert result["raw"]["within_2sigma"] == pytest.approx(0.6827, abs=0.01)


def test_cross_fitting_scales_each_half_by_the_other():
    # Even positions: error 1, sigma 1; odd positions: error 3, sigma 1. Each half
    # learns its own ratio (1 or 3) and lends it to the other: the even points get
    # sigma 3 (inside 1 sigma), the odd ones sigma 1 (error 3: outside 2 sigma).
    n = 2 * MIN_CALIBRATION_POINTS
    errors = np.tile([1.0, 3.0], MIN_CALIBRATION_POINTS)
    result = cross_fitted_calibration(np.zeros(n), errors, np.ones(n))
    assert result["within_1sigma"] == pytest.approx(0.5)
    assert result["within_2sigma"] == pytest.approx(0.5)
    assert result["raw"] == {"within_1sigma": 0.0, "within_2sigma": 0.5}
    # On all points the 68.27 % quantile of ratios {1 x 20, 3 x 20} is 3.
    assert result["sigma_scale"] == pytest.approx(3.0)


def test_cross_fitting_with_too_few_points_measures_only_the_spread():
    # Errors 0..9 against a spread of 4: 4 of 10 below one spread (0-3), 8 below
    # two (0-7). No half can set a factor, so the rescaled coverage is unknown.
    true, pred, std = np.zeros(10), np.arange(10.0), np.full(10, 4.0)
    result = cross_fitted_calibration(true, pred, std)
    assert result["sigma_scale"] is None
    assert result["within_1sigma"] is result["within_2sigma"] is None
    assert result["raw"] == {"within_1sigma": 0.4, "within_2sigma": 0.8}
    assert json.loads(json.dumps(result)) == result


def test_cross_fitting_between_one_and_two_halves_gives_the_factor_alone():
    # 28 points set a factor on all of them, but halves of 14 cannot: the factor
    # is there, its coverage on points it was not learned from is not.
    n = 28
    errors = np.tile([1.0, 3.0], n // 2)
    result = cross_fitted_calibration(np.zeros(n), errors, np.ones(n))
    assert result["sigma_scale"] == pytest.approx(3.0)  # 68.27 % quantile of ratios
    assert result["within_1sigma"] is result["within_2sigma"] is None
    assert result["raw"] == {"within_1sigma": 0.0, "within_2sigma": 0.5}


def test_knn_baseline_by_hand():
    X_train = np.array([[0.0], [1.0]])
    y_train = np.array([10.0, 60.0])
    X_val = np.array([[0.2], [0.9]])
    y_val = np.array([12.0, 80.0])  # nearest: 10 (|d| = 2) and 60 (|d| = 20)
    result = knn_baseline(X_train, y_train, X_val, y_val, REGIONS_13, n_boot=10)
    assert result["regions"]["I"]["mean_abs_error"] == pytest.approx(2.0)
    assert result["regions"]["III"]["mean_abs_error"] == pytest.approx(20.0)
    assert result["overall"]["mean_abs_error"] == pytest.approx(11.0)


def test_mismatched_lengths_raise():
    with pytest.raises(ModelError, match="differ in length"):
        region_errors(np.zeros(3), np.zeros(2), REGIONS_13)
