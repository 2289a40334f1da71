"""Expected signal per signal region, built up from batches of generated events.

The built-in chain estimates the expected signal of a signal region (SR) as

    s = L · Σ_g (σ_g / N_g) · Σ_{i ∈ g} f_i,

with ``L`` the analysis luminosity (fb⁻¹), ``σ_g`` the cross section of production
group ``g`` (fb), ``N_g`` the events generated for it and ``f_i`` the share of
event ``i``'s detector replicas that pass the SR's cuts. Its Monte Carlo error
treats each generated event as one sample: ``L σ_g / N_g · sqrt(Σ f_i²)`` per group,
added in quadrature.

:class:`SignalTally` keeps only the per-group sums ``Σ f_i`` and ``Σ f_i²`` for every
SR, so events can be generated, reconstructed and thrown away in batches: a point
near the exclusion boundary may need a hundred times the usual statistics, far more
events than fit in memory at once.

It also keeps Poisson-bootstrap replicas of ``Σ f_i`` (each event counted ``k ~
Poisson(1)`` times, independently per replica). Combining each replica's signal
into a χ² gives the spread of χ² that the finite event sample causes, including
its jumps when the choice of the best SR changes: the Monte Carlo error of χ²
that adaptive statistics drives below a target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bootstrap replicas of the pass counts: the relative error of a standard
#: deviation estimated from them is about 1/sqrt(2 × 64) ≈ 9 %.
N_BOOTSTRAP = 64


@dataclass
class _GroupSums:
    """Per-SR sums over one production group's events."""

    counts: np.ndarray  # Σ f_i, shape (n_columns,)
    squares: np.ndarray  # Σ f_i², shape (n_columns,)
    bootstrap: np.ndarray  # Σ k_bi f_i, shape (n_bootstrap, n_columns)
    n_events: int = 0
    #: Pythia instance label to (events it generated, σ in fb, σ error in fb).
    cross_sections: dict[Any, tuple[int, float, float]] = field(default_factory=dict)

    def sigma_fb(self) -> tuple[float, float]:
        """Event-weighted mean cross section over instances and its error (fb)."""
        n = sum(k for k, _, _ in self.cross_sections.values())
        if n == 0:
            return 0.0, 0.0
        mean = sum(k * s for k, s, _ in self.cross_sections.values()) / n
        error = np.sqrt(sum((k * e) ** 2 for k, _, e in self.cross_sections.values()))
        return float(mean), float(error / n)


