"""The embedded ``builtin`` backend: spectrum → decays → Pythia → detector → χ².

The chain of paper Fig. 2 with pip-installable physics only. Per point: the
built-in spectrum and pre-selection (rejected with the reason), decay tables, an
SLHA card, Pythia 8 events per production group and energy, the parameterised
detector, the signal-region selections, and the combination of the signal
regions' χ² (Appendix A, Sect. 2.2). No exception leaves :meth:`simulate`: a
broken tool, a bad spectrum or a timeout becomes a ``failed`` result.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from simulators.analyses import ANALYSES, analyses_at
from simulators.errors import SimulatorConfigError
from simulators.events import GenerationSettings, GroupSample, generate
from simulators.result import N_FEATURES, SimulationResult

logger = logging.getLogger(__name__)

#: Energies (TeV) with implemented analyses.
SUPPORTED_ENERGIES_TEV = (8.0, 13.0)
#: Version of this backend's physics; bump when its labels change.
VERSION = "0.2.0"
#: Default detector replicas per generated event (see :class:`BuiltinSimulator`).
DETECTOR_REPLICAS = 4
#: Sparticle and Higgs masses reported with every result (PDG codes).
REPORTED_MASSES = (
    1000021, 1000001, 1000002, 1000003, 1000004, 2000001, 2000002, 2000003, 2000004,
    1000005, 2000005, 1000006, 2000006, 1000011, 2000011, 1000013, 2000013, 1000015,
    2000015, 1000012, 1000014, 1000016, 1000022, 1000023, 1000025, 1000035, 1000024,
    1000037, 25, 35, 36, 37,
)  # fmt: skip


@dataclass
class EnergySignal:
    """Expected signal of one point at one energy.

    Attributes:
        signal: Analysis name to SR name to ``(n_signal, mc_error)`` expected events.
        cross_sections_fb: Production group to its cross section (fb).
        process_cross_sections_fb: Outgoing hard-process pair ``(pdg1, pdg2)`` to
            its cross section (fb), from the event fractions within each group.
        n_events: Production group to the number of generated events.
        timings: Stage name (events, detector, analysis) to wall time (s).
        cpu_timings: The same stages' CPU time (s).
    """

    signal: dict[str, dict[str, tuple[float, float]]]
    cross_sections_fb: dict[str, float] = field(default_factory=dict)
    process_cross_sections_fb: dict[tuple[int, int], float] = field(
        default_factory=dict
    )
    n_events: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)


def signal_from_card(
    card: Path,
    masses: Mapping[int, float],
    energy_tev: float,
    *,
    seed: int,
    settings: GenerationSettings | None = None,
    deadline: float | None = None,
    detector_replicas: int = 1,
) -> EnergySignal:
    """Expected signal in every implemented SR at one energy, from an SLHA card.

    Args:
        card: SLHA file with spectrum and complete DECAY blocks.
        masses: PDG code to mass (GeV).
        energy_tev: Centre-of-mass energy (TeV).
        seed: Random seed for events and detector.
        settings: Event statistics.
        deadline: ``time.monotonic()`` value after which generation stops.
        detector_replicas: Detector draws per generated event, averaged (see
            :func:`simulators.detector.reconstruct`).

    Returns:
        The :class:`EnergySignal`; every implemented SR is present (zero signal
        with zero error when nothing was generated).
    """
    analyses = analyses_at(energy_tev)
    luminosity = max((a.luminosity_fb for a in analyses), default=0.0)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with _timed(timings, "events", cpu):
        samples = generate(
            card,
            energy_tev,
            luminosity,
            masses,
            seed=seed,
            settings=settings,
            deadline=deadline,
        )
    signal = {a.name: {sr: (0.0, 0.0) for sr in a.signal_regions} for a in analyses}
    if samples:
        _fill_signal(signal, samples, analyses, seed, timings, cpu, detector_replicas)
    return EnergySignal(
        signal=signal,
        cross_sections_fb={s.group: s.sigma_fb for s in samples},
        process_cross_sections_fb=_process_cross_sections(samples),
        n_events={s.group: s.n_events for s in samples},
        timings=timings,
        cpu_timings=cpu,
    )


def _fill_signal(
    signal: dict[str, dict[str, tuple[float, float]]],
    samples: Sequence[GroupSample],
    analyses: Sequence[Any],
    seed: int,
    timings: dict[str, float],
    cpu: dict[str, float],
    detector_replicas: int = 1,
) -> None:
    """Reconstruct all groups' events at once and count weighted passing events."""
    from simulators.detector import reconstruct

    events = ak.concatenate([s.events for s in samples])
    weight_fb = np.concatenate(
        [np.full(s.n_events, s.sigma_fb / s.n_events) for s in samples]
    )
    with _timed(timings, "detector", cpu):
        objects = reconstruct(
            events, np.random.default_rng([seed, 7]), replicas=detector_replicas
        )
    with _timed(timings, "analysis", cpu):
        for analysis in analyses:
            masks = analysis.select(objects)
            for sr in analysis.signal_regions:
                signal[analysis.name][sr] = _passing_signal(
                    masks[sr], weight_fb * analysis.luminosity_fb, objects.replicas
                )


