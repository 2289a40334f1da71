"""The paper's chi-square regressors: direct (Sect. 3.1) and reparametrized (Sect. 4.3)."""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import torch.utils.deterministic
from torch import nn

from scynet_al.errors import ModelError

logger = logging.getLogger(__name__)

#: Optimiser steps per epoch at least, for small training sets (see
#: ``_training_batch_size``), and the smallest default mini-batch.
MIN_STEPS_PER_EPOCH = 20
MIN_BATCH = 16

#: Paper Sect. 3.1: mini-batch size of the direct network per energy (TeV).
DIRECT_BATCH_SIZE: dict[int, int] = {8: 750, 13: 500}

#: Paper Sect. 4.3: mini-batch size of the reparametrized network per energy (TeV).
REPARAMETRIZED_BATCH_SIZE: dict[int, int] = {8: 120, 13: 32}

#: Paper Sect. 4.3: initial NAdam learning rate of the reparametrized network.
REPARAMETRIZED_LEARNING_RATE: dict[int, float] = {8: 0.01, 13: 0.002}

#: Points evaluated in one pass during prediction: a 2048 x 300 float32 activation
#: (2.4 MB) stays in cache between layers. For the paper's 4 x 300 network at batch
#: 65 536 on two cores: 84 GFLOP/s in chunks of 2048, 66 in chunks of 16 384, 50 in
#: one pass (benchmarks/bench_network.py).
PREDICT_CHUNK = 2048

#: Batches up to this many points take the fewest calls: the NumPy forward skips
#: its preallocated buffers, and an ensemble evaluates its members one by one even
#: when one of them would need torch. A fit that asks for one point at a time pays
#: per-call overhead, not arithmetic: for the paper's 4 x 300 tanh network on one
#: core, one point takes about 35 us through NumPy and 100-130 us through the torch
#: module (benchmarks/bench_network.py).
NUMPY_BATCH = 16

#: Points per pass of the NumPy forward. Prediction runs through NumPy below
#: :data:`PARALLEL_MIN_POINTS` points everywhere, and above it where NumPy's BLAS
#: is the faster one (:func:`large_batch_library`): on an AMD EPYC with 2 cores it
#: multiplies the network's 300 x 300 layers at 190 GFLOP/s against torch's
#: 106-148; 157 GFLOP/s for the whole 4 x 300 tanh network in passes of 1024
#: points, 150 in passes of 2048, against 117 for torch in its best chunk.
#: A 1024 x 300 float32 activation (1.2 MB) stays in cache between layers. The
#: NumPy and torch paths agree to float32 rounding (relative 1e-6 on chi2).
NUMPY_CHUNK = 1024

#: Points normalised at once before the NumPy forward, which bounds the float64
#: copies of the inputs for very large batches.
NORMALISE_CHUNK = 65536

#: Batches of at least this many points are split by rows over as many Python
#: threads as NumPy's BLAS may use, each thread multiplying on one BLAS thread.
#: A single thread driving a multi-threaded BLAS leaves the other cores idle
#: during every tanh and bias addition, about a fifth of the forward pass; split
#: by rows, those run in parallel too. For the paper's 4 x 300 tanh network at
#: batch 65 536 on two cores: 173 GFLOP/s split against 137 in one thread, on a
#: machine whose square fp32 GEMM runs at 205 GFLOP/s (benchmarks/bench_network.py).
PARALLEL_MIN_POINTS = 4 * NUMPY_CHUNK

#: Points per pass when a large batch runs through torch (see
#: :func:`large_batch_library`); a 2048 x 300 float32 activation (2.4 MB) stays in
#: cache between layers.
TORCH_CHUNK = 2048

#: The library that runs batches of :data:`PARALLEL_MIN_POINTS` points or more:
#: "numpy", "torch", or None to choose by :func:`large_batch_library`'s rule.
LARGE_BATCH_LIBRARY: str | None = None

#: A training that ends no better than predicting the training targets' median
#: everywhere has learned nothing. With the paper's target map the cap (chi2 = 100)
#: is the tanh output's end, +1; when many targets sit there, the first Adam steps
#: can push the output into saturation, where its gradient vanishes and the
#: prediction stays at the cap for good. This happened to 2 of 5 direct networks
#: on 3 000 built-in chain labels and to half of the seeds on 800 points of the
#: test suite's stand-in landscape (a quarter of its targets at the cap). Such a
#: training is redone from a fresh initialisation, with the same validation
#: split, at most this many times; the best attempt is kept.
MAX_RESTARTS = 5

#: Optimiser steps over which the learning rate ramps linearly from zero up to its
#: setting at the start of every training. Not in the paper: with Adam at its
#: learning rate of 1e-3 from the first step, the tanh output of the paper's
#: direct network saturated (and stayed at one end of the chi2 range) in 6 of 10
#: trainings on 500 built-in chain labels (13 TeV, prior draws) and in up to 5 of
#: 5 ensemble members on 4 060. With this ramp none of 19 trainings did (500,
#: 1 000 and 4 060 labels), and the networks were about as accurate as those that
#: survived without it: mean |dchi2| on 1 014 held-out points 8.9 against 9.0
#: (4 060 labels), 10.0 against 9.7 (1 000), 11.6 against 10.7 (500).
WARMUP_STEPS = 100