class SignalTally:
    """Pass counts of every implemented SR at one energy, per production group.

    Args:
        analyses: The implemented analyses at this energy (each with ``name``,
            ``signal_regions`` and ``luminosity_fb``).
        seed: Seed of the bootstrap's Poisson draws.
        n_bootstrap: Bootstrap replicas kept.
    """

    def __init__(
        self, analyses: Sequence[Any], *, seed: int, n_bootstrap: int = N_BOOTSTRAP
    ) -> None:
        self.columns = [(a.name, sr) for a in analyses for sr in a.signal_regions]
        self.luminosity_fb = np.array(
            [a.luminosity_fb for a in analyses for _ in a.signal_regions], dtype=float
        )
        self.n_bootstrap = n_bootstrap
        self._rng = np.random.default_rng([seed, 11])
        self._groups: dict[str, _GroupSums] = {}

    @property
    def groups(self) -> list[str]:
        """Production groups seen so far."""
        return list(self._groups)

    def n_events(self, group: str) -> int:
        """Events of ``group`` added so far."""
        return self._groups[group].n_events if group in self._groups else 0

    def add_events(self, group: str, fractions: np.ndarray) -> None:
        """Add a batch of one group's events.

        Args:
            group: Production group name.
            fractions: Share of each event's detector replicas passing each SR,
                shape ``(n_columns, n_events)``, columns in :attr:`columns` order.
        """
        fractions = np.asarray(fractions, dtype=float)
        if fractions.ndim != 2 or fractions.shape[0] != len(self.columns):
            raise ValueError(
                f"fractions must have shape ({len(self.columns)}, n_events), got "
                f"{fractions.shape}"
            )
        sums = self._groups.get(group)
        if sums is None:
            k = len(self.columns)
            sums = _GroupSums(np.zeros(k), np.zeros(k), np.zeros((self.n_bootstrap, k)))
            self._groups[group] = sums
        n = fractions.shape[1]
        sums.counts += fractions.sum(axis=1)
        sums.squares += (fractions**2).sum(axis=1)
        if n:
            draws = self._rng.poisson(1.0, size=(self.n_bootstrap, n)).astype(float)
            sums.bootstrap += draws @ fractions.T
        sums.n_events += n

    def set_cross_section(
        self, group: str, instance: Any, n_events: int, sigma_fb: float, error_fb: float
    ) -> None:
        """Record (or update) the cross section one Pythia instance measured.

        Args:
            group: Production group name (must have events).
            instance: Label of the generator instance, e.g. the refinement round.
            n_events: Events that instance generated for this group.
            sigma_fb: Its cross-section estimate (fb).
            error_fb: Its statistical error (fb).
        """
        self._groups[group].cross_sections[instance] = (
            int(n_events),
            float(sigma_fb),
            float(error_fb),
        )

    def cross_sections_fb(self) -> dict[str, float]:
        """Group to its event-weighted mean cross section (fb)."""
        return {g: sums.sigma_fb()[0] for g, sums in self._groups.items()}

    def signal(self) -> tuple[np.ndarray, np.ndarray]:
        """Expected signal events per column and its Monte Carlo error."""
        s = np.zeros(len(self.columns))
        variance = np.zeros(len(self.columns))
        for sums in self._groups.values():
            if sums.n_events == 0:
                continue
            weight = self.luminosity_fb * sums.sigma_fb()[0] / sums.n_events
            s += weight * sums.counts
            variance += weight**2 * sums.squares
        return s, np.sqrt(variance)

    def bootstrap_signal(self) -> np.ndarray:
        """Expected signal per column in each bootstrap replica, ``(n_bootstrap,
        n_columns)``; each replica also draws every group's cross section within
        its Pythia error."""
        s = np.zeros((self.n_bootstrap, len(self.columns)))
        for sums in self._groups.values():
            if sums.n_events == 0:
                continue
            sigma, error = sums.sigma_fb()
            scale = 1.0 + (
                error / sigma if sigma > 0 else 0.0
            ) * self._rng.standard_normal((self.n_bootstrap, 1))
            weight = self.luminosity_fb * sigma / sums.n_events
            s += np.clip(scale, 0.0, None) * weight * sums.bootstrap
        return s

    def as_mapping(
        self, values: tuple[np.ndarray, np.ndarray] | None = None
    ) -> dict[str, dict[str, tuple[float, float]]]:
        """Analysis name to SR name to ``(n_signal, mc_error)`` (events)."""
        s, error = self.signal() if values is None else values
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for (name, sr), n, e in zip(self.columns, s, error, strict=True):
            out.setdefault(name, {})[sr] = (float(n), float(e))
        return out

    def arrays_by_analysis(
        self, catalogue: Any, s: np.ndarray, error: np.ndarray
    ) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        """Rows of signal and error per catalogue analysis, SRs in catalogue order.

        Args:
            catalogue: The catalogue to combine over (its analyses implemented).
            s: Signal, shape ``(m, n_columns)``.
            error: Its Monte Carlo error, the same shape (or broadcastable).

        Returns:
            Analysis name to ``(s, error)`` of shape ``(m, n_SR)``, as
            :func:`simulators.combination.combine_many` takes them.
        """
        s = np.atleast_2d(s)
        error = np.broadcast_to(np.atleast_2d(error), s.shape)
        index = {column: i for i, column in enumerate(self.columns)}
        out = {}
        for name, analysis in catalogue.analyses.items():
            # An SR of the catalogue that no selection implements has zero signal.
            picks = np.array(
                [index.get((name, sr), -1) for sr in analysis.region_names]
            )
            present = picks >= 0
            rows = np.zeros((s.shape[0], len(picks)))
            errors = np.zeros_like(rows)
            rows[:, present] = s[:, picks[present]]
            errors[:, present] = error[:, picks[present]]
            out[name] = (rows, errors)
        return out