def _passing_signal(
    mask: np.ndarray, weight: np.ndarray, replicas: int
) -> tuple[float, float]:
    """Expected events passing a selection and their Monte Carlo error.

    Args:
        mask: Pass flags, ``replicas × n`` rows, replica-major.
        weight: Expected events per generated event, ``(n,)``.
        replicas: Detector replicas per generated event.

    Returns:
        ``(Σ wᵢ fᵢ, sqrt(Σ (wᵢ fᵢ)²))`` with ``fᵢ`` the fraction of event ``i``'s
        replicas that pass: the replicas of one event are not independent
        samples of the generator, so the error treats each event as one sample.
    """
    fraction = np.asarray(mask, dtype=float).reshape(replicas, -1).mean(axis=0)
    passed = weight * fraction
    return float(passed.sum()), float(np.sqrt(np.sum(passed**2)))


def _process_cross_sections(
    samples: Sequence[GroupSample],
) -> dict[tuple[int, int], float]:
    result: dict[tuple[int, int], float] = {}
    for sample in samples:
        pairs, counts = np.unique(sample.hard_pairs, axis=0, return_counts=True)
        for (first, second), n in zip(pairs.tolist(), counts.tolist(), strict=True):
            key = (int(first), int(second))
            result[key] = result.get(key, 0.0) + sample.sigma_fb * n / sample.n_events
    return result


@contextmanager
def _timed(
    timings: dict[str, float], stage: str, cpu: dict[str, float] | None = None
) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]`` and, when given, its CPU
    time to ``cpu[stage]`` (seconds)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
        if cpu is not None:
            cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - start_cpu


