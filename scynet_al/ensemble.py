"""Ensembles of surrogate regressors: mean chi2 and its spread, members fitted on Dask."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
import torch

from scynet_al.errors import ModelError
from scynet_al.network import (
    NUMPY_BATCH,
    PREDICT_CHUNK,
    REGRESSORS,
    StackedNetwork,
    _Regressor,
    _set_params,
    make_regressor,
    regressor_from_state,
    small_batch_threads,
)

logger = logging.getLogger(__name__)


class Ensemble:
    """K regressors of one kind; the mean is the prediction, their spread the sigma.

    Member k gets its own seed (spawned from ``seed``) and, with ``bootstrap``, a
    bootstrap resample of the training points; its out-of-bag points then serve as
    its validation set for the learning-rate drop and early stopping. Without
    bootstrap every member sees all points and holds out its own seeded share.

    Args:
        kind: ``"direct"`` (unit-cube parameters) or ``"reparametrized"`` (features).
        n_members: Number of members K.
        bootstrap: Train each member on a bootstrap resample.
        seed: Root seed of the member seeds and resamples.
        member_params: Settings passed to every member (e.g. ``energy_tev``,
            ``max_epochs``); ``seed`` is set per member.

    The members' spread understates the error (see :mod:`scynet_al.metrics`), so
    :meth:`calibrate` on held-out points learns the factor ``sigma_scale_`` that
    ``predict`` then applies to it; a fresh fit starts from 1 (the plain spread).

    Learned state: ``members_`` (fitted regressors), ``member_seeds_``,
    ``input_low_`` / ``input_high_`` (training box, shape ``(n_inputs,)``),
    ``n_train_``, ``sigma_scale_``.
    """

    def __init__(
        self,
        kind: str = "direct",
        n_members: int = 5,
        bootstrap: bool = True,
        seed: int = 0,
        member_params: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.n_members = n_members
        self.bootstrap = bootstrap
        self.seed = seed
        self.member_params = member_params

    _PARAMS = ("kind", "n_members", "bootstrap", "seed", "member_params")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Settings given to ``__init__`` (``deep``: accepted for scikit-learn's
        ``clone``; the members' settings are the ``member_params`` dict)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> Ensemble:
        """Change settings given to ``__init__``; takes effect at the next ``fit``."""
        _set_params(self, self._PARAMS, params)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray, client: Any = None) -> Ensemble:
        """Fit every member; in parallel on Dask workers when ``client`` is given.

        Args:
            X: Inputs, shape ``(n, n_inputs)`` (unit-cube coordinates or features).
            y: Chi2 targets, shape ``(n,)``.
            client: A ``distributed.Client``, or None to fit in this process.

        Returns:
            self
        """
        X, y = self._checked(X, y)
        seeds, splits = self._plan(len(y))
        if client is None:
            members = [
                _fit_member(self.kind, self._member_params(s), X, y, tr, va)
                for s, (tr, va) in zip(seeds, splits, strict=True)
            ]
        else:
            members = self._fit_on_dask(client, X, y, seeds, splits)

        self._set_members(members)
        self.member_seeds_ = seeds
        self.input_low_ = X.min(axis=0)
        self.input_high_ = X.max(axis=0)
        self.n_train_ = len(y)
        self.sigma_scale_ = 1.0
        logger.info(
            "ensemble of %d %s members fitted on %d points; member validation mean "
            "|dchi2| %s; trainings redone %d",
            len(members), self.kind, len(y),
            " ".join(f"{m.best_validation_error_:.3f}" for m in members),
            sum(m.n_restarts_ for m in members),
        )  # fmt: skip
        return self

    def predict(
        self, X: np.ndarray, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Ensemble mean chi2, shape ``(n,)``; with ``return_std`` also its sigma.

        Sigma is the sample standard deviation over members (ddof = 1; zero for a
        single member) times ``sigma_scale_``.
        """
        mean, spread = self._mean_and_spread(X)
        if not return_std:
            return mean
        return mean, spread * self.sigma_scale_

    def calibrate(self, X: np.ndarray, y: np.ndarray) -> Ensemble:
        """Learn ``sigma_scale_`` on held-out points, so that sigma covers 68 % of
        their errors (:func:`scynet_al.metrics.sigma_scale`).

        With too few points, or a single member (no spread), the factor stays 1.

        Args:
            X: Held-out inputs, shape ``(n, n_inputs)``, not used in :meth:`fit`.
            y: Their chi2, shape ``(n,)``.

        Returns:
            self
        """
        from scynet_al.metrics import sigma_scale

        mean, spread = self._mean_and_spread(X)
        factor = sigma_scale(np.asarray(y, dtype=float), mean, spread)
        self.sigma_scale_ = 1.0 if factor is None else factor
        logger.info(
            "ensemble sigma calibrated on %d held-out points: spread x %.3g%s",
            len(mean), self.sigma_scale_, "" if factor else " (too few to learn from)",
        )  # fmt: skip
        return self

    def _mean_and_spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Member mean and unscaled sample standard deviation, each ``(n,)``."""
        per_member = self.predict_members(X)
        mean = per_member.mean(axis=0)
        if per_member.shape[0] < 2:
            return mean, np.zeros_like(mean)
        return mean, per_member.std(axis=0, ddof=1)

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """Chi2 per member, shape ``(n_members, n)``."""
        if not hasattr(self, "stacked_"):
            raise ModelError("Ensemble is not fitted; call fit first")
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.input_low_.size)
        if len(X) and (
            len(X) <= NUMPY_BATCH
            or all(m._numpy_layers() is not None for m in self.members_)
        ):
            # Member by member through each member's own forward pass (NumPy,
            # or torch for large batches where it is faster; see
            # scynet_al.network.large_batch_library): a handful of points pays
            # no call overhead of the stacked torch module.
            return np.stack([member.predict(X) for member in self.members_])
        with torch.inference_mode(), small_batch_threads(len(X)):
            parts = [
                self.stacked_(torch.from_numpy(X[i : i + PREDICT_CHUNK]))
                for i in range(0, len(X), PREDICT_CHUNK)
            ]
        if not parts:
            return np.zeros((len(self.members_), 0))
        return torch.cat(parts, dim=1).numpy()

    def to_state(self) -> dict[str, Any]:
        """Settings and learned state as torch-loadable plain types."""
        return {
            "params": self.get_params(),
            "members": [m.to_state() for m in self.members_],
            "member_seeds": [int(s) for s in self.member_seeds_],
            "input_low": torch.from_numpy(self.input_low_.copy()),
            "input_high": torch.from_numpy(self.input_high_.copy()),
            "n_train": int(self.n_train_),
            "sigma_scale": float(self.sigma_scale_),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Ensemble:
        """Inverse of :meth:`to_state`."""
        ensemble = cls(**state["params"])
        ensemble._set_members([regressor_from_state(s) for s in state["members"]])
        ensemble.member_seeds_ = list(state["member_seeds"])
        ensemble.input_low_ = state["input_low"].numpy()
        ensemble.input_high_ = state["input_high"].numpy()
        ensemble.n_train_ = int(state["n_train"])
        # Checkpoints written before sigma was calibrated hold the plain spread.
        ensemble.sigma_scale_ = float(state.get("sigma_scale", 1.0))
        return ensemble

    def _set_members(self, members: list[_Regressor]) -> None:
        self.members_ = members
        self.stacked_ = StackedNetwork(members).eval()

    def _checked(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.kind not in REGRESSORS:
            raise ModelError(
                f"unknown surrogate kind {self.kind!r}; expected one of {sorted(REGRESSORS)}"
            )
        if int(self.n_members) < 1:
            raise ModelError(
                f"an ensemble needs at least one member, got {self.n_members}"
            )
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if X.ndim != 2 or len(X) != len(y) or len(y) < 2:
            raise ModelError(
                f"need X (n, d) and y (n,) with n >= 2, got {X.shape} and {y.shape}"
            )
        return X, y

    def _plan(self, n: int) -> tuple[list[int], list[tuple[np.ndarray | None, ...]]]:
        """Member seeds and (train, validation) index arrays (None: member splits)."""
        states = np.random.SeedSequence(int(self.seed)).generate_state(
            int(self.n_members)
        )
        seeds = [int(s) for s in states]
        if not self.bootstrap:
            return seeds, [(None, None)] * len(seeds)
        splits = []
        for s in seeds:
            train = np.random.default_rng(s).integers(0, n, size=n)
            out_of_bag = np.setdiff1d(np.arange(n), train)
            splits.append((train, out_of_bag) if out_of_bag.size else (train, None))
        return seeds, splits

    def _member_params(self, seed: int) -> dict[str, Any]:
        params = dict(self.member_params or {})
        params["seed"] = seed
        return params

    def _fit_on_dask(
        self,
        client: Any,
        X: np.ndarray,
        y: np.ndarray,
        seeds: list[int],
        splits: list[tuple[np.ndarray | None, ...]],
    ) -> list[_Regressor]:
        X_future, y_future = client.scatter([X, y], broadcast=True)
        # Keys name member and seed for the dashboard, and end in a token of this
        # call: two fits with the same seeds must not share a result the scheduler
        # still holds from the first.
        token = uuid.uuid4().hex[:8]
        futures = [
            client.submit(
                _fit_member,
                self.kind,
                self._member_params(s),
                X_future,
                y_future,
                tr,
                va,
                pure=False,
                key=f"fit-member-{k}-{s}-{token}",
            )
            for k, (s, (tr, va)) in enumerate(zip(seeds, splits, strict=True))
        ]
        logger.info("%d ensemble members submitted to Dask", len(futures))
        return client.gather(futures)


def _fit_member(
    kind: str,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray | None,
    validation: np.ndarray | None,
) -> _Regressor:
    """Fit one member; on a Dask worker, with as many torch threads as it has."""
    params = dict(params)
    if params.get("n_threads") is None:
        params["n_threads"] = _worker_threads()
    model = make_regressor(kind, **params)
    if train is None:
        return model.fit(X, y)
    if validation is None:
        return model.fit(X[train], y[train])
    return model.fit(X[train], y[train], X[validation], y[validation])


def _worker_threads() -> int | None:
    """Threads of the Dask worker running this task, None outside a worker."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None
