"""Tests of surrogate ensembles: mean and spread, bootstrap, members on Dask."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from scynet_al.ensemble import Ensemble
from scynet_al.errors import ModelError
from tests.surrogate_standin import standin_dataset

QUICK = {"max_epochs": 2, "batch_size": 200, "n_threads": 1}


@pytest.fixture(scope="module")
def data():
    U, y = standin_dataset(700, seed=31)
    U_val, y_val = standin_dataset(200, seed=32)
    return U, y, U_val, y_val


@pytest.fixture(scope="module")
def fitted(data):
    U, y, _, _ = data
    return Ensemble(n_members=3, seed=4, member_params=QUICK).fit(U, y)


def test_mean_and_std_are_those_of_the_members(fitted, data):
    U_val = data[2]
    mean, std = fitted.predict(U_val, return_std=True)
    members = np.array([m.predict(U_val) for m in fitted.members_])
    # Members evaluate stacked in float32: agreement to float32 precision of chi2.
    np.testing.assert_allclose(mean, members.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(std, members.std(axis=0, ddof=1), atol=1e-3)
    assert mean.shape == std.shape == (len(U_val),)
    assert np.array_equal(fitted.predict(U_val), mean)


def test_members_differ_and_get_their_own_seeds(fitted, data):
    assert len(set(fitted.member_seeds_)) == 3
    per_member = fitted.predict_members(data[2])
    assert per_member.shape == (3, len(data[2]))
    assert np.all(per_member.std(axis=0) > 0)


def test_training_box_and_params(fitted, data):
    U = data[0]
    np.testing.assert_array_equal(fitted.input_low_, U.min(axis=0))
    np.testing.assert_array_equal(fitted.input_high_, U.max(axis=0))
    assert fitted.get_params()["n_members"] == 3
    assert fitted.n_train_ == len(U)


def test_without_bootstrap_members_see_all_points(data):
    U, y, U_val, _ = data
    ensemble = Ensemble(n_members=2, bootstrap=False, member_params=QUICK).fit(U, y)
    # Each member holds out its own 10 %; the training box is the kept 90 %.
    for member in ensemble.members_:
        assert member.input_low_.shape == (11,)
    _, std = ensemble.predict(U_val, return_std=True)
    assert np.all(std > 0)


def test_single_member_has_zero_spread(data):
    U, y, U_val, _ = data
    ensemble = Ensemble(n_members=1, member_params=QUICK).fit(U, y)
    _, std = ensemble.predict(U_val, return_std=True)
    assert np.all(std == 0)


def test_state_round_trip(fitted, data):
    copy = Ensemble.from_state(fitted.to_state())
    assert np.array_equal(copy.predict(data[2]), fitted.predict(data[2]))


def test_scikit_learn_clone_gives_the_same_unfitted_settings(fitted, data):
    # scikit-learn's clone rebuilds an estimator from get_params alone; a clone
    # fitted on the same data with the same seed is the same ensemble.
    from sklearn.base import clone

    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert copy.member_params is not fitted.member_params
    assert not hasattr(copy, "members_")
    U, y, U_val, _ = data
    assert np.array_equal(copy.fit(U, y).predict(U_val), fitted.predict(U_val))
    changed = clone(fitted).set_params(seed=5)
    assert changed.get_params() == {**fitted.get_params(), "seed": 5}
    with pytest.raises(ModelError, match="no setting n_member;"):
        clone(fitted).set_params(n_member=2)


def test_calibrate_rescales_sigma_to_cover_68_percent(data):
    U, y, U_val, y_val = data
    ensemble = Ensemble(n_members=3, seed=4, member_params=QUICK).fit(U, y)
    assert ensemble.sigma_scale_ == 1.0
    members = ensemble.predict_members(U_val)
    spread = members.std(axis=0, ddof=1)
    ratios = np.abs(members.mean(axis=0) - y_val) / spread

    assert ensemble.calibrate(U_val, y_val) is ensemble

    # The factor is the 68.27 % quantile of |error| / spread, worked out here from
    # the members; sigma is the spread times it, and then covers 68 % of the points.
    assert ensemble.sigma_scale_ == pytest.approx(np.quantile(ratios, 0.6827))
    mean, sigma = ensemble.predict(U_val, return_std=True)
    np.testing.assert_allclose(sigma, spread * ensemble.sigma_scale_, rtol=1e-6)
    assert np.mean(np.abs(mean - y_val) < sigma) == pytest.approx(0.6827, abs=0.01)
    copy = Ensemble.from_state(ensemble.to_state())
    assert copy.sigma_scale_ == ensemble.sigma_scale_
    assert np.array_equal(copy.predict(U_val, return_std=True)[1], sigma)
    # A new fit starts again from the plain spread.
    assert ensemble.fit(U, y).sigma_scale_ == 1.0


def test_calibrate_on_too_few_points_keeps_the_spread(data):
    U, y, U_val, y_val = data
    ensemble = Ensemble(n_members=2, seed=5, member_params=QUICK).fit(U, y)
    _, before = ensemble.predict(U_val, return_std=True)
    ensemble.calibrate(U_val[:5], y_val[:5])
    assert ensemble.sigma_scale_ == 1.0
    assert np.array_equal(ensemble.predict(U_val, return_std=True)[1], before)


def test_a_state_without_a_sigma_scale_loads_with_the_plain_spread(fitted, data):
    state = fitted.to_state()
    del state["sigma_scale"]  # as in checkpoints written before calibration
    assert Ensemble.from_state(state).sigma_scale_ == 1.0


def test_members_fit_on_dask_like_in_process(data):
    distributed = pytest.importorskip("distributed")
    U, y, U_val, _ = data
    settings = {"n_members": 2, "seed": 9, "member_params": QUICK}
    local = Ensemble(**settings).fit(U[:400], y[:400])
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        # Two fits with the same seeds on different data at the same time on one
        # client (two campaigns sharing a scheduler): each gets its own members.
        first = pool.submit(Ensemble(**settings).fit, U[:400], y[:400], client=client)
        second = pool.submit(
            Ensemble(**settings).fit, U[300:700], y[300:700], client=client
        )
        remote, other = first.result(), second.result()
    assert np.array_equal(remote.predict(U_val), local.predict(U_val))
    other_local = Ensemble(**settings).fit(U[300:700], y[300:700])
    assert np.array_equal(other.predict(U_val), other_local.predict(U_val))


def test_bad_settings_raise(data):
    U, y, _, _ = data
    with pytest.raises(ModelError, match="unknown surrogate kind"):
        Ensemble(kind="forest").fit(U, y)
    with pytest.raises(ModelError, match="at least one member"):
        Ensemble(n_members=0).fit(U, y)
    with pytest.raises(ModelError, match="not fitted"):
        Ensemble().predict(U)