class BuiltinSimulator:
    """The embedded default backend (see the module docstring).

    Args:
        energies_tev: Centre-of-mass energies (TeV) to simulate, from {8, 13}.
        model: ``"pmssm11"`` or ``"pmssm19"``.
        min_events: Fewest events per generated production group.
        max_events: Most events per production group (default 4000).
        event_factor: Events per group as a multiple of its expected number. The
            paper generates 5 times; the default 8 (with at most 4000 events)
            spends the time the 1 GeV shower cutoff saves on statistics, for
            about 20 % less Monte Carlo noise on χ² near the exclusion boundary
            within 10 s of CPU per point at 13 TeV.
        hadronisation: Run Pythia's hadron level (about 5x slower).
        k_factors: Production group to a K-factor on its LO cross section.
        signal_systematic: Relative signal systematic uncertainty (0.1 = 10 %),
            added in quadrature to the Monte Carlo error. The paper (Appendix A)
            names a total signal systematic without giving its size; 10 % is a
            typical acceptance uncertainty. It matters: with the log-normal
            nuisance a large signal's χ² saturates at roughly (ln(s/n))²/r² for a
            total relative error r, so an 800 GeV gluino reaches the cap of 100
            with 10 % but stays near 95 with 20 %.
        electroweak_threshold_gev: Electroweak production only below this m(χ̃⁰₁).
        electroweak_energies_tev: Energies at which electroweak production runs.
        skip_below_events: Groups expecting fewer events are not generated.
        timeout_s: Wall-time limit of one point's event generation (s).
        compute_features: Compute the 56 reparametrized features.
        catalogue: Signal-region catalogue file; default the shipped one.
        cap: Cap on each energy's total χ² (paper: 100).
        detector_replicas: Draws of jet smearing, b/τ-tagging and the missing-E_T
            soft term per generated event, averaged: the same expectation with
            less detector noise on χ², at the cost of running the selections on
            that many copies of the events.
    """

    name = "builtin"
    version = VERSION

    def __init__(
        self,
        energies_tev: Sequence[float] = (13.0,),
        model: str = "pmssm11",
        min_events: int = 500,
        max_events: int = 4000,
        event_factor: float = 8.0,
        hadronisation: bool = False,
        k_factors: Mapping[str, float] | None = None,
        signal_systematic: float = 0.1,
        electroweak_threshold_gev: float = 500.0,
        electroweak_energies_tev: Sequence[float] = (8.0,),
        skip_below_events: float = 0.05,
        timeout_s: float = 600.0,
        compute_features: bool = True,
        catalogue: str | None = None,
        cap: float = 100.0,
        detector_replicas: int = DETECTOR_REPLICAS,
    ) -> None:
        self.energies_tev = tuple(float(e) for e in energies_tev)
        self.model = model
        self.min_events = min_events
        self.max_events = max_events
        self.event_factor = event_factor
        self.hadronisation = hadronisation
        self.k_factors = dict(k_factors or {})
        self.signal_systematic = signal_systematic
        self.electroweak_threshold_gev = electroweak_threshold_gev
        self.electroweak_energies_tev = tuple(
            float(e) for e in electroweak_energies_tev
        )
        self.skip_below_events = skip_below_events
        self.timeout_s = timeout_s
        self.compute_features = compute_features
        self.catalogue = catalogue
        self.cap = cap
        self.detector_replicas = detector_replicas

    def generation_settings(self) -> GenerationSettings:
        """The event-generation settings these options describe."""
        return GenerationSettings(
            event_factor=self.event_factor,
            min_events=self.min_events,
            max_events=self.max_events,
            skip_below_events=self.skip_below_events,
            hadronisation=self.hadronisation,
            electroweak_threshold_gev=self.electroweak_threshold_gev,
            electroweak_energies_tev=self.electroweak_energies_tev,
            k_factors=self.k_factors,
        )

    def check(self) -> None:
        """Fail early when this backend cannot run with these settings.

        Raises:
            SimulatorConfigError: An unsupported energy or model, a bad number, an
                unreadable catalogue, or Pythia/fastjet missing.
        """
        unsupported = [e for e in self.energies_tev if e not in SUPPORTED_ENERGIES_TEV]
        if not self.energies_tev or unsupported:
            raise SimulatorConfigError(
                f"builtin simulator: energies_tev {list(self.energies_tev)} must be a "
                f"non-empty subset of {list(SUPPORTED_ENERGIES_TEV)}"
            )
        if self.model not in ("pmssm11", "pmssm19"):
            raise SimulatorConfigError(
                f"builtin simulator: unknown model {self.model!r}"
            )
        if not 0 < self.min_events <= self.max_events:
            raise SimulatorConfigError(
                f"builtin simulator: need 0 < min_events <= max_events, got "
                f"{self.min_events}, {self.max_events}"
            )
        if not (
            isinstance(self.detector_replicas, int) and self.detector_replicas >= 1
        ):
            raise SimulatorConfigError(
                f"builtin simulator: detector_replicas must be an integer >= 1, got "
                f"{self.detector_replicas!r}"
            )
        if not (self.signal_systematic >= 0 and self.timeout_s > 0):
            raise SimulatorConfigError(
                "builtin simulator: signal_systematic must be >= 0 and timeout_s > 0"
            )
        try:
            import fastjet  # noqa: F401
            import pythia8mc  # noqa: F401
        except ImportError as exc:
            raise SimulatorConfigError(
                f"builtin simulator needs {exc.name}: {exc}"
            ) from exc
        for energy in self.energies_tev:
            self._catalogue(energy)

    def describe(self) -> dict[str, Any]:
        """Energies, analyses per energy and the number of features."""
        return {
            "energies": [_energy_key(e) for e in self.energies_tev],
            "analyses": {
                _energy_key(e): list(self._catalogue(e).analyses)
                for e in self.energies_tev
            },
            "n_features": N_FEATURES,
        }

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: Path
    ) -> SimulationResult:
        """Labels of one point; never raises.

        Args:
            point: Canonical parameter names to values (GeV).
            seed: Random seed of this point.
            workdir: Private scratch directory (the SLHA card is written there).

        Returns:
            ``ok`` with χ² per energy, ``rejected`` when pre-selection fails, or
            ``failed`` with the reason when any stage breaks or times out.
        """
        timings: dict[str, float] = {}
        masses: dict[int, float] = {}
        start = time.perf_counter()
        try:
            result = self._simulate(point, seed, Path(workdir), timings, masses)
            result.timings["total"] = time.perf_counter() - start
            return result
        except Exception as exc:
            timings["total"] = time.perf_counter() - start
            logger.warning("builtin simulation of %s failed: %s", dict(point), exc)
            return SimulationResult.failed(
                f"{type(exc).__name__}: {exc}",
                masses=masses,
                timings=timings,
                simulator=self.name,
                version=self.version,
                extra={"traceback": traceback.format_exc()[-4000:]},
            )

    def _simulate(
        self,
        point: Mapping[str, float],
        seed: int,
        workdir: Path,
        timings: dict[str, float],
        masses: dict[int, float],
    ) -> SimulationResult:
        from simulators.decays import compute_decays
        from simulators.preselection import preselect
        from simulators.slha import write_card
        from simulators.spectrum import compute_spectrum

        deadline = time.monotonic() + self.timeout_s
        with _timed(timings, "spectrum"):
            spectrum = compute_spectrum(point, self.model)
        masses.update(_reported_masses(spectrum.masses))
        with _timed(timings, "preselection"):
            reason = preselect(spectrum)
        if reason is not None:
            return SimulationResult.rejected(
                reason,
                masses=masses,
                timings=timings,
                simulator=self.name,
                version=self.version,
            )
        with _timed(timings, "decays"):
            decays = compute_decays(spectrum)
            workdir.mkdir(parents=True, exist_ok=True)
            card = write_card(workdir / "point.slha", spectrum, decays)

        result = SimulationResult(
            status="ok",
            masses=masses,
            timings=timings,
            simulator=self.name,
            version=self.version,
        )
        energy_signals = {}
        for index, energy in enumerate(self.energies_tev):
            energy_signal = signal_from_card(
                card,
                spectrum.masses,
                energy,
                seed=seed * 4 + index,
                settings=self.generation_settings(),
                deadline=deadline,
                detector_replicas=self.detector_replicas,
            )
            energy_signals[energy] = energy_signal
            self._label(result, energy, energy_signal)
        with _timed(timings, "features"):
            result.features = self._features(spectrum, decays, energy_signals)
        return result

    def _label(
        self, result: SimulationResult, energy: float, energy_signal: EnergySignal
    ) -> None:
        from simulators.combination import combine

        key = _energy_key(energy)
        for stage, seconds in energy_signal.timings.items():
            result.timings[stage] = result.timings.get(stage, 0.0) + seconds
        result.extra[f"timings_{key}"] = dict(energy_signal.timings)
        result.extra[f"cpu_timings_{key}"] = dict(energy_signal.cpu_timings)
        catalogue = self._catalogue(energy)
        signal = {name: energy_signal.signal[name] for name in catalogue.analyses}
        with _timed(result.timings, "statistics"):
            combined = combine(
                catalogue,
                signal,
                cap=self.cap,
                signal_systematic=self.signal_systematic,
            )
        result.chi2[key] = combined.total
        result.chi2_analysis[key] = combined.per_analysis
        result.chosen_regions[key] = combined.chosen
        result.signal[key] = {
            f"{name}/{sr}": [n, error]
            for name, regions in signal.items()
            for sr, (n, error) in regions.items()
        }
        result.extra[f"cross_sections_fb_{key}"] = energy_signal.cross_sections_fb
        result.extra[f"n_events_{key}"] = energy_signal.n_events

    def _features(
        self, spectrum: Any, decays: Any, energy_signals: Mapping[float, EnergySignal]
    ) -> list[float] | None:
        """The 56 features, from the first energy's per-process cross sections."""
        if not self.compute_features:
            return None
        try:
            from simulators.features import compute_features
        except ImportError:
            logger.debug("simulators.features not available; features left out")
            return None
        first = energy_signals[self.energies_tev[0]]
        values = np.asarray(
            compute_features(spectrum, decays, first.process_cross_sections_fb),
            dtype=float,
        )
        return [float(v) for v in values]

    def _catalogue(self, energy: float) -> Any:
        from simulators.catalogue import load_catalogue

        catalogue = load_catalogue(self.catalogue, energy_tev=energy)
        names = [name for name in ANALYSES if name in catalogue.analyses]
        names = [n for n in names if math.isclose(ANALYSES[n].energy_tev, energy)]
        if not names:
            raise SimulatorConfigError(
                f"builtin simulator: no implemented analysis at {energy} TeV in the catalogue"
            )
        return catalogue.subset(names)


def _energy_key(energy: float) -> int:
    return round(energy)


def _reported_masses(masses: Mapping[int, float]) -> dict[int, float]:
    return {pdg: float(masses[pdg]) for pdg in REPORTED_MASSES if pdg in masses}
