"""pMSSM parameter spaces: ranges with gaps, membership and the unit-cube map."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sampler.errors import SpaceError

#: Canonical pMSSM-11 names (GeV; ``tanb`` dimensionless), paper Table 1.
PMSSM11_NAMES: tuple[str, ...] = (
    "M1", "M2", "M3", "mQ12", "mQ3", "mL12", "mL3", "mA", "A", "mu", "tanb",
)  # fmt: skip

#: Canonical pMSSM-19 names (GeV; ``tanb`` dimensionless).
PMSSM19_NAMES: tuple[str, ...] = (
    "M1", "M2", "M3", "mL12", "mE12", "mL3", "mE3", "mQ12", "mU12", "mD12",
    "mQ3", "mU3", "mD3", "At", "Ab", "Atau", "mu", "mA", "tanb",
)  # fmt: skip

Interval = tuple[float, float]

#: Paper Table 1 ranges in GeV; M3 and mu exclude a gap around zero.
PMSSM11_RANGES: dict[str, tuple[Interval, ...]] = {
    "M1": ((-4000.0, 4000.0),),
    "M2": ((100.0, 4000.0),),
    "M3": ((-4000.0, -400.0), (400.0, 4000.0)),
    "mQ12": ((300.0, 5000.0),),
    "mQ3": ((100.0, 5000.0),),
    "mL12": ((100.0, 3000.0),),
    "mL3": ((100.0, 4000.0),),
    "mA": ((0.0, 4000.0),),
    "A": ((-5000.0, 5000.0),),
    "mu": ((-5000.0, -100.0), (100.0, 5000.0)),
    "tanb": ((1.0, 60.0),),
}

#: Default pMSSM-19 ranges in GeV, carried over from Table 1 parameter by parameter
#: (sleptons like mL3, third-generation squarks like mQ3, trilinears like A).
PMSSM19_DEFAULT_RANGES: dict[str, tuple[Interval, ...]] = {
    "M1": PMSSM11_RANGES["M1"],
    "M2": PMSSM11_RANGES["M2"],
    "M3": PMSSM11_RANGES["M3"],
    "mL12": PMSSM11_RANGES["mL12"],
    "mE12": PMSSM11_RANGES["mL12"],
    "mL3": PMSSM11_RANGES["mL3"],
    "mE3": PMSSM11_RANGES["mL3"],
    "mQ12": PMSSM11_RANGES["mQ12"],
    "mU12": PMSSM11_RANGES["mQ12"],
    "mD12": PMSSM11_RANGES["mQ12"],
    "mQ3": PMSSM11_RANGES["mQ3"],
    "mU3": PMSSM11_RANGES["mQ3"],
    "mD3": PMSSM11_RANGES["mQ3"],
    "At": PMSSM11_RANGES["A"],
    "Ab": PMSSM11_RANGES["A"],
    "Atau": PMSSM11_RANGES["A"],
    "mu": PMSSM11_RANGES["mu"],
    "mA": PMSSM11_RANGES["mA"],
    "tanb": PMSSM11_RANGES["tanb"],
}


@dataclass(frozen=True)
class ParameterSpace:
    """A box of named parameters, each a union of disjoint closed intervals.

    The unit-cube map lays the allowed intervals of a parameter end to end, so every
    point of ``[0, 1]^d`` maps into the space and the gaps (M3 and mu near zero)
    are never reached.

    Args:
        model: Short model name, ``"pmssm11"`` or ``"pmssm19"``.
        intervals: Per parameter, in canonical order, its allowed intervals (GeV).
    """

    model: str
    intervals: Mapping[str, tuple[Interval, ...]]
    _lows: np.ndarray = field(init=False, repr=False, compare=False)
    _widths: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked = {
            name: _checked_intervals(name, iv) for name, iv in self.intervals.items()
        }
        object.__setattr__(self, "intervals", checked)
        n_max = max(len(iv) for iv in checked.values())
        lows = np.full((self.dim, n_max), np.nan)
        widths = np.zeros((self.dim, n_max))
        for j, name in enumerate(self.names):
            for k, (lo, hi) in enumerate(checked[name]):
                lows[j, k], widths[j, k] = lo, hi - lo
        object.__setattr__(self, "_lows", lows)
        object.__setattr__(self, "_widths", widths)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in canonical order."""
        return tuple(self.intervals)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.intervals)

    @property
    def lower(self) -> np.ndarray:
        """Lowest allowed value per parameter, shape ``(dim,)``."""
        return np.array([iv[0][0] for iv in self.intervals.values()])

    @property
    def upper(self) -> np.ndarray:
        """Highest allowed value per parameter, shape ``(dim,)``."""
        return np.array([iv[-1][1] for iv in self.intervals.values()])

    def to_unit(self, X: np.ndarray) -> np.ndarray:
        """Map points of the space to the unit cube.

        Args:
            X: Points, shape ``(n, dim)`` (GeV; tanb dimensionless).

        Returns:
            Unit-cube coordinates, shape ``(n, dim)``.

        Raises:
            SpaceError: A point lies outside the space.
        """
        X = self._as_matrix(X)
        self.check(X)
        total = self._widths.sum(axis=1)
        offset = np.cumsum(self._widths, axis=1) - self._widths
        inside = (X[:, :, None] >= self._lows) & (
            X[:, :, None] <= self._lows + self._widths
        )
        k = np.argmax(inside, axis=2)
        rows = np.arange(self.dim)
        along = X - self._lows[rows, k] + offset[rows, k]
        return np.clip(along / total, 0.0, 1.0)

    def from_unit(self, U: np.ndarray) -> np.ndarray:
        """Map unit-cube coordinates into the space.

        Args:
            U: Coordinates in ``[0, 1]``, shape ``(n, dim)``.

        Returns:
            Points of the space, shape ``(n, dim)``.
        """
        U = self._as_matrix(U)
        if np.any(~np.isfinite(U)) or np.any((U < 0.0) | (U > 1.0)):
            raise SpaceError("unit-cube coordinates must be finite and lie in [0, 1]")
        total = self._widths.sum(axis=1)
        ends = np.cumsum(self._widths, axis=1)
        along = U * total
        k = np.minimum(
            (along[:, :, None] > ends[None, :, :]).sum(axis=2),
            (self._widths > 0).sum(axis=1) - 1,
        )
        rows = np.arange(self.dim)
        start = ends[rows, k] - self._widths[rows, k]
        return self._lows[rows, k] + (along - start)

    def contains(self, X: np.ndarray) -> np.ndarray:
        """Tell which points lie inside the space.

        Args:
            X: Points, shape ``(n, dim)``.

        Returns:
            Boolean mask, shape ``(n,)``.
        """
        X = self._as_matrix(X)
        inside = (X[:, :, None] >= self._lows) & (
            X[:, :, None] <= self._lows + self._widths
        )
        return np.all(inside.any(axis=2), axis=1)

    def check(self, X: np.ndarray) -> None:
        """Raise if any point lies outside the space.

        Raises:
            SpaceError: Names the first offending point, parameter and value.
        """
        X = self._as_matrix(X)
        inside = (X[:, :, None] >= self._lows) & (
            X[:, :, None] <= self._lows + self._widths
        )
        bad = ~inside.any(axis=2)
        if not bad.any():
            return
        i, j = np.argwhere(bad)[0]
        name = self.names[j]
        allowed = " ∪ ".join(f"[{lo:g}, {hi:g}]" for lo, hi in self.intervals[name])
        raise SpaceError(
            f"point {i}: parameter {name} = {float(X[i, j])!r} lies outside {allowed}"
        )

    def points_to_array(self, points: Iterable[Mapping[str, float]]) -> np.ndarray:
        """Stack mappings keyed by canonical names into an array ``(n, dim)``.

        Raises:
            SpaceError: A point lacks a parameter or carries an unknown one.
        """
        rows = []
        for i, point in enumerate(points):
            missing = [name for name in self.names if name not in point]
            extra = [key for key in point if key not in self.intervals]
            if missing or extra:
                raise SpaceError(
                    f"point {i}: missing parameters {missing}, unknown parameters {extra}"
                    f" (expected {' '.join(self.names)})"
                )
            rows.append([float(point[name]) for name in self.names])
        return np.asarray(rows, dtype=float).reshape(-1, self.dim)

    def array_to_points(self, X: np.ndarray) -> list[dict[str, float]]:
        """Turn an array ``(n, dim)`` into mappings keyed by canonical names."""
        X = self._as_matrix(X)
        return [dict(zip(self.names, map(float, row), strict=True)) for row in X]

    def with_ranges(self, ranges: Mapping[str, Sequence[Interval]]) -> ParameterSpace:
        """Return a copy whose listed parameters take new interval unions."""
        unknown = sorted(set(ranges) - set(self.intervals))
        if unknown:
            raise SpaceError(f"unknown parameters {unknown} for model {self.model}")
        merged = dict(self.intervals)
        merged.update({name: tuple(map(tuple, iv)) for name, iv in ranges.items()})
        return ParameterSpace(self.model, merged)

    def to_dict(self) -> dict:
        """Plain description, e.g. for an HDF5 attribute or a checkpoint."""
        return {
            "model": self.model,
            "intervals": {k: [list(iv) for iv in v] for k, v in self.intervals.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterSpace:
        """Inverse of :meth:`to_dict`."""
        intervals = {
            k: tuple(tuple(iv) for iv in v) for k, v in data["intervals"].items()
        }
        return cls(str(data["model"]), intervals)

    def _as_matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise SpaceError(
                f"expected points of shape (n, {self.dim}) for {self.model}, got {X.shape}"
            )
        return X


def pmssm11(ranges: Mapping[str, Sequence[Interval]] | None = None) -> ParameterSpace:
    """The pMSSM-11 space of paper Table 1, optionally with some ranges replaced."""
    space = ParameterSpace("pmssm11", PMSSM11_RANGES)
    return space.with_ranges(ranges) if ranges else space


def pmssm19(ranges: Mapping[str, Sequence[Interval]] | None = None) -> ParameterSpace:
    """The pMSSM-19 space with default ranges, optionally with some replaced."""
    space = ParameterSpace("pmssm19", PMSSM19_DEFAULT_RANGES)
    return space.with_ranges(ranges) if ranges else space


def make_space(
    model: str, ranges: Mapping[str, Sequence[Interval]] | None = None
) -> ParameterSpace:
    """Build a space by model name (``pmssm11`` or ``pmssm19``)."""
    factories = {"pmssm11": pmssm11, "pmssm19": pmssm19}
    if model not in factories:
        raise SpaceError(
            f"unknown model {model!r}; expected one of {sorted(factories)}"
        )
    return factories[model](ranges)


def _checked_intervals(
    name: str, intervals: Sequence[Interval]
) -> tuple[Interval, ...]:
    out = []
    for lo, hi in intervals:
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise SpaceError(
                f"parameter {name}: range [{lo:g}, {hi:g}] is empty or inverted"
            )
        out.append((lo, hi))
    if not out:
        raise SpaceError(f"parameter {name}: no allowed range")
    out.sort()
    for (_, hi1), (lo2, _) in itertools.pairwise(out):
        if lo2 <= hi1:
            raise SpaceError(f"parameter {name}: ranges overlap at {lo2:g}")
    return tuple(out)
