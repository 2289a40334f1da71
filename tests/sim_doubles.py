"""Simple, picklable simulators for the campaign tests; never a shipped default.

``AnalyticSimulator`` follows the backend contract of ``simulators.backends`` with an
analytic chi-square landscape of the unit-cube coordinates, so a campaign can run in
seconds. Options add sleeping, rejection, failure and a raising simulator.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from simulators.result import SimulationResult

#: PDG codes of the gluino and the lightest neutralino.
PDG_GLUINO, PDG_NEUTRALINO1 = 1000021, 1000022


def landscape_chi2(u: np.ndarray, *, energy_tev: int = 13) -> np.ndarray:
    """Analytic chi-square of unit-cube points, between 0 and 100.

    Rises from about 20 at the centre ``u = 0.3`` to the cap of 100 far away, so that
    uniform draws populate every paper region (I, zero, II, III, cap).

    Args:
        u: Unit-cube coordinates, shape ``(n_points, dim)``.
        energy_tev: Shifts the landscape a little per energy.

    Returns:
        Chi-square per point, shape ``(n_points,)``.
    """
    u = np.atleast_2d(np.asarray(u, dtype=float))
    s = 12.0 * np.mean((u - 0.3) ** 2, axis=1)
    return np.minimum(100.0, 20.0 + 85.0 * (1.0 - np.exp(-0.8 * s)) + 0.01 * energy_tev)


def _fraction(seed: int, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


class AnalyticSimulator:
    """Test simulator: chi-square from :func:`landscape_chi2`.

    Args:
        names: Parameter names in space order.
        lower: Lower range edge per parameter (GeV).
        upper: Upper range edge per parameter (GeV).
        energies: Centre-of-mass energies (TeV) to label.
        sleep_s: Seconds to sleep per point.
        reject_fraction: Share of seeds rejected (final).
        fail_fraction: Share of seeds that fail on every attempt.
        final_fail_fraction: Share of seeds that fail with ``retryable=False``, as a
            spectrum generator does for a point whose physics it cannot handle.
        flaky_dir: When set, every point fails on its first attempt and succeeds
            afterwards (a marker file per seed in this directory remembers it).
        raise_fraction: Share of seeds for which ``simulate`` raises instead of
            returning a failed record.
        broken: ``check()`` raises, as a backend with a missing binary would.
        started_dir: When set, a file ``started-<seed>`` appears in this directory
            as each simulation starts, so a test can wait for running jobs.
    """

    name = "analytic-test"
    version = "1"

    def __init__(
        self,
        names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        *,
        energies: Sequence[int] = (13,),
        sleep_s: float = 0.0,
        reject_fraction: float = 0.0,
        fail_fraction: float = 0.0,
        final_fail_fraction: float = 0.0,
        flaky_dir: str | None = None,
        raise_fraction: float = 0.0,
        broken: bool = False,
        started_dir: str | None = None,
    ) -> None:
        self.names = tuple(names)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.energies = tuple(int(e) for e in energies)
        self.sleep_s = sleep_s
        self.reject_fraction = reject_fraction
        self.fail_fraction = fail_fraction
        self.final_fail_fraction = final_fail_fraction
        self.flaky_dir = flaky_dir
        self.raise_fraction = raise_fraction
        self.broken = broken
        self.started_dir = started_dir

    @classmethod
    def for_space(cls, space, **kwargs) -> AnalyticSimulator:
        """Build for a ``sampler.space.ParameterSpace``."""
        return cls(space.names, space.lower, space.upper, **kwargs)

    def check(self) -> None:
        """Raise the backend configuration error when built ``broken``."""
        from simulators.errors import SimulatorConfigError

        if self.broken:
            raise SimulatorConfigError(
                "analytic-test: binary /nonexistent/SPheno not found"
            )

    def describe(self) -> dict:
        """The fixed shape of the labels."""
        return {
            "energies": list(self.energies),
            "analyses": {e: ["analytic"] for e in self.energies},
            "n_features": 56,
        }

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: Path
    ) -> SimulationResult:
        """Label one point; see the class docstring for the failure options."""
        if self.started_dir is not None:
            (Path(self.started_dir) / f"started-{seed}").touch()
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if _fraction(seed, "raise") < self.raise_fraction:
            raise RuntimeError(f"analytic-test crashed on seed {seed}")
        if _fraction(seed, "reject") < self.reject_fraction:
            return SimulationResult.rejected("analytic-test: LSP is charged")
        if _fraction(seed, "fail") < self.fail_fraction:
            (Path(workdir) / "crash.log").write_text("segfault\n")
            return SimulationResult.failed("analytic-test: tool crashed")
        if _fraction(seed, "final") < self.final_fail_fraction:
            return SimulationResult.failed(
                "analytic-test: tachyonic stop", extra={"retryable": False}
            )
        if self.flaky_dir is not None and self._first_attempt(seed):
            return SimulationResult.failed("analytic-test: transient failure")
        return self._labels(point, seed)

    def _first_attempt(self, seed: int) -> bool:
        marker = Path(self.flaky_dir) / f"seed-{seed}"
        if marker.exists():
            return False
        marker.touch()
        return True

    def _labels(self, point: Mapping[str, float], seed: int) -> SimulationResult:
        x = np.array([point[name] for name in self.names], dtype=float)
        u = (x - self.lower) / (self.upper - self.lower)
        chi2 = {
            e: float(landscape_chi2(u[None, :], energy_tev=e)[0]) for e in self.energies
        }
        m_gluino = abs(point.get("M3", 1000.0))
        m_lsp = min(abs(point.get(k, 5000.0)) for k in ("M1", "M2", "mu"))
        return SimulationResult(
            status="ok",
            chi2=chi2,
            chi2_analysis={e: {"analytic": c} for e, c in chi2.items()},
            masses={PDG_GLUINO: m_gluino, PDG_NEUTRALINO1: m_lsp},
            features=[float(seed % 7)] * 56,
            timings={"total": self.sleep_s},
            simulator=self.name,
            version=self.version,
        )


class KnnSurrogate:
    """A k-nearest-neighbour chi-square model on unit-cube points, with a spread."""

    def __init__(self, U: np.ndarray, chi2: np.ndarray, k: int = 3) -> None:
        self.U = np.asarray(U, dtype=float)
        self.chi2 = np.asarray(chi2, dtype=float)
        self.k = k

    def predict(self, U: np.ndarray, return_std: bool = False):
        """Mean (and standard deviation) of the ``k`` nearest training chi2 values."""
        d2 = ((np.asarray(U)[:, None, :] - self.U[None, :, :]) ** 2).sum(-1)
        nearest = self.chi2[np.argsort(d2, axis=1)[:, : self.k]]
        mean = nearest.mean(axis=1)
        return (mean, nearest.std(axis=1)) if return_std else mean


class KnnSurrogates:
    """Campaign ``surrogates`` stand-in: kNN fits, pickle checkpoints.

    Args:
        fit_sleep_s: Seconds each fit sleeps, to mimic a network fit.
    """

    def __init__(self, fit_sleep_s: float = 0.0) -> None:
        self.fit_sleep_s = fit_sleep_s
        self.fits: list[tuple[int, int, int]] = []

    def fit(self, energy: int, round_: int, U: np.ndarray, chi2: np.ndarray):
        """Remember ``(energy, round, n)`` and return a kNN model."""
        time.sleep(self.fit_sleep_s)
        self.fits.append((energy, round_, len(chi2)))
        return KnnSurrogate(U, chi2)

    def save(self, path: Path, surrogate, **meta) -> None:
        """Pickle the model next to its metadata (temp file, then rename)."""
        import pickle

        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(pickle.dumps((surrogate, meta)))
        tmp.replace(path)

    def load(self, path: Path):
        """The pickled model; ``ModelError`` for a file that does not unpickle."""
        import pickle

        from scynet_al.errors import ModelError

        try:
            return pickle.loads(Path(path).read_bytes())[0]
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise ModelError(f"cannot read checkpoint {path}: {exc!r}") from exc


class ExactSurrogate:
    """The analytic simulator's chi-square shifted by a set error, with zero spread."""

    def __init__(self, space, simulator: AnalyticSimulator, energy: int, error: float):
        self.space = space
        self.lower, self.upper = simulator.lower, simulator.upper
        self.energy = energy
        self.error = error

    def predict(self, U: np.ndarray, return_std: bool = False):
        """Simulated chi2 of the points plus ``error`` (and a zero spread)."""
        X = self.space.from_unit(np.atleast_2d(U))
        u = (X - self.lower) / (self.upper - self.lower)
        mean = landscape_chi2(u, energy_tev=self.energy) + self.error
        return (mean, np.zeros_like(mean)) if return_std else mean


class ScoredSurrogates(KnnSurrogates):
    """Campaign ``surrogates`` stand-in whose validation error is chosen per refit.

    Every fit predicts the simulator's exact chi2 plus ``error(energy, round)``, so
    the overall mean |dchi2| a refit scores is known before the campaign runs.

    Args:
        space: The campaign's parameter space.
        simulator: The :class:`AnalyticSimulator` that labels the campaign.
        error: Error of the fit of one round at one energy (chi2 units, >= 0).
    """

    def __init__(self, space, simulator: AnalyticSimulator, error) -> None:
        super().__init__()
        self.space = space
        self.simulator = simulator
        self.error = error
        self.loads: list[Path] = []

    def fit(self, energy: int, round_: int, U: np.ndarray, chi2: np.ndarray):
        """Remember ``(energy, round, n)`` and return the shifted exact model."""
        self.fits.append((energy, round_, len(chi2)))
        error = float(self.error(energy, round_))
        return ExactSurrogate(self.space, self.simulator, energy, error)

    def load(self, path: Path):
        """The pickled model; the path is remembered in ``loads``."""
        self.loads.append(Path(path))
        return super().load(path)
