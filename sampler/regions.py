"""The chi-square regions of paper Sect. 2.2 and Table 4: I, zero, II, III, cap."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sampler.errors import SamplerError

#: Region names, in increasing chi-square, used alike in configs, store and status.
REGION_NAMES: tuple[str, ...] = ("I", "zero", "II", "III", "cap")

#: The rare target ranges (paper Sect. 3.2).
RARE_REGIONS: tuple[str, ...] = ("I", "II", "III")

#: Paper Table 4 edges, chi-square units: I, zero-signal peak, II, III, cap.
PAPER_EDGES: dict[int, tuple[float, ...]] = {
    8: (0.0, 38.0, 42.0, 70.0, 95.0, 100.0),
    13: (0.0, 53.5, 56.0, 70.0, 95.0, 100.0),
}


@dataclass(frozen=True)
class ChiSquareRegions:
    """Contiguous chi-square regions given by their six edges.

    Region ``k`` holds ``edges[k] < chi2 <= edges[k + 1]``, closed on the right as
    in paper Sect. 3.2 (I: 0 < chi2 <= 38, II: 42 < chi2 <= 70, ...); the first
    region also holds its lower edge. Values below 0 or above the last edge are
    clipped into the first or last region.

    Args:
        edges: Six increasing edges (chi-square units).
    """

    edges: tuple[float, ...]

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        if len(edges) != len(REGION_NAMES) + 1:
            raise SamplerError(
                f"regions need {len(REGION_NAMES) + 1} edges, got {len(edges)}"
            )
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise SamplerError(f"region edges must increase strictly, got {edges}")
        object.__setattr__(self, "edges", edges)

    @property
    def names(self) -> tuple[str, ...]:
        """Region names in increasing chi-square."""
        return REGION_NAMES

    def index(self, chi2: np.ndarray) -> np.ndarray:
        """Region index (0 = I ... 4 = cap) per value, same shape as ``chi2``."""
        chi2 = np.asarray(chi2, dtype=float)
        idx = np.searchsorted(np.asarray(self.edges[1:-1]), chi2, side="left")
        return idx.astype(np.int64)

    def classify(self, chi2: np.ndarray) -> np.ndarray:
        """Region name per value, array of ``str`` with the shape of ``chi2``."""
        return np.asarray(REGION_NAMES, dtype=object)[self.index(chi2)]

    def is_rare(self, chi2: np.ndarray) -> np.ndarray:
        """True where a value lies in a rare target range (I, II or III)."""
        idx = self.index(chi2)
        rare = [REGION_NAMES.index(r) for r in RARE_REGIONS]
        return np.isin(idx, rare)

    def bounds(self, name: str) -> tuple[float, float]:
        """Lower and upper edge of a region by name."""
        k = REGION_NAMES.index(name)
        return self.edges[k], self.edges[k + 1]

    def as_dict(self) -> dict[str, list[float]]:
        """Region name to ``[low, high]``."""
        return {name: list(self.bounds(name)) for name in REGION_NAMES}

    @classmethod
    def paper(cls, energy_tev: int) -> ChiSquareRegions:
        """The paper's regions at 8 or 13 TeV (Table 4)."""
        if int(energy_tev) not in PAPER_EDGES:
            raise SamplerError(
                f"no paper regions at {energy_tev} TeV; expected 8 or 13"
            )
        return cls(PAPER_EDGES[int(energy_tev)])

    @classmethod
    def centred_on(
        cls,
        zero_chi2: float,
        *,
        half_width: float | None = None,
        upper_edges: Sequence[float] = (70.0, 95.0, 100.0),
    ) -> ChiSquareRegions:
        """Regions whose zero-signal window is centred on a catalogue's zero-signal chi2.

        Args:
            zero_chi2: The catalogue's chi-square with no signal anywhere.
            half_width: Half the zero-signal window; default 2.0 (the paper's 8 TeV
                window 38-42 around its peak at about 40). The paper's 13 TeV
                window, 53.5-56 around a peak at about 54, is narrower below the
                peak; one symmetric width serves both energies here, so at 13 TeV
                the zero-signal window starts 1.5 lower (2 below the peak, not
                0.5) and range I ends there.
            upper_edges: Edges of II/III, III/cap and the cap (paper: 70, 95, 100).

        Raises:
            SamplerError: The window does not fit below the II/III edge.
        """
        half = 2.0 if half_width is None else float(half_width)
        edges = (0.0, zero_chi2 - half, zero_chi2 + half, *upper_edges)
        if edges[1] <= 0.0 or edges[2] >= edges[3]:
            raise SamplerError(
                f"zero-signal chi2 {zero_chi2:g} with half-width {half:g} does not fit"
                f" between 0 and {upper_edges[0]:g}"
            )
        return cls(edges)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Sequence[float]]) -> ChiSquareRegions:
        """Build from ``{name: [low, high]}`` with contiguous, ordered regions."""
        try:
            pairs = [tuple(map(float, data[name])) for name in REGION_NAMES]
        except KeyError as exc:
            raise SamplerError(
                f"region {exc.args[0]!r} missing; need {REGION_NAMES}"
            ) from exc
        for (_, hi), (lo, _), name in zip(
            pairs, pairs[1:], REGION_NAMES[1:], strict=False
        ):
            if lo != hi:
                raise SamplerError(
                    f"region {name} starts at {lo:g}, previous ends at {hi:g}"
                )
        return cls((pairs[0][0], *(hi for _, hi in pairs)))
