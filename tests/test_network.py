"""Tests of the direct and reparametrized regressors (paper Sect. 3.1, 4.3, App. B)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsRegressor
from torch import nn

from scynet_al import network
from scynet_al.errors import ModelError
from scynet_al.network import (
    MAX_RESTARTS,
    NUMPY_CHUNK,
    DirectRegressor,
    ReparametrizedRegressor,
    TargetScaling,
    make_regressor,
)
from tests.surrogate_standin import standin_dataset


@pytest.fixture(scope="module")
def standin():
    """Training and validation points of the analytic stand-in landscape."""
    U, y = standin_dataset(2500, seed=11)
    U_val, y_val = standin_dataset(1000, seed=12)
    return U, y, U_val, y_val


@pytest.fixture(scope="module")
def small_direct(standin):
    U, y, _, _ = standin
    return DirectRegressor(max_epochs=3, batch_size=250, seed=3, n_threads=1).fit(
        U[:600], y[:600]
    )


def test_target_scaling_maps_floor_and_maximum_to_minus_and_plus_one():
    # mu = (0 + 100) / 2 = 50, so t = (y - 50) / 50 whatever sigma is.
    scaling = TargetScaling.fit(np.array([0.0, 50.0, 100.0, 80.0]), z0=0.0)
    np.testing.assert_allclose(
        scaling.transform([0.0, 50.0, 100.0, 80.0]), [-1, 0, 1, 0.6]
    )
    assert scaling.mu == 50.0
    assert scaling.sigma == pytest.approx(np.var([0.0, 50.0, 100.0, 80.0], ddof=1))


def test_target_scaling_with_floor_above_zero():
    # z0 = 10, y_max = 60: mu = 35, half-range 25; chi2 = 20 -> -0.6, z0 -> -1.
    scaling = TargetScaling.fit(np.array([20.0, 60.0]), z0=10.0)
    np.testing.assert_allclose(scaling.transform([10.0, 20.0, 60.0]), [-1.0, -0.6, 1.0])
    np.testing.assert_allclose(scaling.inverse([-1.0, -0.6, 1.0]), [10.0, 20.0, 60.0])


def test_target_scaling_rejects_targets_at_the_floor():
    with pytest.raises(ModelError, match="exceed the chi2 floor"):
        TargetScaling.fit(np.array([0.0, 0.0]), z0=0.0)


def test_direct_architecture_is_four_by_300_tanh(small_direct):
    layers = list(small_direct.network_)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (11, 300), (300, 300), (300, 300), (300, 300), (300, 1),
    ]  # fmt: skip
    assert all(isinstance(m, nn.Tanh) for m in layers[1::2])


def test_reparametrized_architecture_is_500_then_eight_by_200_relu():
    X = np.random.default_rng(0).normal(size=(200, 56))
    model = ReparametrizedRegressor(max_epochs=1, n_threads=1).fit(
        X, X[:, 0] ** 2 + 50.0
    )
    linears = [m for m in model.network_ if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [500] + [200] * 8 + [1]
    assert linears[0].in_features == 56
    assert sum(isinstance(m, nn.ReLU) for m in model.network_) == 9
    assert isinstance(model.network_[-1], nn.Identity)


def test_direct_initialisation_follows_the_paper():
    model = DirectRegressor()
    net = model._build(11, torch.Generator().manual_seed(0))
    hidden = net[2]  # second Linear: 300 -> 300
    # Weights ~ N(0, 1/sqrt(300)) over 90 000 draws; biases ~ N(0, 1) over the
    # 1200 biases of the four hidden layers.
    assert hidden.weight.std().item() == pytest.approx(1 / math.sqrt(300), rel=0.02)
    assert abs(hidden.weight.mean().item()) < 0.002
    biases = torch.cat([net[i].bias for i in (0, 2, 4, 6)])
    assert biases.std().item() == pytest.approx(1.0, rel=0.08)
    assert net[0].weight.std().item() == pytest.approx(1 / math.sqrt(11), rel=0.1)


@pytest.mark.parametrize(
    ("cls", "energy", "batch"),
    [(DirectRegressor, 13, 500), (DirectRegressor, 8, 750),
     (ReparametrizedRegressor, 13, 32), (ReparametrizedRegressor, 8, 120)],
)  # fmt: skip
def test_paper_batch_sizes(cls, energy, batch):
    assert cls(energy_tev=energy).effective_batch_size == batch
    assert cls(energy_tev=energy, batch_size=64).effective_batch_size == 64


@pytest.mark.parametrize(("energy", "lr"), [(13, 0.002), (8, 0.01)])
def test_reparametrized_learning_rate_and_optimizer(energy, lr):
    optimizer = ReparametrizedRegressor(energy_tev=energy)._optimizer(
        [{"params": [nn.Parameter(torch.zeros(2))]}]
    )
    assert isinstance(optimizer, torch.optim.NAdam)
    assert optimizer.param_groups[0]["lr"] == lr


def test_fit_is_deterministic_and_seeded(standin):
    U, y, U_val, _ = standin
    settings = {"max_epochs": 2, "batch_size": 250, "n_threads": 1}
    a = DirectRegressor(seed=5, **settings).fit(U[:500], y[:500]).predict(U_val)
    b = DirectRegressor(seed=5, **settings).fit(U[:500], y[:500]).predict(U_val)
    c = DirectRegressor(seed=6, **settings).fit(U[:500], y[:500]).predict(U_val)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_best_epoch_is_restored(standin):
    U, y, U_val, y_val = standin
    model = DirectRegressor(
        max_epochs=6, batch_size=100, patience=2, lr_patience=1, n_threads=1
    )
    model.fit(U[:800], y[:800], U_val[:300], y_val[:300])
    errors = model.history_[:, 0]
    assert model.best_validation_error_ == pytest.approx(errors.min())
    recomputed = np.mean(np.abs(model.predict(U_val[:300]) - y_val[:300]))
    assert recomputed == pytest.approx(model.best_validation_error_, rel=1e-5)
    assert model.history_[-1, 1] <= model.learning_rate


class _SaturatedStart(DirectRegressor):
    """A direct network whose first ``saturated`` initialisations have a dead output.

    An output bias of 50 puts the tanh output at 1 - 8e-44: its derivative
    (4 sech^2(50) ~ 1e-43) stops every gradient, so such a network predicts the
    top of the chi2 range everywhere, whatever it is trained on.
    """

    saturated = 1

    def _build(self, n_inputs, generator):
        net = super()._build(n_inputs, generator)
        self.builds = getattr(self, "builds", 0) + 1
        if self.builds <= self.saturated:
            with torch.no_grad():
                net[-2].bias.fill_(50.0)
        return net


def test_a_training_that_learned_nothing_is_redone(standin, caplog):
    U, y, U_val, y_val = standin
    # Seed 3's second initialisation is one that learns within 8 epochs.
    model = _SaturatedStart(max_epochs=8, batch_size=100, seed=3, n_threads=1)
    with caplog.at_level("WARNING", logger="scynet_al.network"):
        model.fit(U[:800], y[:800], U_val[:300], y_val[:300])
    assert model.builds == 2
    assert model.n_restarts_ == 1
    assert "learned nothing" in caplog.text
    # The kept network is the second one: it varies and beats a constant.
    prediction = model.predict(U_val)
    assert np.std(prediction) > 1.0
    constant_error = np.mean(np.abs(y_val - np.median(y[:800])))
    assert np.mean(np.abs(prediction - y_val)) < constant_error
    restored = DirectRegressor.from_state(model.to_state())
    assert restored.n_restarts_ == 1


def test_restarts_stop_after_the_limit_and_keep_a_working_model(standin):
    U, y, U_val, y_val = standin
    model = _SaturatedStart(max_epochs=3, batch_size=100, seed=2, n_threads=1)
    model.saturated = MAX_RESTARTS + 1
    model.fit(U[:400], y[:400], U_val[:200], y_val[:200])
    assert model.builds == MAX_RESTARTS + 1
    assert model.n_restarts_ == MAX_RESTARTS
    # Every attempt was dead: the prediction is the scaling's top, y_max.
    prediction = model.predict(U_val[:50])
    assert np.allclose(prediction, model.target_scaling_.y_max, rtol=1e-5)


def test_the_first_steps_take_a_fraction_of_the_learning_rate(standin, monkeypatch):
    # Adam's first step moves every parameter by its learning rate times
    # m/sqrt(v) = g/|g| = +-1 (eps aside), so after one step of the ramp each
    # parameter with a gradient has moved by learning_rate / WARMUP_STEPS.
    monkeypatch.setattr(network, "MAX_RESTARTS", 0)
    U, y, U_val, y_val = standin
    model = DirectRegressor(max_epochs=1, batch_size=300, seed=4, n_threads=1)
    model.fit(U[:300], y[:300], U_val[:100], y_val[:100])
    initial = model._build(U.shape[1], torch.Generator().manual_seed(4))
    moves = np.concatenate(
        [
            (after - before).abs().flatten().numpy()
            for before, after in zip(
                initial.state_dict().values(),
                model.network_.state_dict().values(),
                strict=True,
            )
        ]
    )
    moved = moves[moves > 0]
    assert moved.size > 0.9 * moves.size
    expected = model.learning_rate / network.WARMUP_STEPS
    assert np.median(moved) == pytest.approx(expected, rel=1e-3)
    # float32 weights near 1 resolve a move of 1e-5 to about 1 %.
    assert moved.max() <= expected * 1.02


def test_predictions_stay_between_floor_and_cap(small_direct):
    # The tanh output bounds the back-transformed chi2 by z0 = 0 and y_max (<= 100).
    U = np.random.default_rng(1).random((2000, 11))
    chi2 = small_direct.predict(U)
    assert chi2.min() >= 0.0
    assert chi2.max() <= small_direct.target_scaling_.y_max


def test_reparametrized_inputs_are_decorrelated():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3000, 3))
    X = np.column_stack([base, base[:, 0] + 0.1 * base[:, 1], 2 * base[:, 2]])
    model = ReparametrizedRegressor(max_epochs=1, batch_size=500, n_threads=1)
    model.fit(X, 60 + X[:, 0])
    Z = model.normalised_inputs(X[: int(0.9 * 3000)])
    cov = np.cov(Z.astype(float), rowvar=False)
    off_diagonal = cov - np.diag(np.diag(cov))
    assert np.abs(off_diagonal).max() < 0.05
    assert model.input_rotation_.shape == (5, 5)


def test_direct_network_beats_nearest_neighbours_by_twice(standin):
    U, y, U_val, y_val = standin
    # 375 steps: the paper-size run is the slow test below.
    model = DirectRegressor(max_epochs=15, batch_size=100, seed=0, n_threads=1)
    network_error = np.mean(np.abs(model.fit(U, y).predict(U_val) - y_val))
    knn = KNeighborsRegressor(n_neighbors=1).fit(U, y)
    knn_error = np.mean(np.abs(knn.predict(U_val) - y_val))
    assert knn_error >= 2.0 * network_error, (network_error, knn_error)


@pytest.mark.slow
def test_direct_network_beats_nearest_neighbours_at_paper_batch_size():
    U, y = standin_dataset(20000, seed=21)
    U_val, y_val = standin_dataset(5000, seed=22)
    model = DirectRegressor(max_epochs=150, n_threads=2).fit(U, y)
    network_error = np.mean(np.abs(model.predict(U_val) - y_val))
    knn = KNeighborsRegressor(n_neighbors=1).fit(U, y)
    knn_error = np.mean(np.abs(knn.predict(U_val) - y_val))
    assert knn_error >= 3.0 * network_error, (network_error, knn_error)


def test_state_round_trip_predicts_identically(small_direct):
    U = np.random.default_rng(3).random((50, 11))
    copy = type(small_direct).from_state(small_direct.to_state())
    assert np.array_equal(copy.predict(U), small_direct.predict(U))


@pytest.mark.parametrize("kind", ["direct", "reparametrized"])
def test_numpy_path_agrees_with_the_torch_module(kind, standin):
    # Prediction runs through NumPy, one point or many (in passes of NUMPY_CHUNK);
    # the torch module computes the same float32 network.
    U, y, _, _ = standin
    model = make_regressor(kind, max_epochs=2, batch_size=250, seed=4, n_threads=1)
    model.fit(U[:600], y[:600])
    U_test = np.random.default_rng(5).random((2 * NUMPY_CHUNK + 300, 11))
    with torch.inference_mode():
        reference = model.network_(model._normalised(U_test)).squeeze(1).double()
    expected = model.target_scaling_.inverse(reference.numpy())
    few = np.concatenate([model.predict(U_test[i : i + 1]) for i in range(64)])
    np.testing.assert_allclose(few, expected[:64], rtol=2e-6, atol=1e-5)
    np.testing.assert_allclose(model.predict(U_test), expected, rtol=2e-6, atol=1e-5)
    # Changing a weight in place must not leave the NumPy copy stale.
    with torch.no_grad():
        model.network_[0].bias.add_(0.5)
    assert not np.allclose(model.predict(U_test[:1]), few[:1])


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_large_batches_agree_with_the_module(standin, monkeypatch, library):
    # From PARALLEL_MIN_POINTS points on, either torch runs the batch in passes or
    # NumPy shares the rows out over the BLAS's threads, each multiplying on one
    # BLAS thread; either way the result is the same float32 network as the torch
    # module, every row in its place, the same on a second call, and the BLAS gets
    # its thread count back afterwards.
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.setattr(network, "LARGE_BATCH_LIBRARY", library)
    U, y, _, _ = standin
    model = DirectRegressor(max_epochs=2, batch_size=250, seed=4, n_threads=1)
    model.fit(U[:600], y[:600])
    U_test = np.random.default_rng(6).random((network.PARALLEL_MIN_POINTS + 777, 11))
    with torch.inference_mode():
        reference = model.network_(model._normalised(U_test)).squeeze(1).double()
    expected = model.target_scaling_.inverse(reference.numpy())

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        split = model.predict(U_test)
        after = blas_threads()
    with threadpool_limits(limits=1, user_api="blas"):
        single = model.predict(U_test)

    np.testing.assert_allclose(split, expected, rtol=2e-6, atol=1e-5)
    np.testing.assert_allclose(single, expected, rtol=2e-6, atol=1e-5)
    assert after == before
    assert np.array_equal(model.predict(U_test), model.predict(U_test))


def test_large_batch_library_follows_the_processor(monkeypatch):
    # Torch's MKL runs large batches on Intel processors only; NumPy elsewhere.
    monkeypatch.setattr(network, "LARGE_BATCH_LIBRARY", None)
    for vendor, mkl, expected in (
        ("GenuineIntel", True, "torch"),
        ("GenuineIntel", False, "numpy"),
        ("AuthenticAMD", True, "numpy"),
        ("", True, "numpy"),
    ):
        monkeypatch.setattr(network, "_LIBRARY_BY_RULE", None)
        monkeypatch.setattr(network, "_cpu_vendor", lambda v=vendor: v)
        monkeypatch.setattr(torch.backends.mkl, "is_available", lambda m=mkl: m)
        assert network.large_batch_library() == expected
    monkeypatch.setattr(network, "LARGE_BATCH_LIBRARY", "numpy")
    assert network.large_batch_library() == "numpy"


def test_unfitted_and_bad_input_raise():
    with pytest.raises(ModelError, match="not fitted"):
        DirectRegressor().predict(np.zeros((1, 11)))
    with pytest.raises(ModelError, match="finite"):
        DirectRegressor().fit(np.full((10, 2), np.nan), np.ones(10))
    with pytest.raises(ModelError, match="unknown surrogate kind"):
        make_regressor("gaussian_process")


def test_small_training_sets_still_learn() -> None:
    # A campaign's first refits see tens of points. With the paper's batch of 500
    # that is one optimiser step per epoch and early stopping ends training before
    # the network moves; the default shrinks the batch for small sets. The bar is
    # independent of the network: half the error of predicting the mean.
    rng = np.random.default_rng(0)

    def landscape(U: np.ndarray) -> np.ndarray:
        m = np.sqrt((U[:, 2] ** 2 + U[:, 3] ** 2) / 2.0)
        return np.minimum(10.0 + 140.0 * np.exp(-4.0 * m), 100.0)

    U, U_test = rng.random((150, 11)), rng.random((2000, 11))
    y, y_test = landscape(U), landscape(U_test)

    model = DirectRegressor(max_epochs=200, patience=20, seed=1).fit(U, y)

    constant_error = np.mean(np.abs(y_test - y.mean()))
    assert np.mean(np.abs(model.predict(U_test) - y_test)) < 0.5 * constant_error