#: One layer of the NumPy path: ("linear", weight (in, out), bias) or ("tanh" |
#: "relu", None, None).
_NumpyLayer = tuple[str, np.ndarray | None, np.ndarray | None]


@dataclass(frozen=True)
class TargetScaling:
    """The modified Z-score of paper Appendix B, mapping chi2 into [-1, 1].

    With ``mu = (z0 + y_max) / 2`` (B.15) and ``sigma`` the sample variance of the
    targets (B.16, as printed), ``t = ((y - mu) / sigma) / y_hat_max`` with
    ``y_hat_max = (y_max - mu) / sigma`` (B.13, B.14). The chi2 floor ``z0`` maps to
    -1 and the largest target (the cap, 100) to +1; ``sigma`` cancels in the
    composition, so the map is the affine one between ``z0`` and ``y_max``.

    Args:
        z0: Lowest chi2 the network may return (chi2 units).
        y_max: Largest training target (chi2 units).
        mu: Shift, ``(z0 + y_max) / 2``.
        sigma: Sample variance of the training targets (B.16).
        y_hat_max: Largest Z-scored target, ``(y_max - mu) / sigma``.
    """

    z0: float
    y_max: float
    mu: float
    sigma: float
    y_hat_max: float

    @classmethod
    def fit(cls, y: np.ndarray, z0: float = 0.0) -> TargetScaling:
        """Learn the scaling from training targets ``y`` (shape ``(n,)``)."""
        y = np.asarray(y, dtype=float)
        y_max = float(y.max())
        if y_max <= z0:
            raise ModelError(
                f"targets must exceed the chi2 floor z0 = {z0:g}; largest is {y_max:g}"
            )
        mu = 0.5 * (z0 + y_max)
        sigma = float(np.var(y, ddof=1)) if y.size > 1 else 1.0
        sigma = sigma if sigma > 0.0 else 1.0
        return cls(float(z0), y_max, mu, sigma, (y_max - mu) / sigma)

    @property
    def scale(self) -> float:
        """Chi2 units per unit of the normalised target."""
        return self.y_hat_max * self.sigma

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Chi2 values to normalised targets."""
        return ((np.asarray(y, dtype=float) - self.mu) / self.sigma) / self.y_hat_max

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """Normalised network outputs back to chi2."""
        return np.asarray(t, dtype=float) * self.scale + self.mu


#: Batches up to this many points are evaluated on one torch thread.
SMALL_BATCH = 1024


@contextlib.contextmanager
def small_batch_threads(n_points: int) -> Iterator[None]:
    """Evaluate a small batch on one torch thread, restoring the count afterwards.

    Torch's tanh and exp kernels wake the thread pool even for a few hundred
    values; when the other cores are busy that wait costs milliseconds per call
    (measured 13 ms for one tanh over 300 values with 2 threads on a loaded
    2-core machine, 2.5 us on one thread). The thread count is process-wide.
    """
    old = torch.get_num_threads()
    if n_points > SMALL_BATCH or old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def torch_settings(n_threads: int | None) -> Iterator[None]:
    """Run a block with ``n_threads`` torch threads and deterministic algorithms.

    Both are process-wide torch switches; the previous values are restored on exit.
    Filling fresh tensors with NaN (part of torch's deterministic mode) is switched
    off: it only guards against reading uninitialised memory and triples the cost
    of a training step here. Results are reproducible for a fixed thread count;
    a different count may change the last bits of matrix products.
    """
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_fill = torch.utils.deterministic.fill_uninitialized_memory
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = old_fill
        torch.use_deterministic_algorithms(old_deterministic)
        torch.set_num_threads(old_threads)


class _Regressor:
    """Shared training loop of both regressors; subclasses fix architecture and maps.

    Learned state (after ``fit``): ``network_`` (torch module on normalised inputs),
    ``input_shift_`` / ``input_scale_`` (Z-score), ``input_rotation_`` (or None),
    ``target_scaling_``, ``input_low_`` / ``input_high_`` (the training box),
    ``history_`` (per epoch: validation mean |dchi2|, learning rate), ``n_epochs_``,
    ``best_validation_error_``, ``fit_time_s_``, ``n_restarts_`` (trainings redone
    because they learned nothing, see ``MAX_RESTARTS``).
    """

    kind: ClassVar[str] = ""
    _PARAMS: ClassVar[tuple[str, ...]] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Settings given to ``__init__``, as a plain dict (``deep``: no nested
        estimators here, accepted for scikit-learn's ``clone``)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> _Regressor:
        """Change settings given to ``__init__``; takes effect at the next ``fit``."""
        _set_params(self, self._PARAMS, params)
        return self

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> _Regressor:
        """Train on ``X`` (shape ``(n, n_inputs)``) and chi2 ``y`` (shape ``(n,)``).

        Without ``X_val``/``y_val`` a seeded share ``validation_fraction`` of the
        points is held out; the learning rate drops and training stops on its mean
        |dchi2|, and the weights of the best epoch are restored. A training whose
        best validation error is no better than that of a constant prediction (the
        median of ``y``) is redone from another initialisation, at most
        ``MAX_RESTARTS`` times.

        Returns:
            self
        """
        X, y = _checked_xy(X, y)
        if X_val is None or y_val is None:
            X, y, X_val, y_val = self._split(X, y)
        else:
            X_val, y_val = _checked_xy(X_val, y_val)
        start = time.perf_counter()
        # Mean |dchi2| on the validation points of the constant prediction.
        constant_error = float(np.mean(np.abs(y_val - np.median(y))))
        with torch_settings(self.n_threads):
            self._fit_maps(X, y)
            best = None
            for attempt in range(MAX_RESTARTS + 1):
                self._train(X, y, X_val, y_val, _attempt_seed(self.seed, attempt))
                if best is None or self.best_validation_error_ < best[1]:
                    best = (self.network_, self.best_validation_error_, self.history_)
                if self.best_validation_error_ < constant_error:
                    break
                logger.warning(
                    "%s regressor learned nothing (attempt %d: validation mean |dchi2| "
                    "%.3f, constant prediction %.3f); %s",
                    self.kind, attempt + 1, self.best_validation_error_, constant_error,
                    "retraining from a new initialisation"
                    if attempt < MAX_RESTARTS else "keeping the best attempt",
                )  # fmt: skip
        self.network_, self.best_validation_error_, self.history_ = best
        self.n_epochs_ = len(self.history_)
        self.n_restarts_ = attempt
        self.fit_time_s_ = time.perf_counter() - start
        logger.info(
            "%s regressor trained on %d points: %d epochs, validation mean |dchi2| %.3f, %.1f s",
            self.kind, len(y), self.n_epochs_, self.best_validation_error_, self.fit_time_s_,
        )  # fmt: skip
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted chi2, shape ``(n,)``, for inputs of shape ``(n, n_inputs)``."""
        self._check_fitted()
        X = np.asarray(X, dtype=float).reshape(-1, self.input_shift_.size)
        layers = self._numpy_layers()
        if layers is not None and len(X):
            out = np.empty(len(X))
            for i in range(0, len(X), NORMALISE_CHUNK):
                part = X[i : i + NORMALISE_CHUNK]
                out[i : i + len(part)] = _numpy_forward(
                    layers, self._normalised(part).numpy()
                )
            return self.target_scaling_.inverse(out)
        with torch.inference_mode(), small_batch_threads(len(X)):
            out = [
                self.network_(self._normalised(X[i : i + PREDICT_CHUNK])).squeeze(1)
                for i in range(0, len(X), PREDICT_CHUNK)
            ]
        t = torch.cat(out).double().numpy() if out else np.zeros(0)
        return self.target_scaling_.inverse(t)

    def _numpy_layers(self) -> list[_NumpyLayer] | None:
        """The network as NumPy float32 layers, rebuilt whenever a weight changes.

        None when the network holds a module that has no NumPy counterpart here.
        """
        # Walking the module for its parameters costs ~20 us; keep their list per
        # network object and compare only the in-place version counters.
        network = self.network_
        listed = getattr(self, "_numpy_parameters", None)
        if listed is None or listed[0] is not network:
            listed = (network, list(network.parameters()))
            self._numpy_parameters = listed
        key = (id(network), *(p._version for p in listed[1]))
        cached = getattr(self, "_numpy_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        layers: list[_NumpyLayer] | None = []
        for module in self.network_:
            if isinstance(module, nn.Linear):
                weight = module.weight.detach().numpy().T.copy()
                layers.append(("linear", weight, module.bias.detach().numpy().copy()))
            elif isinstance(module, (nn.Tanh, nn.ReLU)):
                layers.append((type(module).__name__.lower(), None, None))
            elif not isinstance(module, nn.Identity):
                layers = None
                break
        self._numpy_cache = (key, layers)
        return layers

    def normalised_inputs(self, X: np.ndarray) -> np.ndarray:
        """Inputs after Z-score (and rotation), shape ``(n, n_inputs)``, float32."""
        return self._normalised(np.asarray(X, dtype=float)).numpy()

    def to_state(self) -> dict[str, Any]:
        """Settings and learned state as torch-loadable plain types (tensors, floats).

        Inverse: :meth:`from_state`. Used by checkpoints (``weights_only`` loading).
        """
        self._check_fitted()
        rotation = self.input_rotation_
        return {
            "kind": self.kind,
            "params": self.get_params(),
            "input_shift": torch.from_numpy(self.input_shift_.copy()),
            "input_scale": torch.from_numpy(self.input_scale_.copy()),
            "input_rotation": None
            if rotation is None
            else torch.from_numpy(rotation.copy()),
            "input_low": torch.from_numpy(self.input_low_.copy()),
            "input_high": torch.from_numpy(self.input_high_.copy()),
            "target_scaling": dict(vars(self.target_scaling_)),
            "network": {k: v.clone() for k, v in self.network_.state_dict().items()},
            "history": torch.from_numpy(self.history_.copy()),
            "best_validation_error": self.best_validation_error_,
            "fit_time_s": self.fit_time_s_,
            "n_restarts": self.n_restarts_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Regressor:
        """Rebuild a fitted regressor from :meth:`to_state` output."""
        model = cls(**state["params"])
        rotation = state["input_rotation"]
        model.input_shift_ = state["input_shift"].numpy()
        model.input_scale_ = state["input_scale"].numpy()
        model.input_rotation_ = None if rotation is None else rotation.numpy()
        model.input_low_ = state["input_low"].numpy()
        model.input_high_ = state["input_high"].numpy()
        model.target_scaling_ = TargetScaling(**state["target_scaling"])
        net = model._build(model.input_shift_.size, torch.Generator().manual_seed(0))
        net.load_state_dict(state["network"])
        net.eval()
        model.network_ = net
        model.history_ = state["history"].numpy()
        model.n_epochs_ = len(model.history_)
        model.best_validation_error_ = float(state["best_validation_error"])
        model.fit_time_s_ = float(state["fit_time_s"])
        # Checkpoints written before restarts were counted hold no count.
        model.n_restarts_ = int(state.get("n_restarts", 0))
        return model

    # ----- subclass hooks -------------------------------------------------------
    def _layer_sizes(self, n_inputs: int) -> list[int]:
        raise NotImplementedError

    def _init_layer(self, layer: nn.Linear, generator: torch.Generator) -> None:
        raise NotImplementedError

    def _activation(self) -> nn.Module:
        raise NotImplementedError

    def _output_activation(self) -> nn.Module:
        raise NotImplementedError

    def _optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def _fit_target_scaling(self, y: np.ndarray) -> TargetScaling:
        raise NotImplementedError

    def _fit_rotation(self, Z: np.ndarray) -> np.ndarray | None:
        return None

    @property
    def effective_batch_size(self) -> int:
        """The batch size in use: the setting, else the paper's value at the energy."""
        raise NotImplementedError

    # ----- internals ------------------------------------------------------------
    def _training_batch_size(self, n_train: int) -> int:
        """Mini-batch size for ``n_train`` points.

        An explicit ``batch_size`` is used as given. The paper's sizes (500 / 750
        direct, 32 / 120 reparametrized) were chosen for about 10^5 training
        points, i.e. hundreds of steps per epoch; a campaign's first refits see a
        few dozen points, where a batch of 500 means one optimiser step per epoch
        and early stopping ends training before the network has moved. So the
        default batch shrinks to ``n_train / MIN_STEPS_PER_EPOCH`` (at least
        ``MIN_BATCH``) below that. It is the paper's from ``MIN_STEPS_PER_EPOCH``
        batches' worth of points on: 10 000 training points for the direct network
        at 13 TeV, 15 000 at 8 TeV; 640 and 2 400 for the reparametrized one.
        """
        if self.batch_size is not None:
            return int(self.batch_size)
        small = max(MIN_BATCH, math.ceil(n_train / MIN_STEPS_PER_EPOCH))
        return min(self.effective_batch_size, small)

    def _split(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        n_val = max(1, round(self.validation_fraction * len(y)))
        if n_val >= len(y):
            raise ModelError(f"need more than {n_val} points to train, got {len(y)}")
        order = np.random.default_rng(self.seed).permutation(len(y))
        val, train = order[:n_val], order[n_val:]
        return X[train], y[train], X[val], y[val]

    def _fit_maps(self, X: np.ndarray, y: np.ndarray) -> None:
        self.input_low_ = X.min(axis=0)
        self.input_high_ = X.max(axis=0)
        self.input_shift_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.input_scale_ = np.where(scale > 0.0, scale, 1.0)
        self.input_rotation_ = self._fit_rotation(
            (X - self.input_shift_) / self.input_scale_
        )
        self.target_scaling_ = self._fit_target_scaling(y)

    def _normalised(self, X: np.ndarray) -> torch.Tensor:
        Z = (X - self.input_shift_) / self.input_scale_
        if self.input_rotation_ is not None:
            Z = Z @ self.input_rotation_
        return torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))

    def _build(self, n_inputs: int, generator: torch.Generator) -> nn.Sequential:
        sizes = [n_inputs, *self._layer_sizes(n_inputs), 1]
        layers: list[nn.Module] = []
        for k in range(len(sizes) - 1):
            linear = nn.Linear(sizes[k], sizes[k + 1])
            self._init_layer(linear, generator)
            layers.append(linear)
            last = k == len(sizes) - 2
            layers.append(self._output_activation() if last else self._activation())
        return nn.Sequential(*layers)

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        seed: int,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        net = self._build(X.shape[1], generator)
        Xt = self._normalised(X)
        yt = torch.from_numpy(self.target_scaling_.transform(y).astype(np.float32))
        Xv = self._normalised(X_val)
        weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
        # Adam/NAdam weight_decay adds wd * w to the gradient: with wd = l2 / N_train
        # this is the gradient of the paper's lambda / (2 N_train) sum w^2 (Eq. 1),
        # applied to weights only.
        optimizer = self._optimizer(
            [
                {"params": weights, "weight_decay": self.l2 / len(y)},
                {"params": biases, "weight_decay": 0.0},
            ]
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=self.lr_factor, patience=self.lr_patience,
            min_lr=self.min_learning_rate,
        )  # fmt: skip
        best, best_state, stale, history = math.inf, None, 0, []
        batch = self._training_batch_size(len(y))
        steps = 0
        for _epoch in range(self.max_epochs):
            steps = self._run_epoch(net, optimizer, Xt, yt, batch, generator, steps)
            error = self._validation_error(net, Xv, y_val)
            scheduler.step(error)
            history.append((error, optimizer.param_groups[0]["lr"]))
            if error < best:
                best, best_state, stale = error, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
            if stale >= self.patience:
                break
        net.load_state_dict(best_state)
        net.eval()
        self.network_ = net
        self.history_ = np.asarray(history, dtype=float).reshape(-1, 2)
        self.n_epochs_ = len(history)
        self.best_validation_error_ = float(best)

    @staticmethod
    def _run_epoch(
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        Xt: torch.Tensor,
        yt: torch.Tensor,
        batch: int,
        generator: torch.Generator,
        steps: int,
    ) -> int:
        """One pass over the training points; returns the optimiser steps so far.

        During the first ``WARMUP_STEPS`` steps each step uses the fraction
        ``(steps + 1) / WARMUP_STEPS`` of the groups' learning rates; the rates
        themselves, which the plateau schedule reads and lowers, stay as set.
        """
        net.train()
        order = torch.randperm(len(yt), generator=generator)
        for start in range(0, len(yt), batch):
            idx = order[start : start + batch]
            residual = net(Xt[idx]).squeeze(1) - yt[idx]
            loss = 0.5 * residual.square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if steps < WARMUP_STEPS:
                rates = [group["lr"] for group in optimizer.param_groups]
                for group in optimizer.param_groups:
                    group["lr"] *= (steps + 1) / WARMUP_STEPS
                optimizer.step()
                for group, rate in zip(optimizer.param_groups, rates, strict=True):
                    group["lr"] = rate
            else:
                optimizer.step()
            steps += 1
        return steps

    def _validation_error(
        self, net: nn.Module, Xv: torch.Tensor, y_val: np.ndarray
    ) -> float:
        net.eval()
        with torch.inference_mode():
            t = net(Xv).squeeze(1).double().numpy()
        return float(np.mean(np.abs(self.target_scaling_.inverse(t) - y_val)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise ModelError(f"{type(self).__name__} is not fitted; call fit first")


class DirectRegressor(_Regressor):
    """Paper Sect. 3.1: unit-cube parameters to chi2, 4 x 300 tanh, tanh output.

    Weights start from N(0, 1/sqrt(N_{l-1})), biases from N(0, 1); inputs are
    Z-scored, targets pass the modified Z-score of Appendix B; quadratic cost plus
    ``l2 / (2 N_train) * sum w^2``; Adam. The learning rate drops by ``lr_factor``
    after ``lr_patience`` epochs without a better validation mean |dchi2|; training
    stops after ``patience`` such epochs, keeping the best weights.

    Args:
        energy_tev: Centre-of-mass energy (8 or 13 TeV); picks the paper batch size.
        hidden: Hidden layer widths.
        l2: Regularisation strength lambda of Eq. (1).
        learning_rate: Initial Adam learning rate.
        batch_size: Mini-batch size; None for the paper's (500 at 13, 750 at 8 TeV).
        max_epochs: Upper limit on training epochs.
        patience: Epochs without improvement before stopping.
        seed: Seeds initialisation, validation split and shuffling.
        validation_fraction: Share held out when ``fit`` gets no validation set.
        lr_factor: Learning-rate multiplier on a plateau.
        lr_patience: Epochs without improvement before the learning rate drops.
        min_learning_rate: Floor of the learning rate.
        chi2_floor: z0 of Appendix B, the smallest chi2 the output can reach.
        n_threads: Torch threads while training; None keeps torch's setting.
    """

    kind = "direct"
    _PARAMS = (
        "energy_tev", "hidden", "l2", "learning_rate", "batch_size", "max_epochs",
        "patience", "seed", "validation_fraction", "lr_factor", "lr_patience",
        "min_learning_rate", "chi2_floor", "n_threads",
    )  # fmt: skip

    def __init__(
        self,
        energy_tev: int = 13,
        hidden: tuple[int, ...] = (300,) * 4,
        l2: float = 1e-5,
        learning_rate: float = 1e-3,
        batch_size: int | None = None,
        max_epochs: int = 300,
        patience: int = 20,
        seed: int = 0,
        validation_fraction: float = 0.1,
        lr_factor: float = 0.5,
        lr_patience: int = 5,
        min_learning_rate: float = 1e-6,
        chi2_floor: float = 0.0,
        n_threads: int | None = None,
    ) -> None:
        self.energy_tev = energy_tev
        self.hidden = hidden
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_learning_rate = min_learning_rate
        self.chi2_floor = chi2_floor
        self.n_threads = n_threads

    @property
    def effective_batch_size(self) -> int:
        """The batch size in use: the setting, else the paper's value at the energy."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return DIRECT_BATCH_SIZE.get(int(self.energy_tev), DIRECT_BATCH_SIZE[13])

    def _layer_sizes(self, n_inputs: int) -> list[int]:
        return list(self.hidden)

    def _init_layer(self, layer: nn.Linear, generator: torch.Generator) -> None:
        with torch.no_grad():
            nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features), generator=generator)  # fmt: skip
            nn.init.normal_(layer.bias, 0.0, 1.0, generator=generator)

    def _activation(self) -> nn.Module:
        return nn.Tanh()

    def _output_activation(self) -> nn.Module:
        return nn.Tanh()

    def _optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.Adam(groups, lr=self.learning_rate)

    def _fit_target_scaling(self, y: np.ndarray) -> TargetScaling:
        return TargetScaling.fit(y, z0=self.chi2_floor)


class ReparametrizedRegressor(_Regressor):
    """Paper Sect. 4.3: the 56 phenomenological features to chi2, 500 + 8 x 200 ReLU.

    Inputs are Z-scored and projected on the eigenvectors of their training
    covariance (stored as ``input_rotation_``); targets are plainly Z-scored and the
    output is linear (the paper drops the Appendix-B modification here). L2
    lambda = 1e-3, NAdam with the paper's energy-dependent learning rate, reduced on
    a validation plateau. The paper does not state its initialisation; weights start
    He-normal (suited to ReLU), biases at zero.

    Args:
        energy_tev: 8 or 13 TeV; picks batch size (120 / 32) and learning rate
            (0.01 / 0.002) when those are None.
        hidden: Hidden layer widths.
        learning_rate: Initial NAdam learning rate, None for the paper's.
        Others as in :class:`DirectRegressor`.
    """

    kind = "reparametrized"
    _PARAMS = (
        "energy_tev", "hidden", "l2", "learning_rate", "batch_size", "max_epochs",
        "patience", "seed", "validation_fraction", "lr_factor", "lr_patience",
        "min_learning_rate", "n_threads",
    )  # fmt: skip

    def __init__(
        self,
        energy_tev: int = 13,
        hidden: tuple[int, ...] = (500,) + (200,) * 8,
        l2: float = 1e-3,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        max_epochs: int = 300,
        patience: int = 20,
        seed: int = 0,
        validation_fraction: float = 0.1,
        lr_factor: float = 0.5,
        lr_patience: int = 5,
        min_learning_rate: float = 1e-6,
        n_threads: int | None = None,
    ) -> None:
        self.energy_tev = energy_tev
        self.hidden = hidden
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_learning_rate = min_learning_rate
        self.n_threads = n_threads

    @property
    def effective_batch_size(self) -> int:
        """The batch size in use: the setting, else the paper's value at the energy."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return REPARAMETRIZED_BATCH_SIZE.get(int(self.energy_tev), 32)

    def _layer_sizes(self, n_inputs: int) -> list[int]:
        return list(self.hidden)

    def _init_layer(self, layer: nn.Linear, generator: torch.Generator) -> None:
        with torch.no_grad():
            std = math.sqrt(2.0 / layer.in_features)
            nn.init.normal_(layer.weight, 0.0, std, generator=generator)
            nn.init.zeros_(layer.bias)

    def _activation(self) -> nn.Module:
        return nn.ReLU()

    def _output_activation(self) -> nn.Module:
        return nn.Identity()

    def _optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        lr = self.learning_rate
        if lr is None:
            lr = REPARAMETRIZED_LEARNING_RATE.get(int(self.energy_tev), 0.002)
        return torch.optim.NAdam(groups, lr=lr)

    def _fit_target_scaling(self, y: np.ndarray) -> TargetScaling:
        # Plain Z-score expressed in the same record: t = (y - mean) / std.
        mean = float(np.mean(y))
        std = float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
        std = std if std > 0.0 else 1.0
        return TargetScaling(
            z0=-math.inf, y_max=math.inf, mu=mean, sigma=std, y_hat_max=1.0
        )

    def _fit_rotation(self, Z: np.ndarray) -> np.ndarray:
        covariance = np.atleast_2d(np.cov(Z, rowvar=False))
        _, vectors = np.linalg.eigh(covariance)
        return vectors[:, ::-1].copy()


REGRESSORS: dict[str, type[_Regressor]] = {
    DirectRegressor.kind: DirectRegressor,
    ReparametrizedRegressor.kind: ReparametrizedRegressor,
}


def make_regressor(kind: str, **params: Any) -> _Regressor:
    """Build a regressor by kind (``direct`` or ``reparametrized``)."""
    if kind not in REGRESSORS:
        raise ModelError(
            f"unknown surrogate kind {kind!r}; expected one of {sorted(REGRESSORS)}"
        )
    return REGRESSORS[kind](**params)


def regressor_from_state(state: dict[str, Any]) -> _Regressor:
    """Rebuild a fitted regressor of either kind from its ``to_state`` output."""
    kind = state.get("kind")
    if kind not in REGRESSORS:
        raise ModelError(f"unknown surrogate kind {kind!r} in saved state")
    return REGRESSORS[kind].from_state(state)


class StackedNetwork(nn.Module):
    """Members of one architecture evaluated in one module, the core of exported models.

    Holds every member's input Z-score (and rotation), weights and target scaling
    as stacked tensors ``(n_members, ...)``, so one module (and one exported graph)
    evaluates the whole ensemble.

    Args:
        members: Fitted regressors of the same kind and layer sizes.
    """

    def __init__(self, members: list[_Regressor]) -> None:
        super().__init__()
        kinds = {m.kind for m in members}
        if len(kinds) != 1:
            raise ModelError(f"cannot stack members of kinds {sorted(kinds)}")
        self.tanh_output = members[0].kind == DirectRegressor.kind
        self.register_buffer("shift", _stack([m.input_shift_ for m in members], 1))
        self.register_buffer("scale", _stack([m.input_scale_ for m in members], 1))
        rotations = [m.input_rotation_ for m in members]
        self.has_rotation = rotations[0] is not None
        if self.has_rotation:
            self.register_buffer("rotation", _stack(rotations, 0))
        linears = [[x for x in m.network_ if isinstance(x, nn.Linear)] for m in members]
        for k in range(len(linears[0])):
            weight = torch.stack([ls[k].weight.detach().t() for ls in linears])
            bias = torch.stack([ls[k].bias.detach()[None, :] for ls in linears])
            self.register_buffer(f"weight{k}", weight.contiguous())
            self.register_buffer(f"bias{k}", bias.contiguous())
        self.n_layers = len(linears[0])
        self.n_members = len(members)
        scalings = [m.target_scaling_ for m in members]
        self.register_buffer(
            "target_scale",
            torch.tensor([[s.scale] for s in scalings], dtype=torch.float64),
        )
        self.register_buffer(
            "target_shift",
            torch.tensor([[s.mu] for s in scalings], dtype=torch.float64),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Chi2 per member, shape ``(n_members, n)``, for inputs ``(n, n_inputs)`` float64."""
        z = (x.unsqueeze(0) - self.shift) / self.scale
        # Plain matrix products member by member: torch's batched product spreads
        # tiny batches over threads, which costs milliseconds on a busy machine.
        h = list(z.unbind(0))  # one view per member (one op, not one per member)
        if self.has_rotation:
            h = [
                torch.mm(hk, rk)
                for hk, rk in zip(h, self.rotation.unbind(0), strict=True)
            ]
        h = [hk.to(torch.float32) for hk in h]
        for i in range(self.n_layers):
            weights = getattr(self, f"weight{i}").unbind(0)
            biases = getattr(self, f"bias{i}").unbind(0)
            h = [
                torch.addmm(b, hk, w)
                for hk, w, b in zip(h, weights, biases, strict=True)
            ]
            if self.tanh_output:
                h = [torch.tanh(hk) for hk in h]
            elif i < self.n_layers - 1:
                h = [torch.relu(hk) for hk in h]
        out = torch.stack(h).squeeze(-1)
        return out.to(torch.float64) * self.target_scale + self.target_shift


def _numpy_forward(layers: list[_NumpyLayer], h: np.ndarray) -> np.ndarray:
    """Network output (before the target scaling) for float32 inputs ``(n, d)``.

    Runs in passes of :data:`NUMPY_CHUNK` points through preallocated buffers, one
    per layer, so no pass allocates memory. From :data:`PARALLEL_MIN_POINTS` points
    on, the library :func:`large_batch_library` names runs the batch: torch on its
    intra-op threads, or NumPy with the rows shared out over as many threads as its
    BLAS may use, each of them multiplying on a single BLAS thread meanwhile.
    """
    n = len(h)
    if n >= PARALLEL_MIN_POINTS and large_batch_library() == "torch":
        return _torch_forward(layers, h)
    if n >= PARALLEL_MIN_POINTS:
        blas = _blas_threads()
        n_threads = min(blas.num_threads(), n // NUMPY_CHUNK)
        if n_threads > 1:
            return blas.run_split(layers, h, n_threads)
    return _numpy_forward_serial(layers, h)


def _numpy_forward_serial(layers: list[_NumpyLayer], h: np.ndarray) -> np.ndarray:
    """:func:`_numpy_forward` in the calling thread."""
    n = len(h)
    if n <= NUMPY_BATCH:
        # A handful of points: fewest NumPy calls, since each costs microseconds.
        for kind, weight, bias in layers:
            if kind == "linear":
                h = h @ weight + bias
            elif kind == "tanh":
                h = np.tanh(h)
            else:
                h = np.maximum(h, 0.0)
        return h[:, 0].astype(np.float64)
    chunk = min(n, NUMPY_CHUNK)
    widths = [w.shape[1] for kind, w, _ in layers if kind == "linear"]
    buffers = [np.empty((chunk, width), dtype=np.float32) for width in widths]
    out = np.empty(n)
    for start in range(0, n, chunk):
        x = h[start : start + chunk]
        rows = len(x)
        k = 0
        for kind, weight, bias in layers:
            if kind == "linear":
                y = buffers[k][:rows]
                np.matmul(x, weight, out=y)
                y += bias
                x, k = y, k + 1
            elif kind == "tanh":
                np.tanh(x, out=x)
            else:
                np.maximum(x, 0.0, out=x)
        out[start : start + rows] = x[:, 0]
    return out


def large_batch_library() -> str:
    """The library whose matrix product runs large batches here: "numpy" or "torch".

    Chosen by a fixed rule rather than by timing, so that every process on a
    machine makes the same choice and a batch predicts bit-identically in each.
    Torch multiplies through Intel's MKL, which is fast on Intel processors and
    slow on others; NumPy through OpenBLAS. Measured for the network's 300-wide
    layers on two cores (benchmarks/bench_network.py): on an AVX-512 Intel Xeon,
    torch 288 against NumPy 240 GFLOP/s, and ``predict`` at batch 65 536 237
    against 224 (70 % against 66 % of the square GEMM); on an AMD EPYC, torch
    106-148 against NumPy 190.
    So torch runs large batches when it was built with MKL and the processor is
    Intel's; :data:`LARGE_BATCH_LIBRARY` overrides the rule.
    """
    if LARGE_BATCH_LIBRARY is not None:
        return LARGE_BATCH_LIBRARY
    global _LIBRARY_BY_RULE
    if _LIBRARY_BY_RULE is None:
        intel = _cpu_vendor() == "GenuineIntel"
        _LIBRARY_BY_RULE = (
            "torch" if intel and torch.backends.mkl.is_available() else "numpy"
        )
    return _LIBRARY_BY_RULE


_LIBRARY_BY_RULE: str | None = None


def _cpu_vendor() -> str:
    """The processor's vendor string from /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def _torch_forward(layers: list[_NumpyLayer], h: np.ndarray) -> np.ndarray:
    """:func:`_numpy_forward` through torch, in passes of :data:`TORCH_CHUNK` points.

    Each product adds its bias in the same call and writes into a preallocated
    buffer, and each activation works in place, so no pass allocates memory; the
    products and activations use torch's intra-op threads. The weights are the
    NumPy arrays themselves, not copies. (Weights packed once for MKL instead of
    in every product were measured too: no faster for these layer shapes.)
    """
    n = len(h)
    chunk = min(n, TORCH_CHUNK)
    out = np.empty(n)
    with torch.inference_mode():
        steps = [
            (kind, None if w is None else torch.from_numpy(w),
             None if b is None else torch.from_numpy(b))
            for kind, w, b in layers
        ]  # fmt: skip
        widths = [w.shape[1] for kind, w, _ in steps if kind == "linear"]
        buffers = [torch.empty((chunk, width)) for width in widths]
        inputs = torch.from_numpy(np.ascontiguousarray(h, dtype=np.float32))
        for start in range(0, n, chunk):
            x = inputs[start : start + chunk]
            rows = len(x)
            k = 0
            for kind, weight, bias in steps:
                if kind == "linear":
                    y = buffers[k][:rows]
                    torch.addmm(bias, x, weight, out=y)
                    x, k = y, k + 1
                elif kind == "tanh":
                    torch.tanh_(x)
                else:
                    torch.relu_(x)
            out[start : start + rows] = x[:, 0].numpy()
    return out


class _BlasThreads:
    """NumPy's BLAS thread count, and a row-split forward pass over that many threads.

    The BLAS's own thread count is the budget: a Dask worker or a user that limits
    it to one thread gets the single-threaded pass. While a split pass runs, the
    BLAS is limited to one thread for the whole process (the limit is
    process-wide); another thread's matrix product in that time runs on one core.
    """

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        self._controller = ThreadpoolController().select(user_api="blas")
        self._pool: ThreadPoolExecutor | None = None
        self._pool_key: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def num_threads(self) -> int:
        """Threads the BLAS may use now (1 when NumPy's BLAS is not found)."""
        counts = [lib.num_threads for lib in self._controller.lib_controllers]
        return max(counts, default=1)

    def run_split(
        self, layers: list[_NumpyLayer], h: np.ndarray, n_threads: int
    ) -> np.ndarray:
        """The forward pass of ``h`` in ``n_threads`` row blocks, one per thread."""
        # Blocks of whole passes, so each thread runs full NUMPY_CHUNK passes.
        passes = -(-len(h) // NUMPY_CHUNK)
        bounds = [
            min(len(h), NUMPY_CHUNK * (passes * k // n_threads))
            for k in range(n_threads + 1)
        ]
        blocks = [h[a:b] for a, b in itertools.pairwise(bounds)]
        pool = self._executor(n_threads)
        with self._controller.limit(limits=1):
            parts = list(pool.map(partial(_numpy_forward_serial, layers), blocks))
        return np.concatenate(parts)

    def _executor(self, n_threads: int) -> ThreadPoolExecutor:
        # A forked child inherits the executor object but not its threads.
        key = (os.getpid(), n_threads)
        with self._lock:
            if self._pool_key != key:
                if self._pool is not None and self._pool_key[0] == key[0]:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(
                    max_workers=n_threads, thread_name_prefix="scynet-forward"
                )
                self._pool_key = key
            return self._pool


_BLAS: _BlasThreads | None = None


def _blas_threads() -> _BlasThreads:
    """The process's :class:`_BlasThreads`, made on first use."""
    global _BLAS
    if _BLAS is None:
        _BLAS = _BlasThreads()
    return _BLAS


def _set_params(estimator: Any, names: tuple[str, ...], params: dict) -> None:
    """Set ``__init__`` settings on ``estimator``, refusing names it does not take."""
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ModelError(
            f"{type(estimator).__name__} has no setting {', '.join(unknown)};"
            f" it takes {', '.join(names)}"
        )
    for name, value in params.items():
        setattr(estimator, name, value)


def _stack(arrays: list[np.ndarray], axis_insert: int) -> torch.Tensor:
    """Stack float64 arrays into ``(K, 1, d)`` (axis_insert=1) or ``(K, d, d)``."""
    t = torch.from_numpy(np.stack(arrays).astype(np.float64))
    return t.unsqueeze(1) if axis_insert == 1 else t


def _attempt_seed(seed: int, attempt: int) -> int:
    """Seed of the weights and batch order of training ``attempt`` (0 = first).

    The first attempt uses ``seed`` itself, so fits that need no restart are as
    before; later ones draw from a seed sequence keyed by both numbers, so their
    initialisations are unrelated to other regressors' seeds.
    """
    if attempt == 0:
        return int(seed)
    entropy = np.random.SeedSequence([int(seed), attempt]).generate_state(1)
    return int(entropy[0])


def _checked_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or len(X) != len(y):
        raise ModelError(
            f"need X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ModelError("training inputs and chi2 targets must be finite")
    return X, y
