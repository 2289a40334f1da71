"""Priors over a parameter space: uniform, and the paper's Gaussian (Sect. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from sampler.errors import SpaceError
from sampler.space import ParameterSpace

#: Rejection rounds before giving up on the Gaussian prior (each keeps >~ 40 %).
_MAX_ROUNDS = 200


@dataclass(frozen=True)
class UniformPrior:
    """Uniform over the allowed union of every parameter (gaps excluded)."""

    space: ParameterSpace
    name: str = "uniform"

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape ``(n, dim)``."""
        return self.space.from_unit(rng.random((n, self.space.dim)))

    def sample_unit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points in unit-cube coordinates, shape ``(n, dim)``."""
        return rng.random((n, self.space.dim))


@dataclass(frozen=True)
class GaussianPrior:
    """The paper's Gaussian prior (Sect. 2 and its footnote 1).

    Per parameter, the magnitude range ``[a, b]`` is the span of ``|x|`` over the
    allowed set (``a = 0`` when the range contains zero). The magnitude follows a
    normal density with its maximum at a quarter of the range, ``a + (b - a) / 4``,
    and standard deviation half the range, ``(b - a) / 2``, truncated to ``[a, b]``.
    For ranges that allow negative values the density is mirrored around zero: the
    sign is + or - with equal probability, and values that fall outside the allowed
    set (an asymmetric range) are drawn again.
    """

    space: ParameterSpace
    name: str = "gaussian"

    def mode_and_width(self) -> tuple[np.ndarray, np.ndarray]:
        """Mode and standard deviation of the magnitude per parameter, ``(dim,)`` each."""
        a, b = self._magnitude_range()
        return a + (b - a) / 4.0, (b - a) / 2.0

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape ``(n, dim)``."""
        X = np.empty((n, self.space.dim))
        for j in range(self.space.dim):
            X[:, j] = self._sample_column(j, n, rng)
        return X

    def sample_unit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points in unit-cube coordinates, shape ``(n, dim)``."""
        return self.space.to_unit(self.sample(n, rng))

    def _sample_column(self, j: int, n: int, rng: np.random.Generator) -> np.ndarray:
        a, b = (v[j] for v in self._magnitude_range())
        mode, sigma = a + (b - a) / 4.0, (b - a) / 2.0
        mirrored = self.space.lower[j] < 0.0
        sub = _single_column_space(self.space, j)
        out = np.empty(0)
        for _ in range(_MAX_ROUNDS):
            need = n - out.size
            if need <= 0:
                return out[:n]
            draw = _truncated_normal(mode, sigma, a, b, int(need * 1.3) + 8, rng)
            if mirrored:
                draw = np.where(rng.random(draw.size) < 0.5, -draw, draw)
            out = np.concatenate([out, draw[sub.contains(draw[:, None])]])
        raise SpaceError(
            f"Gaussian prior cannot fill the range of {self.space.names[j]}"
        )

    def _magnitude_range(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.space.lower, self.space.upper
        b = np.maximum(np.abs(lo), np.abs(hi))
        a = np.array(
            [
                0.0
                if any(l0 <= 0.0 <= h0 for l0, h0 in iv)
                else min(abs(v) for p in iv for v in p)
                for iv in self.space.intervals.values()
            ]
        )
        return a, b


def _single_column_space(space: ParameterSpace, j: int) -> ParameterSpace:
    name = space.names[j]
    return ParameterSpace(space.model, {name: space.intervals[name]})


def _truncated_normal(
    mean: float, sigma: float, lo: float, hi: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Inverse-CDF draws of a normal truncated to ``[lo, hi]``."""
    c_lo, c_hi = ndtr((lo - mean) / sigma), ndtr((hi - mean) / sigma)
    u = c_lo + rng.random(n) * (c_hi - c_lo)
    return np.clip(mean + sigma * ndtri(u), lo, hi)


def make_prior(kind: str, space: ParameterSpace) -> UniformPrior | GaussianPrior:
    """Build a prior by name (``uniform`` or ``gaussian``)."""
    if kind == "uniform":
        return UniformPrior(space)
    if kind == "gaussian":
        return GaussianPrior(space)
    raise SpaceError(f"unknown prior {kind!r}; expected 'uniform' or 'gaussian'")
